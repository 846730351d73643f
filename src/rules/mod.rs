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
//! The files of this folder: `model.rs` (what a rule is), `snapshot.rs` (the compiled form),
//! `view.rs` (what lookups read: base, overlay, removals), `store.rs` (the [`RuleStore`] seam
//! and its memory implementation), `worker.rs` (where store calls and compilations run).

mod model;
mod snapshot;
mod store;
mod view;
mod worker;

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use tokio::sync::mpsc;

use crate::clock::{Clock, SystemClock};
use crate::net::normalize;
use crate::store_error::StoreError;
use crate::sync::lock;

pub use self::model::{
    Expiry, InvalidTarget, NewRule, Rule, RuleAction, RuleDraft, RuleId, RuleSource, RuleTarget,
};
pub use self::snapshot::RuleSnapshot;
pub use self::store::{Changes, ListQuery, Loaded, MemoryRuleStore, RulePage, RuleStore, MAX_PAGE};
use self::view::RuleView;
use self::worker::{Command, Reply, Shared};

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
}

/// A shared handle to the rules; cheap to clone.
#[derive(Clone)]
pub struct Rules {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    /// The worker's queue, started on the first change.
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
            .finish()
    }
}

impl Default for Rules {
    fn default() -> Self {
        Self::new()
    }
}

impl Rules {
    /// No rules, in a [`MemoryRuleStore`], on the system clock.
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock::new()))
    }

    /// No rules, in a [`MemoryRuleStore`], expiring by `clock`.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self::unloaded(MemoryRuleStore::new(), clock)
    }

    /// The rules of `store`, expiring by `clock`. Blocks until the store's active rules are
    /// loaded and compiled: at startup, before any request is judged without them.
    pub fn with_store(store: impl RuleStore, clock: Arc<dyn Clock>) -> Result<Self, RuleError> {
        let rules = Self::unloaded(store, clock);
        rules.blocking(|reply| Command::Load { reply })?;
        Ok(rules)
    }

    fn unloaded(store: impl RuleStore, clock: Arc<dyn Clock>) -> Self {
        Rules {
            inner: Arc::new(Inner {
                shared: Arc::new(Shared {
                    view: ArcSwap::from_pointee(RuleView::default()),
                    store: Box::new(store),
                    clock,
                    pending_auto: Mutex::new(HashSet::new()),
                }),
                worker: OnceLock::new(),
            }),
        }
    }

    fn worker(&self) -> Result<&mpsc::Sender<Command>, RuleError> {
        self.inner
            .worker
            .get_or_init(|| worker::spawn(Arc::clone(&self.inner.shared)))
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

    /// Adds rules at startup, blocking until they are in force.
    pub(crate) fn seed(&self, rules: Vec<NewRule>) -> Result<Vec<Rule>, RuleError> {
        if rules.is_empty() {
            return Ok(Vec::new());
        }
        let drafts = self.drafts(rules)?;
        self.blocking(|reply| Command::Insert { drafts, reply })
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

    /// A page of rules from the store, expired ones included, by ascending id.
    pub async fn list(&self, query: ListQuery) -> Result<RulePage, RuleError> {
        self.ask(|reply| Command::List { query, reply }).await
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

    /// The compiled snapshot (without the changes of the last moments, which sit in an
    /// overlay until the worker compiles them; [`compact`](Self::compact) forces that).
    pub fn snapshot(&self) -> Arc<RuleSnapshot> {
        Arc::clone(&self.inner.shared.view.load().base)
    }
}

#[cfg(test)]
mod tests;
