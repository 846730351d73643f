//! Latency of `UaMatcher::classify`: a browser-heavy mix of 20 real User-Agents, a header of
//! `MAX_SCANNED` bytes of browser text with a tool token at its very end, and a crafted
//! header that defeats the prefilter (the slowest path).

use std::hint::black_box;
use std::time::Duration;

use actix_bouncer::user_agent::{UaClass, UaMatcher, MAX_SCANNED};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

mod common;

fn classify(c: &mut Criterion) {
    let ua = UaMatcher::new();
    let mut group = c.benchmark_group("user_agent");
    group
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));

    let mut i = 0;
    group.throughput(Throughput::Elements(1));
    group.bench_function("classify", |b| {
        b.iter(|| {
            i = (i + 1) % common::UA_MIX.len();
            ua.classify(black_box(Some(common::UA_MIX[i].as_bytes())))
        })
    });

    // A full-length header: browser text with a tool token in the last bytes of the scanned
    // window, so every byte is looked at, and 1 KiB more that is never scanned.
    let mut worst = Vec::with_capacity(MAX_SCANNED);
    while worst.len() < MAX_SCANNED - 16 {
        worst.extend_from_slice(common::UA_MIX[0].as_bytes());
        worst.push(b' ');
    }
    worst.truncate(MAX_SCANNED - " curl/8.4.0".len());
    worst.push(b' ');
    worst.extend_from_slice(b"curl/8.4.0");
    worst.extend_from_slice(&[b'x'; 1024]);
    assert_eq!(
        ua.classify(Some(&worst)),
        UaClass::Automation { tool: "curl" }
    );
    group.bench_function("classify_512_bytes", |b| {
        b.iter(|| ua.classify(black_box(Some(&worst[..]))))
    });

    // Crafted: near-misses that hit the prefilter at every other byte, so the walk budget runs
    // out early and a plain automaton scan does the rest (the slow path).
    let crafted = "apache-httpclien ".repeat(40).into_bytes();
    assert_eq!(ua.classify(Some(&crafted)), UaClass::Other);
    group.bench_function("classify_512_crafted", |b| {
        b.iter(|| ua.classify(black_box(Some(&crafted[..]))))
    });

    group.finish();
}

criterion_group!(benches, classify);
criterion_main!(benches);
