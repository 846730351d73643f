//! The rules' worker: one thread, `actix-bouncer-rules`, with a runtime of its own, that opens
//! the store and makes every store call and every compilation, so none ever runs on an actix
//! worker (and a database connection lives on the runtime that made it).
//!
//! Changes are applied in the order they arrive. Each is published at once through the
//! overlay (see `view.rs`) and answered; the worker then waits for the changes that come
//! together to settle ([`SETTLE`], at most [`MAX_DELAY`]) and compiles them into a new base in
//! one go. A batch too big for the overlay is compiled before it is answered. Expired rules
//! leave the base at each compilation, and a compilation also runs once the soonest expiry
//! has passed (at most once every [`EXPIRY_SWEEP`]).
//!
//! With a reload period, the worker asks the store what other instances changed, and applies
//! only that. A store that fails leaves the last good rules in force: the failure is logged
//! and counted, and the next try comes sooner ([`RETRY_FIRST`], doubling up to the period).
//! Automatic rules that could not be written are kept (up to [`AUTO_RETRY_MAX`]) and written
//! on the next try.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::model::{Rule, RuleAction, RuleDraft, RuleId, RuleSource, RuleTarget};
use super::query::{ListQuery, RulePage, Trim};
use super::snapshot::{unix_nanos, Compiled, Entry, RuleCounts, RuleSnapshot, NEVER};
use super::store::{BoxFuture, Changes, DynRuleStore, Loaded, LoadedRule, Seed, Seeded};
use super::view::RuleView;
use super::{RuleError, RulesHealth};
use crate::clock::Clock;
use crate::store_error::StoreError;
use crate::sync::{lock, RuntimeThread};

/// Name of the worker thread.
const THREAD: &str = "actix-bouncer-rules";
/// Commands that may wait for the worker; automatic rules beyond this are dropped (logged).
pub(super) const QUEUE: usize = 1024;
/// Most additions kept in the overlay before a compilation is due at once. An overlay of a
/// few thousand rules compiles in a millisecond or two, so an incremental reload of that many
/// is in force without recompiling a million.
const OVERLAY_MAX: usize = 4096;
/// A compilation waits until no change has come for this long…
const SETTLE: Duration = Duration::from_millis(50);
/// …but never longer than this after the first change it waits for.
const MAX_DELAY: Duration = Duration::from_secs(1);
/// Least time between two compilations that only drop expired rules.
const EXPIRY_SWEEP: Duration = Duration::from_secs(60);
/// The first retry after a store failure; each further one waits twice as long, up to the
/// reload period (or [`RETRY_MAX`] without one).
const RETRY_FIRST: Duration = Duration::from_secs(1);
/// The longest wait between retries of automatic rules when there is no reload period.
const RETRY_MAX: Duration = Duration::from_secs(60);
/// Automatic rules kept for a retry while the store fails; the oldest go first beyond this.
pub(super) const AUTO_RETRY_MAX: usize = 10_000;

/// Opens the store, on the worker's runtime.
pub(super) type Opener =
    Box<dyn FnOnce() -> BoxFuture<'static, Result<Box<dyn DynRuleStore>, StoreError>> + Send>;

/// What the handles and the worker share.
pub(super) struct Shared {
    pub(super) view: ArcSwap<RuleView>,
    pub(super) clock: Arc<dyn Clock>,
    /// Targets of automatic rules on their way to the store, so a flood of requests from one
    /// client queues its rule once.
    pub(super) pending_auto: Mutex<HashSet<RuleTarget>>,
    /// How the store has been doing, for [`Rules::health`](super::Rules::health).
    pub(super) health: Mutex<RulesHealth>,
}

/// Where an answer goes: an async caller, or a caller blocked at startup.
pub(super) enum Reply<T> {
    Async(tokio::sync::oneshot::Sender<Result<T, RuleError>>),
    Blocking(std::sync::mpsc::SyncSender<Result<T, RuleError>>),
}

impl<T> Reply<T> {
    fn send(self, answer: Result<T, RuleError>) {
        // A caller that gave up does not need the answer; the change stands either way.
        match self {
            Reply::Async(tx) => drop(tx.send(answer)),
            Reply::Blocking(tx) => drop(tx.send(answer)),
        }
    }
}

/// What the worker is asked to do.
pub(super) enum Command {
    Insert {
        drafts: Vec<RuleDraft>,
        reply: Reply<Vec<Rule>>,
    },
    Remove {
        id: RuleId,
        reply: Reply<Option<Rule>>,
    },
    Get {
        id: RuleId,
        reply: Reply<Option<Rule>>,
    },
    List {
        query: ListQuery,
        reply: Reply<RulePage>,
    },
    Trim {
        trim: Trim,
        reply: Reply<u64>,
    },
    Seed {
        seeds: Vec<Seed>,
        reply: Reply<Seeded>,
    },
    /// An automatic block rule, added unless an active block already covers its target.
    Auto {
        draft: RuleDraft,
    },
    /// Load every active rule from the store (startup with a store of one's own).
    Load {
        reply: Reply<()>,
    },
    /// Apply what others changed in the store.
    Refresh {
        reply: Reply<()>,
    },
    /// Compile now.
    Compact {
        reply: Reply<()>,
    },
}

/// Starts the worker, which first opens the store; its queue closes (and the thread ends) when
/// the last handle is dropped.
pub(super) fn spawn(
    shared: Arc<Shared>,
    open: Opener,
    reload: Option<Duration>,
) -> Result<mpsc::Sender<Command>, String> {
    let (tx, rx) = mpsc::channel(QUEUE);
    RuntimeThread::new()
        .and_then(|thread| {
            thread.run(THREAD, move || async move {
                match open().await {
                    Ok(store) => Worker::new(shared, store, reload).run(rx).await,
                    Err(error) => refuse_all(rx, error).await,
                }
            })
        })
        .map_err(|e| format!("cannot start the rules' worker: {e}"))?;
    Ok(tx)
}

/// A store that could not be opened: the first command (the startup load) learns why; the
/// worker then stops, and later callers find it stopped.
async fn refuse_all(mut rx: mpsc::Receiver<Command>, error: StoreError) {
    tracing::error!(target: "actix_bouncer", %error, "cannot open the rule store");
    if let Some(command) = rx.recv().await {
        let error = RuleError::Store(error);
        match command {
            Command::Load { reply } | Command::Refresh { reply } | Command::Compact { reply } => {
                reply.send(Err(error))
            }
            Command::Insert { reply, .. } => reply.send(Err(error)),
            Command::Remove { reply, .. } | Command::Get { reply, .. } => reply.send(Err(error)),
            Command::List { reply, .. } => reply.send(Err(error)),
            Command::Trim { reply, .. } => reply.send(Err(error)),
            Command::Seed { reply, .. } => reply.send(Err(error)),
            Command::Auto { .. } => {}
        }
    }
}

struct Worker {
    shared: Arc<Shared>,
    store: Box<dyn DynRuleStore>,
    base: Arc<RuleSnapshot>,
    /// Additions since the base was compiled.
    added: Vec<Entry>,
    /// Removals since the base was compiled.
    removed: HashSet<RuleId, foldhash::fast::RandomState>,
    /// The rules among `removed` that the base or `added` held, counted, so the published
    /// counts leave them out before the next compilation.
    removed_counts: RuleCounts,
    /// The store's version this instance has caught up with.
    version: u64,
    /// When the pending changes get compiled: (settle deadline, latest deadline).
    due: Option<(Instant, Instant)>,
    /// When expired rules next get dropped.
    expiry_due: Option<Instant>,
    /// How often to look for other instances' changes; `None`: never on its own.
    reload: Option<Duration>,
    /// When to next look for changes (or retry the store).
    reload_due: Option<Instant>,
    /// Store failures in a row, for the backoff.
    failures: u32,
    /// Answers held until the changes they report are published.
    replies: Vec<Box<dyn FnOnce() + Send>>,
    /// Automatic rules received since the last store write.
    auto_new: Vec<RuleDraft>,
    /// Automatic rules whose write failed, oldest first, for the next try.
    auto_retry: Vec<RuleDraft>,
    /// Targets whose automatic rule is settled (written, covered, or given up).
    auto_done: Vec<RuleTarget>,
}

impl Worker {
    fn new(shared: Arc<Shared>, store: Box<dyn DynRuleStore>, reload: Option<Duration>) -> Self {
        let base = Arc::clone(&shared.view.load().base);
        Worker {
            shared,
            store,
            base,
            added: Vec::new(),
            removed: HashSet::default(),
            removed_counts: RuleCounts::default(),
            version: 0,
            due: None,
            expiry_due: None,
            reload,
            reload_due: reload.map(|every| Instant::now() + every),
            failures: 0,
            replies: Vec::new(),
            auto_new: Vec::new(),
            auto_retry: Vec::new(),
            auto_done: Vec::new(),
        }
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        self.schedule_expiry();
        loop {
            let compile_due = [
                self.due.map(|(settle, latest)| settle.min(latest)),
                self.expiry_due,
            ]
            .into_iter()
            .flatten()
            .min();
            let deadline = compile_due.into_iter().chain(self.reload_due).min();
            let command = match deadline {
                Some(at) => tokio::select! {
                    command = rx.recv() => command,
                    () = tokio::time::sleep_until(at) => {
                        if self.reload_due.is_some_and(|due| due <= Instant::now()) {
                            self.tick().await;
                        }
                        if compile_due.is_some_and(|due| due <= Instant::now()) {
                            self.compile();
                        }
                        self.settle();
                        continue;
                    }
                },
                None => rx.recv().await,
            };
            let Some(command) = command else {
                return;
            };
            self.handle(command).await;
            // Changes that came together are published (and answered) together.
            while let Ok(command) = rx.try_recv() {
                self.handle(command).await;
            }
            self.write_auto().await;
            self.settle();
        }
    }

    /// Publishes what changed (compiling when the overlay is full), then answers.
    fn settle(&mut self) {
        if self.added.len() > OVERLAY_MAX {
            self.compile();
        } else {
            self.publish();
            if !self.added.is_empty() || !self.removed.is_empty() {
                let now = Instant::now();
                let latest = self.due.map_or(now + MAX_DELAY, |(_, latest)| latest);
                self.due = Some((now + SETTLE, latest));
            }
        }
        for reply in self.replies.drain(..) {
            reply();
        }
        if !self.auto_done.is_empty() {
            // Published: a new request from the client now finds its rule.
            let mut pending = lock(&self.shared.pending_auto);
            for target in self.auto_done.drain(..) {
                pending.remove(&target);
            }
        }
    }

    async fn handle(&mut self, command: Command) {
        // Consecutive automatic rules go to the store in one write; anything else first
        // writes those before it, so commands keep their order.
        if !matches!(command, Command::Auto { .. }) {
            self.write_auto().await;
        }
        let now = self.shared.clock.wall();
        match command {
            Command::Insert { drafts, reply } => {
                let result = self.store.insert(drafts).await.map_err(RuleError::Store);
                if let Ok(rules) = &result {
                    self.added.extend(rules.iter().map(stored));
                }
                self.hold(reply, result);
            }
            Command::Remove { id, reply } => {
                let result = self.store.delete(id).await.map_err(RuleError::Store);
                if let Ok(Some(rule)) = &result {
                    self.note_removed([(id, Some(&rule.target))]);
                }
                self.hold(reply, result);
            }
            // Reads are answered with the writes before them, once those are published: a
            // caller that saw a rule listed finds it in force.
            Command::Get { id, reply } => {
                let result = self.store.get(id).await.map_err(RuleError::Store);
                self.hold(reply, result);
            }
            Command::List { query, reply } => {
                let result = self.store.list(query, now).await.map_err(RuleError::Store);
                self.hold(reply, result);
            }
            Command::Trim { trim, reply } => {
                // Only expired rules go, and those match nothing: the view needs no change.
                let result = self.store.trim(trim, now).await.map_err(RuleError::Store);
                self.hold(reply, result);
            }
            Command::Seed { seeds, reply } => {
                let result = self.store.seed(seeds).await.map_err(RuleError::Store);
                if let Ok(seeded) = &result {
                    self.added.extend(seeded.added.iter().map(stored));
                    self.note_removed(seeded.removed.iter().map(|id| (*id, None)));
                }
                self.hold(reply, result);
            }
            Command::Auto { draft } => self.auto_new.push(draft),
            Command::Load { reply } => {
                let result = match self.store.active(now).await {
                    Ok(Loaded { rules, version }) => {
                        self.version = version;
                        self.added.extend(rules.into_iter().map(entry));
                        Ok(())
                    }
                    Err(e) => Err(RuleError::Store(e)),
                };
                self.hold(reply, result);
            }
            Command::Refresh { reply } => {
                let result = self.refresh().await;
                self.hold(reply, result);
            }
            Command::Compact { reply } => {
                self.compile();
                self.hold(reply, Ok(()));
            }
        }
    }

    /// Answers once the change is published.
    fn hold<T: Send + 'static>(&mut self, reply: Reply<T>, answer: Result<T, RuleError>) {
        self.replies.push(Box::new(move || reply.send(answer)));
    }

    /// Writes the automatic rules received (and those waiting for a retry) in one store call,
    /// leaving out those an active block rule already covers (two requests racing to ban one
    /// client add one rule) and those that have expired meanwhile.
    async fn write_auto(&mut self) {
        if self.auto_new.is_empty() {
            return;
        }
        let fresh = std::mem::take(&mut self.auto_new);
        self.auto_done
            .extend(fresh.iter().map(|d| d.target.clone()));
        let drafts = self.uncovered(fresh);
        if drafts.is_empty() {
            return;
        }
        match self.store.insert(drafts.clone()).await {
            Ok(rules) => self.added.extend(rules.iter().map(stored)),
            Err(error) => {
                tracing::warn!(
                    target: "actix_bouncer",
                    rules = drafts.len(),
                    %error,
                    "could not store automatic rules; keeping them for a retry"
                );
                self.keep_for_retry(drafts);
            }
        }
    }

    fn uncovered(&self, drafts: Vec<RuleDraft>) -> Vec<RuleDraft> {
        let now = self.shared.clock.wall();
        let view = self.current_view();
        let mut seen = HashSet::new();
        drafts
            .into_iter()
            .filter(|draft| {
                let (ip, user) = match &draft.target {
                    RuleTarget::Network(net) => (Some(net.network()), None),
                    RuleTarget::User(user) => (None, Some(user.as_str())),
                };
                draft.expires.is_none_or(|at| at > now)
                    && view.check(ip, user, || now).block.is_none()
                    && seen.insert(draft.target.clone())
            })
            .collect()
    }

    fn keep_for_retry(&mut self, drafts: Vec<RuleDraft>) {
        self.auto_retry.extend(drafts);
        let over = self.auto_retry.len().saturating_sub(AUTO_RETRY_MAX);
        if over > 0 {
            self.auto_retry.drain(..over);
            lock(&self.shared.health).auto_rules_dropped += over as u64;
            tracing::error!(
                target: "actix_bouncer",
                dropped = over,
                "the rule store has been failing too long: oldest automatic rules dropped"
            );
        }
        lock(&self.shared.health).auto_rules_waiting = self.auto_retry.len();
        if self.reload_due.is_none() {
            self.reload_due = Some(Instant::now() + RETRY_FIRST);
        }
    }

    /// The reload tick: retries waiting automatic rules, then catches up with the store.
    async fn tick(&mut self) {
        let result = match self.retry_auto().await {
            Ok(()) if self.reload.is_some() => self.catch_up().await,
            other => other,
        };
        let failed = result.is_err();
        self.record(&result);
        self.reload_due = match (failed, self.reload) {
            (false, Some(every)) => Some(Instant::now() + every),
            (false, None) => None,
            (true, every) => {
                let backoff = RETRY_FIRST.saturating_mul(1 << (self.failures - 1).min(16));
                Some(Instant::now() + backoff.min(every.unwrap_or(RETRY_MAX)))
            }
        };
    }

    /// Writes the automatic rules a failing store could not take before.
    async fn retry_auto(&mut self) -> Result<(), RuleError> {
        if self.auto_retry.is_empty() {
            return Ok(());
        }
        let waiting = std::mem::take(&mut self.auto_retry);
        let drafts = self.uncovered(waiting);
        let result = if drafts.is_empty() {
            Ok(())
        } else {
            match self.store.insert(drafts.clone()).await {
                Ok(rules) => {
                    self.added.extend(rules.iter().map(stored));
                    Ok(())
                }
                Err(e) => {
                    self.auto_retry = drafts;
                    Err(RuleError::Store(e))
                }
            }
        };
        lock(&self.shared.health).auto_rules_waiting = self.auto_retry.len();
        result
    }

    /// Catches up with the store, on request.
    async fn refresh(&mut self) -> Result<(), RuleError> {
        let result = self.catch_up().await;
        self.record(&result);
        result
    }

    /// Counts a talk with the store: its health, the backoff, and a log line when failures
    /// start (and every tenth after).
    fn record(&mut self, result: &Result<(), RuleError>) {
        let mut health = lock(&self.shared.health);
        match result {
            Ok(()) => {
                health.version = self.version;
                health.last_reload = Some(self.shared.clock.wall());
                health.consecutive_failures = 0;
                self.failures = 0;
            }
            Err(error) => {
                health.reload_failures += 1;
                health.consecutive_failures += 1;
                self.failures += 1;
                if self.failures == 1 || self.failures % 10 == 0 {
                    tracing::warn!(
                        target: "actix_bouncer",
                        %error,
                        failures = self.failures,
                        "rule store unreachable; the last good rules stay in force"
                    );
                }
            }
        }
    }

    async fn catch_up(&mut self) -> Result<(), RuleError> {
        match self
            .store
            .changes_since(self.version)
            .await
            .map_err(RuleError::Store)?
        {
            Changes::Since {
                added,
                removed,
                version,
            } => {
                // This instance's own changes come back too: skip what it already has.
                let mut known: HashSet<RuleId, foldhash::fast::RandomState> = if added.is_empty() {
                    HashSet::default()
                } else {
                    self.added.iter().map(|e| e.rule.id).collect()
                };
                for rule in added {
                    let entry = entry(rule);
                    if known.insert(entry.rule.id)
                        && !self.base.contains(&entry.target, entry.rule.id)
                    {
                        self.added.push(entry);
                    }
                }
                self.note_removed(removed.into_iter().map(|id| (id, None)));
                self.version = version;
            }
            Changes::Reload => {
                let Loaded { rules, version } = self
                    .store
                    .active(self.shared.clock.wall())
                    .await
                    .map_err(RuleError::Store)?;
                self.base = Arc::new(RuleSnapshot::default());
                self.added = rules.into_iter().map(entry).collect();
                self.removed.clear();
                self.removed_counts = RuleCounts::default();
                self.version = version;
            }
        }
        Ok(())
    }

    /// Records removals (with the rule's target, when known): they stop matching at the next
    /// publication, and leave the counts then when the base (found through the target) or
    /// the recent additions hold them. A removal without a target that only the base holds
    /// is counted until the next compilation.
    fn note_removed<'t>(
        &mut self,
        removals: impl IntoIterator<Item = (RuleId, Option<&'t RuleTarget>)>,
    ) {
        let now = self.now();
        let mut recent: Option<std::collections::HashMap<RuleId, &Entry>> = None;
        for (id, target) in removals {
            if !self.removed.insert(id) {
                continue;
            }
            let recent =
                recent.get_or_insert_with(|| self.added.iter().map(|e| (e.rule.id, e)).collect());
            // The overlay counts only what has not expired; the base what had not when it
            // was compiled.
            let found = match recent.get(&id) {
                Some(e) => (e.rule.expires > now).then(|| (e.target.clone(), e.rule)),
                None => target.and_then(|t| self.base.find_rule(t, id).map(|c| (t.clone(), c))),
            };
            if let Some((target, rule)) = found {
                self.removed_counts.add(&target, &rule, 1);
            }
        }
    }

    /// The view as it would be published now (additions not published yet included).
    fn current_view(&self) -> RuleView {
        let overlay = (!self.added.is_empty()).then(|| self.overlay());
        let counts = self
            .base
            .counts()
            .combine(
                &overlay
                    .as_ref()
                    .map(RuleSnapshot::counts)
                    .unwrap_or_default(),
                1,
            )
            .combine(&self.removed_counts, -1);
        RuleView {
            base: Arc::clone(&self.base),
            overlay,
            removed: self.removed.clone(),
            counts,
        }
    }

    fn overlay(&self) -> RuleSnapshot {
        RuleSnapshot::compile(self.added.iter().cloned(), self.now())
    }

    fn now(&self) -> u64 {
        unix_nanos(self.shared.clock.wall())
    }

    /// Publishes the base with the pending changes on top.
    fn publish(&self) {
        self.shared.view.store(Arc::new(self.current_view()));
    }

    /// Folds the pending changes into a new base, dropping removed and expired rules.
    fn compile(&mut self) {
        let removed = std::mem::take(&mut self.removed);
        self.removed_counts = RuleCounts::default();
        let now = self.now();
        let started = std::time::Instant::now();
        // Taken, not drained: a drained vector keeps its capacity, and after a load that is
        // a million entries' worth of memory held for nothing.
        let added = std::mem::take(&mut self.added);
        let entries = self
            .base
            .entries()
            .chain(added)
            .filter(|e| !removed.contains(&e.rule.id));
        let base = RuleSnapshot::compile(entries, now);
        tracing::debug!(
            target: "actix_bouncer",
            rules = base.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "rules compiled"
        );
        self.base = Arc::new(base);
        self.due = None;
        self.publish();
        self.schedule_expiry();
    }

    fn schedule_expiry(&mut self) {
        let earliest = self.base.earliest_expiry();
        self.expiry_due = (earliest != NEVER).then(|| {
            let wait = Duration::from_nanos(earliest.saturating_sub(self.now()));
            Instant::now() + wait.max(EXPIRY_SWEEP)
        });
    }
}

/// A loaded rule as the compiler sees it.
fn entry(rule: LoadedRule) -> Entry {
    compiled(rule.id, rule.target, rule.action, rule.source, rule.expires)
}

/// A stored rule as the compiler sees it.
fn stored(rule: &Rule) -> Entry {
    compiled(
        rule.id,
        rule.target.clone(),
        rule.action,
        rule.source,
        rule.expires,
    )
}

fn compiled(
    id: RuleId,
    target: RuleTarget,
    action: RuleAction,
    source: RuleSource,
    expires: Option<SystemTime>,
) -> Entry {
    Entry {
        target,
        rule: Compiled {
            id,
            expires: expires.map_or(NEVER, unix_nanos),
            action,
            source,
        },
    }
}
