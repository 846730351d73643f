//! The rules' worker: one thread, `actix-bouncer-rules`, with a runtime of its own, that makes
//! every store call and every compilation, so neither ever runs on an actix worker.
//!
//! Changes are applied in the order they arrive. Each is published at once through the
//! overlay (see `view.rs`) and answered; the worker then waits for the changes that come
//! together to settle ([`SETTLE`], at most [`MAX_DELAY`]) and compiles them into a new base in
//! one go. A batch too big for the overlay is compiled before it is answered. Expired rules
//! leave the base at each compilation, and a compilation also runs once the soonest expiry
//! has passed (at most once every [`EXPIRY_SWEEP`]).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::model::{Rule, RuleDraft, RuleId, RuleTarget};
use super::snapshot::{unix_nanos, Compiled, Entry, RuleSnapshot, NEVER};
use super::store::{Changes, DynRuleStore, ListQuery, Loaded, RulePage};
use super::view::RuleView;
use super::RuleError;
use crate::clock::Clock;
use crate::sync::RuntimeThread;

/// Name of the worker thread.
const THREAD: &str = "actix-bouncer-rules";
/// Commands that may wait for the worker; automatic rules beyond this are dropped (logged).
pub(super) const QUEUE: usize = 1024;
/// Most additions kept in the overlay before a compilation is due at once.
const OVERLAY_MAX: usize = 256;
/// A compilation waits until no change has come for this long…
const SETTLE: Duration = Duration::from_millis(50);
/// …but never longer than this after the first change it waits for.
const MAX_DELAY: Duration = Duration::from_secs(1);
/// Least time between two compilations that only drop expired rules.
const EXPIRY_SWEEP: Duration = Duration::from_secs(60);

/// What the handles and the worker share.
pub(super) struct Shared {
    pub(super) view: ArcSwap<RuleView>,
    pub(super) store: Box<dyn DynRuleStore>,
    pub(super) clock: Arc<dyn Clock>,
    /// Targets of automatic rules on their way to the worker, so a flood of requests from one
    /// client queues its rule once.
    pub(super) pending_auto: std::sync::Mutex<HashSet<RuleTarget>>,
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
    /// An automatic block rule, added unless an active block already covers its target.
    Auto { draft: RuleDraft },
    /// Load every active rule from the store (startup with a store of one's own).
    Load { reply: Reply<()> },
    /// Apply what others changed in the store.
    Refresh { reply: Reply<()> },
    /// Compile now.
    Compact { reply: Reply<()> },
}

/// Starts the worker; its queue closes (and the thread ends) when the last handle is dropped.
pub(super) fn spawn(shared: Arc<Shared>) -> Result<mpsc::Sender<Command>, String> {
    let (tx, rx) = mpsc::channel(QUEUE);
    RuntimeThread::new()
        .and_then(|thread| thread.run(THREAD, move || Worker::new(shared).run(rx)))
        .map_err(|e| format!("cannot start the rules' worker: {e}"))?;
    Ok(tx)
}

struct Worker {
    shared: Arc<Shared>,
    base: Arc<RuleSnapshot>,
    /// Additions since the base was compiled.
    added: Vec<Entry>,
    /// Removals since the base was compiled.
    removed: HashSet<RuleId, foldhash::fast::RandomState>,
    /// The store's version this instance has caught up with.
    version: u64,
    /// When the pending changes get compiled: (settle deadline, latest deadline).
    due: Option<(Instant, Instant)>,
    /// When expired rules next get dropped.
    expiry_due: Option<Instant>,
    /// Answers held until the changes they report are published.
    replies: Vec<Box<dyn FnOnce() + Send>>,
    /// Automatic rules handled since the last publication.
    auto_done: Vec<RuleTarget>,
}

impl Worker {
    fn new(shared: Arc<Shared>) -> Self {
        let base = Arc::clone(&shared.view.load().base);
        Worker {
            shared,
            base,
            added: Vec::new(),
            removed: HashSet::default(),
            version: 0,
            due: None,
            expiry_due: None,
            replies: Vec::new(),
            auto_done: Vec::new(),
        }
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        self.schedule_expiry();
        loop {
            let deadline = [
                self.due.map(|(settle, latest)| settle.min(latest)),
                self.expiry_due,
            ]
            .into_iter()
            .flatten()
            .min();
            let command = match deadline {
                Some(at) => tokio::select! {
                    command = rx.recv() => command,
                    () = tokio::time::sleep_until(at) => {
                        self.compile();
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
                let mut pending = crate::sync::lock(&self.shared.pending_auto);
                for target in self.auto_done.drain(..) {
                    pending.remove(&target);
                }
            }
        }
    }

    async fn handle(&mut self, command: Command) {
        let store = &*self.shared.store;
        match command {
            Command::Insert { drafts, reply } => {
                let result = store.insert(drafts).await.map_err(RuleError::Store);
                if let Ok(rules) = &result {
                    self.added.extend(rules.iter().map(entry));
                }
                self.hold(reply, result);
            }
            Command::Remove { id, reply } => {
                let result = store.delete(id).await.map_err(RuleError::Store);
                if let Ok(Some(_)) = result {
                    self.removed.insert(id);
                }
                self.hold(reply, result);
            }
            // Reads are answered with the writes before them, once those are published: a
            // caller that saw a rule listed finds it in force.
            Command::Get { id, reply } => {
                let result = store.get(id).await.map_err(RuleError::Store);
                self.hold(reply, result);
            }
            Command::List { query, reply } => {
                let result = store.list(query).await.map_err(RuleError::Store);
                self.hold(reply, result);
            }
            Command::Auto { draft } => self.auto(draft).await,
            Command::Load { reply } => {
                let result = match store.active(self.shared.clock.wall()).await {
                    Ok(Loaded { rules, version }) => {
                        self.version = version;
                        self.added.extend(rules.iter().map(entry));
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

    /// An automatic rule, unless an active block rule already covers its target (two requests
    /// racing to ban one client add one rule).
    async fn auto(&mut self, draft: RuleDraft) {
        self.auto_done.push(draft.target.clone());
        let now = self.shared.clock.wall();
        let covered = match &draft.target {
            RuleTarget::Network(net) => {
                let view = self.current_view();
                view.check(Some(net.network()), None, || now)
                    .block
                    .is_some()
            }
            RuleTarget::User(user) => {
                let view = self.current_view();
                view.check(None, Some(user), || now).block.is_some()
            }
        };
        if covered {
            return;
        }
        let target = draft.target.clone();
        match self.shared.store.insert(vec![draft]).await {
            Ok(rules) => self.added.extend(rules.iter().map(entry)),
            Err(error) => tracing::warn!(
                target: "actix_bouncer",
                %target,
                %error,
                "could not store an automatic rule"
            ),
        }
    }

    async fn refresh(&mut self) -> Result<(), RuleError> {
        let store = &*self.shared.store;
        match store
            .changes_since(self.version)
            .await
            .map_err(RuleError::Store)?
        {
            Changes::Since {
                added,
                removed,
                version,
            } => {
                for rule in &added {
                    let entry = entry(rule);
                    if !self.knows(&entry) {
                        self.added.push(entry);
                    }
                }
                self.removed.extend(removed);
                self.version = version;
            }
            Changes::Reload => {
                let Loaded { rules, version } = store
                    .active(self.shared.clock.wall())
                    .await
                    .map_err(RuleError::Store)?;
                self.base = Arc::new(RuleSnapshot::default());
                self.added = rules.iter().map(entry).collect();
                self.removed.clear();
                self.version = version;
            }
        }
        Ok(())
    }

    /// Whether this instance already has the rule (its own change, read back from the store).
    fn knows(&self, entry: &Entry) -> bool {
        self.added.iter().any(|e| e.rule.id == entry.rule.id)
            || self.base.contains(&entry.target, entry.rule.id)
    }

    /// The view as it would be published now (additions not published yet included).
    fn current_view(&self) -> RuleView {
        RuleView {
            base: Arc::clone(&self.base),
            overlay: (!self.added.is_empty()).then(|| self.overlay()),
            removed: self.removed.clone(),
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
        let now = self.now();
        let started = std::time::Instant::now();
        let entries = self
            .base
            .entries()
            .chain(self.added.drain(..))
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

/// A stored rule as the compiler sees it.
fn entry(rule: &Rule) -> Entry {
    Entry {
        target: rule.target.clone(),
        rule: Compiled {
            id: rule.id,
            expires: rule.expires.map_or(NEVER, unix_nanos),
            action: rule.action,
        },
    }
}
