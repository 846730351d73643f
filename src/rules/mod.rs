//! Blacklist and allowlist rules: IPs, networks and users, each with an optional expiry.
//!
//! Rules live in a [`RuleStore`] ([`MemoryRuleStore`] unless one is given) behind a [`Rules`]
//! handle. Lookups never touch the store: they read an immutable compiled snapshot (a
//! longest-prefix-match table plus a user map) swapped in atomically, so the request path takes
//! no lock. Changes go through the rules' worker thread, which calls the store and compiles, so
//! no change ever compiles on the request path or blocks an actix worker: an addition is
//! effective as soon as its `await` returns (through a small overlay), and is folded into the
//! compiled snapshot together with the changes that arrive with it.
//!
//! Precedence: an active `allow` rule that matches the client's address, any network around
//! it, or its user wins over everything (no counting, no ban, no block). Otherwise an active
//! `block` rule blocks; the one on the longest prefix is reported, then the longest-lived.
//! Expired rules never match; they leave the compiled snapshot at its next compilation and stay
//! in the store (listed) until removed.
//!
//! ```
//! use std::time::Duration;
//! use actix_bouncer::rules::{ListQuery, NewRule, Rules};
//!
//! # actix_web::rt::System::new().block_on(async {
//! let rules = Rules::new();
//! let rule = rules
//!     .add(NewRule::block("203.0.113.0/24".parse()?).expires_after(Duration::from_secs(3600)))
//!     .await?;
//! assert_eq!(rules.check("203.0.113.9".parse()?, None).block, Some(rule.id));
//! assert_eq!(rules.list(ListQuery::default()).await?.rules, [rule]);
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! The files of this folder: `model.rs` (what a rule is), `query.rs` (filters, pages, trim),
//! `snapshot.rs` (the compiled form), `view.rs` (what lookups read: base, overlay, removals),
//! `store.rs` (the [`RuleStore`] seam), `memory.rs` (the in-process store), `sql/` (SQLite and
//! PostgreSQL), `worker.rs` (where store calls, reloads and compilations run).

mod memory;
mod model;
mod query;
mod snapshot;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
mod store;
mod view;
mod worker;

use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use tokio::sync::mpsc;

use crate::clock::{Clock, SystemClock};
use crate::net::normalize;
use crate::store_error::StoreError;
use crate::sync::lock;

pub use self::memory::MemoryRuleStore;
pub use self::model::{
    Expiry, InvalidTarget, NewRule, Rule, RuleAction, RuleDraft, RuleId, RuleSource, RuleTarget,
};
pub use self::query::{ListQuery, RuleFilter, RulePage, RuleState, Trim, LIST_SCAN_MAX, MAX_PAGE};
pub use self::snapshot::{ActionCounts, RuleCounts, RuleSnapshot, SourceCounts};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use self::sql::SqlRuleStore;
use self::store::DynRuleStore;
pub use self::store::{Changes, Loaded, LoadedRule, RuleStore, Seed, Seeded};
use self::view::RuleView;
use self::worker::{Command, Opener, Reply, Shared};

/// Why a rule change or read failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum RuleError {
    /// The rule's expiry is already in the past, so it would never match.
    AlreadyExpired,
    /// The rule store failed; nothing changed.
    Store(StoreError),
    /// The rules' worker thread could not be started, or has stopped.
    Unavailable(String),
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleError::AlreadyExpired => f.write_str("the rule's expiry is already in the past"),
            RuleError::Store(e) => write!(f, "the rule store failed: {e}"),
            RuleError::Unavailable(why) => write!(f, "rules unavailable: {why}"),
        }
    }
}

impl std::error::Error for RuleError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RuleError::Store(e) => Some(e),
            _ => None,
        }
    }
}

/// The active rules that match a client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RuleMatch {
    /// An allow rule that matched; it wins over everything.
    pub allow: Option<RuleId>,
    /// A block rule that matched (the one on the longest prefix, or the user's).
    pub block: Option<RuleId>,
    /// When that block rule expires, if it does.
    pub block_expires: Option<SystemTime>,
    /// Where that block rule came from: an automatic rule records a ban.
    pub block_source: Option<RuleSource>,
}

/// How the rule store has been doing, as seen by this instance.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct RulesHealth {
    /// The store version this instance has caught up with.
    pub version: u64,
    /// When this instance last caught up with the store (wall clock).
    #[serde(serialize_with = "model::ser_opt_time")]
    pub last_reload: Option<SystemTime>,
    /// Reloads (and retries of automatic rules) that failed, ever.
    pub reload_failures: u64,
    /// Failures in a row now; 0 when the store answers.
    pub consecutive_failures: u32,
    /// Automatic rules waiting for the store to come back.
    pub auto_rules_waiting: usize,
    /// Automatic rules given up on because the store failed too long.
    pub auto_rules_dropped: u64,
}

/// A shared handle to the rules; cheap to clone.
#[derive(Clone)]
pub struct Rules {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    /// How to open the store; taken when the worker starts.
    open: Mutex<Option<Opener>>,
    reload: Option<Duration>,
    /// The worker's queue, started on the first change (or at once, with a store of one's
    /// own).
    worker: OnceLock<Result<mpsc::Sender<Command>, String>>,
}

impl fmt::Debug for Rules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let view = self.inner.shared.view.load();
        f.debug_struct("Rules")
            .field("compiled", &view.base.len())
            .field(
                "recent",
                &view.overlay.as_ref().map_or(0, RuleSnapshot::len),
            )
            .field("reload", &self.inner.reload)
            .finish()
    }
}

impl Default for Rules {
    fn default() -> Self {
        Self::new()
    }
}

/// Builds a [`Rules`] handle over a store of one's own (see [`Rules::builder`]).
#[must_use]
pub struct RulesBuilder {
    clock: Arc<dyn Clock>,
    reload: Option<Duration>,
}

impl fmt::Debug for RulesBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RulesBuilder")
            .field("reload", &self.reload)
            .finish_non_exhaustive()
    }
}

impl RulesBuilder {
    /// The clock rules expire by. Default: the system clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// How often to apply what other instances changed in a shared store. Default: never
    /// (call [`Rules::refresh`]); `[store] reload` in the config defaults to 60 s.
    pub fn reload(mut self, every: Duration) -> Self {
        self.reload = (!every.is_zero()).then_some(every);
        self
    }

    /// The rules of `store`. Blocks until its active rules are loaded and compiled: at
    /// startup, before any request is judged without them.
    ///
    /// A store whose connections belong to a runtime (PostgreSQL's do) is better opened with
    /// [`open`](Self::open), on the rules' own runtime.
    pub fn store(self, store: impl RuleStore) -> Result<Rules, RuleError> {
        self.open(move || async move { Ok(store) })
    }

    /// The rules of the store `open` opens, on the rules' own worker thread and runtime (where
    /// every later store call runs). Blocks until it is open and its active rules are loaded.
    ///
    /// ```no_run
    /// # #[cfg(feature = "sqlite")] {
    /// use actix_bouncer::rules::{Rules, SqlRuleStore};
    ///
    /// let rules = Rules::builder()
    ///     .reload(std::time::Duration::from_secs(60))
    ///     .open(|| SqlRuleStore::connect("sqlite://rules.db"))?;
    /// # }
    /// # Ok::<_, actix_bouncer::rules::RuleError>(())
    /// ```
    pub fn open<S, F>(self, open: impl FnOnce() -> F + Send + 'static) -> Result<Rules, RuleError>
    where
        S: RuleStore,
        F: Future<Output = Result<S, StoreError>> + Send + 'static,
    {
        let open: Opener = Box::new(move || {
            Box::pin(async move { open().await.map(|s| Box::new(s) as Box<dyn DynRuleStore>) })
        });
        let rules = Rules::unloaded(open, self.clock, self.reload);
        rules.blocking(|reply| Command::Load { reply })?;
        Ok(rules)
    }
}

impl Rules {
    /// No rules, in a [`MemoryRuleStore`], on the system clock.
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock::new()))
    }

    /// No rules, in a [`MemoryRuleStore`], expiring by `clock`.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        let open: Opener = Box::new(|| {
            Box::pin(async { Ok(Box::new(MemoryRuleStore::new()) as Box<dyn DynRuleStore>) })
        });
        Self::unloaded(open, clock, None)
    }

    /// The rules of `store`, expiring by `clock`: [`builder`](Self::builder)`().clock(clock)
    /// .store(store)`.
    pub fn with_store(store: impl RuleStore, clock: Arc<dyn Clock>) -> Result<Self, RuleError> {
        Self::builder().clock(clock).store(store)
    }

    /// Rules over a store of one's own, with a clock and a reload period.
    pub fn builder() -> RulesBuilder {
        RulesBuilder {
            clock: Arc::new(SystemClock::new()),
            reload: None,
        }
    }

    fn unloaded(open: Opener, clock: Arc<dyn Clock>, reload: Option<Duration>) -> Self {
        Rules {
            inner: Arc::new(Inner {
                shared: Arc::new(Shared {
                    view: ArcSwap::from_pointee(RuleView::default()),
                    clock,
                    pending_auto: Mutex::new(HashSet::new()),
                    health: Mutex::new(RulesHealth::default()),
                }),
                open: Mutex::new(Some(open)),
                reload,
                worker: OnceLock::new(),
            }),
        }
    }

    fn worker(&self) -> Result<&mpsc::Sender<Command>, RuleError> {
        self.inner
            .worker
            .get_or_init(|| {
                let open = lock(&self.inner.open)
                    .take()
                    .ok_or_else(|| "the rule store was already taken".to_owned())?;
                worker::spawn(Arc::clone(&self.inner.shared), open, self.inner.reload)
            })
            .as_ref()
            .map_err(|e| RuleError::Unavailable(e.clone()))
    }

    /// Sends a command to the worker and waits for its answer.
    async fn ask<T>(&self, command: impl FnOnce(Reply<T>) -> Command) -> Result<T, RuleError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let gone = || RuleError::Unavailable("the rules' worker has stopped".into());
        self.worker()?
            .send(command(Reply::Async(tx)))
            .await
            .map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }

    /// Sends a command and blocks the thread for its answer: for startup only, when the queue
    /// is fresh (never called on a runtime's task that the worker needs).
    fn blocking<T>(&self, command: impl FnOnce(Reply<T>) -> Command) -> Result<T, RuleError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let gone = || RuleError::Unavailable("the rules' worker has stopped".into());
        self.worker()?
            .try_send(command(Reply::Blocking(tx)))
            .map_err(|_| gone())?;
        rx.recv().map_err(|_| gone())?
    }

    fn drafts(
        &self,
        rules: impl IntoIterator<Item = NewRule>,
    ) -> Result<Vec<RuleDraft>, RuleError> {
        let now = self.inner.shared.clock.wall();
        rules
            .into_iter()
            .map(|rule| {
                let draft = rule.draft(now);
                match draft.expires {
                    Some(at) if at <= now => Err(RuleError::AlreadyExpired),
                    _ => Ok(draft),
                }
            })
            .collect()
    }

    /// Adds one rule; it is in force when this returns.
    pub async fn add(&self, rule: NewRule) -> Result<Rule, RuleError> {
        let mut added = self.add_many([rule]).await?;
        added
            .pop()
            .ok_or_else(|| RuleError::Unavailable("the store added no rule".into()))
    }

    /// Adds several rules in one store call and one compilation; all are in force when this
    /// returns. Nothing is added if one is refused.
    pub async fn add_many(
        &self,
        rules: impl IntoIterator<Item = NewRule>,
    ) -> Result<Vec<Rule>, RuleError> {
        let drafts = self.drafts(rules)?;
        self.ask(|reply| Command::Insert { drafts, reply }).await
    }

    /// Makes the config's rules (source [`RuleSource::Config`]) in the store exactly `rules`.
    ///
    /// Each rule comes with its key: what the config says of it, canonically. The store keeps
    /// one rule per key, so restarts neither copy a rule nor move its expiry, and a rule the
    /// config no longer declares is removed. Blocks until the changes are in force: for startup
    /// (the config does this for `[[rules]]`).
    pub fn seed(&self, rules: Vec<(String, NewRule)>) -> Result<Seeded, RuleError> {
        let now = self.inner.shared.clock.wall();
        let mut seeds = Vec::with_capacity(rules.len());
        for (key, rule) in rules {
            let draft = rule.source(RuleSource::Config).draft(now);
            if draft.expires.is_some_and(|at| at <= now) {
                return Err(RuleError::AlreadyExpired);
            }
            seeds.push(Seed::new(key, draft));
        }
        self.blocking(|reply| Command::Seed { seeds, reply })
    }

    /// Removes a rule; returns it, or `None` if there was no such rule. It no longer matches
    /// when this returns.
    pub async fn remove(&self, id: RuleId) -> Result<Option<Rule>, RuleError> {
        self.ask(|reply| Command::Remove { id, reply }).await
    }

    /// One rule by id, from the store.
    pub async fn get(&self, id: RuleId) -> Result<Option<Rule>, RuleError> {
        self.ask(|reply| Command::Get { id, reply }).await
    }

    /// A page of the rules passing `query`'s filter, from the store, by ascending id (with a
    /// state filter, a SQL store's page may be short and still have a next one: see
    /// [`LIST_SCAN_MAX`]).
    pub async fn list(&self, query: ListQuery) -> Result<RulePage, RuleError> {
        self.ask(|reply| Command::List { query, reply }).await
    }

    /// Removes expired rules from the store (django-blacklist's `trim_blacklist`); returns how
    /// many went. Active rules and rules that never expire stay.
    pub async fn trim(&self, trim: Trim) -> Result<u64, RuleError> {
        self.ask(|reply| Command::Trim { trim, reply }).await
    }

    /// Removes the automatic rules (source [`RuleSource::Auto`]) on exactly `target`, active
    /// or not, so that no instance enforces them any more; returns them.
    pub async fn remove_automatic(&self, target: &RuleTarget) -> Result<Vec<Rule>, RuleError> {
        let mut removed = Vec::new();
        let mut query = ListQuery::first(MAX_PAGE)
            .target(target.clone())
            .source(RuleSource::Auto);
        loop {
            let page = self.list(query.clone()).await?;
            for rule in page.rules {
                if let Some(rule) = self.remove(rule.id).await? {
                    removed.push(rule);
                }
            }
            match page.next {
                Some(next) => query = query.after(next),
                None => return Ok(removed),
            }
        }
    }

    /// How the store has been doing: failures, the version caught up with, automatic rules
    /// waiting for it.
    pub fn health(&self) -> RulesHealth {
        lock(&self.inner.shared.health).clone()
    }

    /// Applies the changes other instances made to a shared store since this one last looked,
    /// loading only what changed.
    pub async fn refresh(&self) -> Result<(), RuleError> {
        self.ask(|reply| Command::Refresh { reply }).await
    }

    /// Compiles recent changes into the snapshot now and drops expired rules from it (the
    /// worker does this on its own a moment after changes, and after expiries).
    pub async fn compact(&self) -> Result<(), RuleError> {
        self.ask(|reply| Command::Compact { reply }).await
    }

    /// Adds an automatic rule (source [`RuleSource::Auto`]) from the request path: it is
    /// stored and compiled off that path, and added once per target (nothing is queued when an
    /// active block rule already covers the target, or the same rule is on its way). Never
    /// waits; when the worker's queue is full the rule is dropped and logged. A signal that
    /// bans (the reputation API's `ban_at`) uses it.
    pub fn add_automatic(&self, rule: NewRule) {
        let shared = &self.inner.shared;
        let draft = rule.source(RuleSource::Auto).draft(shared.clock.wall());
        let covered = match &draft.target {
            RuleTarget::Network(net) => self.matches(Some(net.network()), None),
            RuleTarget::User(user) => self.matches(None, Some(user)),
        };
        if covered.block.is_some() || !lock(&shared.pending_auto).insert(draft.target.clone()) {
            return;
        }
        let target = draft.target.clone();
        let queued = self.worker().map_err(|e| e.to_string()).and_then(|tx| {
            tx.try_send(Command::Auto { draft })
                .map_err(|e| e.to_string())
        });
        if let Err(error) = queued {
            lock(&shared.pending_auto).remove(&target);
            tracing::warn!(target: "actix_bouncer", %target, %error, "automatic rule dropped");
        }
    }

    /// The active rules matching `ip` and `user` now.
    pub fn check(&self, ip: IpAddr, user: Option<&str>) -> RuleMatch {
        self.matches(Some(normalize(ip)), user)
    }

    /// The active rules matching an (already normalised) address, if known, and a user: what
    /// the request path asks. Lock-free.
    #[inline]
    pub(crate) fn matches(&self, ip: Option<IpAddr>, user: Option<&str>) -> RuleMatch {
        let shared = &self.inner.shared;
        shared.view.load().check(ip, user, || shared.clock.wall())
    }

    /// The rules in force by source, action and kind of target, for a dashboard: counted when
    /// the worker compiles and publishes the rules, so this reads a published number (no
    /// store call, no counting).
    ///
    /// Additions and this instance's removals count as soon as their `await` returns.
    /// Until the worker's next compilation, the counts still hold rules that expired since the
    /// last one (it runs within a minute of an expiry) and rules removed through another
    /// instance that were compiled before (within a second of the reload that saw the
    /// removal).
    pub fn counts(&self) -> RuleCounts {
        self.inner.shared.view.load().counts
    }

    /// The compiled snapshot (without the changes of the last moments, which sit in an
    /// overlay until the worker compiles them; [`compact`](Self::compact) forces that).
    pub fn snapshot(&self) -> Arc<RuleSnapshot> {
        Arc::clone(&self.inner.shared.view.load().base)
    }
}

#[cfg(test)]
mod tests;
