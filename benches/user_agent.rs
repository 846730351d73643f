//! Latency of `UaMatcher::classify`: a browser-heavy mix of 20 real User-Agents, a header of
//! `MAX_SCANNED` bytes of browser text with a tool token at its very end, and a crafted
//! header that defeats the prefilter (the slowest path).

use std::hint::black_box;
use std::time::Duration;

use actix_bouncer::user_agent::{UaClass, UaMatcher, MAX_SCANNED};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// 20 agents, as a busy public site sees them: mostly browsers, some crawlers and tools.
const MIX: [&str; 20] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.67",
    "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 OPR/110.0.0.0",
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.201 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36",
    "curl/8.4.0",
    "python-requests/2.31.0",
    "Go-http-client/1.1",
];

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
            i = (i + 1) % MIX.len();
            ua.classify(black_box(Some(MIX[i].as_bytes())))
        })
    });

    // A full-length header: browser text with a tool token in the last bytes of the scanned
    // window, so every byte is looked at, and 1 KiB more that is never scanned.
    let mut worst = Vec::with_capacity(MAX_SCANNED);
    while worst.len() < MAX_SCANNED - 16 {
        worst.extend_from_slice(MIX[0].as_bytes());
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
