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
//! All feeds are compiled into one longest-prefix-match
//! [`PrefixTable`](crate::prefix_table::PrefixTable). Ranges may repeat and nest, within one file
//! or across files, and an address gets the *union* of the kinds of every range that covers it: a
//! Tor exit `/32` inside a hosting `/16` is both `tor` and `hosting`. The union is worked out once
//! per reload (each network inherits the kinds of the networks that enclose it), so a lookup reads
//! a single entry. The provider reported is that of the most specific covering range that has one;
//! when the very same network appears in several feeds (or lines), their kinds merge and the first
//! non-empty provider, in feed then line order, is kept.
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

mod compile;
mod health;
mod kind;
mod parse;
mod reload;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use self::compile::Interner;
pub use self::health::FeedHealth;
pub use self::kind::{FeedFormat, FeedKind, FeedKinds};
use self::reload::{Shared, Source};
use crate::setting::InvalidSetting;
use crate::sync::lock;

/// How often a feed is checked for changes when its config says nothing: one hour.
pub const DEFAULT_RELOAD: Duration = Duration::from_secs(3600);

/// One feed file, as configured by a `[[feeds]]` table.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
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
#[non_exhaustive]
pub struct FeedHit {
    /// Kinds of every range that covers the address; empty when none does.
    pub kinds: FeedKinds,
    /// Provider of the most specific covering range that names one.
    pub provider: Option<Arc<str>>,
}

/// A problem met while reading a feed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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
    /// A [`FeedError`] naming the feed (its index in `configs`) and the setting at fault
    /// (`path`, `kind` or `reload`) when a file cannot be read or has no valid line, a
    /// `netset` or `drop` feed has no `kind`, a `tsv` feed filtered by `kind` has no line of
    /// that kind, or `reload` is zero. Malformed lines are not errors: they are logged, listed
    /// by [`Feeds::warnings`] and skipped.
    pub fn load(configs: Vec<FeedConfig>) -> Result<Feeds, FeedError> {
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
            .unwrap_or(DEFAULT_RELOAD);
        let shared = Shared::new(sources, interner);
        shared.add_warnings(notes);
        let loaded_at = shared.compiled.load().loaded_at;
        shared.update_health(loaded_at);
        Shared::start_reloader(&shared, every);
        Ok(Feeds { shared })
    }

    /// No feeds: every lookup misses.
    pub fn empty() -> Feeds {
        Feeds {
            shared: Shared::new(Vec::new(), Interner::default()),
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

    /// Reloads of a feed that failed so far (the file could not be read, or had no usable line
    /// any more; the feed kept its previous ranges each time).
    pub fn reload_failures(&self) -> u64 {
        self.shared
            .reload_failures
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Problems seen so far while loading and reloading (the latest 1000), oldest first.
    pub fn warnings(&self) -> Vec<FeedWarning> {
        lock(&self.shared.warnings).iter().cloned().collect()
    }

    /// A summary for a dashboard or a health check: networks per kind, when the table was
    /// last (re)loaded and the files last checked, the warnings and the reload failures.
    ///
    /// Built when the feeds load and after each reload pass, not here: this is one lock-free
    /// load and a few small copies (the warnings are shared behind an `Arc`). Times are the
    /// wall clock (`SystemTime::now`) of the load or pass; feeds take no injected clock.
    ///
    /// ```
    /// use actix_bouncer::feeds::{FeedConfig, FeedFormat, FeedKind, Feeds};
    ///
    /// let path = std::env::temp_dir().join(format!("bouncer-doc-health-{}.tsv", std::process::id()));
    /// std::fs::write(&path, "203.0.113.0/24\thosting\tExample\n203.0.113.7\ttor\t\nnot-a-network\tvpn\t\n")?;
    ///
    /// let feeds = Feeds::load(vec![FeedConfig::new(&path, FeedFormat::Tsv, None)])?;
    /// let health = feeds.health();
    /// assert_eq!(health.ranges.get(&FeedKind::Hosting), Some(&1));
    /// assert_eq!(health.ranges.get(&FeedKind::Tor), Some(&1));
    /// assert_eq!(health.ranges.get(&FeedKind::Vpn), None);
    /// assert_eq!(health.warnings.len(), 1); // the malformed third line
    /// assert_eq!(health.reload_failures, 0);
    /// let json = serde_json::to_value(&health)?;
    /// assert_eq!(json["ranges"]["hosting"], 1);
    ///
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn health(&self) -> FeedHealth {
        FeedHealth::clone(&self.shared.health.load())
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

/// The settings of `feeds[i]` that need no file.
fn check(i: usize, config: &FeedConfig) -> Result<(), FeedError> {
    if config.reload.is_zero() {
        return Err(FeedError {
            feed: i,
            setting: InvalidSetting::new("reload", "0s", "a reload interval above zero"),
        });
    }
    if config.kind.is_none() && config.format != FeedFormat::Tsv {
        return Err(FeedError {
            feed: i,
            setting: InvalidSetting::new(
                "kind",
                "nothing",
                format!(
                    "a `{}` feed needs the kind its ranges get: {}",
                    config.format,
                    crate::bitset::expected_one_of(<FeedKind as crate::bitset::Member>::NAMES)
                ),
            ),
        });
    }
    Ok(())
}

/// Why a feed could not be loaded: which feed (its index in the list given to
/// [`Feeds::load`]) and which of its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedError {
    feed: usize,
    setting: InvalidSetting,
}

impl FeedError {
    /// The feed at fault: its index in the list given to [`Feeds::load`].
    pub fn feed(&self) -> usize {
        self.feed
    }

    /// The setting at fault, named relative to the feed: `path`, `kind` or `reload`.
    pub fn setting(&self) -> &InvalidSetting {
        &self.setting
    }
}

impl fmt::Display for FeedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "feed {}: {}", self.feed, self.setting)
    }
}

impl std::error::Error for FeedError {}
