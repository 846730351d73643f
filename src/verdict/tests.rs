use std::time::Duration;

use super::*;

#[test]
fn rate_usage_points_round_and_cap() {
    assert_eq!(rate_usage_points(0, 10), 0);
    assert_eq!(rate_usage_points(1, 300), 0);
    assert_eq!(rate_usage_points(5, 10), 20);
    assert_eq!(rate_usage_points(10, 10), 40);
    assert_eq!(rate_usage_points(11, 10), 40);
    assert_eq!(rate_usage_points(1, 0), 0);
}

#[test]
fn flags_serialize_as_names_and_parse_back() {
    let flags: Flags = [Flag::Banned, Flag::DeclaredCrawler].into_iter().collect();
    assert_eq!(
        serde_json::to_string(&flags).unwrap(),
        r#"["banned","declared_crawler"]"#
    );
    assert!(flags.contains(Flag::Banned));
    assert!(!flags.contains(Flag::Tor));
    assert_eq!(
        "declared_crawler".parse::<Flag>(),
        Ok(Flag::DeclaredCrawler)
    );
    assert_eq!(Flag::ReputationUnknown.to_string(), "reputation_unknown");
    assert!("Tor".parse::<Flag>().is_err());
    assert_eq!(Flags::from_bits(u32::MAX).iter().count(), 13);
    assert_eq!(format!("{flags:?}"), r#"{"banned", "declared_crawler"}"#);
}

#[test]
fn reasons_read_as_sentences() {
    let r = Reason::Banned {
        remaining: Duration::from_millis(899_001),
        offence: Some(2),
    };
    assert_eq!(r.to_string(), "banned for 900s (offence 2) (+100)");
    let r = Reason::RateUsage { hits: 5, burst: 10 };
    assert_eq!(r.to_string(), "rate usage 5/10 in the window (+20)");
    assert_eq!(BlockReason::RateLimited.as_str(), "rate_limited");
    assert_eq!(BlockReason::Restricted.to_string(), "restricted");
}
