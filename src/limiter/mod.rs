//! Counting hits and banning: GCRA (governor) over one bounded, sharded key store shared by
//! every limit of a bouncer, behind a [`CounterStore`] seam.
//!
//! # Counting
//!
//! A [`LimitPolicy`] allows `hits` per `per`, with bursts of up to `burst` (default `hits`).
//! Every key gets its own GCRA state through [`governor`]: one cell is emitted every
//! `per / hits` (whole nanoseconds, rounded down), and at most `burst` cells may be in use at
//! once. An allowed hit reports how many cells are in use, this hit included
//! ([`LimitOutcome::Allowed`]); a refused hit reports when the next one would conform
//! ([`LimitOutcome::Limited`]).
//!
//! # Bans
//!
//! With a [`BanPolicy`], the first refused hit bans the key instead: [`LimitOutcome::BanStarted`].
//! The n-th ban of a key lasts `min(ban_for * ban_growth^(n-1), max_ban)` (fail2ban's
//! `bantime.increment`). While a key is banned:
//!
//! * a hit answers [`LimitOutcome::Banned`] with the time left, and is **not counted**;
//! * its rate count is wiped when the ban starts, so when the ban ends the key has its full
//!   burst again (a ban is the whole punishment; it is not followed by a drained bucket).
//!
//! **Offence memory.** A key's offences are remembered until it has gone `max_ban` since its
//! last ban *ended* without being banned again. After that quiet period the next ban counts as
//! a first offence again. (With `max_ban` = 1 day: a client banned at most once a day keeps
//! escalating; one that behaves for a full day after its ban starts over.)
//!
//! # One bounded store for every limit
//!
//! The global limit and every handler limit (`#[rate_limit]`) of a bouncer keep their keys in
//! one store of at most `max_tracked_keys` keys, swept by one background thread
//! (`actix-bouncer-sweep`, every 10 seconds; it holds only a `Weak` and ends with the store), so
//! the memory bound is the cap, however many limits there are. A full store evicts the entry
//! that carries the least information (see `bounded.rs`): banned keys and heavy hitters survive
//! a flood of one-shot keys.
//!
//! # The seam
//!
//! The bouncer reaches counters only through [`CounterStore`]: register a limit, count a hit
//! (on the request path: synchronous, never waiting on I/O), ban, unban, list bans.
//! [`MemoryCounterStore`] is the in-process implementation; a shared backend (Redis) answers
//! hits from local state and synchronises in the background.
//!
//! # Request path
//!
//! One hit takes one shard lock and reads the clock once. The ban check, the GCRA update and
//! the start of a ban happen under that lock. An existing key costs no allocation; a new key
//! costs none either (keys are small `Copy` values).
//!
//! # Limits
//!
//! `per` may be at most 2^62 ns (about 146 years), and `burst` is capped so that a full burst
//! refills within the same span (`with_burst` documents it); this keeps governor's nanosecond
//! arithmetic far from overflow. Ban lengths and instants saturate instead of overflowing.
//!
//! The files of this folder: `policy.rs` (limits and bans), `bounded.rs` (the shared key
//! store), `gcra.rs` (one limit's GCRA over the store), `store.rs` (the [`CounterStore`] seam
//! and its memory implementation), `limits.rs` (a bouncer's global and handler limits), and
//! `redis/` (feature `redis`: [`RedisCounterStore`], the store shared through Redis).

mod bounded;
mod gcra;
mod limits;
mod policy;
#[cfg(feature = "redis")]
mod redis;
mod store;

use std::fmt;
use std::hash::Hash;
use std::num::NonZeroUsize;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use crate::client_ip::ClientKey;
use crate::clock::Clock;
use crate::sync::Periodic;

use self::bounded::Store;
use self::gcra::Gcra;

pub(crate) use self::limits::Limits;
pub use self::policy::{BanPolicy, LimitPolicy, DEFAULT_MAX_TRACKED_KEYS};
#[cfg(feature = "redis")]
pub use self::redis::{
    FailPolicy, RedisCounterStore, RedisCounterStoreBuilder, RedisStats, DEFAULT_BATCH_HITS,
    DEFAULT_MAX_DELAY, DEFAULT_PREFIX, DEFAULT_SYNC_EVERY, DEFAULT_TIMEOUT,
};
pub use self::store::{
    ActiveBan, BannedKey, CounterStats, CounterStore, LimitSlot, MemoryCounterStore, SharedStats,
};

/// How often the background thread sweeps.
const DEFAULT_SWEEP_EVERY: Duration = Duration::from_secs(10);
/// Name of the sweeper thread.
const SWEEPER_THREAD: &str = "actix-bouncer-sweep";

/// What a limit decided about one hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LimitOutcome {
    /// Under the limit; `hits` cells in use in the current window (1 for a first request).
    Allowed {
        /// Cells in use, this hit included: `burst - remaining burst capacity`.
        hits: u32,
    },
    /// Over the limit with no ban policy; the client may retry after this long.
    Limited {
        /// Time until the next hit would be allowed.
        retry_after: Duration,
    },
    /// Over the limit: a ban of `ban` starts now; `offence` counts this key's bans (1 = first).
    BanStarted {
        /// Length of the ban that starts now.
        ban: Duration,
        /// Which ban of this key this is (1 = first).
        offence: u32,
    },
    /// Still banned for `remaining`.
    Banned {
        /// Time until the ban ends.
        remaining: Duration,
    },
}

/// Whose hits a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Subject<'a> {
    /// A client, by its grouping key.
    Client(ClientKey),
    /// A user, by the id the bouncer's user hook named.
    User(&'a str),
}

/// A handler limit (`#[rate_limit]`, [`HandlerLimit`](crate::guard::HandlerLimit)): its
/// stable identity and its rate. Built in const context by the guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct LimitSpec {
    /// The limit's identity: [`limit_id`] of its name.
    pub id: u64,
    /// Hits allowed per `per`.
    pub hits: u32,
    /// The window.
    pub per: Duration,
    /// How long going over bans for; `None`: no ban.
    pub ban_for: Option<Duration>,
    /// How long a signed-in user's automatic rule for such a ban lasts; `None`: the
    /// bouncer's `user_ban_for`, or the ban's length.
    pub user_ban_for: Option<Duration>,
}

/// A limit's stable identity: FNV-1a (64-bit) of its name. The name, not where the handler
/// sits in the source, so moving code keeps its counters (and its keys in a shared store).
///
/// ```
/// use actix_bouncer::limiter::limit_id;
/// assert_eq!(limit_id("app::auth::login"), limit_id("app::auth::login"));
/// assert_ne!(limit_id("app::auth::login"), limit_id("app::auth::logout"));
/// ```
pub const fn limit_id(name: &str) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let bytes = name.as_bytes();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash = (hash ^ bytes[i] as u64).wrapping_mul(PRIME);
        i += 1;
    }
    hash
}

/// A standalone limiter: one limit over a bounded store of its own, for any key type.
///
/// The bouncer itself keeps all its limits in one [`MemoryCounterStore`]; this type is the same
/// machinery for other uses (and for the tests and benches of the machinery). Dropping it stops
/// its sweeper thread.
///
/// ```
/// use std::num::NonZeroU32;
/// use std::sync::Arc;
/// use std::time::Duration;
/// use actix_bouncer::clock::ManualClock;
/// use actix_bouncer::limiter::{BanPolicy, LimitOutcome, LimitPolicy, Limiter};
///
/// let policy = LimitPolicy::new(NonZeroU32::new(2).unwrap(), Duration::from_secs(1))?
///     .with_ban(BanPolicy::new(Duration::from_secs(60), 2.0, Duration::from_secs(3600))?);
/// let clock = ManualClock::new();
/// let limiter = Limiter::new(policy, Arc::new(clock.clone()));
///
/// assert_eq!(limiter.check(&"203.0.113.7"), LimitOutcome::Allowed { hits: 1 });
/// assert_eq!(limiter.check(&"203.0.113.7"), LimitOutcome::Allowed { hits: 2 });
/// assert_eq!(
///     limiter.check(&"203.0.113.7"),
///     LimitOutcome::BanStarted { ban: Duration::from_secs(60), offence: 1 }
/// );
/// clock.advance(Duration::from_secs(15));
/// assert_eq!(
///     limiter.check(&"203.0.113.7"),
///     LimitOutcome::Banned { remaining: Duration::from_secs(45) }
/// );
/// assert!(limiter.forgive(&"203.0.113.7"));
/// assert_eq!(limiter.check(&"203.0.113.7"), LimitOutcome::Allowed { hits: 1 });
/// # Ok::<(), actix_bouncer::setting::InvalidSetting>(())
/// ```
pub struct Limiter<K: Hash + Eq + Clone> {
    policy: LimitPolicy,
    gcra: Gcra<K>,
    store: Arc<Store<(u32, K)>>,
    _sweeper: Option<Periodic>,
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static> Limiter<K> {
    /// A limiter for `policy` tracking at most 100,000 keys, reading time from `clock`; starts
    /// the sweeper thread.
    pub fn new(policy: LimitPolicy, clock: Arc<dyn Clock>) -> Self {
        Self::with_capacity(policy, DEFAULT_MAX_TRACKED_KEYS, clock)
    }

    /// A limiter tracking at most `max_tracked_keys` keys.
    pub fn with_capacity(
        policy: LimitPolicy,
        max_tracked_keys: NonZeroUsize,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self::with_sweep_every(policy, max_tracked_keys, clock, DEFAULT_SWEEP_EVERY)
    }

    /// [`Limiter::with_capacity`] with the background sweep every `every` instead of 10 s.
    pub(crate) fn with_sweep_every(
        policy: LimitPolicy,
        max_tracked_keys: NonZeroUsize,
        clock: Arc<dyn Clock>,
        every: Duration,
    ) -> Self {
        let store = Arc::new(Store::new(max_tracked_keys, Arc::clone(&clock)));
        let gcra = Gcra::new(&policy, Arc::clone(&store), 0, clock);
        Self {
            policy,
            gcra,
            _sweeper: spawn_sweeper(&store, every),
            store,
        }
    }

    /// The policy this limiter enforces.
    pub fn policy(&self) -> &LimitPolicy {
        &self.policy
    }

    /// Counts one hit for `key` (or reports its ban).
    pub fn check(&self, key: &K) -> LimitOutcome {
        self.gcra.check(key)
    }

    /// Lifts a ban and forgets the key's offences and count. Returns whether the key was tracked.
    pub fn forgive(&self, key: &K) -> bool {
        self.store.forget(&(0, key.clone()))
    }

    /// Number of keys currently tracked (never above the cap).
    pub fn tracked_keys(&self) -> usize {
        self.store.len()
    }

    /// Drops keys that no longer carry information; returns how many.
    ///
    /// The background thread does this every 10 seconds; a key is dropped once its count has
    /// fully refilled and its offences are forgotten.
    pub fn sweep(&self) -> usize {
        self.store.sweep()
    }
}

impl<K: Hash + Eq + Clone> fmt::Debug for Limiter<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limiter")
            .field("policy", &self.policy)
            .field("tracked_keys", &self.store.len())
            .field("shards", &self.store.shard_count())
            .finish_non_exhaustive()
    }
}

/// Starts the sweeper thread of `store`; `None` (logged) if the OS refuses one: eviction still
/// bounds memory.
fn spawn_sweeper<K>(store: &Arc<Store<K>>, every: Duration) -> Option<Periodic>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
{
    let weak = Arc::downgrade(store);
    Periodic::spawn(SWEEPER_THREAD, every, move || match weak.upgrade() {
        Some(store) => {
            store.sweep();
            ControlFlow::Continue(())
        }
        None => ControlFlow::Break(()),
    })
    .map_err(|e| {
        tracing::warn!(
            target: "actix_bouncer",
            "cannot start the sweeper thread ({e}); idle keys go only when evicted"
        )
    })
    .ok()
}

#[cfg(test)]
mod tests;
