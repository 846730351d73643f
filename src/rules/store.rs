//! The rule store seam: where full rule records live, and how instances learn of each other's
//! changes. `memory.rs` holds the in-process implementation, `sql/` the database ones.

use std::future::Future;
use std::pin::Pin;
use std::time::SystemTime;

use super::model::{Rule, RuleAction, RuleDraft, RuleId, RuleSource, RuleTarget};
use super::query::{ListQuery, RulePage, Trim};
use crate::store_error::StoreError;

/// A rule as loaded for enforcing: what the compiled snapshot needs, without the comment and
/// creation time (which stay in the store), so a million of them load quickly and small.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoadedRule {
    /// Its identifier.
    pub id: RuleId,
    /// Who it applies to.
    pub target: RuleTarget,
    /// What it does.
    pub action: RuleAction,
    /// Where it came from (a match on an automatic rule is reported as a ban).
    pub source: RuleSource,
    /// When it stops matching; `None` means never.
    pub expires: Option<SystemTime>,
}

impl From<&Rule> for LoadedRule {
    fn from(rule: &Rule) -> Self {
        LoadedRule {
            id: rule.id,
            target: rule.target.clone(),
            action: rule.action,
            source: rule.source,
            expires: rule.expires,
        }
    }
}

/// Every active rule, and the store's version at that moment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Loaded {
    /// The active rules.
    pub rules: Vec<LoadedRule>,
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
        added: Vec<LoadedRule>,
        /// Rules removed.
        removed: Vec<RuleId>,
        /// The version they lead to.
        version: u64,
    },
    /// The store no longer knows what changed after that version: load everything again.
    Reload,
}

/// A rule the config declares, with the key that names it across restarts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Seed {
    /// What the config says, canonically (action, target, expiry as written, comment): two
    /// startups with the same entry give the same key.
    pub key: String,
    /// The rule, created now, with source [`RuleSource::Config`].
    pub draft: RuleDraft,
}

impl Seed {
    /// A seed.
    pub fn new(key: impl Into<String>, draft: RuleDraft) -> Self {
        Seed {
            key: key.into(),
            draft,
        }
    }
}

/// What seeding the config's rules changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Seeded {
    /// Config rules the store did not have yet.
    pub added: Vec<Rule>,
    /// Config rules the config no longer declares.
    pub removed: Vec<RuleId>,
}

/// Where rules live. The request path never calls it: lookups read the compiled snapshot, and
/// every store call runs on the rules' own worker thread.
///
/// A store numbers its rules, keeps them (expired ones too, until removed or trimmed) and keeps
/// a version that every change moves forward, so another instance can catch up with
/// [`changes_since`](Self::changes_since) rather than reload the whole table. Changes made
/// together (one `insert`, one `seed`, one `trim`) are all or nothing. The acceptance suite in
/// `rules/tests.rs` says what every implementation must do.
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

    /// A page of the rules passing `query`'s filter (its state judged at `now`), by ascending
    /// id.
    fn list(
        &self,
        query: ListQuery,
        now: SystemTime,
    ) -> impl Future<Output = Result<RulePage, StoreError>> + Send;

    /// Every rule active at `now`, with the current version.
    fn active(&self, now: SystemTime) -> impl Future<Output = Result<Loaded, StoreError>> + Send;

    /// What changed after `version`.
    fn changes_since(
        &self,
        version: u64,
    ) -> impl Future<Output = Result<Changes, StoreError>> + Send;

    /// Removes the expired rules `trim` names, as of `now`; returns how many.
    fn trim(
        &self,
        trim: Trim,
        now: SystemTime,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Makes the store's config rules (source [`RuleSource::Config`]) exactly `seeds`, by key:
    /// adds the seeds it lacks, removes config rules no seed names, keeps the rest as they are
    /// (so a restart neither copies a rule nor moves its expiry).
    fn seed(&self, seeds: Vec<Seed>) -> impl Future<Output = Result<Seeded, StoreError>> + Send;
}

/// A boxed future, for calling a [`RuleStore`] through `dyn`.
pub(super) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// [`RuleStore`] in a form that fits behind `dyn`.
pub(super) trait DynRuleStore: Send + Sync + 'static {
    fn insert(&self, rules: Vec<RuleDraft>) -> BoxFuture<'_, Result<Vec<Rule>, StoreError>>;
    fn delete(&self, id: RuleId) -> BoxFuture<'_, Result<Option<Rule>, StoreError>>;
    fn get(&self, id: RuleId) -> BoxFuture<'_, Result<Option<Rule>, StoreError>>;
    fn list(
        &self,
        query: ListQuery,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<RulePage, StoreError>>;
    fn active(&self, now: SystemTime) -> BoxFuture<'_, Result<Loaded, StoreError>>;
    fn changes_since(&self, version: u64) -> BoxFuture<'_, Result<Changes, StoreError>>;
    fn trim(&self, trim: Trim, now: SystemTime) -> BoxFuture<'_, Result<u64, StoreError>>;
    fn seed(&self, seeds: Vec<Seed>) -> BoxFuture<'_, Result<Seeded, StoreError>>;
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
    fn list(
        &self,
        query: ListQuery,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<RulePage, StoreError>> {
        Box::pin(RuleStore::list(self, query, now))
    }
    fn active(&self, now: SystemTime) -> BoxFuture<'_, Result<Loaded, StoreError>> {
        Box::pin(RuleStore::active(self, now))
    }
    fn changes_since(&self, version: u64) -> BoxFuture<'_, Result<Changes, StoreError>> {
        Box::pin(RuleStore::changes_since(self, version))
    }
    fn trim(&self, trim: Trim, now: SystemTime) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(RuleStore::trim(self, trim, now))
    }
    fn seed(&self, seeds: Vec<Seed>) -> BoxFuture<'_, Result<Seeded, StoreError>> {
        Box::pin(RuleStore::seed(self, seeds))
    }
}
