//! Configuration: both front doors, defaults, and errors that name the key at fault.

use std::time::Duration;

use actix_bouncer::rules::ListQuery;
use actix_bouncer::{Bouncer, ConfigError, Mode, Rule};

mod common;
use common::capture;

async fn rules_of(bouncer: &Bouncer) -> Vec<Rule> {
    bouncer
        .rules()
        .list(ListQuery::first(1000))
        .await
        .unwrap()
        .rules
}

fn err(toml: &str) -> ConfigError {
    Bouncer::from_toml_str(toml).expect_err(toml)
}

fn key_of(toml: &str) -> String {
    let e = err(toml);
    e.key()
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no key in {e}"))
}

#[actix_web::test]
async fn the_example_file_loads() {
    let bouncer = Bouncer::from_toml_file(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/bouncer.toml"
    ))
    .unwrap();
    assert_eq!(bouncer.mode(), Mode::Enforce);
    assert!(!rules_of(&bouncer).await.is_empty());
}

#[actix_web::test]
async fn an_empty_file_gives_the_defaults() {
    let bouncer = Bouncer::from_toml_str("").unwrap();
    assert_eq!(bouncer.mode(), Mode::Enforce);
    assert!(rules_of(&bouncer).await.is_empty());
}

#[actix_web::test]
async fn every_key_is_accepted() {
    let bouncer = Bouncer::from_toml_str(
        r#"
        mode = "monitor"
        block_threshold = 80
        [client]
        trusted_proxies = ["10.0.0.0/8", "192.0.2.1", "2001:db8::/32", "unix"]
        ip_headers = ["forwarded", "x-forwarded-for", "x-real-ip"]
        ipv4_prefix = 24
        ipv6_prefix = 56
        [limit]
        hits = 10
        per = "90s"
        burst = 20
        ban_for = "10m"
        ban_growth = 1.5
        max_ban = "24h"
        max_tracked_keys = 5000
        [[rules]]
        target = "203.0.113.0/24"
        action = "block"
        for = "7d"
        comment = "scraper"
        [[rules]]
        target = "user:alice"
        action = "allow"
        expires = "2099-01-01T00:00:00+02:00"
        [[rules]]
        target = "2001:db8:bad::/48"
        action = "block"
        expires = 2099-01-01T00:00:00Z
        "#,
    )
    .unwrap();
    assert_eq!(bouncer.mode(), Mode::Monitor);
    let rules = rules_of(&bouncer).await;
    assert_eq!(rules.len(), 3);
    assert_eq!(rules[0].comment.as_deref(), Some("scraper"));
    let week = rules[0]
        .expires
        .unwrap()
        .duration_since(rules[0].created)
        .unwrap();
    assert_eq!(week, Duration::from_secs(7 * 24 * 3600));
    assert_eq!(
        bouncer.key_for("203.0.113.77".parse().unwrap()).to_string(),
        "203.0.113.0/24"
    );
    assert_eq!(
        bouncer
            .key_for("2001:db8:1:2ff::1".parse().unwrap())
            .to_string(),
        "2001:db8:1:200::/56"
    );
}

#[test]
fn errors_name_the_key_and_the_value() {
    let cases = [
        ("block_threshold = 101", "block_threshold"),
        ("mode = \"shadow\"", "mode"),
        ("[client]\ntrusted_proxies = [\"10.0.0.0/8\", \"10.0.0.0/33\"]", "client.trusted_proxies[1]"),
        ("[client]\ntrusted_proxies = [\"10.1.2.3/8\"]", "client.trusted_proxies[0]"),
        ("[client]\nip_headers = [\"x-client-ip\"]", "client.ip_headers[0]"),
        ("[client]\nipv4_prefix = 0", "client.ipv4_prefix"),
        ("[client]\nipv6_prefix = 129", "client.ipv6_prefix"),
        ("[limit]\nhits = 0", "limit.hits"),
        ("[limit]\nhits = -5", "limit.hits"),
        ("[limit]\nper = \"soon\"", "limit.per"),
        ("[limit]\nper = \"0s\"", "limit.per"),
        ("[limit]\nburst = 0", "limit.burst"),
        ("[limit]\nban_for = \"0s\"", "limit.ban_for"),
        ("[limit]\nban_for = \"10m\"\nban_growth = 0.5", "limit.ban_growth"),
        ("[limit]\nban_for = \"10m\"\nmax_ban = \"1m\"", "limit.max_ban"),
        ("[limit]\nmax_ban = \"1h\"", "limit.max_ban"),
        ("[limit]\nmax_tracked_keys = 0", "limit.max_tracked_keys"),
        ("[[rules]]\ntarget = \"10.0.0.0/40\"\naction = \"block\"", "rules[0].target"),
        ("[[rules]]\ntarget = \"user:\"\naction = \"block\"", "rules[0].target"),
        ("[[rules]]\ntarget = \"10.0.0.1\"\naction = \"deny\"", "rules[0].action"),
        ("[[rules]]\ntarget = \"10.0.0.1\"\naction = \"block\"\nexpires = \"tomorrow\"", "rules[0].expires"),
        ("[[rules]]\ntarget = \"10.0.0.1\"\naction = \"block\"\nfor = \"forever\"", "rules[0].for"),
        (
            "[[rules]]\ntarget = \"10.0.0.1\"\naction = \"block\"\nfor = \"1h\"\nexpires = \"2099-01-01T00:00:00Z\"",
            "rules[0].for",
        ),
    ];
    for (toml, key) in cases {
        assert_eq!(key_of(toml), key, "{toml}");
        let message = err(toml).to_string();
        assert!(message.contains(key), "{message}");
    }
    let message = err("block_threshold = 101").to_string();
    assert!(
        message.contains("101") && message.contains("between 0 and 100"),
        "{message}"
    );
}

#[test]
fn unknown_keys_and_wrong_types_are_reported_with_their_name() {
    for (toml, name) in [
        ("treshold = 3", "treshold"),
        ("[limit]\nhitz = 3", "hitz"),
        ("[client]\ntrusted = []", "trusted"),
        (
            "[[rules]]\ntarget = \"10.0.0.1\"\naction = \"block\"\nttl = \"1h\"",
            "ttl",
        ),
        ("[storage]\nurl = \"x\"", "storage"),
        ("[limit]\nhits = \"ten\"", "hits"),
    ] {
        let e = err(toml);
        assert!(matches!(e, ConfigError::Toml { .. }), "{e:?}");
        assert!(e.to_string().contains(name), "{toml}: {e}");
    }
}

#[test]
fn the_builder_reports_the_same_keys() {
    let e = Bouncer::builder().block_threshold(120).build().unwrap_err();
    assert_eq!(e.key(), Some("block_threshold"));
    let e = Bouncer::builder()
        .limit(0, Duration::from_secs(1))
        .build()
        .unwrap_err();
    assert_eq!(e.key(), Some("limit.hits"));
    let e = Bouncer::builder()
        .limit(5, Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(e.key(), Some("limit.per"));
    let e = Bouncer::builder()
        .trusted_proxies(["proxy.local"])
        .build()
        .unwrap_err();
    assert_eq!(e.key(), Some("client.trusted_proxies[0]"));
    let e = Bouncer::builder().ipv6_prefix(0).build().unwrap_err();
    assert_eq!(e.key(), Some("client.ipv6_prefix"));
    let e = Bouncer::builder()
        .ban_for(Duration::from_secs(600))
        .ban_growth(f64::NAN)
        .build()
        .unwrap_err();
    assert_eq!(e.key(), Some("limit.ban_growth"));
}

#[test]
fn a_missing_file_names_the_path() {
    let e = Bouncer::from_toml_file("/nonexistent/bouncer.toml").unwrap_err();
    assert!(matches!(e, ConfigError::Io { .. }));
    assert!(e.to_string().contains("/nonexistent/bouncer.toml"));
}

#[test]
fn a_file_error_names_the_file() {
    let dir = std::env::temp_dir().join(format!("bouncer-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(&path, "[limit]\nunknown = 1\n").unwrap();
    let e = Bouncer::from_toml_file(&path).unwrap_err();
    assert!(e.to_string().contains("bad.toml"), "{e}");
    std::fs::remove_dir_all(dir).ok();
}

/// A config that worked yesterday must start today: an expired startup rule is skipped with a
/// warning naming it, and the others are in force.
#[actix_web::test]
async fn an_expired_rule_is_skipped_with_a_warning() {
    let (out, _guard) = capture();
    let bouncer = Bouncer::from_toml_str(
        r#"
        [[rules]]
        target = "203.0.113.1"
        action = "block"
        [[rules]]
        target = "203.0.113.2"
        action = "block"
        expires = "2020-01-01T00:00:00Z"
        comment = "a ban that ended"
        "#,
    )
    .expect("an expired rule must not stop the service");
    let rules = rules_of(&bouncer).await;
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].target.to_string(), "203.0.113.1");
    let warning = out
        .lines()
        .into_iter()
        .find(|l| l.contains("WARN") && l.contains("rules[1]"))
        .unwrap_or_else(|| panic!("no warning naming rules[1]: {:?}", out.lines()));
    assert!(
        warning.contains("203.0.113.2") && warning.contains("2020-01-01"),
        "{warning}"
    );
    // Through the builder too.
    let bouncer = Bouncer::builder()
        .rule(
            actix_bouncer::NewRule::block("198.51.100.1".parse().unwrap())
                .expires_at(std::time::UNIX_EPOCH),
        )
        .build()
        .unwrap();
    assert!(rules_of(&bouncer).await.is_empty());
}

/// fail2ban bans for as long as it counts, and the crawler-blocker article blocks for the
/// timeout it counts over: a ban as long as `per`, or shorter, is a valid setup.
#[test]
fn a_ban_need_not_outlast_the_window() {
    for toml in [
        "[limit]\nhits = 10\nper = \"10m\"\nban_for = \"10m\"",
        "[limit]\nhits = 10\nper = \"10m\"\nban_for = \"1m\"",
    ] {
        Bouncer::from_toml_str(toml).unwrap_or_else(|e| panic!("{toml}: {e}"));
    }
    Bouncer::builder()
        .limit(5, Duration::from_secs(60))
        .ban_for(Duration::from_secs(60))
        .build()
        .unwrap();
}

/// `[access_log]` is checked when the bouncer is built, each error under its key, so a bad
/// access-log setting fails startup rather than the first `bouncer.access_log().build()`.
#[actix_web::test]
async fn access_log_settings_are_checked_at_startup_under_their_keys() {
    for (toml, key) in [
        ("[access_log]\nqueue_size = 0", "access_log.queue_size"),
        (
            "[access_log]\nqueue_size = 99999999",
            "access_log.queue_size",
        ),
        ("[access_log]\nbatch_size = 70000", "access_log.batch_size"),
        (
            "[access_log]\nbody_limit = 2000000",
            "access_log.body_limit",
        ),
        ("[access_log]\nbody_limit = -1", "access_log.body_limit"),
        ("[access_log]\nretries = 50", "access_log.retries"),
        (
            "[access_log]\nbody_limit = 4096\nqueued_body_bytes = 100",
            "access_log.queued_body_bytes",
        ),
        (
            "[access_log]\noverflow = \"sometimes\"",
            "access_log.overflow",
        ),
        ("[access_log]\nskip = [\"static\"]", "access_log.skip"),
        (
            "[access_log]\nsession_cookie = \"a b\"",
            "access_log.session_cookie",
        ),
        ("[access_log]\nredact = [\"--\"]", "access_log.redact"),
        ("[access_log]\nalso_redact = [\"\"]", "access_log.redact"),
        ("[access_log]\nstore = \"mysql://db/x\"", "access_log.store"),
        ("[access_log]\nretain = \"7d\"", "access_log.retain"),
        (
            "[access_log]\nstore = \"sqlite::memory:\"\nretain = \"0s\"",
            "access_log.retain",
        ),
        (
            "[access_log]\nstore = \"sqlite::memory:\"\nretain = \"a week\"",
            "access_log.retain",
        ),
    ] {
        assert_eq!(key_of(toml), key, "{toml}");
    }
    let e = err("[access_log]\nstore = \"mysql://u:hunter2@db/x\"").to_string();
    assert!(!e.contains("hunter2"), "the password is masked: {e}");
    let e = err("[access_log]\nwhatever = 1").to_string();
    assert!(e.contains("whatever"), "{e}");
    // Every key at once is accepted.
    Bouncer::from_toml_str(
        r#"
        [access_log]
        redact = ["password", "pin"]
        also_redact = ["ssn"]
        skip = ["/assets/"]
        session_cookie = ""
        body_limit = 0
        queue_size = 1024
        batch_size = 256
        overflow = "block"
        retries = 0
        queued_body_bytes = 1048576
        "#,
    )
    .unwrap();
}
