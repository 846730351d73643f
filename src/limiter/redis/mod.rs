//! [`RedisCounterStore`]: counts and bans shared by every instance of an app through Redis,
//! without a round trip per request (feature `redis`).
//!
//! Everything is documented on [`RedisCounterStore`].

mod bans;
mod breaker;
mod script;
mod sync;

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::num::NonZeroUsize;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use super::policy::DEFAULT_MAX_TRACKED_KEYS;
use super::store::{
    ActiveBan, CounterStats, CounterStore, LimitSlot, MemoryCounterStore, SharedStats,
};
use super::{LimitOutcome, LimitPolicy, Subject};
use crate::client_ip::ClientKey;
use crate::clock::{duration_nanos, Clock, SystemClock};
use crate::store_error::StoreError;
use crate::sync::{lock, RuntimeThread};

use self::breaker::Breaker;

/// Default key prefix.
pub const DEFAULT_PREFIX: &str = "bouncer";
/// Default bound of one Redis round trip.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(5);
/// Default interval between two syncs of the pending counts.
pub const DEFAULT_SYNC_EVERY: Duration = Duration::from_millis(10);
/// Default pending hits that make a key due for a sync.
pub const DEFAULT_BATCH_HITS: u32 = 16;
/// Default longest wait of a pending hit.
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_millis(100);

/// Most limits one store holds (as [`MemoryCounterStore`]).
const MAX_LIMITS: usize = 256;
/// Shards of the pending and refusal maps.
const SHARDS: usize = 16;
/// The background thread.
const THREAD: &str = "actix-bouncer-redis";

/// What the store does while Redis cannot be reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailPolicy {
    /// Answer from the local limiter alone: each instance enforces the limit on its own share
    /// of the traffic (the default).
    #[default]
    Open,
    /// Refuse every counted request (`429`, `Retry-After: 1`) until Redis is back: for
    /// deployments where a limit must never be exceeded, such as one guarding admin paths.
    Closed,
}

impl FromStr for FailPolicy {
    type Err = StoreError;

    /// `"open"` or `"closed"`, ignoring ASCII case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("open") {
            Ok(FailPolicy::Open)
        } else if s.eq_ignore_ascii_case("closed") {
            Ok(FailPolicy::Closed)
        } else {
            Err(StoreError::new(r#"expected "open" or "closed""#))
        }
    }
}

/// What a [`RedisCounterStore`] did, since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisStats {
    /// Hits counted (all of them go through the local fast path).
    pub hits: u64,
    /// Round trips to Redis that succeeded.
    pub round_trips: u64,
    /// Commands sent in them (one `EVALSHA` per batch of up to 128 keys, the ban and unban
    /// scripts, `SADD` of new limit names, `PING` while idle after an outage, `SCRIPT LOAD`).
    pub commands: u64,
    /// Round trips that failed or timed out.
    pub failures: u64,
    /// Times the circuit breaker opened.
    pub breaker_opened: u64,
    /// Hits whose shared count was dropped because Redis could not be reached within the
    /// resend window (2 s) (the local limiter still counted them).
    pub dropped_hits: u64,
    /// Batches of counts sent again because a call failed or its reply was lost.
    pub resent_batches: u64,
    /// Of those, the ones Redis had applied already (recognised by their id, not counted
    /// again).
    pub replayed_batches: u64,
    /// Hits refused from the local refusal cache (the shared count was over the limit).
    pub refused_locally: u64,
    /// Hits refused because Redis could not be reached and the policy is
    /// [`FailPolicy::Closed`].
    pub refused_closed: u64,
    /// Malformed values met in Redis (treated as missing).
    pub malformed: u64,
    /// Bans and unbans received from other instances (and this one) through the channel or
    /// a resync.
    pub bans_received: u64,
    /// Whether the breaker is closed now (Redis answers).
    pub connected: bool,
    /// Whether the ban channel is subscribed now (bans made elsewhere arrive).
    pub subscribed: bool,
}

#[derive(Debug, Default)]
struct Counters {
    hits: AtomicU64,
    round_trips: AtomicU64,
    commands: AtomicU64,
    failures: AtomicU64,
    breaker_opened: AtomicU64,
    dropped_hits: AtomicU64,
    resent_batches: AtomicU64,
    replayed_batches: AtomicU64,
    refused_locally: AtomicU64,
    refused_closed: AtomicU64,
    malformed: AtomicU64,
    bans_received: AtomicU64,
    subscribed: std::sync::atomic::AtomicBool,
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

/// Builds a [`RedisCounterStore`]; from [`RedisCounterStore::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RedisCounterStoreBuilder {
    url: String,
    prefix: String,
    timeout: Duration,
    sync_every: Duration,
    batch_hits: u32,
    max_delay: Duration,
    fail: FailPolicy,
    max_tracked_keys: NonZeroUsize,
    clock: Option<Arc<dyn Clock>>,
}

impl RedisCounterStoreBuilder {
    /// The prefix of every key and of the ban channel. Default: `bouncer`. Instances share
    /// counts and bans when they share it (and the database).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The longest one round trip to Redis may take before it counts as a failure. Default:
    /// 5 ms. A call carrying a batch of counts may take 20 µs more per key it carries (up to
    /// 128: 2.56 ms), for the script's work in Redis. Requests never wait for Redis; this
    /// bounds how stale the shared view can get before the breaker opens.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How often pending counts are synced. Default: 10 ms. Longer: fewer Redis operations,
    /// a looser bound (see [`RedisCounterStore`]).
    pub fn sync_every(mut self, every: Duration) -> Self {
        self.sync_every = every;
        self
    }

    /// A key's pending hits are synced at the first round where they are this many (default:
    /// 16), or have waited [`max_delay`](Self::max_delay). 1: every key at every round.
    /// Larger: fewer Redis operations, a looser bound (see [`RedisCounterStore`]).
    pub fn batch_hits(mut self, hits: u32) -> Self {
        self.batch_hits = hits.max(1);
        self
    }

    /// The longest a pending hit waits to be synced. Default: 100 ms.
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// What to do while Redis cannot be reached. Default: [`FailPolicy::Open`].
    pub fn fail(mut self, fail: FailPolicy) -> Self {
        self.fail = fail;
        self
    }

    /// The bound of the local store (and of the keys pending a sync). Default: 100,000.
    pub fn max_tracked_keys(mut self, max: NonZeroUsize) -> Self {
        self.max_tracked_keys = max;
        self
    }

    /// The clock of the local store and of refusals. Default: the system clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Checks the settings and starts the background thread. Does not wait for Redis: until
    /// it answers, the store behaves as during an outage (its fail policy), and it connects as
    /// soon as it can.
    ///
    /// Fails on a URL that is not a Redis URL (the error shows it with its password masked),
    /// a zero `timeout` or `sync_every`, or when the OS refuses a thread.
    pub fn build(self) -> Result<RedisCounterStore, StoreError> {
        let shown = crate::store_url::redact(&self.url);
        let client = ::redis::Client::open(self.url.as_str()).map_err(|e| {
            let mut message = e.to_string();
            for password in crate::store_url::passwords(&self.url) {
                message = message.replace(password, "***");
            }
            StoreError::new(format!("{shown}: {message}"))
        })?;
        if self.timeout.is_zero() {
            return Err(StoreError::new("the timeout must be longer than zero"));
        }
        if self.sync_every.is_zero() {
            return Err(StoreError::new("sync_every must be longer than zero"));
        }
        let clock = self
            .clock
            .unwrap_or_else(|| Arc::new(SystemClock::new()) as Arc<dyn Clock>);
        let pending_cap = (self.max_tracked_keys.get() / SHARDS).max(64);
        let runtime = RuntimeThread::new().map_err(StoreError::new)?;
        let shared = Arc::new(Shared {
            local: MemoryCounterStore::new(self.max_tracked_keys, Arc::clone(&clock)),
            limits: (0..MAX_LIMITS).map(|_| OnceLock::new()).collect(),
            registering: Mutex::new(0),
            users: foldhash::fast::RandomState::default(),
            pending: (0..SHARDS)
                .map(|_| Mutex::new(hashbrown::HashMap::with_hasher(Default::default())))
                .collect(),
            batch_hits: self.batch_hits,
            max_delay_rounds: max_delay_rounds(self.max_delay, self.sync_every),
            round: AtomicU64::new(0),
            pending_cap,
            refused: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            refused_count: AtomicUsize::new(0),
            outbox: Mutex::new(Vec::new()),
            breaker: Breaker::new(),
            fail: self.fail,
            clock,
            keys: Keys::new(&self.prefix),
            timeout: self.timeout,
            counters: Counters::default(),
            handle: runtime.handle(),
            client: client.clone(),
            shown,
            conn: Mutex::new(None),
            started: std::time::Instant::now(),
            instance: instance_id(),
            announced: AtomicUsize::new(0),
            orphans: Mutex::new(Vec::new()),
            rounds: tokio::sync::Mutex::new(sync::Rounds::default()),
        });
        let weak = Arc::downgrade(&shared);
        let every = self.sync_every;
        runtime
            .run(THREAD, move || sync::run(weak, client, every))
            .map_err(StoreError::new)?;
        Ok(RedisCounterStore { shared })
    }
}

/// The key names under one prefix.
#[derive(Debug)]
struct Keys {
    prefix: String,
    channel: String,
}

impl Keys {
    fn new(prefix: &str) -> Self {
        Keys {
            prefix: prefix.to_owned(),
            channel: format!("{prefix}:bans"),
        }
    }

    /// `limit|subject`, the tail of every key of this subject under this limit.
    fn tail(limit: &str, subject: &str) -> String {
        format!("{limit}|{subject}")
    }

    fn state(&self, tail: &str) -> String {
        format!("{}:s:{tail}", self.prefix)
    }

    fn ban(&self, tail: &str) -> String {
        format!("{}:ban:{tail}", self.prefix)
    }

    /// The set of every limit name the instances sharing the prefix have registered.
    fn limits(&self) -> String {
        format!("{}:limits", self.prefix)
    }

    /// The idempotency key of batch `seq` of the store `instance`.
    fn batch(&self, instance: &str, seq: u64) -> String {
        format!("{}:batch:{instance}:{seq}", self.prefix)
    }

    /// The `SCAN` pattern of every ban key (glob characters of the prefix escaped).
    fn ban_pattern(&self) -> String {
        let mut pattern = String::with_capacity(self.prefix.len() + 6);
        for c in self.prefix.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push_str(":ban:*");
        pattern
    }

    /// The `limit|subject` of a ban key.
    fn ban_tail<'a>(&self, key: &'a str) -> Option<&'a str> {
        key.strip_prefix(self.prefix.as_str())?
            .strip_prefix(":ban:")
    }
}

/// A subject as Redis knows it: `c:` and a client key's parts in hex, or `u:` and a user id.
fn subject_tag(subject: Subject<'_>) -> String {
    match subject {
        Subject::Client(key) => {
            let ([high, low], meta) = key.parts();
            format!("c:{high:016x}{low:016x}{meta:04x}")
        }
        Subject::User(id) => format!("u:{id}"),
    }
}

/// A subject read back from Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
enum OwnedSubject {
    Client(ClientKey),
    User(Box<str>),
}

impl OwnedSubject {
    fn of(subject: Subject<'_>) -> Self {
        match subject {
            Subject::Client(key) => OwnedSubject::Client(key),
            Subject::User(id) => OwnedSubject::User(id.into()),
        }
    }

    fn parse(tag: &str) -> Option<Self> {
        if let Some(id) = tag.strip_prefix("u:") {
            return Some(OwnedSubject::User(id.into()));
        }
        let hex = tag.strip_prefix("c:")?;
        if hex.len() != 36 || !hex.is_ascii() {
            return None;
        }
        let high = u64::from_str_radix(&hex[..16], 16).ok()?;
        let low = u64::from_str_radix(&hex[16..32], 16).ok()?;
        let meta = u16::from_str_radix(&hex[32..], 16).ok()?;
        ClientKey::from_parts([high, low], meta).map(OwnedSubject::Client)
    }

    fn as_subject(&self) -> Subject<'_> {
        match self {
            OwnedSubject::Client(key) => Subject::Client(*key),
            OwnedSubject::User(id) => Subject::User(id),
        }
    }
}

/// A subject on the request path: copied, never allocated (a user as a keyed hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum LocalKey {
    Client(ClientKey),
    User(u64),
}

/// Hits of one key waiting for the next sync.
#[derive(Debug)]
struct Pending {
    hits: u32,
    /// The sync round in which its first pending hit came.
    since: u64,
    subject: OwnedSubject,
}

/// Why a key is refused locally, and until when (monotonic ns).
#[derive(Debug, Clone, Copy)]
struct Refusal {
    until: u64,
    /// A ban the shared count started: the next hit reports it as started (once), so that
    /// events and automatic rules see it on this instance.
    started: Option<(Duration, u32)>,
}

/// One registered limit, with its script arguments.
#[derive(Debug)]
struct Registered {
    name: Arc<str>,
    /// Period and tolerance in µs (fractional), ban length and ceiling in ms, growth.
    args: LimitArgs,
}

#[derive(Debug, Clone)]
struct LimitArgs {
    period_us: String,
    tau_us: String,
    ban_for_ms: u64,
    growth: String,
    max_ban_ms: u64,
}

impl LimitArgs {
    fn of(policy: &LimitPolicy) -> Self {
        let per = duration_nanos(policy.per()) as f64;
        let period_ns = per / f64::from(policy.hits().get());
        let tau_ns = policy.tau() as f64;
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1);
        LimitArgs {
            period_us: format!("{:.3}", period_ns / 1_000.0),
            tau_us: format!("{:.3}", tau_ns / 1_000.0),
            ban_for_ms: policy.ban().map_or(0, |b| ms(b.ban_for())),
            growth: format!("{}", policy.ban().map_or(1.0, |b| b.growth())),
            max_ban_ms: policy.ban().map_or(0, |b| ms(b.max_ban())),
        }
    }
}

/// A ban for a limit this store has not registered yet.
#[derive(Debug)]
struct Orphan {
    limit: Box<str>,
    subject: OwnedSubject,
    /// Its end, monotonic ns.
    until: u64,
}

/// Most bans kept for limits not registered yet.
const MAX_ORPHANS: usize = 10_000;

/// A ban this instance started locally, to share.
#[derive(Debug)]
struct Outgoing {
    slot: u32,
    subject: OwnedSubject,
    length: Duration,
}

/// Pending counts of one shard.
type PendingMap = hashbrown::HashMap<(u32, LocalKey), Pending, foldhash::fast::RandomState>;

/// Local refusals of one shard.
type RefusedMap = HashMap<(u32, LocalKey), Refusal>;

/// A random id for one store: 64 bits, so that two stores sharing a Redis never share one
/// in practice.
fn instance_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = foldhash::fast::RandomState::default();
    format!("{:016x}", seed.hash_one((std::process::id(), nanos)))
}

/// `max_delay` in sync rounds (at least one).
fn max_delay_rounds(max_delay: Duration, every: Duration) -> u64 {
    let rounds = max_delay.as_nanos() / every.as_nanos().max(1);
    u64::try_from(rounds).unwrap_or(u64::MAX).max(1)
}

/// What the request path, the syncer and the subscriber share.
struct Shared {
    local: MemoryCounterStore,
    limits: Box<[OnceLock<Registered>]>,
    registering: Mutex<usize>,
    users: foldhash::fast::RandomState,
    pending: Box<[Mutex<PendingMap>]>,
    /// A key is synced once it has this many pending hits…
    batch_hits: u32,
    /// …or has waited this many rounds.
    max_delay_rounds: u64,
    /// Sync rounds so far.
    round: AtomicU64,
    /// Most keys one pending shard holds; more are counted locally only.
    pending_cap: usize,
    refused: Box<[Mutex<RefusedMap>]>,
    /// Entries in `refused`: while zero, a hit skips the lookup.
    refused_count: AtomicUsize,
    outbox: Mutex<Vec<Outgoing>>,
    breaker: Breaker,
    fail: FailPolicy,
    clock: Arc<dyn Clock>,
    keys: Keys,
    timeout: Duration,
    counters: Counters,
    /// The background runtime: operator calls run there, on the store's own connection.
    handle: tokio::runtime::Handle,
    client: ::redis::Client,
    /// The URL as it may be shown.
    shown: String,
    /// The syncer's connection, once made (a `ConnectionManager` reconnects by itself).
    conn: Mutex<Option<::redis::aio::ConnectionManager>>,
    started: std::time::Instant,
    /// This store's random id, in its batches' idempotency keys.
    instance: String,
    /// Limits whose names this store has added to the registry in Redis (`<prefix>:limits`).
    announced: AtomicUsize,
    /// Bans received for limits this store has not registered yet, applied when it does.
    orphans: Mutex<Vec<Orphan>>,
    /// Held through a sync round: [`RedisCounterStore::sync`] returns after any round in
    /// flight, so every hit counted before it is in Redis. Holds the batches not applied yet.
    rounds: tokio::sync::Mutex<sync::Rounds>,
}

impl Shared {
    fn now(&self) -> u64 {
        duration_nanos(self.clock.monotonic())
    }

    /// Real time (ns since the store started), for the breaker's back-off: it paces round
    /// trips to a real server, whatever clock the limits read.
    fn real_now(&self) -> u64 {
        duration_nanos(self.started.elapsed())
    }

    fn registered(&self, slot: u32) -> Option<&Registered> {
        self.limits.get(slot as usize).and_then(OnceLock::get)
    }

    /// Bans `subject` locally under `slot` for `length`, at once (the local store's `ban`
    /// does not wait; should it ever, the key is refused through the refusal cache instead).
    fn ban_now(&self, slot: u32, subject: Subject<'_>, length: Duration) {
        use std::future::Future as _;
        let fut = self.local.ban(LimitSlot(slot), subject, length);
        let mut fut = std::pin::pin!(fut);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        if fut.as_mut().poll(&mut cx).is_pending() {
            self.refuse(
                slot,
                self.local_key(subject),
                Refusal {
                    until: self.now().saturating_add(duration_nanos(length)),
                    started: None,
                },
            );
        }
    }

    /// Keeps a ban for the limit `limit`, not registered here yet, until it is (or the ban
    /// ends); at most [`MAX_ORPHANS`].
    fn keep_orphan(&self, limit: &str, subject: &OwnedSubject, remaining: Duration) {
        let now = self.now();
        let mut orphans = lock(&self.orphans);
        orphans.retain(|o| o.until > now);
        if orphans.len() < MAX_ORPHANS {
            orphans.push(Orphan {
                limit: limit.into(),
                subject: subject.clone(),
                until: now.saturating_add(duration_nanos(remaining)),
            });
        }
    }

    /// Applies the bans kept for `name`, now registered in `slot`.
    fn adopt_orphans(&self, name: &str, slot: u32) {
        let now = self.now();
        let adopted: Vec<Orphan> = {
            let mut orphans = lock(&self.orphans);
            let (mine, rest) = std::mem::take(&mut *orphans)
                .into_iter()
                .partition(|o| &*o.limit == name);
            *orphans = rest;
            mine
        };
        for orphan in adopted.into_iter().filter(|o| o.until > now) {
            self.ban_now(
                slot,
                orphan.subject.as_subject(),
                Duration::from_nanos(orphan.until - now),
            );
        }
    }

    /// Forgets the kept bans of `subject` (an unban).
    fn forgive_orphans(&self, subject: &OwnedSubject) {
        lock(&self.orphans).retain(|o| &o.subject != subject);
    }

    fn slot_of(&self, name: &str) -> Option<u32> {
        self.limits
            .iter()
            .map_while(OnceLock::get)
            .position(|r| &*r.name == name)
            .map(|i| i as u32)
    }

    #[inline]
    fn local_key(&self, subject: Subject<'_>) -> LocalKey {
        match subject {
            Subject::Client(key) => LocalKey::Client(key),
            Subject::User(id) => LocalKey::User(self.users.hash_one(id)),
        }
    }

    #[inline]
    fn shard(&self, slot: u32, key: &LocalKey) -> usize {
        (self.users.hash_one((slot, key)) >> 40) as usize % SHARDS
    }

    /// The local refusal of `key`, if one runs at `now`.
    #[inline]
    fn refusal(&self, slot: u32, key: LocalKey, now: u64) -> Option<LimitOutcome> {
        let mut refused = lock(&self.refused[self.shard(slot, &key)]);
        let refusal = *refused.get(&(slot, key))?;
        if refusal.until <= now || refusal.started.is_some() {
            refused.remove(&(slot, key));
            self.refused_count.fetch_sub(1, Ordering::Relaxed);
        }
        if refusal.until <= now {
            return None;
        }
        bump(&self.counters.refused_locally, 1);
        Some(match refusal.started {
            Some((ban, offence)) => LimitOutcome::BanStarted { ban, offence },
            None => LimitOutcome::Limited {
                retry_after: Duration::from_nanos(refusal.until - now),
            },
        })
    }

    fn refuse(&self, slot: u32, key: LocalKey, refusal: Refusal) {
        let mut refused = lock(&self.refused[self.shard(slot, &key)]);
        if refused.insert((slot, key), refusal).is_none() {
            self.refused_count.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Forgets the local refusals of `key` under every limit.
    fn forgive(&self, key: LocalKey) {
        for slot in 0..self.limits.iter().map_while(OnceLock::get).count() as u32 {
            let mut refused = lock(&self.refused[self.shard(slot, &key)]);
            if refused.remove(&(slot, key)).is_some() {
                self.refused_count.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// Drops refusals that have ended (the syncer does it every round).
    fn sweep_refusals(&self, now: u64) {
        for shard in self.refused.iter() {
            let mut refused = lock(shard);
            let before = refused.len();
            refused.retain(|_, r| r.until > now);
            self.refused_count
                .fetch_sub(before - refused.len(), Ordering::Relaxed);
        }
    }

    /// Adds one hit of `subject` to the pending counts.
    #[inline]
    fn count(&self, slot: u32, key: LocalKey, subject: Subject<'_>) {
        let mut pending = lock(&self.pending[self.shard(slot, &key)]);
        if let Some(p) = pending.get_mut(&(slot, key)) {
            p.hits = p.hits.saturating_add(1);
        } else if pending.len() < self.pending_cap {
            pending.insert(
                (slot, key),
                Pending {
                    hits: 1,
                    since: self.round.load(Ordering::Relaxed),
                    subject: OwnedSubject::of(subject),
                },
            );
        } else {
            bump(&self.counters.dropped_hits, 1);
        }
    }

    /// Takes the pending counts that are due: every one with `all`, else those with
    /// `batch_hits` hits or more, or waiting for `max_delay`.
    fn drain(&self, all: bool) -> Vec<((u32, LocalKey), Pending)> {
        let round = self.round.fetch_add(1, Ordering::Relaxed);
        let mut out = Vec::new();
        for shard in self.pending.iter() {
            let mut shard = lock(shard);
            if all {
                out.extend(shard.drain());
            } else {
                out.extend(shard.extract_if(|_, p| {
                    p.hits >= self.batch_hits
                        || round.saturating_sub(p.since) >= self.max_delay_rounds
                }));
            }
        }
        out
    }

    /// Runs `work` on the store's runtime, bounded by the operator timeout.
    async fn on_runtime<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let limit = self.timeout.max(OPERATOR_TIMEOUT);
        let task = self
            .handle
            .spawn(async move { tokio::time::timeout(limit, work).await });
        match task.await {
            Ok(Ok(done)) => done,
            Ok(Err(_)) => Err(StoreError::new(format!(
                "Redis at {} did not answer within {limit:?}",
                self.shown
            ))),
            Err(e) => Err(StoreError::new(e)),
        }
    }
}

/// The bound of an operator's call (ban, unban, list) to Redis.
const OPERATOR_TIMEOUT: Duration = Duration::from_secs(2);

/// The [`CounterStore`] shared by every instance through Redis (feature `redis`). Cheap to
/// clone; the background thread ends when the last clone is dropped.
///
/// # How it works
///
/// * **Local fast path.** Each instance keeps a [`MemoryCounterStore`] and answers every hit
///   from it, as a lone instance would, plus a local *refusal cache* of keys that the shared
///   count found over their limit. [`CounterStore::hit`] never waits on Redis.
/// * **Batched sync.** Each allowed hit adds one to its key's pending count. A background
///   thread (`actix-bouncer-redis`, a runtime of its own) looks at the pending counts every
///   `sync_every` (10 ms by default) and sends those that are due: a key is due once it has
///   `batch_hits` pending hits (16) or its oldest pending hit has waited `max_delay` (100 ms).
///   The due keys go in batches of up to 128 keys, each batch **one** `EVALSHA` of a GCRA
///   script of this crate (loaded again with `SCRIPT LOAD` when Redis answers `NOSCRIPT`)
///   whose `KEYS` and `ARGV` carry every key of the batch with its pending hits. The script
///   adds each key's hits to its shared GCRA state and answers, key by key, whether it is over
///   its limit: if so, the instance refuses the key locally until the refusal ends (envoy's
///   rate-limit service caches over-limit keys the same way). A round therefore costs one
///   Redis command per 128 due keys, however many keys and hits it carries, and keys over
///   their limit cost nothing. The keys of one call are not in one hash slot: the store needs
///   one Redis (or a primary with replicas), not Redis Cluster.
/// * **Shared bans.** A ban (started by a limit, locally or by the shared count, or by an
///   operator) is stored as `<prefix>:ban:<limit>|<subject>` with a TTL of its length, and
///   published on `<prefix>:bans`. Every instance subscribes and applies bans and unbans to its
///   local store as they arrive (well under 200 ms on a LAN), and on (re)subscribing reads
///   every ban key with `SCAN`, so an instance that starts or reconnects late enforces the bans
///   already running. A ban under a limit this instance has not registered yet (a handler
///   limit it has not used) is kept (up to 10,000) and applied when it registers the limit.
///   An unban deletes the subject's state and ban keys under every limit any instance has
///   registered (each instance adds its limit names to the set `<prefix>:limits`), so it
///   reaches limits the unbanning instance does not have.
/// * **Lost replies are resent, never counted twice.** Every round trip is bounded by
///   `timeout` (5 ms by default). Each batch carries an idempotency id (the store's random
///   id and a sequence number) that the script records (`SET NX PX`, for 10 s) before
///   counting. A batch whose call failed or timed out stays first in line and goes again, as
///   it was, at the next rounds: if Redis had applied it (the reply was lost), the script
///   finds the id and only reads the keys' state ([`RedisStats::replayed_batches`]); if not,
///   it counts it then. A batch that Redis has not taken within 2 s (or when more than 16,384
///   keys wait) is dropped, and its hits stay counted locally only
///   ([`RedisStats::dropped_hits`]).
/// * **Outages.** Three failed round trips in a row open a circuit breaker (`breaker.rs`):
///   while it is open, requests are answered by the local limiter alone (`fail = "open"`, the
///   default) or refused with `429` (`fail = "closed"`), and the pending batches wait for
///   the breaker's probe (the 2-s window above bounds them). Nothing waits, nothing panics,
///   and no request gets a `5xx`. A probe after a back-off (100 ms doubling to 5 s) closes it
///   again and sends what waited; the ban subscription reconnects by itself and reads the ban
///   keys again (resync). [`CounterStore::bans`] lists this instance's own view of the bans
///   while Redis cannot be reached.
///
/// # Accuracy
///
/// With `N` instances and a client spreading its requests over them, the shared count sees
/// every hit an instance accepted once it is synced. Let `a` be the most hits one instance
/// accepts from the client before syncing them and learning the answer: at most
/// `batch_hits` plus the hits of one `sync_every` and one round trip when the client is fast,
/// those of `max_delay + sync_every` and one round trip when it is slow, and never more than
/// the limit's `burst` (every instance also applies the limit locally). Once the shared count
/// is over the limit, each instance refuses the client at its next sync of that key, so over
/// any window the client gets at most
///
/// > **limit + N × a**, with `a ≤ min(burst, max(batch_hits, r × max_delay) + r × (sync_every + RTT))`
///
/// for a client sending `r` requests a second to each instance, where `RTT` is the time a
/// round's calls take (one round trip per 128 due keys, the script's work included). With the
/// defaults and a client sending 100 requests a second to each of 3 instances,
/// `a ≤ 16 + 1 + 1 = 18`: at most 54 over the limit; `batch_hits(1)` and a shorter
/// `max_delay` tighten it at the cost of more work in Redis (not of more commands: the keys of
/// a round share its calls). With a ban policy the overshoot is followed by a ban on every
/// instance. While calls fail, `RTT` grows by the time until a resend succeeds (at most the
/// 2-s resend window), so `a` tends to `burst`; the resent hits are counted when Redis answers
/// again. `tests/redis_store.rs` checks the bound (with every pending hit synced each round,
/// `a` is the hits one instance accepts between two rounds).
///
/// # Clocks
///
/// The shared count and the shared bans use Redis's clock only (the scripts call `TIME`, and
/// ban keys live for their length as a TTL), so clock differences between the app instances
/// do not change any shared result: an instance whose clock is off still adds its hits to the
/// same GCRA, and a ban published by it lasts its length from when Redis recorded it. Each
/// instance measures the time left of a refusal or ban on its own monotonic clock from the
/// moment it learns of it, so a refusal may end later by at most the sync delay (`T`) plus
/// the propagation delay; wall-clock skew plays no part. The `until` of a ban listed by
/// [`CounterStore::bans`] is this instance's wall clock plus the key's TTL.
///
/// # Keys
///
/// Under the prefix (`bouncer` by default): `<prefix>:s:<limit>|<subject>` (a key's GCRA
/// state, a hash), `<prefix>:ban:<limit>|<subject>` (a running ban; its value is the offence
/// count), `<prefix>:batch:<instance>:<sequence>` (a batch of counts applied, for 10 s), the
/// set `<prefix>:limits` (every limit name registered, without a TTL: it holds as many names
/// as the apps have limits) and the channel `<prefix>:bans`. A subject is `c:` and the client
/// key's 36 hex digits, or `u:` and a user id. Every key but the registry has a TTL: a state
/// key lives until its count has fully refilled (or, after a ban, until its offences are
/// forgotten), a ban key until its ban ends. A malformed stored value is treated as missing
/// and counted ([`RedisStats::malformed`]), with a warning.
///
/// ```no_run
/// use std::sync::Arc;
/// use std::time::Duration;
/// use actix_bouncer::clock::SystemClock;
/// use actix_bouncer::limiter::{FailPolicy, RedisCounterStore};
///
/// // Several instances, one Redis: each one's store syncs in the background.
/// let store = RedisCounterStore::builder("redis://127.0.0.1:6379/0")
///     .prefix("shop")
///     .timeout(Duration::from_millis(5))
///     .fail(FailPolicy::Open)
///     .build()?;
/// let bouncer = actix_bouncer::Bouncer::builder().counter_store(store).build()?;
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
///
/// In the TOML file: `[store] counters = "redis://127.0.0.1:6379/0"` (see
/// [`config`](crate::config)).
///
/// ```no_run
/// use std::time::Duration;
/// use actix_bouncer::limiter::{CounterStore, LimitOutcome, LimitPolicy, RedisCounterStore, Subject};
///
/// # actix_web::rt::System::new().block_on(async {
/// let store = RedisCounterStore::builder("redis://127.0.0.1:6379/0").prefix("demo").build()?;
/// let slot = store.register("login", &LimitPolicy::new(5.try_into()?, Duration::from_secs(60))?);
/// // Answered locally: no round trip.
/// assert_eq!(store.hit(slot, Subject::User("alice")), LimitOutcome::Allowed { hits: 1 });
/// // Shared: every instance with the prefix "demo" refuses alice within milliseconds.
/// store.ban(slot, Subject::User("alice"), Duration::from_secs(600)).await?;
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct RedisCounterStore {
    shared: Arc<Shared>,
}

impl RedisCounterStore {
    /// A builder for a store on the Redis at `url` (`redis://[:password@]host[:port][/db]`,
    /// or `rediss://` with TLS support compiled in, or `redis+unix:///path`).
    pub fn builder(url: impl Into<String>) -> RedisCounterStoreBuilder {
        RedisCounterStoreBuilder {
            url: url.into(),
            prefix: DEFAULT_PREFIX.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            sync_every: DEFAULT_SYNC_EVERY,
            batch_hits: DEFAULT_BATCH_HITS,
            max_delay: DEFAULT_MAX_DELAY,
            fail: FailPolicy::Open,
            max_tracked_keys: DEFAULT_MAX_TRACKED_KEYS,
            clock: None,
        }
    }

    /// What the store did since it started: hits, round trips, failures, fallbacks.
    pub fn redis_stats(&self) -> RedisStats {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RedisStats {
            hits: get(&c.hits),
            round_trips: get(&c.round_trips),
            commands: get(&c.commands),
            failures: get(&c.failures),
            breaker_opened: get(&c.breaker_opened),
            dropped_hits: get(&c.dropped_hits),
            resent_batches: get(&c.resent_batches),
            replayed_batches: get(&c.replayed_batches),
            refused_locally: get(&c.refused_locally),
            refused_closed: get(&c.refused_closed),
            malformed: get(&c.malformed),
            bans_received: get(&c.bans_received),
            connected: !self.shared.breaker.is_open(),
            subscribed: c.subscribed.load(Ordering::Relaxed),
        }
    }

    /// Syncs the pending counts now, without waiting for the next round (after the round in
    /// flight, if any): every hit counted before the call is in Redis when it returns. For
    /// tests and for a clean shutdown. Fails when Redis cannot be reached (the counts stay
    /// local).
    pub async fn sync(&self) -> Result<(), StoreError> {
        let weak = Arc::downgrade(&self.shared);
        self.shared
            .on_runtime(async move {
                match weak.upgrade() {
                    Some(shared) => sync::round(&shared, true).await,
                    None => Ok(()),
                }
            })
            .await
    }
}

impl std::fmt::Debug for RedisCounterStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCounterStore")
            .field("url", &self.shared.shown)
            .field("prefix", &self.shared.keys.prefix)
            .field("connected", &!self.shared.breaker.is_open())
            .finish_non_exhaustive()
    }
}

impl CounterStore for RedisCounterStore {
    fn register(&self, name: &str, policy: &LimitPolicy) -> LimitSlot {
        let shared = &self.shared;
        let mut next = lock(&shared.registering);
        // The local store hands out the same slots, in the same order.
        let slot = shared.local.register(name, policy);
        if let Some(cell) = shared.limits.get(slot.0 as usize) {
            if slot.0 as usize == *next {
                let _ = cell.set(Registered {
                    name: Arc::from(name),
                    args: LimitArgs::of(policy),
                });
                *next += 1;
                // Bans another instance made under this limit before this one used it.
                shared.adopt_orphans(name, slot.0);
            }
        }
        slot
    }

    #[inline]
    fn hit(&self, limit: LimitSlot, subject: Subject<'_>) -> LimitOutcome {
        let shared = &*self.shared;
        if shared.registered(limit.0).is_none() {
            return LimitOutcome::Allowed { hits: 0 };
        }
        bump(&shared.counters.hits, 1);
        let key = shared.local_key(subject);
        if shared.refused_count.load(Ordering::Relaxed) > 0 {
            if let Some(refused) = shared.refusal(limit.0, key, shared.now()) {
                return refused;
            }
        }
        if shared.fail == FailPolicy::Closed && shared.breaker.is_open() {
            bump(&shared.counters.refused_closed, 1);
            return LimitOutcome::Limited {
                retry_after: Duration::from_secs(1),
            };
        }
        let outcome = shared.local.hit(limit, subject);
        match outcome {
            LimitOutcome::Allowed { .. } => shared.count(limit.0, key, subject),
            LimitOutcome::BanStarted { ban, .. } => lock(&shared.outbox).push(Outgoing {
                slot: limit.0,
                subject: OwnedSubject::of(subject),
                length: ban,
            }),
            _ => {}
        }
        outcome
    }

    async fn ban(
        &self,
        limit: LimitSlot,
        subject: Subject<'_>,
        length: Duration,
    ) -> Result<(), StoreError> {
        self.shared.local.ban(limit, subject, length).await?;
        let registered = self
            .shared
            .registered(limit.0)
            .ok_or_else(|| StoreError::new(format!("no limit in slot {}", limit.0)))?;
        let tail = Keys::tail(&registered.name, &subject_tag(subject));
        let memory = registered.args.max_ban_ms;
        let weak = Arc::downgrade(&self.shared);
        self.shared
            .on_runtime(async move {
                let Some(shared) = weak.upgrade() else {
                    return Ok(());
                };
                let mut conn = sync::connection(&shared).await?;
                let mut pipe = ::redis::pipe();
                sync::ban_command(&mut pipe, &shared.keys, &tail, length, memory);
                sync::query(&shared, &mut conn, &pipe, 1).await.map(drop)
            })
            .await
    }

    async fn unban(&self, subject: Subject<'_>) -> Result<bool, StoreError> {
        let shared = &self.shared;
        let found = shared.local.unban(subject).await?;
        shared.forgive(shared.local_key(subject));
        shared.forgive_orphans(&OwnedSubject::of(subject));
        let tag = subject_tag(subject);
        let weak = Arc::downgrade(shared);
        let deleted = shared
            .on_runtime(async move {
                let Some(shared) = weak.upgrade() else {
                    return Ok(false);
                };
                let mut conn = sync::connection(&shared).await?;
                // Under every limit any instance registered (the registry), this one's too
                // (announced now if it had not been yet).
                let mut pipe = ::redis::pipe();
                let commands = 1 + usize::from(sync::announce_command(&shared, &mut pipe, 0));
                sync::unban_command(&mut pipe, &shared.keys, &tag);
                let replies = sync::query(&shared, &mut conn, &pipe, commands).await?;
                Ok(matches!(replies.last(), Some(::redis::Value::Int(n)) if *n > 0))
            })
            .await?;
        Ok(found || deleted)
    }

    /// Every ban in Redis. While Redis cannot be reached (the circuit breaker is open, or the
    /// listing fails), this instance's own view instead: the bans it started or learned of, as
    /// [`MemoryCounterStore::bans`] lists them (logged), so that an admin page keeps working
    /// through an outage.
    async fn bans(&self) -> Result<Vec<ActiveBan>, StoreError> {
        if self.shared.breaker.is_open() {
            return self.shared.local.bans().await;
        }
        let weak = Arc::downgrade(&self.shared);
        let wall = self.shared.clock.wall();
        let found = self
            .shared
            .on_runtime(async move {
                match weak.upgrade() {
                    Some(shared) => bans::scan(&shared).await,
                    None => Ok(Vec::new()),
                }
            })
            .await;
        let found = match found {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(
                    target: "actix_bouncer",
                    "cannot list the shared bans ({e}): listing this instance's own view"
                );
                return self.shared.local.bans().await;
            }
        };
        let mut bans: Vec<ActiveBan> = found
            .into_iter()
            .map(|ban| ActiveBan {
                limit: ban.limit,
                key: ban.key,
                until: wall + ban.remaining,
                remaining: ban.remaining,
                offence: ban.offence,
            })
            .collect();
        bans.sort_by_key(|ban| ban.remaining);
        Ok(bans)
    }

    fn tracked_keys(&self) -> usize {
        self.shared.local.tracked_keys()
    }

    /// While the circuit breaker is open.
    fn degraded(&self) -> bool {
        self.shared.breaker.is_open()
    }

    /// The local store's counts, and the sync's ([`RedisStats`] in brief).
    fn stats(&self) -> CounterStats {
        let redis = self.redis_stats();
        CounterStats {
            shared: Some(SharedStats {
                connected: redis.connected,
                round_trips: redis.round_trips,
                failures: redis.failures,
                fallbacks: redis.breaker_opened,
                unshared_hits: redis.dropped_hits,
                refused_closed: redis.refused_closed,
                malformed: redis.malformed,
            }),
            ..self.shared.local.stats()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    #[test]
    fn subjects_round_trip_through_their_tags() {
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        for subject in [
            Subject::Client(ClientKey::unknown(Some(ip))),
            Subject::Client(ClientKey::unknown(None)),
            Subject::User("alice|with:odd chars"),
        ] {
            let parsed = OwnedSubject::parse(&subject_tag(subject)).unwrap();
            assert_eq!(parsed.as_subject(), subject);
        }
        for bad in [
            "",
            "c:",
            "c:zz",
            "x:1",
            "c:0000000000000000000000000000000000ff",
        ] {
            assert_eq!(OwnedSubject::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn ban_keys_parse_back_and_the_pattern_escapes_globs() {
        let keys = Keys::new("a*b");
        let tail = Keys::tail("global", "u:bob");
        assert_eq!(keys.ban(&tail), "a*b:ban:global|u:bob");
        assert_eq!(keys.ban_tail(&keys.ban(&tail)), Some("global|u:bob"));
        assert_eq!(keys.ban_tail("other:ban:x"), None);
        assert_eq!(keys.ban_pattern(), r"a\*b:ban:*");
    }

    #[test]
    fn fail_policies_parse() {
        assert_eq!("open".parse::<FailPolicy>().unwrap(), FailPolicy::Open);
        assert_eq!("Closed".parse::<FailPolicy>().unwrap(), FailPolicy::Closed);
        assert!("maybe".parse::<FailPolicy>().is_err());
    }
}
