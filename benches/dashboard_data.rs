//! The admin dashboard's data at a million rows, in SQLite: what each page asks the access log
//! and the rules, timed (median of several runs; target: each ≤ 20 ms, so a page renders in
//! ≤ 50 ms).
//!
//! - Two access logs of a million records each: one spread over seven days (some 6,000 an
//!   hour), one with all of them in the last hour (a busy site, or an attack). On each: top
//!   paths, top clients, top blocked clients and block reasons over the last hour, day and
//!   week (each reads at most the newest `TOP_READ_MAX` records of its window), and blocked
//!   over time per minute for an hour and per hour for a day.
//! - The blocked records' index on ingest: a million records into a log with it and one
//!   without (dropped after the migrations), alternately, rows/s of each.
//! - A rule store of a million rules (70% automatic, most of the older ones expired; 30%
//!   manual; a few allow rules and config rules; 2% on users), through [`Rules`]: a page of
//!   50 with each filter [`ListQuery`] offers, the first page and one deep in, and
//!   [`Rules::counts`].
//!
//! - The dashboard's pages themselves, rendered through the actix service (session cookie,
//!   every query, the HTML): each page of the dashboard on the million rules and each log, the
//!   median of several loads (target: ≤ 50 ms each).
//!
//! `cargo bench --bench dashboard_data` (the first run writes the databases, some minutes;
//! `BOUNCER_BENCH_PAGES_ONLY=1` times only the pages, on the databases of an earlier run;
//! `BOUNCER_BENCH_DIR=/some/dir` keeps them for the next runs). `BOUNCER_BENCH_NO_INGEST=1`
//! skips the ingest comparison.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod common;
use common::{million_rules, Rng};

use actix_bouncer::access_log::{
    AccessRecord, AccessSink, AccessVerdict, Bucket, SqlAccessLog, TOP_READ_MAX,
};
use actix_bouncer::rules::{
    ListQuery, NewRule, RuleAction, RuleSource, RuleState, RuleStore, RuleTarget, Rules,
    SqlRuleStore,
};
use actix_bouncer::{BlockReason, Decision};

const RUNS: usize = 9;
const DAY: Duration = Duration::from_secs(86_400);
const HOUR: Duration = Duration::from_secs(3600);
const ROWS: u64 = 1_000_000;
const PAGE: usize = 50;

/// Now, to the second.
fn now_s() -> SystemTime {
    UNIX_EPOCH
        + Duration::from_secs(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        )
}

/// Record `i` of `total`, spread evenly over `span` before `end` (the generator of
/// `benches/access_log.rs`: 5% refused, 1% would have been in monitor mode).
fn record(rng: &mut Rng, i: u64, total: u64, span: Duration, end: SystemTime) -> AccessRecord {
    let span = span.as_micros() as u64;
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
        0..=2 => {
            r.status = 403;
            AccessVerdict::new(Decision::Block, true, 100, Some(BlockReason::Blacklisted))
        }
        3 => {
            r.status = 429;
            AccessVerdict::new(Decision::Block, true, 60, Some(BlockReason::RateLimited))
        }
        4 => {
            r.status = 403;
            AccessVerdict::new(Decision::Block, true, 100, Some(BlockReason::Banned))
        }
        5 => AccessVerdict::new(Decision::Block, false, 80, Some(BlockReason::Risk)),
        _ => AccessVerdict::new(Decision::Allow, true, (rng.next() % 30) as u8, None),
    });
    r
}

/// Writes `total` records over `span` before `end`, in the writer's batches; returns the
/// time spent in `write`.
async fn ingest(log: &SqlAccessLog, total: u64, span: Duration, end: SystemTime) -> Duration {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut spent = Duration::ZERO;
    let batch = actix_bouncer::access_log::DEFAULT_BATCH as u64;
    let mut i = 0;
    while i < total {
        let n = (total - i).min(batch);
        let records: Vec<AccessRecord> = (i..i + n)
            .map(|j| record(&mut rng, j, total, span, end))
            .collect();
        let started = Instant::now();
        log.write(&records).await.unwrap();
        spent += started.elapsed();
        i += n;
    }
    spent
}

/// Median and slowest of [`RUNS`] runs of `$call`, printed with what `$show` says of the
/// last answer.
macro_rules! time {
    ($name:expr, $call:expr, $show:expr) => {{
        let mut runs = Vec::new();
        let mut last = None;
        for _ in 0..RUNS {
            let started = Instant::now();
            let out = $call.await.unwrap();
            runs.push(started.elapsed());
            last = Some(out);
        }
        runs.sort();
        let show: String = $show(last.as_ref().unwrap());
        println!(
            "dashboard_data/{}: {:.2?} median, {:.2?} max; {}",
            $name,
            runs[RUNS / 2],
            runs[RUNS - 1],
            show
        );
        runs[RUNS / 2]
    }};
}

/// A log of a million records over `span` before the time kept beside it, written once into
/// `dir`; its handle and that end time.
async fn log_in(dir: &Path, name: &str, span: Duration) -> (SqlAccessLog, SystemTime) {
    let db = dir.join(format!("dashboard_{name}.db"));
    let end_file = dir.join(format!("dashboard_{name}.end"));
    let url = format!("sqlite://{}", db.display());
    let kept = std::fs::read_to_string(&end_file)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    if let (true, Some(secs)) = (db.exists(), kept) {
        let log = SqlAccessLog::connect(&url).await.unwrap();
        return (log, UNIX_EPOCH + Duration::from_secs(secs));
    }
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.join(format!("dashboard_{name}.db{suffix}")));
    }
    let end = now_s();
    let log = SqlAccessLog::connect(&url).await.unwrap();
    let spent = ingest(&log, ROWS, span, end).await;
    println!(
        "dashboard_data/setup: wrote the {name} log ({ROWS} records) in {spent:.2?} (setup, not a \
         target)"
    );
    std::fs::write(
        &end_file,
        end.duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            .to_string(),
    )
    .unwrap();
    (log, end)
}

fn cut<T>(top: &actix_bouncer::access_log::Top<T>) -> String {
    format!(
        "{} rows, {} records read{}",
        top.rows.len(),
        top.read,
        if top.window_cut { " (window cut)" } else { "" }
    )
}

async fn access_log(dir: &Path, name: &str, span: Duration) {
    let (log, end) = log_in(dir, name, span).await;
    let hour = end - HOUR;
    let day = end - DAY;
    let week = end - 7 * DAY;
    for (plan, text) in log.query_plans(hour, week).await.unwrap() {
        println!("  plan {plan}: {}", text.replace('\n', " | "));
    }
    println!("dashboard_data/{name}: TOP_READ_MAX = {TOP_READ_MAX}");
    for (window, since) in [("1h", hour), ("24h", day), ("7d", week)] {
        time!(
            format!("{name}/top_paths_{window}"),
            log.top_paths(since, 10),
            cut
        );
        time!(
            format!("{name}/top_ips_{window}"),
            log.top_ips(since, 10),
            cut
        );
        time!(
            format!("{name}/top_blocked_ips_{window}"),
            log.top_blocked_ips(since, 10),
            cut
        );
        time!(
            format!("{name}/block_reasons_{window}"),
            log.block_reasons(since),
            cut
        );
    }
    let buckets =
        |b: &Vec<actix_bouncer::access_log::BlockedBucket>| format!("{} buckets", b.len());
    time!(
        format!("{name}/blocked_per_minute_1h"),
        log.blocked_over_time(hour, Bucket::Minute),
        buckets
    );
    // The dashboard's chart starts on a whole minute: no part-minute of records to read.
    let whole = UNIX_EPOCH
        + Duration::from_secs(hour.duration_since(UNIX_EPOCH).unwrap().as_secs() / 60 * 60);
    time!(
        format!("{name}/blocked_per_minute_1h_whole_minute"),
        log.blocked_over_time(whole, Bucket::Minute),
        buckets
    );
    time!(
        format!("{name}/blocked_per_hour_24h"),
        log.blocked_over_time(day, Bucket::Hour),
        buckets
    );
    log.close().await;
}

/// A million records into a fresh log with the blocked records' index and one without,
/// alternately (twice each); the rows/s of each.
async fn ingest_with_and_without(dir: &Path) {
    let mut rates: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for round in 0..4 {
        let with = round % 2 == 0;
        let db = dir.join("dashboard_ingest.db");
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(dir.join(format!("dashboard_ingest.db{suffix}")));
        }
        let url = format!("sqlite://{}", db.display());
        let log = SqlAccessLog::connect(&url).await.unwrap();
        if !with {
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            sqlx::query("DROP INDEX bouncer_access_log_blocked")
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
        let spent = ingest(&log, ROWS, 7 * DAY, now_s()).await;
        log.close().await;
        rates[usize::from(!with)].push(ROWS as f64 / spent.as_secs_f64());
    }
    let show = |r: &[f64]| {
        r.iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mean = |r: &[f64]| r.iter().sum::<f64>() / r.len() as f64;
    println!(
        "dashboard_data/ingest: rows/s with the blocked index {} / without {} (alternate runs \
         of {ROWS}): {:+.1}%",
        show(&rates[0]),
        show(&rates[1]),
        (mean(&rates[0]) / mean(&rates[1]) - 1.0) * 100.0
    );
}

/// The million rules: the benchmarks' million networks, 2% of them turned into user rules;
/// 70% automatic (bans, the older 60% of all expired a day ago, the rest in force), the rest
/// manual (a tenth of those expiring in a year), 0.1% allow rules, 100 config rules.
fn dashboard_rules(now: SystemTime) -> Vec<actix_bouncer::rules::RuleDraft> {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    million_rules()
        .into_iter()
        .enumerate()
        .map(|(i, rule)| {
            let target = if i % 50 == 7 {
                RuleTarget::User(format!("user{i}"))
            } else {
                rule.target
            };
            let r = rng.next() % 10_000;
            let action = if r % 1000 == 1 {
                RuleAction::Allow
            } else {
                RuleAction::Block
            };
            let mut new = NewRule::new(action, target);
            if i % 10_000 == 5 {
                new = new.source(RuleSource::Config);
            } else if r < 7000 {
                let expires = if i < 600_000 {
                    now - DAY
                } else {
                    now + 365 * DAY
                };
                new = new
                    .source(RuleSource::Auto)
                    .expires_at(expires)
                    .comment(format!(
                        "banned: rate limit (offence 1); request {:016x}: GET /login",
                        rng.next()
                    ));
            } else if r % 10 == 0 {
                new = new.expires_at(now + 365 * DAY).comment("until the audit");
            }
            new.draft(now - 2 * DAY)
        })
        .collect()
}

fn rules(dir: &Path, runtime: &tokio::runtime::Runtime) {
    let db = dir.join("dashboard_rules.db");
    let url = format!("sqlite://{}", db.display());
    if !db.exists() || std::fs::metadata(dir.join("dashboard_rules.done")).is_err() {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(dir.join(format!("dashboard_rules.db{suffix}")));
        }
        let started = Instant::now();
        runtime.block_on(async {
            let store = SqlRuleStore::connect(&url).await.unwrap();
            let drafts = dashboard_rules(SystemTime::now());
            for chunk in drafts.chunks(100_000) {
                store.insert(chunk.to_vec()).await.unwrap();
            }
            store.close().await;
        });
        std::fs::write(dir.join("dashboard_rules.done"), "").unwrap();
        println!(
            "dashboard_data/setup: wrote 1M rules in {:.2?} (setup, not a target)",
            started.elapsed()
        );
    }
    let plans = runtime.block_on(async {
        let store = SqlRuleStore::connect(&url).await.unwrap();
        let plans = store.query_plans(SystemTime::now()).await.unwrap();
        store.close().await;
        plans
    });
    for (name, plan) in plans {
        println!("  plan list {name}: {}", plan.replace('\n', " | "));
    }
    let owned = url.clone();
    let started = Instant::now();
    let rules = Rules::builder()
        .open(move || async move { SqlRuleStore::connect(&owned).await })
        .unwrap();
    println!(
        "dashboard_data/rules: loaded and compiled in {:.2?} (setup, not a target)",
        started.elapsed()
    );
    runtime.block_on(async {
        let counts = rules.counts();
        let mut took = Vec::new();
        for _ in 0..1000 {
            let started = Instant::now();
            std::hint::black_box(rules.counts());
            took.push(started.elapsed());
        }
        took.sort();
        println!(
            "dashboard_data/rules/counts: {:.2?} median of 1000 calls; {} rules in force: \
             manual {}, config {}, auto {}; block {}, allow {}; {} networks, {} users",
            took[500],
            counts.total,
            counts.by_source.manual,
            counts.by_source.config,
            counts.by_source.auto,
            counts.by_action.block,
            counts.by_action.allow,
            counts.networks,
            counts.users
        );
        let deep = actix_bouncer::rules::RuleId(900_000);
        let first = ListQuery::first(PAGE);
        let network: RuleTarget = million_rules()[123_456].target.clone();
        let user = RuleTarget::User("user507".to_owned());
        let queries: Vec<(&str, ListQuery)> = vec![
            ("all", first.clone()),
            ("source_manual", first.clone().source(RuleSource::Manual)),
            ("source_config", first.clone().source(RuleSource::Config)),
            ("source_auto", first.clone().source(RuleSource::Auto)),
            ("action_block", first.clone().action(RuleAction::Block)),
            ("action_allow", first.clone().action(RuleAction::Allow)),
            (
                "auto_allow",
                first
                    .clone()
                    .source(RuleSource::Auto)
                    .action(RuleAction::Allow),
            ),
            ("target_network", first.clone().target(network)),
            ("target_user", first.clone().target(user)),
            ("state_active", first.clone().state(RuleState::Active)),
            ("state_expired", first.clone().state(RuleState::Expired)),
            (
                "auto_active",
                first
                    .clone()
                    .source(RuleSource::Auto)
                    .state(RuleState::Active),
            ),
            (
                "auto_expired",
                first
                    .clone()
                    .source(RuleSource::Auto)
                    .state(RuleState::Expired),
            ),
            (
                "manual_expired",
                first
                    .clone()
                    .source(RuleSource::Manual)
                    .state(RuleState::Expired),
            ),
            (
                "config_allow_active",
                first
                    .clone()
                    .source(RuleSource::Config)
                    .action(RuleAction::Allow)
                    .state(RuleState::Active),
            ),
        ];
        let page = |p: &actix_bouncer::rules::RulePage| {
            format!("{} rules, next {:?}", p.rules.len(), p.next.map(|id| id.0))
        };
        for (name, query) in queries {
            time!(
                format!("rules/list_{name}"),
                rules.list(query.clone()),
                page
            );
            time!(
                format!("rules/list_{name}_after_900000"),
                rules.list(query.clone().after(deep)),
                page
            );
        }
    });
}

/// Each page of the dashboard, through the actix service, on the million rules and the log
/// `name`: the median time of a load.
#[cfg(feature = "dashboard")]
fn pages(dir: &Path, name: &str) {
    use actix_bouncer::Bouncer;
    use actix_web::{test, App};
    const TOKEN: &str = "bench-token-0123456789abcdef";
    let rules_url = format!("sqlite://{}", dir.join("dashboard_rules.db").display());
    let log_url = format!(
        "sqlite://{}",
        dir.join(format!("dashboard_{name}.db")).display()
    );
    actix_web::rt::System::new().block_on(async move {
        let started = Instant::now();
        let bouncer = Bouncer::builder()
            .admin_token("bench", TOKEN)
            .rule_store_url(rules_url)
            .limit(1_000_000_000, Duration::from_secs(60))
            .build()
            .unwrap();
        let store = SqlAccessLog::connect(&log_url).await.unwrap();
        let app = test::init_service(
            App::new()
                .wrap(bouncer.clone())
                .service(bouncer.dashboard("/ui").log_store(store.clone())),
        )
        .await;
        println!(
            "dashboard_data/pages_{name}: bouncer with {} rules ready in {:.2?} (setup, not a target)",
            bouncer.rules().counts().total,
            started.elapsed()
        );
        let peer: std::net::SocketAddr = "192.0.2.10:40000".parse().unwrap();
        let login = test::TestRequest::post()
            .uri("/ui/login")
            .peer_addr(peer)
            .set_form([("token", TOKEN)])
            .to_request();
        let res = test::call_service(&app, login).await;
        let cookie = res
            .headers()
            .get("set-cookie")
            .unwrap()
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        // A client of the log's busiest addresses, and a user with rules.
        let busy = store
            .top_ips(SystemTime::now() - 8 * DAY, 1)
            .await
            .unwrap()
            .rows
            .first()
            .map_or_else(|| "198.51.100.1".to_owned(), |r| r.ip.to_string());
        let paths = [
            "/ui/".to_owned(),
            "/ui/rules".to_owned(),
            "/ui/rules?source=auto&state=active".to_owned(),
            "/ui/rules?state=expired".to_owned(),
            "/ui/rules?after=900000".to_owned(),
            "/ui/bans".to_owned(),
            format!("/ui/client?q={busy}"),
            "/ui/client?q=user%3Auser507".to_owned(),
        ];
        for path in &paths {
            let mut runs = Vec::with_capacity(RUNS);
            let mut bytes = 0;
            for _ in 0..RUNS {
                let req = test::TestRequest::get()
                    .uri(path)
                    .peer_addr(peer)
                    .insert_header(("cookie", cookie.as_str()))
                    .to_request();
                let started = Instant::now();
                let res = test::call_service(&app, req).await;
                assert_eq!(res.status(), 200, "{path}");
                bytes = test::read_body(res).await.len();
                runs.push(started.elapsed());
            }
            runs.sort();
            println!(
                "dashboard_data/pages_{name}{path}: {:.2?} median of {RUNS} (min {:.2?}, max {:.2?}), {bytes} bytes",
                runs[RUNS / 2],
                runs[0],
                runs[RUNS - 1]
            );
        }
        store.close().await;
    });
}

fn main() {
    // `BOUNCER_BENCH_DIR` keeps the databases between runs (writing them takes a while).
    let temp = tempfile::tempdir().unwrap();
    let dir = std::env::var_os("BOUNCER_BENCH_DIR").map_or(temp.path().to_owned(), Into::into);
    std::fs::create_dir_all(&dir).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // The pages alone, on databases an earlier run wrote into `BOUNCER_BENCH_DIR`.
    #[cfg(feature = "dashboard")]
    if std::env::var_os("BOUNCER_BENCH_PAGES_ONLY").is_some() {
        drop(runtime);
        for name in ["week", "hour"] {
            pages(&dir, name);
        }
        return;
    }
    runtime.block_on(async {
        access_log(&dir, "week", 7 * DAY).await;
        access_log(&dir, "hour", HOUR).await;
        if std::env::var_os("BOUNCER_BENCH_NO_INGEST").is_none() {
            ingest_with_and_without(&dir).await;
        }
    });
    rules(&dir, &runtime);
    drop(runtime);
    #[cfg(feature = "dashboard")]
    for name in ["week", "hour"] {
        pages(&dir, name);
    }
}
