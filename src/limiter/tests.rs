use std::num::{NonZeroU32, NonZeroUsize};

use super::bounded::shard_count;
use super::*;
use crate::clock::ManualClock;
use crate::setting::InvalidSetting;
use proptest::prelude::*;

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

fn nzu(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap()
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn limiter<K: Hash + Eq + Clone + Send + Sync + 'static>(
    policy: LimitPolicy,
) -> (Limiter<K>, ManualClock) {
    limiter_of(policy, 100_000)
}

fn limiter_of<K: Hash + Eq + Clone + Send + Sync + 'static>(
    policy: LimitPolicy,
    max_tracked_keys: usize,
) -> (Limiter<K>, ManualClock) {
    let clock = ManualClock::new();
    let l = Limiter::with_capacity(policy, nzu(max_tracked_keys), Arc::new(clock.clone()));
    (l, clock)
}

/// 2 hits per second; 60 s bans doubling up to 300 s.
fn banning() -> LimitPolicy {
    LimitPolicy::new(nz(2), secs(1))
        .unwrap()
        .with_ban(BanPolicy::new(secs(60), 2.0, secs(300)).unwrap())
}

fn allowed(hits: u32) -> LimitOutcome {
    LimitOutcome::Allowed { hits }
}

fn started(ban: u64, offence: u32) -> LimitOutcome {
    LimitOutcome::BanStarted {
        ban: secs(ban),
        offence,
    }
}

fn banned(remaining: Duration) -> LimitOutcome {
    LimitOutcome::Banned { remaining }
}

/// Drives `key` over the limit of [`banning`] and returns the outcome of the over-limit hit.
fn offend(l: &Limiter<u32>, key: u32) -> LimitOutcome {
    assert_eq!(l.check(&key), allowed(1));
    assert_eq!(l.check(&key), allowed(2));
    l.check(&key)
}

#[test]
fn limiter_is_send_sync_debug() {
    fn check<T: Send + Sync + fmt::Debug>() {}
    check::<Limiter<u128>>();
    check::<Limiter<std::net::IpAddr>>();
    let (l, _) = limiter::<u32>(banning());
    assert!(format!("{l:?}").contains("tracked_keys"));
}

#[test]
fn burst_then_limited_then_refill() {
    let (l, clock) = limiter::<u32>(LimitPolicy::new(nz(2), secs(1)).unwrap());
    assert_eq!(l.check(&1), allowed(1));
    assert_eq!(l.check(&1), allowed(2));
    assert_eq!(
        l.check(&1),
        LimitOutcome::Limited {
            retry_after: Duration::from_millis(500)
        }
    );
    clock.advance(Duration::from_millis(200));
    assert_eq!(
        l.check(&1),
        LimitOutcome::Limited {
            retry_after: Duration::from_millis(300)
        }
    );
    // One cell back.
    clock.advance(Duration::from_millis(300));
    assert_eq!(l.check(&1), allowed(2));
    assert!(matches!(l.check(&1), LimitOutcome::Limited { .. }));
    // Everything back.
    clock.advance(secs(1));
    assert_eq!(l.check(&1), allowed(1));
    // Other keys are independent.
    assert_eq!(l.check(&2), allowed(1));
}

#[test]
fn hits_count_up_to_the_burst() {
    let policy = LimitPolicy::new(nz(10), secs(60))
        .unwrap()
        .with_burst(nz(5));
    let (l, clock) = limiter::<&'static str>(policy);
    for n in 1..=5 {
        assert_eq!(l.check(&"k"), allowed(n));
    }
    let LimitOutcome::Limited { retry_after } = l.check(&"k") else {
        panic!("expected Limited")
    };
    assert_eq!(retry_after, secs(6));
    clock.advance(secs(6));
    assert_eq!(l.check(&"k"), allowed(5));
}

#[test]
fn ban_starts_counts_down_and_ends() {
    let (l, clock) = limiter::<u32>(banning());
    assert_eq!(offend(&l, 7), started(60, 1));
    assert_eq!(l.check(&7), banned(secs(60)));
    clock.advance(secs(10));
    assert_eq!(l.check(&7), banned(secs(50)));
    clock.advance(Duration::from_millis(49_999));
    assert_eq!(l.check(&7), banned(Duration::from_millis(1)));
    clock.advance(Duration::from_millis(1));
    assert_eq!(l.check(&7), allowed(1));
}

#[test]
fn bans_escalate_and_cap() {
    let (l, clock) = limiter::<u32>(banning());
    for (ban, offence) in [(60, 1), (120, 2), (240, 3), (300, 4), (300, 5)] {
        assert_eq!(offend(&l, 7), started(ban, offence));
        clock.advance(secs(ban));
    }
}

#[test]
fn offences_are_forgotten_after_max_ban_of_good_behaviour() {
    let (l, clock) = limiter::<u32>(banning());
    // Key 1: comes back just before the memory runs out: escalates.
    // Key 2: comes back exactly when it runs out: first offence again.
    assert_eq!(offend(&l, 1), started(60, 1));
    assert_eq!(offend(&l, 2), started(60, 1));
    clock.advance(secs(60) + secs(300) - Duration::from_nanos(1));
    assert_eq!(offend(&l, 1), started(120, 2));
    clock.advance(Duration::from_nanos(1));
    assert_eq!(offend(&l, 2), started(60, 1));
}

#[test]
fn banned_hits_are_not_counted_and_the_ban_wipes_the_count() {
    let policy = LimitPolicy::new(nz(3), secs(10))
        .unwrap()
        .with_ban(BanPolicy::new(secs(30), 1.0, secs(30)).unwrap());
    let (l, clock) = limiter::<u32>(policy);
    for n in 1..=3 {
        assert_eq!(l.check(&9), allowed(n));
    }
    assert_eq!(l.check(&9), started(30, 1));
    for _ in 0..1_000 {
        assert!(matches!(l.check(&9), LimitOutcome::Banned { .. }));
        clock.advance(Duration::from_millis(29));
    }
    // 30 s after the ban started: it is over.
    clock.advance(secs(1));
    // Full burst again: neither the banned hits nor the ones before the ban count.
    for n in 1..=3 {
        assert_eq!(l.check(&9), allowed(n));
    }
    assert_eq!(l.check(&9), started(30, 2));
}

#[test]
fn forgive_lifts_the_ban_and_the_offences() {
    let (l, _clock) = limiter::<u32>(banning());
    assert_eq!(offend(&l, 3), started(60, 1));
    assert!(l.forgive(&3));
    assert!(!l.forgive(&3));
    assert!(!l.forgive(&4));
    assert_eq!(offend(&l, 3), started(60, 1));
}

#[test]
fn sweep_and_forgive_keep_the_other_keys_state() {
    // 1,000 hits an hour: one cell every 3.6 s.
    let (l, clock) = limiter::<u32>(LimitPolicy::new(nz(1_000), secs(3_600)).unwrap());
    for key in 0..300 {
        assert_eq!(l.check(&key), allowed(1));
    }
    clock.advance(secs(2));
    for key in (0..300).step_by(2) {
        assert_eq!(l.check(&key), allowed(2));
    }
    // 4 s in: odd keys are refilled (their cell came back at 3.6 s), even ones are not.
    clock.advance(secs(2));
    assert_eq!(l.sweep(), 150);
    for key in (0..300).step_by(6) {
        assert!(l.forgive(&key));
    }
    assert_eq!(l.tracked_keys(), 100);
    for key in 0..300 {
        let expected = if key % 2 == 1 || key % 6 == 0 { 1 } else { 2 };
        assert_eq!(l.check(&key), allowed(expected), "key {key}");
    }
}

#[test]
fn tracked_keys_never_exceed_the_cap() {
    for max in [1, 2, 3, 15, 16, 17, 100, 1_000, 1_025] {
        // No background sweep: only a sweep removes keys, and this test counts them exactly
        // (a CI run once saw 75 of 100 here, a sweep racing the refill being the one way).
        let clock = ManualClock::new();
        let l = Limiter::<u64>::with_sweep_every(
            banning(),
            nzu(max),
            Arc::new(clock.clone()),
            Duration::from_secs(365 * 24 * 3600),
        );
        for key in 0..(10 * max as u64) {
            l.check(&key);
            if key % 7 == 0 {
                clock.advance(Duration::from_millis(3));
            }
            assert!(l.tracked_keys() <= max, "max {max}: {}", l.tracked_keys());
        }
        // With every key idle, the store fills up to its cap exactly.
        clock.advance(secs(10));
        for key in 0..(10 * max as u64) {
            l.check(&(key + 1_000_000));
        }
        assert_eq!(l.tracked_keys(), max);
    }
}

/// Runs 100,000 one-shot keys with a heavy hitter as every 100th request; 10 µs apart.
fn flood(l: &Limiter<u64>, clock: &ManualClock, heavy: u64) -> Vec<LimitOutcome> {
    let mut heavy_outcomes = Vec::new();
    for i in 0..100_000u64 {
        if i % 100 == 0 {
            heavy_outcomes.push(l.check(&heavy));
        } else {
            assert_eq!(l.check(&i), allowed(1));
        }
        clock.advance(Duration::from_micros(10));
        if i % 1_000 == 0 {
            assert!(l.tracked_keys() <= 1_000);
        }
    }
    assert!(l.tracked_keys() <= 1_000);
    heavy_outcomes
}

#[test]
fn heavy_hitter_survives_a_flood_and_gets_banned() {
    let policy = LimitPolicy::new(nz(60), secs(60))
        .unwrap()
        .with_ban(BanPolicy::new(secs(600), 2.0, secs(3600)).unwrap());
    let (l, clock) = limiter_of::<u64>(policy, 1_000);
    let heavy = u64::MAX;
    let outcomes = flood(&l, &clock, heavy);
    // 60 allowed (the 61st hit comes 60 ms in, well inside the window), then one ban.
    assert!(outcomes[..60]
        .iter()
        .enumerate()
        .all(|(i, o)| *o == allowed(i as u32 + 1)));
    assert_eq!(outcomes[60], started(600, 1));
    assert!(outcomes[61..]
        .iter()
        .all(|o| matches!(o, LimitOutcome::Banned { .. })));
    assert!(matches!(l.check(&heavy), LimitOutcome::Banned { .. }));
}

#[test]
fn heavy_hitter_survives_a_flood_and_stays_limited() {
    let policy = LimitPolicy::new(nz(60), secs(60)).unwrap();
    let (l, clock) = limiter_of::<u64>(policy, 1_000);
    let outcomes = flood(&l, &clock, u64::MAX);
    let allowed_hits = outcomes
        .iter()
        .filter(|o| matches!(o, LimitOutcome::Allowed { .. }))
        .count();
    // 60 at once; the flood's last heavy hit comes 999 ms in, just before a cell refills.
    assert_eq!(allowed_hits, 60);
    assert!(outcomes[60..]
        .iter()
        .all(|o| matches!(o, LimitOutcome::Limited { .. })));
    // 1 s in: one cell back, so 60 of 60 in use again.
    assert_eq!(l.check(&u64::MAX), allowed(60));
    assert_eq!(
        l.check(&u64::MAX),
        LimitOutcome::Limited {
            retry_after: secs(1)
        }
    );
}

#[test]
fn banned_keys_survive_a_flood() {
    let (l, clock) = limiter_of::<u64>(banning(), 1_024);
    let bad = [u64::MAX, u64::MAX - 1, u64::MAX - 2, u64::MAX - 3];
    for key in bad {
        l.check(&key);
        l.check(&key);
        assert_eq!(l.check(&key), started(60, 1));
    }
    for key in 0..20_000u64 {
        l.check(&key);
        clock.advance(Duration::from_micros(100));
    }
    for key in bad {
        assert!(matches!(l.check(&key), LimitOutcome::Banned { .. }));
    }
}

#[test]
fn sweep_drops_idle_keys_and_keeps_banned_ones() {
    let (l, clock) = limiter::<u32>(banning());
    l.check(&1);
    l.check(&2);
    assert_eq!(offend(&l, 3), started(60, 1));
    assert_eq!(l.sweep(), 0); // everything still carries information
    assert_eq!(l.tracked_keys(), 3);
    clock.advance(secs(1));
    assert_eq!(l.sweep(), 2);
    assert_eq!(l.tracked_keys(), 1);
    assert!(matches!(l.check(&3), LimitOutcome::Banned { .. }));
    // The ban ends after 60 s, the offence is remembered for 300 s more.
    clock.advance(secs(59 + 300) - Duration::from_nanos(1));
    assert_eq!(l.sweep(), 0);
    clock.advance(Duration::from_nanos(1));
    assert_eq!(l.sweep(), 1);
    assert_eq!(l.tracked_keys(), 0);
}

#[test]
fn sweeper_thread_sweeps_and_exits_on_drop() {
    let clock = ManualClock::new();
    let l = Limiter::<u32>::with_sweep_every(
        banning(),
        nzu(100_000),
        Arc::new(clock.clone()),
        Duration::from_millis(1),
    );
    for key in 0..100 {
        l.check(&key);
    }
    clock.advance(secs(1));
    // Wait (without sleeping) for the thread's next round; give up after 10 s of real time.
    let deadline = std::time::Instant::now() + secs(10);
    while l.tracked_keys() > 0 && std::time::Instant::now() < deadline {
        std::thread::yield_now();
    }
    assert_eq!(l.tracked_keys(), 0);

    let store = Arc::clone(&l.store);
    assert_eq!(Arc::weak_count(&store), 1); // the sweeper's
    drop(l);
    assert_eq!(Arc::weak_count(&store), 0);
    assert_eq!(Arc::strong_count(&store), 1);
}

#[test]
fn dropping_many_limiters_leaves_no_threads() {
    let stores: Vec<_> = (0..50)
        .map(|_| {
            let (l, _) = limiter::<u32>(banning()); // 10 s sweep period
            let store = Arc::clone(&l.store);
            assert_eq!(Arc::weak_count(&store), 1);
            store
        })
        .collect();
    assert!(stores.iter().all(|s| Arc::weak_count(s) == 0));
}

#[test]
fn four_threads_never_get_more_than_the_burst() {
    let policy = LimitPolicy::new(nz(10), secs(1))
        .unwrap()
        .with_burst(nz(25));
    let (l, _frozen) = limiter::<u32>(policy);
    let allowed = std::sync::atomic::AtomicU32::new(0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..5_000 {
                    if let LimitOutcome::Allowed { hits } = l.check(&42) {
                        assert!((1..=25).contains(&hits));
                        allowed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(allowed.into_inner(), 25);
}

#[test]
fn four_threads_ban_exactly_once() {
    let (l, _frozen) = limiter::<u32>(banning());
    let bans = std::sync::atomic::AtomicU32::new(0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..2_000 {
                    if let LimitOutcome::BanStarted { .. } = l.check(&1) {
                        bans.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(bans.into_inner(), 1);
}

fn field_of(err: InvalidSetting) -> String {
    err.field().to_owned()
}

#[test]
fn policy_validation_names_the_field() {
    let e = |r: Result<LimitPolicy, InvalidSetting>| field_of(r.unwrap_err());
    assert_eq!(e(LimitPolicy::new(nz(1), Duration::ZERO)), "per");
    assert_eq!(e(LimitPolicy::new(nz(10), Duration::from_nanos(9))), "per");
    assert!(LimitPolicy::new(nz(10), Duration::from_nanos(10)).is_ok());
    assert_eq!(e(LimitPolicy::new(nz(1), Duration::MAX)), "per");

    let b = |r: Result<BanPolicy, InvalidSetting>| field_of(r.unwrap_err());
    assert_eq!(b(BanPolicy::new(Duration::ZERO, 2.0, secs(1))), "ban_for");
    for growth in [0.99, -1.0, f64::NAN, f64::INFINITY] {
        assert_eq!(b(BanPolicy::new(secs(1), growth, secs(1))), "ban_growth");
    }
    assert_eq!(b(BanPolicy::new(secs(2), 1.0, secs(1))), "max_ban");
    assert!(BanPolicy::new(secs(2), 1.0, secs(2)).is_ok());
}

/// fail2ban bans for as long as it counts by default; the crawler-blocker article blocks for
/// the timeout it counts over. A ban as long as the window, or shorter, is accepted and works.
#[test]
fn bans_as_long_as_the_window_or_shorter_work() {
    for ban in [secs(60), secs(10)] {
        let policy = LimitPolicy::new(nz(2), secs(60))
            .unwrap()
            .with_ban(BanPolicy::new(ban, 1.0, ban).unwrap());
        let (l, clock) = limiter::<u32>(policy);
        assert_eq!(l.check(&1), allowed(1));
        assert_eq!(l.check(&1), allowed(2));
        assert_eq!(l.check(&1), LimitOutcome::BanStarted { ban, offence: 1 });
        clock.advance(ban - Duration::from_nanos(1));
        assert!(matches!(l.check(&1), LimitOutcome::Banned { .. }));
        clock.advance(Duration::from_nanos(1));
        // The ban wiped the count: a full burst again.
        assert_eq!(l.check(&1), allowed(1));
    }
}

#[test]
fn policy_accessors_and_defaults() {
    let p = LimitPolicy::new(nz(60), secs(60)).unwrap();
    assert_eq!(p.hits(), nz(60));
    assert_eq!(p.per(), secs(60));
    assert_eq!(p.burst(), nz(60));
    assert_eq!(p.ban(), None);
    let p = p.with_burst(nz(5));
    assert_eq!(p.burst(), nz(5));
    // A burst that would take more than ~146 years to refill is capped.
    let yearly = LimitPolicy::new(nz(1), secs(365 * 86_400))
        .unwrap()
        .with_burst(nz(u32::MAX));
    assert!(yearly.burst().get() < 200 && yearly.burst().get() > 100);
    let (l, _) = limiter::<u8>(yearly.clone());
    for n in 1..=yearly.burst().get() {
        assert_eq!(l.check(&0), allowed(n));
    }
    assert!(matches!(l.check(&0), LimitOutcome::Limited { .. }));
}

#[test]
fn ban_lengths() {
    let ban = BanPolicy::new(secs(600), 2.0, secs(3600)).unwrap();
    assert_eq!(ban.ban_length(0), secs(600));
    assert_eq!(ban.ban_length(1), secs(600));
    assert_eq!(ban.ban_length(2), secs(1200));
    assert_eq!(ban.ban_length(3), secs(2400));
    assert_eq!(ban.ban_length(4), secs(3600));
    assert_eq!(ban.ban_length(u32::MAX), secs(3600));
    let flat = BanPolicy::new(secs(600), 1.0, secs(3600)).unwrap();
    assert_eq!(flat.ban_length(u32::MAX), secs(600));
    let huge = BanPolicy::new(Duration::MAX, 3.0, Duration::MAX).unwrap();
    assert_eq!(huge.ban_length(2), Duration::MAX);
}

#[test]
fn huge_bans_saturate() {
    let policy = LimitPolicy::new(nz(1), secs(1))
        .unwrap()
        .with_ban(BanPolicy::new(Duration::MAX, 2.0, Duration::MAX).unwrap());
    let (l, clock) = limiter::<u8>(policy);
    assert_eq!(l.check(&0), allowed(1));
    assert_eq!(
        l.check(&0),
        LimitOutcome::BanStarted {
            ban: Duration::MAX,
            offence: 1
        }
    );
    clock.advance(secs(100 * 365 * 86_400));
    assert!(matches!(l.check(&0), LimitOutcome::Banned { .. }));
    assert_eq!(l.sweep(), 0);
}

#[test]
fn shard_counts() {
    assert_eq!(shard_count(1), 1);
    assert_eq!(shard_count(31), 1);
    assert_eq!(shard_count(32), 2);
    assert_eq!(shard_count(1_000), 32);
    assert_eq!(shard_count(1_024), 64);
    assert_eq!(shard_count(usize::MAX), 64);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn prop_store_stays_within_its_cap(
        max in 1usize..300,
        keys in proptest::collection::vec((0u16..2_000, 0u64..5_000), 1..2_000),
    ) {
        let (l, clock) = limiter_of::<u16>(banning(), max);
        for (key, step_ms) in keys {
            l.check(&key);
            clock.advance(Duration::from_millis(step_ms));
            prop_assert!(l.tracked_keys() <= max);
        }
        l.sweep();
        prop_assert!(l.tracked_keys() <= max);
    }

    /// Checks, forgives and sweeps against a plain map (frozen clock, no eviction): the
    /// slab and its index stay consistent through `swap_remove`s.
    #[test]
    fn prop_matches_a_model_without_eviction(
        ops in proptest::collection::vec((0u8..4, 0u16..200), 1..600),
    ) {
        let policy = LimitPolicy::new(nz(1_000), secs(3_600)).unwrap();
        let (l, _frozen) = limiter::<u16>(policy);
        let mut model = std::collections::HashMap::<u16, u32>::new();
        for (op, key) in ops {
            match op {
                0 | 1 => {
                    let hits = model.entry(key).or_default();
                    *hits += 1;
                    prop_assert_eq!(l.check(&key), allowed(*hits));
                }
                2 => prop_assert_eq!(l.forgive(&key), model.remove(&key).is_some()),
                _ => prop_assert_eq!(l.sweep(), 0),
            }
            prop_assert_eq!(l.tracked_keys(), model.len());
        }
    }

    #[test]
    fn prop_ban_length_grows_to_the_cap(
        ban_ms in 1u64..10_000_000,
        growth in 1.0f64..10.0,
        extra_ms in 0u64..100_000_000,
        offence in 1u32..100,
    ) {
        let ban = BanPolicy::new(
            Duration::from_millis(ban_ms),
            growth,
            Duration::from_millis(ban_ms + extra_ms),
        ).unwrap();
        let this = ban.ban_length(offence);
        let next = ban.ban_length(offence + 1);
        prop_assert!(this >= ban.ban_for() && this <= ban.max_ban());
        prop_assert!(next >= this);
    }
}

fn memory_store(max: usize) -> (MemoryCounterStore, ManualClock) {
    let clock = ManualClock::new();
    (
        MemoryCounterStore::new(nzu(max), Arc::new(clock.clone())),
        clock,
    )
}

fn client(i: u32) -> Subject<'static> {
    let ip = std::net::IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 | i));
    let resolver = crate::client_ip::ClientIpResolver::new(vec![], vec![], 32, 64);
    Subject::Client(resolver.key_for(ip))
}

#[test]
fn a_store_keeps_limits_apart_and_registers_each_once() {
    let (store, _clock) = memory_store(1_000);
    let two = LimitPolicy::new(nz(2), secs(60)).unwrap();
    let global = store.register("global", &two);
    assert_eq!(store.register("global", &two), global);
    let login = store.register("login", &two);
    assert_ne!(login, global);
    // Same name, another rate: counted apart.
    let other = store.register("login", &LimitPolicy::new(nz(3), secs(60)).unwrap());
    assert_ne!(other, login);

    assert_eq!(store.hit(global, client(1)), allowed(1));
    assert_eq!(store.hit(global, client(1)), allowed(2));
    assert!(matches!(
        store.hit(global, client(1)),
        LimitOutcome::Limited { .. }
    ));
    assert_eq!(
        store.hit(login, client(1)),
        allowed(1),
        "another limit, another count"
    );
    assert_eq!(store.hit(login, Subject::User("alice")), allowed(1));
    assert_eq!(store.hit(login, Subject::User("alice")), allowed(2));
    assert_eq!(store.hit(login, Subject::User("bob")), allowed(1));
    assert_eq!(CounterStore::tracked_keys(&store), 4);
}

#[actix_web::test]
async fn a_store_bans_lists_and_unbans() {
    let (store, clock) = memory_store(1_000);
    let slot = store.register("global", &banning());
    assert!(store.bans().await.unwrap().is_empty());
    store.ban(slot, client(7), secs(120)).await.unwrap();
    store
        .ban(slot, Subject::User("mallory"), secs(60))
        .await
        .unwrap();
    assert!(matches!(
        store.hit(slot, client(7)),
        LimitOutcome::Banned { .. }
    ));
    let bans = store.bans().await.unwrap();
    assert_eq!(bans.len(), 2);
    assert!(
        matches!(bans[0].key, BannedKey::HashedUser(_)),
        "soonest end first"
    );
    assert_eq!(bans[1].remaining, secs(120));
    assert_eq!(&*bans[1].limit, "global");
    clock.advance(secs(60));
    assert_eq!(
        store.bans().await.unwrap().len(),
        1,
        "a ban that ended is not listed"
    );
    // An operator's ban survives sweeps until it ends, and an unban lifts it at once.
    assert_eq!(store.sweep(), 1);
    assert!(matches!(
        store.hit(slot, client(7)),
        LimitOutcome::Banned { .. }
    ));
    assert!(store.unban(client(7)).await.unwrap());
    assert_eq!(store.hit(slot, client(7)), allowed(1));
    assert!(!store.unban(client(8)).await.unwrap());
}

#[test]
fn every_limit_of_a_store_shares_its_cap() {
    let (store, clock) = memory_store(100);
    let policy = LimitPolicy::new(nz(10), secs(1)).unwrap();
    let slots: Vec<_> = (0..5)
        .map(|i| store.register(&format!("limit {i}"), &policy))
        .collect();
    for i in 0..2_000 {
        for &slot in &slots {
            store.hit(slot, client(i));
        }
        clock.advance(Duration::from_millis(1));
        assert!(CounterStore::tracked_keys(&store) <= 100);
    }
    assert_eq!(CounterStore::tracked_keys(&store), 100);
}
