//! Keeping the feeds current: each file's first load and later refreshes, the state every
//! [`Feeds`](super::Feeds) clone shares, and the background thread that reloads it.

use std::collections::VecDeque;
use std::fs;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;

use super::compile::{compile, Compiled, Interner};
use super::health::FeedHealth;
use super::parse::{parse_feed, report, Range};
use super::{FeedConfig, FeedError, FeedKind, FeedWarning};
use crate::setting::InvalidSetting;
use crate::sync::{lock, Periodic};

/// Warnings kept for [`Feeds::warnings`](super::Feeds::warnings); the oldest go first.
const MAX_WARNINGS: usize = 1000;

/// Name of the background reload thread.
const THREAD_NAME: &str = "actix-bouncer-feeds";

/// What identifies a version of a file without reading it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Stamp {
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
pub(super) struct Source {
    pub(super) config: FeedConfig,
    pub(super) stamp: Option<Stamp>,
    pub(super) ranges: Vec<Range>,
    /// The file could not be read at the last check (logged once until it can be again).
    pub(super) unreadable: bool,
}

impl Source {
    /// First load of `feeds[i]`: every problem that leaves the feed without ranges is an
    /// error.
    pub(super) fn load(
        i: usize,
        config: FeedConfig,
        interner: &mut Interner,
        notes: &mut Vec<FeedWarning>,
    ) -> Result<Source, FeedError> {
        let quoted_path = || format!("{:?}", config.path.display().to_string());
        // Stat before reading: if the file changes in between, the next check sees a newer
        // stamp and reads it again.
        let stamp = fs::metadata(&config.path).ok().map(|m| Stamp::of(&m));
        let bytes = fs::read(&config.path).map_err(|e| FeedError {
            feed: i,
            setting: InvalidSetting::new("path", quoted_path(), format!("a readable file ({e})")),
        })?;
        let parsed = parse_feed(&bytes, &config, interner, notes);
        if parsed.ranges.is_empty() {
            let setting = if parsed.other_kinds > 0 {
                InvalidSetting::new(
                    "kind",
                    config.kind.map_or("", FeedKind::as_str),
                    format!(
                        "a kind that some line of {} has ({} lines of other kinds)",
                        config.path.display(),
                        parsed.other_kinds
                    ),
                )
            } else {
                InvalidSetting::new(
                    "path",
                    quoted_path(),
                    format!(
                        "a `{}` feed with at least one valid line ({} malformed lines)",
                        config.format, parsed.malformed
                    ),
                )
            };
            return Err(FeedError { feed: i, setting });
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

    /// Re-reads the file if it changed; returns whether the feed took new ranges. A read that
    /// fails, or content with no usable line, adds one to `failures`.
    fn refresh(
        &mut self,
        interner: &mut Interner,
        notes: &mut Vec<FeedWarning>,
        failures: &AtomicU64,
    ) -> bool {
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
                failures.fetch_add(1, Ordering::Relaxed);
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
            failures.fetch_add(1, Ordering::Relaxed);
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

/// The feeds and interner, touched only by (serialised) loads and reloads.
struct Sources {
    feeds: Vec<Source>,
    interner: Interner,
}

/// State shared by every clone of a [`Feeds`](super::Feeds).
pub(super) struct Shared {
    pub(super) compiled: ArcSwap<Compiled>,
    sources: Mutex<Sources>,
    pub(super) warnings: Mutex<VecDeque<FeedWarning>>,
    /// The latest health report, rebuilt after each load and reload pass.
    pub(super) health: ArcSwap<FeedHealth>,
    /// Reloads of one feed that failed (unreadable file, no usable line), ever.
    pub(super) reload_failures: AtomicU64,
    /// The reloader thread, stopped when this state is dropped (with the last `Feeds`); unset
    /// when there is no thread.
    pub(super) reloader: OnceLock<Periodic>,
    /// Held by the reloader's task, so tests can see the thread end: once only their own
    /// clone is left, the task and its thread are gone.
    #[cfg(test)]
    pub(super) reloader_token: Arc<()>,
}

impl Shared {
    /// The state for `feeds`, compiled, with no warnings and no reloader yet.
    pub(super) fn new(feeds: Vec<Source>, interner: Interner) -> Arc<Shared> {
        let compiled = compile(&feeds, &interner);
        let health = FeedHealth::new(compiled.per_kind.clone(), compiled.loaded_at);
        Arc::new(Shared {
            compiled: ArcSwap::from_pointee(compiled),
            sources: Mutex::new(Sources { feeds, interner }),
            warnings: Mutex::new(VecDeque::new()),
            health: ArcSwap::from_pointee(health),
            reload_failures: AtomicU64::new(0),
            reloader: OnceLock::new(),
            #[cfg(test)]
            reloader_token: Arc::new(()),
        })
    }

    /// Starts the thread that reloads the feeds every `every`.
    ///
    /// It holds only a `Weak`, so it never keeps the feeds alive: dropping the last `Feeds`
    /// drops this state and its [`Periodic`], which stops the thread, and a wake-up that finds
    /// the state gone ends the thread too.
    pub(super) fn start_reloader(this: &Arc<Shared>, every: Duration) {
        let weak = Arc::downgrade(this);
        #[cfg(test)]
        let token = Arc::clone(&this.reloader_token);
        let task = move || {
            #[cfg(test)]
            let _token = &token; // Moves the token into the task.
            match weak.upgrade() {
                Some(shared) => {
                    shared.reload();
                    // If this was the last reference, the state (and the `Periodic`) is dropped
                    // here, on the thread itself, which then stops instead of waiting again.
                    drop(shared);
                    ControlFlow::Continue(())
                }
                None => ControlFlow::Break(()),
            }
        };
        match Periodic::spawn(THREAD_NAME, every, task) {
            Ok(periodic) => {
                // `start_reloader` runs once per state, right after `new`: the cell is empty.
                let _ = this.reloader.set(periodic);
            }
            Err(e) => tracing::warn!(
                target: "actix_bouncer",
                "cannot start the feed reloader thread ({e}); feeds reload only on `reload_now`"
            ),
        }
    }

    /// Re-reads the changed feeds and swaps in a recompiled table; returns how many changed.
    pub(super) fn reload(&self) -> usize {
        let mut notes = Vec::new();
        let changed = {
            let mut sources = lock(&self.sources);
            let Sources { feeds, interner } = &mut *sources;
            let changed = feeds
                .iter_mut()
                .map(|feed| feed.refresh(interner, &mut notes, &self.reload_failures))
                .filter(|&changed| changed)
                .count();
            if changed > 0 {
                // Compiled under the lock so two reloads cannot swap in out of order.
                self.compiled.store(Arc::new(compile(feeds, interner)));
            }
            changed
        };
        self.add_warnings(notes);
        self.update_health(SystemTime::now());
        changed
    }

    /// Rebuilds the health report from the table in force, the warnings and the failures;
    /// `checked_at` is the end of the last reload pass.
    pub(super) fn update_health(&self, checked_at: SystemTime) {
        // Under the warnings' lock, so that two passes store their reports in order.
        let warnings = lock(&self.warnings);
        let compiled = self.compiled.load();
        let health = FeedHealth {
            ranges: compiled.per_kind.clone(),
            loaded_at: compiled.loaded_at,
            checked_at,
            warnings: warnings.iter().cloned().collect(),
            reload_failures: self.reload_failures.load(Ordering::Relaxed),
        };
        self.health.store(Arc::new(health));
    }

    /// Keeps `notes`, dropping the oldest beyond [`MAX_WARNINGS`].
    pub(super) fn add_warnings(&self, notes: Vec<FeedWarning>) {
        if notes.is_empty() {
            return;
        }
        let mut kept = lock(&self.warnings);
        kept.extend(notes);
        let excess = kept.len().saturating_sub(MAX_WARNINGS);
        kept.drain(..excess);
    }
}
