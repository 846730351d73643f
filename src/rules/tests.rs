use std::cell::Cell;
use std::net::Ipv4Addr;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use ipnet::{IpNet, Ipv4Net};

use super::*;
use crate::clock::ManualClock;

fn t(s: &str) -> RuleTarget {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn manual() -> (Rules, ManualClock) {
    let clock = ManualClock::new();
    (Rules::with_clock(Arc::new(clock.clone())), clock)
}

async fn all(rules: &Rules) -> Vec<Rule> {
    rules.list(ListQuery::first(MAX_PAGE)).await.unwrap().rules
}

#[test]
fn targets_parse_and_display() {
    assert_eq!(t("203.0.113.7").to_string(), "203.0.113.7");
    assert_eq!(t("203.0.113.0/24").to_string(), "203.0.113.0/24");
    assert_eq!(t("2001:db8::/32").to_string(), "2001:db8::/32");
    assert_eq!(t("::ffff:203.0.113.7").to_string(), "203.0.113.7");
    assert_eq!(t("user:alice").to_string(), "user:alice");
    assert!("10.1.2.3/8".parse::<RuleTarget>().is_err());
    assert!("10.0.0.0/33".parse::<RuleTarget>().is_err());
    assert!("user:".parse::<RuleTarget>().is_err());
    assert!("nonsense".parse::<RuleTarget>().is_err());
    assert_eq!("allow".parse::<RuleAction>(), Ok(RuleAction::Allow));
    assert!("Allow".parse::<RuleAction>().is_err());
}

#[actix_web::test]
async fn longest_prefix_and_allow_precedence() {
    let rules = Rules::new();
    let wide = rules.add(NewRule::block(t("10.0.0.0/8"))).await.unwrap();
    let narrow = rules.add(NewRule::block(t("10.1.0.0/16"))).await.unwrap();
    let ip = ip("10.1.2.3");
    assert_eq!(rules.check(ip, None).block, Some(narrow.id));
    assert_eq!(
        rules.check("10.9.0.1".parse().unwrap(), None).block,
        Some(wide.id)
    );
    let allow = rules.add(NewRule::allow(t("10.0.0.0/8"))).await.unwrap();
    assert_eq!(rules.check(ip, None).allow, Some(allow.id));
    rules.remove(allow.id).await.unwrap().unwrap();
    assert_eq!(rules.check(ip, None).allow, None);
    assert_eq!(rules.remove(allow.id).await.unwrap(), None);
    // The same answers once everything is compiled into the base.
    rules.compact().await.unwrap();
    assert_eq!(rules.check(ip, None).block, Some(narrow.id));
    assert_eq!(rules.check(ip, None).allow, None);
    assert_eq!(rules.snapshot().len(), 2);
}

#[actix_web::test]
async fn precedence_holds_across_base_and_recent_changes() {
    let rules = Rules::new();
    // In the base: a /8 block and a user allow.
    let wide = rules.add(NewRule::block(t("10.0.0.0/8"))).await.unwrap();
    let vip = rules.add(NewRule::allow(t("user:vip"))).await.unwrap();
    rules.compact().await.unwrap();
    // Recent: a longer block, and an allow for a network around it.
    let narrow = rules.add(NewRule::block(t("10.1.2.0/24"))).await.unwrap();
    assert_eq!(rules.check(ip("10.1.2.3"), None).block, Some(narrow.id));
    assert_eq!(rules.check(ip("10.1.3.3"), None).block, Some(wide.id));
    assert_eq!(rules.check(ip("10.1.2.3"), Some("vip")).allow, Some(vip.id));
    let allow = rules.add(NewRule::allow(t("10.1.0.0/16"))).await.unwrap();
    assert_eq!(rules.check(ip("10.1.2.3"), None).allow, Some(allow.id));
    // A removal of a base rule hides it at once.
    rules.remove(wide.id).await.unwrap();
    assert_eq!(rules.check(ip("10.9.9.9"), None).block, None);
}

#[actix_web::test]
async fn expired_rules_never_match_and_uncover_wider_ones() {
    let (rules, clock) = manual();
    let wide = rules.add(NewRule::block(t("192.0.2.0/24"))).await.unwrap();
    let narrow = rules
        .add(NewRule::block(t("192.0.2.7")).expires_after(Duration::from_secs(60)))
        .await
        .unwrap();
    let ip = ip("192.0.2.7");
    assert_eq!(rules.check(ip, None).block, Some(narrow.id));
    clock.advance(Duration::from_secs(60));
    assert_eq!(rules.check(ip, None).block, Some(wide.id));
    assert_eq!(all(&rules).await.len(), 2, "expired rules stay listed");
    let err = rules
        .add(NewRule::block(t("192.0.2.8")).expires_at(clock.wall()))
        .await;
    assert!(matches!(err, Err(RuleError::AlreadyExpired)));
}

#[actix_web::test]
async fn expired_rules_leave_the_compiled_snapshot() {
    let (rules, clock) = manual();
    rules
        .add_many([
            NewRule::block(t("192.0.2.7")).expires_after(Duration::from_secs(60)),
            NewRule::block(t("user:mallory")).expires_after(Duration::from_secs(60)),
            NewRule::block(t("192.0.2.8")),
        ])
        .await
        .unwrap();
    rules.compact().await.unwrap();
    assert_eq!(rules.snapshot().len(), 3);
    clock.advance(Duration::from_secs(61));
    rules.compact().await.unwrap();
    assert_eq!(rules.snapshot().len(), 1);
    assert_eq!(all(&rules).await.len(), 3, "the store still lists them");
}

#[actix_web::test]
async fn user_rules() {
    let rules = Rules::new();
    let r = rules.add(NewRule::block(t("user:mallory"))).await.unwrap();
    let ip = ip("198.51.100.1");
    assert_eq!(rules.check(ip, Some("mallory")).block, Some(r.id));
    assert_eq!(rules.check(ip, Some("alice")).block, None);
    assert_eq!(rules.check(ip, None).block, None);
    let a = rules.add(NewRule::allow(t("user:mallory"))).await.unwrap();
    assert_eq!(rules.check(ip, Some("mallory")).allow, Some(a.id));
    // An unknown client still has its user: user rules apply, address rules cannot.
    assert_eq!(rules.matches(None, Some("mallory")).allow, Some(a.id));
}

#[test]
fn rules_serialize_with_rfc3339_times() {
    let rule = Rule {
        id: RuleId(3),
        target: t("203.0.113.0/24"),
        action: RuleAction::Block,
        expires: Some(UNIX_EPOCH + Duration::from_secs(1_800_000_000)),
        comment: Some("scraper".into()),
        source: RuleSource::Auto,
        created: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    };
    let json = serde_json::to_value(&rule).unwrap();
    assert_eq!(json["target"], "203.0.113.0/24");
    assert_eq!(json["action"], "block");
    assert_eq!(json["source"], "auto");
    assert_eq!(json["expires"], "2027-01-15T08:00:00Z");
    assert_eq!(json["created"], "2023-11-14T22:13:20Z");
}

/// `n` distinct /32 block rules in 10.0.0.0/8.
fn many(n: u32) -> Vec<NewRule> {
    (0..n)
        .map(|i| {
            let net = Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 | i), 32).unwrap();
            NewRule::block(RuleTarget::Network(IpNet::V4(net)))
        })
        .collect()
}

/// One added rule is in force at once without recompiling the big base: it waits in the
/// overlay until the worker folds it in.
#[actix_web::test]
async fn one_addition_does_not_recompile_the_base() {
    let rules = Rules::new();
    rules.add_many(many(100_000)).await.unwrap();
    let base = rules.snapshot();
    assert_eq!(
        base.len(),
        100_000,
        "a big batch is compiled before it is answered"
    );
    let one = rules.add(NewRule::block(t("203.0.113.9"))).await.unwrap();
    assert_eq!(rules.check(ip("203.0.113.9"), None).block, Some(one.id));
    assert!(
        Arc::ptr_eq(&base, &rules.snapshot()),
        "the base was not rebuilt"
    );
    rules.compact().await.unwrap();
    assert_eq!(rules.snapshot().len(), 100_001);
    assert_eq!(rules.check(ip("203.0.113.9"), None).block, Some(one.id));
}

/// A change never blocks the thread that awaits it: on a single-threaded runtime another task
/// runs while a big batch is stored and compiled.
#[actix_web::test]
async fn changes_do_not_block_the_runtime() {
    let rules = Rules::new();
    let ticks = Rc::new(Cell::new(0u32));
    let ticker = {
        let ticks = Rc::clone(&ticks);
        actix_web::rt::spawn(async move {
            loop {
                ticks.set(ticks.get() + 1);
                tokio::task::yield_now().await;
            }
        })
    };
    rules.add_many(many(200_000)).await.unwrap();
    assert!(
        ticks.get() > 0,
        "the runtime was blocked while the rules compiled"
    );
    ticker.abort();
}

#[actix_web::test]
async fn racing_automatic_rules_add_one() {
    let rules = Rules::new();
    let rule = || NewRule::block(RuleTarget::ip(ip("203.0.113.9"))).comment("automatic");
    for _ in 0..10 {
        rules.add_automatic(rule());
    }
    // Commands run in order: once this returns, the automatic ones have been handled.
    rules.compact().await.unwrap();
    for _ in 0..10 {
        rules.add_automatic(rule());
    }
    rules.compact().await.unwrap();
    let stored = all(&rules).await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0].source, RuleSource::Auto);
    assert!(rules.check(ip("203.0.113.9"), None).block.is_some());
    // Covered by a wider block rule: nothing added.
    rules
        .add(NewRule::block(t("198.51.100.0/24")))
        .await
        .unwrap();
    rules.add_automatic(NewRule::block(RuleTarget::ip(ip("198.51.100.7"))));
    rules.compact().await.unwrap();
    assert_eq!(all(&rules).await.len(), 2);
}

#[actix_web::test]
async fn instances_sharing_a_store_catch_up_by_changes() {
    let store = MemoryRuleStore::new();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock::new());
    let a = Rules::with_store(store.clone(), Arc::clone(&clock)).unwrap();
    let b = Rules::with_store(store.clone(), clock).unwrap();
    let rule = a.add(NewRule::block(t("203.0.113.9"))).await.unwrap();
    assert_eq!(b.check(ip("203.0.113.9"), None).block, None, "not yet");
    b.refresh().await.unwrap();
    assert_eq!(b.check(ip("203.0.113.9"), None).block, Some(rule.id));
    // Its own changes read back from the store are not applied twice.
    let own = b.add(NewRule::block(t("user:mallory"))).await.unwrap();
    b.refresh().await.unwrap();
    b.compact().await.unwrap();
    assert_eq!(b.snapshot().len(), 2);
    a.remove(rule.id).await.unwrap();
    a.refresh().await.unwrap();
    b.refresh().await.unwrap();
    assert_eq!(b.check(ip("203.0.113.9"), None).block, None);
    assert_eq!(a.check(ip("1.1.1.1"), Some("mallory")).block, Some(own.id));
    // A store loaded at startup brings its rules.
    let c = Rules::with_store(store, Arc::new(SystemClock::new())).unwrap();
    assert_eq!(c.check(ip("1.1.1.1"), Some("mallory")).block, Some(own.id));
}

#[actix_web::test]
async fn memory_store_asks_far_behind_readers_to_reload() {
    let store = MemoryRuleStore::new();
    let drafts = many(4_100)
        .into_iter()
        .map(|r| r.draft(SystemTime::now()))
        .collect();
    RuleStore::insert(&store, drafts).await.unwrap();
    assert_eq!(
        RuleStore::changes_since(&store, 0).await.unwrap(),
        Changes::Reload
    );
    assert!(matches!(
        RuleStore::changes_since(&store, 4_099).await.unwrap(),
        Changes::Since { .. }
    ));
}

/// `[total, manual, config, auto, block, allow, networks, users]`.
fn tally(c: RuleCounts) -> [u64; 8] {
    [
        c.total,
        c.by_source.manual,
        c.by_source.config,
        c.by_source.auto,
        c.by_action.block,
        c.by_action.allow,
        c.networks,
        c.users,
    ]
}

/// The same, counted from the store's list of the rules active at `now`.
async fn recount(rules: &Rules, now: SystemTime) -> [u64; 8] {
    let mut c = RuleCounts::default();
    for rule in all(rules).await.into_iter().filter(|r| r.is_active_at(now)) {
        let compiled = snapshot::Compiled {
            id: rule.id,
            expires: snapshot::NEVER,
            action: rule.action,
            source: rule.source,
        };
        c.add(&rule.target, &compiled, 1);
    }
    tally(c)
}

#[actix_web::test]
async fn counts_follow_additions_removals_and_expiry() {
    let (rules, clock) = manual();
    assert_eq!(tally(rules.counts()), [0; 8]);
    let minute = Duration::from_secs(60);
    rules.add(NewRule::block(t("192.0.2.7"))).await.unwrap();
    let vip = rules.add(NewRule::allow(t("user:vip"))).await.unwrap();
    rules
        .add(
            NewRule::block(t("198.51.100.0/24"))
                .source(RuleSource::Auto)
                .expires_after(minute),
        )
        .await
        .unwrap();
    rules
        .add(NewRule::block(t("user:mallory")).source(RuleSource::Config))
        .await
        .unwrap();
    // In force as soon as added (from the overlay), the same once compiled into the base.
    let four = [4, 2, 1, 1, 3, 1, 2, 2];
    assert_eq!(tally(rules.counts()), four);
    assert_eq!(recount(&rules, clock.wall()).await, four);
    rules.compact().await.unwrap();
    assert_eq!(tally(rules.counts()), four);
    assert_eq!(tally(rules.snapshot().counts()), four);
    assert_eq!(rules.counts().source(RuleSource::Config), 1);
    assert_eq!(rules.counts().action(RuleAction::Allow), 1);

    // A removal from the base counts at once.
    rules.remove(vip.id).await.unwrap().unwrap();
    let three = [3, 1, 1, 1, 3, 0, 2, 1];
    assert_eq!(tally(rules.counts()), three);
    assert_eq!(
        tally(rules.snapshot().counts()),
        four,
        "the base is not compiled yet"
    );
    // So does a removal of a recent addition, and a removal that removed nothing.
    let recent = rules
        .add(NewRule::allow(t("203.0.113.0/24")))
        .await
        .unwrap();
    assert_eq!(tally(rules.counts()), [4, 2, 1, 1, 3, 1, 3, 1]);
    rules.remove(recent.id).await.unwrap().unwrap();
    assert_eq!(tally(rules.counts()), three);
    assert_eq!(rules.remove(recent.id).await.unwrap(), None);
    assert_eq!(tally(rules.counts()), three);
    rules.compact().await.unwrap();
    assert_eq!(tally(rules.counts()), three);
    assert_eq!(recount(&rules, clock.wall()).await, three);

    // An expired rule leaves the counts when the worker drops it from the base.
    clock.advance(minute + Duration::from_secs(1));
    rules.compact().await.unwrap();
    let two = [2, 1, 1, 0, 2, 0, 1, 1];
    assert_eq!(tally(rules.counts()), two);
    assert_eq!(recount(&rules, clock.wall()).await, two);

    // An automatic rule, once the worker has stored it.
    rules.add_automatic(NewRule::block(RuleTarget::ip(ip("203.0.113.9"))));
    rules.compact().await.unwrap();
    assert_eq!(tally(rules.counts()), [3, 1, 1, 1, 3, 0, 2, 1]);
    assert_eq!(
        serde_json::to_value(rules.counts()).unwrap(),
        serde_json::json!({
            "total": 3,
            "by_source": {"manual": 1, "config": 1, "auto": 1},
            "by_action": {"block": 3, "allow": 0},
            "networks": 2,
            "users": 1,
        })
    );
}

#[actix_web::test]
async fn counts_follow_other_instances() {
    let store = MemoryRuleStore::new();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock::new());
    let a = Rules::with_store(store.clone(), Arc::clone(&clock)).unwrap();
    let b = Rules::with_store(store, clock).unwrap();
    let gone = a.add(NewRule::block(t("203.0.113.9"))).await.unwrap();
    a.add(NewRule::allow(t("user:vip"))).await.unwrap();
    let kept = a.add(NewRule::block(t("192.0.2.0/24"))).await.unwrap();
    b.refresh().await.unwrap();
    assert_eq!(tally(b.counts()), [3, 3, 0, 0, 2, 1, 2, 1]);
    // Removed while still among b's recent additions: out of b's counts on its reload.
    a.remove(gone.id).await.unwrap().unwrap();
    b.refresh().await.unwrap();
    assert_eq!(tally(b.counts()), [2, 2, 0, 0, 1, 1, 1, 1]);
    // Removed once compiled into b's base: b learns only the id, so the rule counts until
    // b's next compilation (a second at most after the reload).
    b.compact().await.unwrap();
    a.remove(kept.id).await.unwrap().unwrap();
    b.refresh().await.unwrap();
    b.compact().await.unwrap();
    assert_eq!(tally(b.counts()), [1, 1, 0, 0, 0, 1, 0, 1]);
    assert_eq!(tally(a.counts()), tally(b.counts()));
}
