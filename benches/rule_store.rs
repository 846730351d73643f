//! The rule store at a million rules, in SQLite: loading them into a snapshot (time, and
//! resident memory over a store with none), and an incremental reload of 1,000 rules another
//! instance added, while lookups go on.
//!
//! `cargo bench --bench rule_store` (a few minutes: it first writes the database).
//!
//! Loads run in a fresh child process each (this binary again, with `BOUNCER_BENCH_LOAD` set),
//! so the resident-memory figure holds only what loading leaves behind.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

mod common;
use common::million_rules;

use actix_bouncer::rules::{NewRule, RuleStore, Rules, SqlRuleStore};

const CHILD: &str = "BOUNCER_BENCH_LOAD";
const RUNS: usize = 3;
const RELOADS: usize = 10;
const CHANGED: usize = 1000;

fn main() {
    if let Ok(url) = std::env::var(CHILD) {
        return load_in_child(&url);
    }
    // `BOUNCER_BENCH_DIR` keeps the databases between runs (writing them takes a while).
    let temp = tempfile::tempdir().unwrap();
    let dir = std::env::var_os("BOUNCER_BENCH_DIR").map_or(temp.path().to_owned(), Into::into);
    let reuse = dir.join("million.db").exists();
    let full = format!("sqlite://{}", dir.join("million.db").display());
    let empty = format!("sqlite://{}", dir.join("empty.db").display());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let started = Instant::now();
    runtime.block_on(async {
        if reuse {
            return;
        }
        let store = SqlRuleStore::connect(&full).await.unwrap();
        let now = SystemTime::now();
        let drafts: Vec<_> = million_rules().into_iter().map(|r| r.draft(now)).collect();
        for chunk in drafts.chunks(100_000) {
            store.insert(chunk.to_vec()).await.unwrap();
        }
        store.close().await;
        SqlRuleStore::connect(&empty).await.unwrap().close().await;
    });
    if !reuse {
        println!(
            "rule_store: wrote 1M rules to SQLite in {:.2?} (setup, not a target)",
            started.elapsed()
        );
    }

    // Loading, each in a fresh process: time, and resident memory after against the same
    // process over an empty store.
    let mut loads = Vec::new();
    let mut extra = Vec::new();
    for _ in 0..RUNS {
        let (none, _) = child(&empty);
        let (with, took) = child(&full);
        loads.push(took);
        extra.push(with.saturating_sub(none));
    }
    loads.sort();
    extra.sort();
    println!(
        "rule_store/load_1m: {:.2?} median (runs: {:.2?}); target <= 3 s",
        loads[RUNS / 2],
        loads
    );
    println!(
        "rule_store/memory_1m: +{:.1} MiB resident median over a store with none (runs: {}); \
         target <= 64 MB",
        mib(extra[RUNS / 2]),
        extra
            .iter()
            .map(|b| format!("{:.1}", mib(*b)))
            .collect::<Vec<_>>()
            .join(", ")
    );

    // The reload phase adds rules, so it works on a copy and a kept million stays a million.
    let copy = dir.join("reload.db");
    let remove_copy = || {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(dir.join(format!("reload.db{suffix}")));
        }
    };
    remove_copy();
    std::fs::copy(dir.join("million.db"), &copy).unwrap();
    incremental_reloads(&format!("sqlite://{}", copy.display()), &runtime);
    remove_copy();
}

/// Runs this binary to load `url`; returns its resident bytes after loading, and the time.
fn child(url: &str) -> (u64, Duration) {
    let out = Command::new(std::env::current_exe().unwrap())
        .env(CHILD, url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut fields = text.split_whitespace();
    let rss: u64 = fields.next().unwrap().parse().unwrap();
    let nanos: u64 = fields.next().unwrap().parse().unwrap();
    (rss, Duration::from_nanos(nanos))
}

fn load_in_child(url: &str) {
    let url = url.to_owned();
    let started = Instant::now();
    let rules = Rules::builder()
        .open(move || async move { SqlRuleStore::connect(&url).await })
        .unwrap();
    let took = started.elapsed();
    black_box(rules.check(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)), None));
    println!("{} {}", resident_bytes(), took.as_nanos());
}

/// Another instance adds 1,000 rules; this one applies them with `refresh` while a thread
/// keeps looking rules up. Reports the reload times and the longest single lookup meanwhile.
fn incremental_reloads(url: &str, runtime: &tokio::runtime::Runtime) {
    let owned = url.to_owned();
    let rules = Rules::builder()
        .open(move || async move { SqlRuleStore::connect(&owned).await })
        .unwrap();
    let other = runtime.block_on(SqlRuleStore::connect(url)).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let looker = {
        let (rules, stop) = (rules.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let (mut longest, mut checks, mut i) = (Duration::ZERO, 0u64, 0u32);
            while !stop.load(Ordering::Relaxed) {
                i = i.wrapping_add(2_654_435_761);
                let started = Instant::now();
                black_box(rules.check(IpAddr::V4(Ipv4Addr::from(i)), None));
                longest = longest.max(started.elapsed());
                checks += 1;
            }
            (longest, checks)
        })
    };

    let mut took = Vec::new();
    for round in 0..RELOADS {
        let now = SystemTime::now();
        let drafts = (0..CHANGED)
            .map(|i| {
                // 198.18.0.0/15, which none of the million covers.
                let ip = Ipv4Addr::from(0xC612_0000 + (round * CHANGED + i) as u32);
                NewRule::block(ip.to_string().parse().unwrap()).draft(now)
            })
            .collect();
        let added = runtime.block_on(other.insert(drafts)).unwrap();
        let probe: IpAddr = added[CHANGED / 2].target.to_string().parse().unwrap();
        assert_eq!(rules.check(probe, None).block, None);
        let started = Instant::now();
        runtime.block_on(rules.refresh()).unwrap();
        took.push(started.elapsed());
        assert_eq!(rules.check(probe, None).block, Some(added[CHANGED / 2].id));
        // Let the worker fold the changes into the base, as it would a moment later anyway.
        runtime.block_on(rules.compact()).unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let (longest, checks) = looker.join().unwrap();
    let mut sorted = took.clone();
    sorted.sort();
    println!(
        "rule_store/reload_1000_of_1m: {:.2?} median, {:.2?} max over {RELOADS} reloads \
         (changes read from SQLite and in force); target <= 50 ms",
        sorted[RELOADS / 2],
        sorted[RELOADS - 1]
    );
    println!(
        "rule_store/lookups_meanwhile: {checks} lookups on another thread, the longest took \
         {longest:.2?} (lookups take no lock; a long one is the scheduler on 2 cores)"
    );
}

fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
