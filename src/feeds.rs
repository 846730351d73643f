//! Offline IP-range feeds: hosting, CDN, VPN, Tor, proxy and crawler ranges read from local files.
//!
//! Each feed is a file in one of three line formats:
//!
//! * **`netset`** (FireHOL style): one CIDR network or bare address per line. `#` starts a
//!   comment, on its own line or after the network. Every range gets the feed's `kind`.
//! * **`drop`** (Spamhaus DROP style): `1.2.3.0/24 ; SBL123`. `;` starts a comment, so the SBL
//!   reference is ignored. Every range gets the feed's `kind`.
//! * **`tsv`**: `cidr<TAB>kind<TAB>provider`, lines starting with `#` are comments. The kind
//!   comes from each line; the provider may be empty (or its column missing). A `kind` set on a
//!   `tsv` feed is a *filter*: only the lines of that kind are loaded, the others are skipped
//!   quietly. Without it every line is loaded.
//!
//! In every format blank lines are skipped, a bare address is a full-length network
//! (`1.2.3.4` is `1.2.3.4/32`), and IPv4-mapped IPv6 networks (`::ffff:1.2.3.0/120`) are stored
//! as IPv4. A network with host bits set (`10.1.2.3/8`) is a malformed line, as in the rest of
//! the crate's config: widening it silently could flag far more addresses than the feed meant.
//! A malformed line is logged (`tracing` target `actix_bouncer`, with the file and line number),
//! kept in [`Feeds::warnings`], and skipped; the feed still loads.
//!
//! # Merging
//!
//! All feeds are compiled into one longest-prefix-match [`PrefixTable`]. Ranges may repeat and
//! nest, within one file or across files, and an address gets the *union* of the kinds of every
//! range that covers it: a Tor exit `/32` inside a hosting `/16` is both `tor` and `hosting`. The
//! union is worked out once per reload (each network inherits the kinds of the networks that
//! enclose it), so a lookup reads a single entry. The provider reported is that of the most
//! specific covering range that has one; when the very same network appears in several feeds
//! (or lines), their kinds merge and the first non-empty provider, in feed then line order, is
//! kept.
//!
//! Provider names are interned: each distinct name is one `Arc<str>`, however many ranges
//! carry it, and a lookup hands out a clone of that `Arc` rather than a new string.
//!
//! # Reloading
//!
//! [`Feeds::load`] starts a background thread (`actix-bouncer-feeds`) that wakes every
//! `min(reload)` of the feeds and re-reads the files whose modification time or length changed,
//! then swaps the compiled table in atomically: lookups never wait for a reload. A file that
//! became unreadable or has no valid line keeps its previous ranges. The thread holds no strong
//! reference to the feeds and exits as soon as the last [`Feeds`] clone is dropped.
//!
//! Feed files should be replaced atomically (write a temporary file, then rename it over the
//! old one): a reload that happens to read a half-written file loads only the lines written so
//! far.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use ipnet::IpNet;

use crate::config::{ConfigError, NetworkError};
use crate::prefix_table::PrefixTable;

/// How often a feed is checked for changes when its config says nothing: one hour.
pub const DEFAULT_RELOAD: Duration = Duration::from_secs(3600);

/// Malformed lines reported one by one per file read; the rest are counted in one summary, so
/// a file in the wrong format does not flood the log.
const MAX_LINE_WARNINGS: usize = 20;

/// Warnings kept for [`Feeds::warnings`]; the oldest go first.
const MAX_WARNINGS: usize = 1000;

/// Interned-provider id meaning "no provider".
const NO_PROVIDER: u32 = u32::MAX;

/// Longest wait between reloader wake-ups; keeps `Instant + interval` from overflowing.
const MAX_INTERVAL: Duration = Duration::from_secs(365 * 24 * 3600);

/// Name of the background reload thread.
const THREAD_NAME: &str = "actix-bouncer-feeds";

/// What a feed says an address is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FeedKind {
    /// A hosting or cloud provider's range (servers rather than people).
    Hosting,
    /// A content delivery network's range.
    Cdn,
    /// A VPN provider's exit range.
    Vpn,
    /// A Tor exit node.
    Tor,
    /// An open or commercial proxy.
    Proxy,
    /// A crawler's published range (e.g. Googlebot's).
    Bot,
}

impl FeedKind {
    /// Every kind, in declaration order.
    pub const ALL: [FeedKind; 6] = [
        FeedKind::Hosting,
        FeedKind::Cdn,
        FeedKind::Vpn,
        FeedKind::Tor,
        FeedKind::Proxy,
        FeedKind::Bot,
    ];

    /// The kind's lowercase name, as written in feed configs and `tsv` files.
    pub const fn as_str(self) -> &'static str {
        match self {
            FeedKind::Hosting => "hosting",
            FeedKind::Cdn => "cdn",
            FeedKind::Vpn => "vpn",
            FeedKind::Tor => "tor",
            FeedKind::Proxy => "proxy",
            FeedKind::Bot => "bot",
        }
    }

    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl fmt::Display for FeedKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown feed kind name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownFeedKind;

impl fmt::Display for UnknownFeedKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("expected one of ")?;
        for (i, kind) in FeedKind::ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "\"{}\"", kind.as_str())?;
        }
        Ok(())
    }
}

impl std::error::Error for UnknownFeedKind {}

/// Parses a kind's lowercase name, e.g. `"tor"`.
impl FromStr for FeedKind {
    type Err = UnknownFeedKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FeedKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or(UnknownFeedKind)
    }
}

/// A set of [`FeedKind`]s: one address can be in several feeds (a Tor exit inside a hosting
/// range).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct FeedKinds(u8);

impl FeedKinds {
    /// The empty set.
    pub const fn empty() -> Self {
        FeedKinds(0)
    }

    /// Whether `kind` is in the set.
    pub const fn contains(self, kind: FeedKind) -> bool {
        self.0 & kind.bit() != 0
    }

    /// Adds `kind`.
    pub fn insert(&mut self, kind: FeedKind) {
        self.0 |= kind.bit();
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The kinds in either set.
    pub const fn union(self, other: FeedKinds) -> FeedKinds {
        FeedKinds(self.0 | other.0)
    }

    /// The kinds in the set, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = FeedKind> {
        FeedKind::ALL.into_iter().filter(move |k| self.contains(*k))
    }
}

impl fmt::Debug for FeedKinds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl From<FeedKind> for FeedKinds {
    fn from(kind: FeedKind) -> Self {
        FeedKinds(kind.bit())
    }
}

impl FromIterator<FeedKind> for FeedKinds {
    fn from_iter<I: IntoIterator<Item = FeedKind>>(iter: I) -> Self {
        let mut kinds = FeedKinds::empty();
        iter.into_iter().for_each(|k| kinds.insert(k));
        kinds
    }
}

/// The line format of a feed file (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedFormat {
    /// One CIDR network or address per line, `#` comments (FireHOL `.netset`).
    Netset,
    /// `cidr ; SBLnnn` lines, `;` comments (Spamhaus DROP).
    Drop,
    /// `cidr<TAB>kind<TAB>provider` lines, `#` comments.
    Tsv,
}

impl FeedFormat {
    /// The format's name, as written in feed configs.
    pub const fn as_str(self) -> &'static str {
        match self {
            FeedFormat::Netset => "netset",
            FeedFormat::Drop => "drop",
            FeedFormat::Tsv => "tsv",
        }
    }
}

impl fmt::Display for FeedFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown feed format name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownFeedFormat;

impl fmt::Display for UnknownFeedFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("expected one of \"netset\", \"drop\", \"tsv\"")
    }
}

impl std::error::Error for UnknownFeedFormat {}

/// Parses `"netset"`, `"drop"` or `"tsv"`.
impl FromStr for FeedFormat {
    type Err = UnknownFeedFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "netset" => Ok(FeedFormat::Netset),
            "drop" => Ok(FeedFormat::Drop),
            "tsv" => Ok(FeedFormat::Tsv),
            _ => Err(UnknownFeedFormat),
        }
    }
}

/// One feed file, as configured by a `[[feeds]]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedConfig {
    /// The file to read. A relative path is relative to the process's working directory.
    pub path: PathBuf,
    /// The file's line format.
    pub format: FeedFormat,
    /// The kind every range of a `netset` or `drop` feed gets (required there). On a `tsv`
    /// feed, which carries a kind per line, it is optional and keeps only the lines of that kind.
    pub kind: Option<FeedKind>,
    /// How often the file is checked for changes; must be above zero.
    pub reload: Duration,
}

impl FeedConfig {
    /// A feed checked for changes every [`DEFAULT_RELOAD`].
    pub fn new(path: impl Into<PathBuf>, format: FeedFormat, kind: Option<FeedKind>) -> Self {
        FeedConfig {
            path: path.into(),
            format,
            kind,
            reload: DEFAULT_RELOAD,
        }
    }
}

/// What the feeds know about one address.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FeedHit {
    /// Kinds of every range that covers the address; empty when none does.
    pub kinds: FeedKinds,
    /// Provider of the most specific covering range that names one.
    pub provider: Option<Arc<str>>,
}

/// A problem met while reading a feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedWarning {
    /// The feed file.
    pub path: PathBuf,
    /// The 1-based line at fault, or 0 when the warning is about the whole file.
    pub line: usize,
    /// What was wrong and what was done about it.
    pub message: String,
}

impl fmt::Display for FeedWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.path.display(), self.message)
        } else {
            write!(f, "{}:{}: {}", self.path.display(), self.line, self.message)
        }
    }
}

/// All configured feeds, compiled into one table.
///
/// Cheap to clone (the state is shared behind an `Arc`); lookups take no lock and do not
/// allocate. See the [module docs](self) for the formats and how ranges merge.
///
/// # Example
///
/// ```
/// use actix_bouncer::feeds::{FeedConfig, FeedFormat, FeedKind, Feeds};
///
/// // 203.0.113.0/24 and 2001:db8::/32 are documentation ranges.
/// let path = std::env::temp_dir().join(format!("bouncer-doc-tor-{}.txt", std::process::id()));
/// std::fs::write(&path, "# Tor exits\n203.0.113.7\n2001:db8::7/128  # trailing comment\n")?;
///
/// let feeds = Feeds::load(vec![FeedConfig::new(&path, FeedFormat::Netset, Some(FeedKind::Tor))])?;
/// assert_eq!(feeds.len(), 2);
/// assert!(feeds.lookup("203.0.113.7".parse()?).kinds.contains(FeedKind::Tor));
/// assert!(feeds.lookup("203.0.113.8".parse()?).kinds.is_empty());
///
/// std::fs::remove_file(&path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Feeds {
    shared: Arc<Shared>,
}

impl Feeds {
    /// Loads every feed, and starts the background reloader unless `configs` is empty.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the feed's key (`feeds[2].path`, `feeds[0].kind`,
    /// `feeds[1].reload`) when a file cannot be read or has no valid line, a `netset` or `drop`
    /// feed has no `kind`, a `tsv` feed filtered by `kind` has no line of that kind, or `reload`
    /// is zero. Malformed lines are not errors: they are logged, listed by
    /// [`Feeds::warnings`] and skipped.
    pub fn load(configs: Vec<FeedConfig>) -> Result<Feeds, ConfigError> {
        if configs.is_empty() {
            return Ok(Feeds::empty());
        }
        let mut interner = Interner::default();
        let mut notes = Vec::new();
        let mut sources = Vec::with_capacity(configs.len());
        // Settings first, so a typo is reported before any file is read.
        for (i, config) in configs.iter().enumerate() {
            check(i, config)?;
        }
        for (i, config) in configs.into_iter().enumerate() {
            sources.push(Source::load(i, config, &mut interner, &mut notes)?);
        }
        let every = sources
            .iter()
            .map(|s| s.config.reload)
            .min()
            .unwrap_or(DEFAULT_RELOAD)
            .min(MAX_INTERVAL);
        let compiled = compile(&sources, &interner);
        let stop = Arc::new(Stop::default());
        let shared = Arc::new(Shared {
            compiled: ArcSwap::from_pointee(compiled),
            sources: Mutex::new(Sources {
                feeds: sources,
                interner,
            }),
            warnings: Mutex::new(VecDeque::new()),
            stop: Some(Arc::clone(&stop)),
        });
        shared.add_warnings(notes);
        spawn_reloader(&shared, stop, every);
        Ok(Feeds { shared })
    }

    /// No feeds: every lookup misses.
    pub fn empty() -> Feeds {
        Feeds {
            shared: Arc::new(Shared {
                compiled: ArcSwap::from_pointee(compile(&[], &Interner::default())),
                sources: Mutex::new(Sources {
                    feeds: Vec::new(),
                    interner: Interner::default(),
                }),
                warnings: Mutex::new(VecDeque::new()),
                stop: None,
            }),
        }
    }

    /// Kinds and provider for `ip`. An IPv4-mapped IPv6 address is looked up as IPv4 (callers
    /// normally pass it normalised already; this keeps a stray one from missing).
    ///
    /// Takes no lock and does not allocate: the provider is a clone of an interned `Arc<str>`.
    #[inline]
    pub fn lookup(&self, ip: IpAddr) -> FeedHit {
        self.shared.compiled.load().hit(ip.to_canonical())
    }

    /// Whether ranges of kind `kind` from `provider` are loaded at all, e.g. whether
    /// Googlebot's crawler ranges are known (`has_provider(FeedKind::Bot, "Googlebot")`).
    /// Provider names compare exactly (case-sensitive). Only a range's own line counts, not a
    /// provider inherited from an enclosing range. O(1).
    pub fn has_provider(&self, kind: FeedKind, provider: &str) -> bool {
        self.shared
            .compiled
            .load()
            .by_provider
            .get(provider)
            .is_some_and(|kinds| kinds.contains(kind))
    }

    /// Re-reads the feeds whose file changed on disk (modification time or length) and swaps
    /// the recompiled table in atomically. Returns how many feeds took new ranges.
    ///
    /// A file that became unreadable, or now has no valid line, keeps its previous ranges (and
    /// is logged once per change); it never empties the table. The background reloader calls
    /// this too; concurrent calls are serialised.
    pub fn reload_now(&self) -> usize {
        self.shared.reload()
    }

    /// Number of distinct networks loaded (a network listed by several feeds counts once).
    pub fn len(&self) -> usize {
        self.shared.compiled.load().table.len()
    }

    /// Whether no network is loaded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Approximate heap bytes: the compiled table, the provider names and index, and the
    /// per-feed ranges kept so that one feed can be reloaded without re-reading the others.
    pub fn heap_bytes(&self) -> usize {
        self.shared.compiled.load().heap_bytes
    }

    /// Problems seen so far while loading and reloading (the latest 1000), oldest first.
    pub fn warnings(&self) -> Vec<FeedWarning> {
        lock(&self.shared.warnings).iter().cloned().collect()
    }
}

impl Default for Feeds {
    fn default() -> Self {
        Feeds::empty()
    }
}

impl fmt::Debug for Feeds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A summary: the table itself is far too big for a log line.
        let compiled = self.shared.compiled.load();
        f.debug_struct("Feeds")
            .field("networks", &compiled.table.len())
            .field("providers", &compiled.by_provider.len())
            .field("heap_bytes", &compiled.heap_bytes)
            .finish()
    }
}

/// One parsed range, as kept per feed between reloads.
#[derive(Clone, Copy)]
struct Range {
    net: IpNet,
    kind: FeedKind,
    provider: u32,
}

/// What the compiled table stores per network: the union of the kinds of the network and of
/// every network enclosing it, and the most specific provider (an interned id).
#[derive(Clone, Copy)]
struct Entry {
    kinds: FeedKinds,
    provider: u32,
}

/// The read-only state lookups see; replaced whole on reload.
struct Compiled {
    table: PrefixTable<Entry>,
    /// Interned provider names by id.
    providers: Vec<Arc<str>>,
    /// Kinds each provider's own lines carry, for `has_provider`.
    by_provider: HashMap<Arc<str>, FeedKinds>,
    heap_bytes: usize,
}

impl Compiled {
    #[inline]
    fn hit(&self, ip: IpAddr) -> FeedHit {
        match self.table.lookup(ip) {
            Some((_, entry)) => FeedHit {
                kinds: entry.kinds,
                provider: self.providers.get(entry.provider as usize).cloned(),
            },
            None => FeedHit::default(),
        }
    }
}

/// One distinct `Arc<str>` per provider name, so 158k ranges share a few dozen strings. Ids
/// are stable for the life of the `Feeds` (a name no longer used keeps its small slot).
#[derive(Default)]
struct Interner {
    ids: HashMap<Arc<str>, u32>,
    names: Vec<Arc<str>>,
}

impl Interner {
    fn intern(&mut self, name: &str) -> u32 {
        if name.is_empty() {
            return NO_PROVIDER;
        }
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = u32::try_from(self.names.len())
            .ok()
            .filter(|&id| id != NO_PROVIDER)
            .expect("fewer than 2^32 - 1 distinct provider names");
        let name: Arc<str> = Arc::from(name);
        self.names.push(Arc::clone(&name));
        self.ids.insert(name, id);
        id
    }
}

/// What identifies a version of a file without reading it.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Stamp {
        Stamp {
            modified: meta.modified().ok(),
            len: meta.len(),
        }
    }
}

/// One feed: its config, the version of the file last read, and the ranges in force.
struct Source {
    config: FeedConfig,
    stamp: Option<Stamp>,
    ranges: Vec<Range>,
    /// The file could not be read at the last check (logged once until it can be again).
    unreadable: bool,
}

impl Source {
    /// First load: every problem that leaves the feed without ranges is an error.
    fn load(
        i: usize,
        config: FeedConfig,
        interner: &mut Interner,
        notes: &mut Vec<FeedWarning>,
    ) -> Result<Source, ConfigError> {
        let path_key = || format!("feeds[{i}].path");
        let quoted_path = || format!("{:?}", config.path.display().to_string());
        // Stat before reading: if the file changes in between, the next check sees a newer
        // stamp and reads it again.
        let stamp = fs::metadata(&config.path).ok().map(|m| Stamp::of(&m));
        let bytes = fs::read(&config.path).map_err(|e| {
            ConfigError::invalid(path_key(), quoted_path(), format!("a readable file ({e})"))
        })?;
        let parsed = parse_feed(&bytes, &config, interner, notes);
        if parsed.ranges.is_empty() {
            return Err(if parsed.other_kinds > 0 {
                ConfigError::invalid(
                    format!("feeds[{i}].kind"),
                    config.kind.map_or("", FeedKind::as_str),
                    format!(
                        "a kind that some line of {} has ({} lines of other kinds)",
                        config.path.display(),
                        parsed.other_kinds
                    ),
                )
            } else {
                ConfigError::invalid(
                    path_key(),
                    quoted_path(),
                    format!(
                        "a `{}` feed with at least one valid line ({} malformed lines)",
                        config.format, parsed.malformed
                    ),
                )
            });
        }
        tracing::debug!(
            target: "actix_bouncer",
            path = %config.path.display(),
            ranges = parsed.ranges.len(),
            "feed loaded"
        );
        Ok(Source {
            config,
            stamp,
            ranges: parsed.ranges,
            unreadable: false,
        })
    }

    /// Re-reads the file if it changed; returns whether the feed took new ranges.
    fn refresh(&mut self, interner: &mut Interner, notes: &mut Vec<FeedWarning>) -> bool {
        let path = &self.config.path;
        let read = fs::metadata(path).and_then(|meta| {
            let stamp = Stamp::of(&meta);
            if self.stamp == Some(stamp) {
                Ok(None)
            } else {
                fs::read(path).map(|bytes| Some((stamp, bytes)))
            }
        });
        let (stamp, bytes) = match read {
            Ok(Some(read)) => read,
            Ok(None) => {
                self.unreadable = false;
                return false;
            }
            Err(e) => {
                if !self.unreadable {
                    self.unreadable = true;
                    let kept = self.ranges.len();
                    let message = format!("cannot read the feed ({e}); keeping its {kept} ranges");
                    report(notes, path, 0, message);
                }
                return false;
            }
        };
        self.unreadable = false;
        // Recorded even when the content is rejected, so a bad version is reported once.
        self.stamp = Some(stamp);
        let parsed = parse_feed(&bytes, &self.config, interner, notes);
        if parsed.ranges.is_empty() {
            let kept = self.ranges.len();
            let message = format!("no usable line any more; keeping the feed's {kept} ranges");
            report(notes, path, 0, message);
            return false;
        }
        tracing::info!(
            target: "actix_bouncer",
            path = %path.display(),
            ranges = parsed.ranges.len(),
            "feed reloaded"
        );
        self.ranges = parsed.ranges;
        true
    }
}

/// The settings of `feeds[i]` that need no file.
fn check(i: usize, config: &FeedConfig) -> Result<(), ConfigError> {
    if config.reload.is_zero() {
        return Err(ConfigError::invalid(
            format!("feeds[{i}].reload"),
            "0s",
            "a reload interval above zero",
        ));
    }
    if config.kind.is_none() && config.format != FeedFormat::Tsv {
        return Err(ConfigError::invalid(
            format!("feeds[{i}].kind"),
            "nothing",
            format!(
                "a `{}` feed needs the kind its ranges get: {UnknownFeedKind}",
                config.format
            ),
        ));
    }
    Ok(())
}

/// The feeds and interner, touched only by (serialised) loads and reloads.
struct Sources {
    feeds: Vec<Source>,
    interner: Interner,
}

/// State shared by every clone of a [`Feeds`].
struct Shared {
    compiled: ArcSwap<Compiled>,
    sources: Mutex<Sources>,
    warnings: Mutex<VecDeque<FeedWarning>>,
    /// Tells the reloader thread to exit; `None` when there is no thread.
    stop: Option<Arc<Stop>>,
}

impl Shared {
    fn reload(&self) -> usize {
        let mut notes = Vec::new();
        let changed = {
            let mut sources = lock(&self.sources);
            let Sources { feeds, interner } = &mut *sources;
            let changed = feeds
                .iter_mut()
                .map(|feed| feed.refresh(interner, &mut notes))
                .filter(|&changed| changed)
                .count();
            if changed > 0 {
                // Compiled under the lock so two reloads cannot swap in out of order.
                self.compiled.store(Arc::new(compile(feeds, interner)));
            }
            changed
        };
        self.add_warnings(notes);
        changed
    }

    fn add_warnings(&self, notes: Vec<FeedWarning>) {
        if notes.is_empty() {
            return;
        }
        let mut kept = lock(&self.warnings);
        kept.extend(notes);
        let excess = kept.len().saturating_sub(MAX_WARNINGS);
        kept.drain(..excess);
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The last `Feeds` is gone: wake the reloader so it exits now, not after `reload`.
        if let Some(stop) = &self.stop {
            lock(&stop.state).stopping = true;
            stop.wake.notify_all();
        }
    }
}

/// The reloader's stop signal. The thread owns an `Arc` of it, so it outlives `Shared`.
#[derive(Default)]
struct Stop {
    state: Mutex<StopState>,
    wake: Condvar,
}

#[derive(Default)]
struct StopState {
    stopping: bool,
    /// Set by the thread as it exits, so tests can see it went.
    exited: bool,
}

fn spawn_reloader(shared: &Arc<Shared>, stop: Arc<Stop>, every: Duration) {
    // Only a `Weak`: the thread must not keep the feeds alive.
    let weak = Arc::downgrade(shared);
    let spawned = std::thread::Builder::new()
        .name(THREAD_NAME.into())
        .spawn(move || {
            reload_loop(&weak, &stop, every);
            lock(&stop.state).exited = true;
            stop.wake.notify_all();
        });
    if let Err(e) = spawned {
        tracing::warn!(
            target: "actix_bouncer",
            "cannot start the feed reloader thread ({e}); feeds reload only on `reload_now`"
        );
    }
}

fn reload_loop(weak: &Weak<Shared>, stop: &Stop, every: Duration) {
    loop {
        let deadline = Instant::now() + every;
        let mut state = lock(&stop.state);
        loop {
            if state.stopping {
                return;
            }
            // Loops on spurious wake-ups until the deadline.
            match deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => {
                    state = stop
                        .wake
                        .wait_timeout(state, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                _ => break,
            }
        }
        drop(state);
        let Some(shared) = weak.upgrade() else {
            return;
        };
        shared.reload();
        // Dropped before sleeping again; if this was the last reference, `Shared::drop`
        // runs here and sets `stopping`.
        drop(shared);
    }
}

/// Merges the ranges of every feed into one table.
fn compile(feeds: &[Source], interner: &Interner) -> Compiled {
    let mut all: Vec<Range> = Vec::with_capacity(feeds.iter().map(|f| f.ranges.len()).sum());
    for feed in feeds {
        all.extend_from_slice(&feed.ranges);
    }
    // By id first: one pass without hashing, then one map entry per provider in use.
    let mut kinds_by_id = vec![FeedKinds::empty(); interner.names.len()];
    for range in &all {
        if let Some(kinds) = kinds_by_id.get_mut(range.provider as usize) {
            kinds.insert(range.kind);
        }
    }
    let by_provider: HashMap<Arc<str>, FeedKinds> = (interner.names.iter().zip(kinds_by_id))
        .filter(|(_, kinds)| !kinds.is_empty())
        .map(|(name, kinds)| (Arc::clone(name), kinds))
        .collect();
    // `IpNet` orders by family, network, then length, so an enclosing network sorts before
    // the ones inside it. Stable, so identical networks keep feed-then-line order.
    all.sort_by_key(|r| r.net);

    let mut merged: Vec<(IpNet, Entry)> = Vec::with_capacity(all.len());
    for r in &all {
        match merged.last_mut() {
            Some((net, entry)) if *net == r.net => {
                entry.kinds.insert(r.kind);
                if entry.provider == NO_PROVIDER {
                    entry.provider = r.provider;
                }
            }
            _ => merged.push((
                r.net,
                Entry {
                    kinds: r.kind.into(),
                    provider: r.provider,
                },
            )),
        }
    }
    drop(all);

    // Each network inherits from its nearest enclosing one, which has already inherited from
    // its own: so every entry holds the union over its whole nesting chain, and a lookup reads
    // just the innermost entry. The stack is that chain for the current network.
    let mut chain: Vec<(IpNet, Entry)> = Vec::new();
    for item in &mut merged {
        while chain.last().is_some_and(|(net, _)| !net.contains(&item.0)) {
            chain.pop();
        }
        if let Some((_, parent)) = chain.last() {
            item.1.kinds = item.1.kinds.union(parent.kinds);
            if item.1.provider == NO_PROVIDER {
                item.1.provider = parent.provider;
            }
        }
        chain.push(*item);
    }

    let table = PrefixTable::build(merged);
    let providers = interner.names.clone();
    let names: usize = providers.iter().map(|n| n.len()).sum();
    // A hash map slot: key, value and a control byte (values here are at most 4 bytes).
    let slot = std::mem::size_of::<Arc<str>>() + 4 + 1;
    let heap_bytes = table.heap_bytes()
        + names
        + providers.capacity() * std::mem::size_of::<Arc<str>>()
        + (by_provider.capacity() + interner.ids.capacity()) * slot
        + feeds
            .iter()
            .map(|f| f.ranges.capacity() * std::mem::size_of::<Range>())
            .sum::<usize>();
    Compiled {
        table,
        providers,
        by_provider,
        heap_bytes,
    }
}

/// The outcome of reading one feed file.
struct Parsed {
    ranges: Vec<Range>,
    malformed: usize,
    /// Valid `tsv` lines skipped because the feed keeps only one kind.
    other_kinds: usize,
}

fn parse_feed(
    bytes: &[u8],
    config: &FeedConfig,
    interner: &mut Interner,
    notes: &mut Vec<FeedWarning>,
) -> Parsed {
    // Lossy: a stray invalid byte spoils one line (reported), not the whole feed.
    let text = String::from_utf8_lossy(bytes);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let path = &config.path;
    let mut parsed = Parsed {
        ranges: Vec::with_capacity(text.len() / 24),
        malformed: 0,
        other_kinds: 0,
    };
    for (n, line) in text.lines().enumerate() {
        let result = match config.format {
            FeedFormat::Netset => parse_plain(line, '#', config.kind),
            FeedFormat::Drop => parse_plain(line, ';', config.kind),
            FeedFormat::Tsv => parse_tsv(line),
        };
        match result {
            Ok(None) => {}
            Ok(Some((net, kind, provider))) => {
                if config.kind.is_some_and(|want| want != kind) {
                    parsed.other_kinds += 1;
                    continue;
                }
                parsed.ranges.push(Range {
                    net,
                    kind,
                    provider: interner.intern(provider),
                });
            }
            Err(message) => {
                parsed.malformed += 1;
                if parsed.malformed <= MAX_LINE_WARNINGS {
                    report(notes, path, n + 1, format!("{message}; line skipped"));
                }
            }
        }
    }
    if parsed.malformed > MAX_LINE_WARNINGS {
        let more = parsed.malformed - MAX_LINE_WARNINGS;
        let message = format!(
            "{more} more malformed lines skipped (only the first {MAX_LINE_WARNINGS} are listed)"
        );
        report(notes, path, 0, message);
    }
    parsed.ranges.shrink_to_fit();
    parsed
}

/// A parsed line: network, kind and provider (empty for none).
type Line<'a> = Option<(IpNet, FeedKind, &'a str)>;

/// A `netset` or `drop` line: one network before the comment character.
fn parse_plain(line: &str, comment: char, kind: Option<FeedKind>) -> Result<Line<'_>, String> {
    let body = line.split(comment).next().unwrap_or("").trim();
    if body.is_empty() {
        return Ok(None);
    }
    if body.contains(char::is_whitespace) {
        return Err(format!("expected one network per line, found {body:?}"));
    }
    // `load` rejects netset/drop feeds without a kind before any line is read.
    let kind = kind.ok_or_else(|| "the feed has no kind".to_owned())?;
    Ok(Some((parse_network(body)?, kind, "")))
}

/// A `tsv` line: `cidr<TAB>kind<TAB>provider`, the provider possibly empty or missing.
fn parse_tsv(line: &str) -> Result<Line<'_>, String> {
    let trimmed = line.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Ok(None);
    }
    // Only the line ending goes: a full `trim` would eat the tab before an empty provider.
    let line = line.trim_end_matches('\r');
    let mut fields = line.split('\t');
    let (Some(net), Some(kind), provider, None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        let found = line.split('\t').count();
        return Err(format!(
            "expected `cidr<TAB>kind<TAB>provider`, found {found} tab-separated field{}",
            if found == 1 { "" } else { "s" }
        ));
    };
    let net = parse_network(net.trim())?;
    let kind = kind.trim();
    let kind = kind
        .parse::<FeedKind>()
        .map_err(|e| format!("unknown kind {kind:?}: {e}"))?;
    Ok(Some((net, kind, provider.unwrap_or("").trim())))
}

/// A CIDR network or a bare address, with the crate's one set of rules (host bits must be clear,
/// IPv4-mapped IPv6 is stored as IPv4); the error is the message for the line's warning.
fn parse_network(s: &str) -> Result<IpNet, String> {
    crate::config::parse_network(s).map_err(|e| match e {
        NetworkError::NotANetwork => format!("not an IP address or network: {s:?}"),
        NetworkError::HostBits => match s.trim().parse::<IpNet>() {
            Ok(net) => format!(
                "{s:?} has host bits set; write the network address ({})",
                net.trunc()
            ),
            Err(_) => format!("{s:?}: {}", NetworkError::HOST_BITS),
        },
    })
}

fn report(notes: &mut Vec<FeedWarning>, path: &Path, line: usize, message: String) {
    tracing::warn!(target: "actix_bouncer", path = %path.display(), line, "feed: {message}");
    notes.push(FeedWarning {
        path: path.to_owned(),
        line,
        message,
    });
}

/// Locks, ignoring poison: the guarded data stays consistent (each update is one assignment
/// or a whole-vector replace), so a panic elsewhere must not disable the feeds.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipnet::Ipv4Net;
    use proptest::prelude::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir =
                std::env::temp_dir().join(format!("bouncer-feeds-{}-{n}", std::process::id()));
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

    fn load_err(configs: Vec<FeedConfig>) -> ConfigError {
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
        for kind in FeedKind::ALL {
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
        assert_eq!(format!("{k:?}"), "{Hosting, Tor}");
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
        assert_eq!(err.key(), Some("feeds[0].kind"), "{err}");
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
        assert_eq!(err.key(), Some("feeds[1].path"), "{err}");
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
        assert_eq!(err.key(), Some("feeds[2].path"), "{err}");

        let missing = dir.0.join("missing.txt");
        let err = load_err(vec![cfg(&missing, FeedFormat::Netset, Some(Tor))]);
        assert_eq!(err.key(), Some("feeds[0].path"), "{err}");
        assert!(err.to_string().contains("missing.txt"), "{err}");

        let err = load_err(vec![
            cfg(&good, FeedFormat::Tsv, None),
            cfg(&good, FeedFormat::Netset, None),
        ]);
        assert_eq!(err.key(), Some("feeds[1].kind"), "{err}");
        assert!(err.to_string().contains("\"tor\""), "{err}");
        let err = load_err(vec![cfg(&good, FeedFormat::Drop, None)]);
        assert_eq!(err.key(), Some("feeds[0].kind"), "{err}");

        let mut zero = cfg(&good, FeedFormat::Netset, Some(Tor));
        zero.reload = Duration::ZERO;
        let err = load_err(vec![zero]);
        assert_eq!(err.key(), Some("feeds[0].reload"), "{err}");
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

    /// Waits (on the condvar, not by sleeping) until the reloader thread reports it exited.
    fn exited(stop: &Stop, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let mut state = lock(&stop.state);
        while !state.exited {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            state = stop.wake.wait_timeout(state, left).unwrap().0;
        }
        true
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
        let stop = Arc::clone(feeds.shared.stop.as_ref().unwrap());
        let clone = feeds.clone();
        drop(feeds);
        assert!(!lock(&stop.state).stopping, "a clone is still alive");
        drop(clone);
        assert!(exited(&stop, Duration::from_secs(10)));

        // With the default hour-long interval the thread is asleep, and must wake to exit.
        let feeds = Feeds::load(vec![cfg(&tor, FeedFormat::Netset, Some(Tor))]).unwrap();
        let stop = Arc::clone(feeds.shared.stop.as_ref().unwrap());
        drop(feeds);
        assert!(exited(&stop, Duration::from_secs(10)));
    }

    #[test]
    fn no_feeds() {
        for feeds in [
            Feeds::empty(),
            Feeds::load(Vec::new()).unwrap(),
            Feeds::default(),
        ] {
            assert!(feeds.shared.stop.is_none(), "no reloader thread");
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
}
