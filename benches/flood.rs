//! Flood benchmark: 10,000,000 distinct IPv6 /64 prefixes (as `u128`) against a limiter that
//! tracks at most 100,000 keys, with one heavy hitter sending every 100th request.
//!
//! Prints throughput, the number of tracked keys at the end (must be within the cap), resident
//! memory before the flood and at its peak, and when the heavy hitter got banned (it must be).
//! A second pass repeats the flood with a cap of 1,000,000 keys, and a third runs the first one
//! on two threads.
//!
//! ```text
//! cargo bench --bench flood
//! ```

use std::hint::black_box;
use std::num::{NonZeroU32, NonZeroUsize};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_bouncer::clock::SystemClock;
use actix_bouncer::limiter::{BanPolicy, LimitOutcome, LimitPolicy, Limiter};

/// Distinct flood keys per pass.
const FLOOD_KEYS: u64 = 10_000_000;
/// One request in this many comes from the heavy hitter.
const HEAVY_EVERY: u64 = 100;
/// The heavy hitter's /64, outside the flood's 2001:db8::/32.
const HEAVY: u128 = 0x2001_0db9_dead_beef_u128 << 64;

/// The `i`-th flood key: a distinct /64 inside 2001:db8::/32 (a bijection on `u32`, so no
/// two `i` below 2^32 collide), scattered like real prefixes rather than counting up.
fn prefix(i: u64) -> u128 {
    let mut x = i as u32;
    x = x.wrapping_mul(0x9E37_79B1);
    x ^= x >> 15;
    x = x.wrapping_mul(0x85EB_CA77);
    x ^= x >> 13;
    (0x2001_0db8_u128 << 96) | (u128::from(x) << 64)
}

/// A field of /proc/self/status, in MiB (`None` off Linux).
fn status_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// CPU time this thread has run, in ns (`None` off Linux). Unlike wall time, this does not
/// grow when the machine is busy with other work.
fn thread_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

fn mib(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.1} MiB"))
}

/// Resets VmHWM to the current RSS (Linux 4.0+), so each pass reports its own peak.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// 60 hits per minute; 10 minute bans doubling up to a day.
fn policy() -> LimitPolicy {
    let hits = NonZeroU32::new(60).expect("60 > 0");
    let ban = BanPolicy::new(Duration::from_secs(600), 2.0, Duration::from_secs(86_400))
        .expect("valid ban policy");
    LimitPolicy::new(hits, Duration::from_secs(60))
        .expect("valid limit policy")
        .with_ban(ban)
}

#[derive(Debug, Default)]
struct Tally {
    requests: u64,
    heavy_requests: u64,
    /// (heavy hitter's request number, time since the flood started, ban length)
    banned_at: Option<(u64, Duration, Duration)>,
    not_allowed_flood: u64,
    cpu_ns: Option<u64>,
}

/// Sends the flood keys `from..to` (and the heavy hitter every 100th request) to `limiter`;
/// `heavy` counts the heavy hitter's requests over all threads.
fn flood(
    limiter: &Limiter<u128>,
    from: u64,
    to: u64,
    started: Instant,
    heavy: &AtomicU64,
) -> Tally {
    let cpu_before = thread_cpu_ns();
    let mut tally = Tally::default();
    for i in from..to {
        if i % (HEAVY_EVERY - 1) == 0 {
            tally.requests += 1;
            tally.heavy_requests += 1;
            let n = heavy.fetch_add(1, Ordering::Relaxed) + 1;
            match black_box(limiter.check(&HEAVY)) {
                LimitOutcome::BanStarted { ban, .. } if tally.banned_at.is_none() => {
                    tally.banned_at = Some((n, started.elapsed(), ban));
                }
                _ => {}
            }
        }
        tally.requests += 1;
        if !matches!(
            black_box(limiter.check(&prefix(i))),
            LimitOutcome::Allowed { hits: 1 }
        ) {
            tally.not_allowed_flood += 1;
        }
    }
    tally.cpu_ns = thread_cpu_ns()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    tally
}

/// One flood of `FLOOD_KEYS` keys on `threads` threads; returns whether every check passed.
fn pass(name: &str, cap: usize, threads: u64) -> bool {
    reset_peak_rss();
    let limiter = Limiter::<u128>::with_capacity(
        policy(),
        NonZeroUsize::new(cap).expect("cap > 0"),
        Arc::new(SystemClock::new()),
    );
    let rss_before = status_mib("VmRSS:");

    let heavy_count = AtomicU64::new(0);
    let started = Instant::now();
    let tallies: Vec<Tally> = std::thread::scope(|s| {
        let per_thread = FLOOD_KEYS / threads;
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (limiter, heavy_count) = (&limiter, &heavy_count);
                let to = if t + 1 == threads {
                    FLOOD_KEYS
                } else {
                    (t + 1) * per_thread
                };
                s.spawn(move || flood(limiter, t * per_thread, to, started, heavy_count))
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("flood thread panicked"))
            .collect()
    });
    let elapsed = started.elapsed();

    let requests: u64 = tallies.iter().map(|t| t.requests).sum();
    let heavy: u64 = tallies.iter().map(|t| t.heavy_requests).sum();
    let refused: u64 = tallies.iter().map(|t| t.not_allowed_flood).sum();
    let banned_at = tallies.iter().filter_map(|t| t.banned_at).min();
    let cpu_ns: Option<u64> = tallies.iter().map(|t| t.cpu_ns).sum();
    let tracked = limiter.tracked_keys();
    let peak = status_mib("VmHWM:");
    let heavy_now = limiter.check(&HEAVY);

    let secs = elapsed.as_secs_f64();
    println!("== {name}: cap {cap}, {threads} thread(s)");
    println!(
        "   {requests} requests ({heavy} from the heavy hitter) in {secs:.2} s: \
         {:.2} M requests/s, {:.0} ns/request",
        requests as f64 / secs / 1e6,
        elapsed.as_nanos() as f64 / requests as f64,
    );
    if let Some(cpu) = cpu_ns {
        println!(
            "   CPU time of the flood threads: {:.2} s, {:.0} ns/request",
            cpu as f64 / 1e9,
            cpu as f64 / requests as f64
        );
    }
    println!("   flood keys not allowed on first sight: {refused}");
    println!("   tracked keys at the end: {tracked} (cap {cap})");
    println!(
        "   RSS before the flood: {}; peak RSS (VmHWM): {}",
        mib(rss_before),
        mib(peak)
    );
    match banned_at {
        Some((n, at, ban)) => println!(
            "   heavy hitter banned for {ban:?} at its request #{n}, {:.3} ms into the flood; \
             now: {heavy_now:?}",
            at.as_secs_f64() * 1e3
        ),
        None => println!("   heavy hitter NEVER banned; now: {heavy_now:?}"),
    }

    let mut ok = true;
    if tracked > cap {
        eprintln!("FAIL: {tracked} tracked keys exceed the cap of {cap}");
        ok = false;
    }
    if banned_at.is_none() || !matches!(heavy_now, LimitOutcome::Banned { .. }) {
        eprintln!("FAIL: the heavy hitter is not banned");
        ok = false;
    }
    if refused != 0 {
        eprintln!("FAIL: {refused} one-shot keys were not allowed");
        ok = false;
    }
    ok
}

fn main() -> ExitCode {
    let mut ok = true;
    ok &= pass("pass 1", 100_000, 1);
    ok &= pass("pass 2", 1_000_000, 1);
    ok &= pass("pass 3", 100_000, 2);
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
