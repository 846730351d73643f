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
