#![cfg(feature = "reputation")]
//! The reputation client against a fake API served by actix-web on 127.0.0.1.
//!
//! TTLs are moved with `ManualClock::advance`; real time passes only inside the fake API
//! (to be slow) and while a background lookup finishes.

use std::net::{IpAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use actix_bouncer::clock::ManualClock;
use actix_bouncer::reputation::{IpReport, Reputation, ReputationConfig, ReputationError};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};

const AUTH_HEADER: &str = "X-Api-Key";

/// Nothing listens here (see `a_refused_connection_is_a_transport_error`).
const CLOSED_PORT_URL: &str = "http://127.0.0.1:9/{ip}";

/// What the fake API answers.
#[derive(Clone)]
enum Mode {
    /// 200 with this JSON body, after this delay.
    Json(Value, Duration),
    /// This status with an empty body.
    Status(u16),
    /// 200 with this (not necessarily JSON) body.
    Raw(&'static str),
}

struct ApiState {
    mode: Mutex<Mode>,
    calls: AtomicUsize,
    paths: Mutex<Vec<String>>,
    /// When set, requests without `X-Api-Key: <this>` get a 401.
    required_key: Mutex<Option<String>>,
}

/// The fake API: a handle to change its answers and read what it saw.
#[derive(Clone)]
struct Api {
    state: Arc<ApiState>,
    url: String,
}

impl Api {
    fn start(mode: Mode) -> Api {
        let state = Arc::new(ApiState {
            mode: Mutex::new(mode),
            calls: AtomicUsize::new(0),
            paths: Mutex::new(Vec::new()),
            required_key: Mutex::new(None),
        });
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let data = web::Data::from(Arc::clone(&state));
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                HttpServer::new(move || {
                    App::new()
                        .app_data(data.clone())
                        .default_service(web::to(answer))
                })
                .workers(1)
                .disable_signals()
                .listen(listener)
                .unwrap()
                .run()
                .await
            })
        });
        Api {
            state,
            url: format!("http://127.0.0.1:{port}/v1/ip/{{ip}}"),
        }
    }

    fn set(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    fn calls(&self) -> usize {
        self.state.calls.load(Ordering::SeqCst)
    }

    fn paths(&self) -> Vec<String> {
        self.state.paths.lock().unwrap().clone()
    }

    fn config(&self) -> ReputationConfig {
        let mut config = ReputationConfig::new(self.url.clone());
        config.timeout = Duration::from_millis(200);
        config
    }
}

async fn answer(req: HttpRequest, state: web::Data<ApiState>) -> HttpResponse {
    state.calls.fetch_add(1, Ordering::SeqCst);
    state.paths.lock().unwrap().push(req.path().to_owned());
    let required = state.required_key.lock().unwrap().clone();
    if let Some(required) = required {
        let given = req.headers().get(AUTH_HEADER).and_then(|v| v.to_str().ok());
        if given != Some(required.as_str()) {
            return HttpResponse::Unauthorized().finish();
        }
    }
    let mode = state.mode.lock().unwrap().clone();
    match mode {
        Mode::Json(body, delay) => {
            if !delay.is_zero() {
                actix_web::rt::time::sleep(delay).await;
            }
            HttpResponse::Ok().json(body)
        }
        Mode::Status(status) => {
            HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).finish()
        }
        Mode::Raw(body) => HttpResponse::Ok()
            .content_type("application/json")
            .body(body),
    }
}

fn json_now(body: Value) -> Mode {
    Mode::Json(body, Duration::ZERO)
}

fn risky(score: u64) -> Mode {
    json_now(json!({ "risk_score": score, "is_vpn": true }))
}

/// The API never answers in time: it sleeps 5 s, the client gives up after 200 ms.
fn asleep() -> Mode {
    Mode::Json(json!({ "risk_score": 1 }), Duration::from_secs(5))
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn client(config: ReputationConfig) -> (Reputation, ManualClock) {
    let clock = ManualClock::new();
    let reputation = Reputation::new(config, Arc::new(clock.clone())).unwrap();
    (reputation, clock)
}

/// Polls `done` every 20 ms of real time, for at most about 1 s.
async fn eventually(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..50 {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done()
}

#[tokio::test]
async fn maps_the_default_fields() {
    let api = Api::start(json_now(json!({
        "ip": "203.0.113.7",
        "risk_score": 87,
        "is_vpn": true,
        "is_proxy": false,
        "is_tor": true,
        "is_datacenter": true,
        "country_code": "NL",
        "asn": "AS13335",
        "isp": "Cloudflare, Inc.",
        "extra": { "ignored": [1, 2, 3] }
    })));
    let (reputation, _clock) = client(api.config());

    let report = reputation.lookup(ip("203.0.113.7")).await.unwrap();
    assert_eq!(*report, {
        let mut want = IpReport::default();
        want.risk_score = Some(87);
        want.is_vpn = true;
        want.is_proxy = false;
        want.is_tor = true;
        want.is_datacenter = true;
        want.country_code = Some("NL".into());
        want.asn = Some("AS13335".into());
        want.isp = Some("Cloudflare, Inc.".into());
        want
    });
    assert_eq!(api.paths(), ["/v1/ip/203.0.113.7"]);
    assert_eq!(reputation.stats().upstream_calls, 1);
}

#[tokio::test]
async fn missing_fields_are_none_or_false() {
    let api = Api::start(json_now(json!({ "risk_score": 250, "asn": 13335 })));
    let (reputation, _clock) = client(api.config());

    let report = reputation.lookup(ip("198.51.100.1")).await.unwrap();
    assert_eq!(*report, {
        let mut want = IpReport::default();
        want.risk_score = Some(100);
        want.asn = Some("AS13335".into());
        want
    });
}

#[tokio::test]
async fn maps_custom_field_names() {
    let api = Api::start(json_now(json!({
        "score": 12.6,
        "vpn": false,
        "proxy": true,
        "tor": false,
        "hosting": true,
        "country": "DE",
        "as": { "number": 3320, "name": "Deutsche Telekom AG" },
        // The default names hold decoys, which must be ignored.
        "risk_score": 99,
        "is_vpn": true,
    })));
    let mut config = api.config();
    {
        config.fields.risk_score = "score".into();
        config.fields.is_vpn = "vpn".into();
        config.fields.is_proxy = "proxy".into();
        config.fields.is_tor = "tor".into();
        config.fields.is_datacenter = "hosting".into();
        config.fields.country_code = "country".into();
        config.fields.asn = "as.number".into();
        config.fields.isp = "as.name".into();
    }
    let (reputation, _clock) = client(config);

    let report = reputation.lookup(ip("192.0.2.44")).await.unwrap();
    assert_eq!(*report, {
        let mut want = IpReport::default();
        want.risk_score = Some(13);
        want.is_vpn = false;
        want.is_proxy = true;
        want.is_tor = false;
        want.is_datacenter = true;
        want.country_code = Some("DE".into());
        want.asn = Some("AS3320".into());
        want.isp = Some("Deutsche Telekom AG".into());
        want
    });
}

#[tokio::test]
async fn ipv6_addresses_go_into_the_path() {
    let api = Api::start(risky(5));
    let (reputation, _clock) = client(api.config());

    reputation.lookup(ip("2001:db8::1")).await.unwrap();
    assert_eq!(api.paths(), ["/v1/ip/2001:db8::1"]);
}

#[tokio::test]
async fn reports_are_fresh_until_the_ttl_then_fetched_again() {
    let api = Api::start(risky(10));
    let mut config = api.config();
    config.cache_ttl = Duration::from_secs(60);
    let (reputation, clock) = client(config);
    let addr = ip("203.0.113.9");

    assert_eq!(reputation.lookup(addr).await.unwrap().risk_score, Some(10));
    api.set(risky(20));
    clock.advance(Duration::from_secs(59));
    assert_eq!(reputation.lookup(addr).await.unwrap().risk_score, Some(10));
    assert_eq!(reputation.peek(addr).unwrap().risk_score, Some(10));
    assert_eq!(api.calls(), 1);
    assert_eq!(reputation.stats().cache_hits, 2);

    clock.advance(Duration::from_secs(1));
    assert_eq!(reputation.lookup(addr).await.unwrap().risk_score, Some(20));
    assert_eq!(api.calls(), 2);
    assert_eq!(reputation.lookup(addr).await.unwrap().risk_score, Some(20));
    assert_eq!(api.calls(), 2);
}

#[tokio::test]
async fn peek_serves_a_stale_report_while_the_worker_refreshes_it() {
    let api = Api::start(risky(10));
    let mut config = api.config();
    config.cache_ttl = Duration::from_secs(60);
    config.stale_for = Duration::from_secs(600);
    let (reputation, clock) = client(config);
    let addr = ip("203.0.113.10");

    reputation.lookup(addr).await.unwrap();
    api.set(risky(90));
    clock.advance(Duration::from_secs(61));

    let stale = reputation.peek(addr).expect("a stale report is served");
    assert_eq!(stale.risk_score, Some(10));
    let stats = reputation.stats();
    assert_eq!(stats.stale_served, 1);
    assert_eq!(stats.queued, 1);

    let refreshed =
        eventually(|| reputation.peek(addr).and_then(|r| r.risk_score) == Some(90)).await;
    assert!(refreshed, "the worker refreshed the report");
    assert_eq!(api.calls(), 2);
}

#[tokio::test]
async fn stale_reports_outlive_a_failing_api_until_stale_for_runs_out() {
    let api = Api::start(risky(30));
    let mut config = api.config();
    config.cache_ttl = Duration::from_secs(60);
    config.stale_for = Duration::from_secs(600);
    config.negative_ttl = Duration::from_secs(30);
    let (reputation, clock) = client(config);
    let addr = ip("203.0.113.11");

    reputation.lookup(addr).await.unwrap();
    api.set(Mode::Status(503));
    clock.advance(Duration::from_secs(61));

    // The refresh fails: the stale report is served instead (stale-if-error).
    let report = reputation.lookup(addr).await.unwrap();
    assert_eq!(report.risk_score, Some(30));
    assert_eq!(api.calls(), 2);
    let stats = reputation.stats();
    assert_eq!(stats.failures, 1);
    assert_eq!(stats.stale_served, 1);

    // Within the negative TTL the API is left alone; the stale report keeps being served.
    assert_eq!(reputation.lookup(addr).await.unwrap().risk_score, Some(30));
    assert_eq!(reputation.peek(addr).unwrap().risk_score, Some(30));
    assert_eq!(api.calls(), 2);
    assert_eq!(
        reputation.stats().queued,
        0,
        "no refresh queued while failing"
    );

    // A timeout is an error like any other: stale is served again.
    clock.advance(Duration::from_secs(30));
    api.set(asleep());
    assert_eq!(reputation.lookup(addr).await.unwrap().risk_score, Some(30));
    assert_eq!(api.calls(), 3);

    // Once the report is too old even to be stale, the error comes through.
    clock.advance(Duration::from_secs(600));
    api.set(Mode::Status(503));
    assert_eq!(
        reputation.lookup(addr).await,
        Err(ReputationError::Status(503))
    );
    assert_eq!(api.calls(), 4);
    assert_eq!(reputation.peek(addr), None);
}

#[tokio::test]
async fn a_failing_api_is_called_once_per_negative_ttl() {
    let api = Api::start(Mode::Status(503));
    let mut config = api.config();
    config.negative_ttl = Duration::from_secs(30);
    let (reputation, clock) = client(config);
    let addr = ip("198.51.100.20");

    assert_eq!(
        reputation.lookup(addr).await,
        Err(ReputationError::Status(503))
    );
    for _ in 0..10 {
        assert_eq!(
            reputation.lookup(addr).await,
            Err(ReputationError::Unavailable)
        );
        assert_eq!(reputation.peek(addr), None);
    }
    clock.advance(Duration::from_millis(29_999));
    assert_eq!(
        reputation.lookup(addr).await,
        Err(ReputationError::Unavailable)
    );
    assert_eq!(api.calls(), 1);
    let stats = reputation.stats();
    assert_eq!(stats.failures, 1);
    assert_eq!(
        stats.queued, 0,
        "peek queues nothing while the failure is remembered"
    );

    clock.advance(Duration::from_millis(1));
    api.set(risky(44));
    assert_eq!(reputation.lookup(addr).await.unwrap().risk_score, Some(44));
    assert_eq!(api.calls(), 2);
}

#[tokio::test]
async fn a_slow_api_times_out() {
    let api = Api::start(asleep());
    let (reputation, _clock) = client(api.config());

    let started = Instant::now();
    assert_eq!(
        reputation.lookup(ip("192.0.2.1")).await,
        Err(ReputationError::Timeout)
    );
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(2), "waited {waited:?}");
    assert_eq!(reputation.stats().failures, 1);
}

#[tokio::test]
async fn error_statuses_are_reported() {
    let api = Api::start(Mode::Status(503));
    let (reputation, _clock) = client(api.config());
    assert_eq!(
        reputation.lookup(ip("192.0.2.2")).await,
        Err(ReputationError::Status(503))
    );
    api.set(Mode::Status(500));
    assert_eq!(
        reputation.lookup(ip("192.0.2.3")).await,
        Err(ReputationError::Status(500))
    );
    api.set(Mode::Status(429));
    assert_eq!(
        reputation.lookup(ip("192.0.2.4")).await,
        Err(ReputationError::Status(429))
    );
    assert_eq!(reputation.stats().failures, 3);
}

#[tokio::test]
async fn garbage_answers_are_malformed() {
    let api = Api::start(Mode::Raw("{\"risk_score\": 12, oops"));
    let (reputation, _clock) = client(api.config());
    let cases: [(&str, Mode); 5] = [
        ("192.0.2.10", Mode::Raw("{\"risk_score\": 12, oops")),
        ("192.0.2.11", Mode::Raw("<html>Bad gateway</html>")),
        ("192.0.2.12", Mode::Raw("[{\"risk_score\": 12}]")),
        ("192.0.2.13", Mode::Raw("\"risk_score\"")),
        (
            "192.0.2.14",
            json_now(json!({ "error": "invalid api key" })),
        ),
    ];
    for (addr, mode) in cases {
        api.set(mode);
        assert_eq!(
            reputation.lookup(ip(addr)).await,
            Err(ReputationError::Malformed),
            "{addr}"
        );
    }
    assert_eq!(reputation.stats().failures, 5);
}

#[tokio::test]
async fn a_refused_connection_is_a_transport_error() {
    // Port 9 (discard): privileged and below the ephemeral range, so no fake API of a test
    // running alongside can be listening there (a freed ephemeral port could be reused).
    let mut config = ReputationConfig::new(CLOSED_PORT_URL);
    config.timeout = Duration::from_millis(500);
    let (reputation, _clock) = client(config);

    assert_eq!(
        reputation.lookup(ip("192.0.2.20")).await,
        Err(ReputationError::Transport)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_lookups_of_one_address_share_one_call() {
    let api = Api::start(Mode::Json(
        json!({ "risk_score": 61 }),
        Duration::from_millis(150),
    ));
    let mut config = api.config();
    config.timeout = Duration::from_secs(2);
    let (reputation, _clock) = client(config);
    let addr = ip("203.0.113.50");

    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let reputation = reputation.clone();
            tokio::spawn(async move { reputation.lookup(addr).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().risk_score, Some(61));
    }
    assert_eq!(api.calls(), 1);
    assert_eq!(reputation.stats().upstream_calls, 1);
}

#[test]
fn lookups_from_separate_runtimes_share_one_call() {
    // As actix does it: one single-threaded runtime per worker thread.
    let api = Api::start(Mode::Json(
        json!({ "risk_score": 62 }),
        Duration::from_millis(150),
    ));
    let mut config = api.config();
    config.timeout = Duration::from_secs(2);
    let (reputation, _clock) = client(config);
    let addr = ip("203.0.113.51");
    let start = Arc::new(Barrier::new(4));

    let threads: Vec<_> = (0..4)
        .map(|_| {
            let reputation = reputation.clone();
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                start.wait();
                runtime.block_on(async {
                    let lookups: Vec<_> = (0..25)
                        .map(|_| {
                            let reputation = reputation.clone();
                            tokio::spawn(async move { reputation.lookup(addr).await })
                        })
                        .collect();
                    for lookup in lookups {
                        assert_eq!(lookup.await.unwrap().unwrap().risk_score, Some(62));
                    }
                });
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(api.calls(), 1);
}

#[tokio::test]
async fn peek_never_waits_for_a_slow_api() {
    let api = Api::start(asleep());
    let (reputation, _clock) = client(api.config());
    let addr = ip("203.0.113.60");

    let started = Instant::now();
    let first = reputation.peek(addr);
    let again = reputation.peek(addr);
    let took = started.elapsed();
    assert_eq!(first, None);
    assert_eq!(again, None);
    assert!(took < Duration::from_millis(50), "peek took {took:?}");
    assert_eq!(reputation.stats().queued, 1, "one address is queued once");

    // The worker's call times out after 200 ms; the failure is then remembered.
    assert!(eventually(|| reputation.stats().failures == 1).await);
    assert_eq!(reputation.peek(addr), None);
    assert_eq!(reputation.stats().queued, 1);
    assert_eq!(api.calls(), 1);
}

#[tokio::test]
async fn peek_misses_are_filled_in_the_background() {
    let api = Api::start(Mode::Json(
        json!({ "risk_score": 71, "is_tor": true }),
        Duration::from_millis(100),
    ));
    let (reputation, _clock) = {
        let mut config = api.config();
        config.timeout = Duration::from_secs(2);
        client(config)
    };
    let addr = ip("203.0.113.61");

    let started = Instant::now();
    assert_eq!(reputation.peek(addr), None);
    let took = started.elapsed();
    assert!(took < Duration::from_millis(50), "peek took {took:?}");

    assert!(eventually(|| reputation.peek(addr).is_some()).await);
    let report = reputation.peek(addr).unwrap();
    assert_eq!(report.risk_score, Some(71));
    assert!(report.is_tor);
    assert_eq!(api.calls(), 1);
    assert_eq!(reputation.stats().queued, 1);
}

#[tokio::test]
async fn a_full_queue_drops_lookups_and_counts_them() {
    let api = Api::start(asleep());
    let mut config = api.config();
    config.queue = 2;
    config.concurrency = 1;
    let (reputation, _clock) = client(config);

    for n in 0..50u8 {
        assert_eq!(reputation.peek(IpAddr::from([198, 51, 100, n])), None);
    }
    let stats = reputation.stats();
    assert_eq!(stats.queued + stats.dropped, 50);
    // Two wait in the queue, and the worker may already have taken one or two off it (each
    // of its calls gives up after 200 ms; the loop takes microseconds unless the machine
    // stalls).
    assert!((2..=4).contains(&stats.queued), "{stats:?}");
    assert!(stats.dropped >= 46, "{stats:?}");
}

#[test]
fn a_missing_auth_variable_is_refused() {
    let mut config = ReputationConfig::new(CLOSED_PORT_URL);
    config.auth_header = Some(AUTH_HEADER.into());
    config.auth_env = Some("ACTIX_BOUNCER_TEST_REPUTATION_UNSET_VARIABLE".into());
    let error = Reputation::new(config, Arc::new(ManualClock::new())).unwrap_err();
    assert_eq!(error.field(), "auth_env");
    assert!(error
        .to_string()
        .contains("ACTIX_BOUNCER_TEST_REPUTATION_UNSET_VARIABLE"));
}

#[tokio::test]
async fn the_auth_header_is_sent() {
    const VARIABLE: &str = "ACTIX_BOUNCER_TEST_REPUTATION_KEY";
    const SECRET: &str = "k-5f2c9e0d7a";
    std::env::set_var(VARIABLE, SECRET);

    let api = Api::start(risky(3));
    *api.state.required_key.lock().unwrap() = Some(SECRET.into());

    // Without the header the fake API refuses.
    let (anonymous, _clock) = client(api.config());
    assert_eq!(
        anonymous.lookup(ip("192.0.2.30")).await,
        Err(ReputationError::Status(401))
    );

    let mut config = api.config();
    config.auth_header = Some(AUTH_HEADER.into());
    config.auth_env = Some(VARIABLE.into());
    let (reputation, _clock) = client(config);
    assert_eq!(
        reputation
            .lookup(ip("192.0.2.30"))
            .await
            .unwrap()
            .risk_score,
        Some(3)
    );
    assert!(!format!("{reputation:?}").contains(SECRET));
    assert_eq!(api.calls(), 2);
}

#[test]
fn settings_are_validated() {
    let good = ReputationConfig::new("https://api.example.com/v1/{ip}");
    assert!(good.validate().is_ok());
    assert!(ReputationConfig::default().validate().is_err());

    type Spoil = fn(&mut ReputationConfig);
    let cases: &[(&str, Spoil)] = &[
        ("url", |c| c.url = "https://api.example.com/v1/".into()),
        ("url", |c| c.url = "api.example.com/{ip}".into()),
        ("timeout", |c| c.timeout = Duration::ZERO),
        ("cache_ttl", |c| c.cache_ttl = Duration::ZERO),
        ("stale_for", |c| c.stale_for = Duration::ZERO),
        ("negative_ttl", |c| c.negative_ttl = Duration::ZERO),
        ("max_entries", |c| c.max_entries = 0),
        ("queue", |c| c.queue = 0),
        ("concurrency", |c| c.concurrency = 0),
        ("auth_env", |c| c.auth_header = Some("Authorization".into())),
        ("auth_header", |c| c.auth_env = Some("TOKEN".into())),
        ("auth_header", |c| {
            c.auth_header = Some("bad header".into());
            c.auth_env = Some("TOKEN".into());
        }),
        ("fields.isp", |c| c.fields.isp = String::new()),
    ];
    for &(field, spoil) in cases {
        let mut config = good.clone();
        spoil(&mut config);
        let error = config.validate().unwrap_err();
        assert_eq!(error.field(), field, "{error}");
        let error = Reputation::new(config, Arc::new(ManualClock::new())).unwrap_err();
        assert_eq!(error.field(), field, "{error}");
    }
}

#[test]
fn defaults_are_as_documented() {
    let config = ReputationConfig::default();
    assert_eq!(config.url, "");
    assert_eq!(config.auth_header, None);
    assert_eq!(config.auth_env, None);
    assert_eq!(config.timeout, Duration::from_secs(2));
    assert_eq!(config.cache_ttl, Duration::from_secs(300));
    assert_eq!(config.stale_for, Duration::from_secs(3600));
    assert_eq!(config.negative_ttl, Duration::from_secs(30));
    assert_eq!(config.max_entries, 100_000);
    assert_eq!(config.queue, 1024);
    assert_eq!(config.concurrency, 16);
    assert_eq!(config.fields.risk_score, "risk_score");
    assert_eq!(config.fields.is_datacenter, "is_datacenter");
    assert_eq!(config.fields.isp, "isp");
}

#[test]
fn reputation_is_send_sync_and_usable_without_a_runtime() {
    fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync::<Reputation>();

    // `new` and `peek` need no runtime; the worker brings its own.
    let (reputation, _clock) = client(ReputationConfig::new(CLOSED_PORT_URL));
    assert_eq!(reputation.peek(ip("192.0.2.40")), None);
    drop(reputation);
}

/// The shared reputation cache (features `reputation` and `redis`), against the Redis named by
/// `BOUNCER_TEST_REDIS` (skipped, saying so, without it).
#[cfg(feature = "redis")]
mod shared_cache {
    use super::*;

    fn redis_url(test: &str) -> Option<String> {
        let url = std::env::var("BOUNCER_TEST_REDIS").ok();
        if url.is_none() {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr().lock(),
                "{test}: skipped: BOUNCER_TEST_REDIS not set (set BOUNCER_TEST_REDIS=redis://127.0.0.1:6379/)"
            );
        }
        url
    }

    fn prefix() -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        format!("bt:rep:{}:{nanos}", std::process::id())
    }

    #[tokio::test]
    async fn three_instances_ask_the_api_once_per_address() {
        let Some(url) = redis_url("three_instances_ask_the_api_once_per_address") else {
            return;
        };
        let api = Api::start(risky(77));
        let prefix = prefix();
        let instances: Vec<Reputation> = (0..3)
            .map(|_| {
                let mut config = api.config();
                config.shared_cache = Some(url.clone());
                config.shared_prefix = prefix.clone();
                client(config).0
            })
            .collect();
        for instance in &instances {
            let report = instance.lookup(ip("198.51.100.77")).await.unwrap();
            assert_eq!(report.risk_score, Some(77));
            assert!(report.is_vpn);
        }
        assert_eq!(
            api.calls(),
            1,
            "one upstream call across the three instances"
        );
        let shared: u64 = instances.iter().map(|r| r.stats().shared_hits).sum();
        assert_eq!(shared, 2);
        // The local cache stays in front: no further Redis read, nor API call.
        let again = instances[2].lookup(ip("198.51.100.77")).await.unwrap();
        assert_eq!(again.risk_score, Some(77));
        assert_eq!(instances[2].stats().shared_hits, 1);
        assert_eq!(api.calls(), 1);

        // A malformed value in Redis is ignored: the API is asked.
        let mut conn = redis::Client::open(url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        redis::cmd("SET")
            .arg(format!("{prefix}:rep:198.51.100.78"))
            .arg("{not json")
            .arg("PX")
            .arg(60_000)
            .exec_async(&mut conn)
            .await
            .unwrap();
        let report = instances[0].lookup(ip("198.51.100.78")).await.unwrap();
        assert_eq!(report.risk_score, Some(77));
        assert_eq!(api.calls(), 2);
    }

    #[tokio::test]
    async fn an_unreachable_shared_cache_falls_back_to_the_api() {
        let api = Api::start(risky(5));
        let mut config = api.config();
        config.shared_cache = Some("redis://127.0.0.1:9/".into());
        let (reputation, _) = client(config);
        let report = reputation.lookup(ip("198.51.100.5")).await.unwrap();
        assert_eq!(report.risk_score, Some(5));
        assert_eq!(api.calls(), 1);
        let mut config = api.config();
        config.shared_cache = Some("http://nope/".into());
        let err = Reputation::new(config, Arc::new(ManualClock::new())).unwrap_err();
        assert!(err.to_string().contains("shared_cache"), "{err}");
    }
}
