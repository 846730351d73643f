//! Counting hits and banning: GCRA (governor) over a bounded, sharded key store.
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
//! * [`Limiter::check`] answers [`LimitOutcome::Banned`] with the time left, and the hit is
//!   **not counted**;
//! * its rate count is wiped when the ban starts, so when the ban ends the key has its full
//!   burst again (a ban is the whole punishment; it is not followed by a drained bucket).
//!
//! **Offence memory.** A key's offences are remembered until it has gone `max_ban` since its
//! last ban *ended* without being banned again. After that quiet period the next ban counts as
//! a first offence again. (With `max_ban` = 1 day: a client banned at most once a day keeps
//! escalating; one that behaves for a full day after its ban starts over.)
//!
//! # Bounded memory
//!
//! governor's own keyed stores never forget a key, so this module brings its own
//! [`StateStore`]: `max_tracked_keys` keys at most, split over up to 64 shards (a power of
//! two; fewer for small caps so that every shard holds at least 16 keys). Each shard is a
//! [`Mutex`] around a slab (`Vec` of entries, which allows O(1) random sampling) and an index
//! of slab positions (a [`hashbrown::HashTable<u32>`]: keys are stored once, in the slab, and
//! the index costs 5 bytes a bucket, so it mostly stays in cache). Removal is `swap_remove`
//! plus one index fix-up; eviction reuses the victim's slot in place.
//!
//! *The bound is exact:* shard `i` may hold `floor(max / shards)` keys, plus one for the first
//! `max % shards` shards, so the shard capacities add up to exactly `max_tracked_keys`, and a
//! shard never grows past its own capacity (a full shard evicts before it inserts).
//!
//! Each entry keeps the key's GCRA theoretical arrival time (TAT), the end of its current or
//! last ban, its offence count, and `keep_until`: the instant after which the entry carries no
//! information, `max(TAT, last ban end + max_ban)` (only the TAT when the key has no offences).
//! An entry past `keep_until` is indistinguishable from a key never seen. When a full shard
//! must make room, it samples up to 8 random slots (per-shard xorshift) and evicts the one with
//! the smallest `keep_until`, taking at once any entry already past it. Banned keys and heavy
//! hitters have the latest `keep_until`, so a flood of one-shot keys evicts other one-shot keys
//! and not them.
//!
//! Keys are hashed once per request with a randomly seeded [`foldhash::fast::RandomState`]
//! (bits 32 and up pick the shard; the shard's index uses the low bits and the top 7), so
//! attacker-chosen keys cannot aim at one shard or force collisions.
//!
//! # Sweeping
//!
//! A background thread, `actix-bouncer-sweep`, holds only a [`Weak`] reference to the store
//! and drops entries past `keep_until` every 10 seconds. Dropping the [`Limiter`] wakes it and
//! waits for it to exit (at most the length of one sweep). [`Limiter::sweep`] does the same
//! work on demand.
//!
//! # Request path
//!
//! One [`Limiter::check`] takes one shard lock. The ban check, the GCRA update (governor's
//! closure, run by the store's `measure_and_replace`) and the start of a ban all happen under
//! that lock. governor only sees `Ok`/`Err`; the store hands the ban details to `check` through
//! a thread-local cell, written on the refusal paths only. An existing key costs no allocation
//! and no clone; a new key costs one clone of the key (into the slab).
//!
//! # Limits
//!
//! `per` may be at most 2^62 ns (about 146 years), and `burst` is capped so that a full burst
//! refills within the same span (`with_burst` documents it); this keeps governor's nanosecond
//! arithmetic far from overflow. Ban lengths and instants saturate instead of overflowing.

use std::cell::Cell;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use foldhash::fast::RandomState;
use governor::clock::Clock as _;
use governor::middleware::StateInformationMiddleware;
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::{Quota, RateLimiter};
use hashbrown::HashTable;

use crate::clock::{duration_nanos, Clock};
use crate::config::ConfigError;

/// The longest span, in nanoseconds, that `per` and a full burst may cover (about 146 years).
const MAX_SPAN_NANOS: u64 = 1 << 62;
/// `max_tracked_keys` when the policy does not say.
const DEFAULT_MAX_TRACKED_KEYS: NonZeroUsize = match NonZeroUsize::new(100_000) {
    Some(n) => n,
    None => NonZeroUsize::MIN,
};
/// How often the background thread sweeps.
const DEFAULT_SWEEP_EVERY: Duration = Duration::from_secs(10);
/// Most shards a store uses.
const MAX_SHARDS: usize = 64;
/// Fewest keys a shard should hold before the store uses more shards.
const MIN_SHARD_CAPACITY: usize = 16;
/// Slots sampled to pick an eviction victim.
const EVICTION_SAMPLES: usize = 8;

// ---------------------------------------------------------------------------------------------
// Policies
// ---------------------------------------------------------------------------------------------

/// How many hits a key may make, and what happens when it makes more.
///
/// ```
/// use std::num::{NonZeroU32, NonZeroUsize};
/// use std::time::Duration;
/// use actix_bouncer::limiter::{BanPolicy, LimitPolicy};
///
/// let policy = LimitPolicy::new(NonZeroU32::new(60).unwrap(), Duration::from_secs(60))?
///     .with_burst(NonZeroU32::new(10).unwrap())
///     .with_ban(BanPolicy::new(Duration::from_secs(600), 2.0, Duration::from_secs(86_400))?)?
///     .with_max_tracked_keys(NonZeroUsize::new(10_000).unwrap());
/// assert_eq!(policy.burst().get(), 10);
/// # Ok::<(), actix_bouncer::config::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LimitPolicy {
    hits: NonZeroU32,
    per: Duration,
    burst: NonZeroU32,
    /// Nanoseconds per cell: `per / hits`, rounded down; never zero.
    period: u64,
    /// `period` and `burst` as governor wants them.
    quota: Quota,
    ban: Option<BanPolicy>,
    max_tracked_keys: NonZeroUsize,
}

impl LimitPolicy {
    /// `hits` per `per`; errors name `limit.per` when `per` is zero or `per/hits` rounds to 0 ns.
    ///
    /// `per` longer than 2^62 ns (about 146 years) is also refused. The burst defaults to
    /// `hits`, there is no ban, and at most 100,000 keys are tracked.
    pub fn new(hits: NonZeroU32, per: Duration) -> Result<Self, ConfigError> {
        let per_nanos = per.as_nanos();
        if per_nanos == 0 {
            return Err(ConfigError::invalid(
                "limit.per",
                format!("{per:?}"),
                "a duration longer than zero",
            ));
        }
        let per_nanos = match u64::try_from(per_nanos) {
            Ok(n) if n <= MAX_SPAN_NANOS => n,
            _ => {
                return Err(ConfigError::invalid(
                    "limit.per",
                    format!("{per:?}"),
                    "a duration of at most 146 years",
                ))
            }
        };
        let period = per_nanos / u64::from(hits.get());
        let quota = Quota::with_period(Duration::from_nanos(period)).ok_or_else(|| {
            ConfigError::invalid(
                "limit.per",
                format!("{per:?}"),
                format!(
                    "at least {hits} ns, so that one hit every `limit.per` / `limit.hits` \
                     is a whole nanosecond"
                ),
            )
        })?;
        Ok(Self {
            hits,
            per,
            burst: hits,
            period,
            quota: quota.allow_burst(hits),
            ban: None,
            max_tracked_keys: DEFAULT_MAX_TRACKED_KEYS,
        })
    }

    /// Allows bursts of up to `burst` hits (default: `hits`).
    ///
    /// A burst whose full refill would take longer than about 146 years
    /// (`burst * per / hits > 2^62 ns`) is capped to the largest one that does not; see
    /// [`LimitPolicy::burst`] for the value in use.
    pub fn with_burst(mut self, burst: NonZeroU32) -> Self {
        let most = u32::try_from(MAX_SPAN_NANOS / self.period.max(1)).unwrap_or(u32::MAX);
        self.burst = NonZeroU32::new(burst.get().min(most)).unwrap_or(NonZeroU32::MIN);
        self.quota = self.quota.allow_burst(self.burst);
        self
    }

    /// Bans keys that go over the limit.
    ///
    /// Errors name `limit.ban_for` when the ban is not longer than `per` (bans outlast the window).
    pub fn with_ban(mut self, ban: BanPolicy) -> Result<Self, ConfigError> {
        if ban.ban_for <= self.per {
            return Err(ConfigError::invalid(
                "limit.ban_for",
                format!("{:?}", ban.ban_for),
                format!("a ban longer than `limit.per` ({:?})", self.per),
            ));
        }
        self.ban = Some(ban);
        Ok(self)
    }

    /// Tracks at most `max` keys at once (default 100,000).
    pub fn with_max_tracked_keys(mut self, max: NonZeroUsize) -> Self {
        self.max_tracked_keys = max;
        self
    }

    /// Hits allowed per [`LimitPolicy::per`].
    pub fn hits(&self) -> NonZeroU32 {
        self.hits
    }

    /// The window `hits` are counted over.
    pub fn per(&self) -> Duration {
        self.per
    }

    /// The most hits allowed at once (after any capping by [`LimitPolicy::with_burst`]).
    pub fn burst(&self) -> NonZeroU32 {
        self.burst
    }

    /// The ban policy, if keys over the limit are banned.
    pub fn ban(&self) -> Option<&BanPolicy> {
        self.ban.as_ref()
    }

    /// The most keys tracked at once.
    pub fn max_tracked_keys(&self) -> NonZeroUsize {
        self.max_tracked_keys
    }

    /// GCRA tolerance in nanoseconds: the weight of the burst beyond its first cell.
    fn tau(&self) -> u64 {
        self.period
            .saturating_mul(u64::from(self.burst.get().saturating_sub(1)))
    }
}

/// How long keys over the limit are banned, growing with repeat offences.
#[derive(Debug, Clone, PartialEq)]
pub struct BanPolicy {
    ban_for: Duration,
    growth: f64,
    max_ban: Duration,
}

impl BanPolicy {
    /// The first ban lasts `ban_for`; each repeat offence multiplies it by `growth`, up to
    /// `max_ban`.
    ///
    /// Errors: `limit.ban_for` zero; `limit.ban_growth` not finite or < 1.0; `limit.max_ban` shorter than ban_for.
    pub fn new(ban_for: Duration, growth: f64, max_ban: Duration) -> Result<Self, ConfigError> {
        if ban_for.is_zero() {
            return Err(ConfigError::invalid(
                "limit.ban_for",
                format!("{ban_for:?}"),
                "a duration longer than zero",
            ));
        }
        if !growth.is_finite() || growth < 1.0 {
            return Err(ConfigError::invalid(
                "limit.ban_growth",
                growth,
                "a finite number of at least 1.0",
            ));
        }
        if max_ban < ban_for {
            return Err(ConfigError::invalid(
                "limit.max_ban",
                format!("{max_ban:?}"),
                format!("a duration at least as long as `limit.ban_for` ({ban_for:?})"),
            ));
        }
        Ok(Self {
            ban_for,
            growth,
            max_ban,
        })
    }

    /// The first ban's length.
    pub fn ban_for(&self) -> Duration {
        self.ban_for
    }

    /// The factor each repeat offence multiplies the ban by.
    pub fn growth(&self) -> f64 {
        self.growth
    }

    /// The longest ban; also how long a key must stay out of trouble after its last ban
    /// before its offences are forgotten.
    pub fn max_ban(&self) -> Duration {
        self.max_ban
    }

    /// Length of the n-th ban (n >= 1), capped at max_ban.
    ///
    /// `ban_for * growth^(n-1)`; `offence` 0 is treated as 1.
    pub fn ban_length(&self, offence: u32) -> Duration {
        if offence <= 1 || self.growth == 1.0 {
            return self.ban_for.min(self.max_ban);
        }
        let exponent = i32::try_from(offence - 1).unwrap_or(i32::MAX);
        let secs = self.ban_for.as_secs_f64() * self.growth.powi(exponent);
        // Also catches an infinite power (and NaN, which cannot happen: `ban_for` > 0).
        if secs.is_nan() || secs >= self.max_ban.as_secs_f64() {
            return self.max_ban;
        }
        Duration::try_from_secs_f64(secs).map_or(self.max_ban, |d| d.min(self.max_ban))
    }
}

/// What [`Limiter::check`] decided about one hit.
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

// ---------------------------------------------------------------------------------------------
// The store
// ---------------------------------------------------------------------------------------------

/// What the store decided on a refused hit, beyond the `Err` governor sees.
#[derive(Debug, Clone, Copy)]
enum Verdict {
    /// Refused by the GCRA, no ban policy; `now` is the clock reading (governor's frame).
    Limited { now: u64 },
    /// A ban started with this hit.
    BanStarted { ban: Duration, offence: u32 },
    /// The key was already banned; the hit was not counted.
    Banned { remaining: Duration },
}

thread_local! {
    /// Hand-off from `measure_and_replace` to `Limiter::check` on the same thread: governor
    /// calls the one from inside the other, and only passes `Ok`/`Err` through.
    static VERDICT: Cell<Option<Verdict>> = const { Cell::new(None) };
}

fn set_verdict(verdict: Verdict) {
    // A const-initialised `Cell` of a `Copy` type has no destructor, so this cannot fail; if
    // it ever did, `check` falls back to reading the clock itself.
    let _ = VERDICT.try_with(|v| v.set(Some(verdict)));
}

fn take_verdict() -> Option<Verdict> {
    VERDICT.try_with(Cell::take).ok().flatten()
}

thread_local! {
    /// governor's clock reading for the check in progress, reused by `measure_and_replace` so
    /// each hit reads the clock once (a clock read costs as much as the GCRA update itself).
    static READING: Cell<Option<u64>> = const { Cell::new(None) };
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

/// One tracked key. Instants are nanoseconds since the store's origin (governor's own
/// origin, which `tat` is counted from, is read right after it: the frames differ by the
/// time between two clock reads, and not at all with a manual clock).
#[derive(Debug)]
struct Slot<K> {
    key: K,
    /// GCRA theoretical arrival time; 0 = fresh.
    tat: u64,
    /// When the current or last ban ends (0 = never banned).
    ban_until: u64,
    /// After this instant the entry carries no information.
    keep_until: u64,
    /// Bans so far (see the offence memory rule in the module docs).
    offences: u32,
}

impl<K> Slot<K> {
    fn fresh(key: K) -> Self {
        Self {
            key,
            tat: 0,
            ban_until: 0,
            keep_until: 0,
            offences: 0,
        }
    }

    /// Recomputes `keep_until` from the TAT and the offence memory.
    fn refresh(&mut self, memory: u64) {
        let offences_end = if self.offences == 0 {
            0
        } else {
            self.ban_until.saturating_add(memory)
        };
        self.keep_until = self.tat.max(offences_end);
    }
}

/// One lock's worth of keys: a slab of entries and an index of slab positions.
///
/// The index stores only `u32` slab positions (keys live once, in the slab): 5 bytes a
/// bucket where a `HashMap<u128, u32>` takes 33, so it mostly stays in cache.
#[derive(Debug)]
struct Shard<K> {
    index: HashTable<u32>,
    slots: Vec<Slot<K>>,
    capacity: usize,
    rng: u64,
}

impl<K: Hash + Eq + Clone> Shard<K> {
    fn new(capacity: usize, seed: u64) -> Self {
        Self {
            index: HashTable::new(),
            slots: Vec::new(),
            capacity,
            // xorshift must not start at zero.
            rng: seed | 1,
        }
    }

    /// The slot holding `key`, whose hash is `hash`.
    fn find(&self, hash: u64, key: &K) -> Option<usize> {
        let slots = &self.slots;
        self.index
            .find(hash, |&i| {
                slots.get(i as usize).is_some_and(|s| s.key == *key)
            })
            .map(|&i| i as usize)
    }

    /// Adds `key` (hash `hash`) as a fresh entry; returns its slot. A full shard gives the key
    /// the slot of an evicted entry.
    fn insert(&mut self, hasher: &RandomState, hash: u64, key: &K, now: u64) -> usize {
        let len = self.slots.len();
        let at = if len >= self.capacity && len > 0 {
            let victim = self.pick_victim(now);
            self.unindex(hasher, victim);
            self.slots[victim] = Slot::fresh(key.clone());
            victim
        } else {
            if len == self.slots.capacity() {
                // Grow by doubling, but never past this shard's capacity.
                let room = self.capacity.saturating_sub(len).max(1);
                self.slots.reserve_exact(room.min(len.max(4)));
            }
            self.slots.push(Slot::fresh(key.clone()));
            len
        };
        let slots = &self.slots;
        // `capacity` is at most u32::MAX, so positions fit.
        self.index
            .insert_unique(hash, at as u32, |&i| rehash(hasher, slots, i));
        at
    }

    /// Removes slot `i`'s position from the index.
    fn unindex(&mut self, hasher: &RandomState, i: usize) {
        if let Some(slot) = self.slots.get(i) {
            let hash = hasher.hash_one(&slot.key);
            if let Ok(entry) = self.index.find_entry(hash, |&j| j as usize == i) {
                entry.remove();
            }
        }
    }

    /// Removes the entry in slot `i`, moving the last entry into its place.
    fn remove_at(&mut self, hasher: &RandomState, i: usize) {
        let Some(last) = self.slots.len().checked_sub(1).filter(|&last| i <= last) else {
            return;
        };
        self.unindex(hasher, i);
        self.slots.swap_remove(i);
        if let Some(moved) = self.slots.get(i) {
            let hash = hasher.hash_one(&moved.key);
            if let Some(at) = self.index.find_mut(hash, |&j| j as usize == last) {
                *at = i as u32;
            }
        }
    }

    /// The slot with the smallest `keep_until` among up to 8 random ones (`len` > 0).
    fn pick_victim(&mut self, now: u64) -> usize {
        let len = self.slots.len();
        let mut victim = self.sample(len);
        let mut oldest = self.slots[victim].keep_until;
        for _ in 1..EVICTION_SAMPLES {
            if oldest <= now {
                break; // already carries no information
            }
            let i = self.sample(len);
            let keep_until = self.slots[i].keep_until;
            if keep_until < oldest {
                victim = i;
                oldest = keep_until;
            }
        }
        victim
    }

    /// A uniform slot index below `len` (xorshift64, multiply-shift reduction).
    fn sample(&mut self, len: usize) -> usize {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        ((u128::from(x) * len as u128) >> 64) as usize
    }

    /// Drops every entry past `keep_until`; returns how many.
    fn sweep(&mut self, hasher: &RandomState, now: u64) -> usize {
        let before = self.slots.len();
        let mut i = 0;
        while i < self.slots.len() {
            if self.slots[i].keep_until <= now {
                self.remove_at(hasher, i); // brings an unchecked entry into slot i
            } else {
                i += 1;
            }
        }
        let len = self.slots.len();
        if len < self.slots.capacity() / 4 {
            self.slots.shrink_to(len.saturating_mul(2));
            let slots = &self.slots;
            self.index
                .shrink_to(len.saturating_mul(2), |&i| rehash(hasher, slots, i));
        }
        before - len
    }
}

/// The hash of the key at slab position `i`, for the index to move its entries.
fn rehash<K: Hash>(hasher: &RandomState, slots: &[Slot<K>], i: u32) -> u64 {
    slots
        .get(i as usize)
        .map_or(0, |slot| hasher.hash_one(&slot.key))
}

/// The bounded key store behind a [`Limiter`].
struct Store<K> {
    shards: Box<[Mutex<Shard<K>>]>,
    shard_mask: usize,
    /// Hashes keys once per request: bits 32.. pick the shard, the whole hash feeds the
    /// shard's index (which uses the low bits and the top 7).
    hasher: RandomState,
    clock: Arc<dyn Clock>,
    /// Clock reading (ns) just before governor read its own start, so that
    /// `now - origin` is never behind governor's idea of now.
    origin: u64,
    /// GCRA tolerance, ns.
    tau: u64,
    ban: Option<BanPolicy>,
    /// How long offences are remembered after a ban ends (ns): `max_ban`.
    memory: u64,
}

impl<K: Hash + Eq + Clone> Store<K> {
    fn new(policy: &LimitPolicy, clock: Arc<dyn Clock>, origin: u64) -> Self {
        let max = policy.max_tracked_keys.get();
        let shard_count = shard_count(max);
        let (base, extra) = (max / shard_count, max % shard_count);
        let hasher = RandomState::default();
        let shards = (0..shard_count)
            .map(|i| {
                let capacity = (base + usize::from(i < extra)).min(u32::MAX as usize);
                Mutex::new(Shard::new(capacity, hasher.hash_one(i)))
            })
            .collect();
        Self {
            shards,
            shard_mask: shard_count - 1,
            hasher,
            clock,
            origin,
            tau: policy.tau(),
            ban: policy.ban.clone(),
            memory: policy
                .ban
                .as_ref()
                .map_or(0, |ban| duration_nanos(ban.max_ban)),
        }
    }

    /// The clock, in nanoseconds: (absolute, since origin).
    fn now(&self) -> (u64, u64) {
        let now = duration_nanos(self.clock.monotonic());
        (now, now.saturating_sub(self.origin))
    }

    /// `key`'s hash and its locked shard.
    fn shard(&self, key: &K) -> (u64, MutexGuard<'_, Shard<K>>) {
        let hash = self.hasher.hash_one(key);
        let i = ((hash >> 32) as usize) & self.shard_mask;
        (hash, lock(&self.shards[i]))
    }

    fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).slots.len()).sum()
    }

    fn sweep(&self) -> usize {
        let (_, now) = self.now();
        self.shards
            .iter()
            .map(|s| lock(s).sweep(&self.hasher, now))
            .sum()
    }

    fn forget(&self, key: &K) -> bool {
        let (hash, mut shard) = self.shard(key);
        match shard.find(hash, key) {
            Some(i) => {
                shard.remove_at(&self.hasher, i);
                true
            }
            None => false,
        }
    }
}

/// Shards for a store of `max` keys: a power of two, at most 64, and few enough that each
/// holds at least 16 keys (one shard below that).
fn shard_count(max: usize) -> usize {
    let wanted = (max / MIN_SHARD_CAPACITY).clamp(1, MAX_SHARDS);
    // Largest power of two not above `wanted`.
    1 << wanted.ilog2()
}

/// Locks a shard; a panic elsewhere never leaves a shard half-updated, so poison is ignored.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The store as governor holds it.
struct SharedStore<K>(Arc<Store<K>>);

impl<K: Hash + Eq + Clone> StateStore for SharedStore<K> {
    type Key = K;

    fn measure_and_replace<T, F, E>(&self, key: &K, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let store = &*self.0;
        // governor's own reading for this check (never behind its `t0`); a fresh one if absent.
        let (now_abs, now) = match READING.try_with(Cell::take).ok().flatten() {
            Some(abs) => (abs, abs.saturating_sub(store.origin)),
            None => store.now(),
        };
        let (hash, mut shard) = store.shard(key);
        let i = match shard.find(hash, key) {
            Some(i) => i,
            None => shard.insert(&store.hasher, hash, key, now),
        };
        let slot = &mut shard.slots[i];

        if now < slot.ban_until {
            // To the GCRA a banned key looks as if its next cell conformed only at `ban_until`:
            // `ban_until > now >= t0`, so `f` refuses, and the state is left untouched.
            let remaining = Duration::from_nanos(slot.ban_until - now);
            let refused = f(Some(Nanos::new(slot.ban_until.saturating_add(store.tau))));
            if refused.is_err() {
                set_verdict(Verdict::Banned { remaining });
            }
            return refused.map(|(t, _)| t);
        }

        let tat = (slot.tat != 0).then(|| Nanos::new(slot.tat));
        match f(tat) {
            Ok((t, next)) => {
                slot.tat = next.as_u64();
                slot.refresh(store.memory);
                Ok(t)
            }
            Err(e) => {
                let verdict = match &store.ban {
                    None => Verdict::Limited { now: now_abs },
                    Some(ban) => {
                        let remembered =
                            slot.offences > 0 && now < slot.ban_until.saturating_add(store.memory);
                        let offence = if remembered {
                            slot.offences.saturating_add(1)
                        } else {
                            1
                        };
                        let length = ban.ban_length(offence);
                        slot.offences = offence;
                        slot.ban_until = now.saturating_add(duration_nanos(length));
                        slot.tat = 0; // the ban wipes the count: full burst when it ends
                        slot.refresh(store.memory);
                        Verdict::BanStarted {
                            ban: length,
                            offence,
                        }
                    }
                };
                set_verdict(verdict);
                Err(e)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The background sweeper
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct StopSignal {
    stopped: Mutex<bool>,
    wake: Condvar,
}

/// The `actix-bouncer-sweep` thread; stopping it (on drop) waits for it to exit.
#[derive(Debug)]
struct Sweeper {
    signal: Arc<StopSignal>,
    thread: Option<JoinHandle<()>>,
}

impl Sweeper {
    /// Starts the thread; `None` if the OS refuses one (eviction still bounds memory).
    fn spawn<K>(store: Weak<Store<K>>, every: Duration) -> Option<Self>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
    {
        let signal = Arc::new(StopSignal::default());
        let theirs = Arc::clone(&signal);
        let thread = std::thread::Builder::new()
            .name("actix-bouncer-sweep".into())
            .spawn(move || sweep_loop(&store, &theirs, every))
            .ok()?;
        Some(Self {
            signal,
            thread: Some(thread),
        })
    }
}

fn sweep_loop<K: Hash + Eq + Clone>(store: &Weak<Store<K>>, signal: &StopSignal, every: Duration) {
    loop {
        let stopped = lock(&signal.stopped);
        let (stopped, _) = signal
            .wake
            .wait_timeout_while(stopped, every, |stopped| !*stopped)
            .unwrap_or_else(PoisonError::into_inner);
        if *stopped {
            return;
        }
        drop(stopped);
        match store.upgrade() {
            Some(store) => {
                store.sweep();
            }
            None => return,
        }
    }
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        *lock(&self.signal.stopped) = true;
        self.signal.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            // A panic in the sweeper has nothing to report here.
            let _ = thread.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The limiter
// ---------------------------------------------------------------------------------------------

type Gcra<K> = RateLimiter<K, SharedStore<K>, ReadingClock, StateInformationMiddleware>;

/// Counts hits per key and bans keys that go over the limit, tracking a bounded number of keys.
///
/// Cheap to share: wrap it in an [`Arc`]. Dropping it stops its sweeper thread.
///
/// ```
/// use std::num::NonZeroU32;
/// use std::sync::Arc;
/// use std::time::Duration;
/// use actix_bouncer::clock::ManualClock;
/// use actix_bouncer::limiter::{BanPolicy, LimitOutcome, LimitPolicy, Limiter};
///
/// let policy = LimitPolicy::new(NonZeroU32::new(2).unwrap(), Duration::from_secs(1))?
///     .with_ban(BanPolicy::new(Duration::from_secs(60), 2.0, Duration::from_secs(3600))?)?;
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
/// # Ok::<(), actix_bouncer::config::ConfigError>(())
/// ```
pub struct Limiter<K>
where
    K: Hash + Eq + Clone,
{
    policy: LimitPolicy,
    gcra: Gcra<K>,
    store: Arc<Store<K>>,
    #[allow(dead_code)] // held for its Drop, which stops the thread
    sweeper: Option<Sweeper>,
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static> Limiter<K> {
    /// A limiter for `policy`, reading time from `clock`; starts the sweeper thread.
    pub fn new(policy: LimitPolicy, clock: Arc<dyn Clock>) -> Self {
        Self::with_sweep_every(policy, clock, DEFAULT_SWEEP_EVERY)
    }

    /// [`Limiter::new`] with the background sweep every `every` instead of 10 s.
    pub(crate) fn with_sweep_every(
        policy: LimitPolicy,
        clock: Arc<dyn Clock>,
        every: Duration,
    ) -> Self {
        let origin = duration_nanos(clock.monotonic());
        let store = Arc::new(Store::new(&policy, Arc::clone(&clock), origin));
        let gcra: Gcra<K> = RateLimiter::new(
            policy.quota,
            SharedStore(Arc::clone(&store)),
            ReadingClock(clock),
        );
        let sweeper = Sweeper::spawn(Arc::downgrade(&store), every);
        Self {
            policy,
            gcra,
            store,
            sweeper,
        }
    }

    /// The policy this limiter enforces.
    pub fn policy(&self) -> &LimitPolicy {
        &self.policy
    }

    /// Counts one hit for `key` (or reports its ban).
    pub fn check(&self, key: &K) -> LimitOutcome {
        match self.gcra.check_key(key) {
            Ok(state) => LimitOutcome::Allowed {
                hits: self
                    .policy
                    .burst
                    .get()
                    .saturating_sub(state.remaining_burst_capacity()),
            },
            Err(not_until) => match take_verdict() {
                Some(Verdict::Banned { remaining }) => LimitOutcome::Banned { remaining },
                Some(Verdict::BanStarted { ban, offence }) => {
                    LimitOutcome::BanStarted { ban, offence }
                }
                Some(Verdict::Limited { now }) => LimitOutcome::Limited {
                    retry_after: not_until.wait_time_from(Nanos::new(now)),
                },
                None => LimitOutcome::Limited {
                    retry_after: not_until.wait_time_from(self.gcra.clock().now()),
                },
            },
        }
    }

    /// Lifts a ban and forgets the key's offences and count. Returns whether the key was tracked.
    pub fn forgive(&self, key: &K) -> bool {
        self.store.forget(key)
    }

    /// Number of keys currently tracked (never above max_tracked_keys).
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
            .field("shards", &self.store.shards.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use proptest::prelude::*;

    fn nz(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    fn nzu(n: usize) -> NonZeroUsize {
        NonZeroUsize::new(n).unwrap()
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn limiter<K: Hash + Eq + Clone + Send + Sync + 'static>(
        policy: LimitPolicy,
    ) -> (Limiter<K>, ManualClock) {
        let clock = ManualClock::new();
        (Limiter::new(policy, Arc::new(clock.clone())), clock)
    }

    /// 2 hits per second; 60 s bans doubling up to 300 s.
    fn banning() -> LimitPolicy {
        LimitPolicy::new(nz(2), secs(1))
            .unwrap()
            .with_ban(BanPolicy::new(secs(60), 2.0, secs(300)).unwrap())
            .unwrap()
    }

    fn allowed(hits: u32) -> LimitOutcome {
        LimitOutcome::Allowed { hits }
    }

    fn started(ban: u64, offence: u32) -> LimitOutcome {
        LimitOutcome::BanStarted {
            ban: secs(ban),
            offence,
        }
    }

    fn banned(remaining: Duration) -> LimitOutcome {
        LimitOutcome::Banned { remaining }
    }

    /// Drives `key` over the limit of [`banning`] and returns the outcome of the over-limit hit.
    fn offend(l: &Limiter<u32>, key: u32) -> LimitOutcome {
        assert_eq!(l.check(&key), allowed(1));
        assert_eq!(l.check(&key), allowed(2));
        l.check(&key)
    }

    #[test]
    fn limiter_is_send_sync_debug() {
        fn check<T: Send + Sync + fmt::Debug>() {}
        check::<Limiter<u128>>();
        check::<Limiter<std::net::IpAddr>>();
        let (l, _) = limiter::<u32>(banning());
        assert!(format!("{l:?}").contains("tracked_keys"));
    }

    #[test]
    fn burst_then_limited_then_refill() {
        let (l, clock) = limiter::<u32>(LimitPolicy::new(nz(2), secs(1)).unwrap());
        assert_eq!(l.check(&1), allowed(1));
        assert_eq!(l.check(&1), allowed(2));
        assert_eq!(
            l.check(&1),
            LimitOutcome::Limited {
                retry_after: Duration::from_millis(500)
            }
        );
        clock.advance(Duration::from_millis(200));
        assert_eq!(
            l.check(&1),
            LimitOutcome::Limited {
                retry_after: Duration::from_millis(300)
            }
        );
        // One cell back.
        clock.advance(Duration::from_millis(300));
        assert_eq!(l.check(&1), allowed(2));
        assert!(matches!(l.check(&1), LimitOutcome::Limited { .. }));
        // Everything back.
        clock.advance(secs(1));
        assert_eq!(l.check(&1), allowed(1));
        // Other keys are independent.
        assert_eq!(l.check(&2), allowed(1));
    }

    #[test]
    fn hits_count_up_to_the_burst() {
        let policy = LimitPolicy::new(nz(10), secs(60))
            .unwrap()
            .with_burst(nz(5));
        let (l, clock) = limiter::<&'static str>(policy);
        for n in 1..=5 {
            assert_eq!(l.check(&"k"), allowed(n));
        }
        let LimitOutcome::Limited { retry_after } = l.check(&"k") else {
            panic!("expected Limited")
        };
        assert_eq!(retry_after, secs(6));
        clock.advance(secs(6));
        assert_eq!(l.check(&"k"), allowed(5));
    }

    #[test]
    fn ban_starts_counts_down_and_ends() {
        let (l, clock) = limiter::<u32>(banning());
        assert_eq!(offend(&l, 7), started(60, 1));
        assert_eq!(l.check(&7), banned(secs(60)));
        clock.advance(secs(10));
        assert_eq!(l.check(&7), banned(secs(50)));
        clock.advance(Duration::from_millis(49_999));
        assert_eq!(l.check(&7), banned(Duration::from_millis(1)));
        clock.advance(Duration::from_millis(1));
        assert_eq!(l.check(&7), allowed(1));
    }

    #[test]
    fn bans_escalate_and_cap() {
        let (l, clock) = limiter::<u32>(banning());
        for (ban, offence) in [(60, 1), (120, 2), (240, 3), (300, 4), (300, 5)] {
            assert_eq!(offend(&l, 7), started(ban, offence));
            clock.advance(secs(ban));
        }
    }

    #[test]
    fn offences_are_forgotten_after_max_ban_of_good_behaviour() {
        let (l, clock) = limiter::<u32>(banning());
        // Key 1: comes back just before the memory runs out: escalates.
        // Key 2: comes back exactly when it runs out: first offence again.
        assert_eq!(offend(&l, 1), started(60, 1));
        assert_eq!(offend(&l, 2), started(60, 1));
        clock.advance(secs(60) + secs(300) - Duration::from_nanos(1));
        assert_eq!(offend(&l, 1), started(120, 2));
        clock.advance(Duration::from_nanos(1));
        assert_eq!(offend(&l, 2), started(60, 1));
    }

    #[test]
    fn banned_hits_are_not_counted_and_the_ban_wipes_the_count() {
        let policy = LimitPolicy::new(nz(3), secs(10))
            .unwrap()
            .with_ban(BanPolicy::new(secs(30), 1.0, secs(30)).unwrap())
            .unwrap();
        let (l, clock) = limiter::<u32>(policy);
        for n in 1..=3 {
            assert_eq!(l.check(&9), allowed(n));
        }
        assert_eq!(l.check(&9), started(30, 1));
        for _ in 0..1_000 {
            assert!(matches!(l.check(&9), LimitOutcome::Banned { .. }));
            clock.advance(Duration::from_millis(29));
        }
        // 30 s after the ban started: it is over.
        clock.advance(secs(1));
        // Full burst again: neither the banned hits nor the ones before the ban count.
        for n in 1..=3 {
            assert_eq!(l.check(&9), allowed(n));
        }
        assert_eq!(l.check(&9), started(30, 2));
    }

    #[test]
    fn forgive_lifts_the_ban_and_the_offences() {
        let (l, _clock) = limiter::<u32>(banning());
        assert_eq!(offend(&l, 3), started(60, 1));
        assert!(l.forgive(&3));
        assert!(!l.forgive(&3));
        assert!(!l.forgive(&4));
        assert_eq!(offend(&l, 3), started(60, 1));
    }

    #[test]
    fn sweep_and_forgive_keep_the_other_keys_state() {
        // 1,000 hits an hour: one cell every 3.6 s.
        let (l, clock) = limiter::<u32>(LimitPolicy::new(nz(1_000), secs(3_600)).unwrap());
        for key in 0..300 {
            assert_eq!(l.check(&key), allowed(1));
        }
        clock.advance(secs(2));
        for key in (0..300).step_by(2) {
            assert_eq!(l.check(&key), allowed(2));
        }
        // 4 s in: odd keys are refilled (their cell came back at 3.6 s), even ones are not.
        clock.advance(secs(2));
        assert_eq!(l.sweep(), 150);
        for key in (0..300).step_by(6) {
            assert!(l.forgive(&key));
        }
        assert_eq!(l.tracked_keys(), 100);
        for key in 0..300 {
            let expected = if key % 2 == 1 || key % 6 == 0 { 1 } else { 2 };
            assert_eq!(l.check(&key), allowed(expected), "key {key}");
        }
    }

    #[test]
    fn tracked_keys_never_exceed_the_cap() {
        for max in [1, 2, 3, 15, 16, 17, 100, 1_000, 1_025] {
            let policy = banning().with_max_tracked_keys(nzu(max));
            let (l, clock) = limiter::<u64>(policy);
            for key in 0..(10 * max as u64) {
                l.check(&key);
                if key % 7 == 0 {
                    clock.advance(Duration::from_millis(3));
                }
                assert!(l.tracked_keys() <= max, "max {max}: {}", l.tracked_keys());
            }
            // With every key idle, the store fills up to its cap exactly.
            clock.advance(secs(10));
            for key in 0..(10 * max as u64) {
                l.check(&(key + 1_000_000));
            }
            assert_eq!(l.tracked_keys(), max);
        }
    }

    /// Runs 100,000 one-shot keys with a heavy hitter as every 100th request; 10 µs apart.
    fn flood(l: &Limiter<u64>, clock: &ManualClock, heavy: u64) -> Vec<LimitOutcome> {
        let mut heavy_outcomes = Vec::new();
        for i in 0..100_000u64 {
            if i % 100 == 0 {
                heavy_outcomes.push(l.check(&heavy));
            } else {
                assert_eq!(l.check(&i), allowed(1));
            }
            clock.advance(Duration::from_micros(10));
            if i % 1_000 == 0 {
                assert!(l.tracked_keys() <= 1_000);
            }
        }
        assert!(l.tracked_keys() <= 1_000);
        heavy_outcomes
    }

    #[test]
    fn heavy_hitter_survives_a_flood_and_gets_banned() {
        let policy = LimitPolicy::new(nz(60), secs(60))
            .unwrap()
            .with_ban(BanPolicy::new(secs(600), 2.0, secs(3600)).unwrap())
            .unwrap()
            .with_max_tracked_keys(nzu(1_000));
        let (l, clock) = limiter::<u64>(policy);
        let heavy = u64::MAX;
        let outcomes = flood(&l, &clock, heavy);
        // 60 allowed (the 61st hit comes 60 ms in, well inside the window), then one ban.
        assert!(outcomes[..60]
            .iter()
            .enumerate()
            .all(|(i, o)| *o == allowed(i as u32 + 1)));
        assert_eq!(outcomes[60], started(600, 1));
        assert!(outcomes[61..]
            .iter()
            .all(|o| matches!(o, LimitOutcome::Banned { .. })));
        assert!(matches!(l.check(&heavy), LimitOutcome::Banned { .. }));
    }

    #[test]
    fn heavy_hitter_survives_a_flood_and_stays_limited() {
        let policy = LimitPolicy::new(nz(60), secs(60))
            .unwrap()
            .with_max_tracked_keys(nzu(1_000));
        let (l, clock) = limiter::<u64>(policy);
        let outcomes = flood(&l, &clock, u64::MAX);
        let allowed_hits = outcomes
            .iter()
            .filter(|o| matches!(o, LimitOutcome::Allowed { .. }))
            .count();
        // 60 at once; the flood's last heavy hit comes 999 ms in, just before a cell refills.
        assert_eq!(allowed_hits, 60);
        assert!(outcomes[60..]
            .iter()
            .all(|o| matches!(o, LimitOutcome::Limited { .. })));
        // 1 s in: one cell back, so 60 of 60 in use again.
        assert_eq!(l.check(&u64::MAX), allowed(60));
        assert_eq!(
            l.check(&u64::MAX),
            LimitOutcome::Limited {
                retry_after: secs(1)
            }
        );
    }

    #[test]
    fn banned_keys_survive_a_flood() {
        let policy = banning().with_max_tracked_keys(nzu(1_024));
        let (l, clock) = limiter::<u64>(policy);
        let bad = [u64::MAX, u64::MAX - 1, u64::MAX - 2, u64::MAX - 3];
        for key in bad {
            l.check(&key);
            l.check(&key);
            assert_eq!(l.check(&key), started(60, 1));
        }
        for key in 0..20_000u64 {
            l.check(&key);
            clock.advance(Duration::from_micros(100));
        }
        for key in bad {
            assert!(matches!(l.check(&key), LimitOutcome::Banned { .. }));
        }
    }

    #[test]
    fn sweep_drops_idle_keys_and_keeps_banned_ones() {
        let (l, clock) = limiter::<u32>(banning());
        l.check(&1);
        l.check(&2);
        assert_eq!(offend(&l, 3), started(60, 1));
        assert_eq!(l.sweep(), 0); // everything still carries information
        assert_eq!(l.tracked_keys(), 3);
        clock.advance(secs(1));
        assert_eq!(l.sweep(), 2);
        assert_eq!(l.tracked_keys(), 1);
        assert!(matches!(l.check(&3), LimitOutcome::Banned { .. }));
        // The ban ends after 60 s, the offence is remembered for 300 s more.
        clock.advance(secs(59 + 300) - Duration::from_nanos(1));
        assert_eq!(l.sweep(), 0);
        clock.advance(Duration::from_nanos(1));
        assert_eq!(l.sweep(), 1);
        assert_eq!(l.tracked_keys(), 0);
    }

    #[test]
    fn sweeper_thread_sweeps_and_exits_on_drop() {
        let clock = ManualClock::new();
        let l = Limiter::<u32>::with_sweep_every(
            banning(),
            Arc::new(clock.clone()),
            Duration::from_millis(1),
        );
        for key in 0..100 {
            l.check(&key);
        }
        clock.advance(secs(1));
        // Wait (without sleeping) for the thread's next round; give up after 10 s of real time.
        let deadline = std::time::Instant::now() + secs(10);
        while l.tracked_keys() > 0 && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert_eq!(l.tracked_keys(), 0);

        let store = Arc::clone(&l.store);
        assert_eq!(Arc::weak_count(&store), 1); // the sweeper's
        drop(l);
        assert_eq!(Arc::weak_count(&store), 0);
        assert_eq!(Arc::strong_count(&store), 1);
    }

    #[test]
    fn dropping_many_limiters_leaves_no_threads() {
        let stores: Vec<_> = (0..50)
            .map(|_| {
                let (l, _) = limiter::<u32>(banning()); // 10 s sweep period
                let store = Arc::clone(&l.store);
                assert_eq!(Arc::weak_count(&store), 1);
                store
            })
            .collect();
        assert!(stores.iter().all(|s| Arc::weak_count(s) == 0));
    }

    #[test]
    fn four_threads_never_get_more_than_the_burst() {
        let policy = LimitPolicy::new(nz(10), secs(1))
            .unwrap()
            .with_burst(nz(25));
        let (l, _frozen) = limiter::<u32>(policy);
        let allowed = std::sync::atomic::AtomicU32::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..5_000 {
                        if let LimitOutcome::Allowed { hits } = l.check(&42) {
                            assert!((1..=25).contains(&hits));
                            allowed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(allowed.into_inner(), 25);
    }

    #[test]
    fn four_threads_ban_exactly_once() {
        let (l, _frozen) = limiter::<u32>(banning());
        let bans = std::sync::atomic::AtomicU32::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..2_000 {
                        if let LimitOutcome::BanStarted { .. } = l.check(&1) {
                            bans.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(bans.into_inner(), 1);
    }

    fn key_of(err: ConfigError) -> String {
        err.key().unwrap().to_owned()
    }

    #[test]
    fn policy_validation_names_the_key() {
        let e = |r: Result<LimitPolicy, ConfigError>| key_of(r.unwrap_err());
        assert_eq!(e(LimitPolicy::new(nz(1), Duration::ZERO)), "limit.per");
        assert_eq!(
            e(LimitPolicy::new(nz(10), Duration::from_nanos(9))),
            "limit.per"
        );
        assert!(LimitPolicy::new(nz(10), Duration::from_nanos(10)).is_ok());
        assert_eq!(e(LimitPolicy::new(nz(1), Duration::MAX)), "limit.per");
        assert_eq!(
            e(LimitPolicy::new(nz(2), secs(60))
                .unwrap()
                .with_ban(BanPolicy::new(secs(60), 2.0, secs(600)).unwrap())),
            "limit.ban_for"
        );

        let b = |r: Result<BanPolicy, ConfigError>| key_of(r.unwrap_err());
        assert_eq!(
            b(BanPolicy::new(Duration::ZERO, 2.0, secs(1))),
            "limit.ban_for"
        );
        for growth in [0.99, -1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(
                b(BanPolicy::new(secs(1), growth, secs(1))),
                "limit.ban_growth"
            );
        }
        assert_eq!(b(BanPolicy::new(secs(2), 1.0, secs(1))), "limit.max_ban");
        assert!(BanPolicy::new(secs(2), 1.0, secs(2)).is_ok());
    }

    #[test]
    fn policy_accessors_and_defaults() {
        let p = LimitPolicy::new(nz(60), secs(60)).unwrap();
        assert_eq!(p.hits(), nz(60));
        assert_eq!(p.per(), secs(60));
        assert_eq!(p.burst(), nz(60));
        assert_eq!(p.ban(), None);
        assert_eq!(p.max_tracked_keys(), nzu(100_000));
        let p = p.with_burst(nz(5)).with_max_tracked_keys(nzu(7));
        assert_eq!((p.burst(), p.max_tracked_keys()), (nz(5), nzu(7)));
        // A burst that would take more than ~146 years to refill is capped.
        let yearly = LimitPolicy::new(nz(1), secs(365 * 86_400))
            .unwrap()
            .with_burst(nz(u32::MAX));
        assert!(yearly.burst().get() < 200 && yearly.burst().get() > 100);
        let (l, _) = limiter::<u8>(yearly.clone());
        for n in 1..=yearly.burst().get() {
            assert_eq!(l.check(&0), allowed(n));
        }
        assert!(matches!(l.check(&0), LimitOutcome::Limited { .. }));
    }

    #[test]
    fn ban_lengths() {
        let ban = BanPolicy::new(secs(600), 2.0, secs(3600)).unwrap();
        assert_eq!(ban.ban_length(0), secs(600));
        assert_eq!(ban.ban_length(1), secs(600));
        assert_eq!(ban.ban_length(2), secs(1200));
        assert_eq!(ban.ban_length(3), secs(2400));
        assert_eq!(ban.ban_length(4), secs(3600));
        assert_eq!(ban.ban_length(u32::MAX), secs(3600));
        let flat = BanPolicy::new(secs(600), 1.0, secs(3600)).unwrap();
        assert_eq!(flat.ban_length(u32::MAX), secs(600));
        let huge = BanPolicy::new(Duration::MAX, 3.0, Duration::MAX).unwrap();
        assert_eq!(huge.ban_length(2), Duration::MAX);
    }

    #[test]
    fn huge_bans_saturate() {
        let policy = LimitPolicy::new(nz(1), secs(1))
            .unwrap()
            .with_ban(BanPolicy::new(Duration::MAX, 2.0, Duration::MAX).unwrap())
            .unwrap();
        let (l, clock) = limiter::<u8>(policy);
        assert_eq!(l.check(&0), allowed(1));
        assert_eq!(
            l.check(&0),
            LimitOutcome::BanStarted {
                ban: Duration::MAX,
                offence: 1
            }
        );
        clock.advance(secs(100 * 365 * 86_400));
        assert!(matches!(l.check(&0), LimitOutcome::Banned { .. }));
        assert_eq!(l.sweep(), 0);
    }

    #[test]
    fn shard_counts() {
        assert_eq!(shard_count(1), 1);
        assert_eq!(shard_count(31), 1);
        assert_eq!(shard_count(32), 2);
        assert_eq!(shard_count(1_000), 32);
        assert_eq!(shard_count(1_024), 64);
        assert_eq!(shard_count(usize::MAX), 64);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn prop_store_stays_within_its_cap(
            max in 1usize..300,
            keys in proptest::collection::vec((0u16..2_000, 0u64..5_000), 1..2_000),
        ) {
            let policy = banning().with_max_tracked_keys(nzu(max));
            let (l, clock) = limiter::<u16>(policy);
            for (key, step_ms) in keys {
                l.check(&key);
                clock.advance(Duration::from_millis(step_ms));
                prop_assert!(l.tracked_keys() <= max);
            }
            l.sweep();
            prop_assert!(l.tracked_keys() <= max);
        }

        /// Checks, forgives and sweeps against a plain map (frozen clock, no eviction): the
        /// slab and its index stay consistent through `swap_remove`s.
        #[test]
        fn prop_matches_a_model_without_eviction(
            ops in proptest::collection::vec((0u8..4, 0u16..200), 1..600),
        ) {
            let policy = LimitPolicy::new(nz(1_000), secs(3_600))
                .unwrap()
                .with_max_tracked_keys(nzu(100_000));
            let (l, _frozen) = limiter::<u16>(policy);
            let mut model = std::collections::HashMap::<u16, u32>::new();
            for (op, key) in ops {
                match op {
                    0 | 1 => {
                        let hits = model.entry(key).or_default();
                        *hits += 1;
                        prop_assert_eq!(l.check(&key), allowed(*hits));
                    }
                    2 => prop_assert_eq!(l.forgive(&key), model.remove(&key).is_some()),
                    _ => prop_assert_eq!(l.sweep(), 0),
                }
                prop_assert_eq!(l.tracked_keys(), model.len());
            }
        }

        #[test]
        fn prop_ban_length_grows_to_the_cap(
            ban_ms in 1u64..10_000_000,
            growth in 1.0f64..10.0,
            extra_ms in 0u64..100_000_000,
            offence in 1u32..100,
        ) {
            let ban = BanPolicy::new(
                Duration::from_millis(ban_ms),
                growth,
                Duration::from_millis(ban_ms + extra_ms),
            ).unwrap();
            let this = ban.ban_length(offence);
            let next = ban.ban_length(offence + 1);
            prop_assert!(this >= ban.ban_for() && this <= ban.max_ban());
            prop_assert!(next >= this);
        }
    }
}
