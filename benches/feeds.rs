//! Load time, lookup latency and memory of `Feeds` on the shared 158k-range table
//! (`../shared/data/hosting-vpn-tor-ranges.tsv`, next to the repository). Skipped, with a
//! message, when the file is absent.
//!
//! Probes are fixed-seed: half are random addresses inside random ranges of the file (hits),
//! half random addresses that no range covers (misses), in the file's IPv4/IPv6 proportion.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use actix_bouncer::feeds::{FeedConfig, FeedFormat, Feeds};
use criterion::Criterion;
use ipnet::IpNet;

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

/// A random address inside `net`.
fn inside(net: IpNet, rng: &mut Rng) -> IpAddr {
    match net {
        IpNet::V4(n) => {
            let host = !u32::MAX
                .checked_shl(32 - u32::from(n.prefix_len()))
                .unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(
                u32::from(n.network()) | (rng.next() as u32 & host),
            ))
        }
        IpNet::V6(n) => {
            let host = !u128::MAX
                .checked_shl(128 - u32::from(n.prefix_len()))
                .unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(
                u128::from(n.network()) | (rng.u128() & host),
            ))
        }
    }
}

fn shared_tsv() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/hosting-vpn-tor-ranges.tsv")
}

/// Hits, misses, and the two interleaved.
fn probes(path: &Path, feeds: &Feeds) -> [Vec<IpAddr>; 3] {
    let text = std::fs::read_to_string(path).unwrap();
    let nets: Vec<IpNet> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split('\t').next()?.parse().ok())
        .collect();
    let mut rng = Rng(0x5eed_f00d);
    let hits: Vec<IpAddr> = (0..PROBES)
        .map(|_| inside(nets[rng.below(nets.len() as u64) as usize], &mut rng))
        .collect();
    let v6_share = nets.iter().filter(|n| matches!(n, IpNet::V6(_))).count() * 100 / nets.len();
    let mut misses = Vec::with_capacity(PROBES);
    while misses.len() < PROBES {
        let ip = if (rng.below(100) as usize) < v6_share {
            // Global unicast, where the table's IPv6 ranges live.
            IpAddr::V6(Ipv6Addr::from((rng.u128() >> 3) | (1u128 << 125)))
        } else {
            IpAddr::V4(Ipv4Addr::from(rng.next() as u32))
        };
        if feeds.lookup(ip).kinds.is_empty() {
            misses.push(ip);
        }
    }
    let mixed = hits
        .iter()
        .zip(&misses)
        .flat_map(|(h, m)| [*h, *m])
        .take(PROBES);
    let mixed = mixed.collect();
    [hits, misses, mixed]
}

fn bench(c: &mut Criterion, path: &Path) {
    let config = || vec![FeedConfig::new(path, FeedFormat::Tsv, None)];
    let feeds = Feeds::load(config()).unwrap();
    println!(
        "feeds: {} networks, {} heap bytes ({:.1} MiB, {:.0} bytes a network), {} warnings",
        feeds.len(),
        feeds.heap_bytes(),
        feeds.heap_bytes() as f64 / (1024.0 * 1024.0),
        feeds.heap_bytes() as f64 / feeds.len() as f64,
        feeds.warnings().len(),
    );
    let [hits, misses, mixed] = probes(path, &feeds);

    let mut group = c.benchmark_group("feeds");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    // The result (and its reloader thread) is dropped outside the timed part.
    group.bench_function("load_158k", |b| {
        b.iter_with_large_drop(|| Feeds::load(config()).unwrap())
    });
    group.finish();

    let mut group = c.benchmark_group("feeds");
    for (name, set) in [
        ("lookup_158k", &mixed),
        ("lookup_158k_hits", &hits),
        ("lookup_158k_misses", &misses),
    ] {
        group.bench_function(name, |b| {
            let mut i = 0;
            b.iter(|| {
                let ip = set[i & (PROBES - 1)];
                i += 1;
                black_box(feeds.lookup(black_box(ip)))
            })
        });
    }
    group.finish();
}

fn main() {
    let path = shared_tsv();
    if !path.exists() {
        println!("skipped: {} not found", path.display());
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c, &path);
    c.final_summary();
}
