//! A bouncer's limits: the global one and the handler limits, all in one counter store.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;

use super::policy::{BanPolicy, LimitPolicy};
use super::store::{ActiveBan, CounterStats, DynCounterStore, LimitSlot};
use super::{CounterStore, LimitOutcome, LimitSpec, Subject};
use crate::client_ip::ClientKey;
use crate::store_error::StoreError;
use crate::sync::lock;

/// The name the global limit is registered under.
pub(crate) const GLOBAL: &str = "global";

/// The global limit and the handler limits of one bouncer, over one counter store.
pub(crate) struct Limits {
    store: Arc<dyn DynCounterStore>,
    global: LimitSlot,
    policy: LimitPolicy,
    /// Handler limits registered so far; a handful, so a linear scan of a lock-free snapshot
    /// beats hashing.
    handlers: ArcSwap<Vec<(LimitSpec, LimitSlot)>>,
    /// Serialises registrations; lookups never take it.
    registering: Mutex<()>,
    /// What handler limits share with the global one: how bans grow, and their ceiling.
    ban_growth: f64,
    max_ban: Duration,
}

impl Limits {
    /// `policy` as the global limit of `store`.
    pub(crate) fn new(
        store: impl CounterStore,
        policy: LimitPolicy,
        ban_growth: f64,
        max_ban: Duration,
    ) -> Self {
        let global = store.register(GLOBAL, &policy);
        Limits {
            store: Arc::new(store),
            global,
            policy,
            handlers: ArcSwap::from_pointee(Vec::new()),
            registering: Mutex::new(()),
            ban_growth,
            max_ban,
        }
    }

    /// The global limit's policy.
    pub(crate) fn policy(&self) -> &LimitPolicy {
        &self.policy
    }

    /// Counts a hit of `key` against the global limit.
    #[inline]
    pub(crate) fn hit(&self, key: ClientKey) -> LimitOutcome {
        self.store.hit(self.global, Subject::Client(key))
    }

    /// Counts a hit of `subject` against a handler limit, registered on its first use.
    pub(crate) fn hit_handler(&self, spec: &LimitSpec, subject: Subject<'_>) -> LimitOutcome {
        let slot = match self.handlers.load().iter().find(|(s, _)| s == spec) {
            Some(&(_, slot)) => slot,
            None => self.register(spec),
        };
        self.store.hit(slot, subject)
    }

    fn register(&self, spec: &LimitSpec) -> LimitSlot {
        let _registering = lock(&self.registering);
        let current = self.handlers.load_full();
        if let Some(&(_, slot)) = current.iter().find(|(s, _)| s == spec) {
            return slot;
        }
        if current.iter().any(|(s, _)| s.id == spec.id) {
            tracing::warn!(
                target: "actix_bouncer",
                limit = format_args!("{:016x}", spec.id),
                "two handler limits share a name but not their rate: they count apart"
            );
        }
        let slot = self.store.register(
            &format!("handler:{:016x}", spec.id),
            &self.handler_policy(spec),
        );
        let mut next = (*current).clone();
        next.push((*spec, slot));
        self.handlers.store(Arc::new(next));
        slot
    }

    fn handler_policy(&self, spec: &LimitSpec) -> LimitPolicy {
        // A spec's values are checked at compile time; fall back to the plainest valid policy
        // rather than panic if a check was ever missed.
        let hits = NonZeroU32::new(spec.hits).unwrap_or(NonZeroU32::MIN);
        let policy = LimitPolicy::new(hits, spec.per)
            .or_else(|_| LimitPolicy::new(hits, Duration::from_secs(1)))
            .or_else(|_| LimitPolicy::new(NonZeroU32::MIN, Duration::from_secs(1)));
        let Ok(policy) = policy else {
            unreachable!("one hit a second is a valid policy")
        };
        match spec.ban_for {
            Some(ban_for) => {
                match BanPolicy::new(ban_for, self.ban_growth, self.max_ban.max(ban_for)) {
                    Ok(ban) => policy.with_ban(ban),
                    Err(_) => policy,
                }
            }
            None => policy,
        }
    }

    /// Every active ban, soonest end first.
    pub(crate) async fn bans(&self) -> Result<Vec<ActiveBan>, StoreError> {
        self.store.bans().await
    }

    /// Lifts the bans of `subject` under every limit.
    pub(crate) async fn unban(&self, subject: Subject<'_>) -> Result<bool, StoreError> {
        self.store.unban(subject).await
    }

    /// Bans `key` under the global limit for `length`.
    pub(crate) async fn ban(&self, key: ClientKey, length: Duration) -> Result<(), StoreError> {
        self.store
            .ban(self.global, Subject::Client(key), length)
            .await
    }

    /// Keys tracked now, over all limits.
    pub(crate) fn tracked_keys(&self) -> usize {
        self.store.tracked_keys()
    }

    /// Whether the counter store has lost the backend it shares with other instances.
    #[inline]
    pub(crate) fn degraded(&self) -> bool {
        self.store.degraded()
    }

    /// The counter store's counts, for monitoring.
    pub(crate) fn stats(&self) -> CounterStats {
        self.store.stats()
    }
}
