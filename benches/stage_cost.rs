//! The cost of single request stages, in instructions, for callgrind: client resolution and
//! User-Agent classification, each called alone on prepared inputs.
//!
//! Everything (resolver, matcher, header maps, agent strings) is built outside [`measured`],
//! which only calls the stage `n` times over the prepared inputs. Run under
//! `valgrind --tool=callgrind --toggle-collect='*measured*'`, the collected instructions divided
//! by `n` are the cost of one call (plus the loop, which the `noop` scenario measures alone);
//! `benches/stage_cost.sh` runs every scenario that way and prints the table.
//!
//! `stage_cost SCENARIO [CALLS]` (default 10000 calls); without a scenario it prints the usage.
//! Scenarios:
//!
//! - `noop`: the loop alone (reads the next input, black-boxes it);
//! - `resolve_direct`: no trusted proxies (the default), a client connecting directly;
//! - `resolve_xff_0`: a trusted proxy's own request, no forwarding header;
//! - `resolve_xff_1`: a trusted proxy, `X-Forwarded-For: 203.0.113.7`;
//! - `resolve_xff_5`: a trusted proxy and four more in the header, then the client: five hops read;
//! - `resolve_xff_v6`: a trusted proxy, `X-Forwarded-For: 2001:db8:85a3::8a2e:370:7334`;
//! - `resolve_forwarded_1`: a trusted proxy, `Forwarded: for=203.0.113.7;proto=https`;
//! - `ua_browser`: one 110-byte Chrome User-Agent, every call;
//! - `ua_browser_mix`: 20 real agents in turn (mostly browsers);
//! - `ua_browser_distinct`: a different browser agent every call (a version number counts up);
//! - `ua_tool`: `curl/8.4.0`; `ua_crawler`: Googlebot's smartphone agent (212 bytes);
//! - `ua_512`: 512 bytes of browser text with `curl/8.4.0` at its very end;
//! - `ua_crafted`: 680 bytes crafted to hit the prefilter everywhere (the slowest path).
//!
//! Nothing here hashes with a random seed except actix-http's header map (`resolve_*`), whose
//! lookups in a map of one or two headers cost the same whatever the seed.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;

use actix_bouncer::client_ip::{ClientIpResolver, IpHeader};
use actix_bouncer::user_agent::{UaClass, UaMatcher, MAX_SCANNED};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};

mod common;

const SCENARIOS: [&str; 15] = [
    "noop",
    "resolve_direct",
    "resolve_xff_0",
    "resolve_xff_1",
    "resolve_xff_5",
    "resolve_xff_v6",
    "resolve_forwarded_1",
    "ua_browser",
    "ua_browser_mix",
    "ua_browser_distinct",
    "ua_tool",
    "ua_crawler",
    "ua_512",
    "ua_crafted",
    "ua_missing",
];

const DEFAULT_CALLS: usize = 10_000;

/// Calls before the measurement, outside it (fills caches, lazy statics, thread locals).
const WARM_UP: usize = 500;

/// 110 bytes: Chrome on Windows.
const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

const GOOGLEBOT: &str = "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.201 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

/// The measured region: `n` calls of `stage` with the call number. Generic, so every scenario
/// gets its own copy; callgrind's `--toggle-collect='*measured*'` finds them all by name.
#[inline(never)]
fn measured<F: FnMut(usize)>(n: usize, mut stage: F) {
    for i in 0..n {
        stage(black_box(i));
    }
}

/// Warms up, then measures `n` calls.
fn run<F: FnMut(usize)>(n: usize, mut stage: F) {
    for i in 0..WARM_UP {
        stage(i);
    }
    measured(n, stage);
}

fn usage() -> String {
    format!(
        "usage: stage_cost SCENARIO [CALLS]   (SCENARIO: {}; CALLS default {DEFAULT_CALLS})",
        SCENARIOS.join(", ")
    )
}

fn header_map(name: &'static str, value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        HeaderName::from_static(name),
        HeaderValue::from_str(value).expect("a valid header value"),
    );
    headers
}

/// A resolver trusting `10.0.0.0/8` (or nothing) that reads `X-Forwarded-For` or `Forwarded`.
fn resolver(trusted: bool, header: IpHeader) -> ClientIpResolver {
    let trusted = if trusted {
        vec!["10.0.0.0/8".parse().expect("a network")]
    } else {
        Vec::new()
    };
    ClientIpResolver::new(trusted, vec![header], 32, 64)
}

fn resolve_scenario(n: usize, resolver: &ClientIpResolver, peer: IpAddr, headers: &HeaderMap) {
    let client = resolver.resolve(Some(peer), headers);
    eprintln!("client: {} ({:?})", client.ip, client.source);
    assert!(client.is_known());
    run(n, |_| {
        black_box(resolver.resolve(black_box(Some(peer)), black_box(headers)));
    });
}

fn ua_scenario(n: usize, agents: &[Vec<u8>], expect: Option<UaClass>) {
    let ua = UaMatcher::new();
    if let Some(expect) = expect {
        for agent in agents {
            assert_eq!(ua.classify(Some(agent)), expect, "{agent:?}");
        }
    }
    run(n, |i| {
        let agent = &agents[i % agents.len()];
        black_box(ua.classify(black_box(Some(&agent[..]))));
    });
}

fn main() -> ExitCode {
    let (scenario, n) = match common::scenario_args(&SCENARIOS, DEFAULT_CALLS, "CALLS", &usage()) {
        Ok(Some(args)) => args,
        Ok(None) => return ExitCode::SUCCESS,
        Err(code) => return code,
    };

    let proxy = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    let client = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 9));
    let xff = IpHeader::XForwardedFor;
    let one = |s: &str| vec![s.as_bytes().to_vec()];
    match scenario.as_str() {
        "noop" => {
            let inputs = one(CHROME);
            run(n, |i| {
                black_box(&inputs[i % inputs.len()]);
            });
        }
        "resolve_direct" => {
            resolve_scenario(n, &resolver(false, xff), client, &HeaderMap::new());
        }
        "resolve_xff_0" => {
            resolve_scenario(n, &resolver(true, xff), proxy, &HeaderMap::new());
        }
        "resolve_xff_1" => {
            let headers = header_map("x-forwarded-for", "203.0.113.7");
            resolve_scenario(n, &resolver(true, xff), proxy, &headers);
        }
        "resolve_xff_5" => {
            let headers = header_map(
                "x-forwarded-for",
                "203.0.113.7, 10.1.0.5, 10.1.0.4, 10.1.0.3, 10.1.0.2",
            );
            resolve_scenario(n, &resolver(true, xff), proxy, &headers);
        }
        "resolve_xff_v6" => {
            let headers = header_map("x-forwarded-for", "2001:db8:85a3::8a2e:370:7334");
            resolve_scenario(n, &resolver(true, xff), proxy, &headers);
        }
        "resolve_forwarded_1" => {
            let headers = header_map("forwarded", "for=203.0.113.7;proto=https");
            let resolver = resolver(true, IpHeader::Forwarded);
            resolve_scenario(n, &resolver, proxy, &headers);
        }
        "ua_browser" => ua_scenario(n, &one(CHROME), Some(UaClass::Other)),
        "ua_browser_mix" => {
            let agents: Vec<Vec<u8>> = common::UA_MIX
                .iter()
                .map(|s| s.as_bytes().to_vec())
                .collect();
            ua_scenario(n, &agents, None);
        }
        "ua_browser_distinct" => {
            // One agent per call (warm-up included), none repeated.
            let agents: Vec<Vec<u8>> = (0..n + WARM_UP)
                .map(|i| {
                    format!(
                        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.{i}.0 Safari/537.36"
                    )
                    .into_bytes()
                })
                .collect();
            let ua = UaMatcher::new();
            let mut next = 0;
            run(n, |_| {
                let agent = &agents[next];
                next += 1;
                black_box(ua.classify(black_box(Some(&agent[..]))));
            });
        }
        "ua_tool" => ua_scenario(
            n,
            &one("curl/8.4.0"),
            Some(UaClass::Automation { tool: "curl" }),
        ),
        "ua_crawler" => ua_scenario(
            n,
            &one(GOOGLEBOT),
            Some(UaClass::Crawler {
                crawler: "Googlebot",
            }),
        ),
        "ua_512" => {
            // Browser text with a tool token in the last bytes of the scanned window.
            let mut worst = Vec::with_capacity(MAX_SCANNED);
            while worst.len() < MAX_SCANNED - 16 {
                worst.extend_from_slice(CHROME.as_bytes());
                worst.push(b' ');
            }
            worst.truncate(MAX_SCANNED - " curl/8.4.0".len());
            worst.push(b' ');
            worst.extend_from_slice(b"curl/8.4.0");
            ua_scenario(n, &[worst], Some(UaClass::Automation { tool: "curl" }));
        }
        "ua_crafted" => {
            let crafted = "apache-httpclien ".repeat(40).into_bytes();
            ua_scenario(n, &[crafted], Some(UaClass::Other));
        }
        "ua_missing" => {
            let ua = UaMatcher::new();
            run(n, |_| {
                black_box(ua.classify(black_box(None)));
            });
        }
        _ => unreachable!("checked above"),
    }
    eprintln!("{scenario}: {n} calls measured");
    ExitCode::SUCCESS
}
