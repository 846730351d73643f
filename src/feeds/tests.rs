use super::compile::compile;
use super::parse::{Range, MAX_LINE_WARNINGS};
use super::*;
use ipnet::{IpNet, Ipv4Net};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Instant, SystemTime};

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("bouncer-feeds-{}-{n}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn file(&self, name: &str, content: &str) -> PathBuf {
        let path = self.0.join(name);
        fs::write(&path, content).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn set(kinds: &[FeedKind]) -> FeedKinds {
    kinds.iter().copied().collect()
}

fn cfg(path: &Path, format: FeedFormat, kind: Option<FeedKind>) -> FeedConfig {
    FeedConfig::new(path, format, kind)
}

fn kinds_of(feeds: &Feeds, a: &str) -> FeedKinds {
    feeds.lookup(ip(a)).kinds
}

fn provider_of(feeds: &Feeds, a: &str) -> Option<String> {
    feeds.lookup(ip(a)).provider.map(|p| p.to_string())
}

fn load_err(configs: Vec<FeedConfig>) -> FeedError {
    match Feeds::load(configs) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

fn lines_warned(feeds: &Feeds) -> Vec<usize> {
    feeds.warnings().iter().map(|w| w.line).collect()
}

use FeedKind::*;

#[test]
fn kind_and_format_names() {
    for &kind in FeedKind::ALL {
        assert_eq!(kind.as_str().parse::<FeedKind>(), Ok(kind));
        assert_eq!(kind.to_string(), kind.as_str());
    }
    let err = "Tor".parse::<FeedKind>().unwrap_err().to_string();
    assert_eq!(
        err,
        r#"expected one of "hosting", "cdn", "vpn", "tor", "proxy", "bot""#
    );
    for format in [FeedFormat::Netset, FeedFormat::Drop, FeedFormat::Tsv] {
        assert_eq!(format.as_str().parse::<FeedFormat>(), Ok(format));
        assert_eq!(format.to_string(), format.as_str());
    }
    let err = "csv".parse::<FeedFormat>().unwrap_err().to_string();
    assert!(err.contains("\"netset\", \"drop\", \"tsv\""), "{err}");
    assert_eq!(
        FeedConfig::new("x", FeedFormat::Tsv, None).reload,
        DEFAULT_RELOAD
    );
}

#[test]
fn kinds_set() {
    let mut k = FeedKinds::empty();
    assert!(k.is_empty());
    k.insert(Tor);
    k.insert(Hosting);
    k.insert(Tor);
    assert!(k.contains(Tor) && k.contains(Hosting) && !k.contains(Vpn));
    assert_eq!(k.iter().collect::<Vec<_>>(), [Hosting, Tor]);
    assert_eq!(format!("{k:?}"), r#"{"hosting", "tor"}"#);
    assert_eq!(FeedKinds::from(Bot).union(k), set(&[Bot, Tor, Hosting]));
    assert_eq!(FeedKinds::default(), FeedKinds::empty());
}

#[test]
fn netset_format() {
    let dir = TempDir::new();
    let path = dir.file(
        "tor.netset",
        "\u{feff}# Tor exits: documentation ranges\r\n\
         \r\n\
         203.0.113.7\r\n\
         203.0.113.16/30   # trailing comment\n\
         \t2001:db8::7   \n\
         ::ffff:198.51.100.0/120\n\
         #203.0.113.99\n",
    );
    let feeds = Feeds::load(vec![cfg(&path, FeedFormat::Netset, Some(Tor))]).unwrap();
    assert!(feeds.warnings().is_empty(), "{:?}", feeds.warnings());
    assert_eq!(feeds.len(), 4);
    assert!(!feeds.is_empty());
    assert_eq!(kinds_of(&feeds, "203.0.113.7"), set(&[Tor]));
    assert!(kinds_of(&feeds, "203.0.113.8").is_empty());
    assert!(kinds_of(&feeds, "203.0.113.15").is_empty());
    assert_eq!(kinds_of(&feeds, "203.0.113.16"), set(&[Tor]));
    assert_eq!(kinds_of(&feeds, "203.0.113.19"), set(&[Tor]));
    assert!(kinds_of(&feeds, "203.0.113.20").is_empty());
    assert!(kinds_of(&feeds, "203.0.113.99").is_empty());
    assert_eq!(kinds_of(&feeds, "2001:db8::7"), set(&[Tor]));
    assert!(kinds_of(&feeds, "2001:db8::8").is_empty());
    // The mapped network is stored as IPv4, and a mapped address is looked up as IPv4.
    assert_eq!(kinds_of(&feeds, "198.51.100.200"), set(&[Tor]));
    assert_eq!(kinds_of(&feeds, "::ffff:198.51.100.1"), set(&[Tor]));
    assert_eq!(kinds_of(&feeds, "::ffff:203.0.113.7"), set(&[Tor]));
    assert_eq!(feeds.lookup(ip("203.0.113.7")).provider, None);
    assert!(feeds.heap_bytes() > 0);
}

#[test]
fn drop_format() {
    let dir = TempDir::new();
    let path = dir.file(
        "drop.txt",
        "; Spamhaus DROP List (documentation ranges)\n\
         ; Last-Modified: Thu, 01 Jan 2026 00:00:00 GMT\n\
         192.0.2.0/25 ; SBL000001\n\
         198.51.100.128/25;SBL000002\n\
         2001:db8:dead::/48 ; SBL000003\n\
         203.0.113.0/24\n",
    );
    let feeds = Feeds::load(vec![cfg(&path, FeedFormat::Drop, Some(Proxy))]).unwrap();
    assert!(feeds.warnings().is_empty(), "{:?}", feeds.warnings());
    assert_eq!(feeds.len(), 4);
    assert_eq!(kinds_of(&feeds, "192.0.2.127"), set(&[Proxy]));
    assert!(kinds_of(&feeds, "192.0.2.128").is_empty());
    assert_eq!(kinds_of(&feeds, "198.51.100.128"), set(&[Proxy]));
    assert_eq!(kinds_of(&feeds, "2001:db8:dead:1::1"), set(&[Proxy]));
    assert_eq!(kinds_of(&feeds, "203.0.113.255"), set(&[Proxy]));
}

#[test]
fn tsv_format() {
    let dir = TempDir::new();
    let path = dir.file(
        "ranges.tsv",
        "# cidr\tkind\tprovider (documentation ranges)\n\
         198.51.100.0/25\thosting\tExample Cloud\n\
         198.51.100.128/26\tvpn\t\n\
         198.51.100.192/26\tcdn\n\
         192.0.2.64/27\tbot\tGooglebot\n\
         2001:db8:1::/48 \t vpn \t Example VPN \r\n",
    );
    let feeds = Feeds::load(vec![cfg(&path, FeedFormat::Tsv, None)]).unwrap();
    assert!(feeds.warnings().is_empty(), "{:?}", feeds.warnings());
    assert_eq!(feeds.len(), 5);
    let hit = feeds.lookup(ip("198.51.100.1"));
    assert_eq!(hit.kinds, set(&[Hosting]));
    assert_eq!(hit.provider.as_deref(), Some("Example Cloud"));
    assert_eq!(
        feeds.lookup(ip("198.51.100.130")),
        FeedHit {
            kinds: set(&[Vpn]),
            provider: None
        }
    );
    assert_eq!(kinds_of(&feeds, "198.51.100.255"), set(&[Cdn]));
    assert_eq!(
        provider_of(&feeds, "192.0.2.80").as_deref(),
        Some("Googlebot")
    );
    assert_eq!(kinds_of(&feeds, "192.0.2.80"), set(&[Bot]));
    assert!(kinds_of(&feeds, "192.0.2.96").is_empty());
    assert_eq!(
        provider_of(&feeds, "2001:db8:1::5").as_deref(),
        Some("Example VPN")
    );
}

#[test]
fn tsv_kind_is_a_filter() {
    let dir = TempDir::new();
    let path = dir.file(
        "ranges.tsv",
        "198.51.100.0/25\thosting\tExample Cloud\n\
         192.0.2.64/27\tbot\tGooglebot\n\
         192.0.2.128/27\tnonsense\tX\n",
    );
    let feeds = Feeds::load(vec![cfg(&path, FeedFormat::Tsv, Some(Bot))]).unwrap();
    assert_eq!(feeds.len(), 1);
    assert_eq!(kinds_of(&feeds, "192.0.2.64"), set(&[Bot]));
    assert!(kinds_of(&feeds, "198.51.100.1").is_empty());
    assert!(!feeds.has_provider(Hosting, "Example Cloud"));
    // An unknown kind is still a malformed line, filter or not.
    assert_eq!(lines_warned(&feeds), [3]);

    // A filter that keeps nothing names the kind.
    let err = load_err(vec![cfg(&path, FeedFormat::Tsv, Some(Tor))]);
    assert_eq!((err.feed(), err.setting().field()), (0, "kind"), "{err}");
    assert!(err.to_string().contains("2 lines of other kinds"), "{err}");
}

#[test]
fn malformed_lines_reported_and_skipped() {
    let dir = TempDir::new();
    let path = dir.file(
        "tor.txt",
        "# header\n\
         not-an-ip\n\
         203.0.113.7\n\
         203.0.113.9/24\n\
         203.0.113.1 203.0.113.2\n\
         203.0.113.0/33\n\
         2001:db8::1\n",
    );
    let feeds = Feeds::load(vec![cfg(&path, FeedFormat::Netset, Some(Tor))]).unwrap();
    assert_eq!(feeds.len(), 2);
    let warnings = feeds.warnings();
    assert_eq!(lines_warned(&feeds), [2, 4, 5, 6]);
    assert!(warnings.iter().all(|w| w.path == path));
    assert!(
        warnings[0].message.contains("\"not-an-ip\""),
        "{}",
        warnings[0]
    );
    assert!(warnings[1].message.contains("host bits"), "{}", warnings[1]);
    assert!(
        warnings[1].message.contains("203.0.113.0/24"),
        "{}",
        warnings[1]
    );
    assert!(
        warnings[2].message.contains("one network per line"),
        "{}",
        warnings[2]
    );
    assert!(warnings[0]
        .to_string()
        .starts_with(&format!("{}:2: ", path.display())));
    // The host-bits line is skipped, not widened.
    assert!(kinds_of(&feeds, "203.0.113.100").is_empty());

    let tsv = dir.file(
        "bad.tsv",
        "192.0.2.0/24\thosting\tA\n\
         192.0.2.0/24 hosting A\n\
         198.51.100.0/24\thosting\tA\textra\n\
         198.51.100.0/24\tHosting\tA\n\
         \n\
         203.0.113.0/24\tvpn\tB\n",
    );
    let feeds = Feeds::load(vec![cfg(&tsv, FeedFormat::Tsv, None)]).unwrap();
    assert_eq!(feeds.len(), 2);
    assert_eq!(lines_warned(&feeds), [2, 3, 4]);
    let w = feeds.warnings();
    assert!(
        w[0].message.contains("found 1 tab-separated field;"),
        "{}",
        w[0]
    );
    assert!(
        w[1].message.contains("found 4 tab-separated fields"),
        "{}",
        w[1]
    );
    assert!(
        w[2].message.contains("unknown kind \"Hosting\""),
        "{}",
        w[2]
    );
}

#[test]
fn many_malformed_lines_are_summarised() {
    let dir = TempDir::new();
    let mut text = String::from("192.0.2.1\n");
    for i in 0..50 {
        text.push_str(&format!("garbage {i}\n"));
    }
    let path = dir.file("noisy.txt", &text);
    let feeds = Feeds::load(vec![cfg(&path, FeedFormat::Netset, Some(Proxy))]).unwrap();
    let lines = lines_warned(&feeds);
    assert_eq!(lines.len(), MAX_LINE_WARNINGS + 1);
    assert_eq!(lines[..3], [2, 3, 4]);
    assert_eq!(*lines.last().unwrap(), 0);
    let summary = feeds.warnings().pop().unwrap();
    assert!(
        summary.message.contains("30 more malformed lines"),
        "{summary}"
    );
}

#[test]
fn config_errors_name_the_key() {
    let dir = TempDir::new();
    let good = dir.file("good.txt", "192.0.2.1\n");
    let useless = dir.file("useless.txt", "# only a comment\n\nnot-an-ip\n");
    let empty = dir.file("empty.txt", "");

    let err = load_err(vec![
        cfg(&good, FeedFormat::Netset, Some(Tor)),
        cfg(&useless, FeedFormat::Netset, Some(Tor)),
    ]);
    assert_eq!((err.feed(), err.setting().field()), (1, "path"), "{err}");
    assert!(
        err.to_string()
            .contains("at least one valid line (1 malformed"),
        "{err}"
    );

    let err = load_err(vec![
        cfg(&good, FeedFormat::Netset, Some(Tor)),
        cfg(&good, FeedFormat::Drop, Some(Tor)),
        cfg(&empty, FeedFormat::Tsv, None),
    ]);
    assert_eq!((err.feed(), err.setting().field()), (2, "path"), "{err}");

    let missing = dir.0.join("missing.txt");
    let err = load_err(vec![cfg(&missing, FeedFormat::Netset, Some(Tor))]);
    assert_eq!((err.feed(), err.setting().field()), (0, "path"), "{err}");
    assert!(err.to_string().contains("missing.txt"), "{err}");

    let err = load_err(vec![
        cfg(&good, FeedFormat::Tsv, None),
        cfg(&good, FeedFormat::Netset, None),
    ]);
    assert_eq!((err.feed(), err.setting().field()), (1, "kind"), "{err}");
    assert!(err.to_string().contains("\"tor\""), "{err}");
    let err = load_err(vec![cfg(&good, FeedFormat::Drop, None)]);
    assert_eq!((err.feed(), err.setting().field()), (0, "kind"), "{err}");

    let mut zero = cfg(&good, FeedFormat::Netset, Some(Tor));
    zero.reload = Duration::ZERO;
    let err = load_err(vec![zero]);
    assert_eq!((err.feed(), err.setting().field()), (0, "reload"), "{err}");
}

#[test]
fn overlapping_ranges_union_their_kinds() {
    let dir = TempDir::new();
    let hosting = dir.file(
        "hosting.tsv",
        "198.51.0.0/16\thosting\tExample Cloud\n\
         198.51.100.0/24\tvpn\t\n\
         198.51.100.64/27\tbot\tGooglebot\n",
    );
    let tor = dir.file("tor.txt", "198.51.100.7\n198.51.100.70\n198.51.7.7\n");
    let feeds = Feeds::load(vec![
        cfg(&hosting, FeedFormat::Tsv, None),
        cfg(&tor, FeedFormat::Netset, Some(Tor)),
    ])
    .unwrap();
    assert_eq!(feeds.len(), 6);
    // A Tor /32 inside a hosting /16 is both; the provider comes from the nearest range
    // that names one.
    let hit = feeds.lookup(ip("198.51.7.7"));
    assert_eq!(hit.kinds, set(&[Hosting, Tor]));
    assert_eq!(hit.provider.as_deref(), Some("Example Cloud"));
    assert_eq!(kinds_of(&feeds, "198.51.7.8"), set(&[Hosting]));
    // Three levels: /16 hosting, /24 vpn (no provider), /32 tor.
    let hit = feeds.lookup(ip("198.51.100.7"));
    assert_eq!(hit.kinds, set(&[Hosting, Vpn, Tor]));
    assert_eq!(hit.provider.as_deref(), Some("Example Cloud"));
    // Four levels, with a more specific provider.
    let hit = feeds.lookup(ip("198.51.100.70"));
    assert_eq!(hit.kinds, set(&[Hosting, Vpn, Bot, Tor]));
    assert_eq!(hit.provider.as_deref(), Some("Googlebot"));
    assert_eq!(kinds_of(&feeds, "198.51.100.96"), set(&[Hosting, Vpn]));
    assert_eq!(kinds_of(&feeds, "198.51.101.0"), set(&[Hosting]));
    assert!(kinds_of(&feeds, "198.52.0.0").is_empty());
}

#[test]
fn identical_networks_from_several_feeds_merge() {
    let dir = TempDir::new();
    let a = dir.file("a.tsv", "192.0.2.0/24\thosting\t\n");
    let b = dir.file("b.tsv", "192.0.2.0/24\tvpn\tFirst VPN\n");
    let c = dir.file("c.txt", "192.0.2.0/24\n192.0.2.0/24\n");
    let d = dir.file("d.tsv", "192.0.2.0/24\tproxy\tLater Proxy\n");
    let feeds = Feeds::load(vec![
        cfg(&a, FeedFormat::Tsv, None),
        cfg(&b, FeedFormat::Tsv, None),
        cfg(&c, FeedFormat::Netset, Some(Tor)),
        cfg(&d, FeedFormat::Tsv, None),
    ])
    .unwrap();
    assert_eq!(feeds.len(), 1);
    let hit = feeds.lookup(ip("192.0.2.9"));
    assert_eq!(hit.kinds, set(&[Hosting, Vpn, Tor, Proxy]));
    // The first non-empty provider, in feed order.
    assert_eq!(hit.provider.as_deref(), Some("First VPN"));
    assert!(feeds.has_provider(Proxy, "Later Proxy"));
}

#[test]
fn providers_are_interned_and_known() {
    let dir = TempDir::new();
    let path = dir.file(
        "ranges.tsv",
        "192.0.2.64/27\tbot\tGooglebot\n\
         198.51.100.0/24\tbot\tGooglebot\n\
         203.0.113.0/24\thosting\tExample Cloud\n\
         2001:db8::/48\thosting\tGooglebot\n",
    );
    let feeds = Feeds::load(vec![cfg(&path, FeedFormat::Tsv, None)]).unwrap();
    let a = feeds.lookup(ip("192.0.2.70")).provider.unwrap();
    let b = feeds.lookup(ip("198.51.100.70")).provider.unwrap();
    let c = feeds.lookup(ip("2001:db8::1")).provider.unwrap();
    assert!(Arc::ptr_eq(&a, &b) && Arc::ptr_eq(&a, &c));
    assert_eq!(&*a, "Googlebot");

    assert!(feeds.has_provider(Bot, "Googlebot"));
    assert!(feeds.has_provider(Hosting, "Googlebot"));
    assert!(feeds.has_provider(Hosting, "Example Cloud"));
    assert!(!feeds.has_provider(Bot, "Example Cloud"));
    assert!(!feeds.has_provider(Bot, "googlebot"));
    assert!(!feeds.has_provider(Bot, "Bingbot"));
    assert!(!feeds.has_provider(Bot, ""));
    assert!(format!("{feeds:?}").contains("providers: 2"));
}

#[test]
fn reload_picks_up_a_rewritten_file() {
    let dir = TempDir::new();
    let tor = dir.file("tor.txt", "203.0.113.7\n");
    let hosting = dir.file("hosting.txt", "198.51.100.0/25\n");
    let feeds = Feeds::load(vec![
        cfg(&tor, FeedFormat::Netset, Some(Tor)),
        cfg(&hosting, FeedFormat::Netset, Some(Hosting)),
    ])
    .unwrap();
    let other = feeds.clone();
    assert_eq!(feeds.reload_now(), 0, "nothing changed yet");

    // A different length, so the change is seen even on a coarse-mtime file system.
    fs::write(&tor, "# rewritten\n203.0.113.8\n203.0.113.9\n").unwrap();
    assert_eq!(feeds.reload_now(), 1);
    assert!(kinds_of(&feeds, "203.0.113.7").is_empty());
    assert_eq!(kinds_of(&feeds, "203.0.113.8"), set(&[Tor]));
    // Clones share the table, and the other feed is untouched.
    assert_eq!(kinds_of(&other, "203.0.113.9"), set(&[Tor]));
    assert_eq!(kinds_of(&other, "198.51.100.1"), set(&[Hosting]));
    assert_eq!(other.len(), 3);
    assert_eq!(feeds.reload_now(), 0);
}

#[test]
fn a_broken_file_keeps_its_previous_ranges() {
    let dir = TempDir::new();
    let tor = dir.file("tor.txt", "203.0.113.7\n");
    let feeds = Feeds::load(vec![cfg(&tor, FeedFormat::Netset, Some(Tor))]).unwrap();

    fs::write(&tor, "").unwrap();
    assert_eq!(feeds.reload_now(), 0);
    assert_eq!(kinds_of(&feeds, "203.0.113.7"), set(&[Tor]));
    assert_eq!(feeds.len(), 1);
    // Reported once per version of the file, not at every check.
    assert_eq!(feeds.reload_now(), 0);
    let w = feeds.warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].line, 0);
    assert!(
        w[0].message.contains("keeping the feed's 1 ranges"),
        "{}",
        w[0]
    );

    fs::write(&tor, "# all lines bad\nnope\n").unwrap();
    assert_eq!(feeds.reload_now(), 0);
    assert_eq!(kinds_of(&feeds, "203.0.113.7"), set(&[Tor]));
    assert_eq!(lines_warned(&feeds), [0, 2, 0]);

    fs::remove_file(&tor).unwrap();
    assert_eq!(feeds.reload_now(), 0);
    assert_eq!(feeds.reload_now(), 0);
    assert_eq!(kinds_of(&feeds, "203.0.113.7"), set(&[Tor]));
    let w = feeds.warnings();
    assert_eq!(w.len(), 4, "{w:?}");
    assert!(w[3].message.contains("cannot read the feed"), "{}", w[3]);

    fs::write(&tor, "203.0.113.70\n").unwrap();
    assert_eq!(feeds.reload_now(), 1);
    assert_eq!(kinds_of(&feeds, "203.0.113.70"), set(&[Tor]));
    assert!(kinds_of(&feeds, "203.0.113.7").is_empty());
}

#[test]
fn health_reports_kinds_times_warnings_and_failures() {
    let dir = TempDir::new();
    let tor = dir.file("tor.txt", "203.0.113.7\n203.0.113.8\n");
    let tsv = dir.file(
        "mixed.tsv",
        "198.51.100.0/24\thosting\tExample\n\
         198.51.100.0/24\tvpn\tExample\n\
         198.51.100.7\tvpn\t\n\
         203.0.113.7\thosting\t\n\
         2001:db8::/32\tcdn\tEdge\n\
         bad line\tcdn\t\n",
    );
    let before = SystemTime::now();
    let feeds = Feeds::load(vec![
        cfg(&tor, FeedFormat::Netset, Some(Tor)),
        cfg(&tsv, FeedFormat::Tsv, None),
    ])
    .unwrap();
    let after = SystemTime::now();

    let health = feeds.health();
    // Distinct networks by their own lines: the /24 once under each of its two kinds, the
    // /32 nested in it only as vpn, 203.0.113.7 under tor (one feed) and hosting (the other).
    let want: BTreeMap<FeedKind, usize> = [(Hosting, 2), (Vpn, 2), (Tor, 2), (Cdn, 1)].into();
    assert_eq!(health.ranges, want);
    assert!(before <= health.loaded_at && health.loaded_at <= after);
    assert_eq!(health.checked_at, health.loaded_at);
    assert_eq!(health.reload_failures, 0);
    assert_eq!(&health.warnings[..], &feeds.warnings()[..]);
    assert_eq!(health.warnings.len(), 1, "{:?}", health.warnings);
    assert_eq!(health.warnings[0].line, 6);
    // Built at load, not per call: the same warnings are handed out again.
    assert!(Arc::ptr_eq(&health.warnings, &feeds.health().warnings));

    let json = serde_json::to_value(&health).unwrap();
    assert_eq!(
        json["ranges"],
        serde_json::json!({"hosting": 2, "cdn": 1, "vpn": 2, "tor": 2})
    );
    assert_eq!(json["warnings"][0]["line"], 6);
    assert_eq!(json["warnings"][0]["path"], tsv.display().to_string());
    assert_eq!(json["reload_failures"], 0);
    let loaded = json["loaded_at"].as_str().unwrap();
    assert_eq!(
        loaded,
        crate::clock::rfc3339(health.loaded_at, false),
        "RFC 3339"
    );

    // A pass that changes nothing moves only `checked_at`.
    assert_eq!(feeds.reload_now(), 0);
    let quiet = feeds.health();
    assert_eq!(quiet.loaded_at, health.loaded_at);
    assert!(quiet.checked_at >= health.checked_at);
    assert_eq!(quiet.ranges, health.ranges);

    // A broken file: a failure and a warning, the ranges kept.
    fs::remove_file(&tor).unwrap();
    assert_eq!(feeds.reload_now(), 0);
    let broken = feeds.health();
    assert_eq!(broken.reload_failures, 1);
    assert_eq!(broken.reload_failures, feeds.reload_failures());
    assert_eq!(broken.warnings.len(), 2);
    assert!(broken.warnings[1].message.contains("cannot read the feed"));
    assert_eq!(broken.ranges, health.ranges);
    assert_eq!(broken.loaded_at, health.loaded_at);

    // A new version: new counts and a new load time.
    fs::write(&tor, "192.0.2.1\n192.0.2.2\n192.0.2.3\n").unwrap();
    let before = SystemTime::now();
    assert_eq!(feeds.reload_now(), 1);
    let fresh = feeds.clone().health();
    assert_eq!(fresh.ranges.get(&Tor), Some(&3));
    assert_eq!(fresh.ranges.get(&Hosting), Some(&2));
    assert!(fresh.loaded_at >= before && fresh.checked_at >= fresh.loaded_at);
    assert_eq!(fresh.reload_failures, 1);

    let none = Feeds::empty().health();
    assert!(none.ranges.is_empty() && none.warnings.is_empty());
    assert_eq!(none.reload_failures, 0);
}

/// The reloader's test token, held by the thread's task while the thread runs.
fn reloader_token(feeds: &Feeds) -> Arc<()> {
    assert!(feeds.shared.reloader.get().is_some(), "a reloader thread");
    Arc::clone(&feeds.shared.reloader_token)
}

/// Waits until the reloader thread has ended: its task, and the task's token, are gone.
fn exited(token: &Arc<()>, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Arc::strong_count(token) > 1 {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

/// Drops `feeds` on another thread, so a reloader that never stops fails the test (through
/// [`exited`]) instead of hanging it in the join.
fn drop_elsewhere(feeds: Feeds) {
    std::thread::spawn(move || drop(feeds));
}

#[test]
fn reloader_thread_exits_when_feeds_are_dropped() {
    let dir = TempDir::new();
    let tor = dir.file("tor.txt", "203.0.113.7\n");
    let mut config = cfg(&tor, FeedFormat::Netset, Some(Tor));
    // Short enough that the thread has woken (and reloaded) at least once in some runs,
    // long enough not to spin.
    config.reload = Duration::from_millis(5);
    let feeds = Feeds::load(vec![config]).unwrap();
    let token = reloader_token(&feeds);
    let clone = feeds.clone();
    drop(feeds);
    // The test's token, the state's and the running task's.
    assert_eq!(Arc::strong_count(&token), 3, "a clone is still alive");
    drop_elsewhere(clone);
    assert!(exited(&token, Duration::from_secs(10)));

    // With the default hour-long interval the thread is asleep, and must wake to exit.
    let feeds = Feeds::load(vec![cfg(&tor, FeedFormat::Netset, Some(Tor))]).unwrap();
    let token = reloader_token(&feeds);
    drop_elsewhere(feeds);
    assert!(exited(&token, Duration::from_secs(10)));
}

#[test]
fn no_feeds() {
    for feeds in [
        Feeds::empty(),
        Feeds::load(Vec::new()).unwrap(),
        Feeds::default(),
    ] {
        assert!(feeds.shared.reloader.get().is_none(), "no reloader thread");
        assert!(feeds.is_empty());
        assert_eq!(feeds.len(), 0);
        assert_eq!(feeds.lookup(ip("192.0.2.1")), FeedHit::default());
        assert!(!feeds.has_provider(Bot, "Googlebot"));
        assert_eq!(feeds.reload_now(), 0);
        assert!(feeds.warnings().is_empty());
    }
}

#[test]
fn send_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Feeds>();
    assert_send_sync::<FeedHit>();
}

#[test]
fn sample_data_loads_cleanly() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data");
    let feed = |name: &str, format, kind| cfg(&data.join(name), format, kind);
    let feeds = Feeds::load(vec![
        feed("tor-exits.txt", FeedFormat::Netset, Some(Tor)),
        feed("hosting.netset", FeedFormat::Netset, Some(Hosting)),
        feed("drop.txt", FeedFormat::Drop, Some(Proxy)),
        feed("ranges.tsv", FeedFormat::Tsv, None),
    ])
    .unwrap();
    assert!(feeds.warnings().is_empty(), "{:?}", feeds.warnings());
    assert_eq!(kinds_of(&feeds, "203.0.113.7"), set(&[Tor]));
    assert_eq!(kinds_of(&feeds, "203.0.113.140"), set(&[Tor, Proxy]));
    assert_eq!(kinds_of(&feeds, "2001:db8:7::1"), set(&[Tor]));
    assert_eq!(kinds_of(&feeds, "198.51.100.1"), set(&[Hosting]));
    assert_eq!(kinds_of(&feeds, "198.51.100.130"), set(&[Vpn]));
    assert_eq!(kinds_of(&feeds, "198.51.100.230"), set(&[Proxy]));
    let bot = feeds.lookup(ip("192.0.2.70"));
    assert_eq!(bot.kinds, set(&[Bot]));
    assert_eq!(bot.provider.as_deref(), Some("Googlebot"));
    assert!(feeds.has_provider(Bot, "Googlebot"));
    assert_eq!(
        provider_of(&feeds, "2001:db8:c10d::1").as_deref(),
        Some("Example Cloud")
    );
    assert!(kinds_of(&feeds, "192.0.2.200").is_empty());
}

// --- compile() against a naive model -------------------------------------------------

/// Reference: scan every range in feed-then-line order.
fn naive(feeds: &[Vec<(IpNet, FeedKind, &'static str)>], ip: IpAddr) -> FeedHit {
    let covering: Vec<_> = feeds
        .iter()
        .flatten()
        .filter(|(net, _, _)| net.contains(&ip))
        .collect();
    let kinds = covering.iter().map(|(_, k, _)| *k).collect();
    let provider = covering
        .iter()
        .filter(|(_, _, p)| !p.is_empty())
        // Longest prefix wins; among identical networks the first in order (`max_by_key`
        // keeps the last maximum, so iterate in reverse).
        .rev()
        .max_by_key(|(net, _, _)| net.prefix_len())
        .map(|(_, _, p)| Arc::from(*p));
    FeedHit { kinds, provider }
}

fn spec() -> impl Strategy<Value = (bool, u32, u8, usize, usize)> {
    (
        prop::bool::weighted(0.3),
        0u32..4096,
        0u8..=12,
        0usize..FeedKind::ALL.len(),
        0usize..4,
    )
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn compile_agrees_with_naive_scan(
        feeds in prop::collection::vec(prop::collection::vec(spec(), 0..40), 1..4),
        extra in prop::collection::vec(0u32..4096, 0..32),
    ) {
        const PROVIDERS: [&str; 4] = ["", "A", "B", "C"];
        // Everything inside 192.0.0.0/20 or 2001:db8::/116 so ranges nest and repeat.
        let make = |v6: bool, off: u32, extra_len: u8| -> IpNet {
            if v6 {
                let a = u128::from("2001:db8::".parse::<std::net::Ipv6Addr>().unwrap()) + u128::from(off);
                IpNet::V6(ipnet::Ipv6Net::new(a.into(), 116 + extra_len).unwrap().trunc())
            } else {
                let a = u32::from(std::net::Ipv4Addr::new(192, 0, 0, 0)) + off;
                IpNet::V4(Ipv4Net::new(a.into(), 20 + extra_len).unwrap().trunc())
            }
        };
        let model: Vec<Vec<(IpNet, FeedKind, &'static str)>> = feeds
            .iter()
            .map(|f| f.iter().map(|&(v6, off, len, k, p)| (make(v6, off, len), FeedKind::ALL[k], PROVIDERS[p])).collect())
            .collect();
        let mut interner = Interner::default();
        let sources: Vec<Source> = model
            .iter()
            .map(|f| Source {
                config: FeedConfig::new("x", FeedFormat::Tsv, None),
                stamp: None,
                ranges: f.iter().map(|&(net, kind, p)| Range { net, kind, provider: interner.intern(p) }).collect(),
                unreadable: false,
            })
            .collect();
        let compiled = compile(&sources, &interner);

        let mut probes: Vec<IpAddr> = Vec::new();
        for (net, _, _) in model.iter().flatten() {
            match net {
                IpNet::V4(n) => {
                    let (a, b) = (u32::from(n.network()), u32::from(n.broadcast()));
                    probes.extend([a - 1, a, b, b + 1].map(|x| IpAddr::V4(x.into())));
                }
                IpNet::V6(n) => {
                    let (a, b) = (u128::from(n.network()), u128::from(n.broadcast()));
                    probes.extend([a - 1, a, b, b + 1].map(|x| IpAddr::V6(x.into())));
                }
            }
        }
        for off in extra {
            probes.extend([make(false, off, 12), make(true, off, 12)].map(|n| n.addr()));
        }
        for ip in probes {
            prop_assert_eq!(compiled.hit(ip), naive(&model, ip), "at {}", ip);
        }
        for (net, kind, p) in model.iter().flatten() {
            let _ = net;
            if !p.is_empty() {
                prop_assert!(compiled.by_provider.get(*p).is_some_and(|k| k.contains(*kind)));
            }
        }
    }
}
