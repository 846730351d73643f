//! The counter/ban store seam, and its in-process implementation.

use std::future::Future;
use std::hash::BuildHasher;
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use super::bounded::Store;
use super::gcra::Gcra;
use super::policy::LimitPolicy;
use super::{spawn_sweeper, LimitOutcome, Subject, DEFAULT_SWEEP_EVERY};
use crate::client_ip::ClientKey;
use crate::clock::Clock;
use crate::store_error::StoreError;
use crate::sync::{lock, Periodic};

/// A limit as a store knows it, handed out by [`CounterStore::register`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LimitSlot(pub u32);

/// Who is banned.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BannedKey {
    /// A client key (an address or network).
    Client(ClientKey),
    /// A user, by id.
    User(String),
    /// A user the store keeps only as a keyed hash of the id ([`MemoryCounterStore`] does, so
    /// that counting a user's request never allocates). Unban it by the id.
    HashedUser(u64),
}

/// An active ban, as listed.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ActiveBan {
    /// The limit's name: `"global"`, or a handler limit's.
    pub limit: Arc<str>,
    /// Who is banned.
    pub key: BannedKey,
    /// When the ban ends (wall clock).
    pub until: SystemTime,
    /// Time left.
    pub remaining: Duration,
    /// Which ban of this key this is (0 for an operator's ban of a key never banned before).
    pub offence: u32,
}

/// What a counter store reports about itself, for monitoring (the `metrics` feature publishes
/// it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CounterStats {
    /// Keys tracked now, over all limits.
    pub tracked_keys: usize,
    /// Keys banned now, over all limits; `None` when the store cannot tell cheaply.
    pub active_bans: Option<usize>,
    /// Keys evicted to make room, ever; `None` when the store does not evict.
    pub evictions: Option<u64>,
    /// How a store shared by several instances syncs with its backend (a Redis store);
    /// `None` for a store that shares nothing.
    pub shared: Option<SharedStats>,
}

/// How a counter store shared by several instances (a Redis store) syncs with its backend,
/// for monitoring: counts since the store started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SharedStats {
    /// Whether the backend answers now (a Redis store: its circuit breaker is closed).
    pub connected: bool,
    /// Round trips to the backend that succeeded.
    pub round_trips: u64,
    /// Round trips that failed or timed out.
    pub failures: u64,
    /// Times the store fell back to this instance's own counts (its breaker opened).
    pub fallbacks: u64,
    /// Hits counted here whose share never reached the backend (it could not be reached).
    pub unshared_hits: u64,
    /// Hits refused because the backend could not be reached and the store fails closed.
    pub refused_closed: u64,
    /// Malformed values met in the backend (treated as missing).
    pub malformed: u64,
}

/// Where counts and bans live: in process ([`MemoryCounterStore`]), or shared by several
/// instances (a Redis backend).
///
/// [`hit`](Self::hit) runs on the request path: it must answer from state it holds, never
/// waiting on I/O (a shared backend syncs in the background). The other methods serve
/// operators and may wait.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use actix_bouncer::clock::SystemClock;
/// use actix_bouncer::limiter::{
///     CounterStore, LimitOutcome, LimitPolicy, MemoryCounterStore, Subject,
/// };
///
/// # actix_web::rt::System::new().block_on(async {
/// let store = MemoryCounterStore::new(100_000.try_into()?, Arc::new(SystemClock::new()));
/// let slot = store.register("login", &LimitPolicy::new(5.try_into()?, Duration::from_secs(60))?);
/// let who = Subject::User("alice");
/// assert_eq!(store.hit(slot, who), LimitOutcome::Allowed { hits: 1 });
/// store.ban(slot, who, Duration::from_secs(600)).await?;
/// assert!(matches!(store.hit(slot, who), LimitOutcome::Banned { .. }));
/// assert_eq!(store.bans().await?.len(), 1);
/// assert!(store.unban(who).await?);
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub trait CounterStore: Send + Sync + 'static {
    /// Makes a limit known; called once per limit (the global one at startup, a handler's on
    /// its first request). The same name and policy again give the same slot.
    fn register(&self, name: &str, policy: &LimitPolicy) -> LimitSlot;

    /// Counts one hit of `subject` against `limit`, or reports its ban. Never waits on I/O.
    fn hit(&self, limit: LimitSlot, subject: Subject<'_>) -> LimitOutcome;

    /// Bans `subject` under `limit` for `length` from now (a ban already running longer is
    /// kept).
    fn ban(
        &self,
        limit: LimitSlot,
        subject: Subject<'_>,
        length: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Lifts the bans of `subject` under every limit and forgets its counts and offences;
    /// whether it was tracked at all.
    fn unban(&self, subject: Subject<'_>) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Every active ban, soonest end first.
    fn bans(&self) -> impl Future<Output = Result<Vec<ActiveBan>, StoreError>> + Send;

    /// Keys tracked now, over all limits.
    fn tracked_keys(&self) -> usize;

    /// Whether the store answers from this instance's own counts alone because the backend
    /// it shares with other instances cannot be reached (a Redis store with its circuit
    /// open). Admin paths with `admin.counters_fail = "closed"` are refused meanwhile. Read on
    /// the request path: it must answer from state it holds. The default: never (a store that
    /// shares nothing cannot lose its sharing).
    fn degraded(&self) -> bool {
        false
    }

    /// Counts for monitoring; never called on the request path. The default reports only
    /// [`tracked_keys`](Self::tracked_keys).
    fn stats(&self) -> CounterStats {
        CounterStats {
            tracked_keys: self.tracked_keys(),
            ..CounterStats::default()
        }
    }
}

/// A key of the memory store: a client key, or a user id hashed with the store's secret seed,
/// as plain integers (24 bytes: with its limit's slot a tracked key fills 64, a cache line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MemKey {
    bits: [u64; 2],
    /// A client key's prefix length and kind, or [`USER`] for a user.
    meta: u16,
}

/// The `meta` of a user key (no client key has it).
const USER: u16 = u16::MAX;

impl MemKey {
    fn client(key: ClientKey) -> Self {
        let (bits, meta) = key.parts();
        MemKey { bits, meta }
    }

    fn user(id: u64) -> Self {
        MemKey {
            bits: [id, 0],
            meta: USER,
        }
    }
}

/// Two words: hashed on every hit.
impl std::hash::Hash for MemKey {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.bits[0].rotate_left(16) ^ u64::from(self.meta));
        state.write_u64(self.bits[1]);
    }
}

/// One registered limit.
struct Registered {
    name: Arc<str>,
    policy: LimitPolicy,
    gcra: Gcra<MemKey>,
}

/// The in-process [`CounterStore`]: one bounded, sharded store for every limit (see the
/// [module docs](super)), swept by one background thread. Cheap to clone.
#[derive(Clone)]
pub struct MemoryCounterStore {
    inner: Arc<Inner>,
}

/// Most limits one store holds (the global one and one per handler limit).
const MAX_LIMITS: usize = 256;

struct Inner {
    store: Arc<Store<(u32, MemKey)>>,
    /// By slot, each set once: a hit finds its limit with one atomic load, no lock.
    limits: Box<[OnceLock<Registered>]>,
    /// Slots handed out; taken and set only under the lock.
    registering: Mutex<usize>,
    /// Keys user ids, so that counting a user never allocates and ids cannot be aimed at
    /// one another's counters.
    users: foldhash::fast::RandomState,
    clock: Arc<dyn Clock>,
    _sweeper: Option<Periodic>,
}

impl MemoryCounterStore {
    /// A store of at most `max_tracked_keys` keys over all its limits, reading time from
    /// `clock`; starts the sweeper thread.
    pub fn new(max_tracked_keys: NonZeroUsize, clock: Arc<dyn Clock>) -> Self {
        let store = Arc::new(Store::new(max_tracked_keys, Arc::clone(&clock)));
        MemoryCounterStore {
            inner: Arc::new(Inner {
                _sweeper: spawn_sweeper(&store, DEFAULT_SWEEP_EVERY),
                store,
                limits: (0..MAX_LIMITS).map(|_| OnceLock::new()).collect(),
                registering: Mutex::new(0),
                users: foldhash::fast::RandomState::default(),
                clock,
            }),
        }
    }

    /// The limits registered so far, with their slots.
    fn registered(&self) -> impl Iterator<Item = (u32, &Registered)> {
        let inner = &self.inner;
        inner
            .limits
            .iter()
            .map_while(OnceLock::get)
            .enumerate()
            .map(|(i, r)| (i as u32, r))
    }

    #[inline]
    fn key(&self, subject: Subject<'_>) -> MemKey {
        match subject {
            Subject::Client(key) => MemKey::client(key),
            Subject::User(user) => MemKey::user(self.inner.users.hash_one(user)),
        }
    }

    /// Drops keys that no longer carry information; returns how many. The background thread
    /// does this every 10 seconds.
    pub fn sweep(&self) -> usize {
        self.inner.store.sweep()
    }
}

impl std::fmt::Debug for MemoryCounterStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryCounterStore")
            .field("limits", &self.registered().count())
            .field("tracked_keys", &self.inner.store.len())
            .finish_non_exhaustive()
    }
}

impl CounterStore for MemoryCounterStore {
    fn register(&self, name: &str, policy: &LimitPolicy) -> LimitSlot {
        let mut next = lock(&self.inner.registering);
        if let Some((slot, _)) = self
            .registered()
            .find(|(_, r)| &*r.name == name && r.policy == *policy)
        {
            return LimitSlot(slot);
        }
        let slot = *next as u32;
        let Some(cell) = self.inner.limits.get(*next) else {
            tracing::error!(
                target: "actix_bouncer",
                limit = name,
                "more than {MAX_LIMITS} limits in one counter store: this one counts nothing"
            );
            return LimitSlot(u32::MAX);
        };
        let gcra = Gcra::new(
            policy,
            Arc::clone(&self.inner.store),
            slot,
            Arc::clone(&self.inner.clock),
        );
        // Set under the lock, once: slot `next` is still empty.
        let _ = cell.set(Registered {
            name: Arc::from(name),
            policy: policy.clone(),
            gcra,
        });
        *next += 1;
        LimitSlot(slot)
    }

    #[inline]
    fn hit(&self, limit: LimitSlot, subject: Subject<'_>) -> LimitOutcome {
        let key = self.key(subject);
        match self
            .inner
            .limits
            .get(limit.0 as usize)
            .and_then(OnceLock::get)
        {
            Some(registered) => registered.gcra.check(&key),
            // A slot this store never handed out: nothing to count against.
            None => LimitOutcome::Allowed { hits: 0 },
        }
    }

    async fn ban(
        &self,
        limit: LimitSlot,
        subject: Subject<'_>,
        length: Duration,
    ) -> Result<(), StoreError> {
        let key = self.key(subject);
        let registered = self
            .inner
            .limits
            .get(limit.0 as usize)
            .and_then(OnceLock::get)
            .ok_or_else(|| StoreError::new(format!("no limit in slot {}", limit.0)))?;
        self.inner
            .store
            .ban(&(limit.0, key), registered.gcra.params(), length);
        Ok(())
    }

    async fn unban(&self, subject: Subject<'_>) -> Result<bool, StoreError> {
        let key = self.key(subject);
        Ok(self.registered().fold(false, |found, (slot, _)| {
            self.inner.store.forget(&(slot, key)) | found
        }))
    }

    async fn bans(&self) -> Result<Vec<ActiveBan>, StoreError> {
        let wall = self.inner.clock.wall();
        let mut bans: Vec<ActiveBan> = self
            .inner
            .store
            .banned()
            .into_iter()
            .map(|entry| {
                let (slot, key) = entry.key;
                ActiveBan {
                    limit: self
                        .inner
                        .limits
                        .get(slot as usize)
                        .and_then(OnceLock::get)
                        .map_or_else(|| Arc::from("?"), |r| Arc::clone(&r.name)),
                    key: match ClientKey::from_parts(key.bits, key.meta) {
                        Some(client) => BannedKey::Client(client),
                        None => BannedKey::HashedUser(key.bits[0]),
                    },
                    until: wall + entry.remaining,
                    remaining: entry.remaining,
                    offence: entry.offences,
                }
            })
            .collect();
        bans.sort_by_key(|ban| ban.remaining);
        Ok(bans)
    }

    fn tracked_keys(&self) -> usize {
        self.inner.store.len()
    }

    /// Tracked keys, banned keys and evictions: each a pass over the shards, taking each
    /// shard's lock in turn (as the sweeper does).
    fn stats(&self) -> CounterStats {
        let store = &self.inner.store;
        CounterStats {
            tracked_keys: store.len(),
            active_bans: Some(store.banned_count()),
            evictions: Some(store.evictions()),
            shared: None,
        }
    }
}

/// A boxed future, for calling a [`CounterStore`] through `dyn`.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// [`CounterStore`] in a form that fits behind `dyn` (its `impl Future` methods do not).
pub(crate) trait DynCounterStore: Send + Sync + 'static {
    fn register(&self, name: &str, policy: &LimitPolicy) -> LimitSlot;
    fn hit(&self, limit: LimitSlot, subject: Subject<'_>) -> LimitOutcome;
    fn ban<'a>(
        &'a self,
        limit: LimitSlot,
        subject: Subject<'a>,
        length: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
    fn unban<'a>(&'a self, subject: Subject<'a>) -> BoxFuture<'a, Result<bool, StoreError>>;
    fn bans(&self) -> BoxFuture<'_, Result<Vec<ActiveBan>, StoreError>>;
    fn tracked_keys(&self) -> usize;
    fn degraded(&self) -> bool;
    fn stats(&self) -> CounterStats;
}

impl<S: CounterStore> DynCounterStore for S {
    fn register(&self, name: &str, policy: &LimitPolicy) -> LimitSlot {
        CounterStore::register(self, name, policy)
    }

    #[inline]
    fn hit(&self, limit: LimitSlot, subject: Subject<'_>) -> LimitOutcome {
        CounterStore::hit(self, limit, subject)
    }

    fn ban<'a>(
        &'a self,
        limit: LimitSlot,
        subject: Subject<'a>,
        length: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(CounterStore::ban(self, limit, subject, length))
    }

    fn unban<'a>(&'a self, subject: Subject<'a>) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(CounterStore::unban(self, subject))
    }

    fn bans(&self) -> BoxFuture<'_, Result<Vec<ActiveBan>, StoreError>> {
        Box::pin(CounterStore::bans(self))
    }

    fn tracked_keys(&self) -> usize {
        CounterStore::tracked_keys(self)
    }

    fn degraded(&self) -> bool {
        CounterStore::degraded(self)
    }

    fn stats(&self) -> CounterStats {
        CounterStore::stats(self)
    }
}
