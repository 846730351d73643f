//! Build time, lookup latency and memory of `PrefixTable` on 1,000,000 mixed prefixes.
//!
//! Data is generated deterministically (fixed-seed xorshift): ~55% IPv4 /32, ~27% /24, ~8%
//! /16–/23, ~10% IPv6 (/32, /48, /64, /128), with some /32s inside /24s, /24s inside /16s and
//! IPv6 prefixes inside other IPv6 prefixes.
//!
//! A second group, `tsv_158k`, loads the real hosting/VPN/Tor range table from
//! `../shared/data/hosting-vpn-tor-ranges.tsv` (relative to the crate) when it exists: its IPv6
//! ranges are heavily clustered (most sit in `2a02::/16`), the skew a bucket index must survive.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use actix_bouncer::prefix_table::PrefixTable;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

const PREFIXES: usize = 1_000_000;
/// Probes per set; a power of two so the cycling index is a mask.
const PROBES: usize = 4096;

/// xorshift64*: tiny, deterministic, good enough for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn u128(&mut self) -> u128 {
        (u128::from(self.next()) << 64) | u128::from(self.next())
    }
}

fn v4(addr: u32, len: u8) -> IpNet {
    IpNet::V4(Ipv4Net::new(Ipv4Addr::from(addr), len).unwrap().trunc())
}

fn v6(addr: u128, len: u8) -> IpNet {
    IpNet::V6(Ipv6Net::new(Ipv6Addr::from(addr), len).unwrap().trunc())
}

/// Random global-unicast-looking IPv6 address (inside 2000::/3).
fn global6(rng: &mut Rng) -> u128 {
    (rng.u128() >> 3) | (1u128 << 125)
}

/// `n` distinct prefixes in random order, valued by position.
fn dataset(n: usize, rng: &mut Rng) -> Vec<(IpNet, u32)> {
    let mut nets: Vec<IpNet> = Vec::with_capacity(n + n / 8);
    // Recent parents to nest into.
    let mut p16: Vec<u32> = Vec::new();
    let mut p24: Vec<u32> = Vec::new();
    let mut p6: Vec<u128> = Vec::new();
    while nets.len() < n {
        for _ in nets.len()..n + n / 50 {
            let r = rng.below(100);
            let net = if r < 55 {
                let addr = if r < 8 && !p24.is_empty() {
                    p24[rng.below(p24.len() as u64) as usize] | rng.below(256) as u32
                } else {
                    rng.next() as u32
                };
                v4(addr, 32)
            } else if r < 82 {
                let addr = if r < 60 && !p16.is_empty() {
                    p16[rng.below(p16.len() as u64) as usize] | (rng.below(256) as u32) << 8
                } else {
                    rng.next() as u32
                };
                if p24.len() < 4096 {
                    p24.push(addr & 0xffff_ff00);
                }
                v4(addr, 24)
            } else if r < 90 {
                let len = 16 + rng.below(8) as u8;
                let addr = rng.next() as u32;
                if len == 16 && p16.len() < 4096 {
                    p16.push(addr & 0xffff_0000);
                }
                v4(addr, len)
            } else {
                let len = [32, 48, 64, 128][rng.below(4) as usize];
                let addr = if r < 92 && !p6.is_empty() {
                    // Somewhere inside an earlier /32: nests under it (and maybe under a /48).
                    p6[rng.below(p6.len() as u64) as usize] | (global6(rng) >> 32)
                } else {
                    global6(rng)
                };
                if len == 32 && p6.len() < 4096 {
                    p6.push(addr & !(u128::MAX >> 32));
                }
                v6(addr, len)
            };
            nets.push(net);
        }
        nets.sort_unstable();
        nets.dedup();
    }
    // Fisher–Yates, so `build` gets unsorted input, then trim to exactly `n`.
    for i in (1..nets.len()).rev() {
        nets.swap(i, rng.below(i as u64 + 1) as usize);
    }
    nets.truncate(n);
    nets.into_iter().zip(0u32..).collect()
}

/// Random addresses inside random IPv4 entries.
fn hits_v4(data: &[(IpNet, u32)], rng: &mut Rng) -> Vec<IpAddr> {
    let nets: Vec<Ipv4Net> = data
        .iter()
        .filter_map(|(n, _)| match n {
            IpNet::V4(n) => Some(*n),
            IpNet::V6(_) => None,
        })
        .collect();
    (0..PROBES)
        .map(|_| {
            let n = nets[rng.below(nets.len() as u64) as usize];
            let host = (rng.next() as u32) & !u32::from(n.netmask());
            IpAddr::V4(Ipv4Addr::from(u32::from(n.network()) | host))
        })
        .collect()
}

/// Random IPv4 addresses that no entry contains.
fn misses_v4(table: &PrefixTable<u32>, rng: &mut Rng) -> Vec<IpAddr> {
    let mut out = Vec::with_capacity(PROBES);
    while out.len() < PROBES {
        let ip = IpAddr::V4(Ipv4Addr::from(rng.next() as u32));
        if !table.contains(ip) {
            out.push(ip);
        }
    }
    out
}

/// Half inside random IPv6 entries, half random global addresses (mostly misses).
fn probes_v6(data: &[(IpNet, u32)], rng: &mut Rng) -> Vec<IpAddr> {
    let nets: Vec<Ipv6Net> = data
        .iter()
        .filter_map(|(n, _)| match n {
            IpNet::V6(n) => Some(*n),
            IpNet::V4(_) => None,
        })
        .collect();
    (0..PROBES)
        .map(|i| {
            let addr = if i % 2 == 0 {
                let n = nets[rng.below(nets.len() as u64) as usize];
                u128::from(n.network()) | (rng.u128() & !u128::from(n.netmask()))
            } else {
                global6(rng)
            };
            IpAddr::V6(Ipv6Addr::from(addr))
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let data = dataset(PREFIXES, &mut rng);
    let table = PrefixTable::build(data.iter().copied());
    assert_eq!(table.len(), PREFIXES);
    eprintln!(
        "prefix_table: {} prefixes, heap = {:.1} MiB ({table:?})",
        table.len(),
        table.heap_bytes() as f64 / (1024.0 * 1024.0)
    );

    let mut group = c.benchmark_group("prefix_table/build_1m");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(15));
    group.bench_function("mixed", |b| {
        b.iter_batched(|| data.clone(), PrefixTable::build, BatchSize::PerIteration)
    });
    group.finish();

    let hit4 = hits_v4(&data, &mut rng);
    let miss4 = misses_v4(&table, &mut rng);
    let probe6 = probes_v6(&data, &mut rng);
    let hit6 = probe6.iter().filter(|&&ip| table.contains(ip)).count();
    eprintln!("prefix_table: v6 probes: {hit6} of {PROBES} hit");

    let mut group = c.benchmark_group("prefix_table/lookup_1m");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for (name, probes) in [("hit_v4", &hit4), ("miss_v4", &miss4), ("v6", &probe6)] {
        group.bench_function(name, |b| {
            let mut i = 0usize;
            b.iter(|| {
                i = (i + 1) & (PROBES - 1);
                // Read the value too: callers always do.
                black_box(table.lookup(black_box(probes[i])).map(|(n, v)| (n, *v)))
            })
        });
    }
    group.finish();
}

/// The shared range table, if present: `cidr<TAB>kind<TAB>provider`, `#` comments.
const TSV: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/data/hosting-vpn-tor-ranges.tsv"
);

fn bench_tsv(c: &mut Criterion) {
    let Ok(text) = std::fs::read_to_string(TSV) else {
        eprintln!("prefix_table/tsv_158k: skipped, {TSV} not found");
        return;
    };
    let nets: Vec<IpNet> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split('\t').next()?.trim().parse::<IpNet>().ok())
        .map(|n| n.trunc())
        .collect();
    let table = PrefixTable::build(nets.iter().copied().zip(0u32..));
    eprintln!(
        "prefix_table: tsv {} ranges, {} distinct, heap = {:.1} MiB ({table:?})",
        nets.len(),
        table.len(),
        table.heap_bytes() as f64 / (1024.0 * 1024.0)
    );

    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let v4: Vec<Ipv4Net> = nets
        .iter()
        .filter_map(|n| match n {
            IpNet::V4(n) => Some(*n),
            IpNet::V6(_) => None,
        })
        .collect();
    let v6: Vec<Ipv6Net> = nets
        .iter()
        .filter_map(|n| match n {
            IpNet::V6(n) => Some(*n),
            IpNet::V4(_) => None,
        })
        .collect();
    // Hits: the first or the middle address of a random range.
    let hit4: Vec<IpAddr> = (0..PROBES)
        .map(|i| {
            let n = v4[rng.below(v4.len() as u64) as usize];
            // Half the range size: the offset of its middle address (0 for a single address).
            let mid = 1u32
                .checked_shl(31u32.wrapping_sub(n.prefix_len().into()))
                .unwrap_or(0);
            let a = u32::from(n.network()) + if i % 2 == 0 { 0 } else { mid };
            IpAddr::V4(Ipv4Addr::from(a))
        })
        .collect();
    let hit6: Vec<IpAddr> = (0..PROBES)
        .map(|i| {
            let n = v6[rng.below(v6.len() as u64) as usize];
            let mid = 1u128
                .checked_shl(127u32.wrapping_sub(n.prefix_len().into()))
                .unwrap_or(0);
            let a = u128::from(n.network()) + if i % 2 == 0 { 0 } else { mid };
            IpAddr::V6(Ipv6Addr::from(a))
        })
        .collect();
    // Misses: random addresses no range contains, half IPv4, half global IPv6.
    let mut miss = Vec::with_capacity(PROBES);
    while miss.len() < PROBES {
        let ip = if miss.len() % 2 == 0 {
            IpAddr::V4(Ipv4Addr::from(rng.next() as u32))
        } else {
            IpAddr::V6(Ipv6Addr::from(global6(&mut rng)))
        };
        if !table.contains(ip) {
            miss.push(ip);
        }
    }
    assert!(hit4.iter().chain(&hit6).all(|&ip| table.contains(ip)));

    let mut group = c.benchmark_group("prefix_table/tsv_158k");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for (name, probes) in [("hit_v4", &hit4), ("hit_v6", &hit6), ("miss", &miss)] {
        group.bench_function(name, |b| {
            let mut i = 0usize;
            b.iter(|| {
                i = (i + 1) & (PROBES - 1);
                black_box(table.lookup(black_box(probes[i])).map(|(n, v)| (n, *v)))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench, bench_tsv);
criterion_main!(benches);
