//! Ban propagation: the subscriber that applies the bans and unbans other instances publish,
//! and the `SCAN` of the ban keys that a (re)subscribing instance and the ban list read.
//!
//! Messages on `<prefix>:bans`: `ban|<ms left>|<offence>|<limit>|<subject>` and
//! `unban|<subject>` (the subject last: a user id may hold `|`).

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use ::redis::Value;
use futures_core::Stream;

use super::{bump, OwnedSubject, Shared};
use crate::limiter::store::{BannedKey, CounterStore as _, LimitSlot};
use crate::store_error::StoreError;

/// The first and the longest wait before subscribing again.
const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(5);

/// A ban read from Redis.
#[derive(Debug)]
pub(super) struct FoundBan {
    pub(super) limit: Arc<str>,
    pub(super) key: BannedKey,
    pub(super) remaining: Duration,
    pub(super) offence: u32,
}

/// A message of the ban channel.
#[derive(Debug, PartialEq)]
enum Message<'a> {
    Ban {
        remaining: Duration,
        offence: u32,
        limit: &'a str,
        subject: OwnedSubject,
    },
    Unban(OwnedSubject),
}

fn parse(message: &str) -> Option<Message<'_>> {
    if let Some(subject) = message.strip_prefix("unban|") {
        return OwnedSubject::parse(subject).map(Message::Unban);
    }
    let mut parts = message.strip_prefix("ban|")?.splitn(4, '|');
    let ms: u64 = parts.next()?.parse().ok()?;
    let offence: u32 = parts.next()?.parse().ok()?;
    let limit = parts.next()?;
    let subject = OwnedSubject::parse(parts.next()?)?;
    Some(Message::Ban {
        remaining: Duration::from_millis(ms),
        offence,
        limit,
        subject,
    })
}

/// Subscribes to the ban channel until the store is dropped, reading the ban keys each time
/// it (re)subscribes.
pub(super) async fn listen(weak: Weak<Shared>, client: ::redis::Client) {
    let mut retry = FIRST_RETRY;
    loop {
        let Some(shared) = weak.upgrade() else {
            return;
        };
        let channel = shared.keys.channel.clone();
        drop(shared);
        let subscribed = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, ::redis::RedisError>(pubsub)
        };
        let pubsub = match tokio::time::timeout(Duration::from_secs(1), subscribed).await {
            Ok(Ok(pubsub)) => pubsub,
            _ => {
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(MAX_RETRY);
                continue;
            }
        };
        // Subscribed first, then read: a ban made in between is seen at least once.
        let Some(shared) = weak.upgrade() else {
            return;
        };
        match resync(&shared).await {
            Ok(n) => {
                retry = FIRST_RETRY;
                tracing::debug!(target: "actix_bouncer", bans = n, "ban channel subscribed");
            }
            Err(e) => {
                tracing::warn!(target: "actix_bouncer", "cannot read the shared bans: {e}");
            }
        }
        shared.counters.subscribed.store(true, Ordering::Relaxed);
        drop(shared);
        let mut messages = pubsub.into_on_message();
        while let Some(msg) = poll_fn(|cx| Pin::new(&mut messages).poll_next(cx)).await {
            let Some(shared) = weak.upgrade() else {
                return;
            };
            match msg.get_payload::<String>() {
                Ok(payload) => receive(&shared, &payload).await,
                Err(_) => report_malformed(&shared, "a ban message that is not text"),
            }
        }
        // The connection ended (Redis went away): subscribe again, after a pause.
        if let Some(shared) = weak.upgrade() {
            shared.counters.subscribed.store(false, Ordering::Relaxed);
        }
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(MAX_RETRY);
    }
}

fn report_malformed(shared: &Shared, what: &str) {
    bump(&shared.counters.malformed, 1);
    tracing::warn!(target: "actix_bouncer", "ignored {what} in Redis");
}

/// Applies one message of the ban channel.
async fn receive(shared: &Shared, payload: &str) {
    match parse(payload) {
        Some(Message::Ban {
            remaining,
            limit,
            subject,
            ..
        }) => {
            bump(&shared.counters.bans_received, 1);
            apply_ban(shared, limit, &subject, remaining).await;
        }
        Some(Message::Unban(subject)) => {
            bump(&shared.counters.bans_received, 1);
            shared.forgive_orphans(&subject);
            let subject = subject.as_subject();
            let _ = shared.local.unban(subject).await;
            shared.forgive(shared.local_key(subject));
        }
        None => report_malformed(shared, "a malformed ban message"),
    }
}

/// Bans `subject` locally under the limit named `limit`; when this instance has not
/// registered that limit yet (a handler limit it has not used), keeps the ban until it does.
async fn apply_ban(shared: &Shared, limit: &str, subject: &OwnedSubject, remaining: Duration) {
    match shared.slot_of(limit) {
        Some(slot) => {
            let _ = shared
                .local
                .ban(LimitSlot(slot), subject.as_subject(), remaining)
                .await;
        }
        None => shared.keep_orphan(limit, subject, remaining),
    }
}

/// Reads every ban key and applies the bans locally; how many.
async fn resync(shared: &Shared) -> Result<usize, StoreError> {
    let found = scan_raw(shared).await?;
    for (limit, subject, remaining, _) in &found {
        apply_ban(shared, limit, subject, *remaining).await;
    }
    bump(&shared.counters.bans_received, found.len() as u64);
    Ok(found.len())
}

/// Every ban in Redis, for listing.
pub(super) async fn scan(shared: &Shared) -> Result<Vec<FoundBan>, StoreError> {
    Ok(scan_raw(shared)
        .await?
        .into_iter()
        .map(|(limit, subject, remaining, offence)| FoundBan {
            limit: Arc::from(limit),
            key: match subject {
                OwnedSubject::Client(key) => BannedKey::Client(key),
                OwnedSubject::User(id) => BannedKey::User(id.into()),
            },
            remaining,
            offence,
        })
        .collect())
}

/// Every ban key: its limit, subject, time left and offence count.
async fn scan_raw(
    shared: &Shared,
) -> Result<Vec<(String, OwnedSubject, Duration, u32)>, StoreError> {
    let mut conn = super::sync::connection(shared).await?;
    let pattern = shared.keys.ban_pattern();
    let mut cursor = 0u64;
    let mut keys = Vec::new();
    loop {
        let mut pipe = ::redis::pipe();
        pipe.cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1_000);
        let reply = super::sync::query(shared, &mut conn, &pipe, 1).await?;
        let (next, batch): (u64, Vec<String>) = reply
            .into_iter()
            .next()
            .map(::redis::from_redis_value)
            .transpose()
            .map_err(|e| StoreError::new(format!("SCAN: {e}")))?
            .ok_or_else(|| StoreError::new("SCAN gave no reply"))?;
        keys.extend(batch);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(256) {
        let mut pipe = ::redis::pipe();
        for key in chunk {
            pipe.cmd("GET").arg(key).cmd("PTTL").arg(key);
        }
        let replies = super::sync::query(shared, &mut conn, &pipe, chunk.len() * 2).await?;
        for (key, pair) in chunk.iter().zip(replies.chunks(2)) {
            let [value, ttl] = pair else { continue };
            let ttl = match ttl {
                Value::Int(ms) if *ms > 0 => Duration::from_millis(*ms as u64),
                // Gone or expiring now (-2), or without a TTL (-1: not ours to trust).
                _ => continue,
            };
            let offence = match value {
                Value::BulkString(bytes) => std::str::from_utf8(bytes)
                    .ok()
                    .and_then(|s| s.parse::<u32>().ok()),
                Value::Nil => continue,
                _ => None,
            };
            let parsed = shared.keys.ban_tail(key).and_then(|tail| {
                let (limit, subject) = tail.split_once('|')?;
                Some((limit.to_owned(), OwnedSubject::parse(subject)?))
            });
            match (parsed, offence) {
                (Some((limit, subject)), Some(offence)) => {
                    out.push((limit, subject, ttl, offence));
                }
                _ => report_malformed(shared, &format!("the malformed ban key {key:?}")),
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_parse() {
        assert_eq!(
            parse("ban|1500|2|global|u:a|b"),
            Some(Message::Ban {
                remaining: Duration::from_millis(1500),
                offence: 2,
                limit: "global",
                subject: OwnedSubject::User("a|b".into()),
            })
        );
        assert_eq!(
            parse("unban|u:bob"),
            Some(Message::Unban(OwnedSubject::User("bob".into())))
        );
        for bad in [
            "",
            "ban|x|1|global|u:a",
            "ban|1|1|global",
            "unban|zz",
            "hello",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
