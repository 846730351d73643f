//! The per-request decision path, in process: bare actix-web against the same app behind the
//! bouncer with a million rules loaded, for a repeat client and a first-seen client; and the
//! rule snapshot on its own (build, lookup, memory).
//!
//! `cargo bench --bench decision`

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

mod common;
use common::{million_rules, timed};

use actix_bouncer::guard::LowRisk;
use actix_bouncer::{Bouncer, NewRule, RuleTarget, Rules};
use actix_web::dev::Service;
use actix_web::{test, web, App, FromRequest, HttpRequest, HttpResponse};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use futures_util::FutureExt;

fn probe_v4(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(
        u32::from(Ipv4Addr::new(198, 18, 0, 0)) + (i & 0x1_ffff),
    ))
}

fn decision(c: &mut Criterion) {
    let rt = actix_web::rt::System::new();
    let rules = million_rules();
    let bouncer = Bouncer::builder()
        // Generous limits: the repeat client must stay allowed for the whole measurement.
        .limit(1_000_000_000, Duration::from_secs(1))
        .build()
        .unwrap();
    rt.block_on(bouncer.rules().add_many(rules)).unwrap();

    let bare = rt.block_on(test::init_service(
        App::new().route("/", web::get().to(HttpResponse::Ok)),
    ));
    let guarded = rt.block_on(test::init_service(
        App::new()
            .wrap(bouncer.clone())
            .route("/", web::get().to(HttpResponse::Ok)),
    ));

    let repeat: SocketAddr = "198.18.0.1:40000".parse().unwrap();
    let request = |peer: SocketAddr| {
        test::TestRequest::get()
            .uri("/")
            .peer_addr(peer)
            .to_request()
    };

    let mut group = c.benchmark_group("decision");
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("bare_actix", |b| {
        b.iter_custom(|iters| timed(iters, &bare, || request(repeat)))
    });
    group.bench_function("bouncer_repeat_client", |b| {
        b.iter_custom(|iters| timed(iters, &guarded, || request(repeat)))
    });
    let mut next = 0u32;
    group.bench_function("bouncer_first_seen_client", |b| {
        b.iter_custom(|iters| {
            timed(iters, &guarded, || {
                // A new /64 every time; past the tracked-key cap this also pays for eviction.
                next = next.wrapping_add(1);
                let ip = Ipv6Addr::from((0x2001_0db8u128 << 96) | (u128::from(next) << 64));
                request(SocketAddr::new(IpAddr::V6(ip), 40000))
            })
        })
    });
    group.finish();
}

fn rules_1m(c: &mut Criterion) {
    let rt = actix_web::rt::System::new();
    let rules = Rules::new();
    let started = Instant::now();
    rt.block_on(rules.add_many(million_rules())).unwrap();
    let snapshot = rules.snapshot();
    eprintln!(
        "rules_1m: add_many(1M) took {:?}; compiled snapshot heap = {:.1} MiB",
        started.elapsed(),
        snapshot.heap_bytes() as f64 / (1024.0 * 1024.0)
    );
    one_addition_on_top_of_a_million(&rt);

    let mut group = c.benchmark_group("rules_1m");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("build_snapshot", |b| {
        b.iter_batched(
            million_rules,
            |batch| {
                let fresh = Rules::new();
                rt.block_on(fresh.add_many(batch)).unwrap();
                fresh
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();

    // Probes: the network address of rules (hits) and the benchmarking range (misses).
    let hits: Vec<IpAddr> = million_rules()
        .iter()
        .step_by(251)
        .take(4096)
        .filter_map(|r| match r.target {
            RuleTarget::Network(net) => Some(net.addr()),
            _ => None,
        })
        .collect();
    let misses: Vec<IpAddr> = (0..4096).map(|i| probe_v4(i * 31)).collect();

    let mut group = c.benchmark_group("rules_1m");
    for (name, probes) in [("check_hit", &hits), ("check_miss", &misses)] {
        let mut i = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) % probes.len();
                black_box(rules.check(black_box(probes[i]), None))
            })
        });
    }
    group.finish();
}

/// One rule added on top of a million: in force through the overlay when `add` returns, with
/// no recompilation on the way (the worker folds it in later, off every request path).
fn one_addition_on_top_of_a_million(rt: &actix_web::rt::SystemRunner) {
    let rules = Rules::new();
    rt.block_on(rules.add_many(million_rules())).unwrap();
    let mut times: Vec<Duration> = (0..200u32)
        .map(|i| {
            let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, (i % 250) as u8));
            let rule = NewRule::block(RuleTarget::ip(ip)).comment(format!("one of 200: {i}"));
            let started = Instant::now();
            rt.block_on(rules.add(rule)).unwrap();
            started.elapsed()
        })
        .collect();
    times.sort();
    eprintln!(
        "rules_1m: one add on top of 1M rules, 200 times: median {:?}, p99 {:?} (a full \
         compilation is the add_many figure above)",
        times[100], times[198]
    );
    let started = Instant::now();
    rt.block_on(rules.compact()).unwrap();
    eprintln!(
        "rules_1m: folding them into the base (off the request path): {:?}",
        started.elapsed()
    );
}

async fn plain() -> HttpResponse {
    HttpResponse::Ok().finish()
}

async fn guarded(_guard: LowRisk<70>) -> HttpResponse {
    HttpResponse::Ok().finish()
}

#[actix_bouncer::require_low_risk(threshold = 70)]
async fn guarded_by_attribute() -> HttpResponse {
    HttpResponse::Ok().finish()
}

/// What a route guard adds: the same handler with and without `LowRisk<70>`, behind the same
/// bouncer.
fn guard(c: &mut Criterion) {
    let rt = actix_web::rt::System::new();
    let bouncer = Bouncer::builder()
        .limit(1_000_000_000, Duration::from_secs(1))
        .build()
        .unwrap();
    // One app per variant, each handler its only route, so routing costs the same.
    let without = rt.block_on(test::init_service(
        App::new()
            .wrap(bouncer.clone())
            .route("/", web::get().to(plain)),
    ));
    let extractor = rt.block_on(test::init_service(
        App::new()
            .wrap(bouncer.clone())
            .route("/", web::get().to(guarded)),
    ));
    let attribute = rt.block_on(test::init_service(
        App::new()
            .wrap(bouncer)
            .route("/", web::get().to(guarded_by_attribute)),
    ));
    let peer: SocketAddr = "198.18.0.1:40000".parse().unwrap();
    let request = || {
        test::TestRequest::get()
            .uri("/")
            .peer_addr(peer)
            .to_request()
    };
    let mut group = c.benchmark_group("guard");
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("without_guard", |b| {
        b.iter_custom(|iters| timed(iters, &without, request))
    });
    group.bench_function("low_risk_extractor", |b| {
        b.iter_custom(|iters| timed(iters, &extractor, request))
    });
    group.bench_function("require_low_risk_attribute", |b| {
        b.iter_custom(|iters| timed(iters, &attribute, request))
    });

    // The guard alone, on a real request that went through the bouncer: what the extractor
    // adds to a handler, without the end-to-end noise of a whole request.
    thread_local!(static CAPTURED: std::cell::RefCell<Option<HttpRequest>> = const { std::cell::RefCell::new(None) });
    let capture = rt.block_on(test::init_service(App::new().wrap(Bouncer::new()).route(
        "/",
        web::get().to(|req: HttpRequest| async move {
            CAPTURED.with(|c| *c.borrow_mut() = Some(req));
            HttpResponse::Ok().finish()
        }),
    )));
    drop(capture.call(request()).now_or_never());
    let req = CAPTURED
        .with(|c| c.borrow_mut().take())
        .expect("the handler ran");
    group.bench_function("low_risk_extract_only", |b| {
        b.iter(|| black_box(LowRisk::<70>::extract(black_box(&req)).now_or_never()))
    });
    group.finish();
}

criterion_group!(benches, decision, guard, rules_1m);
criterion_main!(benches);
