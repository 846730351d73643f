//! The syncer: every `sync_every`, sends the pending counts (and the bans started locally) to
//! Redis, each batch of up to [`MAX_KEYS`] keys in one call of the batched GCRA script, and
//! turns the answers into local refusals and bans.
//!
//! Each batch carries an idempotency id (this instance's random id and a sequence number) that
//! the script records for [`BATCH_TTL`] before counting. A batch whose call failed or whose
//! reply was lost (a timeout) is sent again as it was, same id and same counts, at the next
//! rounds (before any newer batch), for up to [`RESEND_FOR`]: if Redis had applied it, the
//! script sees the id and counts nothing again; if not, it counts it now. So no hit is counted
//! twice, and none is lost unless Redis stays unreachable for longer than [`RESEND_FOR`] (or
//! more than [`MAX_RESEND_KEYS`] keys wait), when the oldest batches are dropped and counted in
//! `dropped_hits`.

use std::collections::VecDeque;
use std::sync::{Arc, LazyLock, Weak};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Pipeline, Script, Value};

use super::super::store::CounterStore as _;
use super::breaker::Tripped;
use super::script::{self, parse_batch};
use super::{bans, bump, Keys, LimitArgs, LocalKey, OwnedSubject, Pending, Refusal, Shared};
use crate::store_error::StoreError;
use crate::sync::lock;

/// Most keys in one call of the batched script (one Redis command). Redis spends some 15 µs
/// of script time per key (measured on a loaded 2-core machine): 128 keys keep a call near
/// 2 ms.
pub(super) const MAX_KEYS: usize = 128;
/// What a batch call may take beyond `timeout`, per key: the script's work in Redis.
const PER_KEY: Duration = Duration::from_micros(20);
/// How long Redis remembers that a batch was applied (its idempotency key's TTL).
pub(super) const BATCH_TTL: Duration = Duration::from_secs(10);
/// How long a batch that could not be sent, or whose reply was lost, is sent again; well under
/// [`BATCH_TTL`], so that a resend never meets an expired id.
pub(super) const RESEND_FOR: Duration = Duration::from_secs(2);
/// Most keys waiting to be sent again; beyond it the oldest batches are dropped.
pub(super) const MAX_RESEND_KEYS: usize = 16_384;
/// The longest wait for a new connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

static GCRA_BATCH: LazyLock<Script> = LazyLock::new(|| Script::new(script::GCRA_BATCH));
static BAN: LazyLock<Script> = LazyLock::new(|| Script::new(script::BAN));
static UNBAN: LazyLock<Script> = LazyLock::new(|| Script::new(script::UNBAN));

/// The background thread's main task: the ban subscriber, and a sync round every `every`
/// until the store is dropped.
pub(super) async fn run(weak: Weak<Shared>, client: ::redis::Client, every: Duration) {
    tokio::spawn(bans::listen(weak.clone(), client));
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(shared) = weak.upgrade() else {
            return;
        };
        // Failures are logged and counted where they happen.
        let _ = round(&shared, false).await;
    }
}

/// One key's pending hits in a batch.
#[derive(Debug)]
struct Entry {
    slot: u32,
    key: LocalKey,
    subject: OwnedSubject,
    hits: u32,
    /// Its limit's index in the batch's table (from 1, as the script reads it).
    limit: usize,
    /// `limit|subject`.
    tail: String,
}

/// The counts of up to [`MAX_KEYS`] keys, sent in one call with one idempotency id.
#[derive(Debug)]
pub(super) struct Batch {
    seq: u64,
    /// The limits of its keys, in the order of the script's table.
    limits: Vec<(u32, LimitArgs)>,
    entries: Vec<Entry>,
    /// When it was made (real ns since the store started).
    made: u64,
    /// Calls tried so far.
    attempts: u32,
}

impl Batch {
    fn hits(&self) -> u64 {
        self.entries.iter().map(|e| u64::from(e.hits)).sum()
    }
}

/// What the syncer keeps from one round to the next (under the round lock).
#[derive(Debug, Default)]
pub(super) struct Rounds {
    /// Batches not applied yet, oldest first: made this round, or failed before.
    unsent: VecDeque<Batch>,
    /// Keys in `unsent`.
    unsent_keys: usize,
    next_seq: u64,
}

impl Rounds {
    /// Cuts `drained` into batches of up to [`MAX_KEYS`] keys, queued after the older ones.
    fn queue(&mut self, shared: &Shared, drained: Vec<((u32, LocalKey), Pending)>, now: u64) {
        let mut drained = drained.into_iter().peekable();
        while drained.peek().is_some() {
            let mut batch = Batch {
                seq: self.next_seq,
                limits: Vec::new(),
                entries: Vec::with_capacity(drained.len().min(MAX_KEYS)),
                made: now,
                attempts: 0,
            };
            self.next_seq += 1;
            for ((slot, key), pending) in drained.by_ref().take(MAX_KEYS) {
                let Some(registered) = shared.registered(slot) else {
                    continue;
                };
                let limit = match batch.limits.iter().position(|(s, _)| *s == slot) {
                    Some(i) => i + 1,
                    None => {
                        batch.limits.push((slot, registered.args.clone()));
                        batch.limits.len()
                    }
                };
                let tail = Keys::tail(&registered.name, &subject_of(&pending.subject));
                batch.entries.push(Entry {
                    slot,
                    key,
                    subject: pending.subject,
                    hits: pending.hits,
                    limit,
                    tail,
                });
            }
            if !batch.entries.is_empty() {
                self.unsent_keys += batch.entries.len();
                self.unsent.push_back(batch);
            }
        }
    }

    /// Drops the batches that waited longer than [`RESEND_FOR`], and the oldest beyond
    /// [`MAX_RESEND_KEYS`]; their hits stay counted locally only.
    fn expire(&mut self, shared: &Shared, now: u64) {
        let window = crate::clock::duration_nanos(RESEND_FOR);
        let mut dropped = 0u64;
        while let Some(oldest) = self.unsent.front() {
            if now.saturating_sub(oldest.made) < window && self.unsent_keys <= MAX_RESEND_KEYS {
                break;
            }
            if let Some(batch) = self.unsent.pop_front() {
                self.unsent_keys -= batch.entries.len();
                dropped += batch.hits();
            }
        }
        if dropped > 0 {
            bump(&shared.counters.dropped_hits, dropped);
            tracing::warn!(
                target: "actix_bouncer",
                url = %shared.shown,
                hits = dropped,
                "Redis did not take these counts in time: they stay counted on this instance only"
            );
        }
    }
}

/// One sync round: sends every locally started ban, then every batch not applied yet (those
/// that failed before first, then the counts that are due now).
pub(super) async fn round(shared: &Arc<Shared>, all: bool) -> Result<(), StoreError> {
    let mut rounds = shared.rounds.lock().await;
    let now = shared.now();
    if shared
        .refused_count
        .load(std::sync::atomic::Ordering::Relaxed)
        > 0
    {
        shared.sweep_refusals(now);
    }
    let real = shared.real_now();
    let drained = shared.drain(all);
    rounds.queue(shared, drained, real);
    rounds.expire(shared, real);
    let outbox = std::mem::take(&mut *lock(&shared.outbox));
    let known = shared
        .limits
        .iter()
        .map_while(std::sync::OnceLock::get)
        .count();
    let announced = shared.announced.load(std::sync::atomic::Ordering::Relaxed);
    let idle = rounds.unsent.is_empty() && outbox.is_empty() && known <= announced;
    if idle && !shared.breaker.is_open() {
        return Ok(());
    }
    if !shared.breaker.may_try(real) {
        // The batches wait for the probe (or expire); a ban made meanwhile is local only.
        return Err(StoreError::new("Redis is unreachable (circuit open)"));
    }
    let result = async {
        let mut conn = connection(shared).await?;
        if idle {
            let mut pipe = ::redis::pipe();
            pipe.cmd("PING");
            query(shared, &mut conn, &pipe, 1).await?;
        }
        if known > announced {
            let mut pipe = ::redis::pipe();
            if announce_command(shared, &mut pipe, announced) {
                query(shared, &mut conn, &pipe, 1).await?;
            }
            shared
                .announced
                .fetch_max(known, std::sync::atomic::Ordering::Relaxed);
        }
        if !outbox.is_empty() {
            let mut pipe = ::redis::pipe();
            for ban in &outbox {
                let Some(registered) = shared.registered(ban.slot) else {
                    continue;
                };
                let tail = Keys::tail(&registered.name, &subject_of(&ban.subject));
                ban_command(
                    &mut pipe,
                    &shared.keys,
                    &tail,
                    ban.length,
                    registered.args.max_ban_ms,
                );
            }
            query(shared, &mut conn, &pipe, outbox.len()).await?;
        }
        while let Some(batch) = rounds.unsent.front_mut() {
            batch.attempts += 1;
            if batch.attempts > 1 {
                bump(&shared.counters.resent_batches, 1);
            }
            let pipe = batch_command(shared, batch);
            let within = shared.timeout + PER_KEY * batch.entries.len() as u32;
            // On failure the batch stays first in line, to go again as it is.
            let replies = query_within(shared, &mut conn, &pipe, 1, within).await?;
            if let Some(batch) = rounds.unsent.pop_front() {
                rounds.unsent_keys -= batch.entries.len();
                apply(shared, &batch, replies.first()).await;
            }
        }
        Ok(())
    }
    .await;
    match &result {
        Ok(()) => {
            if shared.breaker.success() {
                // Redis may have restarted empty: name the limits to it again.
                shared
                    .announced
                    .store(0, std::sync::atomic::Ordering::Relaxed);
                tracing::info!(
                    target: "actix_bouncer",
                    url = %shared.shown,
                    "Redis answers: counts and bans are shared again"
                );
            }
        }
        Err(e) => failed(shared, shared.real_now(), e),
    }
    result
}

/// A failed round trip: counts it and feeds the breaker.
fn failed(shared: &Shared, now: u64, error: &StoreError) {
    bump(&shared.counters.failures, 1);
    let was_open = shared.breaker.is_open();
    if let Tripped::Open(backoff) = shared.breaker.failure(now) {
        if !was_open {
            bump(&shared.counters.breaker_opened, 1);
            tracing::warn!(
                target: "actix_bouncer",
                url = %shared.shown,
                fail = ?shared.fail,
                retry_in = ?backoff,
                "Redis unreachable ({error}): answering from the local limiter until it is back"
            );
        }
    }
}

/// The store's connection, made on first use (a `ConnectionManager` reconnects by itself).
pub(super) async fn connection(shared: &Shared) -> Result<ConnectionManager, StoreError> {
    if let Some(conn) = lock(&shared.conn).clone() {
        return Ok(conn);
    }
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(shared.timeout.max(OPERATOR_RESPONSE)))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(500));
    let conn = tokio::time::timeout(
        CONNECT_TIMEOUT,
        ConnectionManager::new_with_config(shared.client.clone(), config),
    )
    .await
    .map_err(|_| StoreError::new(format!("no connection within {CONNECT_TIMEOUT:?}")))?
    .map_err(|e| redis_error(shared, e))?;
    *lock(&shared.conn) = Some(conn.clone());
    Ok(conn)
}

/// The connection's own bound on a reply: the operator calls' (the sync's is tighter, and
/// applied around each round trip).
const OPERATOR_RESPONSE: Duration = Duration::from_secs(2);

/// A Redis error as a store error, with any password of the URL masked.
pub(super) fn redis_error(shared: &Shared, error: ::redis::RedisError) -> StoreError {
    StoreError::new(format!("Redis at {}: {error}", shared.shown))
}

/// Sends `pipe` (`commands` long) within the timeout; loads the scripts and sends it again
/// once when Redis does not know them (`NOSCRIPT`). Replies may hold per-command errors.
pub(super) async fn query(
    shared: &Shared,
    conn: &mut ConnectionManager,
    pipe: &Pipeline,
    commands: usize,
) -> Result<Vec<Value>, StoreError> {
    query_within(shared, conn, pipe, commands, shared.timeout).await
}

/// [`query`] with a bound of its own (a batch call: the timeout and the script's work).
async fn query_within(
    shared: &Shared,
    conn: &mut ConnectionManager,
    pipe: &Pipeline,
    commands: usize,
    within: Duration,
) -> Result<Vec<Value>, StoreError> {
    let mut pipe = pipe.clone();
    pipe.ignore_errors();
    for attempt in 0..2 {
        let replies: Vec<Value> = tokio::time::timeout(within, pipe.query_async(conn))
            .await
            .map_err(|_| {
                StoreError::new(format!(
                    "Redis at {} did not answer within {within:?}",
                    shared.shown
                ))
            })?
            .map_err(|e| redis_error(shared, e))?;
        bump(&shared.counters.round_trips, 1);
        bump(&shared.counters.commands, commands as u64);
        let noscript = replies
            .iter()
            .any(|v| matches!(v, Value::ServerError(e) if e.code() == "NOSCRIPT"));
        if !noscript || attempt == 1 {
            return Ok(replies);
        }
        let mut load = ::redis::pipe();
        load.cmd("SCRIPT")
            .arg("LOAD")
            .arg(script::GCRA_BATCH)
            .cmd("SCRIPT")
            .arg("LOAD")
            .arg(script::BAN)
            .cmd("SCRIPT")
            .arg("LOAD")
            .arg(script::UNBAN);
        tokio::time::timeout(
            shared.timeout.max(Duration::from_millis(100)),
            load.query_async::<Vec<String>>(conn),
        )
        .await
        .map_err(|_| StoreError::new("SCRIPT LOAD timed out"))?
        .map_err(|e| redis_error(shared, e))?;
        bump(&shared.counters.round_trips, 1);
        bump(&shared.counters.commands, 3);
    }
    Err(StoreError::new("unreachable: two attempts at most"))
}

/// The `EVALSHA` of the batched GCRA script for `batch` (see [`script::GCRA_BATCH`]).
fn batch_command(shared: &Shared, batch: &Batch) -> Pipeline {
    let mut pipe = ::redis::pipe();
    let cmd = pipe
        .cmd("EVALSHA")
        .arg(GCRA_BATCH.get_hash())
        .arg(1 + 2 * batch.entries.len())
        .arg(shared.keys.batch(&shared.instance, batch.seq));
    for entry in &batch.entries {
        cmd.arg(shared.keys.state(&entry.tail))
            .arg(shared.keys.ban(&entry.tail));
    }
    let ttl = u64::try_from(BATCH_TTL.as_millis()).unwrap_or(u64::MAX);
    cmd.arg(ttl)
        .arg(&shared.keys.channel)
        .arg(batch.limits.len());
    for (_, args) in &batch.limits {
        cmd.arg(&args.period_us)
            .arg(&args.tau_us)
            .arg(args.ban_for_ms)
            .arg(&args.growth)
            .arg(args.max_ban_ms);
    }
    for entry in &batch.entries {
        cmd.arg(entry.hits).arg(entry.limit).arg(&entry.tail);
    }
    pipe
}

/// `SADD` to the registry of limit names every limit registered here from the `from`-th on
/// (so that an unban on any instance reaches them); whether there was any.
pub(super) fn announce_command(shared: &Shared, pipe: &mut Pipeline, from: usize) -> bool {
    let mut names = shared
        .limits
        .iter()
        .map_while(std::sync::OnceLock::get)
        .skip(from)
        .peekable();
    if names.peek().is_none() {
        return false;
    }
    let cmd = pipe.cmd("SADD").arg(shared.keys.limits());
    for registered in names {
        cmd.arg(&*registered.name);
    }
    true
}

/// The `EVALSHA` of the unban script for the subject tagged `tag`.
pub(super) fn unban_command(pipe: &mut Pipeline, keys: &Keys, tag: &str) {
    pipe.cmd("EVALSHA")
        .arg(UNBAN.get_hash())
        .arg(1)
        .arg(keys.limits())
        .arg(&keys.prefix)
        .arg(tag)
        .arg(&keys.channel);
}

/// The `EVALSHA` of the ban script: bans `limit|subject` for `length`, publishes it.
pub(super) fn ban_command(
    pipe: &mut Pipeline,
    keys: &Keys,
    tail: &str,
    length: Duration,
    memory_ms: u64,
) {
    let ms = u64::try_from(length.as_millis()).unwrap_or(u64::MAX).max(1);
    pipe.cmd("EVALSHA")
        .arg(BAN.get_hash())
        .arg(2)
        .arg(keys.state(tail))
        .arg(keys.ban(tail))
        .arg(ms)
        .arg(&keys.channel)
        .arg(tail)
        .arg(memory_ms);
}

fn subject_of(subject: &OwnedSubject) -> String {
    super::subject_tag(subject.as_subject())
}

/// Turns the script's answers for `batch` into local refusals and bans.
async fn apply(shared: &Shared, batch: &Batch, reply: Option<&Value>) {
    let parsed = reply.and_then(|reply| parse_batch(reply, batch.entries.len()));
    let Some((replayed, answers)) = parsed else {
        // Not the script's reply (a script error, say): nothing to learn, and nothing to send
        // again, as it may have counted some keys.
        bump(&shared.counters.malformed, 1);
        bump(&shared.counters.dropped_hits, batch.hits());
        tracing::warn!(
            target: "actix_bouncer",
            reply = ?reply,
            "unexpected answer from Redis for a batch of shared counts"
        );
        return;
    };
    if replayed {
        // Redis had applied it: the reply to the first call was lost.
        bump(&shared.counters.replayed_batches, 1);
    }
    let now = shared.now();
    for (entry, answer) in batch.entries.iter().zip(answers) {
        let subject = entry.subject.as_subject();
        let Some((answer, malformed)) = answer else {
            bump(&shared.counters.malformed, 1);
            tracing::warn!(
                target: "actix_bouncer",
                key = %entry.tail,
                "unexpected answer from Redis for a shared count"
            );
            continue;
        };
        if malformed {
            bump(&shared.counters.malformed, 1);
            tracing::warn!(
                target: "actix_bouncer",
                key = %entry.tail,
                "a malformed shared count in Redis was treated as missing"
            );
        }
        let micros = |us: u64| Duration::from_micros(us);
        let slot_id = super::super::store::LimitSlot(entry.slot);
        match answer {
            script::Shared::Allowed => {}
            script::Shared::Banned { micros: us, .. } => {
                let _ = shared.local.ban(slot_id, subject, micros(us)).await;
            }
            script::Shared::BanStarted {
                micros: us,
                offence,
            } => {
                let _ = shared.local.ban(slot_id, subject, micros(us)).await;
                shared.refuse(
                    entry.slot,
                    entry.key,
                    Refusal {
                        until: now.saturating_add(us.saturating_mul(1_000)),
                        started: Some((micros(us), offence)),
                    },
                );
            }
            script::Shared::Limited { micros: us } => shared.refuse(
                entry.slot,
                entry.key,
                Refusal {
                    until: now.saturating_add(us.saturating_mul(1_000)),
                    started: None,
                },
            ),
        }
    }
}
