//! The syncer: every `sync_every`, sends the pending counts (and the bans started locally) to
//! Redis in pipelined batches, and turns the answers into local refusals and bans.

use std::sync::{Arc, LazyLock, Weak};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Pipeline, Script, Value};

use super::super::store::CounterStore as _;
use super::breaker::Tripped;
use super::script::{self, parse_gcra};
use super::{bans, bump, Keys, LocalKey, OwnedSubject, Pending, Refusal, Shared};
use crate::store_error::StoreError;
use crate::sync::lock;

/// Most commands in one round trip.
const CHUNK: usize = 64;
/// The longest wait for a new connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

static GCRA: LazyLock<Script> = LazyLock::new(|| Script::new(script::GCRA));
static BAN: LazyLock<Script> = LazyLock::new(|| Script::new(script::BAN));

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

/// One sync round: sends every pending count and every locally started ban.
pub(super) async fn round(shared: &Arc<Shared>, all: bool) -> Result<(), StoreError> {
    let _round = shared.rounds.lock().await;
    let now = shared.now();
    if shared
        .refused_count
        .load(std::sync::atomic::Ordering::Relaxed)
        > 0
    {
        shared.sweep_refusals(now);
    }
    let batch = shared.drain(all);
    let outbox = std::mem::take(&mut *lock(&shared.outbox));
    let idle = batch.is_empty() && outbox.is_empty();
    if idle && !shared.breaker.is_open() {
        return Ok(());
    }
    let total: u64 = batch.iter().map(|(_, p)| u64::from(p.hits)).sum();
    if !shared.breaker.may_try(shared.real_now()) {
        bump(&shared.counters.dropped_hits, total);
        return Err(StoreError::new("Redis is unreachable (circuit open)"));
    }
    let mut synced = 0u64;
    let result = async {
        let mut conn = connection(shared).await?;
        if idle {
            let mut pipe = ::redis::pipe();
            pipe.cmd("PING");
            query(shared, &mut conn, &pipe, 1).await?;
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
        for chunk in batch.chunks(CHUNK) {
            let mut pipe = ::redis::pipe();
            for ((slot, _), pending) in chunk {
                gcra_command(shared, &mut pipe, *slot, pending);
            }
            let replies = query(shared, &mut conn, &pipe, chunk.len()).await?;
            apply(shared, chunk, &replies).await;
            synced += chunk.iter().map(|(_, p)| u64::from(p.hits)).sum::<u64>();
        }
        Ok(())
    }
    .await;
    match &result {
        Ok(()) => {
            if shared.breaker.success() {
                tracing::info!(
                    target: "actix_bouncer",
                    url = %shared.shown,
                    "Redis answers: counts and bans are shared again"
                );
            }
        }
        Err(e) => {
            bump(&shared.counters.dropped_hits, total - synced);
            failed(shared, shared.real_now(), e);
        }
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
    let mut pipe = pipe.clone();
    pipe.ignore_errors();
    for attempt in 0..2 {
        let replies: Vec<Value> = tokio::time::timeout(shared.timeout, pipe.query_async(conn))
            .await
            .map_err(|_| {
                StoreError::new(format!(
                    "Redis at {} did not answer within {:?}",
                    shared.shown, shared.timeout
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
            .arg(script::GCRA)
            .cmd("SCRIPT")
            .arg("LOAD")
            .arg(script::BAN);
        tokio::time::timeout(
            shared.timeout.max(Duration::from_millis(100)),
            load.query_async::<Vec<String>>(conn),
        )
        .await
        .map_err(|_| StoreError::new("SCRIPT LOAD timed out"))?
        .map_err(|e| redis_error(shared, e))?;
        bump(&shared.counters.round_trips, 1);
        bump(&shared.counters.commands, 2);
    }
    Err(StoreError::new("unreachable: two attempts at most"))
}

/// The `EVALSHA` of the GCRA script for one pending key.
fn gcra_command(shared: &Shared, pipe: &mut Pipeline, slot: u32, pending: &Pending) {
    let Some(registered) = shared.registered(slot) else {
        return;
    };
    let args = &registered.args;
    let tail = Keys::tail(&registered.name, &subject_of(&pending.subject));
    pipe.cmd("EVALSHA")
        .arg(GCRA.get_hash())
        .arg(2)
        .arg(shared.keys.state(&tail))
        .arg(shared.keys.ban(&tail))
        .arg(pending.hits)
        .arg(&args.period_us)
        .arg(&args.tau_us)
        .arg(args.ban_for_ms)
        .arg(&args.growth)
        .arg(args.max_ban_ms)
        .arg(&shared.keys.channel)
        .arg(tail);
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

/// Turns the script's answers for `chunk` into local refusals and bans.
async fn apply(shared: &Shared, chunk: &[((u32, LocalKey), Pending)], replies: &[Value]) {
    let now = shared.now();
    for (((slot, key), pending), reply) in chunk.iter().zip(replies) {
        let subject = pending.subject.as_subject();
        let Some((answer, malformed)) = parse_gcra(reply) else {
            bump(&shared.counters.malformed, 1);
            let name = shared.registered(*slot).map(|r| Arc::clone(&r.name));
            tracing::warn!(
                target: "actix_bouncer",
                limit = name.as_deref().unwrap_or("?"),
                reply = ?reply,
                "unexpected answer from Redis for a shared count; the key's state is dropped"
            );
            if let Some(name) = name {
                forget_state(shared, &name, subject).await;
            }
            continue;
        };
        if malformed {
            bump(&shared.counters.malformed, 1);
            tracing::warn!(
                target: "actix_bouncer",
                "a malformed shared count in Redis was treated as missing"
            );
        }
        let micros = |us: u64| Duration::from_micros(us);
        let slot_id = super::super::store::LimitSlot(*slot);
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
                    *slot,
                    *key,
                    Refusal {
                        until: now.saturating_add(us.saturating_mul(1_000)),
                        started: Some((micros(us), offence)),
                    },
                );
            }
            script::Shared::Limited { micros: us } => shared.refuse(
                *slot,
                *key,
                Refusal {
                    until: now.saturating_add(us.saturating_mul(1_000)),
                    started: None,
                },
            ),
        }
    }
}

/// Deletes a key's state that Redis holds in a form the script cannot read (a value of
/// another type), so that counting starts afresh; best effort.
async fn forget_state(shared: &Shared, limit: &str, subject: super::Subject<'_>) {
    let Ok(mut conn) = shared.conn() else {
        return;
    };
    let tail = Keys::tail(limit, &super::subject_tag(subject));
    let mut pipe = ::redis::pipe();
    pipe.cmd("DEL").arg(shared.keys.state(&tail));
    let _ = query(shared, &mut conn, &pipe, 1).await;
}
