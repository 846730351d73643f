//! One limit's GCRA (governor's) over its share of the bounded store, and the ban logic that
//! runs under the same shard lock.
//!
//! governor computes the GCRA; the store (its [`StateStore`]) keeps the state and adds bans.
//! governor only sees `Ok`/`Err`, so the store hands the ban details back to [`Gcra::check`]
//! through a thread-local cell, written on the refusal paths only. The clock is read once per
//! hit: governor's reading is left in a second thread-local for the store to reuse (a clock
//! read costs as much as the GCRA update itself).

use std::cell::Cell;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::Clock as _;
use governor::middleware::StateInformationMiddleware;
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::RateLimiter;

use super::bounded::{Params, Store};
use super::policy::LimitPolicy;
use super::LimitOutcome;
use crate::clock::{duration_nanos, Clock};

/// What the store decided on a refused hit, beyond the `Err` governor sees.
#[derive(Debug, Clone, Copy)]
enum Refused {
    /// Refused by the GCRA, no ban policy; `now` is the absolute clock reading.
    Limited { now: u64 },
    /// A ban started with this hit.
    BanStarted { ban: Duration, offence: u32 },
    /// The key was already banned; the hit was not counted.
    Banned { remaining: Duration },
}

thread_local! {
    /// Hand-off from `measure_and_replace` to `Gcra::check` on the same thread: governor
    /// calls the one from inside the other, and only passes `Ok`/`Err` through.
    static REFUSED: Cell<Option<Refused>> = const { Cell::new(None) };

    /// governor's clock reading (absolute ns) for the check in progress, reused by
    /// `measure_and_replace` so each hit reads the clock once.
    static READING: Cell<Option<u64>> = const { Cell::new(None) };
}

fn set_refused(refused: Refused) {
    // A const-initialised `Cell` of a `Copy` type has no destructor, so this cannot fail; if
    // it ever did, `check` falls back to reading the clock itself.
    let _ = REFUSED.try_with(|v| v.set(Some(refused)));
}

fn take_refused() -> Option<Refused> {
    REFUSED.try_with(Cell::take).ok().flatten()
}

/// The governor clock: reads the injected [`Clock`] and leaves the reading for the store.
#[derive(Debug, Clone)]
struct ReadingClock(Arc<dyn Clock>);

impl governor::clock::Clock for ReadingClock {
    type Instant = Nanos;

    #[inline]
    fn now(&self) -> Nanos {
        let now = duration_nanos(self.0.monotonic());
        let _ = READING.try_with(|r| r.set(Some(now)));
        Nanos::new(now)
    }
}

/// One limit's view of the shared store: its keys are `(slot, key)`.
struct View<K> {
    store: Arc<Store<(u32, K)>>,
    slot: u32,
    params: Arc<Params>,
}

impl<K: Hash + Eq + Clone> StateStore for View<K> {
    type Key = K;

    #[inline]
    fn measure_and_replace<T, F, E>(&self, key: &K, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let store = &*self.store;
        let params = &*self.params;
        // governor's own reading for this check; a fresh one if absent.
        let now = READING
            .try_with(Cell::take)
            .ok()
            .flatten()
            .unwrap_or_else(|| store.now());
        let key = (self.slot, key.clone());
        let (hash, mut shard) = store.shard(&key);
        let i = shard.find_or_insert(&store.hasher, hash, &key, now);
        let slot = &mut shard.slots[i];

        if now < slot.ban_until {
            // To the GCRA a banned key looks as if its next cell conformed only at the ban's
            // end: in governor's frame that is past its now, so `f` refuses, and the state is
            // left untouched.
            let remaining = Duration::from_nanos(slot.ban_until - now);
            let until = slot.ban_until.saturating_sub(params.origin);
            let refused = f(Some(Nanos::new(until.saturating_add(params.tau))));
            if refused.is_err() {
                set_refused(Refused::Banned { remaining });
            }
            return refused.map(|(t, _)| t);
        }

        let tat = (slot.tat != 0).then(|| Nanos::new(slot.tat));
        match f(tat) {
            Ok((t, next)) => {
                slot.tat = next.as_u64();
                slot.refresh(params);
                Ok(t)
            }
            Err(e) => {
                let refused = match &params.ban {
                    None => Refused::Limited { now },
                    Some(ban) => {
                        let remembered =
                            slot.offences > 0 && now < slot.ban_until.saturating_add(params.memory);
                        let offence = if remembered {
                            slot.offences.saturating_add(1)
                        } else {
                            1
                        };
                        let length = ban.ban_length(offence);
                        slot.offences = offence;
                        slot.ban_until = now.saturating_add(duration_nanos(length));
                        slot.tat = 0; // the ban wipes the count: full burst when it ends
                        slot.refresh(params);
                        Refused::BanStarted {
                            ban: length,
                            offence,
                        }
                    }
                };
                set_refused(refused);
                Err(e)
            }
        }
    }
}

type Limiter<K> = RateLimiter<K, View<K>, ReadingClock, StateInformationMiddleware>;

/// One limit: a GCRA over its share of a store.
pub(super) struct Gcra<K: Hash + Eq + Clone> {
    limiter: Limiter<K>,
    burst: u32,
    params: Arc<Params>,
}

impl<K: Hash + Eq + Clone> Gcra<K> {
    /// The limit `policy` as `slot` of `store`.
    pub(super) fn new(
        policy: &LimitPolicy,
        store: Arc<Store<(u32, K)>>,
        slot: u32,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let params = Arc::new(Params {
            tau: policy.tau(),
            ban: policy.ban().cloned(),
            memory: policy.ban().map_or(0, |ban| duration_nanos(ban.max_ban())),
            // Read just before governor reads its own start, so never after it.
            origin: duration_nanos(clock.monotonic()),
        });
        let view = View {
            store,
            slot,
            params: Arc::clone(&params),
        };
        Gcra {
            limiter: RateLimiter::new(policy.quota, view, ReadingClock(clock)),
            burst: policy.burst().get(),
            params,
        }
    }

    /// The limit's parameters in the store.
    pub(super) fn params(&self) -> &Params {
        &self.params
    }

    /// Counts one hit for `key` (or reports its ban).
    #[inline]
    pub(super) fn check(&self, key: &K) -> LimitOutcome {
        match self.limiter.check_key(key) {
            Ok(state) => LimitOutcome::Allowed {
                hits: self.burst.saturating_sub(state.remaining_burst_capacity()),
            },
            Err(not_until) => match take_refused() {
                Some(Refused::Banned { remaining }) => LimitOutcome::Banned { remaining },
                Some(Refused::BanStarted { ban, offence }) => {
                    LimitOutcome::BanStarted { ban, offence }
                }
                Some(Refused::Limited { now }) => LimitOutcome::Limited {
                    retry_after: not_until.wait_time_from(Nanos::new(now)),
                },
                None => LimitOutcome::Limited {
                    retry_after: not_until.wait_time_from(self.limiter.clock().now()),
                },
            },
        }
    }
}
