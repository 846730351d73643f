//! Helpers shared by the benchmarks.
#![allow(dead_code)] // each bench uses some of them

use std::hint::black_box;
use std::time::{Duration, Instant};

use std::net::{Ipv4Addr, Ipv6Addr};

use actix_bouncer::{NewRule, RuleTarget};
use actix_web::dev::Service;
use futures_util::FutureExt;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// Times `iters` requests from `make`.
///
/// Each request is built outside the timed region, then called and dropped inside it, one at
/// a time: actix recycles request heads (and their extension maps) through a pool, as it does
/// in a server. Building requests in big batches would defeat the pool and charge every
/// request an extension-map allocation that a server never pays.
pub fn timed<S, F>(iters: u64, svc: &S, mut make: F) -> Duration
where
    S: Service<actix_http::Request>,
    F: FnMut() -> actix_http::Request,
{
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let req = make();
        let start = Instant::now();
        drop(black_box(svc.call(req).now_or_never()));
        total += start.elapsed();
    }
    total
}

/// Deterministic xorshift, so every run loads the same rules.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Skewed towards 0: a few clients and paths get most requests, as in real traffic.
    pub fn skewed(&mut self, n: u64) -> u64 {
        let a = self.next() % n;
        let b = self.next() % n;
        a.min(b)
    }
}

/// One million block rules: 60% /32, 25% /24, 10% /16–/23, 5% IPv6. None covers
/// 198.18.0.0/15 (RFC 2544's benchmarking range), where the measured clients live.
pub fn million_rules() -> Vec<NewRule> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut rules = Vec::with_capacity(1_000_000);
    while rules.len() < 1_000_000 {
        let r = rng.next();
        let kind = r % 100;
        let net = if kind < 95 {
            let addr = Ipv4Addr::from((r >> 32) as u32 | 0x0100_0000);
            if (u32::from(addr) >> 17) == (u32::from(Ipv4Addr::new(198, 18, 0, 0)) >> 17)
                || addr.octets()[0] >= 224
            {
                continue;
            }
            let len = match kind {
                0..=59 => 32,
                60..=84 => 24,
                _ => 16 + (r >> 8) as u8 % 8,
            };
            IpNet::V4(Ipv4Net::new(addr, len).unwrap().trunc())
        } else {
            let addr = Ipv6Addr::from((0x2a00u128 << 112) | (u128::from(rng.next()) << 48));
            let len = [32, 48, 64, 128][(r >> 8) as usize % 4];
            IpNet::V6(Ipv6Net::new(addr, len).unwrap().trunc())
        };
        rules.push(NewRule::block(RuleTarget::Network(net)));
    }
    rules
}

/// 20 agents, as a busy public site sees them: mostly browsers, some crawlers and tools.
pub const UA_MIX: [&str; 20] = [
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

/// The arguments of a bench that callgrind drives (`request_cost`, `stage_cost`): `SCENARIO
/// [COUNT]`. `Ok(None)` without a scenario (`cargo bench` and `cargo test --benches` run the
/// binary so), after printing `usage`; `Err` (exit code 2) for an unknown scenario or a bad
/// count (`count_name`: what the count counts, for the message).
pub fn scenario_args(
    scenarios: &[&str],
    default: usize,
    count_name: &str,
    usage: &str,
) -> Result<Option<(String, usize)>, std::process::ExitCode> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let Some(scenario) = args.first() else {
        eprintln!("{usage}");
        return Ok(None);
    };
    if !scenarios.contains(&scenario.as_str()) {
        eprintln!("unknown scenario {scenario:?}\n{usage}");
        return Err(std::process::ExitCode::from(2));
    }
    match args.get(1).map(|a| a.parse::<usize>()) {
        None => Ok(Some((scenario.clone(), default))),
        Some(Ok(n)) if n > 0 => Ok(Some((scenario.clone(), n))),
        Some(_) => {
            eprintln!("{count_name} must be a positive integer\n{usage}");
            Err(std::process::ExitCode::from(2))
        }
    }
}
