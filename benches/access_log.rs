//! The access log's SQL sink and the dashboard's queries.
//!
//! - Ingest: a million records into a SQLite file, in batches of 1,024 (the access log
//!   writer's default), spread over seven days; rows/s over the write calls (target ≥ 50,000).
//!   With `BOUNCER_BENCH_POSTGRES` (or `BOUNCER_TEST_POSTGRES`) naming a server, the same
//!   into a fresh PostgreSQL database (target ≥ 20,000; `BOUNCER_BENCH_PG_ROWS`, default
//!   200,000).
//! - Queries on the million rows: each dashboard query's median time (target ≤ 50 ms), and
//!   its plan.
//! - Trim: a day's records (~143,000) trimmed while another writer goes on, with that
//!   writer's slowest batch (SQLite's write lock is taken chunk by chunk).
//!
//! - On the request path: the time an app with the access log (SQLite sink) takes per request
//!   over the same app without it, in alternating rounds (target ≤ 2 µs); then 5,000 requests
//!   a second for 60 s through the logged app, and how many records were lost (target 0 with
//!   the default queue).
//!
//! `cargo bench --bench access_log --features postgres` (a few minutes). `BOUNCER_BENCH_BATCH`
//! sets the records per write (default: the writer's, 8,192), `BOUNCER_BENCH_ROWS` the SQLite
//! rows (default 1,000,000), `BOUNCER_BENCH_INGEST_ONLY` stops after the SQLite ingest, and
//! `BOUNCER_BENCH_REQUEST_PATH_ONLY` runs only the request-path part.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_bouncer::access_log::{
    AccessRecord, AccessSink, AccessVerdict, Bucket, SqlAccessLog, Subject,
};
use actix_bouncer::{BlockReason, Decision};

const BATCH: usize = actix_bouncer::access_log::DEFAULT_BATCH;
const DAY: Duration = Duration::from_secs(86_400);
const SPAN_DAYS: u32 = 7;
const QUERY_RUNS: usize = 7;

/// Deterministic xorshift.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Skewed towards 0: a few clients and paths get most requests, as in real traffic.
    fn skewed(&mut self, n: u64) -> u64 {
        let a = self.next() % n;
        let b = self.next() % n;
        a.min(b)
    }
}

/// The end of the generated span: now, to the second.
fn end() -> SystemTime {
    UNIX_EPOCH
        + Duration::from_secs(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        )
}

/// Record `i` of `total`, spread evenly over the seven days before `end`.
fn record(rng: &mut Rng, i: u64, total: u64, end: SystemTime) -> AccessRecord {
    let span = u64::from(SPAN_DAYS) * DAY.as_micros() as u64;
    let at = end - Duration::from_micros(span - span / total * i);
    let client = rng.skewed(5000);
    let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + client as u32));
    let path = format!("/shop/items/{}/detail", rng.skewed(500));
    let mut r = AccessRecord::new(at, ip, if i % 10 == 0 { "POST" } else { "GET" }, path);
    r.query = (i % 3 == 0).then(|| format!("page={}&sort=price&token=[REDACTED]", i % 40));
    r.body = (i % 10 == 0).then(|| "user=ann&password=[REDACTED]&remember=1".to_owned());
    r.referrer = Some("https://www.example.com/shop/search?q=shoes".to_owned());
    r.user_agent = Some(
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
         Chrome/126.0 Safari/537.36"
            .to_owned(),
    );
    r.session = Some(format!("s{:016x}", rng.next()));
    r.user = (client % 2 == 0).then(|| format!("user{}", client / 2));
    r.duration = Duration::from_micros(rng.next() % 200_000);
    r.bytes_sent = rng.next() % 100_000;
    r.verdict = Some(match rng.next() % 100 {
        0..=4 => {
            r.status = 403;
            AccessVerdict::new(Decision::Block, true, 100, Some(BlockReason::Blacklisted))
        }
        5 => AccessVerdict::new(Decision::Block, false, 80, Some(BlockReason::Risk)),
        _ => AccessVerdict::new(Decision::Allow, true, (rng.next() % 30) as u8, None),
    });
    r
}

/// Writes `total` records in batches; returns the time spent in `write`.
async fn ingest(log: &SqlAccessLog, total: u64, end: SystemTime) -> Duration {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut spent = Duration::ZERO;
    let mut i = 0;
    while i < total {
        let n = (total - i).min(batch_size() as u64);
        let batch: Vec<AccessRecord> = (i..i + n)
            .map(|j| record(&mut rng, j, total, end))
            .collect();
        let started = Instant::now();
        log.write(&batch).await.unwrap();
        spent += started.elapsed();
        i += n;
    }
    spent
}

/// Records per write: the access log writer's default, or `BOUNCER_BENCH_BATCH`.
fn batch_size() -> usize {
    std::env::var("BOUNCER_BENCH_BATCH")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(BATCH)
}

fn report_ingest(backend: &str, rows: u64, spent: Duration, target: u64) {
    let rate = rows as f64 / spent.as_secs_f64();
    println!(
        "access_log/ingest_{backend}: {rows} rows in {spent:.2?}: {rate:.0} rows/s \
         (batches of {}); target >= {target} rows/s",
        batch_size()
    );
}

/// How many rows a query answered.
trait Rows {
    fn rows(&self) -> usize;
}

impl<T> Rows for Vec<T> {
    fn rows(&self) -> usize {
        self.len()
    }
}

impl<T> Rows for actix_bouncer::access_log::Top<T> {
    fn rows(&self) -> usize {
        self.rows.len()
    }
}

/// Times each dashboard query (median of a few runs) and prints its plan.
async fn queries(log: &SqlAccessLog, backend: &str, rows: u64, end: SystemTime) {
    let day = end - DAY;
    let hour = end - Duration::from_secs(3600);
    let all = end - SPAN_DAYS * DAY;
    let busiest = log.top_ips(hour, 1).await.unwrap().rows[0].ip;
    let user = Subject::User("user1".to_owned());
    for (name, plan) in log.query_plans(day, all + DAY).await.unwrap() {
        println!("  plan {name}: {}", plan.replace('\n', " | "));
    }
    macro_rules! time {
        ($name:expr, $call:expr) => {{
            let mut runs = Vec::new();
            let mut rows_out = 0;
            for _ in 0..QUERY_RUNS {
                let started = Instant::now();
                rows_out = Rows::rows(&$call.await.unwrap());
                runs.push(started.elapsed());
            }
            runs.sort();
            println!(
                "access_log/query_{backend}_{rows}/{}: {:.2?} median, {:.2?} max ({} rows out); \
                 target <= 50 ms",
                $name,
                runs[QUERY_RUNS / 2],
                runs[QUERY_RUNS - 1],
                rows_out
            );
        }};
    }
    time!("top_paths_1h", log.top_paths(hour, 10));
    time!("top_paths_24h", log.top_paths(day, 10));
    time!("top_paths_7d", log.top_paths(all, 10));
    time!("top_ips_1h", log.top_ips(hour, 10));
    time!("top_ips_24h", log.top_ips(day, 10));
    time!("top_ips_7d", log.top_ips(all, 10));
    time!(
        "blocked_per_minute_1h",
        log.blocked_over_time(hour, Bucket::Minute)
    );
    time!(
        "blocked_per_minute_24h",
        log.blocked_over_time(day, Bucket::Minute)
    );
    time!(
        "blocked_per_hour_7d",
        log.blocked_over_time(all, Bucket::Hour)
    );
    time!("activity_ip_100", log.activity(&Subject::Ip(busiest), 100));
    time!("activity_user_100", log.activity(&user, 100));
}

/// Trims the oldest day while another writer writes batches of 100; prints the trim's rate
/// and the writer's slowest batch.
async fn trim_under_load(log: &SqlAccessLog, backend: &str, end: SystemTime) {
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let log = log.clone();
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let mut rng = Rng(7);
            let mut slowest = Duration::ZERO;
            let mut batches = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let batch: Vec<AccessRecord> = (0..100)
                    .map(|i| record(&mut rng, 1_000_000 - 100 + i, 1_000_000, end))
                    .collect();
                let started = Instant::now();
                log.write(&batch).await.unwrap();
                slowest = slowest.max(started.elapsed());
                batches += 1;
            }
            (slowest, batches)
        })
    };
    let started = Instant::now();
    let removed = log.trim(end - (SPAN_DAYS - 1) * DAY).await.unwrap();
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (slowest, batches) = writer.await.unwrap();
    println!(
        "access_log/trim_{backend}: {removed} rows in {took:.2?} ({:.0} rows/s); a concurrent \
         writer's slowest batch of 100: {slowest:.2?} ({batches} batches)",
        removed as f64 / took.as_secs_f64()
    );
}

/// Nanoseconds per request for `n` requests through `app`, each body read to its end (an
/// access record is complete when its body has been sent).
async fn per_request<S, B>(
    app: &S,
    first: u64,
    n: u64,
    request: impl Fn(u64) -> actix_http::Request,
) -> f64
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let started = Instant::now();
    for i in first..first + n {
        let res = app.call(request(i)).await.unwrap();
        std::hint::black_box(actix_web::test::read_body(res).await);
    }
    started.elapsed().as_nanos() as f64 / n as f64
}

/// The request path: added time per request, then a 60-second soak at 5,000 requests/s.
fn request_path() {
    use actix_bouncer::access_log::AccessLog;
    use actix_web::dev::Service;
    use actix_web::{test, web, App, HttpResponse};

    let system = actix_web::rt::System::new();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("requests.db").display());
    let store = system.block_on(SqlAccessLog::connect(&url)).unwrap();
    let log = AccessLog::builder().sink(store.clone()).build().unwrap();
    let bare = system.block_on(test::init_service(
        App::new().route("/items/{id}", web::get().to(HttpResponse::Ok)),
    ));
    let logged = system.block_on(test::init_service(
        App::new()
            .wrap(log.clone())
            .route("/items/{id}", web::get().to(HttpResponse::Ok)),
    ));
    let request = |i: u64| {
        test::TestRequest::get()
            .uri(&format!("/items/{}?page=2&token=secret", i % 500))
            .peer_addr("203.0.113.7:4242".parse().unwrap())
            .insert_header(("user-agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0"))
            .insert_header(("referer", "https://www.example.com/shop"))
            .to_request()
    };
    // Alternating rounds of 20,000 requests each; per-request medians of the rounds.
    const ROUND: u64 = 20_000;
    let (mut without, mut with) = (Vec::new(), Vec::new());
    system.block_on(async {
        for round in 0..10u64 {
            without.push(per_request(&bare, round * ROUND, ROUND, request).await);
            with.push(per_request(&logged, round * ROUND, ROUND, request).await);
            // Let the writer catch up between rounds, as it would between bursts.
            log.flush().await;
        }
    });
    without.sort_by(f64::total_cmp);
    with.sort_by(f64::total_cmp);
    let (a, b) = (without[without.len() / 2], with[with.len() / 2]);
    println!(
        "access_log/request_path: {a:.0} ns per request without the log, {b:.0} ns with it \
         (SQLite sink): +{:.2} µs; target <= 2 µs",
        (b - a) / 1000.0
    );

    // Latency at a steady rate, as a served app sees it (flat out, above, the writer is busy
    // on the other core the whole time): bare and logged requests interleaved, 10,000 a
    // second in all, each timed on its own.
    let paced: u64 = std::env::var("BOUNCER_BENCH_PACED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let (mut bare_ns, mut logged_ns) = (Vec::new(), Vec::new());
    system.block_on(async {
        let started = Instant::now();
        for i in 0..2 * paced {
            // Spun, not slept: a timer's millisecond would send bursts of ten.
            let due = started + Duration::from_micros(i * 100);
            while Instant::now() < due {
                std::hint::spin_loop();
            }
            let req = request(i);
            let t = Instant::now();
            if i % 2 == 0 {
                let res = bare.call(req).await.unwrap();
                std::hint::black_box(test::read_body(res).await);
                bare_ns.push(t.elapsed().as_nanos() as u64);
            } else {
                let res = logged.call(req).await.unwrap();
                std::hint::black_box(test::read_body(res).await);
                logged_ns.push(t.elapsed().as_nanos() as u64);
            }
        }
        log.flush().await;
    });
    bare_ns.sort_unstable();
    logged_ns.sort_unstable();
    let at = |v: &[u64], q: f64| v[((v.len() - 1) as f64 * q) as usize];
    println!(
        "access_log/request_latency: {paced} requests each way at 10,000/s in all: p50 {} ns \
         bare, {} ns logged: +{:.2} µs (p90 {} / {} ns); target <= 2 µs",
        at(&bare_ns, 0.5),
        at(&logged_ns, 0.5),
        (at(&logged_ns, 0.5) as f64 - at(&bare_ns, 0.5) as f64) / 1000.0,
        at(&bare_ns, 0.9),
        at(&logged_ns, 0.9),
    );

    // 5,000 requests a second for 60 s, paced; the writer drains to SQLite meanwhile.
    let seconds: u64 = std::env::var("BOUNCER_BENCH_SOAK_SECS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(60);
    let rate = 5_000u64;
    let before = log.stats();
    let (sent, deepest) = system.block_on(async {
        let started = Instant::now();
        let mut deepest = 0;
        let total = rate * seconds;
        for i in 0..total {
            let due = started + Duration::from_micros(i * 1_000_000 / rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                actix_web::rt::time::sleep(wait).await;
            }
            let res = logged.call(request(i)).await.unwrap();
            std::hint::black_box(test::read_body(res).await);
            if i % 1000 == 0 {
                deepest = deepest.max(log.stats().queued);
            }
        }
        log.shutdown().await;
        (total, deepest)
    });
    let after = log.stats();
    let written = after.written - before.written;
    // Every stored record, from the per-minute counts (a "top" query reads the newest only).
    let minutes = system
        .block_on(store.blocked_over_time(UNIX_EPOCH, Bucket::Hour))
        .unwrap();
    let stored: u64 = minutes
        .iter()
        .map(|b| b.blocked + b.would_block + b.allowed)
        .sum();
    println!(
        "access_log/soak: {sent} requests at {rate}/s for {seconds} s: {written} written, \
         {} dropped, {} failed, deepest queue {deepest} of {}; {stored} rows in SQLite in all; \
         target: none lost",
        after.dropped - before.dropped,
        after.failed - before.failed,
        after.capacity
    );
}

fn main() {
    if std::env::var_os("BOUNCER_BENCH_REQUEST_PATH_ONLY").is_some() {
        return request_path();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("access.db").display());
        let log = SqlAccessLog::connect(&url).await.unwrap();
        let end = end();
        let rows: u64 = std::env::var("BOUNCER_BENCH_ROWS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1_000_000);
        let spent = ingest(&log, rows, end).await;
        report_ingest("sqlite", rows, spent, 50_000);
        if std::env::var_os("BOUNCER_BENCH_INGEST_ONLY").is_some() {
            return;
        }
        queries(&log, "sqlite", rows, end).await;
        trim_under_load(&log, "sqlite", end).await;
        log.close().await;

        #[cfg(feature = "postgres")]
        postgres(end).await;
        #[cfg(not(feature = "postgres"))]
        println!("access_log/ingest_postgres: skipped (build with --features postgres)");
    });
    drop(runtime);
    request_path();
}

#[cfg(feature = "postgres")]
async fn postgres(end: SystemTime) {
    use sqlx::{Connection, Executor, PgConnection};

    let Some(server) = std::env::var("BOUNCER_BENCH_POSTGRES")
        .or_else(|_| std::env::var("BOUNCER_TEST_POSTGRES"))
        .ok()
    else {
        println!(
            "access_log/ingest_postgres: skipped (set BOUNCER_BENCH_POSTGRES=postgres://user@host/db)"
        );
        return;
    };
    let rows: u64 = std::env::var("BOUNCER_BENCH_PG_ROWS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200_000);
    let name = format!("bouncer_bench_access_log_{}", std::process::id());
    let mut admin = PgConnection::connect(&server).await.unwrap();
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    // The server's URL with the database replaced.
    let (base, query) = match server.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (server.as_str(), String::new()),
    };
    let authority = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority..].find('/') {
        Some(slash) => &base[..authority + slash],
        None => base,
    };
    let url = format!("{base}/{name}{query}");

    let log = SqlAccessLog::connect(&url).await.unwrap();
    let spent = ingest(&log, rows, end).await;
    report_ingest("postgres", rows, spent, 20_000);
    let mut conn = PgConnection::connect(&url).await.unwrap();
    conn.execute("VACUUM ANALYZE bouncer_access_log")
        .await
        .unwrap();
    conn.close().await.unwrap();
    queries(&log, "postgres", rows, end).await;
    trim_under_load(&log, "postgres", end).await;
    log.close().await;
    admin
        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await
        .unwrap();
}
