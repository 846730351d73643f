//! Metrics (feature `prometheus`): known traffic through real actix-web requests, then a
//! scrape of the `GET /metrics` resource, parsed as Prometheus text.
//!
//! The global recorder can be set once per process. Every test installs the same one
//! (`install_prometheus` is idempotent), runs under one lock (so that `cargo test`, which runs
//! the tests of this file on threads of one process, sees exact deltas) and asserts deltas
//! between two scrapes; under nextest each test has the process to itself.
#![cfg(feature = "prometheus")]

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use actix_bouncer::feeds::{FeedConfig, FeedFormat, FeedKind};
use actix_bouncer::metrics::{self, AccessLogCounts, MetricsEndpoint};
use actix_bouncer::{Bouncer, Mode, NewRule};
use actix_web::http::{header, StatusCode};
use actix_web::{test, web, App, HttpResponse};

/// A browser's User-Agent: the User-Agent signal adds nothing.
const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";

/// One test at a time in a process: the counters are global.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One sample: name, labels, value.
type Samples = BTreeMap<(String, BTreeMap<String, String>), f64>;

/// Parses the Prometheus text format strictly enough to catch a malformed exposition: every
/// line is a `# HELP`, a `# TYPE` or a sample `name{labels} value`; a name has one TYPE, given
/// before its samples; every sample belongs to a TYPEd family; no label value is an address.
fn parse(text: &str) -> Samples {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut helps: BTreeSet<String> = BTreeSet::new();
    let mut samples = Samples::new();
    let valid_name = |name: &str| {
        let mut chars = name.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(valid_name(name), "HELP name {name:?}");
            assert!(!help.trim().is_empty(), "empty HELP for {name}");
            assert!(helps.insert(name.to_owned()), "two HELP lines for {name}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(valid_name(name), "TYPE name {name:?}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "TYPE {kind:?} of {name}"
            );
            assert!(
                types.insert(name.to_owned(), kind.to_owned()).is_none(),
                "two TYPE lines for {name}"
            );
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment line {line:?}");
        // A sample: name, optional {labels}, value.
        let (head, value) = line.rsplit_once(' ').expect("sample `name value`");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("value of {line:?}")),
        };
        let (name, labels) = match head.split_once('{') {
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("labels end with }");
                (name, parse_labels(body))
            }
            None => (head, BTreeMap::new()),
        };
        assert!(valid_name(name), "sample name {name:?}");
        let family = types
            .keys()
            .find(|f| {
                *f == name
                    || ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|s| name.strip_suffix(s) == Some(f.as_str()))
            })
            .unwrap_or_else(|| panic!("sample {name} before (or without) its TYPE"));
        if types[family] == "counter" || types[family] == "gauge" {
            assert_eq!(family, name, "a {} has plain samples", types[family]);
        }
        for (key, val) in &labels {
            assert!(
                ["decision", "reason", "limit", "quantile", "le"].contains(&key.as_str()),
                "unexpected label {key} on {name}"
            );
            assert!(
                val.parse::<IpAddr>().is_err(),
                "an address as a label: {line}"
            );
        }
        assert!(
            samples.insert((name.to_owned(), labels), value).is_none(),
            "duplicate sample {line:?}"
        );
    }
    for name in &helps {
        assert!(types.contains_key(name), "HELP without TYPE for {name}");
    }
    samples
}

/// `k="v",k2="v2"`, with `\"`, `\\` and `\n` escapes.
fn parse_labels(body: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = body;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"").expect("label key=\"value\"");
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().expect("label value ends with a quote") {
                (i, '"') => break i,
                (_, '\\') => match chars.next().expect("escape").1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        assert!(
            key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "label name {key:?}"
        );
        assert!(
            labels.insert(key.to_owned(), value).is_none(),
            "label {key} twice"
        );
        rest = after[end + 1..]
            .strip_prefix(',')
            .unwrap_or(&after[end + 1..]);
    }
    labels
}

fn value(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> f64 {
    let labels: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    samples
        .get(&(name.to_owned(), labels.clone()))
        .copied()
        .unwrap_or_else(|| panic!("no sample {name}{labels:?}"))
}

/// Scrapes `bouncer`'s resource from an app it does not wrap (so scrapes are not counted).
async fn scrape(bouncer: &Bouncer) -> Samples {
    let app = test::init_service(App::new().service(bouncer.metrics_resource("/metrics"))).await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/metrics").to_request()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let content_type = res
        .headers()
        .get(header::CONTENT_TYPE)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let body = test::read_body(res).await;
    parse(std::str::from_utf8(&body).unwrap())
}

fn get(from: &str) -> actix_http::Request {
    test::TestRequest::get()
        .uri("/")
        .peer_addr(format!("{from}:4242").parse().unwrap())
        .insert_header(("user-agent", BROWSER))
        .to_request()
}

const REQUESTS: &str = "bouncer_requests_total";

fn requests(samples: &Samples, decision: &str, reason: &str) -> f64 {
    value(
        samples,
        REQUESTS,
        &[("decision", decision), ("reason", reason)],
    )
}

#[actix_web::test]
async fn counts_requests_by_decision_and_reason() {
    let _serial = SERIAL.lock().await;
    let banning = Bouncer::builder()
        .prometheus(true)
        .limit(2, Duration::from_secs(60))
        .ban_for(Duration::from_secs(600))
        .rule(NewRule::block("203.0.113.66".parse().unwrap()))
        .build()
        .unwrap();
    let limiting = Bouncer::builder()
        .prometheus(true)
        .limit(1, Duration::from_secs(60))
        .build()
        .unwrap();
    let before = scrape(&banning).await;

    let ok = || web::get().to(|| async { HttpResponse::Ok().body("ok") });
    let app = test::init_service(App::new().wrap(banning.clone()).route("/", ok())).await;
    let mut statuses = Vec::new();
    for from in [
        "198.51.100.1", // allowed
        "198.51.100.1", // allowed
        "198.51.100.1", // over the limit: banned (a ban starts)
        "198.51.100.1", // banned
        "203.0.113.66", // blocked by the rule
    ] {
        statuses.push(test::call_service(&app, get(from)).await.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 403, 403, 403]);
    let app = test::init_service(App::new().wrap(limiting.clone()).route("/", ok())).await;
    let mut statuses = Vec::new();
    for from in ["198.51.100.2", "198.51.100.2"] {
        statuses.push(test::call_service(&app, get(from)).await.status().as_u16());
    }
    assert_eq!(statuses, [200, 429]);

    banning.rules().compact().await.unwrap();
    let after = scrape(&banning).await;
    let delta = |decision: &str, reason: &str| {
        requests(&after, decision, reason) - requests(&before, decision, reason)
    };
    assert_eq!(delta("allow", "none"), 3.0);
    assert_eq!(delta("block", "banned"), 2.0);
    assert_eq!(delta("block", "rate_limited"), 1.0);
    assert_eq!(delta("block", "blacklisted"), 1.0);
    assert_eq!(delta("block", "risk"), 0.0);
    assert_eq!(delta("block", "restricted"), 0.0);
    let bans = |s: &Samples| value(s, "bouncer_bans_started_total", &[("limit", "global")]);
    assert_eq!(bans(&after) - bans(&before), 1.0);

    // The gauges of the bouncer scraped last.
    assert_eq!(value(&after, "bouncer_active_bans", &[]), 1.0);
    assert_eq!(value(&after, "bouncer_tracked_keys", &[]), 1.0);
    assert_eq!(value(&after, "bouncer_rules_in_snapshot", &[]), 1.0);
    assert_eq!(
        value(&after, "bouncer_rules_reload_failures_total", &[]),
        0.0
    );
    assert_eq!(
        value(&after, "bouncer_rules_consecutive_failures", &[]),
        0.0
    );
    assert_eq!(value(&after, "bouncer_evictions_total", &[]), 0.0);
}

#[actix_web::test]
async fn monitor_mode_counts_would_block() {
    let _serial = SERIAL.lock().await;
    let bouncer = Bouncer::builder()
        .prometheus(true)
        .mode(Mode::Monitor)
        .rule(NewRule::block("203.0.113.67".parse().unwrap()))
        .build()
        .unwrap();
    let before = scrape(&bouncer).await;
    let app = test::init_service(
        App::new()
            .wrap(bouncer.clone())
            .route("/", web::get().to(|| async { "ok" })),
    )
    .await;
    let res = test::call_service(&app, get("203.0.113.67")).await;
    assert_eq!(res.status(), StatusCode::OK, "monitor mode lets it through");
    let after = scrape(&bouncer).await;
    let delta = |decision: &str, reason: &str| {
        requests(&after, decision, reason) - requests(&before, decision, reason)
    };
    assert_eq!(delta("would_block", "blacklisted"), 1.0);
    assert_eq!(delta("allow", "none"), 0.0);
}

#[cfg(feature = "macros")]
#[actix_bouncer::rate_limit(hits = 1, per = "1m", ban_for = "15m")]
async fn once() -> &'static str {
    "once"
}

#[cfg(feature = "macros")]
#[actix_web::test]
async fn counts_guard_refusals_and_handler_bans() {
    let _serial = SERIAL.lock().await;
    let bouncer = Bouncer::builder()
        .prometheus(true)
        .limit(1_000, Duration::from_secs(60))
        .build()
        .unwrap();
    let before = scrape(&bouncer).await;
    let app = test::init_service(
        App::new()
            .wrap(bouncer.clone())
            .route("/", web::get().to(once)),
    )
    .await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(
            test::call_service(&app, get("198.51.100.9"))
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses[0], 200);
    assert!(statuses[1] >= 400 && statuses[2] >= 400, "{statuses:?}");
    let after = scrape(&bouncer).await;
    let guard = |s: &Samples| {
        value(
            s,
            "bouncer_guard_refusals_total",
            &[("decision", "block"), ("reason", "banned")],
        )
    };
    assert_eq!(guard(&after) - guard(&before), 2.0);
    let bans = |s: &Samples| value(s, "bouncer_bans_started_total", &[("limit", "handler")]);
    assert_eq!(bans(&after) - bans(&before), 1.0);
    // The middleware let all three through.
    assert_eq!(
        requests(&after, "allow", "none") - requests(&before, "allow", "none"),
        3.0
    );
}

#[actix_web::test]
async fn publishes_feed_gauges() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tor.txt");
    std::fs::write(&path, "203.0.113.7\n203.0.113.8\n2001:db8::/32\n").unwrap();
    let bouncer = Bouncer::builder()
        .prometheus(true)
        .feed(FeedConfig::new(
            &path,
            FeedFormat::Netset,
            Some(FeedKind::Tor),
        ))
        .build()
        .unwrap();

    let app = test::init_service(App::new().service(bouncer.metrics_resource("/metrics"))).await;
    let body =
        test::call_and_read_body(&app, test::TestRequest::get().uri("/metrics").to_request()).await;
    let samples = parse(std::str::from_utf8(&body).unwrap());
    assert_eq!(value(&samples, "bouncer_feed_ranges", &[]), 3.0);
    assert_eq!(
        value(&samples, "bouncer_feed_reload_failures_total", &[]),
        0.0
    );
}

#[actix_web::test]
async fn an_unreadable_feed_counts_a_reload_failure() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bots.txt");
    std::fs::write(&path, "198.51.100.0/24\n").unwrap();
    let feeds = actix_bouncer::feeds::Feeds::load(vec![FeedConfig::new(
        &path,
        FeedFormat::Netset,
        Some(FeedKind::Bot),
    )])
    .unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(feeds.reload_now(), 0);
    assert_eq!(feeds.reload_failures(), 1);
    assert_eq!(feeds.len(), 1, "the feed kept its ranges");
}

#[actix_web::test]
async fn every_series_has_help_and_no_client_labels() {
    let _serial = SERIAL.lock().await;
    let bouncer = Bouncer::builder().prometheus(true).build().unwrap();
    let app = test::init_service(
        App::new()
            .wrap(bouncer.clone())
            .route("/", web::get().to(|| async { "ok" })),
    )
    .await;
    for i in 0..20 {
        test::call_service(&app, get(&format!("198.51.100.{i}"))).await;
    }
    let handle = metrics::prometheus_handle().expect("installed by the builder");
    let text = MetricsEndpoint::with_handle(handle)
        .before_scrape(move || bouncer.publish_metrics())
        .render()
        .unwrap();
    let samples = parse(&text);
    for (name, _) in samples.keys() {
        assert!(name.starts_with("bouncer_"), "{name}");
        let family = name
            .trim_end_matches("_bucket")
            .trim_end_matches("_sum")
            .trim_end_matches("_count");
        assert!(
            text.contains(&format!("# HELP {family} "))
                || text.contains(&format!("# HELP {name} ")),
            "no HELP for {name}"
        );
    }
    // 20 clients, yet one series per decision and reason: allow, then block (and, if a
    // monitor-mode bouncer was built in this process, would_block) by reason.
    let series: Vec<_> = samples.keys().filter(|(n, _)| n == REQUESTS).collect();
    assert!(series.len() == 6 || series.len() == 11, "{series:?}");
    for (_, labels) in series {
        assert!(["allow", "block", "would_block"].contains(&labels["decision"].as_str()));
    }
}

#[actix_web::test]
async fn installing_is_idempotent() {
    let _serial = SERIAL.lock().await;
    let first = metrics::install_prometheus().unwrap();
    let again = metrics::install_prometheus().unwrap();
    assert_eq!(parse(&first.render()), parse(&again.render()));
    // Another recorder cannot take over: the facade takes one per process.
    let other = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    assert!(::metrics::set_global_recorder(other).is_err());
    assert!(!metrics::use_prometheus(other_handle()));
}

fn other_handle() -> metrics::PrometheusHandle {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .build_recorder()
        .handle()
}

/// A reputation API on a local port answering every request with `body` (one connection per
/// request).
#[cfg(feature = "reputation")]
fn fake_reputation_api(body: &'static str) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://127.0.0.1:{port}/v1/ip/{{ip}}")
}

#[cfg(feature = "reputation")]
#[actix_web::test]
async fn publishes_reputation_counters_and_api_latency() {
    use actix_bouncer::config::ReputationSettings;

    let _serial = SERIAL.lock().await;
    let mut settings = ReputationSettings::new(fake_reputation_api(r#"{"risk_score": 12}"#));
    settings.api.timeout = Duration::from_secs(5);
    settings.critical_paths = vec!["/login".into()];
    let bouncer = Bouncer::builder()
        .prometheus(true)
        .reputation(settings)
        .build()
        .unwrap();
    let histogram_count = |s: &Samples| {
        s.get(&(
            "bouncer_reputation_api_seconds_count".to_owned(),
            BTreeMap::new(),
        ))
        .copied()
        .unwrap_or(0.0)
    };
    let before = scrape(&bouncer).await;
    let app = test::init_service(
        App::new()
            .wrap(bouncer.clone())
            .route("/login", web::get().to(|| async { "ok" })),
    )
    .await;
    // The first waits for the API (a miss), the second is answered from the cache (a hit).
    for _ in 0..2 {
        let req = test::TestRequest::get()
            .uri("/login")
            .peer_addr("192.0.2.44:4000".parse().unwrap())
            .insert_header(("user-agent", BROWSER))
            .to_request();
        assert_eq!(test::call_service(&app, req).await.status(), StatusCode::OK);
    }
    let after = scrape(&bouncer).await;
    let calls = value(&after, "bouncer_reputation_api_calls_total", &[]);
    assert!(calls >= 1.0, "{calls}");
    assert!(value(&after, "bouncer_reputation_cache_misses_total", &[]) >= 1.0);
    assert!(value(&after, "bouncer_reputation_cache_hits_total", &[]) >= 1.0);
    assert_eq!(
        value(&after, "bouncer_reputation_api_failures_total", &[]),
        0.0
    );
    assert_eq!(
        value(&after, "bouncer_reputation_queue_dropped_total", &[]),
        0.0
    );
    // One duration per upstream call, in buckets.
    assert_eq!(histogram_count(&after) - histogram_count(&before), calls);
    assert!(after.keys().any(
        |(name, labels)| name == "bouncer_reputation_api_seconds_bucket"
            && labels.get("le").map(String::as_str) == Some("+Inf")
    ));
}

/// Keeps access-log records in memory.
#[derive(Clone, Default)]
struct Memory(std::sync::Arc<std::sync::Mutex<Vec<actix_bouncer::access_log::AccessRecord>>>);

impl actix_bouncer::access_log::AccessSink for Memory {
    async fn write(
        &self,
        batch: &[actix_bouncer::access_log::AccessRecord],
    ) -> Result<(), actix_bouncer::StoreError> {
        self.0.lock().unwrap().extend_from_slice(batch);
        Ok(())
    }
}

#[actix_web::test]
async fn publishes_the_access_logs_counters() {
    let _serial = SERIAL.lock().await;
    let bouncer = Bouncer::builder().prometheus(true).build().unwrap();
    let memory = Memory::default();
    let log = bouncer.access_log().sink(memory.clone()).build().unwrap();
    let app = test::init_service(
        App::new()
            .wrap(bouncer.clone())
            .wrap(log.clone())
            .route("/", web::get().to(|| async { "ok" })),
    )
    .await;
    for _ in 0..3 {
        test::call_service(&app, get("198.51.100.77")).await;
    }
    log.flush().await;
    assert_eq!(memory.0.lock().unwrap().len(), 3);

    let endpoint = bouncer.metrics_endpoint().access_log(log.clone());
    let app = test::init_service(App::new().service(endpoint.resource("/metrics"))).await;
    let body =
        test::call_and_read_body(&app, test::TestRequest::get().uri("/metrics").to_request()).await;
    let samples = parse(std::str::from_utf8(&body).unwrap());
    assert_eq!(
        value(&samples, "bouncer_access_log_rows_written_total", &[]),
        3.0
    );
    assert_eq!(value(&samples, "bouncer_access_log_queue_depth", &[]), 0.0);
    assert_eq!(
        value(&samples, "bouncer_access_log_records_dropped_total", &[]),
        0.0
    );
    assert_eq!(
        value(&samples, "bouncer_access_log_write_failures_total", &[]),
        0.0
    );

    // Another log's counts; running totals published twice keep the larger value.
    let endpoint = MetricsEndpoint::new().before_scrape(|| {
        metrics::publish_access_log_counts(AccessLogCounts {
            queued: 5,
            written: 120,
            dropped: 2,
            failed: 1,
        })
    });
    let samples = parse(&endpoint.render().unwrap());
    assert_eq!(value(&samples, "bouncer_access_log_queue_depth", &[]), 5.0);
    assert_eq!(
        value(&samples, "bouncer_access_log_rows_written_total", &[]),
        120.0
    );
    assert_eq!(
        value(&samples, "bouncer_access_log_records_dropped_total", &[]),
        2.0
    );
    assert_eq!(
        value(&samples, "bouncer_access_log_write_failures_total", &[]),
        1.0
    );
}

/// A Redis counter store's sync shows in the scrape (when `BOUNCER_TEST_REDIS` names a
/// server): connected, and its round trips counted.
#[cfg(feature = "redis")]
#[actix_web::test]
async fn publishes_the_shared_counter_stores_counts() {
    let Ok(url) = std::env::var("BOUNCER_TEST_REDIS") else {
        eprintln!("skipped: BOUNCER_TEST_REDIS not set");
        return;
    };
    let _serial = SERIAL.lock().await;
    metrics::install_prometheus().unwrap();
    let bouncer = Bouncer::from_toml_str(&format!(
        "[store]\ncounters = \"{url}\"\ncounters_prefix = \"metrics-{}\"\ncounters_timeout = \"500ms\"",
        std::process::id()
    ))
    .unwrap();
    let app = test::init_service(
        App::new()
            .wrap(bouncer.clone())
            .route("/", web::get().to(HttpResponse::Ok)),
    )
    .await;
    let before = scrape(&bouncer).await;
    let trips = |s: &Samples| value(s, "bouncer_counter_store_round_trips_total", &[]);
    let start = std::time::Instant::now();
    loop {
        let res = test::call_service(&app, get("198.51.100.30")).await;
        assert_eq!(res.status(), StatusCode::OK);
        let now = scrape(&bouncer).await;
        if trips(&now) > trips(&before) {
            assert_eq!(value(&now, "bouncer_counter_store_connected", &[]), 1.0);
            assert_eq!(
                value(&now, "bouncer_counter_store_failures_total", &[]),
                0.0
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no round trip was counted"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}
