//! [`SqlAccessLog`]: the access log in SQLite (feature `sqlite`) or PostgreSQL (feature
//! `postgres`), through sqlx: written in batches by the access log's writer, trimmed to a
//! retention period (by [`SqlAccessLog::trim`], a background [`AccessLogTrimmer`], or
//! `bouncer logs trim --days N`, the counterpart of the Django article's cleanup command), and
//! read by the admin dashboard's queries ([`SqlAccessLog::top_paths`],
//! [`SqlAccessLog::top_blocked_ips`], [`SqlAccessLog::block_reasons`] and the others).
//!
//! The connection set-up and the migration machinery are the rule store's ([`crate::sql`]);
//! what differs per backend (the DDL, some queries, settings for writing) is in `schema.rs`;
//! the queries and their typed results are in `queries.rs`.

mod queries;
mod schema;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use self::queries::MINUTE_US;
pub use self::queries::{
    BlockedBucket, BlockedIp, Bucket, IpCount, PathCount, ReasonCount, Subject, Top, TOP_READ_MAX,
};
use self::schema::SCHEMA_TABLE;
use super::record::AccessRecord;
use super::sink::AccessSink;
use crate::clock::{Clock, SystemClock};
use crate::sql::{failed, micros, Pool};
use crate::store_error::StoreError;
use crate::verdict::Decision;

/// Rows per multi-row `INSERT`: 17 parameters a row, 17,408 a statement, under SQLite's
/// 32,766. A batch is cut into statements of this many rows, then of the powers of two below
/// it (512, 256, … 1), so whatever the batch sizes, each connection prepares at most eleven
/// statement texts, and keeps them.
const INSERT_CHUNK: usize = 1024;
/// Rows per `DELETE` when trimming, each in its own transaction: SQLite's write lock is held
/// for tens of milliseconds at a time, never for the seconds a million rows take.
const TRIM_CHUNK: i64 = 5_000;

/// The page size of a new SQLite file: a batch dirties fewer, fuller pages of the indexes
/// than with SQLite's 4 KiB (see `schema.rs`).
const SQLITE_PAGE_SIZE: u32 = 32_768;

const MINUTES_HEAD: &str =
    "INSERT INTO bouncer_access_log_minutes (minute_us, requests, blocked, would_block) ";
/// Adds a batch's counts to the minutes' (`excluded`: the row that was to be inserted).
const MINUTES_ADD: &str = " ON CONFLICT (minute_us) DO UPDATE SET \
    requests = bouncer_access_log_minutes.requests + excluded.requests, \
    blocked = bouncer_access_log_minutes.blocked + excluded.blocked, \
    would_block = bouncer_access_log_minutes.would_block + excluded.would_block";
/// Counts the minute `$1` (to before `$2`) afresh from its records, after a trim that ended
/// inside it.
const MINUTE_RECOUNT: &str = "INSERT INTO bouncer_access_log_minutes \
    (minute_us, requests, blocked, would_block) \
    SELECT $1, count(*), \
    sum(CASE WHEN decision = 'block' AND enforced THEN 1 ELSE 0 END), \
    sum(CASE WHEN decision = 'block' AND NOT enforced THEN 1 ELSE 0 END) \
    FROM bouncer_access_log WHERE time_us >= $1 AND time_us < $2 \
    GROUP BY time_us / 60000000";

const INSERT_HEAD: &str = "INSERT INTO bouncer_access_log (time_us, method, path, query, body, \
    referrer, ip, user_agent, session, user_id, status, duration_us, bytes_sent, decision, \
    enforced, score, reason) ";

/// The access log in SQLite or PostgreSQL: an [`AccessSink`] that writes each batch in one
/// transaction, with retention and the dashboard's queries.
///
/// [`connect`](Self::connect) creates the table `bouncer_access_log` (its schema version in
/// `bouncer_access_log_schema`) or upgrades it, and refuses a database whose schema is newer
/// than this crate. It may share a database with the rule store, or have one of its own.
///
/// ```no_run
/// use std::time::{Duration, SystemTime};
/// use actix_bouncer::access_log::SqlAccessLog;
///
/// # async fn run() -> Result<(), actix_bouncer::StoreError> {
/// let log = SqlAccessLog::connect("sqlite://access.db").await?;
/// // Keep a week, trimmed every hour off the request path, until `_trimmer` is dropped.
/// let _trimmer = log.trim_every(Duration::from_secs(7 * 86_400), Duration::from_secs(3600))?;
/// let hour_ago = SystemTime::now() - Duration::from_secs(3600);
/// for path in log.top_paths(hour_ago, 10).await?.rows {
///     println!("{} {} ({} blocked)", path.requests, path.path, path.blocked);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SqlAccessLog {
    pool: Pool,
}

impl fmt::Debug for SqlAccessLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::sql::on_pool!(&self.pool, |pool, backend| f
            .debug_struct("SqlAccessLog")
            .field("backend", &backend.name())
            .field("connections", &pool.size())
            .finish())
    }
}

impl SqlAccessLog {
    /// Opens the database at `url` and brings the access log's table up to date:
    ///
    /// - `sqlite://path/to/access.db` (created if missing; WAL journal, so the dashboard's
    ///   reads never wait for the writer), `sqlite::memory:` for a log that lives as long as
    ///   this value;
    /// - `postgres://user:password@host/database` (feature `postgres`).
    ///
    /// Fails when the database cannot be reached, the scheme's feature is off, or the table
    /// was made by a newer version of this crate.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = Pool::connect_paged(url, "access log", Some(SQLITE_PAGE_SIZE)).await?;
        pool.migrate(SCHEMA_TABLE, |backend| schema::of(backend).migrations)
            .await?;
        Ok(SqlAccessLog { pool })
    }

    /// Closes the log's connections (an in-memory SQLite database goes with them).
    pub async fn close(&self) {
        self.pool.close().await
    }

    /// The schema version this crate writes.
    pub fn schema_version() -> usize {
        schema::of(crate::sql::Backend::any()).migrations.len()
    }

    /// Deletes the records from before `older_than`; returns how many. Works in chunks of a
    /// few thousand rows, each its own transaction, so writers (and, in SQLite, the access
    /// log's own writer) get their turn in between.
    pub async fn trim(&self, older_than: SystemTime) -> Result<u64, StoreError> {
        let cutoff = micros(older_than);
        let mut removed = 0u64;
        loop {
            let deleted = crate::sql::on_pool!(&self.pool, |pool, backend| {
                let mut tx = pool
                    .begin_with(backend.begin_write())
                    .await
                    .map_err(failed)?;
                let done = sqlx::query::<Db>(schema::of(backend).trim)
                    .bind(cutoff)
                    .bind(TRIM_CHUNK)
                    .execute(&mut *tx)
                    .await
                    .map_err(failed)?;
                tx.commit().await.map_err(failed)?;
                Ok::<u64, StoreError>(done.rows_affected())
            })?;
            removed += deleted;
            if deleted < TRIM_CHUNK as u64 {
                self.trim_minutes(cutoff).await?;
                return Ok(removed);
            }
            tokio::task::yield_now().await;
        }
    }

    /// Brings the per-minute counts in line with a trim of what is older than `cutoff`: the
    /// minutes wholly before it go, the minute it falls in is counted afresh from what is
    /// left of it (a minute long past: no writer adds to it meanwhile).
    async fn trim_minutes(&self, cutoff: i64) -> Result<(), StoreError> {
        let minute = cutoff / MINUTE_US * MINUTE_US;
        crate::sql::on_pool!(&self.pool, |pool, backend| {
            let mut tx = pool
                .begin_with(backend.begin_write())
                .await
                .map_err(failed)?;
            sqlx::query::<Db>("DELETE FROM bouncer_access_log_minutes WHERE minute_us < $1")
                .bind(minute)
                .execute(&mut *tx)
                .await
                .map_err(failed)?;
            if minute < cutoff {
                sqlx::query::<Db>("DELETE FROM bouncer_access_log_minutes WHERE minute_us = $1")
                    .bind(minute)
                    .execute(&mut *tx)
                    .await
                    .map_err(failed)?;
                sqlx::query::<Db>(MINUTE_RECOUNT)
                    .bind(minute)
                    .bind(minute.saturating_add(MINUTE_US))
                    .execute(&mut *tx)
                    .await
                    .map_err(failed)?;
            }
            tx.commit().await.map_err(failed)
        })
    }

    /// Starts trimming in the background: right away, then every `every`, the records older
    /// than `retain` are deleted (as [`trim`](Self::trim) does), until the returned
    /// [`AccessLogTrimmer`] is dropped. A failed run is logged (`tracing`, target
    /// `actix_bouncer`) and the next one tries again.
    ///
    /// The task runs on the tokio runtime this is called from: call it from the app's `main`
    /// (actix's system runtime), not from a handler, so it stays off the workers that serve
    /// requests. Fails outside a tokio runtime, or when `every` is zero.
    pub fn trim_every(
        &self,
        retain: Duration,
        every: Duration,
    ) -> Result<AccessLogTrimmer, StoreError> {
        self.trim_every_with_clock(retain, every, Arc::new(SystemClock::new()))
    }

    /// [`trim_every`](Self::trim_every), the cutoff read from `clock`'s wall time (tests pass
    /// a [`ManualClock`](crate::clock::ManualClock)).
    pub fn trim_every_with_clock(
        &self,
        retain: Duration,
        every: Duration,
        clock: Arc<dyn Clock>,
    ) -> Result<AccessLogTrimmer, StoreError> {
        if every.is_zero() {
            return Err(StoreError::new(
                "the access log's trim interval must be longer than zero",
            ));
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            StoreError::new("the access log's trimmer must be started inside a tokio runtime")
        })?;
        let log = self.clone();
        let (done, runs) = watch::channel(0u64);
        let task = runtime.spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let cutoff = clock.wall().checked_sub(retain).unwrap_or(UNIX_EPOCH);
                match log.trim(cutoff).await {
                    Ok(removed) => {
                        tracing::debug!(target: "actix_bouncer", removed, "access log trimmed")
                    }
                    Err(error) => {
                        tracing::warn!(target: "actix_bouncer", %error, "access log trim failed")
                    }
                }
                done.send_modify(|n| *n += 1);
            }
        });
        Ok(AccessLogTrimmer { task, runs })
    }
}

/// The background trimmer started by [`SqlAccessLog::trim_every`]; dropping it stops the
/// trimming (a run under way is abandoned, its transaction rolled back).
#[derive(Debug)]
pub struct AccessLogTrimmer {
    task: tokio::task::JoinHandle<()>,
    runs: watch::Receiver<u64>,
}

impl AccessLogTrimmer {
    /// How many runs have finished (failed ones included).
    pub fn runs(&self) -> u64 {
        *self.runs.borrow()
    }

    /// Waits until at least `n` runs have finished.
    pub async fn wait_runs(&self, n: u64) {
        let mut runs = self.runs.clone();
        // The sender lives as long as the task, which only ends when this handle drops.
        let _ = runs.wait_for(|&done| done >= n).await;
    }
}

impl Drop for AccessLogTrimmer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// Constructors for the record types, which are `#[non_exhaustive]`: a sink's tests (these
// ones, the app's) build records without the middleware. They belong beside the types in
// `record.rs`; they are here only because that file was being written at the same time.

/// `batch` cut into statements: [`INSERT_CHUNK`] rows each, then the rest by powers of two.
fn statements<T>(batch: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = batch;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let take = if rest.len() >= INSERT_CHUNK {
            INSERT_CHUNK
        } else {
            // The largest power of two not above what is left.
            1 << (usize::BITS - 1 - rest.len().leading_zeros())
        };
        let (now, later) = rest.split_at(take);
        rest = later;
        Some(now)
    })
}

/// Each minute's `[minute_us, requests, blocked, would_block]` in `batch`, oldest first.
fn minutes(batch: &[AccessRecord]) -> Vec<[i64; 4]> {
    let mut by_minute = std::collections::BTreeMap::<i64, [i64; 3]>::new();
    for r in batch {
        let minute = micros(r.time) / MINUTE_US * MINUTE_US;
        let counts = by_minute.entry(minute).or_default();
        counts[0] += 1;
        match &r.verdict {
            Some(v) if v.decision == Decision::Block && v.enforced => counts[1] += 1,
            Some(v) if v.decision == Decision::Block => counts[2] += 1,
            _ => {}
        }
    }
    by_minute
        .into_iter()
        .map(|(minute, [requests, blocked, would_block])| [minute, requests, blocked, would_block])
        .collect()
}

fn decision_text(decision: Decision) -> &'static str {
    match decision {
        Decision::Allow => "allow",
        Decision::Block => "block",
    }
}

impl AccessSink for SqlAccessLog {
    async fn write(&self, batch: &[AccessRecord]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        crate::sql::on_pool!(&self.pool, |pool, backend| {
            let mut tx = pool
                .begin_with(backend.begin_write())
                .await
                .map_err(failed)?;
            for setting in schema::of(backend).before_write {
                sqlx::query(setting)
                    .execute(&mut *tx)
                    .await
                    .map_err(failed)?;
            }
            for chunk in statements(batch) {
                let mut insert = sqlx::QueryBuilder::<Db>::new(INSERT_HEAD);
                insert.push_values(chunk, |mut row, r| {
                    let verdict = r.verdict.as_ref();
                    row.push_bind(micros(r.time))
                        .push_bind(r.method.as_str())
                        .push_bind(r.path.as_str())
                        .push_bind(r.query.as_deref())
                        .push_bind(r.body.as_deref())
                        .push_bind(r.referrer.as_deref())
                        .push_bind(r.ip.to_string())
                        .push_bind(r.user_agent.as_deref())
                        .push_bind(r.session.as_deref())
                        .push_bind(r.user.as_deref())
                        .push_bind(i32::from(r.status))
                        .push_bind(i64::try_from(r.duration.as_micros()).unwrap_or(i64::MAX))
                        .push_bind(i64::try_from(r.bytes_sent).unwrap_or(i64::MAX))
                        .push_bind(verdict.map(|v| decision_text(v.decision)))
                        .push_bind(verdict.map(|v| v.enforced))
                        .push_bind(verdict.map(|v| i32::from(v.score)))
                        .push_bind(verdict.and_then(|v| v.reason).map(|r| r.as_str()));
                });
                insert.build().execute(&mut *tx).await.map_err(failed)?;
            }
            let minutes = minutes(batch);
            for chunk in statements(&minutes) {
                let mut add = sqlx::QueryBuilder::<Db>::new(MINUTES_HEAD);
                add.push_values(chunk, |mut row, m| {
                    row.push_bind(m[0])
                        .push_bind(m[1])
                        .push_bind(m[2])
                        .push_bind(m[3]);
                });
                add.push(MINUTES_ADD);
                add.build().execute(&mut *tx).await.map_err(failed)?;
            }
            tx.commit().await.map_err(failed)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_cut_into_a_few_statement_sizes() {
        let record = |_| AccessRecord::new(UNIX_EPOCH, [127, 0, 0, 1].into(), "GET", "/");
        let batch: Vec<AccessRecord> = (0..3000).map(record).collect();
        for n in [0, 1, 2, 3, 1023, 1024, 1025, 2047, 3000] {
            let sizes: Vec<usize> = statements(&batch[..n]).map(<[_]>::len).collect();
            assert_eq!(sizes.iter().sum::<usize>(), n);
            assert!(sizes
                .iter()
                .all(|s| s.is_power_of_two() && *s <= INSERT_CHUNK));
            assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{sizes:?}");
        }
        assert_eq!(
            statements(&batch[..1027])
                .map(<[_]>::len)
                .collect::<Vec<_>>(),
            [1024, 2, 1]
        );
    }
}
