//! The whole signal pipeline per request, in process: bare actix-web, the bouncer with its
//! defaults (User-Agent signal only), and the bouncer with every signal: the 158k shared ranges
//! (or the sample feeds when the shared file is absent), the User-Agent, and a reputation
//! report already in the cache (served by a local stand-in for the API).
//!
//! `cargo bench --features reputation --bench signals`

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::time::Duration;

mod common;
use common::timed;

use actix_bouncer::config::ReputationSettings;
use actix_bouncer::feeds::{FeedConfig, FeedFormat, FeedKind};
use actix_bouncer::Bouncer;
use actix_web::{test, web, App, HttpResponse, HttpServer};
use criterion::{criterion_group, criterion_main, Criterion};

const BROWSER: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";

/// A local stand-in for the reputation API: every address scores 20.
fn fake_api() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            HttpServer::new(|| {
                App::new().default_service(web::to(|| async {
                    HttpResponse::Ok().json(serde_json::json!({"risk_score": 20, "isp": "Example"}))
                }))
            })
            .workers(1)
            .disable_signals()
            .listen(listener)
            .unwrap()
            .run()
            .await
        })
    });
    format!("http://127.0.0.1:{port}/v1/ip/{{ip}}")
}

fn feeds() -> Vec<FeedConfig> {
    let shared = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/hosting-vpn-tor-ranges.tsv"
    );
    if Path::new(shared).exists() {
        return vec![FeedConfig::new(shared, FeedFormat::Tsv, None)];
    }
    eprintln!("signals: {shared} not found; benchmarking the sample feeds instead");
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data");
    vec![
        FeedConfig::new(
            format!("{data}/tor-exits.txt"),
            FeedFormat::Netset,
            Some(FeedKind::Tor),
        ),
        FeedConfig::new(format!("{data}/ranges.tsv"), FeedFormat::Tsv, None),
    ]
}

/// A request from `peer` with a browser's User-Agent.
fn request(peer: SocketAddr) -> actix_http::Request {
    test::TestRequest::get()
        .uri("/")
        .peer_addr(peer)
        .insert_header(("user-agent", BROWSER))
        .to_request()
}

fn signals(c: &mut Criterion) {
    let rt = actix_web::rt::System::new();
    // An address inside a hosting range of the shared file (1.12.0.0/14, Tencent Cloud), and of
    // the sample file otherwise.
    let peer: SocketAddr = if feeds().len() == 1 {
        "1.12.3.4:40000"
    } else {
        "192.0.2.10:40000"
    }
    .parse()
    .unwrap();
    let limit = (1_000_000_000, Duration::from_secs(1));

    let bare = rt.block_on(test::init_service(
        App::new().route("/", web::get().to(HttpResponse::Ok)),
    ));
    let defaults = rt.block_on(test::init_service(
        App::new()
            .wrap(Bouncer::builder().limit(limit.0, limit.1).build().unwrap())
            .route("/", web::get().to(HttpResponse::Ok)),
    ));
    let mut reputation = ReputationSettings::new(fake_api());
    reputation.api.timeout = Duration::from_secs(5);
    // The report is fetched once on this critical path, then served from the cache.
    reputation.critical_paths = vec!["/".into()];
    let mut builder = Bouncer::builder()
        .limit(limit.0, limit.1)
        .reputation(reputation);
    for feed in feeds() {
        builder = builder.feed(feed);
    }
    let full = rt.block_on(test::init_service(
        App::new()
            .wrap(builder.build().unwrap())
            .route("/", web::get().to(HttpResponse::Ok)),
    ));
    let warm = test::TestRequest::get()
        .uri("/")
        .peer_addr(peer)
        .insert_header(("user-agent", BROWSER));
    let res = rt.block_on(test::call_service(&full, warm.to_request()));
    assert!(res.status().is_success());

    let mut group = c.benchmark_group("signals");
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("bare_actix", |b| {
        b.iter_custom(|iters| timed(iters, &bare, || request(peer)))
    });
    group.bench_function("bouncer_defaults", |b| {
        b.iter_custom(|iters| timed(iters, &defaults, || request(peer)))
    });
    group.bench_function("bouncer_all_signals", |b| {
        b.iter_custom(|iters| timed(iters, &full, || request(peer)))
    });
    group.finish();
}

criterion_group!(benches, signals);
criterion_main!(benches);
