//! Build time, lookup latency and memory of `PrefixTable` on 1,000,000 mixed prefixes.
//!
//! Data is generated deterministically (fixed-seed xorshift): ~55% IPv4 /32, ~27% /24, ~8%
//! /16–/23, ~10% IPv6 (/32, /48, /64, /128), with some /32s inside /24s, /24s inside /16s and
//! IPv6 prefixes inside other IPv6 prefixes.
//!
//! A second group, `tsv_158k`, loads the real hosting/VPN/Tor range table from
//! `../shared/data/hosting-vpn-tor-ranges.tsv` (relative to the crate) when it exists: its IPv6
//! ranges are heavily clustered (most sit in `2a02::/16`), the skew a bucket index must survive.
//!
//! Both sets also go into two published tables, `prefix-trie` (`PrefixMap`, one per family)
//! and `ip_network_table` (a tree bitmap), on the same probes: build time, memory and lookups
//! (benchmarks named `.../prefix_trie/...` and `.../ip_network_table/...`). Memory is what a
//! counting global allocator sees still allocated after the build (the input excluded), for
//! all three alike; for `PrefixTable` it is printed beside its own `heap_bytes`.
//!
//! Instruction counts: `PREFIX_TABLE_COUNT=<table>/<set>/<probes>` runs 4,096 lookups of one
//! probe set in `measured` and exits, for callgrind:
//! `PREFIX_TABLE_COUNT=prefix_table/1m/hit_v4 valgrind --tool=callgrind --toggle-collect='*measured*' target/release/deps/prefix_table-*`
//! (tables `prefix_table`, `prefix_trie`, `ip_network_table`; sets `1m` with probes `hit_v4`,
//! `miss_v4`, `v6`, and `tsv` with `hit_v4`, `hit_v6`, `miss`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix_bouncer::prefix_table::PrefixTable;
use criterion::{BatchSize, Criterion};
use ip_network_table::IpNetworkTable;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use prefix_trie::PrefixMap;

/// The system allocator, counting the bytes allocated and not yet freed.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed through to `System` unchanged; only a counter is kept beside.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Builds with `build`, returning the table, the time the build took and the bytes it left
/// allocated.
fn measured_build<T>(name: &str, build: impl FnOnce() -> T) -> T {
    let before = LIVE.load(Ordering::Relaxed);
    let started = Instant::now();
    let table = build();
    let took = started.elapsed();
    let bytes = LIVE.load(Ordering::Relaxed).saturating_sub(before);
    eprintln!(
        "{name}: built in {took:.1?}, {:.1} MiB allocated ({bytes} bytes)",
        bytes as f64 / (1024.0 * 1024.0)
    );
    table
}

/// The three tables over one set of prefixes.
struct Tables {
    ours: PrefixTable<u32>,
    trie: (PrefixMap<Ipv4Net, u32>, PrefixMap<Ipv6Net, u32>),
    tbm: IpNetworkTable<u32>,
}

fn build_trie(data: &[(IpNet, u32)]) -> (PrefixMap<Ipv4Net, u32>, PrefixMap<Ipv6Net, u32>) {
    let (mut v4, mut v6) = (PrefixMap::new(), PrefixMap::new());
    for &(net, value) in data {
        match net {
            IpNet::V4(n) => {
                v4.insert(n, value);
            }
            IpNet::V6(n) => {
                v6.insert(n, value);
            }
        }
    }
    (v4, v6)
}

fn build_tbm(data: &[(IpNet, u32)]) -> IpNetworkTable<u32> {
    let mut table = IpNetworkTable::new();
    for &(net, value) in data {
        let net =
            ip_network::IpNetwork::new(net.addr(), net.prefix_len()).expect("host bits clear");
        table.insert(net, value);
    }
    table
}

impl Tables {
    fn build(set: &str, data: &[(IpNet, u32)]) -> Tables {
        let ours = measured_build(&format!("{set}: PrefixTable"), || {
            PrefixTable::build(data.iter().copied())
        });
        eprintln!(
            "{set}: PrefixTable::heap_bytes = {} bytes ({ours:?})",
            ours.heap_bytes()
        );
        let trie = measured_build(&format!("{set}: prefix-trie"), || build_trie(data));
        let tbm = measured_build(&format!("{set}: ip_network_table"), || build_tbm(data));
        Tables { ours, trie, tbm }
    }

    /// Longest match's prefix length and value, by table.
    #[inline(always)]
    fn lookup(&self, which: Which, ip: IpAddr) -> Option<(u8, u32)> {
        match which {
            Which::Ours => self.ours.lookup(ip).map(|(n, v)| (n.prefix_len(), *v)),
            Which::Trie => match ip {
                IpAddr::V4(a) => self
                    .trie
                    .0
                    .get_lpm(&Ipv4Net::from(a))
                    .map(|(n, v)| (n.prefix_len(), *v)),
                IpAddr::V6(a) => self
                    .trie
                    .1
                    .get_lpm(&Ipv6Net::from(a))
                    .map(|(n, v)| (n.prefix_len(), *v)),
            },
            Which::Tbm => self.tbm.longest_match(ip).map(|(n, v)| (n.netmask(), *v)),
        }
    }

    /// All three agree on every probe (and so find the same prefixes).
    fn check(&self, probes: &[IpAddr]) {
        for &ip in probes {
            let ours = self.lookup(Which::Ours, ip);
            assert_eq!(ours, self.lookup(Which::Trie, ip), "prefix-trie, {ip}");
            assert_eq!(ours, self.lookup(Which::Tbm, ip), "ip_network_table, {ip}");
        }
    }
}

#[derive(Clone, Copy)]
enum Which {
    Ours,
    Trie,
    Tbm,
}

const WHICH: [(Which, &str); 3] = [
    (Which::Ours, "prefix_table"),
    (Which::Trie, "prefix_trie"),
    (Which::Tbm, "ip_network_table"),
];

/// The lookups callgrind counts: every probe once.
#[inline(never)]
fn measured(tables: &Tables, which: Which, probes: &[IpAddr]) -> u64 {
    let mut sum = 0u64;
    for &ip in probes {
        if let Some((len, v)) = tables.lookup(which, black_box(ip)) {
            sum = sum.wrapping_add(u64::from(len) + u64::from(v));
        }
    }
    sum
}

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

/// A set of prefixes with their values, and three sets of probes.
type Set = (Vec<(IpNet, u32)>, [Vec<IpAddr>; 3]);

/// The 1M mixed set and its probes: `[hit_v4, miss_v4, v6]`.
fn mixed() -> Set {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let data = dataset(PREFIXES, &mut rng);
    // Only to find misses: not the table measured.
    let probe_table = PrefixTable::build(data.iter().copied());
    let hit4 = hits_v4(&data, &mut rng);
    let miss4 = misses_v4(&probe_table, &mut rng);
    let probe6 = probes_v6(&data, &mut rng);
    (data, [hit4, miss4, probe6])
}

/// Lookups of every table on each probe set, in one criterion group.
fn lookups(c: &mut Criterion, group: &str, tables: &Tables, sets: &[(&str, &Vec<IpAddr>)]) {
    let mut group = c.benchmark_group(group);
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for (which, table) in WHICH {
        for &(name, probes) in sets {
            // The table's own rows keep their old names.
            let id = match which {
                Which::Ours => name.to_string(),
                _ => format!("{table}/{name}"),
            };
            group.bench_function(id, |b| {
                let mut i = 0usize;
                b.iter(|| {
                    i = (i + 1) & (PROBES - 1);
                    // Read the value too: callers always do.
                    black_box(tables.lookup(which, black_box(probes[i])))
                })
            });
        }
    }
    group.finish();
}

/// Builds of every table, in one criterion group.
fn builds(c: &mut Criterion, group: &str, data: &[(IpNet, u32)], ours: &str) {
    let mut group = c.benchmark_group(group);
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(15));
    group.bench_function(ours, |b| {
        b.iter_batched(
            || data.to_vec(),
            PrefixTable::build,
            BatchSize::PerIteration,
        )
    });
    group.bench_function("prefix_trie", |b| b.iter(|| build_trie(data)));
    group.bench_function("ip_network_table", |b| b.iter(|| build_tbm(data)));
    group.finish();
}

fn bench(c: &mut Criterion) {
    let (data, [hit4, miss4, probe6]) = mixed();
    let tables = Tables::build("1m", &data);
    assert_eq!(tables.ours.len(), PREFIXES);
    let hit6 = probe6
        .iter()
        .filter(|&&ip| tables.ours.contains(ip))
        .count();
    eprintln!("prefix_table: v6 probes: {hit6} of {PROBES} hit");
    tables.check(&hit4);
    tables.check(&miss4);
    tables.check(&probe6);

    builds(c, "prefix_table/build_1m", &data, "mixed");
    lookups(
        c,
        "prefix_table/lookup_1m",
        &tables,
        &[("hit_v4", &hit4), ("miss_v4", &miss4), ("v6", &probe6)],
    );
}

/// The shared range table, if present: `cidr<TAB>kind<TAB>provider`, `#` comments.
const TSV: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/data/hosting-vpn-tor-ranges.tsv"
);

/// The shared ranges (deduplicated, in file order) and their probes: `[hit_v4, hit_v6, miss]`.
fn tsv() -> Option<Set> {
    let Ok(text) = std::fs::read_to_string(TSV) else {
        eprintln!("prefix_table/tsv_158k: skipped, {TSV} not found");
        return None;
    };
    let nets: Vec<IpNet> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split('\t').next()?.trim().parse::<IpNet>().ok())
        .map(|n| n.trunc())
        .collect();
    // Distinct networks, so that every table keeps the same value for each (the tables
    // differ on which duplicate wins).
    let mut seen = std::collections::HashSet::new();
    let data: Vec<(IpNet, u32)> = nets
        .iter()
        .copied()
        .filter(|n| seen.insert(*n))
        .zip(0u32..)
        .collect();
    eprintln!(
        "prefix_table: tsv {} ranges, {} distinct",
        nets.len(),
        data.len()
    );
    let table = PrefixTable::build(data.iter().copied());

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
    Some((data, [hit4, hit6, miss]))
}

fn bench_tsv(c: &mut Criterion) {
    let Some((data, [hit4, hit6, miss])) = tsv() else {
        return;
    };
    let tables = Tables::build("tsv", &data);
    tables.check(&hit4);
    tables.check(&hit6);
    tables.check(&miss);

    builds(c, "prefix_table/build_tsv_158k", &data, "prefix_table");
    lookups(
        c,
        "prefix_table/tsv_158k",
        &tables,
        &[("hit_v4", &hit4), ("hit_v6", &hit6), ("miss", &miss)],
    );
}

/// `PREFIX_TABLE_COUNT=<table>/<set>/<probes>`: the lookups for callgrind, then exit.
fn count(spec: &str) {
    let parts: Vec<&str> = spec.split('/').collect();
    let [table, set, probes] = parts[..] else {
        panic!("PREFIX_TABLE_COUNT: expected <table>/<set>/<probes>, got {spec:?}");
    };
    let which = WHICH
        .iter()
        .find(|(_, name)| *name == table)
        .unwrap_or_else(|| panic!("unknown table {table:?}"))
        .0;
    let (data, sets, names) = match set {
        "1m" => {
            let (data, sets) = mixed();
            (data, sets, ["hit_v4", "miss_v4", "v6"])
        }
        "tsv" => {
            let (data, sets) = tsv().expect("the tsv file");
            (data, sets, ["hit_v4", "hit_v6", "miss"])
        }
        _ => panic!("unknown set {set:?}"),
    };
    let at = names
        .iter()
        .position(|n| *n == probes)
        .unwrap_or_else(|| panic!("unknown probes {probes:?}"));
    let tables = Tables::build(set, &data);
    tables.check(&sets[at]);
    let sum = measured(&tables, which, &sets[at]);
    println!("{spec}: {} lookups (checksum {sum})", sets[at].len());
}

fn main() {
    if let Ok(spec) = std::env::var("PREFIX_TABLE_COUNT") {
        count(&spec);
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    bench_tsv(&mut c);
    c.final_summary();
}
