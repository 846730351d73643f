//! What every part kept in SQL shares (the rule store, the access log): opening a pool for a
//! `sqlite://` or `postgres://` URL with the same settings, running one query text on either
//! backend ([`on_pool!`]), schema migrations with a version table per part, and times as
//! microseconds.
//!
//! Queries are written once with `$n` parameters, which sqlx's SQLite driver reads too.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::store_error::StoreError;

/// How long a pool call waits for a connection before it fails (a store that is down fails
/// fast, and whoever called retries later).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections per pool (SQLite files and PostgreSQL; an in-memory SQLite database has one).
const MAX_CONNECTIONS: u32 = 4;

/// A connection pool to one of the backends.
#[derive(Clone)]
pub(crate) enum Pool {
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
}

/// Which backend a pool talks to, and the SQL that differs between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    #[cfg(feature = "sqlite")]
    Sqlite,
    #[cfg(feature = "postgres")]
    Postgres,
}

impl Backend {
    /// A backend this build has, for what every backend has alike (such as how many
    /// migrations a part has: the backends move in step).
    pub(crate) fn any() -> Backend {
        #[cfg(feature = "sqlite")]
        return Backend::Sqlite;
        #[cfg(not(feature = "sqlite"))]
        return Backend::Postgres;
    }

    /// The backend's name, for errors.
    pub(crate) fn name(self) -> &'static str {
        match self {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite => "SQLite",
            #[cfg(feature = "postgres")]
            Backend::Postgres => "PostgreSQL",
        }
    }

    /// Starts a transaction that writes: it waits for other writers rather than failing
    /// half-way (SQLite's `IMMEDIATE`).
    pub(crate) fn begin_write(self) -> &'static str {
        match self {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite => "BEGIN IMMEDIATE",
            #[cfg(feature = "postgres")]
            Backend::Postgres => "BEGIN",
        }
    }

    /// Starts a transaction that reads one consistent snapshot.
    pub(crate) fn begin_read(self) -> &'static str {
        match self {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite => "BEGIN",
            #[cfg(feature = "postgres")]
            Backend::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        }
    }

    /// Makes two instances migrating at once take turns (inside the write transaction).
    fn migration_lock(self) -> Option<&'static str> {
        match self {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite => None,
            // Any constant will do, as long as it is this crate's: "bouncer" in ASCII.
            #[cfg(feature = "postgres")]
            Backend::Postgres => Some("SELECT pg_advisory_xact_lock(110101111117110)"),
        }
    }
}

/// Runs `$body` with `$pool` bound to the sqlx pool inside `$p` (a `&Pool`), `$backend` to its
/// [`Backend`], and the type `Db` to its sqlx database. The body is compiled once per backend.
macro_rules! on_pool {
    ($p:expr, |$pool:ident, $backend:ident| $body:expr) => {
        match $p {
            #[cfg(feature = "sqlite")]
            $crate::sql::Pool::Sqlite($pool) => {
                #[allow(dead_code)]
                type Db = sqlx::Sqlite;
                #[allow(unused_variables)]
                let $backend = $crate::sql::Backend::Sqlite;
                $body
            }
            #[cfg(feature = "postgres")]
            $crate::sql::Pool::Postgres($pool) => {
                #[allow(dead_code)]
                type Db = sqlx::Postgres;
                #[allow(unused_variables)]
                let $backend = $crate::sql::Backend::Postgres;
                $body
            }
        }
    };
}
pub(crate) use on_pool;

/// A driver error as a store error.
pub(crate) fn failed(error: sqlx::Error) -> StoreError {
    StoreError::new(error)
}

/// Microseconds since the epoch (negative before it), saturating: how times are stored.
pub(crate) fn micros(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_micros()).map_or(i64::MIN, |us| -us),
    }
}

/// The time `us` microseconds from the epoch.
pub(crate) fn time(us: i64) -> SystemTime {
    let magnitude = Duration::from_micros(us.unsigned_abs());
    if us >= 0 {
        UNIX_EPOCH + magnitude
    } else {
        UNIX_EPOCH - magnitude
    }
}

/// A part's migrations for one backend: migration `i` brings its schema from version `i` to
/// `i + 1`. Lists only ever grow; a database beyond the list was made by a newer crate.
pub(crate) type Migrations = &'static [&'static [&'static str]];

impl Pool {
    /// Opens `url`: `sqlite://path.db` (created if missing; WAL journal, so readers never wait
    /// for the writer), `sqlite::memory:` (one connection, kept: the database lives in it), or
    /// `postgres://user:password@host/db`. `what` names the part in errors ("rule store").
    pub(crate) async fn connect(url: &str, what: &str) -> Result<Self, StoreError> {
        Self::connect_paged(url, what, None).await
    }

    /// [`connect`](Self::connect), a new SQLite file made with pages of `page_size` bytes (a
    /// power of two from 512 to 65,536; SQLite's default is 4,096). A file that exists keeps
    /// its own.
    pub(crate) async fn connect_paged(
        url: &str,
        what: &str,
        page_size: Option<u32>,
    ) -> Result<Self, StoreError> {
        #[cfg(not(feature = "sqlite"))]
        let _ = page_size;
        let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
        match scheme {
            #[cfg(feature = "sqlite")]
            "sqlite" => Ok(Pool::Sqlite(sqlite_pool(url, page_size).await?)),
            #[cfg(feature = "postgres")]
            "postgres" | "postgresql" => Ok(Pool::Postgres(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(MAX_CONNECTIONS)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect(url)
                    .await
                    .map_err(failed)?,
            )),
            _ => Err(StoreError::new(format!(
                "cannot open the {what} at a {scheme:?} URL: expected sqlite:// (feature \
                 `sqlite`) or postgres:// (feature `postgres`)"
            ))),
        }
    }

    /// Closes every connection (an in-memory SQLite database goes with them).
    pub(crate) async fn close(&self) {
        on_pool!(self, |pool, _backend| pool.close().await)
    }

    /// Brings a part's tables up to date, its schema version kept in the one-row table
    /// `version_table` (so parts, and the app's own migrations, live side by side). Fails when
    /// the database is newer than `migrations`. Two instances migrating at once take turns.
    pub(crate) async fn migrate(
        &self,
        version_table: &'static str,
        migrations: impl Fn(Backend) -> Migrations,
    ) -> Result<(), StoreError> {
        on_pool!(self, |pool, backend| {
            let migrations = migrations(backend);
            let mut tx = pool
                .begin_with(backend.begin_write())
                .await
                .map_err(failed)?;
            if let Some(lock) = backend.migration_lock() {
                sqlx::query(lock).execute(&mut *tx).await.map_err(failed)?;
            }
            sqlx::query(&format!(
                "CREATE TABLE IF NOT EXISTS {version_table} (version BIGINT NOT NULL)"
            ))
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
            let current: Option<i64> =
                sqlx::query_scalar(&format!("SELECT version FROM {version_table}"))
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(failed)?;
            let known = migrations.len();
            let at = match current {
                Some(v) if v < 0 || v as usize > known => {
                    return Err(StoreError::new(format!(
                        "the {} database's {version_table} is at schema version {v}, newer than \
                         this actix-bouncer knows ({known}); upgrade actix-bouncer",
                        backend.name()
                    )))
                }
                Some(v) => v as usize,
                None => {
                    sqlx::query(&format!("INSERT INTO {version_table} (version) VALUES (0)"))
                        .execute(&mut *tx)
                        .await
                        .map_err(failed)?;
                    0
                }
            };
            for (i, steps) in migrations.iter().enumerate().skip(at) {
                for step in *steps {
                    sqlx::query(step).execute(&mut *tx).await.map_err(|e| {
                        StoreError::new(format!(
                            "{version_table}: schema migration {} failed: {e}",
                            i + 1
                        ))
                    })?;
                }
                sqlx::query(&format!("UPDATE {version_table} SET version = $1"))
                    .bind(i as i64 + 1)
                    .execute(&mut *tx)
                    .await
                    .map_err(failed)?;
            }
            tx.commit().await.map_err(failed)
        })
    }
}

#[cfg(feature = "sqlite")]
async fn sqlite_pool(url: &str, page_size: Option<u32>) -> Result<sqlx::SqlitePool, StoreError> {
    use std::str::FromStr;

    use sqlx::sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
    };

    /// How long a writer waits for another (a second instance on the same file).
    const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

    let options = SqliteConnectOptions::from_str(url)
        .map_err(failed)?
        .create_if_missing(true)
        .busy_timeout(BUSY_TIMEOUT);
    let options = match page_size {
        Some(bytes) => options.page_size(bytes),
        None => options,
    };
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    let pool = if in_memory {
        // One connection, kept for good: the database lives in it.
        SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
    } else {
        SqlitePoolOptions::new().max_connections(MAX_CONNECTIONS)
    };
    let options = if in_memory {
        options
    } else {
        // WAL: readers never wait for the writer; NORMAL sync is safe with WAL (a crash loses at
        // most the last transactions, never the file).
        options
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
    };
    pool.acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_to_the_microsecond() {
        for t in [
            UNIX_EPOCH,
            UNIX_EPOCH + Duration::from_micros(1_764_000_000_123_456),
            UNIX_EPOCH - Duration::from_secs(86_400),
        ] {
            assert_eq!(time(micros(t)), t);
        }
    }
}
