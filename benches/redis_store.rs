//! What sharing counts through Redis costs a request: the Redis counter store against the
//! memory store, with 1,000 active clients in steady state.
//!
//! * `hit` latency, each call timed on its own (p50, p99, p99.9), and the Redis operations per
//!   request (the store's own command count, cross-checked with `INFO commandstats`);
//! * one Redis round trip (`PING`) for reference;
//! * the Redis operations per request of 1,000 *quiet* clients, each sending a few requests a
//!   second (`BOUNCER_BENCH_QUIET_RATE` per client, default 3, for
//!   `BOUNCER_BENCH_QUIET_SECS`, default 10 s), paced in real time;
//! * requests a second through an actix-web app behind a bouncer (in process, one thread, as a
//!   wrk-style closed loop), memory mode against Redis mode.
//!
//! `cargo bench --bench redis_store --features redis` against the Redis named by
//! `BOUNCER_TEST_REDIS` (default `redis://127.0.0.1:6379/`); says it was skipped when that
//! Redis does not answer. Optional argument: hits per measurement (default 1,000,000);
//! `BOUNCER_BENCH_TIMEOUT_MS` sets the round-trip timeout (default 5 ms).
//!
//! `cargo bench --bench redis_store --features redis -- --serve memory|redis [port]` serves
//! instead: an actix-web server (one worker) on `127.0.0.1:port` (default 8088) behind a
//! bouncer with a limit that never refuses, in memory mode or against that Redis, trusting
//! `127.0.0.1` as a proxy so that `X-Forwarded-For` names the client (for wrk with
//! `benches/wrk.lua`, which spreads requests over 1,000 client addresses). It
//! prints the store's counts when stopped (Ctrl-C or `SIGTERM`); `BOUNCER_BENCH_TIMEOUT_MS`
//! applies here too.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_bouncer::client_ip::ClientIpResolver;
use actix_bouncer::clock::SystemClock;
use actix_bouncer::limiter::{
    CounterStore, LimitOutcome, LimitPolicy, LimitSlot, MemoryCounterStore, RedisCounterStore,
    Subject,
};
use actix_bouncer::Bouncer;
use actix_web::dev::Service;
use actix_web::{test, web, App, HttpResponse};

const CLIENTS: u32 = 1_000;

fn clients() -> Vec<Subject<'static>> {
    let resolver = ClientIpResolver::new(vec![], vec![], 32, 64);
    (0..CLIENTS)
        .map(|i| Subject::Client(resolver.key_for(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | i)))))
        .collect()
}

/// Never refuses during the bench: a billion an hour.
fn policy() -> LimitPolicy {
    LimitPolicy::new(1_000_000_000.try_into().unwrap(), Duration::from_secs(3600)).unwrap()
}

struct Latency {
    p50: Duration,
    p99: Duration,
    p999: Duration,
    mean: Duration,
}

fn percentiles(mut samples: Vec<Duration>) -> Latency {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    let total: Duration = samples.iter().sum();
    Latency {
        p50: at(0.50),
        p99: at(0.99),
        p999: at(0.999),
        mean: total / samples.len() as u32,
    }
}

/// Times every hit of `n`, over the clients in turn (after a warm-up of `n / 5`).
fn time_hits(store: &impl CounterStore, slot: LimitSlot, n: usize) -> Latency {
    let clients = clients();
    for i in 0..n / 5 {
        std::hint::black_box(store.hit(slot, clients[i % clients.len()]));
    }
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let who = clients[(i * 7919) % clients.len()];
        let start = Instant::now();
        let outcome = store.hit(slot, who);
        samples.push(start.elapsed());
        assert!(matches!(outcome, LimitOutcome::Allowed { .. }));
    }
    percentiles(samples)
}

fn show(name: &str, l: &Latency) {
    println!(
        "{name:<28} p50 {:>7.0?}  p99 {:>8.1?}  p99.9 {:>8.1?}  mean {:>7.0?}",
        l.p50, l.p99, l.p999, l.mean
    );
}

async fn evalsha_calls(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Requests a second through an app behind `bouncer`, from the 1,000 clients in turn.
async fn throughput(bouncer: Bouncer, n: usize) -> f64 {
    let app = test::init_service(
        App::new()
            .wrap(bouncer)
            .route("/", web::get().to(|| async { HttpResponse::Ok().finish() })),
    )
    .await;
    let peers: Vec<SocketAddr> = (0..CLIENTS)
        .map(|i| SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | i)), 4000))
        .collect();
    let req = |i: usize| {
        test::TestRequest::get()
            .uri("/")
            .peer_addr(peers[i % peers.len()])
            .insert_header(("user-agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0"))
            .to_request()
    };
    for i in 0..n / 5 {
        let _ = app.call(req(i)).await;
    }
    let start = Instant::now();
    for i in 0..n {
        let res = app.call(req(i)).await.unwrap();
        assert!(res.status().is_success());
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Requests of 1,000 quiet clients, `rate` a second each, paced over `secs` seconds; the
/// store's commands and the server's `EVALSHA` calls meanwhile, per request.
fn quiet_clients(
    rt: &tokio::runtime::Runtime,
    conn: &mut redis::aio::MultiplexedConnection,
    store: &RedisCounterStore,
    slot: LimitSlot,
    rate: f64,
    secs: f64,
) {
    let clients = clients();
    let total = (rate * secs * f64::from(CLIENTS)) as u64;
    let calls_before = rt.block_on(evalsha_calls(conn));
    let before = store.redis_stats();
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < total {
        // Catch up with the schedule, then wait a millisecond.
        let due = ((start.elapsed().as_secs_f64() / secs) * total as f64) as u64;
        while sent < due.min(total) {
            let who = clients[((sent * 7919) % u64::from(CLIENTS)) as usize];
            assert!(matches!(store.hit(slot, who), LimitOutcome::Allowed { .. }));
            sent += 1;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let elapsed = start.elapsed();
    if let Err(e) = rt.block_on(store.sync()) {
        println!("final sync failed: {e}");
    }
    let after = store.redis_stats();
    let calls = rt.block_on(evalsha_calls(conn)) - calls_before;
    let commands = after.commands - before.commands;
    println!(
        "quiet clients ({rate} req/s each, {:.0} req/s in all, {elapsed:.2?}): redis ops/request \
         {:.4} (store: {commands} commands in {} round trips for {sent} hits); EVALSHA calls \
         seen by the server: {calls} ({:.4}/request); dropped {}, resent {}",
        sent as f64 / elapsed.as_secs_f64(),
        commands as f64 / sent as f64,
        after.round_trips - before.round_trips,
        calls as f64 / sent as f64,
        after.dropped_hits - before.dropped_hits,
        after.resent_batches - before.resent_batches,
    );
}

/// `--serve memory|redis [port]`: an actix-web server behind a bouncer, for wrk.
fn serve(mode: &str, port: u16, url: &str) {
    let mut builder = Bouncer::builder()
        .limit(1_000_000_000, Duration::from_secs(3600))
        .trusted_proxies(["127.0.0.1"]);
    match mode {
        "memory" => {}
        "redis" => {
            let timeout = std::env::var("BOUNCER_BENCH_TIMEOUT_MS")
                .ok()
                .and_then(|ms| ms.parse().ok())
                .map_or(
                    actix_bouncer::limiter::DEFAULT_TIMEOUT,
                    Duration::from_millis,
                );
            println!("round-trip timeout {timeout:?}");
            builder = builder
                .counter_store_url(url.to_owned())
                .counters_prefix(format!("bench:serve:{}", std::process::id()))
                .counters_timeout(timeout);
        }
        other => {
            println!("--serve memory|redis, not {other:?}");
            return;
        }
    }
    let bouncer = builder.build().unwrap();
    let shown = bouncer.clone();
    println!("serving in {mode} mode on 127.0.0.1:{port}");
    let system = actix_web::rt::System::new();
    system
        .block_on(
            actix_web::HttpServer::new(move || {
                App::new()
                    .wrap(bouncer.clone())
                    .route("/", web::get().to(|| async { HttpResponse::Ok().finish() }))
            })
            .workers(1)
            .bind(("127.0.0.1", port))
            .unwrap()
            .run(),
        )
        .unwrap();
    println!("{mode} mode stopped: {:?}", shown.counter_stats().shared);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let url = std::env::var("BOUNCER_TEST_REDIS")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned());
    if let Some(at) = args.iter().position(|a| a == "--serve") {
        let mode = args.get(at + 1).map_or("memory", String::as_str);
        let port = args
            .get(at + 2)
            .and_then(|p| p.parse().ok())
            .unwrap_or(8088);
        serve(mode, port, &url);
        return;
    }
    let n: usize = args
        .iter()
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Ok(Ok(mut conn)) = rt.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(2),
            redis::Client::open(url.as_str())
                .unwrap()
                .get_multiplexed_async_connection(),
        )
        .await
    }) else {
        println!("skipped: no Redis answers at {url} (set BOUNCER_TEST_REDIS)");
        return;
    };
    let prefix = format!("bench:{}", std::process::id());
    // The round-trip bound: the default 5 ms unless BOUNCER_BENCH_TIMEOUT_MS says otherwise.
    let timeout = std::env::var("BOUNCER_BENCH_TIMEOUT_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map_or(
            actix_bouncer::limiter::DEFAULT_TIMEOUT,
            Duration::from_millis,
        );
    println!("round-trip timeout {timeout:?}");

    // One Redis round trip, for reference.
    let pings = rt.block_on(async {
        let mut samples = Vec::new();
        for _ in 0..10_000 {
            let start = Instant::now();
            let _: String = redis::cmd("PING").query_async(&mut conn).await.unwrap();
            samples.push(start.elapsed());
        }
        percentiles(samples)
    });
    show("redis PING round trip", &pings);

    // The store alone.
    let memory = MemoryCounterStore::new(100_000.try_into().unwrap(), Arc::new(SystemClock::new()));
    let slot = memory.register("global", &policy());
    let mem = time_hits(&memory, slot, n);
    show("memory store hit", &mem);

    let store = RedisCounterStore::builder(&url)
        .prefix(&prefix)
        .timeout(timeout)
        .build()
        .unwrap();
    let up = Instant::now();
    while !store.redis_stats().connected && up.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let slot = store.register("global", &policy());
    let calls_before = rt.block_on(evalsha_calls(&mut conn));
    let before = store.redis_stats();
    let started = Instant::now();
    let red = time_hits(&store, slot, n);
    let elapsed = started.elapsed();
    if let Err(e) = rt.block_on(store.sync()) {
        println!("final sync failed: {e}");
    }
    let after = store.redis_stats();
    let calls_after = rt.block_on(evalsha_calls(&mut conn));
    show("redis store hit", &red);
    let hits = (after.hits - before.hits) as f64;
    println!(
        "added latency: p50 {:+.0?} ns, p99 {:+.0?} ns",
        red.p50.as_nanos() as f64 - mem.p50.as_nanos() as f64,
        red.p99.as_nanos() as f64 - mem.p99.as_nanos() as f64,
    );
    println!(
        "redis ops/request: {:.4} (store: {} commands in {} round trips for {} hits in {:.2?}, \
         {:.0} hits/s/client); EVALSHA calls seen by the server: {} ({:.4}/request)",
        (after.commands - before.commands) as f64 / hits,
        after.commands - before.commands,
        after.round_trips - before.round_trips,
        hits,
        elapsed,
        hits / elapsed.as_secs_f64() / f64::from(CLIENTS),
        calls_after - calls_before,
        (calls_after - calls_before) as f64 / hits,
    );
    println!(
        "round trips failed or timed out: {}, breaker opened {} times, batches resent: {} \
         (already applied: {}), hits not synced: {}",
        after.failures,
        after.breaker_opened,
        after.resent_batches,
        after.replayed_batches,
        after.dropped_hits
    );

    // Quiet clients: a few requests a second each.
    let env = |name: &str, default: f64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let quiet = RedisCounterStore::builder(&url)
        .prefix(format!("{prefix}:quiet"))
        .timeout(timeout)
        .build()
        .unwrap();
    let up = Instant::now();
    while !quiet.redis_stats().connected && up.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let quiet_slot = quiet.register("global", &policy());
    quiet_clients(
        &rt,
        &mut conn,
        &quiet,
        quiet_slot,
        env("BOUNCER_BENCH_QUIET_RATE", 3.0),
        env("BOUNCER_BENCH_QUIET_SECS", 10.0),
    );

    // Through the middleware.
    let requests = n / 5;
    let system = actix_web::rt::System::new();
    let mem_rps = system.block_on(throughput(
        Bouncer::builder()
            .limit(1_000_000_000, Duration::from_secs(3600))
            .build()
            .unwrap(),
        requests,
    ));
    let redis_bouncer = Bouncer::builder()
        .limit(1_000_000_000, Duration::from_secs(3600))
        .counter_store_url(url.clone())
        .counters_prefix(format!("{prefix}:mw"))
        .counters_timeout(timeout)
        .build()
        .unwrap();
    // Let it connect before measuring.
    std::thread::sleep(Duration::from_millis(300));
    let redis_rps = system.block_on(throughput(redis_bouncer, requests));
    println!(
        "middleware throughput: memory {mem_rps:.0} req/s, redis {redis_rps:.0} req/s ({:.1}% of memory)",
        100.0 * redis_rps / mem_rps
    );
}
