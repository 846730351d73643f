//! Unit tests of the parts the integration tests cannot reach: reading the API's JSON and
//! checking the URL template.

use std::net::IpAddr;

use super::config::expand;
use super::report::parse_report;
use super::{FieldMap, IpReport, ReputationConfig, ReputationError};

fn parse(json: &str) -> Result<IpReport, ReputationError> {
    parse_report(json.as_bytes(), &FieldMap::default())
}

#[test]
fn scores_are_clamped_and_rounded() {
    let cases = [
        ("42", Some(42)),
        ("42.5", Some(43)),
        ("-3", Some(0)),
        ("250", Some(100)),
        ("\"77\"", Some(77)),
        ("\"high\"", None),
        ("true", None),
        ("null", None),
    ];
    for (raw, expected) in cases {
        let report = parse(&format!(r#"{{"risk_score": {raw}, "isp": "x"}}"#)).unwrap();
        assert_eq!(report.risk_score, expected, "risk_score = {raw}");
    }
}

#[test]
fn asn_forms_are_normalised() {
    let cases = [
        ("13335", Some("AS13335")),
        ("\"13335\"", Some("AS13335")),
        ("\"AS13335\"", Some("AS13335")),
        ("\"as13335\"", Some("AS13335")),
        ("\"AS13335 Cloudflare\"", Some("AS13335 Cloudflare")),
        ("\"\"", None),
        ("-5", None),
    ];
    for (raw, expected) in cases {
        let report = parse(&format!(r#"{{"asn": {raw}}}"#)).unwrap();
        assert_eq!(report.asn.as_deref(), expected, "asn = {raw}");
    }
}

#[test]
fn flags_accept_common_spellings() {
    let report =
        parse(r#"{"is_vpn": 1, "is_proxy": "yes", "is_tor": "false", "is_datacenter": null}"#)
            .unwrap();
    assert!(report.is_vpn);
    assert!(report.is_proxy);
    assert!(!report.is_tor);
    assert!(!report.is_datacenter);
}

#[test]
fn dotted_names_reach_nested_fields() {
    let fields = FieldMap {
        is_tor: "security.tor".into(),
        ..FieldMap::default()
    };
    let report = parse_report(br#"{"security": {"tor": true}}"#, &fields).unwrap();
    assert!(report.is_tor);
}

#[test]
fn unusable_answers_are_malformed() {
    for body in [
        "",
        "nonsense",
        "[1, 2]",
        "42",
        "{}",
        r#"{"error": "bad key"}"#,
    ] {
        assert_eq!(parse(body), Err(ReputationError::Malformed), "{body:?}");
    }
}

#[test]
fn urls_are_checked() {
    let ok = ReputationConfig::new("https://api.example.com/v1/{ip}?fields=all");
    assert!(ok.validate().is_ok());
    for url in [
        "",
        "ftp://api.example.com/{ip}",
        "https://api.example.com/v1/",
        "http://{ip}:99999/",
    ] {
        let error = ReputationConfig::new(url).validate().unwrap_err();
        assert_eq!(error.field(), "url", "{url:?}");
    }
}

#[test]
fn ipv6_addresses_expand_without_brackets() {
    let ip: IpAddr = "2001:db8::1".parse().unwrap();
    let url = expand("http://127.0.0.1:1/ip/{ip}", ip);
    assert_eq!(url, "http://127.0.0.1:1/ip/2001:db8::1");
    assert!(reqwest::Url::parse(&url).is_ok());
}
