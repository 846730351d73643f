use super::extractors::detail_of;
use super::*;

#[test]
fn limit_ids_are_stable_names() {
    let login = limit_id("app::auth::login");
    assert_eq!(login, limit_id("app::auth::login"));
    assert_ne!(login, limit_id("app::admin::login"));
    assert_ne!(login, limit_id("app::auth::logout"));
    // FNV-1a 64 of the name, the same in every build and on every machine.
    assert_eq!(limit_id(""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(limit_id("a"), 0xaf63_dc4c_8601_ec8c);
}

#[test]
fn default_messages_are_detected_at_compile_time() {
    struct Custom;
    impl GuardMessage for Custom {
        const MESSAGE: &'static str = "Humans only, please.";
    }
    assert_eq!(detail_of::<DefaultMessage>(), None);
    assert_eq!(detail_of::<Custom>(), Some("Humans only, please."));
}

#[test]
fn scope_thresholds_are_checked() {
    assert!(ScopePolicy::try_low_risk(70).is_ok());
    assert_eq!(
        ScopePolicy::try_low_risk(0).unwrap_err(),
        InvalidThreshold(0)
    );
    assert!(ScopePolicy::try_low_risk(101).is_err());
}
