//! The reputation cache shared by every instance through Redis (features `reputation` and
//! `redis`): one upstream lookup per address per `cache_ttl` across all instances, with the
//! local cache in front.
//!
//! A report is stored as JSON under `<prefix>:rep:<ip>` with a TTL of `cache_ttl`. Before
//! asking the API, the worker reads that key; a report found there is cached locally for the
//! TTL it has left. After a good answer from the API it writes the key. Failures are never
//! shared. Redis being slow or away costs at most `timeout` per lookup and is logged; the
//! lookup then goes to the API as without a shared cache. A value that does not parse is
//! treated as missing and reported.

use std::net::IpAddr;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Value;

use super::IpReport;
use crate::sync::lock;

/// The longest one Redis round trip of the shared cache may take.
const TIMEOUT: Duration = Duration::from_millis(50);

/// A Redis connection, made on first use, and the key prefix.
pub(super) struct SharedCache {
    client: redis::Client,
    prefix: String,
    conn: std::sync::Mutex<Option<ConnectionManager>>,
    /// Reports served from Redis, and malformed values met there.
    pub(super) hits: std::sync::atomic::AtomicU64,
    pub(super) malformed: std::sync::atomic::AtomicU64,
}

impl SharedCache {
    /// The shared cache on the Redis at `url`; `None` (no I/O) for a URL that is not one.
    pub(super) fn new(url: &str, prefix: &str) -> Option<SharedCache> {
        Some(SharedCache {
            client: redis::Client::open(url).ok()?,
            prefix: prefix.to_owned(),
            conn: std::sync::Mutex::new(None),
            hits: Default::default(),
            malformed: Default::default(),
        })
    }

    fn key(&self, ip: IpAddr) -> String {
        format!("{}:rep:{ip}", self.prefix)
    }

    async fn conn(&self) -> Option<ConnectionManager> {
        if let Some(conn) = lock(&self.conn).clone() {
            return Some(conn);
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(1);
        let made = tokio::time::timeout(
            Duration::from_secs(1),
            ConnectionManager::new_with_config(self.client.clone(), config),
        )
        .await;
        match made {
            Ok(Ok(conn)) => {
                *lock(&self.conn) = Some(conn.clone());
                Some(conn)
            }
            _ => {
                tracing::warn!(
                    target: "actix_bouncer",
                    "the shared reputation cache (Redis) cannot be reached; asking the API"
                );
                None
            }
        }
    }

    /// The report another instance stored for `ip`, with the time it stays fresh.
    pub(super) async fn get(&self, ip: IpAddr) -> Option<(IpReport, Duration)> {
        let mut conn = self.conn().await?;
        let key = self.key(ip);
        let mut pipe = redis::pipe();
        pipe.cmd("GET").arg(&key).cmd("PTTL").arg(&key);
        let replies: Vec<Value> = tokio::time::timeout(TIMEOUT, pipe.query_async(&mut conn))
            .await
            .ok()?
            .ok()?;
        let [value, ttl] = replies.as_slice() else {
            return None;
        };
        let Value::BulkString(bytes) = value else {
            return None;
        };
        let ttl = match ttl {
            Value::Int(ms) if *ms > 0 => Duration::from_millis(*ms as u64),
            _ => return None,
        };
        match serde_json::from_slice::<IpReport>(bytes) {
            Ok(report) => {
                self.hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Some((report, ttl))
            }
            Err(e) => {
                self.malformed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(
                    target: "actix_bouncer",
                    %ip,
                    "a malformed report in the shared reputation cache was ignored: {e}"
                );
                None
            }
        }
    }

    /// Stores `report` for `ip` for `ttl`; best effort.
    pub(super) async fn put(&self, ip: IpAddr, report: &IpReport, ttl: Duration) {
        let Some(mut conn) = self.conn().await else {
            return;
        };
        let Ok(json) = serde_json::to_vec(report) else {
            return;
        };
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(ip)).arg(json).arg("PX").arg(ms);
        let _ = tokio::time::timeout(TIMEOUT, cmd.exec_async(&mut conn)).await;
    }
}
