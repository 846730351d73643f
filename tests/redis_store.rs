//! The Redis counter store against a real Redis: when `BOUNCER_TEST_REDIS` names one
//! (`redis://127.0.0.1:6379/`; `.ci/run` sets it), and skipped, saying so, when it does not.
//! Each test uses a key prefix of its own, so they run in parallel against one server. The
//! outage test starts and kills a disposable `redis-server` of its own.
#![cfg(feature = "redis")]

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_bouncer::client_ip::ClientIpResolver;
use actix_bouncer::clock::ManualClock;
use actix_bouncer::limiter::{
    BanPolicy, BannedKey, CounterStore, FailPolicy, LimitOutcome, LimitPolicy, LimitSlot,
    RedisCounterStore, Subject,
};

const VAR: &str = "BOUNCER_TEST_REDIS";

/// The server's URL, or `None` (reported as skipped).
fn server(test: &str) -> Option<String> {
    match std::env::var(VAR) {
        Ok(url) => Some(url),
        Err(_) => {
            // Straight to stderr: the harness captures `eprintln!`, and a skip must be seen.
            let _ = writeln!(
                std::io::stderr().lock(),
                "{test}: skipped: BOUNCER_TEST_REDIS not set (set {VAR}=redis://127.0.0.1:6379/)"
            );
            None
        }
    }
}

/// A prefix no other test (nor an earlier run) uses.
fn prefix(test: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "bt:{test}:{}:{}:{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn key_of(i: u32) -> actix_bouncer::client_ip::ClientKey {
    let resolver = ClientIpResolver::new(vec![], vec![], 32, 64);
    resolver.key_for(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | i)))
}

fn client(i: u32) -> Subject<'static> {
    Subject::Client(key_of(i))
}

fn policy(hits: u32, per: Duration) -> LimitPolicy {
    LimitPolicy::new(hits.try_into().unwrap(), per).unwrap()
}

fn banning(hits: u32, per: Duration) -> LimitPolicy {
    policy(hits, per)
        .with_ban(BanPolicy::new(Duration::from_secs(60), 2.0, Duration::from_secs(3600)).unwrap())
}

/// A store on `url` under `prefix`, with a manual clock for its local state; the round-trip
/// bound is generous, as the test machine is shared.
fn store(url: &str, prefix: &str) -> RedisCounterStore {
    RedisCounterStore::builder(url)
        .prefix(prefix)
        .timeout(Duration::from_millis(500))
        .clock(Arc::new(ManualClock::new()))
        .build()
        .unwrap()
}

/// Polls `done` every millisecond until it holds or `within` has passed; how long it took.
async fn within(within: Duration, mut done: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < within {
        if done() {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    done().then(|| start.elapsed())
}

/// Waits until every store is connected and subscribed to the ban channel.
async fn ready(stores: &[&RedisCounterStore]) {
    let up = within(Duration::from_secs(10), || {
        stores.iter().all(|s| {
            let stats = s.redis_stats();
            stats.connected && stats.subscribed
        })
    })
    .await;
    assert!(
        up.is_some(),
        "the stores did not connect: {:?}",
        stores.iter().map(|s| s.redis_stats()).collect::<Vec<_>>()
    );
}

fn is_banned(outcome: LimitOutcome) -> bool {
    matches!(
        outcome,
        LimitOutcome::Banned { .. } | LimitOutcome::BanStarted { .. }
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_spread_over_three_instances_is_held_to_the_bound() {
    let Some(url) = server("a_client_spread_over_three_instances_is_held_to_the_bound") else {
        return;
    };
    let prefix = prefix("bound");
    let stores: Vec<_> = (0..3).map(|_| store(&url, &prefix)).collect();
    ready(&stores.iter().collect::<Vec<_>>()).await;
    // 30 an hour: nothing refills during the test.
    const LIMIT: u32 = 30;
    let slots: Vec<LimitSlot> = stores
        .iter()
        .map(|s| s.register("global", &policy(LIMIT, Duration::from_secs(3600))))
        .collect();
    // Each sync interval, the client sends K requests to each instance.
    const K: u32 = 4;
    let mut accepted = 0;
    for _round in 0..30 {
        for (store, &slot) in stores.iter().zip(&slots) {
            for _ in 0..K {
                if matches!(store.hit(slot, client(1)), LimitOutcome::Allowed { .. }) {
                    accepted += 1;
                }
            }
        }
        for store in &stores {
            store.sync().await.unwrap();
        }
    }
    eprintln!("accepted {accepted} of {} (limit {LIMIT})", 30 * 3 * K);
    // The stated bound: limit + N × (hits one instance accepts in one interval).
    assert!(
        accepted <= LIMIT + 3 * K,
        "accepted {accepted}, bound {}",
        LIMIT + 3 * K
    );
    // Far below what three independent limiters would let through (3 × 30 = 90), and at
    // least the limit: the sharing does not undercount.
    assert!(accepted >= LIMIT, "accepted only {accepted}");
    // Over the limit, the instances refuse locally: no Redis command for the refused hits.
    let before: u64 = stores.iter().map(|s| s.redis_stats().commands).sum();
    for (store, &slot) in stores.iter().zip(&slots) {
        for _ in 0..100 {
            assert!(matches!(
                store.hit(slot, client(1)),
                LimitOutcome::Limited { .. }
            ));
        }
        store.sync().await.unwrap();
    }
    let after: u64 = stores.iter().map(|s| s.redis_stats().commands).sum();
    assert_eq!(after, before, "refused hits cost no Redis operation");
    // Another client is untouched.
    assert_eq!(
        stores[1].hit(slots[1], client(2)),
        LimitOutcome::Allowed { hits: 1 }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_on_one_instance_holds_on_the_others_within_200ms_and_so_does_the_unban() {
    let Some(url) = server("a_ban_on_one_instance_holds_on_the_others") else {
        return;
    };
    let prefix = prefix("bans");
    let (a, b, c) = (
        store(&url, &prefix),
        store(&url, &prefix),
        store(&url, &prefix),
    );
    ready(&[&a, &b, &c]).await;
    let p = banning(1_000, Duration::from_secs(3600));
    let (sa, sb, sc) = (
        a.register("global", &p),
        b.register("global", &p),
        c.register("global", &p),
    );

    // An operator's ban on A.
    a.ban(sa, client(5), Duration::from_secs(600))
        .await
        .unwrap();
    assert!(is_banned(a.hit(sa, client(5))));
    let took = within(Duration::from_millis(200), || {
        is_banned(b.hit(sb, client(5))) && is_banned(c.hit(sc, client(5)))
    })
    .await;
    assert!(
        took.is_some(),
        "the ban did not reach B and C within 200 ms"
    );

    // Listed from Redis by any instance, with the time left.
    let bans = c.bans().await.unwrap();
    assert_eq!(bans.len(), 1);
    assert_eq!(&*bans[0].limit, "global");
    assert!(matches!(bans[0].key, BannedKey::Client(_)));
    assert!(bans[0].remaining > Duration::from_secs(590));

    // The unban, from B, reaches A and C.
    assert!(b.unban(client(5)).await.unwrap());
    let took = within(Duration::from_millis(200), || {
        matches!(a.hit(sa, client(5)), LimitOutcome::Allowed { .. })
            && matches!(c.hit(sc, client(5)), LimitOutcome::Allowed { .. })
    })
    .await;
    assert!(
        took.is_some(),
        "the unban did not reach A and C within 200 ms"
    );
    assert!(c.bans().await.unwrap().is_empty());

    // A ban a limit starts on one instance (here the user went over on A alone) is shared
    // by the background sync.
    // (B's own hits, one a millisecond, stay far below the limit.)
    let login = banning(1_000, Duration::from_secs(3600));
    let (la, lb) = (a.register("login", &login), b.register("login", &login));
    let user = Subject::User("mallory|x");
    for _ in 0..1_000 {
        assert!(matches!(a.hit(la, user), LimitOutcome::Allowed { .. }));
    }
    assert!(matches!(
        a.hit(la, user),
        LimitOutcome::BanStarted { offence: 1, .. }
    ));
    let took = within(Duration::from_millis(200), || {
        matches!(b.hit(lb, user), LimitOutcome::Banned { .. })
    })
    .await;
    assert!(
        took.is_some(),
        "a limit's ban did not reach B within 200 ms"
    );
    let bans = b.bans().await.unwrap();
    assert!(bans
        .iter()
        .any(|ban| ban.key == BannedKey::User("mallory|x".into()) && &*ban.limit == "login"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_count_starts_bans_that_every_instance_enforces() {
    let Some(url) = server("the_shared_count_starts_bans") else {
        return;
    };
    let prefix = prefix("shared-ban");
    let (a, b) = (store(&url, &prefix), store(&url, &prefix));
    ready(&[&a, &b]).await;
    let p = banning(10, Duration::from_secs(3600));
    let (sa, sb) = (a.register("global", &p), b.register("global", &p));
    // 8 on each: neither instance alone is over 10, together they are.
    for _ in 0..8 {
        assert!(matches!(a.hit(sa, client(9)), LimitOutcome::Allowed { .. }));
        assert!(matches!(b.hit(sb, client(9)), LimitOutcome::Allowed { .. }));
    }
    a.sync().await.unwrap();
    b.sync().await.unwrap();
    // B's sync crossed the limit: B reports the ban as started once (events, automatic
    // rules), then as running; A learns it from the channel.
    assert!(matches!(
        b.hit(sb, client(9)),
        LimitOutcome::BanStarted { offence: 1, .. }
    ));
    assert!(matches!(b.hit(sb, client(9)), LimitOutcome::Banned { .. }));
    let took = within(Duration::from_millis(200), || {
        is_banned(a.hit(sa, client(9)))
    })
    .await;
    assert!(took.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_keeps_limits_apart_and_lists_and_lifts_user_bans() {
    let Some(url) = server("a_store_keeps_limits_apart") else {
        return;
    };
    let prefix = prefix("accept");
    let s = store(&url, &prefix);
    ready(&[&s]).await;
    let two = policy(2, Duration::from_secs(60));
    let global = s.register("global", &two);
    assert_eq!(s.register("global", &two), global);
    let login = s.register("login", &two);
    assert_ne!(login, global);
    assert_eq!(s.hit(global, client(1)), LimitOutcome::Allowed { hits: 1 });
    assert_eq!(s.hit(global, client(1)), LimitOutcome::Allowed { hits: 2 });
    assert!(matches!(
        s.hit(global, client(1)),
        LimitOutcome::Limited { .. }
    ));
    assert_eq!(s.hit(login, client(1)), LimitOutcome::Allowed { hits: 1 });
    assert_eq!(s.tracked_keys(), 2);
    s.sync().await.unwrap();

    s.ban(login, Subject::User("eve"), Duration::from_secs(60))
        .await
        .unwrap();
    s.ban(global, client(3), Duration::from_secs(120))
        .await
        .unwrap();
    let bans = s.bans().await.unwrap();
    assert_eq!(bans.len(), 2);
    assert_eq!(
        bans[0].key,
        BannedKey::User("eve".into()),
        "soonest end first"
    );
    assert!(s.unban(Subject::User("eve")).await.unwrap());
    assert_eq!(
        s.hit(login, Subject::User("eve")),
        LimitOutcome::Allowed { hits: 1 }
    );
    assert!(!s.unban(Subject::User("nobody")).await.unwrap());
    assert_eq!(s.bans().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_values_in_redis_are_treated_as_missing_and_reported() {
    let Some(url) = server("malformed_values_in_redis") else {
        return;
    };
    let prefix = prefix("malformed");
    let s = store(&url, &prefix);
    ready(&[&s]).await;
    let slot = s.register("global", &policy(100, Duration::from_secs(60)));
    s.hit(slot, Subject::User("u1"));
    s.hit(slot, Subject::User("u2"));
    s.sync().await.unwrap();
    // Someone writes garbage over the state of u1, and a string where u2's hash was.
    let mut conn = redis_conn(&url).await;
    redis::cmd("HSET")
        .arg(format!("{prefix}:s:global|u:u1"))
        .arg("tat")
        .arg("not a number")
        .exec_async(&mut conn)
        .await
        .unwrap();
    redis::cmd("SET")
        .arg(format!("{prefix}:s:global|u:u2"))
        .arg("oops")
        .exec_async(&mut conn)
        .await
        .unwrap();
    redis::cmd("SET")
        .arg(format!("{prefix}:ban:global|zz"))
        .arg("x")
        .arg("PX")
        .arg(60_000)
        .exec_async(&mut conn)
        .await
        .unwrap();
    s.hit(slot, Subject::User("u1"));
    s.hit(slot, Subject::User("u2"));
    s.sync().await.unwrap();
    assert!(s.bans().await.unwrap().is_empty());
    assert!(s.redis_stats().malformed >= 3, "{:?}", s.redis_stats());
    // Both count again from scratch.
    s.hit(slot, Subject::User("u2"));
    s.sync().await.unwrap();
    assert_eq!(
        s.hit(slot, Subject::User("u1")),
        LimitOutcome::Allowed { hits: 3 }
    );
}

/// A connection of the test's own; its replies may take a few seconds on a loaded machine.
async fn redis_conn(url: &str) -> redis::aio::MultiplexedConnection {
    let config =
        redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(5)));
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_expire_so_redis_does_not_grow() {
    let Some(url) = server("keys_expire_so_redis_does_not_grow") else {
        return;
    };
    // A database of its own, so that DBSIZE counts this test's keys only.
    let base = url.trim_end_matches('/');
    let base = match base.rsplit_once('/') {
        Some((head, db)) if db.parse::<u32>().is_ok() && head.contains("//") => head,
        _ => base,
    };
    let url = format!("{base}/13");
    let mut conn = redis_conn(&url).await;
    redis::cmd("FLUSHDB").exec_async(&mut conn).await.unwrap();
    let prefix = prefix("expiry");
    let s = store(&url, &prefix);
    ready(&[&s]).await;
    // 5 in 2 s, 5 hits each: a key's state has refilled, and expires, 2 s after its sync.
    let slot = s.register("global", &policy(5, Duration::from_secs(2)));
    for i in 0..2_000 {
        for _ in 0..5 {
            s.hit(slot, client(i));
        }
    }
    s.sync().await.unwrap();
    let size: u64 = redis::cmd("DBSIZE").query_async(&mut conn).await.unwrap();
    let count = |pattern: String| {
        let mut conn = conn.clone();
        async move {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(pattern)
                .query_async(&mut conn)
                .await
                .unwrap();
            keys.len() as u64
        }
    };
    let states = count(format!("{prefix}:s:*")).await;
    let batches = count(format!("{prefix}:batch:*")).await;
    assert_eq!(states, 2_000, "one key per client");
    // One id per batch of up to 128 keys (kept 10 s), and the registry of limit names.
    assert!(batches >= 2_000u64.div_ceil(128), "{batches} batches");
    assert_eq!(size, states + batches + 1);
    // Redis expires them on its own clock: poll, for at most 15 s. What stays is the registry
    // of limit names (one small set, as many names as limits).
    let mut left = size;
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        left = redis::cmd("DBSIZE").query_async(&mut conn).await.unwrap();
        if left == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(left, 1, "every key expired but the registry");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(keys[0].ends_with(":limits"), "{keys:?}");
}

// ---------------------------------------------------------------- outage

/// A `redis-server` of the test's own, killed on drop.
struct Disposable {
    child: Child,
    port: u16,
}

impl Disposable {
    fn start(port: u16) -> Option<Disposable> {
        Self::start_with(port, &["--save", "", "--appendonly", "no"])
    }

    /// With `args` after the port.
    fn start_with(port: u16, args: &[&str]) -> Option<Disposable> {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string()])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let server = Disposable { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(server);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Disposable {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_served_through_an_outage_and_the_instances_resync() {
    if server("requests_are_served_through_an_outage").is_none() {
        return;
    }
    let port = free_port();
    let Some(redis) = Disposable::start(port) else {
        panic!("cannot start redis-server on port {port}");
    };
    let url = redis.url();
    let build = |fail| {
        RedisCounterStore::builder(&url)
            .prefix("outage")
            .timeout(Duration::from_millis(200))
            .fail(fail)
            .clock(Arc::new(ManualClock::new()))
            .build()
            .unwrap()
    };
    let (open, other, closed) = (
        build(FailPolicy::Open),
        build(FailPolicy::Open),
        build(FailPolicy::Closed),
    );
    ready(&[&open, &other, &closed]).await;
    let p = policy(1_000, Duration::from_secs(3600));
    let (so, sx, sc) = (
        open.register("global", &p),
        other.register("global", &p),
        closed.register("global", &p),
    );
    assert!(matches!(
        open.hit(so, client(1)),
        LimitOutcome::Allowed { .. }
    ));
    assert!(matches!(
        closed.hit(sc, client(1)),
        LimitOutcome::Allowed { .. }
    ));

    // A ban made before the outage, which every instance learns of.
    open.ban(so, client(7), Duration::from_secs(600))
        .await
        .unwrap();
    let learned = within(Duration::from_millis(500), || {
        is_banned(other.hit(sx, client(7)))
    })
    .await;
    assert!(learned.is_some());

    redis.stop();
    // Requests keep being answered at once; the breaker opens after a few failed rounds.
    let opened = within(Duration::from_secs(10), || {
        open.hit(so, client(1));
        closed.hit(sc, client(1));
        !open.redis_stats().connected && !closed.redis_stats().connected
    })
    .await;
    assert!(opened.is_some(), "the breaker did not open");
    let start = Instant::now();
    for _ in 0..100 {
        assert!(matches!(
            open.hit(so, client(2)),
            LimitOutcome::Allowed { .. }
        ));
        assert!(matches!(
            closed.hit(sc, client(2)),
            LimitOutcome::Limited { .. }
        ));
    }
    assert!(start.elapsed() < Duration::from_millis(100), "a hit waited");
    assert!(open.redis_stats().breaker_opened >= 1);
    // The counts wait for Redis for 2 s (the resend window), then stay local only.
    let dropped = within(Duration::from_secs(10), || {
        open.hit(so, client(2));
        open.redis_stats().dropped_hits >= 1
    })
    .await;
    assert!(dropped.is_some(), "{:?}", open.redis_stats());
    // The ban list is this instance's own view meanwhile (the admin API keeps working).
    let start = Instant::now();
    let listed = open.bans().await.unwrap();
    assert!(
        start.elapsed() < Duration::from_millis(100),
        "the list waited"
    );
    assert!(
        listed
            .iter()
            .any(|ban| ban.key == BannedKey::Client(key_of(7)) && &*ban.limit == "global"),
        "{listed:?}"
    );
    assert!(
        other
            .bans()
            .await
            .unwrap()
            .iter()
            .any(|ban| ban.key == BannedKey::Client(key_of(7))),
        "learned from the channel before the outage"
    );
    assert!(closed.redis_stats().refused_closed >= 100);
    // Operator calls fail with an error, not a hang.
    assert!(open
        .ban(so, client(3), Duration::from_secs(60))
        .await
        .is_err());

    // Redis comes back (empty): every instance reconnects, counts and shares bans again.
    let Some(redis) = Disposable::start(port) else {
        panic!("cannot restart redis-server on port {port}");
    };
    ready(&[&open, &other, &closed]).await;
    assert!(matches!(
        closed.hit(sc, client(4)),
        LimitOutcome::Allowed { .. }
    ));
    let trips = open.redis_stats().round_trips;
    open.hit(so, client(4));
    open.sync().await.unwrap();
    assert!(open.redis_stats().round_trips > trips);
    open.ban(so, client(5), Duration::from_secs(60))
        .await
        .unwrap();
    let took = within(Duration::from_millis(200), || {
        is_banned(other.hit(sx, client(5)))
    })
    .await;
    assert!(took.is_some(), "bans are not shared after the restart");
    drop(redis);
}

// ---------------------------------------------------------------- through the middleware

mod middleware {
    use super::*;
    use actix_bouncer::Bouncer;
    use actix_web::http::StatusCode;
    use actix_web::{test, web, App, HttpResponse};

    const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";

    fn bouncer(url: &str, prefix: &str) -> Bouncer {
        Bouncer::from_toml_str(&format!(
            r#"
            [limit]
            hits = 5
            per = "1h"
            ban_for = "10m"

            [store]
            counters = "{url}"
            counters_prefix = "{prefix}"
            counters_timeout = "500ms"
            counters_fail = "open"
            "#
        ))
        .unwrap()
    }

    fn get() -> test::TestRequest {
        test::TestRequest::get()
            .uri("/")
            .peer_addr("198.51.100.9:4000".parse().unwrap())
            .insert_header(("user-agent", BROWSER))
    }

    #[actix_web::test]
    async fn two_bouncers_from_toml_share_one_limit_and_its_ban() {
        let Some(url) = server("two_bouncers_from_toml_share_one_limit") else {
            return;
        };
        let prefix = prefix("e2e");
        let app = |b: Bouncer| {
            test::init_service(
                App::new()
                    .wrap(b)
                    .route("/", web::get().to(|| async { HttpResponse::Ok().finish() })),
            )
        };
        let one = app(bouncer(&url, &prefix)).await;
        let two = app(bouncer(&url, &prefix)).await;
        // 4 requests to each: under the limit of 5 on each instance, over it together.
        for _ in 0..4 {
            for app in [&one, &two] {
                let res = test::call_service(app, get().to_request()).await;
                assert_eq!(res.status(), StatusCode::OK);
            }
        }
        // Within the bound, and then refused by both (403: the shared ban), never a 5xx.
        let mut passed = 8;
        let start = Instant::now();
        loop {
            let mut refused = 0;
            for app in [&one, &two] {
                let res = test::call_service(app, get().to_request()).await;
                assert!(!res.status().is_server_error());
                match res.status() {
                    StatusCode::OK => passed += 1,
                    StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS => refused += 1,
                    other => panic!("unexpected {other}"),
                }
            }
            if refused == 2 {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(2),
                "not refused by both"
            );
            actix_web::rt::time::sleep(Duration::from_millis(2)).await;
        }
        // limit 5 + N (2) × burst (5): at most 15 pass.
        assert!(passed <= 15, "{passed} passed");
    }

    /// `admin.counters_fail = "closed"`: while Redis is down, admin paths are refused (429,
    /// `Retry-After: 1`) and other paths are served by the local limiter (the store fails
    /// open); once Redis is back, admin paths are served again.
    #[actix_web::test]
    async fn admin_paths_fail_closed_while_redis_is_down() {
        if server("admin_paths_fail_closed_while_redis_is_down").is_none() {
            return;
        }
        let port = free_port();
        let Some(redis) = Disposable::start(port) else {
            panic!("cannot start redis-server on port {port}");
        };
        let bouncer = Bouncer::from_toml_str(&format!(
            r#"
            [admin]
            paths = ["/admin"]
            counters_fail = "closed"

            [store]
            counters = "{}"
            counters_prefix = "admin-closed"
            counters_timeout = "200ms"
            counters_fail = "open"
            "#,
            redis.url()
        ))
        .unwrap();
        let app = test::init_service(
            App::new()
                .wrap(bouncer.clone())
                .default_service(web::to(|| async { HttpResponse::Ok().finish() })),
        )
        .await;
        let at = |path: &str| get().uri(path).to_request();
        let shared = || {
            bouncer
                .counter_stats()
                .shared
                .expect("a shared store's counts")
        };
        let res = test::call_service(&app, at("/admin/users")).await;
        assert_eq!(res.status(), StatusCode::OK, "Redis is up");

        redis.stop();
        // Requests keep the syncer trying; the breaker opens after a few failed rounds.
        let start = Instant::now();
        let refused = loop {
            let res = test::call_service(&app, at("/admin/users")).await;
            assert!(!res.status().is_server_error());
            if res.status() == StatusCode::TOO_MANY_REQUESTS {
                break res;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "admin paths were never refused"
            );
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(refused.headers().get("retry-after").unwrap(), "1");
        // The fallback is counted where monitoring reads it (`bouncer_counter_store_*`).
        let down = shared();
        assert!(!down.connected, "{down:?}");
        assert!(down.failures >= 1 && down.fallbacks >= 1, "{down:?}");
        let res = test::call_service(&app, at("/%61dmin/users")).await;
        assert_eq!(
            res.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "matched as the router dispatches it"
        );
        for _ in 0..3 {
            let res = test::call_service(&app, at("/shop")).await;
            assert_eq!(res.status(), StatusCode::OK, "other paths fail open");
        }

        // Redis comes back: the breaker closes after its back-off, and admin paths are served.
        let Some(redis) = Disposable::start(port) else {
            panic!("cannot restart redis-server on port {port}");
        };
        let start = Instant::now();
        loop {
            let res = test::call_service(&app, at("/admin/users")).await;
            if res.status() == StatusCode::OK {
                break;
            }
            assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "admin paths stayed refused after Redis came back"
            );
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(shared().connected);
        drop(redis);
    }

    #[::core::prelude::v1::test]
    fn counters_settings_are_checked_with_their_keys() {
        let err = |toml: &str| Bouncer::from_toml_str(toml).unwrap_err().to_string();
        let e = err("[store]\ncounters = \"http://user:secret@host/\"");
        assert!(e.contains("store.counters"), "{e}");
        assert!(!e.contains("secret"), "{e}");
        let e = err("[store]\ncounters = \"redis://h/\"\ncounters_fail = \"maybe\"");
        assert!(e.contains("store.counters_fail"), "{e}");
        let e = err("[store]\ncounters = \"redis://h/\"\ncounters_timeout = \"0s\"");
        assert!(e.contains("store.counters_timeout"), "{e}");
        let e = err("[store]\ncounters = \"redis://h/\"\ncounters_prefix = \"\"");
        assert!(e.contains("store.counters_prefix"), "{e}");
        let e = err("[admin]\npaths = [\"/admin\"]\ncounters_fail = \"shut\"");
        assert!(e.contains("admin.counters_fail"), "{e}");
        for (setting, key) in [
            ("counters_sync_every = \"0s\"", "store.counters_sync_every"),
            (
                "counters_sync_every = \"soon\"",
                "store.counters_sync_every",
            ),
            ("counters_batch_hits = 0", "store.counters_batch_hits"),
            (
                "counters_batch_hits = 5000000000",
                "store.counters_batch_hits",
            ),
            ("counters_max_delay = \"0ms\"", "store.counters_max_delay"),
        ] {
            let e = err(&format!("[store]\ncounters = \"redis://h/\"\n{setting}"));
            assert!(e.contains(key), "{setting}: {e}");
        }
        Bouncer::from_toml_str(
            "[store]\ncounters = \"redis://127.0.0.1:9/\"\ncounters_sync_every = \"50ms\"\n\
             counters_batch_hits = 64\ncounters_max_delay = \"1s\"",
        )
        .unwrap();
        #[cfg(feature = "reputation")]
        {
            let e = err(
                "[reputation]\nurl = \"http://127.0.0.1:9/{ip}\"\nshared_cache = \"http://u:pw@h/\"",
            );
            assert!(e.contains("reputation.shared_cache"), "{e}");
            assert!(!e.contains(":pw@"), "{e}");
            Bouncer::from_toml_str(
                "[reputation]\nurl = \"http://127.0.0.1:9/{ip}\"\nshared_cache = \"redis://127.0.0.1:9/\"\nshared_prefix = \"x\"",
            )
            .unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_keys_sync_by_the_batch_and_quiet_ones_after_max_delay() {
    let Some(url) = server("busy_keys_sync_by_the_batch") else {
        return;
    };
    let build = |max_delay| {
        RedisCounterStore::builder(&url)
            .prefix(prefix("batch"))
            .timeout(Duration::from_millis(500))
            .sync_every(Duration::from_millis(5))
            .batch_hits(16)
            .max_delay(max_delay)
            .clock(Arc::new(ManualClock::new()))
            .build()
            .unwrap()
    };
    let s = build(Duration::from_secs(3600));
    ready(&[&s]).await;
    let slot = s.register("global", &policy(1_000, Duration::from_secs(3600)));
    // The limit's name goes to the registry first (one SADD).
    s.sync().await.unwrap();
    let base = s.redis_stats().commands;
    for _ in 0..3 {
        s.hit(slot, client(1));
    }
    for _ in 0..16 {
        s.hit(slot, client(2));
    }
    let synced = within(Duration::from_secs(5), || s.redis_stats().commands > base).await;
    assert!(synced.is_some(), "the busy key was not synced");
    // Ten more rounds: the quiet key (3 hits) still waits for its max_delay.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        s.redis_stats().commands,
        base + 1,
        "one EVALSHA, for 16 hits"
    );

    let quick = build(Duration::from_millis(20));
    ready(&[&quick]).await;
    let slot = quick.register("global", &policy(1_000, Duration::from_secs(3600)));
    quick.sync().await.unwrap();
    let base = quick.redis_stats().commands;
    quick.hit(slot, client(1));
    let synced = within(Duration::from_secs(5), || {
        quick.redis_stats().commands > base
    })
    .await;
    assert!(
        synced.is_some(),
        "a quiet key was not synced after max_delay"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_command_carries_the_counts_of_many_keys_each_answered_exactly() {
    let Some(url) = server("one_command_carries_the_counts_of_many_keys") else {
        return;
    };
    let prefix = prefix("many");
    let build = || {
        RedisCounterStore::builder(&url)
            .prefix(&prefix)
            .timeout(Duration::from_millis(500))
            // Nothing is due by itself: only `sync()` sends.
            .batch_hits(1_000_000)
            .max_delay(Duration::from_secs(3600))
            .clock(Arc::new(ManualClock::new()))
            .build()
            .unwrap()
    };
    let (a, b) = (build(), build());
    ready(&[&a, &b]).await;
    // Two limits in one batch: 2 an hour, and 3 an hour.
    let (ga, gb) = (
        a.register("two", &policy(2, Duration::from_secs(3600))),
        b.register("two", &policy(2, Duration::from_secs(3600))),
    );
    let (ta, tb) = (
        a.register("three", &policy(3, Duration::from_secs(3600))),
        b.register("three", &policy(3, Duration::from_secs(3600))),
    );
    // The limit names go to the registry first (one SADD).
    a.sync().await.unwrap();
    const CLIENTS: u32 = 600;
    let keys = CLIENTS + CLIENTS / 2;
    // On A: every client twice under "two"; even clients twice under "three" too.
    for i in 0..CLIENTS {
        for _ in 0..2 {
            assert!(matches!(a.hit(ga, client(i)), LimitOutcome::Allowed { .. }));
            if i % 2 == 0 {
                assert!(matches!(a.hit(ta, client(i)), LimitOutcome::Allowed { .. }));
            }
        }
    }
    let before = a.redis_stats().commands;
    a.sync().await.unwrap();
    assert_eq!(
        a.redis_stats().commands - before,
        u64::from(keys.div_ceil(128)),
        "one command per 128 keys"
    );
    // On B: one more hit each under "two", two under "three". "two" is over for everyone
    // (2 + 1 > 2); "three" for the even clients only (2 + 2 > 3, and the odd ones have 2).
    for i in 0..CLIENTS {
        assert!(matches!(b.hit(gb, client(i)), LimitOutcome::Allowed { .. }));
        for _ in 0..2 {
            assert!(matches!(b.hit(tb, client(i)), LimitOutcome::Allowed { .. }));
        }
    }
    b.sync().await.unwrap();
    for i in 0..CLIENTS {
        assert!(
            matches!(b.hit(gb, client(i)), LimitOutcome::Limited { .. }),
            "client {i}: its shared count of 3 is over 2"
        );
        // "three": the even clients are refused, the odd ones are not (2 of 3).
        let outcome = b.hit(tb, client(i));
        if i % 2 == 0 {
            assert!(
                matches!(outcome, LimitOutcome::Limited { .. }),
                "client {i}: {outcome:?}"
            );
        } else {
            assert!(
                matches!(outcome, LimitOutcome::Allowed { .. }),
                "client {i}: {outcome:?}"
            );
        }
    }
}

/// The hits Redis counted for `user` under `limit` (`per_hit` apart), read from its GCRA
/// state: how far its TAT is ahead of Redis's clock, in periods (rounded: the test takes far
/// less than half a period).
async fn counted(
    conn: &mut redis::aio::MultiplexedConnection,
    prefix: &str,
    limit: &str,
    user: &str,
    per_hit: Duration,
) -> i64 {
    let key = format!("{prefix}:s:{limit}|u:{user}");
    let tat: Option<f64> = redis::cmd("HGET")
        .arg(&key)
        .arg("tat")
        .query_async(conn)
        .await
        .unwrap();
    let (secs, micros): (String, String) = redis::cmd("TIME").query_async(conn).await.unwrap();
    let now = secs.parse::<f64>().unwrap() * 1e6 + micros.parse::<f64>().unwrap();
    match tat {
        Some(tat) => ((tat - now) / per_hit.as_micros() as f64).round() as i64,
        None => 0,
    }
}

/// A batch is resent after a failure, whether Redis had applied it (the reply was lost: Redis
/// was busy past the timeout) or not (Redis was down): every hit counted once, none twice.
/// Against a disposable `redis-server` that keeps its data across a restart (AOF, fsync on
/// every write) and allows `DEBUG SLEEP`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_replies_and_failed_rounds_are_resent_and_counted_exactly_once() {
    if server("lost_replies_and_failed_rounds_are_resent").is_none() {
        return;
    }
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("bouncer-resend-{port}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dir_arg = dir.to_str().unwrap().to_owned();
    let args = [
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--dir",
        &dir_arg,
        "--enable-debug-command",
        "yes",
    ];
    let Some(redis) = Disposable::start_with(port, &args) else {
        panic!("cannot start redis-server on port {port}");
    };
    let url = redis.url();
    let prefix = "resend";
    let s = RedisCounterStore::builder(&url)
        .prefix(prefix)
        .timeout(Duration::from_millis(100))
        .batch_hits(1_000_000)
        .max_delay(Duration::from_secs(3600))
        .clock(Arc::new(ManualClock::new()))
        .build()
        .unwrap();
    ready(&[&s]).await;
    let mut conn = redis_conn(&url).await;
    // 100 an hour: a hit is 36 s of the GCRA's time.
    let per_hit = Duration::from_secs(36);
    let slot = s.register("global", &policy(100, Duration::from_secs(3600)));
    s.sync().await.unwrap();
    // The scripts are gone: the first call meets NOSCRIPT, loads them and goes again.
    redis::cmd("SCRIPT")
        .arg("FLUSH")
        .exec_async(&mut conn)
        .await
        .unwrap();
    let mut expected = vec![0i64; 300];
    let users: Vec<String> = (0..=1_000).map(|i| format!("user{i}")).collect();
    let hit = |range: std::ops::Range<u32>, times: u32, expected: &mut Vec<i64>| {
        for i in range {
            for _ in 0..times {
                let user = Subject::User(&users[i as usize]);
                assert!(matches!(s.hit(slot, user), LimitOutcome::Allowed { .. }));
                expected[i as usize] += 1;
            }
        }
    };

    let loaded = s.redis_stats().commands;
    assert!(matches!(
        s.hit(slot, Subject::User(&users[1_000])),
        LimitOutcome::Allowed { .. }
    ));
    s.sync().await.unwrap();
    assert_eq!(
        s.redis_stats().commands - loaded,
        5,
        "EVALSHA (NOSCRIPT), SCRIPT LOAD of the three scripts, EVALSHA"
    );
    assert_eq!(
        counted(&mut conn, prefix, "global", &users[1_000], per_hit).await,
        1
    );

    // 1. Applied, reply lost: Redis is busy for 400 ms, longer than the 100-ms timeout; the
    // calls already sent run when it is back, and their resends find their ids.
    hit(0..300, 2, &mut expected);
    let url2 = url.clone();
    let sleeper = tokio::spawn(async move {
        let mut conn = redis_conn(&url2).await;
        redis::cmd("DEBUG")
            .arg("SLEEP")
            .arg("0.4")
            .exec_async(&mut conn)
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(s.sync().await.is_err(), "Redis was asleep");
    sleeper.await.unwrap().unwrap();
    let synced = async {
        while s.sync().await.is_err() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), synced)
        .await
        .expect("the resend never succeeded");
    let stats = s.redis_stats();
    assert!(stats.resent_batches >= 1, "{stats:?}");
    assert!(stats.replayed_batches >= 1, "{stats:?}");
    assert_eq!(stats.dropped_hits, 0, "{stats:?}");
    for i in 0..300 {
        assert_eq!(
            counted(&mut conn, prefix, "global", &users[i as usize], per_hit).await,
            expected[i as usize],
            "client {i} after a lost reply"
        );
    }

    // 2. Not applied: Redis is down when the round goes, and back (with its data) 300 ms
    // later, within the 2-s resend window.
    hit(0..300, 1, &mut expected);
    redis.stop();
    assert!(s.sync().await.is_err(), "Redis was down");
    let Some(redis) = Disposable::start_with(port, &args) else {
        panic!("cannot restart redis-server on port {port}");
    };
    let synced = async {
        while s.sync().await.is_err() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), synced)
        .await
        .expect("the resend never succeeded");
    let stats = s.redis_stats();
    assert_eq!(stats.dropped_hits, 0, "{stats:?}");
    let mut conn = redis_conn(&url).await;
    for i in 0..300 {
        assert_eq!(
            counted(&mut conn, prefix, "global", &users[i as usize], per_hit).await,
            expected[i as usize],
            "client {i} after an outage"
        );
    }
    drop(redis);
    let _ = std::fs::remove_dir_all(&dir);
}

/// An unban on an instance reaches the limits it has not registered itself, and a ban under a
/// handler limit reaches an instance that has not used that limit yet (live, or from the ban
/// keys when it starts later).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbans_and_bans_reach_limits_an_instance_has_not_registered() {
    let Some(url) = server("unbans_and_bans_reach_limits_not_registered") else {
        return;
    };
    let prefix = prefix("unregistered");
    let (a, b) = (store(&url, &prefix), store(&url, &prefix));
    ready(&[&a, &b]).await;
    let p = banning(1_000, Duration::from_secs(3600));
    let (ga, gb) = (a.register("global", &p), b.register("global", &p));
    let login_a = a.register("login", &p);
    a.sync().await.unwrap();
    b.sync().await.unwrap();

    // A bans a user under "login", which B has never used.
    let user = Subject::User("trudy");
    let received = b.redis_stats().bans_received;
    a.ban(login_a, user, Duration::from_secs(600))
        .await
        .unwrap();
    let mut conn = redis_conn(&url).await;
    let ban_key = format!("{prefix}:ban:login|u:trudy");
    let exists = |conn: &mut redis::aio::MultiplexedConnection| {
        let key = ban_key.clone();
        let mut conn = conn.clone();
        async move {
            redis::cmd("EXISTS")
                .arg(key)
                .query_async::<i64>(&mut conn)
                .await
                .unwrap()
        }
    };
    assert_eq!(exists(&mut conn).await, 1);
    // B learns it from the channel and keeps it for when it registers "login".
    let arrived = within(Duration::from_millis(200), || {
        b.redis_stats().bans_received > received
    })
    .await;
    assert!(arrived.is_some());
    let login_b = b.register("login", &p);
    assert!(
        is_banned(b.hit(login_b, user)),
        "the ban reached B before it used the limit"
    );
    // A store started afterwards reads it from the ban keys.
    let c = store(&url, &prefix);
    ready(&[&c]).await;
    c.register("global", &p);
    let login_c = c.register("login", &p);
    assert!(is_banned(c.hit(login_c, user)), "a late joiner");
    assert!(matches!(b.hit(gb, user), LimitOutcome::Allowed { .. }));
    drop(c);

    // A store that has only "global" lifts the ban under "login" too.
    let d = store(&url, &prefix);
    ready(&[&d]).await;
    d.register("global", &p);
    assert!(d.unban(user).await.unwrap(), "there was a ban to lift");
    assert_eq!(exists(&mut conn).await, 0, "the ban key is gone");
    let lifted = within(Duration::from_millis(200), || {
        matches!(a.hit(login_a, user), LimitOutcome::Allowed { .. })
            && matches!(b.hit(login_b, user), LimitOutcome::Allowed { .. })
    })
    .await;
    assert!(lifted.is_some(), "the unban reached A and B");
    // And the shared state holds no ban either: A's next sync does not ban again.
    a.sync().await.unwrap();
    assert!(matches!(a.hit(login_a, user), LimitOutcome::Allowed { .. }));
    assert!(matches!(a.hit(ga, user), LimitOutcome::Allowed { .. }));
}
