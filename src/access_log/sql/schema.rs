//! The access log's table, per backend, and the migrations that make it.
//!
//! The table lives beside the rule store's (and the app's own) tables: `bouncer_access_log`,
//! its schema version in `bouncer_access_log_schema`, so the log and the rules migrate
//! independently and may even live in different databases. Migrations only ever append; a
//! database beyond the list was made by a newer crate and is refused. Each backend's DDL is
//! written out in full: a migration is frozen text.
//!
//! The columns mirror the Django article's `AccessLogsModel` (path, query, body, referrer, ip,
//! user agent, session, user, time) plus what [`AccessRecord`](super::super::AccessRecord)
//! adds: the response (status, duration, bytes) and the bouncer's verdict. Times and
//! durations are microseconds (`BIGINT`), the IP its canonical text.
//!
//! The indexes are those the queries in `queries.rs` need, and no more: every index costs
//! each insert.
//!
//! - `bouncer_access_log_time (time_us, decision, enforced, ip, path)`: retention (`time_us`
//!   alone), and, covering, the dashboard's counts over a time window (top paths, top IPs,
//!   blocked over time) read the window's index entries only, never the table.
//! - `bouncer_access_log_ip (day, ip, time_us)`: one client's recent activity, newest first,
//!   read a day at a time from the newest (`day` is `time_us / 86400000000`, an expression
//!   index: no column to fill).
//! - `bouncer_access_log_user (day, user_id, time_us)`, partial (only rows with a user):
//!   one user's recent activity, the same way.
//! - `bouncer_access_log_path (day, path, time_us)`: a path's recent requests, the same way
//!   (the article indexes the path alone).
//! - `bouncer_access_log_blocked (time_us, enforced, reason, ip)`, partial (only records the
//!   bouncer refused, or would have in monitor mode: `decision = 'block'`), covering: the
//!   dashboard's top blocked clients and block reasons read the blocked records of a window
//!   only, a small share of the traffic on most days. It costs an index entry per blocked
//!   record on ingest, nothing for the others (BENCHMARKS.md, "Dashboard data at one million
//!   rows").
//!
//! The "top" and "reasons" queries read at most the newest
//! [`TOP_READ_MAX`](super::TOP_READ_MAX) records of their window (see `queries.rs`): each has
//! a probe here that finds where those newest records start, through the same index.
//!
//! Why the day leads: a batch holds thousands of clients, and an index led by the client
//! takes each new entry at that client's place, so a batch dirties a page per client across
//! the whole index (written out at commit, again at checkpoint). Led by the day, a batch only
//! writes into today's part of the index, a seventh of it with a week kept: sustained ingest
//! into SQLite goes from some 30,000 rows/s to over 50,000 (BENCHMARKS.md). For the same
//! reason the log's SQLite file uses 32 KiB pages (fewer, fuller pages per batch); a file
//! made before keeps its page size.
//!
//! `bouncer_access_log_minutes` holds each minute's requests, refused and would-be-refused
//! counts, kept by the writer in the same transaction as the records and by `trim`, so the
//! dashboard's traffic over a day or a week reads a row a minute, not every record.
//!
//! PostgreSQL differs where its B-tree entries' size limit (some 2,700 bytes) meets text a
//! client wrote: the user id and the path are indexed by their first 256 characters (the query compares the
//! prefix through the index, then the whole text), and the time index covers the decision and
//! the IP but not the path (top paths read the window's rows).

use crate::sql::{Backend, Migrations};

/// Where the schema version lives (the same in both backends).
pub(super) const SCHEMA_TABLE: &str = "bouncer_access_log_schema";

/// Fills the per-minute counts from the records (in migration 3, when a log made before it
/// is upgraded): the same counts the writer keeps.
const MINUTES_FROM_RECORDS: &str = "INSERT INTO bouncer_access_log_minutes \
    (minute_us, requests, blocked, would_block) \
    SELECT (time_us / 60000000) * 60000000, count(*), \
    sum(CASE WHEN decision = 'block' AND enforced THEN 1 ELSE 0 END), \
    sum(CASE WHEN decision = 'block' AND NOT enforced THEN 1 ELSE 0 END) \
    FROM bouncer_access_log GROUP BY (time_us / 60000000) * 60000000";

/// One subject's most recent records of day `$1` (days since the epoch), at most `$3`, newest
/// first: `$filter` picks the subject (`$2`). Its columns are those `queries::RecordRow` reads.
macro_rules! activity_query {
    ($filter:literal) => {
        concat!(
            "SELECT id, time_us, method, path, query, body, referrer, ip, user_agent, session, \
             user_id, status, duration_us, bytes_sent, decision, enforced, score, reason \
             FROM bouncer_access_log WHERE time_us / 86400000000 = $1 AND ",
            $filter,
            " ORDER BY time_us DESC, id DESC LIMIT $3"
        )
    };
}
pub(super) use activity_query;

/// A "top" query's last columns over all records: how many of a group's were refused, and
/// how many records the window held in all (summed over the groups, before the limit).
macro_rules! blocked_sums {
    () => {
        "CAST(sum(CASE WHEN decision = 'block' AND enforced THEN 1 ELSE 0 END) AS BIGINT) \
         AS blocked, CAST(sum(count(*)) OVER () AS BIGINT) AS seen"
    };
}

/// The same over blocked records only: refused, would have been refused (monitor mode), and
/// the blocked records the window held.
macro_rules! refused_sums {
    () => {
        "CAST(sum(CASE WHEN enforced THEN 1 ELSE 0 END) AS BIGINT) AS blocked, \
         CAST(sum(CASE WHEN NOT enforced THEN 1 ELSE 0 END) AS BIGINT) AS would_block, \
         CAST(sum(count(*)) OVER () AS BIGINT) AS seen"
    };
}

/// What differs between the backends.
pub(super) struct Dialect {
    /// Migration `i` brings the schema from version `i` to `i + 1`.
    pub(super) migrations: Migrations,
    /// One user's (`$2`) most recent records of day `$1`, at most `$3`, newest first, with
    /// the columns of [`activity_query`].
    pub(super) user_activity: &'static str,
    /// The same for a path (`$2`).
    pub(super) path_activity: &'static str,
    /// The `$2` paths requested most since `$1`: path, requests, blocked, and the records read
    /// in all (the same on every row). Each "top" query answers these four columns.
    pub(super) top_paths: &'static str,
    /// The `$2` clients with the most requests since `$1`: ip, requests, blocked.
    pub(super) top_ips: &'static str,
    /// The time of the record `$2` places from the newest among those since `$1` (none when
    /// the window holds no more than `$2`): where a window cut to its newest `$2` records
    /// starts, read off the time index.
    pub(super) newest_edge: &'static str,
    /// The same among the blocked records (`decision = 'block'`), off the blocked index.
    pub(super) newest_blocked_edge: &'static str,
    /// The `$2` clients with the most refused requests since `$1`: ip, refused, would have
    /// been refused (monitor mode), blocked records read in all.
    pub(super) top_blocked_ips: &'static str,
    /// Blocked records since `$1` by reason (at most `$2` reasons): reason, refused, would have
    /// been refused, blocked records read in all.
    pub(super) block_reasons: &'static str,
    /// Deletes the `$2` oldest records from before `$1`, oldest first (the time index serves
    /// both the filter and the order).
    pub(super) trim: &'static str,
    /// Settings for the connection, run at the start of each batch's transaction.
    pub(super) before_write: &'static [&'static str],
}

// A request counts as blocked when it was refused (`decision = 'block' AND enforced`), not
// merely flagged in monitor mode.

/// The dialect of `backend`.
pub(super) fn of(backend: Backend) -> &'static Dialect {
    match backend {
        #[cfg(feature = "sqlite")]
        Backend::Sqlite => &SQLITE,
        #[cfg(feature = "postgres")]
        Backend::Postgres => &POSTGRES,
    }
}

#[cfg(feature = "sqlite")]
const SQLITE: Dialect = Dialect {
    migrations: SQLITE_MIGRATIONS,
    user_activity: activity_query!("user_id = $2"),
    path_activity: activity_query!("path = $2"),
    // Named: without statistics SQLite may rather walk a whole index in the grouping's order
    // (the IP index, to group without sorting) than read just the window's entries of the
    // covering time index.
    top_paths: concat!(
        "SELECT path, count(*) AS requests, ",
        blocked_sums!(),
        " FROM bouncer_access_log INDEXED BY bouncer_access_log_time WHERE time_us >= $1 \
        GROUP BY path ORDER BY requests DESC, path LIMIT $2"
    ),
    top_ips: concat!(
        "SELECT ip, count(*) AS requests, ",
        blocked_sums!(),
        " FROM bouncer_access_log INDEXED BY bouncer_access_log_time WHERE time_us >= $1 \
        GROUP BY ip ORDER BY requests DESC, ip LIMIT $2"
    ),
    newest_edge: "SELECT time_us FROM bouncer_access_log INDEXED BY bouncer_access_log_time \
        WHERE time_us >= $1 ORDER BY time_us DESC LIMIT 1 OFFSET $2",
    newest_blocked_edge: "SELECT time_us FROM bouncer_access_log \
        INDEXED BY bouncer_access_log_blocked WHERE decision = 'block' AND time_us >= $1 \
        ORDER BY time_us DESC LIMIT 1 OFFSET $2",
    top_blocked_ips: concat!(
        "SELECT ip, ",
        refused_sums!(),
        " FROM bouncer_access_log INDEXED BY bouncer_access_log_blocked \
        WHERE decision = 'block' AND time_us >= $1 \
        GROUP BY ip ORDER BY blocked DESC, would_block DESC, ip LIMIT $2"
    ),
    block_reasons: concat!(
        "SELECT reason, ",
        refused_sums!(),
        " FROM bouncer_access_log INDEXED BY bouncer_access_log_blocked \
        WHERE decision = 'block' AND time_us >= $1 \
        GROUP BY reason ORDER BY blocked DESC, would_block DESC, coalesce(reason, '') LIMIT $2"
    ),
    trim: "DELETE FROM bouncer_access_log WHERE id IN \
        (SELECT id FROM bouncer_access_log WHERE time_us < $1 ORDER BY time_us LIMIT $2)",
    // Per connection, so set where the writes happen: a page cache that holds the indexes'
    // hot pages (64 MiB; SQLite's default is 2 MiB, and every miss is a read and, when the
    // page is dirty, a write), and a write-ahead log checkpointed every ~40 MiB rather than
    // every 4 MiB (a page written by several batches in between is copied back once). Each
    // roughly doubles the rows per second of a sustained ingest.
    before_write: &[
        "PRAGMA cache_size = -65536",
        "PRAGMA wal_autocheckpoint = 10000",
    ],
};

#[cfg(feature = "postgres")]
const POSTGRES: Dialect = Dialect {
    migrations: POSTGRES_MIGRATIONS,
    // The index holds the first 256 characters (see the module docs): compared through it,
    // then whole.
    user_activity: activity_query!("left(user_id, 256) = left($2, 256) AND user_id = $2"),
    path_activity: activity_query!("left(path, 256) = left($2, 256) AND path = $2"),
    top_paths: concat!(
        "SELECT path, count(*) AS requests, ",
        blocked_sums!(),
        " FROM bouncer_access_log WHERE time_us >= $1 \
        GROUP BY path ORDER BY requests DESC, path LIMIT $2"
    ),
    top_ips: concat!(
        "SELECT ip, count(*) AS requests, ",
        blocked_sums!(),
        " FROM bouncer_access_log WHERE time_us >= $1 \
        GROUP BY ip ORDER BY requests DESC, ip LIMIT $2"
    ),
    newest_edge: "SELECT time_us FROM bouncer_access_log WHERE time_us >= $1 \
        ORDER BY time_us DESC LIMIT 1 OFFSET $2",
    newest_blocked_edge: "SELECT time_us FROM bouncer_access_log \
        WHERE decision = 'block' AND time_us >= $1 ORDER BY time_us DESC LIMIT 1 OFFSET $2",
    top_blocked_ips: concat!(
        "SELECT ip, ",
        refused_sums!(),
        " FROM bouncer_access_log WHERE decision = 'block' AND time_us >= $1 \
        GROUP BY ip ORDER BY blocked DESC, would_block DESC, ip LIMIT $2"
    ),
    block_reasons: concat!(
        "SELECT reason, ",
        refused_sums!(),
        " FROM bouncer_access_log WHERE decision = 'block' AND time_us >= $1 \
        GROUP BY reason ORDER BY blocked DESC, would_block DESC, coalesce(reason, '') LIMIT $2"
    ),
    // `= ANY(ARRAY(…))`: the ids come as one array, looked up in the primary key; with `IN
    // (SELECT …)` the planner may hash-join against the whole table.
    trim: "DELETE FROM bouncer_access_log WHERE id = ANY(ARRAY( \
        SELECT id FROM bouncer_access_log WHERE time_us < $1 ORDER BY time_us LIMIT $2))",
    before_write: &[],
};

#[cfg(feature = "sqlite")]
const SQLITE_MIGRATIONS: Migrations = &[
    &[
        // `INTEGER PRIMARY KEY` is the rowid: ids increase with each insert, and a deleted id may
        // come back after the newest row is trimmed, which nothing here relies on.
        "CREATE TABLE bouncer_access_log (
        id INTEGER PRIMARY KEY,
        time_us BIGINT NOT NULL,
        method TEXT NOT NULL,
        path TEXT NOT NULL,
        query TEXT,
        body TEXT,
        referrer TEXT,
        ip TEXT NOT NULL,
        user_agent TEXT,
        session TEXT,
        user_id TEXT,
        status INTEGER NOT NULL,
        duration_us BIGINT NOT NULL,
        bytes_sent BIGINT NOT NULL,
        decision TEXT,
        enforced BOOLEAN,
        score INTEGER,
        reason TEXT
    )",
        "CREATE INDEX bouncer_access_log_time \
     ON bouncer_access_log (time_us, decision, enforced, ip, path)",
        "CREATE INDEX bouncer_access_log_ip ON bouncer_access_log (ip, time_us)",
        "CREATE INDEX bouncer_access_log_user ON bouncer_access_log (user_id, time_us) \
     WHERE user_id IS NOT NULL",
    ],
    &[
        // 2: the client and user indexes led by the day (see the module docs).
        "DROP INDEX bouncer_access_log_ip",
        "DROP INDEX bouncer_access_log_user",
        "CREATE INDEX bouncer_access_log_ip \
     ON bouncer_access_log (time_us / 86400000000, ip, time_us)",
        "CREATE INDEX bouncer_access_log_user \
     ON bouncer_access_log (time_us / 86400000000, user_id, time_us) WHERE user_id IS NOT NULL",
    ],
    &[
        // 3: the per-minute counts (see the module docs), filled from what is there, and the
        // path index, led by the day like the others.
        "CREATE TABLE bouncer_access_log_minutes (
        minute_us BIGINT NOT NULL PRIMARY KEY,
        requests BIGINT NOT NULL,
        blocked BIGINT NOT NULL,
        would_block BIGINT NOT NULL
    ) WITHOUT ROWID",
        MINUTES_FROM_RECORDS,
        "CREATE INDEX bouncer_access_log_path \
     ON bouncer_access_log (time_us / 86400000000, path, time_us)",
    ],
    &[
        // 4: the blocked records' index (see the module docs).
        "CREATE INDEX bouncer_access_log_blocked \
     ON bouncer_access_log (time_us, enforced, reason, ip) WHERE decision = 'block'",
    ],
];

#[cfg(feature = "postgres")]
const POSTGRES_MIGRATIONS: Migrations = &[
    &[
        "CREATE TABLE bouncer_access_log (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        time_us BIGINT NOT NULL,
        method TEXT NOT NULL,
        path TEXT NOT NULL,
        query TEXT,
        body TEXT,
        referrer TEXT,
        ip TEXT NOT NULL,
        user_agent TEXT,
        session TEXT,
        user_id TEXT,
        status INTEGER NOT NULL,
        duration_us BIGINT NOT NULL,
        bytes_sent BIGINT NOT NULL,
        decision TEXT,
        enforced BOOLEAN,
        score INTEGER,
        reason TEXT
    )",
        // A B-tree entry holds at most some 2,700 bytes: a user id (client-written text, in
        // some apps) is indexed by its first 256 characters, and compared in full after.
        "CREATE INDEX bouncer_access_log_time \
     ON bouncer_access_log (time_us) INCLUDE (decision, enforced, ip)",
        "CREATE INDEX bouncer_access_log_ip ON bouncer_access_log (ip, time_us, id)",
        "CREATE INDEX bouncer_access_log_user \
     ON bouncer_access_log ((left(user_id, 256)), time_us, id) WHERE user_id IS NOT NULL",
    ],
    &[
        // 2: the client and user indexes led by the day (see the module docs).
        "DROP INDEX bouncer_access_log_ip",
        "DROP INDEX bouncer_access_log_user",
        "CREATE INDEX bouncer_access_log_ip \
     ON bouncer_access_log ((time_us / 86400000000), ip, time_us, id)",
        "CREATE INDEX bouncer_access_log_user ON bouncer_access_log \
     ((time_us / 86400000000), (left(user_id, 256)), time_us, id) WHERE user_id IS NOT NULL",
    ],
    &[
        // 3: the per-minute counts (see the module docs), filled from what is there, and the
        // path index, led by the day like the others.
        "CREATE TABLE bouncer_access_log_minutes (
        minute_us BIGINT NOT NULL PRIMARY KEY,
        requests BIGINT NOT NULL,
        blocked BIGINT NOT NULL,
        would_block BIGINT NOT NULL
    )",
        MINUTES_FROM_RECORDS,
        "CREATE INDEX bouncer_access_log_path ON bouncer_access_log \
     ((time_us / 86400000000), (left(path, 256)), time_us, id)",
    ],
    &[
        // 4: the blocked records' index (see the module docs).
        "CREATE INDEX bouncer_access_log_blocked ON bouncer_access_log (time_us) \
     INCLUDE (enforced, reason, ip) WHERE decision = 'block'",
    ],
];
