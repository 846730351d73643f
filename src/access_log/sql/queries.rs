//! The admin dashboard's queries, and rows back into records.
//!
//! Each query reads through an index (see `schema.rs`): the counts over a time window through
//! the time index (the blocked records' through the blocked index), a client's, a user's or a
//! path's activity through theirs, newest first, so a page costs what its window or its limit
//! holds, not what the table holds. A row that does not read back (written by hand, or by a
//! newer crate) is logged and skipped, never a panic.
//!
//! A window can hold any number of records (a busy site logs a million in an hour), so the
//! "top" and "reasons" queries read at most the newest [`TOP_READ_MAX`] of it: a probe first
//! finds the time of the record just past that many, newest first (one walk down the index,
//! no table read), and the counts then cover what is newer. Each answer says how many records
//! it read and whether the window was cut ([`Top`]), so a page can say "of the last 20,000
//! requests".

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use serde::{Serialize, Serializer};
use sqlx::Row;

use super::schema;
use super::SqlAccessLog;
use crate::access_log::record::{AccessRecord, AccessVerdict};
use crate::sql::{failed, micros, time};
use crate::store_error::StoreError;
use crate::verdict::{BlockReason, Decision};

/// The most rows a query returns, whatever limit it is given.
const MAX_LIMIT: usize = 10_000;

/// The most records a "top" or "reasons" query reads ([`SqlAccessLog::top_paths`],
/// [`top_ips`](SqlAccessLog::top_ips), [`top_blocked_ips`](SqlAccessLog::top_blocked_ips),
/// [`block_reasons`](SqlAccessLog::block_reasons)): the newest this many of the window (of
/// its blocked records, for the last two). Chosen by measurement: on SQLite, grouping this
/// many records takes some 10–20 ms on a slow machine, whatever the window holds
/// (BENCHMARKS.md, "Dashboard data at one million rows").
pub const TOP_READ_MAX: usize = 20_000;

/// Requests from `$1` to before `$3` in buckets `$2` microseconds wide: start, blocked, would
/// block, all. Reads the records: for the part of a window before its first whole minute.
pub(super) const OVER_TIME_EDGE: &str = "SELECT (time_us / $2) * $2 AS bucket, \
    sum(CASE WHEN decision = 'block' AND enforced THEN 1 ELSE 0 END), \
    sum(CASE WHEN decision = 'block' AND NOT enforced THEN 1 ELSE 0 END), \
    count(*) \
    FROM bouncer_access_log WHERE time_us >= $1 AND time_us < $3 GROUP BY 1 ORDER BY 1";

/// The same from the whole minute `$1` on, read from the per-minute counts.
pub(super) const OVER_TIME: &str = "SELECT (minute_us / $2) * $2 AS bucket, \
    CAST(sum(blocked) AS BIGINT), CAST(sum(would_block) AS BIGINT), \
    CAST(sum(requests) AS BIGINT) \
    FROM bouncer_access_log_minutes WHERE minute_us >= $1 GROUP BY 1 ORDER BY 1";

/// Microseconds in a minute: the per-minute counts' `minute_us` is a multiple.
pub(super) const MINUTE_US: i64 = 60_000_000;

/// A client's (`$2`) `$3` most recent records of day `$1` (days since the epoch).
pub(super) const IP_ACTIVITY: &str = schema::activity_query!("ip = $2");

/// The first and last record's times (`NULL`s when the log is empty), each read off one end
/// of the time index.
const SPAN: &str = "SELECT (SELECT min(time_us) FROM bouncer_access_log), \
    (SELECT max(time_us) FROM bouncer_access_log)";

/// Microseconds in a day: the activity indexes' leading `time_us / 86400000000`.
const DAY_US: i64 = 86_400_000_000;

/// A path and its requests since a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PathCount {
    /// The path as clients sent it (escape it where it is shown).
    pub path: String,
    /// Requests for it.
    pub requests: u64,
    /// Of those, how many the bouncer refused.
    pub blocked: u64,
}

/// A client and its requests since a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct IpCount {
    /// The client's address.
    pub ip: IpAddr,
    /// Its requests.
    pub requests: u64,
    /// Of those, how many the bouncer refused.
    pub blocked: u64,
}

/// What a "top" or "reasons" query found: its rows, and which part of the window they come
/// from. A window holding more than [`TOP_READ_MAX`] records (blocked records, for the
/// blocked queries) is cut to its newest: the counts are then those of the records from
/// [`since`](Self::since) on, of which there were [`read`](Self::read).
///
/// ```no_run
/// # #[cfg(feature = "sqlite")] {
/// use std::time::{Duration, SystemTime};
/// use actix_bouncer::access_log::SqlAccessLog;
///
/// # async fn run(log: SqlAccessLog) -> Result<(), actix_bouncer::StoreError> {
/// let top = log.top_ips(SystemTime::now() - Duration::from_secs(3600), 10).await?;
/// if top.window_cut {
///     println!("of the last {} requests:", top.read);
/// }
/// for client in &top.rows {
///     println!("{} {} ({} refused)", client.ip, client.requests, client.blocked);
/// }
/// # Ok(()) }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Top<T> {
    /// The rows, most first.
    pub rows: Vec<T>,
    /// How many records the counts come from (every one of the window's when it was not
    /// cut; blocked records only, for the blocked queries).
    pub read: u64,
    /// Whether the window held more records than [`TOP_READ_MAX`], so that only the newest
    /// were read.
    pub window_cut: bool,
    /// Where the records read start (RFC 3339 in JSON): the window's start as asked, or, when
    /// it was cut, just after the newest record left out.
    #[serde(serialize_with = "ser_time")]
    pub since: SystemTime,
}

/// A client and its blocked requests since a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BlockedIp {
    /// The client's address.
    pub ip: IpAddr,
    /// Its requests the bouncer refused.
    pub blocked: u64,
    /// Its requests the bouncer would have refused, let through in monitor mode.
    pub would_block: u64,
}

/// Why requests were blocked since a time: one reason and its requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ReasonCount {
    /// The reason (`None` for blocked records stored without one).
    pub reason: Option<BlockReason>,
    /// Requests refused for it.
    pub blocked: u64,
    /// Requests that would have been refused for it, let through in monitor mode.
    pub would_block: u64,
}

/// How [`SqlAccessLog::blocked_over_time`] groups requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Bucket {
    /// By minute (since the epoch, in UTC).
    Minute,
    /// By hour.
    Hour,
}

impl Bucket {
    /// How long one bucket lasts.
    pub fn width(self) -> Duration {
        match self {
            Bucket::Minute => Duration::from_secs(60),
            Bucket::Hour => Duration::from_secs(3600),
        }
    }
}

/// One time bucket of [`SqlAccessLog::blocked_over_time`]: what the bouncer did with the
/// requests that arrived in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BlockedBucket {
    /// When the bucket starts (RFC 3339 in JSON); it lasts one [`Bucket::width`].
    #[serde(serialize_with = "ser_time")]
    pub start: SystemTime,
    /// Requests refused.
    pub blocked: u64,
    /// Requests that would have been refused, let through in monitor mode.
    pub would_block: u64,
    /// Every other request (allowed, or not judged by the bouncer).
    pub allowed: u64,
}

/// Whose activity [`SqlAccessLog::activity`] reads.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Subject {
    /// A client address (as the access log resolved it).
    Ip(IpAddr),
    /// A user id (as the app's user hook gave it).
    User(String),
    /// A path, as recorded: as the client sent it (not decoded), without the query.
    Path(String),
}

impl<T> Top<T> {
    /// The same answer with each row made by `f`; rows it returns `None` for are left out.
    fn map<U>(self, f: impl FnMut(T) -> Option<U>) -> Top<U> {
        Top {
            rows: self.rows.into_iter().filter_map(f).collect(),
            read: self.read,
            window_cut: self.window_cut,
            since: self.since,
        }
    }
}

/// A stored client address, or `None` (logged) when it does not read as one.
fn parse_ip(text: Option<String>) -> Option<IpAddr> {
    let text = text.unwrap_or_default();
    match text.parse() {
        Ok(ip) => Some(ip),
        Err(_) => {
            skipped(&StoreError::new(format!(
                "access log rows have an invalid ip: {text:?}"
            )));
            None
        }
    }
}

fn ser_time<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::clock::rfc3339(*t, false))
}

fn limit(n: usize) -> i64 {
    n.min(MAX_LIMIT) as i64
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Logs a row that does not read back; the caller skips it.
fn skipped(error: &StoreError) {
    tracing::warn!(target: "actix_bouncer", %error, "access log row skipped");
}

/// A record's columns as stored, in the order the activity queries select them.
pub(super) struct RecordRow {
    id: i64,
    time_us: i64,
    method: String,
    path: String,
    query: Option<String>,
    body: Option<String>,
    referrer: Option<String>,
    ip: String,
    user_agent: Option<String>,
    session: Option<String>,
    user_id: Option<String>,
    status: i32,
    duration_us: i64,
    bytes_sent: i64,
    decision: Option<String>,
    enforced: Option<bool>,
    score: Option<i32>,
    reason: Option<String>,
}

/// Reads a [`RecordRow`] from a row of the backend in scope (`Db`).
macro_rules! record_row {
    ($row:expr) => {{
        let row = $row;
        (|| -> Result<RecordRow, sqlx::Error> {
            Ok(RecordRow {
                id: row.try_get(0)?,
                time_us: row.try_get(1)?,
                method: row.try_get(2)?,
                path: row.try_get(3)?,
                query: row.try_get(4)?,
                body: row.try_get(5)?,
                referrer: row.try_get(6)?,
                ip: row.try_get(7)?,
                user_agent: row.try_get(8)?,
                session: row.try_get(9)?,
                user_id: row.try_get(10)?,
                status: row.try_get(11)?,
                duration_us: row.try_get(12)?,
                bytes_sent: row.try_get(13)?,
                decision: row.try_get(14)?,
                enforced: row.try_get(15)?,
                score: row.try_get(16)?,
                reason: row.try_get(17)?,
            })
        })()
        .map_err(failed)
    }};
}

/// A stored row whose `what` does not read as one.
fn bad(id: i64, what: &str, value: &str) -> StoreError {
    StoreError::new(format!(
        "access log row #{id} has an invalid {what}: {value:?}"
    ))
}

fn decision(id: i64, text: &str) -> Result<Decision, StoreError> {
    match text {
        "allow" => Ok(Decision::Allow),
        "block" => Ok(Decision::Block),
        _ => Err(bad(id, "decision", text)),
    }
}

fn reason(id: i64, text: &str) -> Result<BlockReason, StoreError> {
    // Matched both ways, so a reason added to `BlockReason` without a line here fails to
    // compile rather than to read back.
    fn name(reason: BlockReason) -> &'static str {
        match reason {
            BlockReason::Blacklisted
            | BlockReason::Banned
            | BlockReason::RateLimited
            | BlockReason::Risk
            | BlockReason::Restricted => reason.as_str(),
        }
    }
    [
        BlockReason::Blacklisted,
        BlockReason::Banned,
        BlockReason::RateLimited,
        BlockReason::Risk,
        BlockReason::Restricted,
    ]
    .into_iter()
    .find(|r| name(*r) == text)
    .ok_or_else(|| bad(id, "block reason", text))
}

/// The record a row holds.
pub(super) fn record(row: RecordRow) -> Result<AccessRecord, StoreError> {
    let id = row.id;
    let ip = row.ip.parse().map_err(|_| bad(id, "ip", &row.ip))?;
    let status =
        u16::try_from(row.status).map_err(|_| bad(id, "status", &row.status.to_string()))?;
    let verdict = match row.decision {
        None => None,
        Some(text) => Some(AccessVerdict {
            decision: decision(id, &text)?,
            enforced: row.enforced.unwrap_or(true),
            score: row
                .score
                .map_or(Ok(0), u8::try_from)
                .map_err(|_| bad(id, "score", &format!("{:?}", row.score)))?,
            reason: row.reason.as_deref().map(|r| reason(id, r)).transpose()?,
        }),
    };
    Ok(AccessRecord {
        time: time(row.time_us),
        method: row.method,
        path: row.path,
        query: row.query,
        body: row.body,
        referrer: row.referrer,
        ip,
        user_agent: row.user_agent,
        session: row.session,
        user: row.user_id,
        status,
        duration: Duration::from_micros(u64::try_from(row.duration_us).unwrap_or(0)),
        bytes_sent: u64::try_from(row.bytes_sent).unwrap_or(0),
        verdict,
    })
}

impl SqlAccessLog {
    /// Runs a "top" query (`$1` the start, `$2` the limit) that answers `(key, a, b, records
    /// read)` rows over at most the newest [`TOP_READ_MAX`] records of the window that
    /// `edge` (`$1` the start, `$2` the offset) probes.
    async fn top_since(
        &self,
        edge: impl Fn(&schema::Dialect) -> &'static str,
        query: impl Fn(&schema::Dialect) -> &'static str,
        since: SystemTime,
        limit: usize,
    ) -> Result<Top<(Option<String>, i64, i64)>, StoreError> {
        let asked = micros(since);
        let (start, cut, rows) = crate::sql::on_pool!(&self.pool, |pool, backend| {
            let mut conn = pool.acquire().await.map_err(failed)?;
            // The newest record left out, if the window holds more than can be read.
            let past: Option<i64> = sqlx::query_scalar::<Db, i64>(edge(schema::of(backend)))
                .bind(asked)
                .bind(TOP_READ_MAX as i64)
                .fetch_optional(&mut *conn)
                .await
                .map_err(failed)?;
            let start = past.map_or(asked, |t| t.saturating_add(1));
            let rows: Vec<(Option<String>, i64, i64, i64)> =
                sqlx::query_as::<Db, _>(query(schema::of(backend)))
                    .bind(start)
                    .bind(self::limit(limit))
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(failed)?;
            Ok::<_, StoreError>((start, past.is_some(), rows))
        })?;
        let read = rows.first().map_or(0, |r| count(r.3));
        Ok(Top {
            rows: rows.into_iter().map(|(k, a, b, _)| (k, a, b)).collect(),
            read,
            window_cut: cut,
            since: time(start),
        })
    }

    /// The `limit` paths requested most since `since`, most first (ties by path), with how
    /// many of their requests were refused: of the newest [`TOP_READ_MAX`] records at most
    /// (see [`Top`]).
    pub async fn top_paths(
        &self,
        since: SystemTime,
        limit: usize,
    ) -> Result<Top<PathCount>, StoreError> {
        let top = self
            .top_since(|d| d.newest_edge, |d| d.top_paths, since, limit)
            .await?;
        Ok(top.map(|(path, requests, blocked)| {
            Some(PathCount {
                path: path.unwrap_or_default(),
                requests: count(requests),
                blocked: count(blocked),
            })
        }))
    }

    /// The `limit` clients with the most requests since `since`, most first (ties by
    /// address text), with how many of their requests were refused: of the newest
    /// [`TOP_READ_MAX`] records at most (see [`Top`]).
    pub async fn top_ips(
        &self,
        since: SystemTime,
        limit: usize,
    ) -> Result<Top<IpCount>, StoreError> {
        let top = self
            .top_since(|d| d.newest_edge, |d| d.top_ips, since, limit)
            .await?;
        Ok(top.map(|(ip, requests, blocked)| {
            Some(IpCount {
                ip: parse_ip(ip)?,
                requests: count(requests),
                blocked: count(blocked),
            })
        }))
    }

    /// The `limit` clients with the most refused requests since `since`, most first, then
    /// those with the most that would have been refused (monitor mode), then by address text.
    /// Reads only blocked records (through their own index), the newest [`TOP_READ_MAX`] of
    /// them at most (see [`Top`]: [`read`](Top::read) counts blocked records).
    ///
    /// ```no_run
    /// # #[cfg(feature = "sqlite")] {
    /// use std::time::{Duration, SystemTime};
    /// use actix_bouncer::access_log::SqlAccessLog;
    ///
    /// # async fn run(log: SqlAccessLog) -> Result<(), actix_bouncer::StoreError> {
    /// let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    /// for client in log.top_blocked_ips(hour_ago, 10).await?.rows {
    ///     println!("{}: {} refused, {} in monitor mode", client.ip, client.blocked, client.would_block);
    /// }
    /// # Ok(()) }
    /// # }
    /// ```
    pub async fn top_blocked_ips(
        &self,
        since: SystemTime,
        limit: usize,
    ) -> Result<Top<BlockedIp>, StoreError> {
        let top = self
            .top_since(
                |d| d.newest_blocked_edge,
                |d| d.top_blocked_ips,
                since,
                limit,
            )
            .await?;
        Ok(top.map(|(ip, blocked, would_block)| {
            Some(BlockedIp {
                ip: parse_ip(ip)?,
                blocked: count(blocked),
                would_block: count(would_block),
            })
        }))
    }

    /// Blocked requests since `since` by reason, the most refused first (then the most that
    /// would have been, then by name). Reads only blocked records, the newest [`TOP_READ_MAX`]
    /// of them at most (see [`Top`]).
    pub async fn block_reasons(&self, since: SystemTime) -> Result<Top<ReasonCount>, StoreError> {
        let top = self
            .top_since(
                |d| d.newest_blocked_edge,
                |d| d.block_reasons,
                since,
                MAX_LIMIT,
            )
            .await?;
        Ok(top.map(|(text, blocked, would_block)| {
            let reason = match text.as_deref().map(|r| reason(0, r)).transpose() {
                Ok(reason) => reason,
                Err(_) => {
                    skipped(&StoreError::new(format!(
                        "access log rows have an invalid block reason: {text:?}"
                    )));
                    return None;
                }
            };
            Some(ReasonCount {
                reason,
                blocked: count(blocked),
                would_block: count(would_block),
            })
        }))
    }

    /// Requests since `since` by `bucket`, oldest first: how many were refused, would have
    /// been (monitor mode), and the rest. Buckets without requests are left out.
    ///
    /// Reads the per-minute counts the writer keeps (a row a minute: a week is some 10,000
    /// rows, whatever the traffic), plus the records of the window's first part-minute.
    pub async fn blocked_over_time(
        &self,
        since: SystemTime,
        bucket: Bucket,
    ) -> Result<Vec<BlockedBucket>, StoreError> {
        let width = i64::try_from(bucket.width().as_micros()).unwrap_or(i64::MAX);
        let since = micros(since);
        // Whole minutes come from the per-minute counts; a window starting inside a minute
        // reads that minute's records from `since` on (at most a minute of them).
        let truncated = since / MINUTE_US * MINUTE_US;
        let whole = if truncated < since {
            truncated.checked_add(MINUTE_US).unwrap_or(truncated)
        } else {
            truncated
        };
        let (edge, minutes) = crate::sql::on_pool!(&self.pool, |pool, _backend| {
            let mut conn = pool.acquire().await.map_err(failed)?;
            let edge: Vec<(i64, i64, i64, i64)> = if since < whole {
                sqlx::query_as::<Db, _>(OVER_TIME_EDGE)
                    .bind(since)
                    .bind(width)
                    .bind(whole)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(failed)?
            } else {
                Vec::new()
            };
            let minutes: Vec<(i64, i64, i64, i64)> = sqlx::query_as::<Db, _>(OVER_TIME)
                .bind(whole)
                .bind(width)
                .fetch_all(&mut *conn)
                .await
                .map_err(failed)?;
            Ok::<_, StoreError>((edge, minutes))
        })?;
        let mut buckets = std::collections::BTreeMap::<i64, [i64; 3]>::new();
        for (start, blocked, would_block, all) in edge.into_iter().chain(minutes) {
            let b = buckets.entry(start).or_default();
            b[0] += blocked;
            b[1] += would_block;
            b[2] += all;
        }
        Ok(buckets
            .into_iter()
            .map(|(start, [blocked, would_block, all])| BlockedBucket {
                start: time(start),
                blocked: count(blocked),
                would_block: count(would_block),
                allowed: count(all - blocked - would_block),
            })
            .collect())
    }

    /// The `limit` most recent records of a client, a user or a path, newest first.
    ///
    /// Reads a day at a time, from the newest record's day back to the oldest's, until it has
    /// `limit` records: each day is one lookup in the client (or user) index, so this costs
    /// what it returns plus a lookup per day kept.
    pub async fn activity(
        &self,
        subject: &Subject,
        limit: usize,
    ) -> Result<Vec<AccessRecord>, StoreError> {
        let limit = self::limit(limit);
        let ip = match subject {
            Subject::Ip(ip) => ip.to_string(),
            Subject::User(_) | Subject::Path(_) => String::new(),
        };
        let rows = crate::sql::on_pool!(&self.pool, |pool, backend| {
            let mut conn = pool.acquire().await.map_err(failed)?;
            let (first, last): (Option<i64>, Option<i64>) = sqlx::query_as(SPAN)
                .fetch_one(&mut *conn)
                .await
                .map_err(failed)?;
            let mut rows = Vec::new();
            if let (Some(first), Some(last)) = (first, last) {
                let mut day = last / DAY_US;
                while day >= first / DAY_US && (rows.len() as i64) < limit {
                    let query = match subject {
                        Subject::User(user) => sqlx::query::<Db>(schema::of(backend).user_activity)
                            .bind(day)
                            .bind(user.as_str()),
                        Subject::Ip(_) => {
                            sqlx::query::<Db>(IP_ACTIVITY).bind(day).bind(ip.as_str())
                        }
                        Subject::Path(path) => sqlx::query::<Db>(schema::of(backend).path_activity)
                            .bind(day)
                            .bind(path.as_str()),
                    };
                    let found = query
                        .bind(limit - rows.len() as i64)
                        .fetch_all(&mut *conn)
                        .await
                        .map_err(failed)?;
                    rows.extend(found.iter().map(|row| record_row!(row)));
                    day -= 1;
                }
            }
            Ok::<_, StoreError>(rows)
        })?;
        Ok(rows
            .into_iter()
            .filter_map(|row| match row.and_then(record) {
                Ok(record) => Some(record),
                Err(error) => {
                    skipped(&error);
                    None
                }
            })
            .collect())
    }

    /// The backend's plan for each query (`EXPLAIN QUERY PLAN` in SQLite, `EXPLAIN` in
    /// PostgreSQL), for a window starting at `since` and a trim of what is older than
    /// `older_than`, by name: `top_paths`, `top_ips`, `top_edge` (where a window cut to its
    /// newest records starts), `top_blocked_ips`, `block_reasons`, `top_blocked_edge` (the
    /// same among blocked records), `blocked_over_time` (the per-minute counts),
    /// `blocked_over_time_edge` (the records of a window's first part-minute),
    /// `activity_ip`, `activity_user`, `activity_path`, `trim`. For the tests and the
    /// benchmarks, which check that every query reads through an index.
    #[doc(hidden)]
    pub async fn query_plans(
        &self,
        since: SystemTime,
        older_than: SystemTime,
    ) -> Result<Vec<(&'static str, String)>, StoreError> {
        let since = micros(since);
        let older_than = micros(older_than);
        crate::sql::on_pool!(&self.pool, |pool, backend| {
            let (explain, column) = match backend.name() {
                "SQLite" => ("EXPLAIN QUERY PLAN ", 3),
                _ => ("EXPLAIN ", 0),
            };
            let mut plans = Vec::new();
            for (name, query, first) in [
                ("top_paths", schema::of(backend).top_paths, None),
                ("top_ips", schema::of(backend).top_ips, None),
                ("top_edge", schema::of(backend).newest_edge, None),
                ("top_blocked_ips", schema::of(backend).top_blocked_ips, None),
                ("block_reasons", schema::of(backend).block_reasons, None),
                (
                    "top_blocked_edge",
                    schema::of(backend).newest_blocked_edge,
                    None,
                ),
                ("blocked_over_time", OVER_TIME, None),
                ("blocked_over_time_edge", OVER_TIME_EDGE, None),
                ("activity_ip", IP_ACTIVITY, Some("192.0.2.1")),
                (
                    "activity_user",
                    schema::of(backend).user_activity,
                    Some("alice"),
                ),
                (
                    "activity_path",
                    schema::of(backend).path_activity,
                    Some("/login"),
                ),
                ("trim", schema::of(backend).trim, None),
            ] {
                let text = format!("{explain}{query}");
                let query = sqlx::query::<Db>(&text);
                let query = match first {
                    Some(subject) => query.bind(since / DAY_US).bind(subject),
                    None if name == "trim" => query.bind(older_than),
                    None => query.bind(since),
                };
                let second: i64 = match name {
                    "blocked_over_time" | "blocked_over_time_edge" => MINUTE_US,
                    "trim" => super::TRIM_CHUNK,
                    "top_edge" | "top_blocked_edge" => TOP_READ_MAX as i64,
                    _ => 10,
                };
                let query = query.bind(second);
                let query = match name {
                    "blocked_over_time_edge" => query.bind(since.saturating_add(MINUTE_US)),
                    _ => query,
                };
                let rows = query.fetch_all(pool).await.map_err(failed)?;
                let mut plan = Vec::new();
                for row in &rows {
                    plan.push(row.try_get::<String, _>(column).map_err(failed)?);
                }
                plans.push((name, plan.join("\n")));
            }
            Ok(plans)
        })
    }
}
