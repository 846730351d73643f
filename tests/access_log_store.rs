//! The access log's SQL storage, run against each backend: SQLite in memory and in a file,
//! and PostgreSQL when `BOUNCER_TEST_POSTGRES` names a server (skipped, and said so, when it
//! does not). Every time is injected: nothing here waits for the clock.
#![cfg(any(feature = "sqlite", feature = "postgres"))]

mod common;

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_bouncer::access_log::{
    AccessRecord, AccessSink, AccessVerdict, BlockedBucket, BlockedIp, Bucket, IpCount, PathCount,
    ReasonCount, SqlAccessLog, Subject, Top, TOP_READ_MAX,
};
use actix_bouncer::clock::ManualClock;
use actix_bouncer::{BlockReason, Decision};

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

/// 2026-01-01T00:00:00Z: a whole hour, so buckets start where the test says.
fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_767_225_600)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn rec(at: SystemTime, from: &str, path: &str) -> AccessRecord {
    AccessRecord::new(at, ip(from), "GET", path)
}

fn blocked(mut r: AccessRecord, enforced: bool) -> AccessRecord {
    r.verdict = Some(AccessVerdict::new(
        Decision::Block,
        enforced,
        100,
        Some(BlockReason::Blacklisted),
    ));
    r.status = 403;
    r
}

fn allowed(mut r: AccessRecord) -> AccessRecord {
    r.verdict = Some(AccessVerdict::new(Decision::Allow, true, 5, None));
    r
}

fn path(p: &str, requests: u64, blocked: u64) -> (String, u64, u64) {
    (p.to_owned(), requests, blocked)
}

fn paths(counts: Top<PathCount>) -> Vec<(String, u64, u64)> {
    counts
        .rows
        .into_iter()
        .map(|c| (c.path, c.requests, c.blocked))
        .collect()
}

fn ips(counts: Top<IpCount>) -> Vec<(IpAddr, u64, u64)> {
    counts
        .rows
        .into_iter()
        .map(|c| (c.ip, c.requests, c.blocked))
        .collect()
}

fn blocked_ips(counts: &Top<BlockedIp>) -> Vec<(IpAddr, u64, u64)> {
    counts
        .rows
        .iter()
        .map(|c| (c.ip, c.blocked, c.would_block))
        .collect()
}

fn reasons(counts: &Top<ReasonCount>) -> Vec<(Option<BlockReason>, u64, u64)> {
    counts
        .rows
        .iter()
        .map(|c| (c.reason, c.blocked, c.would_block))
        .collect()
}

/// What a "top" answer says of the records it read: how many, whether the window was cut,
/// from when.
fn read<T>(top: &Top<T>) -> (u64, bool, SystemTime) {
    (top.read, top.window_cut, top.since)
}

fn buckets(counts: Vec<BlockedBucket>) -> Vec<(SystemTime, u64, u64, u64)> {
    counts
        .into_iter()
        .map(|b| (b.start, b.blocked, b.would_block, b.allowed))
        .collect()
}

/// Every record in the log (through the per-IP query, for the IPs `top_ips` lists).
async fn everything(log: &SqlAccessLog) -> Vec<AccessRecord> {
    let mut all = Vec::new();
    for count in log.top_ips(UNIX_EPOCH, 10_000).await.unwrap().rows {
        all.extend(log.activity(&Subject::Ip(count.ip), 10_000).await.unwrap());
    }
    all
}

/// The per-minute counts (`blocked_over_time` by minute, read from them) agree with the
/// records, counted here: the writer and `trim` keep them in step.
async fn minutes_agree(log: &SqlAccessLog) {
    let mut expected = std::collections::BTreeMap::<SystemTime, (u64, u64, u64)>::new();
    for r in everything(log).await {
        let since_epoch = r.time.duration_since(UNIX_EPOCH).unwrap().as_secs();
        let minute = UNIX_EPOCH + Duration::from_secs(since_epoch / 60 * 60);
        let counts = expected.entry(minute).or_default();
        match &r.verdict {
            Some(v) if v.decision == Decision::Block && v.enforced => counts.0 += 1,
            Some(v) if v.decision == Decision::Block => counts.1 += 1,
            _ => counts.2 += 1,
        }
    }
    let expected: Vec<(SystemTime, u64, u64, u64)> = expected
        .into_iter()
        .map(|(minute, (b, w, a))| (minute, b, w, a))
        .collect();
    assert_eq!(
        buckets(
            log.blocked_over_time(UNIX_EPOCH, Bucket::Minute)
                .await
                .unwrap()
        ),
        expected
    );
}

async fn total(log: &SqlAccessLog) -> u64 {
    log.top_ips(UNIX_EPOCH, 10_000)
        .await
        .unwrap()
        .rows
        .iter()
        .map(|c| c.requests)
        .sum()
}

/// Records whose every field is set, with text a client could send.
fn odd_records() -> Vec<AccessRecord> {
    let long = "x".repeat(100_000);
    let mut a = rec(t0() + Duration::from_micros(1), "203.0.113.7", "/a'b\"c");
    a.method = "POST".into();
    a.query = Some("q=1&token=[REDACTED]&x=%3Cscript%3E".into());
    a.body = Some("{\"comment\":\"<script>alert('x')</script>\\n\",\"név\":\"日本語 🚀\"}".into());
    a.referrer = Some("https://example.com/'; DROP TABLE bouncer_access_log; --".into());
    a.user_agent = Some("Mozilla/5.0\r\n\tline two \u{1b}[31m red".into());
    a.session = Some("sess\"ion'with\\backslash".into());
    a.user = Some("ålice ✓".into());
    a.status = 201;
    a.duration = Duration::from_micros(1_234_567);
    a.bytes_sent = i64::MAX as u64;
    a.verdict = Some(AccessVerdict::new(
        Decision::Block,
        false,
        87,
        Some(BlockReason::Risk),
    ));

    let mut b = rec(
        t0() + Duration::from_micros(2),
        "2001:db8::1",
        &format!("/{long}"),
    );
    b.query = Some(long.clone());
    b.body = Some(long.clone());
    b.referrer = Some(long.clone());
    b.user_agent = Some(long.clone());
    b.session = Some(long.clone());
    b.user = Some(format!("user-{long}"));
    b.status = 599;
    b.duration = Duration::from_secs(3600);
    b.bytes_sent = 0;

    let mut all = vec![a, b];
    for (i, reason) in [
        BlockReason::Blacklisted,
        BlockReason::Banned,
        BlockReason::RateLimited,
        BlockReason::Risk,
        BlockReason::Restricted,
    ]
    .into_iter()
    .enumerate()
    {
        let mut r = rec(
            t0() + Duration::from_micros(10 + i as u64),
            "198.51.100.9",
            "/",
        );
        r.method = "DELETE".into();
        r.status = 429;
        r.verdict = Some(AccessVerdict::new(Decision::Block, true, 100, Some(reason)));
        all.push(r);
    }
    let mut empty = rec(t0() + Duration::from_micros(20), "::ffff:192.0.2.1", "");
    empty.query = Some(String::new());
    empty.body = Some(String::new());
    empty.user = Some(String::new());
    all.push(allowed(empty));
    all
}

/// The suite. `log` must start empty; `other` is a second handle on the same database (its
/// own pool where the backend allows one).
async fn acceptance(log: SqlAccessLog, other: SqlAccessLog) {
    // Empty.
    log.write(&[]).await.unwrap();
    for top in [
        log.top_paths(UNIX_EPOCH, 10).await.unwrap().rows.len(),
        log.top_ips(UNIX_EPOCH, 10).await.unwrap().rows.len(),
        log.top_blocked_ips(UNIX_EPOCH, 10)
            .await
            .unwrap()
            .rows
            .len(),
        log.block_reasons(UNIX_EPOCH).await.unwrap().rows.len(),
    ] {
        assert_eq!(top, 0);
    }
    assert_eq!(
        read(&log.top_blocked_ips(t0(), 10).await.unwrap()),
        (0, false, t0())
    );
    assert!(log
        .blocked_over_time(UNIX_EPOCH, Bucket::Hour)
        .await
        .unwrap()
        .is_empty());
    assert!(log
        .activity(&Subject::Ip(ip("203.0.113.7")), 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(log.trim(t0() + DAY).await.unwrap(), 0);

    round_trip(&log).await;
    assert_eq!(log.trim(t0() + DAY).await.unwrap(), 8, "the odd records go");
    assert_eq!(total(&log).await, 0);

    activity_over_days(&log).await;
    counts(&log).await;
    blocked_counts(&log).await;
    cut_windows(&log).await;
    trim(&log).await;
    concurrent_writers(&log, &other).await;
}

async fn round_trip(log: &SqlAccessLog) {
    let written = odd_records();
    // In two batches, the second before the first in time: reads order by time, not id.
    log.write(&written[5..]).await.unwrap();
    log.write(&written[..5]).await.unwrap();

    let mut read = everything(log).await;
    read.sort_by_key(|r| r.time);
    assert_eq!(read.len(), written.len());
    for (read, written) in read.iter().zip(&written) {
        assert_eq!(read, written);
    }

    // By user, newest first; a user id is compared whole, not by its indexed prefix.
    let alice = log
        .activity(&Subject::User("ålice ✓".into()), 10)
        .await
        .unwrap();
    assert_eq!(alice, [written[0].clone()]);
    let long_user = written[1].user.clone().unwrap();
    assert_eq!(
        log.activity(&Subject::User(long_user.clone()), 10)
            .await
            .unwrap(),
        [written[1].clone()]
    );
    let mut almost = long_user.clone();
    almost.push('y');
    assert!(log
        .activity(&Subject::User(almost), 10)
        .await
        .unwrap()
        .is_empty());
    assert!(log
        .activity(&Subject::User("alice".into()), 10)
        .await
        .unwrap()
        .is_empty());
    // The empty user id is a user id (not "no user").
    assert_eq!(
        log.activity(&Subject::User(String::new()), 10)
            .await
            .unwrap(),
        [written[7].clone()]
    );

    // By IP, newest first, limited.
    let shared = log
        .activity(&Subject::Ip(ip("198.51.100.9")), 3)
        .await
        .unwrap();
    assert_eq!(
        shared,
        [written[6].clone(), written[5].clone(), written[4].clone()]
    );
    let times: Vec<SystemTime> = shared.iter().map(|r| r.time).collect();
    assert_eq!(times, [written[6].time, written[5].time, written[4].time]);
}

/// Counts over a window, with injected times: 3 records an hour before `t0`, then in the
/// first minute after `t0`: /a ×4 (1 blocked, 1 monitor-mode), /b ×2 (both blocked), /c ×2
/// (no verdict); in the second minute /b ×1 allowed; an hour later /z ×1.
async fn counts(log: &SqlAccessLog) {
    let t = t0();
    let s = Duration::from_secs;
    let early: Vec<AccessRecord> = (0..3)
        .map(|i| blocked(rec(t - HOUR + s(i), "192.0.2.99", "/early"), true))
        .collect();
    let batch = vec![
        allowed(rec(t, "192.0.2.1", "/a")),
        allowed(rec(t + s(1), "192.0.2.2", "/a")),
        blocked(rec(t + s(2), "192.0.2.3", "/a"), true),
        blocked(rec(t + s(3), "192.0.2.3", "/a"), false),
        blocked(rec(t + s(4), "192.0.2.3", "/b"), true),
        blocked(rec(t + s(5), "192.0.2.3", "/b"), true),
        rec(t + s(6), "192.0.2.1", "/c"),
        rec(t + s(59), "192.0.2.1", "/c"),
        allowed(rec(t + MINUTE, "192.0.2.2", "/b")),
        allowed(rec(t + HOUR, "192.0.2.4", "/z")),
    ];
    log.write(&early).await.unwrap();
    log.write(&batch).await.unwrap();

    assert_eq!(
        paths(log.top_paths(t, 10).await.unwrap()),
        [
            path("/a", 4, 1),
            path("/b", 3, 2),
            path("/c", 2, 0),
            path("/z", 1, 0)
        ]
    );
    assert_eq!(
        paths(log.top_paths(t, 2).await.unwrap()),
        [path("/a", 4, 1), path("/b", 3, 2)]
    );
    assert_eq!(
        paths(log.top_paths(t + s(4), 10).await.unwrap()),
        [path("/b", 3, 2), path("/c", 2, 0), path("/z", 1, 0)],
        "the window starts at `since`, inclusive"
    );
    assert_eq!(
        paths(log.top_paths(t - HOUR, 1).await.unwrap()),
        [path("/a", 4, 1)]
    );
    assert_eq!(
        paths(log.top_paths(t - HOUR, 10).await.unwrap())[2],
        path("/early", 3, 3),
        "ties go by path: /c < /early"
    );

    assert_eq!(
        ips(log.top_ips(t, 10).await.unwrap()),
        [
            (ip("192.0.2.3"), 4, 3),
            (ip("192.0.2.1"), 3, 0),
            (ip("192.0.2.2"), 2, 0),
            (ip("192.0.2.4"), 1, 0),
        ]
    );
    assert_eq!(
        ips(log.top_ips(t - HOUR, 2).await.unwrap()),
        [(ip("192.0.2.3"), 4, 3), (ip("192.0.2.1"), 3, 0)]
    );

    assert_eq!(
        buckets(log.blocked_over_time(t, Bucket::Minute).await.unwrap()),
        [(t, 3, 1, 4), (t + MINUTE, 0, 0, 1), (t + HOUR, 0, 0, 1)]
    );
    assert_eq!(
        buckets(log.blocked_over_time(t - HOUR, Bucket::Hour).await.unwrap()),
        [(t - HOUR, 3, 0, 0), (t, 3, 1, 5), (t + HOUR, 0, 0, 1)]
    );
    assert_eq!(
        buckets(
            log.blocked_over_time(t + s(30), Bucket::Hour)
                .await
                .unwrap()
        ),
        [(t, 0, 0, 2), (t + HOUR, 0, 0, 1)],
        "a bucket counts only what is inside the window"
    );
    let json = serde_json::to_value(log.blocked_over_time(t, Bucket::Hour).await.unwrap()).unwrap();
    assert_eq!(
        json[0],
        serde_json::json!({"start": "2026-01-01T00:00:00Z", "blocked": 3, "would_block": 1, "allowed": 5})
    );

    minutes_agree(log).await;
    let top = log.top_paths(t, 10).await.unwrap();
    assert_eq!(
        read(&top),
        (10, false, t),
        "every record of the window read"
    );
    assert_eq!(
        serde_json::to_value(&top).unwrap()["since"],
        "2026-01-01T00:00:00Z"
    );
    assert_eq!(log.trim(t + HOUR + s(1)).await.unwrap(), 13);
    assert_eq!(total(log).await, 0);
}

fn verdict(mut r: AccessRecord, enforced: bool, reason: Option<BlockReason>) -> AccessRecord {
    r.verdict = Some(AccessVerdict::new(Decision::Block, enforced, 90, reason));
    r
}

/// Blocked requests by client and by reason: refused and monitor-mode ones apart, only the
/// window's, allowed ones never.
async fn blocked_counts(log: &SqlAccessLog) {
    use BlockReason::*;
    let t = t0();
    let s = Duration::from_secs;
    let at = |i: u64| t + s(i);
    let batch = vec![
        // Before the window.
        verdict(rec(t - HOUR, "192.0.2.99", "/"), true, Some(Blacklisted)),
        verdict(rec(t - s(1), "192.0.2.99", "/"), true, Some(Blacklisted)),
        verdict(rec(at(0), "192.0.2.3", "/a"), true, Some(Blacklisted)),
        verdict(rec(at(1), "192.0.2.3", "/a"), true, Some(Blacklisted)),
        verdict(rec(at(2), "192.0.2.3", "/b"), true, Some(RateLimited)),
        verdict(rec(at(3), "192.0.2.3", "/b"), false, Some(Risk)),
        verdict(rec(at(4), "192.0.2.5", "/a"), true, Some(Banned)),
        verdict(rec(at(5), "192.0.2.5", "/a"), false, Some(Risk)),
        verdict(rec(at(6), "192.0.2.5", "/a"), false, Some(Risk)),
        verdict(rec(at(7), "192.0.2.6", "/c"), false, Some(Risk)),
        verdict(rec(at(8), "192.0.2.6", "/c"), false, Some(Risk)),
        verdict(rec(at(9), "192.0.2.6", "/c"), false, Some(Risk)),
        verdict(rec(at(10), "192.0.2.7", "/c"), true, Some(Banned)),
        verdict(rec(at(11), "192.0.2.8", "/c"), true, None),
        allowed(rec(at(12), "192.0.2.1", "/a")),
        allowed(rec(at(13), "192.0.2.1", "/a")),
        rec(at(14), "192.0.2.1", "/a"),
        allowed(rec(at(3600), "192.0.2.9", "/z")),
    ];
    log.write(&batch).await.unwrap();

    let top = log.top_blocked_ips(t, 10).await.unwrap();
    assert_eq!(
        blocked_ips(&top),
        [
            (ip("192.0.2.3"), 3, 1),
            (ip("192.0.2.5"), 1, 2),
            (ip("192.0.2.7"), 1, 0),
            (ip("192.0.2.8"), 1, 0),
            (ip("192.0.2.6"), 0, 3),
        ],
        "the most refused first, then the most monitor-mode ones, then by address"
    );
    assert_eq!(read(&top), (12, false, t), "blocked records only");
    let two = log.top_blocked_ips(t, 2).await.unwrap();
    assert_eq!(
        blocked_ips(&two),
        [(ip("192.0.2.3"), 3, 1), (ip("192.0.2.5"), 1, 2)]
    );
    assert_eq!(
        read(&two),
        (12, false, t),
        "read counts more than the rows shown"
    );
    assert_eq!(
        blocked_ips(&log.top_blocked_ips(at(5), 10).await.unwrap()),
        [
            (ip("192.0.2.7"), 1, 0),
            (ip("192.0.2.8"), 1, 0),
            (ip("192.0.2.6"), 0, 3),
            (ip("192.0.2.5"), 0, 2),
        ],
        "the window starts at `since`, inclusive"
    );
    assert_eq!(
        blocked_ips(&log.top_blocked_ips(t - HOUR, 1).await.unwrap()),
        [(ip("192.0.2.3"), 3, 1)]
    );
    assert_eq!(
        blocked_ips(&log.top_blocked_ips(t - HOUR, 10).await.unwrap())[1],
        (ip("192.0.2.99"), 2, 0)
    );
    assert!(log
        .top_blocked_ips(at(12), 10)
        .await
        .unwrap()
        .rows
        .is_empty());

    let by_reason = log.block_reasons(t).await.unwrap();
    assert_eq!(
        reasons(&by_reason),
        [
            (Some(Banned), 2, 0),
            (Some(Blacklisted), 2, 0),
            (None, 1, 0),
            (Some(RateLimited), 1, 0),
            (Some(Risk), 0, 6),
        ],
        "the most refused first, then the most monitor-mode ones, then by name (none first)"
    );
    assert_eq!(read(&by_reason), (12, false, t));
    assert_eq!(
        reasons(&log.block_reasons(t - HOUR).await.unwrap())[0],
        (Some(Blacklisted), 4, 0)
    );
    let json = serde_json::to_value(&by_reason).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "rows": [
                {"reason": "banned", "blocked": 2, "would_block": 0},
                {"reason": "blacklisted", "blocked": 2, "would_block": 0},
                {"reason": null, "blocked": 1, "would_block": 0},
                {"reason": "rate_limited", "blocked": 1, "would_block": 0},
                {"reason": "risk", "blocked": 0, "would_block": 6},
            ],
            "read": 12,
            "window_cut": false,
            "since": "2026-01-01T00:00:00Z",
        })
    );
    assert_eq!(
        serde_json::to_value(&top).unwrap()["rows"][1],
        serde_json::json!({"ip": "192.0.2.5", "blocked": 1, "would_block": 2})
    );
    assert_eq!(log.trim(t + DAY).await.unwrap(), batch.len() as u64);
}

/// A window holding more than `TOP_READ_MAX` records is cut to its newest; the answer says
/// so, and from when it counted. Oldest first: 50 refused requests from A (`/old`), then
/// `TOP_READ_MAX` banned ones from B (`/new`), then 30 allowed ones from C (`/new`), a
/// millisecond apart.
async fn cut_windows(log: &SqlAccessLog) {
    let n = TOP_READ_MAX as u64;
    let at = |i: u64| t0() + Duration::from_millis(i);
    let just_after = |i: u64| at(i) + Duration::from_micros(1);
    let mut batch = Vec::new();
    for i in 0..50 {
        batch.push(verdict(
            rec(at(i), "192.0.2.1", "/old"),
            true,
            Some(BlockReason::Risk),
        ));
    }
    for i in 50..50 + n {
        batch.push(verdict(
            rec(at(i), "192.0.2.2", "/new"),
            true,
            Some(BlockReason::Banned),
        ));
    }
    for i in 50 + n..80 + n {
        batch.push(allowed(rec(at(i), "192.0.2.3", "/new")));
    }
    log.write(&batch).await.unwrap();
    let (a, b, c) = (ip("192.0.2.1"), ip("192.0.2.2"), ip("192.0.2.3"));

    // All records: the newest n are C's 30 and B's n - 30 newest; B's record 79 is the newest
    // left out.
    let top = log.top_ips(t0(), 10).await.unwrap();
    assert_eq!(ips(top.clone()), [(b, n - 30, n - 30), (c, 30, 0)]);
    assert_eq!(read(&top), (n, true, just_after(79)));
    let top = log.top_paths(t0(), 10).await.unwrap();
    assert_eq!(paths(top.clone()), [path("/new", n, n - 30)]);
    assert_eq!(read(&top), (n, true, just_after(79)));
    // Blocked records: A's 50 and B's n; the newest n are B's, A's record 49 the newest left
    // out.
    let top = log.top_blocked_ips(t0(), 10).await.unwrap();
    assert_eq!(blocked_ips(&top), [(b, n, 0)]);
    assert_eq!(read(&top), (n, true, just_after(49)));
    let by_reason = log.block_reasons(t0()).await.unwrap();
    assert_eq!(reasons(&by_reason), [(Some(BlockReason::Banned), n, 0)]);
    assert_eq!(read(&by_reason), (n, true, just_after(49)));
    assert_eq!(
        serde_json::to_value(&by_reason).unwrap()["window_cut"],
        true
    );

    // A window of exactly n records is read whole.
    let top = log.top_ips(at(80), 10).await.unwrap();
    assert_eq!(ips(top.clone()), [(b, n - 30, n - 30), (c, 30, 0)]);
    assert_eq!(read(&top), (n, false, at(80)));
    // One more record, and it is cut again, just after it.
    let top = log.top_ips(at(79), 10).await.unwrap();
    assert_eq!(read(&top), (n, true, just_after(79)));
    // Within the window of a 10 of B's blocked records fewer than n: read whole.
    let top = log.top_blocked_ips(at(60), 10).await.unwrap();
    assert_eq!(blocked_ips(&top), [(b, n - 10, 0)]);
    assert_eq!(read(&top), (n - 10, false, at(60)));
    assert!(
        blocked_ips(&log.top_blocked_ips(t0() - HOUR, 10).await.unwrap())
            .iter()
            .all(|(ip, _, _)| *ip != a),
        "A's records are older than the newest n blocked ones"
    );
    assert_eq!(log.trim(t0() + DAY).await.unwrap(), n + 80);
}

/// Activity is read a day at a time (the indexes are led by the day): newest first across
/// days, over days without the subject, a record at midnight on its own day, limits that stop
/// inside a day.
async fn activity_over_days(log: &SqlAccessLog) {
    let times = [
        t0() - 3 * DAY + MINUTE,
        t0() - DAY,
        t0() - DAY + HOUR,
        t0(),
        t0() + 2 * HOUR,
        t0() + DAY - Duration::from_micros(1),
    ];
    let mut mine = Vec::new();
    let mut others = Vec::new();
    for (i, at) in times.iter().enumerate() {
        let mut r = rec(*at, "192.0.2.50", "/mine/shared");
        r.user = Some("dana".into());
        mine.push(r);
        others.push(rec(
            *at + MINUTE,
            "192.0.2.51",
            &format!("/mine/shared/{i}"),
        ));
    }
    // Newest first, older later: what a batch holds does not decide what is read first.
    log.write(&mine[3..]).await.unwrap();
    log.write(&others).await.unwrap();
    log.write(&mine[..3]).await.unwrap();
    let newest_first: Vec<AccessRecord> = mine.iter().rev().cloned().collect();

    let all = log
        .activity(&Subject::Ip(ip("192.0.2.50")), 100)
        .await
        .unwrap();
    assert_eq!(all, newest_first);
    for n in 1..=6 {
        let some = log
            .activity(&Subject::Ip(ip("192.0.2.50")), n)
            .await
            .unwrap();
        assert_eq!(some, newest_first[..n], "limit {n}");
        let user = log
            .activity(&Subject::User("dana".into()), n)
            .await
            .unwrap();
        assert_eq!(user, newest_first[..n], "user, limit {n}");
        let path = log
            .activity(&Subject::Path("/mine/shared".into()), n)
            .await
            .unwrap();
        assert_eq!(path, newest_first[..n], "path, limit {n}");
    }
    assert!(log
        .activity(&Subject::Ip(ip("192.0.2.52")), 10)
        .await
        .unwrap()
        .is_empty());
    assert!(
        log.activity(&Subject::Path("/mine".into()), 10)
            .await
            .unwrap()
            .is_empty(),
        "a path is matched whole"
    );
    assert_eq!(log.trim(t0() + 2 * DAY).await.unwrap(), 12);
}

/// Trim removes exactly what is older than the cutoff, in however many chunks it takes.
async fn trim(log: &SqlAccessLog) {
    let t = t0();
    let cutoff = t - DAY;
    // 12,001 records older than the cutoff (more than two of trim's chunks), 10 newer ones
    // among them, and one exactly at the cutoff, which stays: "older than" is strict.
    let mut batch = Vec::new();
    for i in 1..=12_001u64 {
        batch.push(rec(cutoff - Duration::from_micros(i), "192.0.2.10", "/old"));
        if i % 1200 == 0 {
            batch.push(rec(t + Duration::from_micros(i), "192.0.2.11", "/new"));
        }
    }
    batch.push(rec(cutoff, "192.0.2.12", "/edge"));
    assert_eq!(batch.len(), 12_012);
    log.write(&batch).await.unwrap();
    // (More records than `everything` reads per client: the counts are checked after.)
    assert_eq!(log.trim(cutoff).await.unwrap(), 12_001);
    minutes_agree(log).await;
    assert_eq!(log.trim(cutoff).await.unwrap(), 0);
    let left = everything(log).await;
    assert_eq!(left.len(), 11);
    assert!(left.iter().all(|r| r.time >= cutoff), "{left:?}");
    assert_eq!(left.iter().filter(|r| r.path == "/edge").count(), 1);
    // A cutoff inside a minute: that minute is counted afresh from what is left of it.
    let inside = t + Duration::from_micros(5_000);
    let before = everything(log)
        .await
        .iter()
        .filter(|r| r.time < inside)
        .count() as u64;
    assert_eq!(log.trim(inside).await.unwrap(), before);
    minutes_agree(log).await;
    assert_eq!(log.trim(t + DAY).await.unwrap(), 11 - before);
    minutes_agree(log).await;
    assert!(log
        .blocked_over_time(UNIX_EPOCH, Bucket::Hour)
        .await
        .unwrap()
        .is_empty());
}

/// Writers on two handles, many batches each at once: nothing lost, nothing twice.
async fn concurrent_writers(log: &SqlAccessLog, other: &SqlAccessLog) {
    let mut tasks = Vec::new();
    for writer in 0..8u64 {
        let log = if writer % 2 == 0 {
            log.clone()
        } else {
            other.clone()
        };
        tasks.push(tokio::spawn(async move {
            for batch in 0..10u64 {
                let records: Vec<AccessRecord> = (0..50u64)
                    .map(|i| {
                        let mut r = rec(
                            t0() + Duration::from_micros(batch * 1000 + i),
                            &format!("10.0.{writer}.{batch}"),
                            "/w",
                        );
                        r.session = Some(format!("{writer}-{batch}-{i}"));
                        r
                    })
                    .collect();
                log.write(&records).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let all = everything(log).await;
    assert_eq!(all.len(), 4000);
    let sessions: HashSet<String> = all.into_iter().filter_map(|r| r.session).collect();
    assert_eq!(sessions.len(), 4000, "every record once");
    assert_eq!(log.trim(t0() + DAY).await.unwrap(), 4000);
}

/// The background trimmer, its cutoff from an injected clock.
async fn trimmer(log: SqlAccessLog) {
    let clock = Arc::new(ManualClock::starting_at(t0()));
    log.write(&[
        rec(t0() - 8 * DAY, "192.0.2.1", "/8-days"),
        rec(t0() - 6 * DAY, "192.0.2.1", "/6-days"),
        rec(t0() - DAY, "192.0.2.1", "/1-day"),
    ])
    .await
    .unwrap();
    // Runs at once, then every `every`; the test waits for runs, not for the clock.
    let trimmer = log
        .trim_every_with_clock(7 * DAY, Duration::from_millis(1), clock.clone())
        .unwrap();
    trimmer.wait_runs(1).await;
    let left = |records: Vec<AccessRecord>| -> Vec<String> {
        let mut paths: Vec<String> = records.into_iter().map(|r| r.path).collect();
        paths.sort();
        paths
    };
    assert_eq!(left(everything(&log).await), ["/1-day", "/6-days"]);
    clock.advance(2 * DAY);
    let seen = trimmer.runs();
    trimmer.wait_runs(seen + 2).await;
    assert_eq!(left(everything(&log).await), ["/1-day"]);
    // Dropped: no more runs.
    drop(trimmer);
    clock.advance(30 * DAY);
    log.write(&[rec(t0(), "192.0.2.1", "/later")])
        .await
        .unwrap();
    tokio::task::yield_now().await;
    assert_eq!(left(everything(&log).await), ["/1-day", "/later"]);

    assert!(log
        .trim_every(DAY, Duration::ZERO)
        .unwrap_err()
        .to_string()
        .contains("longer than zero"));
}

/// Asserts that every query's plan reads through an index and never walks the table.
async fn plans_use_indexes(log: &SqlAccessLog, since: SystemTime, older_than: SystemTime) {
    let sqlite = format!("{log:?}").contains("SQLite");
    let plans = log.query_plans(since, older_than).await.unwrap();
    assert_eq!(plans.len(), 12);
    for (name, plan) in plans {
        // The blocked queries read the blocked records' own index, and the probes for where a
        // cut window starts walk an index in its order, without sorting.
        if name == "top_blocked_ips" || name == "block_reasons" || name == "top_blocked_edge" {
            assert!(
                plan.contains("bouncer_access_log_blocked"),
                "{name}: {plan}"
            );
        }
        if name.ends_with("_edge") && name.starts_with("top") {
            assert!(!plan.contains("TEMP B-TREE"), "{name} sorts: {plan}");
            assert!(!plan.contains("Sort"), "{name} sorts: {plan}");
        }
        if sqlite {
            assert!(
                plan.lines().any(|step| {
                    step.starts_with("SEARCH bouncer_access_log USING")
                        || step.starts_with("SEARCH bouncer_access_log_minutes USING")
                }),
                "{name}: {plan}"
            );
            assert!(!plan.contains("SCAN bouncer_access_log"), "{name}: {plan}");
            if name.starts_with("activity") {
                assert!(!plan.contains("TEMP B-TREE"), "{name} sorts: {plan}");
            }
        } else if name == "blocked_over_time" {
            // A row a minute: the planner may read that small table whole, never the records.
            assert!(
                plan.contains("bouncer_access_log_minutes"),
                "{name}: {plan}"
            );
            assert!(!plan.contains("on bouncer_access_log "), "{name}: {plan}");
        } else {
            assert!(plan.contains("Index"), "{name}: {plan}");
            assert!(
                !plan.contains("Seq Scan on bouncer_access_log"),
                "{name}: {plan}"
            );
        }
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;

    fn file(dir: &tempfile::TempDir) -> String {
        format!("sqlite://{}", dir.path().join("access.db").display())
    }

    #[tokio::test]
    async fn in_memory_log_passes() {
        let log = SqlAccessLog::connect("sqlite::memory:").await.unwrap();
        // One in-memory database: the second handle shares its pool.
        acceptance(log.clone(), log).await;
    }

    #[tokio::test]
    async fn file_log_passes() {
        let dir = tempfile::tempdir().unwrap();
        let a = SqlAccessLog::connect(&file(&dir)).await.unwrap();
        let b = SqlAccessLog::connect(&file(&dir)).await.unwrap();
        acceptance(a, b).await;
    }

    /// A log file in `dir` holding one record from 1970, which a retention removes when the
    /// writer starts; its URL and a handle on it.
    async fn with_an_old_record(dir: &tempfile::TempDir) -> (String, SqlAccessLog) {
        let url = file(dir);
        let log = SqlAccessLog::connect(&url).await.unwrap();
        log.write(&[rec(UNIX_EPOCH + DAY, "192.0.2.1", "/old")])
            .await
            .unwrap();
        (url, log)
    }

    /// Waits (at most 10 s) for the writer's trimmer, which starts with the writer and runs
    /// in the background, to remove the record of [`with_an_old_record`].
    async fn old_record_trimmed(log: &SqlAccessLog) {
        let old = Subject::Ip(ip("192.0.2.1"));
        for _ in 0..1000 {
            if log.activity(&old, 1).await.unwrap().is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the retention did not trim the old record");
    }

    /// `[access_log]` in the bouncer's TOML file configures `bouncer.access_log()`: the store,
    /// the retention, what is redacted and skipped, the session cookie.
    #[actix_web::test]
    async fn the_toml_file_configures_the_access_log() {
        use actix_bouncer::Bouncer;
        use actix_web::{test, web, App, HttpResponse};

        let dir = tempfile::tempdir().unwrap();
        let (url, seeded) = with_an_old_record(&dir).await;
        let bouncer = Bouncer::from_toml_str(&format!(
            r#"
            [access_log]
            store = "{url}"
            retain = "7d"
            also_redact = ["pin"]
            skip = ["/assets/"]
            session_cookie = "sessionid"
            "#
        ))
        .unwrap();
        let log = bouncer.access_log().build().unwrap();
        let app = test::init_service(
            App::new()
                .wrap(bouncer.clone())
                .wrap(log.clone())
                .default_service(web::to(HttpResponse::Ok)),
        )
        .await;
        for uri in ["/login?pin=1234&next=%2Fhome", "/assets/app.js"] {
            let req = test::TestRequest::get()
                .uri(uri)
                .peer_addr("192.0.2.77:4000".parse().unwrap())
                .insert_header(("cookie", "sessionid=abc123"))
                .to_request();
            test::call_and_read_body(&app, req).await;
        }
        old_record_trimmed(&seeded).await;
        log.shutdown().await;
        assert_eq!(log.stats().written, 1, "the skipped prefix is not logged");
        let rows = seeded
            .activity(&Subject::Ip(ip("192.0.2.77")), 10)
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].path, "/login");
        let query = rows[0].query.as_deref().unwrap();
        assert!(query.contains("pin=") && !query.contains("1234"), "{query}");
        assert!(query.contains("next=%2Fhome"), "{query}");
        assert!(
            rows[0].session.is_some(),
            "the session cookie is fingerprinted"
        );
        assert!(rows[0].verdict.is_some(), "the bouncer's verdict");
    }

    /// `store_url` opens the database on the writer's own runtime: requests served by an app
    /// on another runtime land in it, and `retain` trims what is older at once.
    #[actix_web::test]
    async fn an_access_log_opens_its_store_on_its_writer() {
        use actix_bouncer::access_log::AccessLog;
        use actix_web::{test, web, App, HttpResponse};

        let dir = tempfile::tempdir().unwrap();
        let (url, seeded) = with_an_old_record(&dir).await;
        let log = AccessLog::builder()
            .store_url(&url)
            .retain(7 * DAY)
            .build()
            .unwrap();
        let app = test::init_service(
            App::new()
                .wrap(log.clone())
                .route("/items/{id}", web::get().to(HttpResponse::Ok)),
        )
        .await;
        for i in 0..25 {
            let req = test::TestRequest::get()
                .uri(&format!("/items/{i}"))
                .peer_addr("203.0.113.9:4000".parse().unwrap())
                .to_request();
            test::call_and_read_body(&app, req).await;
        }
        old_record_trimmed(&seeded).await;
        log.shutdown().await;
        assert_eq!(log.stats().written, 25);
        let paths = seeded.top_paths(UNIX_EPOCH, 100).await.unwrap().rows;
        assert_eq!(paths.iter().map(|p| p.requests).sum::<u64>(), 25);
        assert!(paths.iter().all(|p| p.path != "/old"), "{paths:?}");
    }

    #[test]
    fn an_access_log_store_that_cannot_open_names_the_setting() {
        use actix_bouncer::access_log::AccessLog;

        let error = AccessLog::builder()
            .store_url("postgres://user:hunter2@127.0.0.1:1/none")
            .build()
            .unwrap_err()
            .to_string();
        assert!(error.contains("store"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
        let error = AccessLog::builder()
            .store_url("sqlite:///nonexistent-dir/x/access.db")
            .build()
            .unwrap_err()
            .to_string();
        assert!(error.contains("store"), "{error}");
        let error = AccessLog::builder()
            .retain(DAY)
            .build()
            .unwrap_err()
            .to_string();
        assert!(error.contains("retain"), "{error}");
    }

    #[tokio::test]
    async fn trimmer_trims_in_the_background() {
        trimmer(SqlAccessLog::connect("sqlite::memory:").await.unwrap()).await;
    }

    #[test]
    fn the_trimmer_needs_a_runtime() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let log = runtime
            .block_on(SqlAccessLog::connect("sqlite::memory:"))
            .unwrap();
        let error = log.trim_every(DAY, HOUR).unwrap_err().to_string();
        assert!(error.contains("tokio runtime"), "{error}");
    }

    #[tokio::test]
    async fn queries_read_through_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let log = SqlAccessLog::connect(&file(&dir)).await.unwrap();
        plans_use_indexes(&log, t0(), t0() - DAY).await;
    }

    #[tokio::test]
    async fn the_rule_store_and_the_log_share_a_database() {
        let dir = tempfile::tempdir().unwrap();
        let rules = actix_bouncer::rules::SqlRuleStore::connect(&file(&dir))
            .await
            .unwrap();
        let log = SqlAccessLog::connect(&file(&dir)).await.unwrap();
        log.write(&[rec(t0(), "192.0.2.1", "/")]).await.unwrap();
        assert_eq!(total(&log).await, 1);
        rules.close().await;
        assert_eq!(SqlAccessLog::schema_version(), 4);
    }

    /// A log made by the first schema (client and user indexes led by the client) is brought
    /// up to date, its records kept and found.
    #[tokio::test]
    async fn a_first_schema_log_is_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        let url = file(&dir);
        let pool = sqlx::SqlitePool::connect(&format!("{url}?mode=rwc"))
            .await
            .unwrap();
        for step in [
            "CREATE TABLE bouncer_access_log_schema (version BIGINT NOT NULL)",
            "INSERT INTO bouncer_access_log_schema (version) VALUES (1)",
            "CREATE TABLE bouncer_access_log (id INTEGER PRIMARY KEY, time_us BIGINT NOT NULL, \
             method TEXT NOT NULL, path TEXT NOT NULL, query TEXT, body TEXT, referrer TEXT, \
             ip TEXT NOT NULL, user_agent TEXT, session TEXT, user_id TEXT, \
             status INTEGER NOT NULL, duration_us BIGINT NOT NULL, bytes_sent BIGINT NOT NULL, \
             decision TEXT, enforced BOOLEAN, score INTEGER, reason TEXT)",
            "CREATE INDEX bouncer_access_log_time \
             ON bouncer_access_log (time_us, decision, enforced, ip, path)",
            "CREATE INDEX bouncer_access_log_ip ON bouncer_access_log (ip, time_us)",
            "CREATE INDEX bouncer_access_log_user ON bouncer_access_log (user_id, time_us) \
             WHERE user_id IS NOT NULL",
            "INSERT INTO bouncer_access_log (time_us, method, path, ip, user_id, status, \
             duration_us, bytes_sent) VALUES (1767225600000000, 'GET', '/old', '192.0.2.9', \
             'olga', 200, 5, 10)",
        ] {
            sqlx::query(step).execute(&pool).await.unwrap();
        }
        pool.close().await;

        let log = SqlAccessLog::connect(&url).await.unwrap();
        let by_ip = log
            .activity(&Subject::Ip(ip("192.0.2.9")), 10)
            .await
            .unwrap();
        assert_eq!(by_ip.len(), 1);
        assert_eq!(by_ip[0].path, "/old");
        assert_eq!(by_ip[0].time, t0());
        let by_user = log
            .activity(&Subject::User("olga".into()), 10)
            .await
            .unwrap();
        assert_eq!(by_user, by_ip);
        plans_use_indexes(&log, t0() - HOUR, t0()).await;
        log.close().await;
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let version: i64 = sqlx::query_scalar("SELECT version FROM bouncer_access_log_schema")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(version, 4);
        pool.close().await;
    }

    #[tokio::test]
    async fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let url = file(&dir);
        SqlAccessLog::connect(&url).await.unwrap().close().await;
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query("UPDATE bouncer_access_log_schema SET version = 99")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let error = SqlAccessLog::connect(&url).await.unwrap_err().to_string();
        assert!(
            error.contains("bouncer_access_log_schema")
                && error.contains("schema version 99")
                && error.contains("newer"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_row_written_badly_by_hand_is_skipped_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let url = file(&dir);
        let log = SqlAccessLog::connect(&url).await.unwrap();
        let good = allowed(rec(t0(), "192.0.2.1", "/good"));
        log.write(std::slice::from_ref(&good)).await.unwrap();
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query(
            "INSERT INTO bouncer_access_log \
             (time_us, method, path, ip, status, duration_us, bytes_sent, decision, user_id) VALUES \
             (1, 'GET', '/bad-ip', 'not-an-ip', 200, 0, 0, NULL, 'u'), \
             (2, 'GET', '/bad-decision', '192.0.2.1', 200, 0, 0, 'maybe', 'u'), \
             (3, 'GET', '/bad-status', '192.0.2.1', 70000, 0, 0, NULL, 'u'), \
             (4, X'ff00', '/not-utf8', '192.0.2.1', 200, 0, 0, NULL, 'u')",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
        assert_eq!(
            log.activity(&Subject::Ip(ip("192.0.2.1")), 10)
                .await
                .unwrap(),
            [good]
        );
        assert!(log
            .activity(&Subject::User("u".into()), 10)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            ips(log.top_ips(UNIX_EPOCH, 10).await.unwrap()),
            [(ip("192.0.2.1"), 4, 0)],
            "the bad IP's count is left out"
        );
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::common::postgres::TestDatabase;
    use super::*;

    #[tokio::test]
    async fn postgres_log_passes() {
        let Some(db) = TestDatabase::create("postgres_log_passes").await else {
            return;
        };
        // Both migrate at once on an empty database: they take turns.
        let (a, b) = tokio::join!(
            SqlAccessLog::connect(&db.url),
            SqlAccessLog::connect(&db.url)
        );
        acceptance(a.unwrap(), b.unwrap()).await;
    }

    #[tokio::test]
    async fn postgres_trimmer_trims_in_the_background() {
        let Some(db) = TestDatabase::create("postgres_trimmer_trims_in_the_background").await
        else {
            return;
        };
        trimmer(SqlAccessLog::connect(&db.url).await.unwrap()).await;
    }

    #[tokio::test]
    async fn postgres_queries_read_through_indexes() {
        let Some(db) = TestDatabase::create("postgres_queries_read_through_indexes").await else {
            return;
        };
        let log = SqlAccessLog::connect(&db.url).await.unwrap();
        // Enough rows, and statistics, for the planner to prefer the indexes.
        let batch: Vec<AccessRecord> = (0..20_000u64)
            .map(|i| {
                let mut r = rec(
                    t0() - DAY + Duration::from_secs(i * 4),
                    &format!("10.{}.{}.{}", i % 7, i % 251, i % 13),
                    &format!("/p/{}", i % 500),
                );
                r.user = Some(format!("user{}", i % 1000));
                if i % 20 == 0 {
                    r = verdict(r, i % 40 == 0, Some(BlockReason::Risk));
                }
                r
            })
            .collect();
        log.write(&batch).await.unwrap();
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        sqlx::query("VACUUM ANALYZE bouncer_access_log")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        // The last 2 hours of the rows' 22 (1%), and trim of the first hour (5%).
        plans_use_indexes(&log, t0() - 2 * HOUR, t0() - DAY + HOUR).await;
    }

    #[tokio::test]
    async fn a_newer_postgres_schema_is_refused() {
        let Some(db) = TestDatabase::create("a_newer_postgres_schema_is_refused").await else {
            return;
        };
        SqlAccessLog::connect(&db.url).await.unwrap().close().await;
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        sqlx::query("UPDATE bouncer_access_log_schema SET version = 99")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let error = SqlAccessLog::connect(&db.url)
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("schema version 99"), "{error}");
    }
}
