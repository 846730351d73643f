//! The behaviour every rule store must have, run against each backend: memory, SQLite (in
//! memory and in a file) and PostgreSQL (when `BOUNCER_TEST_POSTGRES` names a server).

mod common;

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use actix_bouncer::rules::{
    Changes, ListQuery, LoadedRule, MemoryRuleStore, NewRule, Rule, RuleAction, RuleDraft, RuleId,
    RuleSource, RuleState, RuleStore, RuleTarget, Seed, Trim, LIST_SCAN_MAX,
};

const DAY: Duration = Duration::from_secs(86_400);

fn t(s: &str) -> RuleTarget {
    s.parse().unwrap()
}

/// A time every backend stores exactly (whole microseconds).
fn now() -> SystemTime {
    let us = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_micros();
    SystemTime::UNIX_EPOCH + Duration::from_micros(us as u64)
}

fn draft(target: &str, created: SystemTime, expires: Option<SystemTime>) -> RuleDraft {
    let mut rule = NewRule::block(t(target)).comment(format!("acceptance {target}"));
    if let Some(at) = expires {
        rule = rule.expires_at(at);
    }
    rule.draft(created)
}

fn ids(rules: &[Rule]) -> Vec<RuleId> {
    rules.iter().map(|r| r.id).collect()
}

async fn listed(store: &impl RuleStore, query: ListQuery, at: SystemTime) -> Vec<RuleId> {
    let mut all = Vec::new();
    let mut query = query;
    loop {
        let page = store.list(query.clone(), at).await.unwrap();
        all.extend(ids(&page.rules));
        match page.next {
            Some(next) => query = query.after(next),
            None => return all,
        }
    }
}

/// What changed, from a store that still knows.
fn since(changes: Changes) -> (Vec<LoadedRule>, Vec<RuleId>, u64) {
    match changes {
        Changes::Since {
            added,
            removed,
            version,
        } => (added, removed, version),
        other => panic!("the changes are known, got {other:?}"),
    }
}

async fn version(store: &impl RuleStore) -> u64 {
    store.active(now()).await.unwrap().version
}

/// The suite. `store` must start empty.
async fn acceptance(store: impl RuleStore + Clone) {
    let now = now();
    let start = store.active(now).await.unwrap();
    assert!(start.rules.is_empty(), "the store starts empty");
    assert_eq!(store.insert(Vec::new()).await.unwrap(), []);

    // Insert: ids ascending, every field kept, read back alike.
    let added = store
        .insert(vec![
            draft("203.0.113.1", now, None),
            draft("user:mallory", now, Some(now + DAY)),
            draft(
                "2001:db8::/32",
                now - DAY,
                Some(now - Duration::from_secs(1)),
            ),
        ])
        .await
        .unwrap();
    assert_eq!(added.len(), 3);
    assert!(added.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(added[1].target, t("user:mallory"));
    assert_eq!(added[1].comment.as_deref(), Some("acceptance user:mallory"));
    assert_eq!(added[1].source, RuleSource::Manual);
    for rule in &added {
        assert_eq!(store.get(rule.id).await.unwrap().as_ref(), Some(rule));
    }
    assert_eq!(store.get(RuleId(u64::MAX)).await.unwrap(), None);

    // Active: the expired one is left out; the version moved.
    let active = store.active(now).await.unwrap();
    assert_eq!(
        active.rules.iter().map(|r| r.id).collect::<Vec<_>>(),
        ids(&added[..2])
    );
    assert_eq!(active.rules[1].expires, Some(now + DAY));
    assert!(active.version > start.version);

    // Pages, and every filter.
    let first = store.list(ListQuery::first(2), now).await.unwrap();
    assert_eq!(first.rules, added[..2]);
    let second = store
        .list(
            ListQuery::first(2).after(first.next.expect("a second page")),
            now,
        )
        .await
        .unwrap();
    assert_eq!(second.rules, added[2..]);
    assert_eq!(second.next, None);
    let q = ListQuery::first(10);
    assert_eq!(
        listed(&store, q.clone().target(t("user:mallory")), now).await,
        [added[1].id]
    );
    assert_eq!(
        listed(&store, q.clone().state(RuleState::Expired), now).await,
        [added[2].id]
    );
    assert_eq!(
        listed(&store, q.clone().state(RuleState::Active), now).await,
        ids(&added[..2])
    );
    assert_eq!(
        listed(&store, q.clone().action(RuleAction::Allow), now).await,
        []
    );
    let allow = store
        .insert(vec![NewRule::allow(t("198.51.100.7"))
            .source(RuleSource::Auto)
            .draft(now)])
        .await
        .unwrap();
    assert_eq!(
        listed(&store, q.clone().action(RuleAction::Allow), now).await,
        ids(&allow)
    );
    assert_eq!(
        listed(
            &store,
            q.clone().source(RuleSource::Auto).target(t("198.51.100.7")),
            now
        )
        .await,
        ids(&allow)
    );
    assert_eq!(
        listed(&store, q.clone().source(RuleSource::Config), now).await,
        []
    );

    // Changes since a version: removals and additions; nothing after the latest.
    let before = version(&store).await;
    assert_eq!(
        store.delete(added[0].id).await.unwrap(),
        Some(added[0].clone())
    );
    assert_eq!(store.delete(added[0].id).await.unwrap(), None);
    assert_eq!(store.get(added[0].id).await.unwrap(), None);
    let more = store
        .insert(vec![draft("198.51.100.0/24", now, None)])
        .await
        .unwrap();
    let (new, removed, latest) = since(store.changes_since(before).await.unwrap());
    assert_eq!(new.iter().map(|r| r.id).collect::<Vec<_>>(), ids(&more));
    assert_eq!(new[0].target, more[0].target);
    assert_eq!(removed, [added[0].id]);
    assert!(latest > before);
    let (new, removed, still) = since(store.changes_since(latest).await.unwrap());
    assert!(new.is_empty() && removed.is_empty());
    assert_eq!(still, latest);
    assert_eq!(
        store.changes_since(u64::MAX / 2).await.unwrap(),
        Changes::Reload,
        "a reader ahead of the store (it was replaced) reloads"
    );

    trims(&store, now).await;
    seeds(&store, now).await;
    concurrent_writers(&store).await;
    loads_everything(&store, now).await;
}

/// Loading returns every active rule and no expired one, however many there are (SQL stores
/// read them in batches) and whatever characters a user id holds.
async fn loads_everything(store: &impl RuleStore, now: SystemTime) {
    let before: HashSet<RuleId> = store
        .active(now)
        .await
        .unwrap()
        .rules
        .iter()
        .map(|r| r.id)
        .collect();
    let odd_users = [
        "user:a,b:1",
        "user:12:user:9,",
        "user:line\nbreak\ttab",
        "user:名前 👤",
        "user:,,:",
    ];
    let mut drafts: Vec<RuleDraft> = odd_users.iter().map(|u| draft(u, now, None)).collect();
    // More than one batch, with expired rules scattered between active ones.
    for i in 0..25_000u32 {
        let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i).to_string();
        let expires = match i % 3 {
            0 => Some(now - Duration::from_secs(1)),
            1 => Some(now + DAY),
            _ => None,
        };
        drafts.push(draft(&ip, now, expires));
    }
    let added = store.insert(drafts).await.unwrap();
    let loaded = store.active(now).await.unwrap().rules;
    let new: Vec<&LoadedRule> = loaded.iter().filter(|r| !before.contains(&r.id)).collect();
    let expected: Vec<&Rule> = added.iter().filter(|r| r.is_active_at(now)).collect();
    assert_eq!(new.len(), expected.len(), "every active rule loads, once");
    let by_id: std::collections::HashMap<RuleId, &LoadedRule> =
        new.iter().map(|r| (r.id, *r)).collect();
    for rule in expected {
        let got = by_id[&rule.id];
        assert_eq!(
            (&got.target, got.action, got.source, got.expires),
            (&rule.target, rule.action, rule.source, rule.expires),
            "rule {} loads as stored",
            rule.id
        );
    }
    for user in odd_users {
        assert!(new.iter().any(|r| r.target == t(user)), "{user:?} loads");
    }
}

/// Trim removes exactly the expired rules old enough, and says so to readers.
async fn trims(store: &impl RuleStore, now: SystemTime) {
    let made = store
        .insert(vec![
            // expired 10 days ago, created 40 days ago
            draft("192.0.2.1", now - 40 * DAY, Some(now - 10 * DAY)),
            // expired 2 days ago, created 40 days ago
            draft("192.0.2.2", now - 40 * DAY, Some(now - 2 * DAY)),
            // expired 10 days ago, created 12 days ago
            draft("192.0.2.3", now - 12 * DAY, Some(now - 10 * DAY)),
            // never expires, created 400 days ago
            draft("192.0.2.4", now - 400 * DAY, None),
            // active, created 40 days ago
            draft("192.0.2.5", now - 40 * DAY, Some(now + DAY)),
        ])
        .await
        .unwrap();
    let present = |ids: Vec<RuleId>| async move {
        let mut here = HashSet::new();
        for id in ids {
            if store.get(id).await.unwrap().is_some() {
                here.insert(id);
            }
        }
        here
    };
    let before = version(store).await;
    // Expired 5+ days ago and created 30+ days ago: only the first.
    let trim = Trim::default().expired_days(5).created_days(30);
    assert_eq!(store.trim(trim, now).await.unwrap(), 1);
    assert_eq!(
        present(ids(&made)).await,
        ids(&made[1..]).into_iter().collect()
    );
    let (_, removed, _) = since(store.changes_since(before).await.unwrap());
    assert_eq!(removed, [made[0].id], "a trim is a change like any other");
    // Nothing more to trim by the same measure: the version stays.
    let after = version(store).await;
    assert_eq!(store.trim(trim, now).await.unwrap(), 0);
    assert_eq!(version(store).await, after);
    // Every expired rule (the default), and never an active or everlasting one.
    assert!(store.trim(Trim::default(), now).await.unwrap() >= 2);
    assert_eq!(
        present(ids(&made)).await,
        ids(&made[3..]).into_iter().collect()
    );
}

/// Seeding is idempotent, keeps what it seeded first, and follows the config.
async fn seeds(store: &impl RuleStore, now: SystemTime) {
    let seed = |key: &str, target: &str, created: SystemTime| {
        Seed::new(
            key,
            NewRule::block(t(target))
                .expires_after(DAY)
                .source(RuleSource::Config)
                .draft(created),
        )
    };
    let config = |created| {
        vec![
            seed("block 10.9.0.0/16 for 1d", "10.9.0.0/16", created),
            seed("block user:eve never", "user:eve", created),
        ]
    };
    let first = store.seed(config(now)).await.unwrap();
    assert_eq!(first.added.len(), 2);
    assert!(first.removed.is_empty());
    assert!(first.added.iter().all(|r| r.source == RuleSource::Config));
    let seeded = ids(&first.added);

    // A hundred restarts later: no copies, and the expiry did not move.
    let v = version(store).await;
    for _ in 0..100 {
        let again = store.seed(config(now + DAY / 2)).await.unwrap();
        assert!(again.added.is_empty() && again.removed.is_empty());
    }
    assert_eq!(
        version(store).await,
        v,
        "an unchanged config changes nothing"
    );
    let config_rules = listed(store, ListQuery::first(100).source(RuleSource::Config), now).await;
    assert_eq!(config_rules, seeded);
    assert_eq!(
        store.get(seeded[0]).await.unwrap().unwrap().expires,
        Some(now + DAY)
    );

    // An entry changed in the config replaces its rule; one taken out leaves.
    let changed = store
        .seed(vec![seed("block 10.9.0.0/16 for 2d", "10.9.0.0/16", now)])
        .await
        .unwrap();
    assert_eq!(changed.added.len(), 1);
    let mut removed = changed.removed.clone();
    removed.sort();
    assert_eq!(removed, seeded);
    assert_eq!(
        listed(store, ListQuery::first(100).source(RuleSource::Config), now).await,
        ids(&changed.added)
    );
    // Manual rules are never touched by seeding.
    assert!(
        !listed(store, ListQuery::first(100).source(RuleSource::Manual), now)
            .await
            .is_empty()
    );
    assert_eq!(
        store.seed(Vec::new()).await.unwrap().removed,
        ids(&changed.added)
    );
}

/// Writers racing on one store lose nothing and never share an id.
async fn concurrent_writers(store: &(impl RuleStore + Clone)) {
    let before = version(store).await;
    let tasks: Vec<_> = (0..8u8)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                for i in 0..25u8 {
                    let rule = draft(&format!("10.{w}.{i}.0/24"), now(), None);
                    mine.extend(store.insert(vec![rule]).await.unwrap());
                }
                mine
            })
        })
        .collect();
    let mut written = Vec::new();
    for task in tasks {
        written.extend(task.await.unwrap());
    }
    assert_eq!(written.len(), 200);
    let unique: HashSet<RuleId> = written.iter().map(|r| r.id).collect();
    assert_eq!(unique.len(), 200, "ids are never shared");
    for rule in &written {
        assert_eq!(store.get(rule.id).await.unwrap().as_ref(), Some(rule));
    }
    // A reader catching up sees every one of them.
    let (added, _, _) = since(store.changes_since(before).await.unwrap());
    let seen: HashSet<RuleId> = added.iter().map(|r| r.id).collect();
    assert!(unique.is_subset(&seen));
}

#[tokio::test]
async fn memory_store_passes() {
    acceptance(MemoryRuleStore::new()).await;
}

/// Every filter, and each pair of them, lists exactly the rules that pass it, by id, over
/// pages of every size: rules of each source, action, kind and state, interleaved.
async fn every_filter_lists_what_passes(store: &impl RuleStore, now: SystemTime) {
    let sources = [RuleSource::Manual, RuleSource::Config, RuleSource::Auto];
    let mut drafts = Vec::new();
    for i in 0..60u32 {
        let target = if i % 4 == 3 {
            format!("user:u{}", i % 8)
        } else {
            format!("192.0.2.{}", i % 16)
        };
        let mut rule = if i % 5 == 0 {
            NewRule::allow(t(&target))
        } else {
            NewRule::block(t(&target))
        }
        .source(sources[(i % 3) as usize]);
        if i % 7 < 3 {
            rule = rule.expires_at(now - DAY + Duration::from_secs(u64::from(i)));
        } else if i % 7 == 3 {
            rule = rule.expires_at(now + DAY);
        }
        drafts.push(rule.draft(now - 2 * DAY));
    }
    let rules = store.insert(drafts).await.unwrap();
    let mut queries = vec![ListQuery::first(1)];
    for target in ["192.0.2.3", "user:u3", "192.0.2.99"] {
        queries.push(ListQuery::first(1).target(t(target)));
    }
    for source in sources {
        queries.push(ListQuery::first(1).source(source));
    }
    for action in [RuleAction::Block, RuleAction::Allow] {
        queries.push(ListQuery::first(1).action(action));
    }
    for state in [RuleState::Active, RuleState::Expired] {
        queries.push(ListQuery::first(1).state(state));
    }
    let singles = queries.clone();
    for a in &singles[1..] {
        for b in &singles[1..] {
            let mut both = a.clone();
            let f = &b.filter;
            if let Some(target) = &f.target {
                both = both.target(target.clone());
            }
            if let Some(source) = f.source {
                both = both.source(source);
            }
            if let Some(action) = f.action {
                both = both.action(action);
            }
            if let Some(state) = f.state {
                both = both.state(state);
            }
            queries.push(both);
        }
    }
    for query in queries {
        let expected: Vec<RuleId> = rules
            .iter()
            .filter(|r| query.filter.matches(r, now))
            .map(|r| r.id)
            .collect();
        for size in [1, 2, 7, 100] {
            let mut sized = query.clone();
            sized.limit = size;
            assert_eq!(
                listed(store, sized, now).await,
                expected,
                "{:?}, pages of {size}",
                query.filter
            );
        }
    }
    for rule in rules {
        store.delete(rule.id).await.unwrap();
    }
}

/// With a state filter, rules that pass it but are rare among the others are all listed, in
/// order; a SQL store's page stops after [`LIST_SCAN_MAX`] rules examined, short but with a
/// cursor. Oldest first: 10 expired manual rules, `LIST_SCAN_MAX + 10` active ones, 5
/// expired ones, and an expired automatic one among the first.
async fn rare_states_are_listed_in_bounded_pages(store: &impl RuleStore, sql: bool) -> Vec<Rule> {
    let now = now();
    let expired = |target: &str| {
        NewRule::block(t(target))
            .expires_at(now - DAY)
            .draft(now - 2 * DAY)
    };
    let mut drafts: Vec<RuleDraft> = (0..10).map(|i| expired(&format!("10.0.0.{i}"))).collect();
    drafts.push(
        NewRule::block(t("10.0.1.1"))
            .source(RuleSource::Auto)
            .expires_at(now - DAY)
            .draft(now - 2 * DAY),
    );
    for i in 0..LIST_SCAN_MAX as u32 + 10 {
        drafts.push(NewRule::block(t(&format!("10.1.{}.{}", i / 256, i % 256))).draft(now));
    }
    drafts.extend((0..5).map(|i| expired(&format!("10.2.0.{i}"))));
    let mut rules = Vec::new();
    for chunk in drafts.chunks(5000) {
        rules.extend(store.insert(chunk.to_vec()).await.unwrap());
    }
    let manual_expired: Vec<RuleId> = rules
        .iter()
        .filter(|r| !r.is_active_at(now) && r.source == RuleSource::Manual)
        .map(|r| r.id)
        .collect();
    assert_eq!(manual_expired.len(), 15);
    let query = ListQuery::first(50)
        .source(RuleSource::Manual)
        .state(RuleState::Expired);
    assert_eq!(listed(store, query.clone(), now).await, manual_expired);
    let all_expired: Vec<RuleId> = rules
        .iter()
        .filter(|r| !r.is_active_at(now))
        .map(|r| r.id)
        .collect();
    let any_source = ListQuery::first(50).state(RuleState::Expired);
    assert_eq!(listed(store, any_source.clone(), now).await, all_expired);
    let active = listed(store, ListQuery::first(1000).state(RuleState::Active), now).await;
    assert_eq!(active.len(), LIST_SCAN_MAX + 10);
    if sql {
        // The first page examined the first LIST_SCAN_MAX manual rules: 10 expired among them.
        let first = store.list(query, now).await.unwrap();
        assert_eq!(ids(&first.rules), manual_expired[..10]);
        let scanned_to = rules
            .iter()
            .filter(|r| r.source == RuleSource::Manual)
            .nth(LIST_SCAN_MAX - 1)
            .unwrap()
            .id;
        assert_eq!(first.next, Some(scanned_to));
        let first = store.list(any_source, now).await.unwrap();
        assert_eq!(ids(&first.rules), all_expired[..11]);
        assert_eq!(first.next, Some(rules[LIST_SCAN_MAX - 1].id));
    }
    rules
}

#[tokio::test]
async fn memory_store_lists_every_filter() {
    let store = MemoryRuleStore::new();
    every_filter_lists_what_passes(&store, now()).await;
    rare_states_are_listed_in_bounded_pages(&store, false).await;
}

/// Every part of a listing reads an index (or the table by id) in id order: no whole-table
/// scan, no sort.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
async fn list_plans_use_indexes(store: &actix_bouncer::rules::SqlRuleStore) {
    let sqlite = format!("{store:?}").contains("SQLite");
    let plans = store.query_plans(now()).await.unwrap();
    assert!(plans.len() >= 12, "{plans:?}");
    for (name, plan) in plans {
        if sqlite {
            assert!(!plan.contains("SCAN bouncer_rules"), "{name}: {plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{name} sorts: {plan}");
        } else {
            assert!(plan.contains("Index"), "{name}: {plan}");
            assert!(
                !plan.contains("Seq Scan on bouncer_rules"),
                "{name}: {plan}"
            );
            assert!(!plan.contains("Sort"), "{name} sorts: {plan}");
        }
        if (name.contains("source") || name.contains("action")) && !name.contains("target") {
            assert!(plan.contains("bouncer_rules_source"), "{name}: {plan}");
        }
        if name.contains("target") {
            assert!(plan.contains("bouncer_rules_target"), "{name}: {plan}");
        }
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use actix_bouncer::rules::SqlRuleStore;

    use super::*;

    #[tokio::test]
    async fn in_memory_store_passes() {
        acceptance(SqlRuleStore::connect("sqlite::memory:").await.unwrap()).await;
    }

    #[tokio::test]
    async fn in_memory_store_lists_every_filter() {
        let store = SqlRuleStore::connect("sqlite::memory:").await.unwrap();
        every_filter_lists_what_passes(&store, now()).await;
        rare_states_are_listed_in_bounded_pages(&store, true).await;
        list_plans_use_indexes(&store).await;
    }

    #[tokio::test]
    async fn file_store_passes() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("rules.db").display());
        acceptance(SqlRuleStore::connect(&url).await.unwrap()).await;
    }

    #[tokio::test]
    async fn two_stores_on_one_file_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("rules.db").display());
        let a = SqlRuleStore::connect(&url).await.unwrap();
        let b = SqlRuleStore::connect(&url).await.unwrap();
        two_writers(a, b).await;
    }

    #[tokio::test]
    async fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("rules.db").display());
        let store = SqlRuleStore::connect(&url).await.unwrap();
        store.close().await;
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query("UPDATE bouncer_schema SET version = 99")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let error = SqlRuleStore::connect(&url).await.unwrap_err().to_string();
        assert!(
            error.contains("schema version 99") && error.contains("newer"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_row_written_badly_by_hand_is_skipped_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("rules.db").display());
        let store = SqlRuleStore::connect(&url).await.unwrap();
        let good = store
            .insert(vec![draft("203.0.113.9", now(), None)])
            .await
            .unwrap();
        // Another program writes garbage into the table.
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query(
            "INSERT INTO bouncer_rules (target, action, source, created_us, version) \
             VALUES ('not-an-ip', 'block', 'manual', 0, 99), \
                    (X'ff3a2c', 'block', 'manual', 0, 99), \
                    ('user:x', 'blok', 'manual', 0, 99)",
        )
        .execute(&pool)
        .await
        .unwrap();
        let loaded = store.active(now()).await.unwrap();
        assert_eq!(
            loaded.rules.len(),
            1,
            "the good rule loads, the bad rows (not an IP, not UTF-8, no such action) are skipped"
        );
        assert_eq!(listed(&store, ListQuery::first(1), now()).await, ids(&good));
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use actix_bouncer::rules::SqlRuleStore;

    use super::common::postgres::TestDatabase;
    use super::*;

    #[tokio::test]
    async fn postgres_store_passes() {
        let Some(db) = TestDatabase::create("postgres_store_passes").await else {
            return;
        };
        acceptance(SqlRuleStore::connect(&db.url).await.unwrap()).await;
    }

    #[tokio::test]
    async fn postgres_store_lists_every_filter() {
        let Some(db) = TestDatabase::create("postgres_store_lists_every_filter").await else {
            return;
        };
        let store = SqlRuleStore::connect(&db.url).await.unwrap();
        every_filter_lists_what_passes(&store, now()).await;
        rare_states_are_listed_in_bounded_pages(&store, true).await;
        // Statistics, for the planner to prefer the indexes.
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        sqlx::query("VACUUM ANALYZE bouncer_rules")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        list_plans_use_indexes(&store).await;
    }

    #[tokio::test]
    async fn two_postgres_stores_lose_nothing() {
        let Some(db) = TestDatabase::create("two_postgres_stores_lose_nothing").await else {
            return;
        };
        // Both migrate at once on an empty database: they take turns.
        let (a, b) = tokio::join!(
            SqlRuleStore::connect(&db.url),
            SqlRuleStore::connect(&db.url)
        );
        two_writers(a.unwrap(), b.unwrap()).await;
    }

    #[tokio::test]
    async fn a_newer_postgres_schema_is_refused() {
        let Some(db) = TestDatabase::create("a_newer_postgres_schema_is_refused").await else {
            return;
        };
        let store = SqlRuleStore::connect(&db.url).await.unwrap();
        store.close().await;
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        sqlx::query("UPDATE bouncer_schema SET version = 99")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let error = SqlRuleStore::connect(&db.url)
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("schema version 99"), "{error}");
    }
}

/// Two stores (two pools, as two instances have) writing at once: every rule lands, each
/// store sees the other's.
#[allow(dead_code)]
async fn two_writers<S: RuleStore + Clone>(a: S, b: S) {
    let start = version(&a).await;
    let (from_a, from_b) = tokio::join!(write_many(a.clone(), 1), write_many(b.clone(), 2));
    let all: HashSet<RuleId> = from_a.iter().chain(&from_b).map(|r| r.id).collect();
    assert_eq!(all.len(), 160);
    for store_sees in [
        a.changes_since(start).await.unwrap(),
        b.changes_since(start).await.unwrap(),
    ] {
        let (added, _, _) = since(store_sees);
        assert_eq!(added.iter().map(|r| r.id).collect::<HashSet<_>>(), all);
    }
}

#[allow(dead_code)]
async fn write_many<S: RuleStore>(store: S, prefix: u8) -> Vec<Rule> {
    let mut mine = Vec::new();
    for i in 0..40u8 {
        let rules = vec![
            draft(&format!("10.{prefix}.{i}.0/24"), now(), None),
            draft(&format!("user:{prefix}-{i}"), now(), None),
        ];
        mine.extend(store.insert(rules).await.unwrap());
    }
    mine
}
