//! [`MemoryRuleStore`]: the in-process rule store, used when no database is configured.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::model::{Rule, RuleDraft, RuleId};
use super::query::{ListQuery, RulePage, Trim};
use super::store::{Changes, Loaded, LoadedRule, RuleStore, Seed, Seeded};
use crate::store_error::StoreError;
use crate::sync::lock;

/// The in-process [`RuleStore`]: rules by id, changes in a bounded log. Clones share the same
/// rules, so two bouncers of one process can share a store. Nothing outlives the process.
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
    /// The rule each config seed key made.
    seeds: HashMap<String, RuleId>,
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

    fn insert(&mut self, draft: RuleDraft) -> Rule {
        self.last_id += 1;
        let rule = draft.with_id(RuleId(self.last_id));
        self.record(Change::Added(rule.id));
        self.rules.push(rule.clone());
        rule
    }

    fn delete(&mut self, id: RuleId) -> Option<Rule> {
        let at = self.position(id).ok()?;
        self.record(Change::Removed(id));
        Some(self.rules.remove(at))
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
        memory.rules.reserve(rules.len());
        Ok(rules.into_iter().map(|d| memory.insert(d)).collect())
    }

    async fn delete(&self, id: RuleId) -> Result<Option<Rule>, StoreError> {
        Ok(lock(&self.inner).delete(id))
    }

    async fn get(&self, id: RuleId) -> Result<Option<Rule>, StoreError> {
        let memory = lock(&self.inner);
        Ok(memory.position(id).ok().map(|at| memory.rules[at].clone()))
    }

    async fn list(&self, query: ListQuery, now: SystemTime) -> Result<RulePage, StoreError> {
        let limit = query.page_size();
        let memory = lock(&self.inner);
        let from = match query.after {
            Some(id) => memory.position(id).map_or_else(|at| at, |at| at + 1),
            None => 0,
        };
        let probe = memory.rules[from..]
            .iter()
            .filter(|r| query.filter.matches(r, now))
            .take(limit + 1)
            .cloned()
            .collect();
        Ok(RulePage::from_probe(probe, limit))
    }

    async fn active(&self, now: SystemTime) -> Result<Loaded, StoreError> {
        let memory = lock(&self.inner);
        Ok(Loaded {
            rules: memory
                .rules
                .iter()
                .filter(|r| r.is_active_at(now))
                .map(LoadedRule::from)
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
                        added.push(LoadedRule::from(&memory.rules[at]));
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

    async fn trim(&self, trim: Trim, now: SystemTime) -> Result<u64, StoreError> {
        let (created_before, expired_before) = trim.cutoffs(now);
        let mut memory = lock(&self.inner);
        let doomed: Vec<RuleId> = memory
            .rules
            .iter()
            .filter(|r| {
                r.created <= created_before && r.expires.is_some_and(|at| at <= expired_before)
            })
            .map(|r| r.id)
            .collect();
        for &id in &doomed {
            memory.delete(id);
        }
        Ok(doomed.len() as u64)
    }

    async fn seed(&self, seeds: Vec<Seed>) -> Result<Seeded, StoreError> {
        let mut memory = lock(&self.inner);
        let wanted: HashSet<&str> = seeds.iter().map(|s| s.key.as_str()).collect();
        let gone: Vec<(String, RuleId)> = memory
            .seeds
            .iter()
            .filter(|(key, _)| !wanted.contains(key.as_str()))
            .map(|(key, id)| (key.clone(), *id))
            .collect();
        let mut seeded = Seeded::default();
        for (key, id) in gone {
            memory.seeds.remove(&key);
            if memory.delete(id).is_some() {
                seeded.removed.push(id);
            }
        }
        for Seed { key, draft } in seeds {
            // A seeded rule someone removed since is seeded again, like a missing one.
            let present = memory
                .seeds
                .get(&key)
                .is_some_and(|&id| memory.position(id).is_ok());
            if !present {
                let rule = memory.insert(draft);
                memory.seeds.insert(key, rule.id);
                seeded.added.push(rule);
            }
        }
        Ok(seeded)
    }
}
