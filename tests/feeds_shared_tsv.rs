//! Loads the shared 158k-range table (`../shared/data/hosting-vpn-tor-ranges.tsv`, next to the
//! repository) as one `tsv` feed and checks every range at its edges through the public API:
//! the first and last address, a middle one, and the addresses just outside.
//!
//! The expected answer for each probe comes from the file alone, with a plain sorted-interval
//! model (no prefix table), so the check does not lean on the code under test. Skipped, with
//! a message, when the file is absent.

use std::cmp::Reverse;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use actix_bouncer::feeds::{FeedConfig, FeedFormat, FeedKind, FeedKinds, Feeds};

/// One line of the file as an interval of the family's integer space.
struct Range {
    v6: bool,
    start: u128,
    end: u128,
    len: u8,
    kind: FeedKind,
    provider: String,
    /// Position in the file, to break ties between identical networks (first one wins).
    order: usize,
}

fn addr(v6: bool, a: u128) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(a))
    } else {
        IpAddr::V4(Ipv4Addr::from(a as u32))
    }
}

/// `cidr<TAB>kind<TAB>provider`, parsed with the standard library only.
fn parse_line(line: &str, order: usize) -> Range {
    let mut fields = line.split('\t');
    let (cidr, kind, provider) = (
        fields.next().unwrap(),
        fields.next().unwrap(),
        fields.next().unwrap_or(""),
    );
    let (ip, len) = cidr.split_once('/').expect("the file has CIDRs only");
    let len: u8 = len.parse().unwrap();
    let (v6, a, bits) = match ip.parse::<IpAddr>().unwrap() {
        IpAddr::V4(a) => (false, u128::from(u32::from(a)), 32),
        IpAddr::V6(a) => (true, u128::from(a), 128),
    };
    let host = if u32::from(len) == bits {
        0
    } else {
        (1u128 << (bits - u32::from(len))) - 1
    };
    Range {
        v6,
        start: a & !host,
        end: a | host,
        len,
        kind: kind.parse().unwrap(),
        provider: provider.trim().to_owned(),
        order,
    }
}

/// Sorted intervals plus, at each position, the furthest end seen so far in that family: the
/// ranges covering `a` are then found by walking back from the last start <= `a` while that
/// running maximum still reaches `a`.
struct Model {
    ranges: Vec<Range>,
    reach: Vec<u128>,
}

impl Model {
    fn new(mut ranges: Vec<Range>) -> Self {
        ranges.sort_by_key(|r| (r.v6, r.start, Reverse(r.end), r.order));
        let mut reach = Vec::with_capacity(ranges.len());
        for (i, r) in ranges.iter().enumerate() {
            let before = (i > 0 && ranges[i - 1].v6 == r.v6).then(|| reach[i - 1]);
            reach.push(before.map_or(r.end, |b: u128| b.max(r.end)));
        }
        Model { ranges, reach }
    }

    /// Kinds of every covering range, and the provider of the most specific one naming one.
    fn expect(&self, v6: bool, a: u128) -> (FeedKinds, Option<&str>) {
        let mut kinds = FeedKinds::default();
        let mut best: Option<&Range> = None;
        let mut i = self.ranges.partition_point(|r| (r.v6, r.start) <= (v6, a));
        while i > 0 && self.ranges[i - 1].v6 == v6 && self.reach[i - 1] >= a {
            i -= 1;
            let r = &self.ranges[i];
            if r.end < a {
                continue;
            }
            kinds.insert(r.kind);
            if !r.provider.is_empty()
                && best.is_none_or(|b| (r.len, Reverse(r.order)) > (b.len, Reverse(b.order)))
            {
                best = Some(r);
            }
        }
        (kinds, best.map(|r| r.provider.as_str()))
    }
}

#[test]
fn every_range_of_the_shared_tsv() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/hosting-vpn-tor-ranges.tsv");
    if !path.exists() {
        // Straight to stderr: the test harness captures `eprintln!`, and a skip must be seen.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "feeds_shared_tsv: skipped: {} not found",
            path.display()
        );
        return;
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let ranges: Vec<Range> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .enumerate()
        .map(|(order, line)| parse_line(line, order))
        .collect();
    let n = ranges.len();
    assert!(n > 100_000, "expected the full table, found {n} ranges");

    let feeds = Feeds::load(vec![FeedConfig::new(&path, FeedFormat::Tsv, None)]).unwrap();
    assert!(
        feeds.warnings().is_empty(),
        "first warnings: {:?}",
        &feeds.warnings()[..feeds.warnings().len().min(5)]
    );

    let model = Model::new(ranges);
    let mut distinct: Vec<(bool, u128, u8)> = model
        .ranges
        .iter()
        .map(|r| (r.v6, r.start, r.len))
        .collect();
    distinct.dedup();
    assert_eq!(feeds.len(), distinct.len());

    let (mut probes, mut inside, mut outside, mut neighbours_covered) = (0usize, 0, 0, 0);
    let mut failures = Vec::new();
    let mut check = |v6: bool, a: u128, what: &str, line: &Range| -> bool {
        let (kinds, provider) = model.expect(v6, a);
        let hit = feeds.lookup(addr(v6, a));
        probes += 1;
        if hit.kinds != kinds || hit.provider.as_deref() != provider {
            failures.push(format!(
                "{} ({what} of range #{} {}/{}): got {:?} {:?}, want {kinds:?} {provider:?}",
                addr(v6, a),
                line.order,
                addr(v6, line.start),
                line.len,
                hit.kinds,
                hit.provider,
            ));
        }
        !kinds.is_empty()
    };
    for r in &model.ranges {
        let max = if r.v6 {
            u128::MAX
        } else {
            u128::from(u32::MAX)
        };
        let mid = r.start + (r.end - r.start) / 2;
        for (a, what) in [(r.start, "first"), (r.end, "last"), (mid, "middle")] {
            if what == "middle" && (mid == r.start || mid == r.end) {
                continue;
            }
            // Every address of a range carries at least that line's kind.
            assert!(model.expect(r.v6, a).0.contains(r.kind));
            check(r.v6, a, what, r);
            inside += 1;
        }
        let before = r.start.checked_sub(1).map(|a| (a, "address before"));
        let after = (r.end < max).then(|| (r.end + 1, "address after"));
        for (a, what) in before.into_iter().chain(after) {
            if check(r.v6, a, what, r) {
                neighbours_covered += 1;
            }
            outside += 1;
        }
    }
    eprintln!(
        "{n} ranges ({} distinct networks): {probes} probes, {inside} inside ranges, \
         {outside} just outside ({neighbours_covered} of those inside another range), \
         {} mismatches",
        distinct.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} mismatches, first: {:#?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
}
