//! The rule store seam: where full rule records live, and how instances learn of each other's
//! changes. [`MemoryRuleStore`] is the in-process implementation.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::model::{Rule, RuleDraft, RuleId};
use crate::store_error::StoreError;
use crate::sync::lock;

/// Most rules a page holds.
pub const MAX_PAGE: usize = 1000;

/// A page request: rules by ascending id, after a cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListQuery {
    /// Rules with an id above this one; `None` for the first page.
    pub after: Option<RuleId>,
    /// At most this many (1 to [`MAX_PAGE`]).
    pub limit: usize,
}

impl ListQuery {
    /// The first page of `limit` rules (clamped to 1..=[`MAX_PAGE`]).
    pub fn first(limit: usize) -> Self {
        ListQuery {
            after: None,
            limit: limit.clamp(1, MAX_PAGE),
        }
    }

    /// The page after `id`.
    pub fn after(mut self, id: RuleId) -> Self {
        self.after = Some(id);
        self
    }
}

impl Default for ListQuery {
    /// The first page of 100 rules.
    fn default() -> Self {
        ListQuery::first(100)
    }
}

/// One page of rules.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RulePage {
    /// The rules, by ascending id, expired ones included.
    pub rules: Vec<Rule>,
    /// The cursor of the next page, when there may be one.
    pub next: Option<RuleId>,
}

/// Every active rule, and the store's version at that moment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Loaded {
    /// The active rules.
    pub rules: Vec<Rule>,
    /// Pass it to [`RuleStore::changes_since`] to learn what changed after.
    pub version: u64,
}

/// What changed in a store after a version.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Changes {
    /// These changes, in order, bring a reader to `version`.
    Since {
        /// Rules added.
        added: Vec<Rule>,
        /// Rules removed.
        removed: Vec<RuleId>,
        /// The version they lead to.
        version: u64,
    },
    /// The store no longer knows what changed after that version: load everything again.
    Reload,
}

/// Where rules live. The request path never calls it: lookups read the compiled snapshot, and
/// every store call runs on the rules' own worker thread.
///
/// A store numbers its rules, keeps them (expired ones too, until removed) and keeps a version
/// that every change moves forward, so another instance can catch up with
/// [`changes_since`](Self::changes_since) rather than reload the whole table.
pub trait RuleStore: Send + Sync + 'static {
    /// Stores new rules, giving each an id; all or none.
    fn insert(
        &self,
        rules: Vec<RuleDraft>,
    ) -> impl Future<Output = Result<Vec<Rule>, StoreError>> + Send;

    /// Removes a rule; returns it, or `None` when there was none.
    fn delete(&self, id: RuleId) -> impl Future<Output = Result<Option<Rule>, StoreError>> + Send;

    /// One rule by id.
    fn get(&self, id: RuleId) -> impl Future<Output = Result<Option<Rule>, StoreError>> + Send;

    /// A page of rules, by ascending id.
    fn list(&self, query: ListQuery) -> impl Future<Output = Result<RulePage, StoreError>> + Send;

    /// Every rule active at `now`, with the current version.
    fn active(&self, now: SystemTime) -> impl Future<Output = Result<Loaded, StoreError>> + Send;

    /// What changed after `version`.
    fn changes_since(
        &self,
        version: u64,
    ) -> impl Future<Output = Result<Changes, StoreError>> + Send;
}

/// The in-process [`RuleStore`]: rules in a map, changes in a bounded log. Clones share the
/// same rules, so two bouncers of one process can share a store.
#[derive(Clone, Default)]
pub struct MemoryRuleStore {
    inner: Arc<Mutex<Memory>>,
}

/// Changes kept for [`RuleStore::changes_since`]; a reader further behind reloads.
const LOG_LEN: usize = 4096;

#[derive(Default)]
struct Memory {
    /// By id, which only grows: a bulk insert is a push.
    rules: Vec<Rule>,
    last_id: u64,
    version: u64,
    /// `(version, change)`, oldest first.
    log: VecDeque<(u64, Change)>,
}

#[derive(Clone, Copy)]
enum Change {
    Added(RuleId),
    Removed(RuleId),
}

impl Memory {
    fn position(&self, id: RuleId) -> Result<usize, usize> {
        self.rules.binary_search_by_key(&id, |r| r.id)
    }

    fn record(&mut self, change: Change) {
        self.version += 1;
        if self.log.len() == LOG_LEN {
            self.log.pop_front();
        }
        self.log.push_back((self.version, change));
    }
}

impl MemoryRuleStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl std::fmt::Debug for MemoryRuleStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let memory = lock(&self.inner);
        f.debug_struct("MemoryRuleStore")
            .field("rules", &memory.rules.len())
            .field("version", &memory.version)
            .finish()
    }
}

impl RuleStore for MemoryRuleStore {
    async fn insert(&self, rules: Vec<RuleDraft>) -> Result<Vec<Rule>, StoreError> {
        let mut memory = lock(&self.inner);
        let mut added = Vec::with_capacity(rules.len());
        memory.rules.reserve(rules.len());
        for draft in rules {
            memory.last_id += 1;
            let rule = draft.with_id(RuleId(memory.last_id));
            memory.record(Change::Added(rule.id));
            memory.rules.push(rule.clone());
            added.push(rule);
        }
        Ok(added)
    }

    async fn delete(&self, id: RuleId) -> Result<Option<Rule>, StoreError> {
        let mut memory = lock(&self.inner);
        let Ok(at) = memory.position(id) else {
            return Ok(None);
        };
        let removed = memory.rules.remove(at);
        memory.record(Change::Removed(id));
        Ok(Some(removed))
    }

    async fn get(&self, id: RuleId) -> Result<Option<Rule>, StoreError> {
        let memory = lock(&self.inner);
        Ok(memory.position(id).ok().map(|at| memory.rules[at].clone()))
    }

    async fn list(&self, query: ListQuery) -> Result<RulePage, StoreError> {
        let limit = query.limit.clamp(1, MAX_PAGE);
        let memory = lock(&self.inner);
        let from = match query.after {
            Some(id) => memory.position(id).map_or_else(|at| at, |at| at + 1),
            None => 0,
        };
        let rest = memory.rules.get(from..).unwrap_or_default();
        let rules: Vec<Rule> = rest.iter().take(limit).cloned().collect();
        let next = (rest.len() > limit)
            .then(|| rules.last().map(|r| r.id))
            .flatten();
        Ok(RulePage { rules, next })
    }

    async fn active(&self, now: SystemTime) -> Result<Loaded, StoreError> {
        let memory = lock(&self.inner);
        Ok(Loaded {
            rules: memory
                .rules
                .iter()
                .filter(|r| r.is_active_at(now))
                .cloned()
                .collect(),
            version: memory.version,
        })
    }

    async fn changes_since(&self, version: u64) -> Result<Changes, StoreError> {
        let memory = lock(&self.inner);
        if version == memory.version {
            return Ok(Changes::Since {
                added: Vec::new(),
                removed: Vec::new(),
                version,
            });
        }
        // The log must reach back to the change right after `version`.
        let oldest = memory.log.front().map_or(u64::MAX, |(v, _)| *v);
        if version > memory.version || oldest > version + 1 {
            return Ok(Changes::Reload);
        }
        let (mut added, mut removed) = (Vec::new(), Vec::new());
        for (_, change) in memory.log.iter().filter(|(v, _)| *v > version) {
            match *change {
                // A rule removed since is no longer here; its removal follows in the log.
                Change::Added(id) => {
                    if let Ok(at) = memory.position(id) {
                        added.push(memory.rules[at].clone());
                    }
                }
                Change::Removed(id) => removed.push(id),
            }
        }
        Ok(Changes::Since {
            added,
            removed,
            version: memory.version,
        })
    }
}

/// A boxed future, for calling a [`RuleStore`] through `dyn`.
pub(super) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// [`RuleStore`] in a form that fits behind `dyn`.
pub(super) trait DynRuleStore: Send + Sync + 'static {
    fn insert(&self, rules: Vec<RuleDraft>) -> BoxFuture<'_, Result<Vec<Rule>, StoreError>>;
    fn delete(&self, id: RuleId) -> BoxFuture<'_, Result<Option<Rule>, StoreError>>;
    fn get(&self, id: RuleId) -> BoxFuture<'_, Result<Option<Rule>, StoreError>>;
    fn list(&self, query: ListQuery) -> BoxFuture<'_, Result<RulePage, StoreError>>;
    fn active(&self, now: SystemTime) -> BoxFuture<'_, Result<Loaded, StoreError>>;
    fn changes_since(&self, version: u64) -> BoxFuture<'_, Result<Changes, StoreError>>;
}

impl<S: RuleStore> DynRuleStore for S {
    fn insert(&self, rules: Vec<RuleDraft>) -> BoxFuture<'_, Result<Vec<Rule>, StoreError>> {
        Box::pin(RuleStore::insert(self, rules))
    }
    fn delete(&self, id: RuleId) -> BoxFuture<'_, Result<Option<Rule>, StoreError>> {
        Box::pin(RuleStore::delete(self, id))
    }
    fn get(&self, id: RuleId) -> BoxFuture<'_, Result<Option<Rule>, StoreError>> {
        Box::pin(RuleStore::get(self, id))
    }
    fn list(&self, query: ListQuery) -> BoxFuture<'_, Result<RulePage, StoreError>> {
        Box::pin(RuleStore::list(self, query))
    }
    fn active(&self, now: SystemTime) -> BoxFuture<'_, Result<Loaded, StoreError>> {
        Box::pin(RuleStore::active(self, now))
    }
    fn changes_since(&self, version: u64) -> BoxFuture<'_, Result<Changes, StoreError>> {
        Box::pin(RuleStore::changes_since(self, version))
    }
}
