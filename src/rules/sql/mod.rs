//! [`SqlRuleStore`]: rules in SQLite (feature `sqlite`, the default: a file, nothing to start)
//! or PostgreSQL (feature `postgres`), through sqlx.
//!
//! One code path serves both: every query is written once, and [`crate::sql`]'s `on_pool!`
//! runs it on whichever pool the store holds (the connection set-up and migrations are shared
//! with the access log there). What differs here (the tables' DDL, the bulk-load query) is in
//! `schema.rs`; rows become rules in `rows.rs`.

mod rows;
mod schema;

use std::fmt;
use std::time::SystemTime;

use sqlx::{FromRow, Row};

use self::rows::{keep_good, loaded, rule, LoadedRow, RuleRow, LOADED_COLUMNS, RULE_COLUMNS};
use self::schema::{Dialect, REMOVALS_KEPT, SCHEMA_TABLE};
use super::model::{Rule, RuleAction, RuleDraft, RuleId, RuleSource};
use super::query::{ListQuery, RulePage, RuleState, Trim, LIST_SCAN_MAX};
use super::store::{Changes, Loaded, RuleStore, Seed, Seeded};
use crate::sql::{failed, micros, time, Pool};
use crate::store_error::StoreError;

/// Rows per multi-row `INSERT` (SQLite allows 32,766 parameters a statement; 8 a row).
const INSERT_CHUNK: usize = 1000;
/// Rules per batch when loading: some 400 KB of text each.
const LOAD_BATCH: i64 = 10_000;

/// A [`RuleStore`] in SQLite or PostgreSQL.
///
/// [`connect`](Self::connect) creates the tables (prefixed `bouncer_`, beside any of the
/// app's) or upgrades them, and refuses a database whose schema is newer than this crate.
/// Several instances may share one database: each learns of the others' changes through
/// [`RuleStore::changes_since`], which reads only what changed.
///
/// ```no_run
/// use actix_bouncer::rules::{ListQuery, RuleStore, SqlRuleStore};
///
/// # async fn run() -> Result<(), actix_bouncer::StoreError> {
/// let store = SqlRuleStore::connect("sqlite://bouncer.db").await?;
/// let page = store.list(ListQuery::default(), std::time::SystemTime::now()).await?;
/// println!("{} rules", page.rules.len());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SqlRuleStore {
    pool: Pool,
}

/// Runs `$body` on the store's pool with `$dialect` bound to this backend's [`Dialect`]; see
/// [`crate::sql::on_pool`].
macro_rules! on_pool {
    ($store:expr, |$pool:ident, $dialect:ident| $body:expr) => {
        crate::sql::on_pool!(&$store.pool, |$pool, backend| {
            let $dialect: &Dialect = schema::of(backend);
            $body
        })
    };
}

/// Moves the store's version on, in a write transaction; returns the new version. First in
/// every write, so writers take turns here.
macro_rules! next_version {
    ($tx:expr) => {
        sqlx::query_scalar::<Db, i64>(
            "UPDATE bouncer_meta SET version = version + 1 WHERE id = 1 RETURNING version",
        )
        .fetch_one(&mut *$tx)
        .await
        .map_err(failed)?
    };
}

/// Records the removal of `ids` at `version`.
macro_rules! record_removals {
    ($tx:expr, $ids:expr, $version:expr, $now:expr) => {
        for chunk in $ids.chunks(INSERT_CHUNK) {
            let mut insert = sqlx::QueryBuilder::<Db>::new(
                "INSERT INTO bouncer_removals (rule_id, version, removed_us) ",
            );
            insert.push_values(chunk, |mut row, id| {
                row.push_bind(*id).push_bind($version).push_bind($now);
            });
            insert.build().execute(&mut *$tx).await.map_err(failed)?;
        }
    };
}

/// Inserts `drafts` (with their seed keys) at `version`; returns the rules with their ids.
macro_rules! insert_rules {
    ($tx:expr, $drafts:expr, $version:expr) => {{
        let drafts: Vec<(RuleDraft, Option<String>)> = $drafts;
        let mut rules = Vec::with_capacity(drafts.len());
        for chunk in drafts.chunks(INSERT_CHUNK) {
            let mut insert = sqlx::QueryBuilder::<Db>::new(
                "INSERT INTO bouncer_rules \
                 (target, action, source, expires_us, created_us, comment, seed_key, version) ",
            );
            insert.push_values(chunk, |mut row, (draft, seed)| {
                row.push_bind(draft.target.to_string())
                    .push_bind(draft.action.as_str())
                    .push_bind(<&'static str>::from(draft.source))
                    .push_bind(draft.expires.map(micros))
                    .push_bind(micros(draft.created))
                    .push_bind(draft.comment.clone())
                    .push_bind(seed.clone())
                    .push_bind($version);
            });
            insert.push(" RETURNING id");
            let mut ids: Vec<i64> = insert
                .build_query_scalar()
                .fetch_all(&mut *$tx)
                .await
                .map_err(failed)?;
            // Ids are drawn row by row in VALUES order while this writer holds the version
            // lock; RETURNING's order is not promised, so sort.
            ids.sort_unstable();
            if ids.len() != chunk.len() {
                return Err(StoreError::new("the database returned fewer ids than rows"));
            }
            for (id, (draft, _)) in ids.into_iter().zip(chunk) {
                rules.push(as_stored(draft.clone().with_id(RuleId(id as u64))));
            }
        }
        rules
    }};
}

/// `rule` with its times as the database keeps them (to the microsecond), so what `insert`
/// returns equals what `get` reads back.
fn as_stored(mut rule: Rule) -> Rule {
    rule.created = time(micros(rule.created));
    rule.expires = rule.expires.map(|at| time(micros(at)));
    rule
}

impl fmt::Debug for SqlRuleStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        on_pool!(self, |pool, dialect| f
            .debug_struct("SqlRuleStore")
            .field("backend", &dialect.backend.name())
            .field("connections", &pool.size())
            .finish())
    }
}

impl SqlRuleStore {
    /// Opens the database at `url` and brings its tables up to date:
    ///
    /// - `sqlite://path/to/rules.db` (created if missing; WAL journal, so readers never wait
    ///   for the writer), `sqlite::memory:` for a database that lives as long as the store;
    /// - `postgres://user:password@host/database` (feature `postgres`).
    ///
    /// Fails when the database cannot be reached, the scheme's feature is off, or the tables
    /// were made by a newer version of this crate.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = Pool::connect(url, "rule store").await?;
        let store = SqlRuleStore { pool };
        store
            .pool
            .migrate(SCHEMA_TABLE, |backend| schema::of(backend).migrations)
            .await?;
        store.prune_removals(SystemTime::now()).await?;
        Ok(store)
    }

    /// Closes the store's connections (an in-memory SQLite database goes with them).
    pub async fn close(&self) {
        self.pool.close().await
    }

    /// The schema version this crate writes.
    pub fn schema_version() -> usize {
        schema::of(crate::sql::Backend::any()).migrations.len()
    }

    /// Forgets removals older than [`REMOVALS_KEPT`]; a reader behind them reloads.
    async fn prune_removals(&self, now: SystemTime) -> Result<(), StoreError> {
        let cutoff = micros(
            now.checked_sub(REMOVALS_KEPT)
                .unwrap_or(SystemTime::UNIX_EPOCH),
        );
        on_pool!(self, |pool, dialect| {
            let mut tx = pool
                .begin_with(dialect.backend.begin_write())
                .await
                .map_err(failed)?;
            let floor: Option<i64> = sqlx::query_scalar(
                "SELECT max(version) FROM bouncer_removals WHERE removed_us < $1",
            )
            .bind(cutoff)
            .fetch_one(&mut *tx)
            .await
            .map_err(failed)?;
            let Some(floor) = floor else {
                return Ok(());
            };
            sqlx::query("DELETE FROM bouncer_removals WHERE version <= $1")
                .bind(floor)
                .execute(&mut *tx)
                .await
                .map_err(failed)?;
            sqlx::query(
                "UPDATE bouncer_meta SET removals_floor = $1 WHERE id = 1 AND removals_floor < $1",
            )
            .bind(floor)
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
            tx.commit().await.map_err(failed)
        })
    }
}

/// [`LIST_SCAN_MAX`] as the databases count.
const SCAN_MAX: i64 = LIST_SCAN_MAX as i64;

/// One index range a listing reads, by ascending id: the rules on a target (the target
/// index, the other filters checked on its few rows), of a source and an action (the source
/// index), or all of them (the table, by id).
#[derive(Debug, Clone, PartialEq, Eq)]
enum ListPart {
    Target {
        target: String,
        source: Option<&'static str>,
        action: Option<&'static str>,
    },
    SourceAction {
        source: &'static str,
        action: &'static str,
    },
    All,
}

/// The parts `query` reads. A filter on the source alone reads one part per action, on the
/// action alone one per source, each in id order: the page is their merge.
fn list_parts(query: &ListQuery) -> Vec<ListPart> {
    let filter = &query.filter;
    let source = filter.source.map(<&'static str>::from);
    let action = filter.action.map(|a| a.as_str());
    // Matched, so that a source or an action added without a line here fails to compile
    // rather than to be listed.
    let sources = || {
        [RuleSource::Manual, RuleSource::Config, RuleSource::Auto].map(|s| match s {
            RuleSource::Manual | RuleSource::Config | RuleSource::Auto => <&'static str>::from(s),
        })
    };
    let actions = || {
        [RuleAction::Block, RuleAction::Allow].map(|a| match a {
            RuleAction::Block | RuleAction::Allow => a.as_str(),
        })
    };
    match (&filter.target, source, action) {
        (Some(target), source, action) => vec![ListPart::Target {
            target: target.to_string(),
            source,
            action,
        }],
        (None, Some(source), Some(action)) => vec![ListPart::SourceAction { source, action }],
        (None, Some(source), None) => actions()
            .into_iter()
            .map(|action| ListPart::SourceAction { source, action })
            .collect(),
        (None, None, Some(action)) => sources()
            .into_iter()
            .map(|source| ListPart::SourceAction { source, action })
            .collect(),
        (None, None, None) => vec![ListPart::All],
    }
}

impl ListPart {
    /// `FROM … WHERE` the part's rules after `after` (no `ORDER BY`).
    fn range<'q, DB: sqlx::Database>(
        &self,
        q: &mut sqlx::QueryBuilder<'q, DB>,
        dialect: &Dialect,
        after: i64,
    ) where
        i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        &'static str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    {
        match self {
            ListPart::Target {
                target,
                source,
                action,
            } => {
                q.push(" FROM bouncer_rules ")
                    .push(dialect.by_target)
                    .push(" WHERE target = ")
                    .push_bind(target.clone());
                if let Some(source) = source {
                    q.push(" AND source = ").push_bind(*source);
                }
                if let Some(action) = action {
                    q.push(" AND action = ").push_bind(*action);
                }
            }
            ListPart::SourceAction { source, action } => {
                q.push(" FROM bouncer_rules ")
                    .push(dialect.by_source)
                    .push(" WHERE source = ")
                    .push_bind(*source)
                    .push(" AND action = ")
                    .push_bind(*action);
            }
            ListPart::All => {
                q.push(" FROM bouncer_rules WHERE TRUE");
            }
        }
        q.push(" AND id > ").push_bind(after);
    }

    /// The part's first `limit + 1` rules after `after`, up to `upto` if given, in `state`
    /// at `now`, by id.
    #[allow(clippy::too_many_arguments)]
    fn select<'q, DB: sqlx::Database>(
        &self,
        q: &mut sqlx::QueryBuilder<'q, DB>,
        dialect: &Dialect,
        after: i64,
        upto: Option<i64>,
        state: Option<RuleState>,
        now: SystemTime,
        limit: usize,
    ) where
        i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        &'static str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    {
        q.push(format!("SELECT {RULE_COLUMNS}"));
        self.range(q, dialect, after);
        if let Some(upto) = upto {
            q.push(" AND id <= ").push_bind(upto);
        }
        match state {
            Some(RuleState::Active) => {
                q.push(" AND (expires_us IS NULL OR expires_us > ")
                    .push_bind(micros(now))
                    .push(")");
            }
            Some(RuleState::Expired) => {
                q.push(" AND expires_us <= ").push_bind(micros(now));
            }
            None => {}
        }
        q.push(" ORDER BY id LIMIT ").push_bind(limit as i64 + 1);
    }

    /// The id of the part's [`LIST_SCAN_MAX`]th rule after `after`, where a scan with a state
    /// stops (none when the part holds fewer).
    fn scan_end<'q, DB: sqlx::Database>(
        &self,
        q: &mut sqlx::QueryBuilder<'q, DB>,
        dialect: &Dialect,
        after: i64,
    ) where
        i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        &'static str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    {
        q.push("SELECT id");
        self.range(q, dialect, after);
        q.push(" ORDER BY id LIMIT 1 OFFSET ")
            .push_bind(SCAN_MAX - 1);
    }
}

impl SqlRuleStore {
    /// The backend's plan for each part of a listing (`EXPLAIN QUERY PLAN` in SQLite,
    /// `EXPLAIN` in PostgreSQL), by name: `list_<filter>` and `scan_end_<filter>` for each
    /// filter the benchmark and the tests check. For them: every part must read through an
    /// index (or the table's id order) without sorting.
    #[doc(hidden)]
    pub async fn query_plans(&self, now: SystemTime) -> Result<Vec<(String, String)>, StoreError> {
        let target: super::model::RuleTarget = "192.0.2.1"
            .parse()
            .map_err(|_| StoreError::new("the plans' example target does not parse"))?;
        let base = ListQuery::first(50).after(RuleId(1000));
        let queries = [
            ("all", base.clone()),
            ("target", base.clone().target(target.clone())),
            (
                "target_source_action",
                base.clone()
                    .target(target)
                    .source(RuleSource::Auto)
                    .action(RuleAction::Block),
            ),
            ("source", base.clone().source(RuleSource::Auto)),
            ("action", base.clone().action(RuleAction::Allow)),
            (
                "source_action",
                base.clone()
                    .source(RuleSource::Config)
                    .action(RuleAction::Block),
            ),
            ("active", base.clone().state(RuleState::Active)),
            (
                "source_expired",
                base.clone()
                    .source(RuleSource::Auto)
                    .state(RuleState::Expired),
            ),
        ];
        on_pool!(self, |pool, dialect| {
            let (explain, column) = match dialect.backend.name() {
                "SQLite" => ("EXPLAIN QUERY PLAN ", 3),
                _ => ("EXPLAIN ", 0),
            };
            let mut plans = Vec::new();
            for (name, query) in queries {
                let after = query.after.map_or(0, |id| id.0 as i64);
                for (i, part) in list_parts(&query).into_iter().enumerate() {
                    for (kind, scan) in [("list", false), ("scan_end", true)] {
                        if scan && query.filter.state.is_none() {
                            continue;
                        }
                        let mut q = sqlx::QueryBuilder::<Db>::new(explain);
                        if scan {
                            part.scan_end(&mut q, dialect, after);
                        } else {
                            let upto = query.filter.state.map(|_| after + SCAN_MAX);
                            part.select(&mut q, dialect, after, upto, query.filter.state, now, 50);
                        }
                        let rows = q.build().fetch_all(pool).await.map_err(failed)?;
                        let mut plan = Vec::new();
                        for row in &rows {
                            plan.push(row.try_get::<String, _>(column).map_err(failed)?);
                        }
                        plans.push((format!("{kind}_{name}_{i}"), plan.join("\n")));
                    }
                }
            }
            Ok(plans)
        })
    }
}

impl RuleStore for SqlRuleStore {
    async fn insert(&self, drafts: Vec<RuleDraft>) -> Result<Vec<Rule>, StoreError> {
        if drafts.is_empty() {
            return Ok(Vec::new());
        }
        on_pool!(self, |pool, dialect| {
            let mut tx = pool
                .begin_with(dialect.backend.begin_write())
                .await
                .map_err(failed)?;
            let version = next_version!(tx);
            let rules = insert_rules!(tx, drafts.into_iter().map(|d| (d, None)).collect(), version);
            tx.commit().await.map_err(failed)?;
            Ok(rules)
        })
    }

    async fn delete(&self, id: RuleId) -> Result<Option<Rule>, StoreError> {
        let Ok(id) = i64::try_from(id.0) else {
            return Ok(None);
        };
        let now = micros(SystemTime::now());
        on_pool!(self, |pool, dialect| {
            let mut tx = pool
                .begin_with(dialect.backend.begin_write())
                .await
                .map_err(failed)?;
            let version = next_version!(tx);
            let row: Option<RuleRow> = sqlx::query_as(&format!(
                "DELETE FROM bouncer_rules WHERE id = $1 RETURNING {RULE_COLUMNS}"
            ))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(failed)?;
            let Some(row) = row else {
                // Nothing changed: the version does not move.
                tx.rollback().await.map_err(failed)?;
                return Ok(None);
            };
            record_removals!(tx, [id], version, now);
            tx.commit().await.map_err(failed)?;
            rule(row).map(Some)
        })
    }

    async fn get(&self, id: RuleId) -> Result<Option<Rule>, StoreError> {
        let Ok(id) = i64::try_from(id.0) else {
            return Ok(None);
        };
        on_pool!(self, |pool, _dialect| {
            let row: Option<RuleRow> = sqlx::query_as(&format!(
                "SELECT {RULE_COLUMNS} FROM bouncer_rules WHERE id = $1"
            ))
            .bind(id)
            .fetch_optional(pool)
            .await
            .map_err(failed)?;
            row.map(rule).transpose()
        })
    }

    async fn list(&self, query: ListQuery, now: SystemTime) -> Result<RulePage, StoreError> {
        let limit = query.page_size();
        let after = query
            .after
            .map_or(0, |id| i64::try_from(id.0).unwrap_or(i64::MAX));
        let parts = list_parts(&query);
        let state = query.filter.state;
        on_pool!(self, |pool, dialect| {
            let mut conn = pool.acquire().await.map_err(failed)?;
            // Each part's first rules after the cursor, and where its scan stopped if it did.
            let mut rows = Vec::new();
            let mut horizon: Option<i64> = None;
            for part in &parts {
                // With a state, the part's rules are examined up to its LIST_SCAN_MAXth.
                let upto: Option<i64> = match state {
                    Some(_) => {
                        let mut probe = sqlx::QueryBuilder::<Db>::new("");
                        part.scan_end(&mut probe, dialect, after);
                        probe
                            .build_query_scalar()
                            .fetch_optional(&mut *conn)
                            .await
                            .map_err(failed)?
                    }
                    None => None,
                };
                let mut select = sqlx::QueryBuilder::<Db>::new("");
                part.select(&mut select, dialect, after, upto, state, now, limit);
                let found = select.build().fetch_all(&mut *conn).await.map_err(failed)?;
                if let (Some(end), true) = (upto, found.len() <= limit) {
                    horizon = Some(horizon.map_or(end, |h| h.min(end)));
                }
                for row in found {
                    rows.push((row.try_get::<i64, _>(0).map_err(failed)?, row));
                }
            }
            rows.sort_by_key(|(id, _)| *id);
            // Past a part's scan, another part's rules may come before that part's next ones.
            if let Some(h) = horizon {
                rows.retain(|(id, _)| *id <= h);
            }
            // The cursor comes from the rows as stored, so a row skipped as unreadable
            // cannot end the paging early.
            let next = if rows.len() > limit {
                rows.get(limit - 1).map(|(id, _)| RuleId(*id as u64))
            } else {
                horizon.map(|h| RuleId(h as u64))
            };
            rows.truncate(limit);
            Ok(RulePage {
                // Decoded row by row, so one that does not decode (a BLOB written by hand into
                // a text column) is skipped, not the page.
                rules: keep_good(rows.into_iter().map(|(_, row)| row).collect(), |row| {
                    RuleRow::from_row(&row).map_err(failed).and_then(rule)
                }),
                next,
            })
        })
    }

    async fn active(&self, now: SystemTime) -> Result<Loaded, StoreError> {
        on_pool!(self, |pool, dialect| {
            let mut tx = pool
                .begin_with(dialect.backend.begin_read())
                .await
                .map_err(failed)?;
            let version: i64 = sqlx::query_scalar("SELECT version FROM bouncer_meta WHERE id = 1")
                .fetch_one(&mut *tx)
                .await
                .map_err(failed)?;
            // Counted first, in the same snapshot, so the vector is allocated once.
            let count: i64 = sqlx::query_scalar("SELECT count(*) FROM bouncer_rules")
                .fetch_one(&mut *tx)
                .await
                .map_err(failed)?;
            let mut rules = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
            // Batches by ascending id, each read straight from the driver's buffer: a million
            // rules never sit in memory twice, and the driver handles a hundred results, not a
            // million rows.
            let mut after = 0i64;
            loop {
                let row = sqlx::query::<Db>(dialect.loaded_batch)
                    .bind(after)
                    .bind(micros(now))
                    .bind(LOAD_BATCH)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(failed)?;
                let (found, last): (i64, Option<i64>) = (
                    row.try_get(0).map_err(failed)?,
                    row.try_get(1).map_err(failed)?,
                );
                let Some(last) = last.filter(|_| found > 0) else {
                    break;
                };
                // Unchecked: the text is split into fields first, each checked for UTF-8, so
                // one rule written badly by hand is skipped rather than failing the batch.
                let batch: Option<&[u8]> = row.try_get_unchecked(2).map_err(failed)?;
                rows::read_batch(batch.unwrap_or_default(), &mut rules)?;
                if found < LOAD_BATCH {
                    break;
                }
                after = last;
            }
            tx.commit().await.map_err(failed)?;
            Ok(Loaded {
                rules,
                version: version as u64,
            })
        })
    }

    async fn changes_since(&self, version: u64) -> Result<Changes, StoreError> {
        let since = i64::try_from(version).unwrap_or(i64::MAX);
        on_pool!(self, |pool, dialect| {
            let mut tx = pool
                .begin_with(dialect.backend.begin_read())
                .await
                .map_err(failed)?;
            let (now_at, floor): (i64, i64) =
                sqlx::query_as("SELECT version, removals_floor FROM bouncer_meta WHERE id = 1")
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(failed)?;
            // Ahead of the store (it was replaced) or behind what removals remember: reload.
            if since > now_at || since < floor {
                return Ok(Changes::Reload);
            }
            if since == now_at {
                return Ok(Changes::Since {
                    added: Vec::new(),
                    removed: Vec::new(),
                    version,
                });
            }
            // In the order they were made. (`ORDER BY id` alone would have SQLite walk the
            // whole table by id rather than the version index.)
            let added = sqlx::query::<Db>(&format!(
                "SELECT {LOADED_COLUMNS} FROM bouncer_rules WHERE version > $1 ORDER BY version, id"
            ))
            .bind(since)
            .fetch_all(&mut *tx)
            .await
            .map_err(failed)?;
            let removed: Vec<i64> = sqlx::query_scalar(
                "SELECT rule_id FROM bouncer_removals WHERE version > $1 ORDER BY version",
            )
            .bind(since)
            .fetch_all(&mut *tx)
            .await
            .map_err(failed)?;
            tx.commit().await.map_err(failed)?;
            Ok(Changes::Since {
                added: keep_good(added, |row| {
                    LoadedRow::from_row(&row)
                        .map_err(failed)
                        .and_then(|r| loaded(&r))
                }),
                removed: removed.into_iter().map(|id| RuleId(id as u64)).collect(),
                version: now_at as u64,
            })
        })
    }

    async fn trim(&self, trim: Trim, now: SystemTime) -> Result<u64, StoreError> {
        let (created_before, expired_before) = trim.cutoffs(now);
        let removed_at = micros(now);
        let trimmed = on_pool!(self, |pool, dialect| {
            let mut tx = pool
                .begin_with(dialect.backend.begin_write())
                .await
                .map_err(failed)?;
            let version = next_version!(tx);
            let ids: Vec<i64> = sqlx::query_scalar(
                "DELETE FROM bouncer_rules \
                 WHERE expires_us IS NOT NULL AND expires_us <= $1 AND created_us <= $2 \
                 RETURNING id",
            )
            .bind(micros(expired_before))
            .bind(micros(created_before))
            .fetch_all(&mut *tx)
            .await
            .map_err(failed)?;
            if ids.is_empty() {
                tx.rollback().await.map_err(failed)?;
                return Ok(0);
            }
            record_removals!(tx, ids, version, removed_at);
            tx.commit().await.map_err(failed)?;
            Ok::<u64, StoreError>(ids.len() as u64)
        })?;
        self.prune_removals(now).await?;
        Ok(trimmed)
    }

    async fn seed(&self, seeds: Vec<Seed>) -> Result<Seeded, StoreError> {
        let now = micros(SystemTime::now());
        on_pool!(self, |pool, dialect| {
            let mut tx = pool
                .begin_with(dialect.backend.begin_write())
                .await
                .map_err(failed)?;
            let version = next_version!(tx);
            let present: Vec<(i64, String)> = sqlx::query_as(
                "SELECT id, seed_key FROM bouncer_rules WHERE seed_key IS NOT NULL AND source = $1",
            )
            .bind(<&'static str>::from(RuleSource::Config))
            .fetch_all(&mut *tx)
            .await
            .map_err(failed)?;
            let wanted: std::collections::HashSet<&str> =
                seeds.iter().map(|s| s.key.as_str()).collect();
            let gone: Vec<i64> = present
                .iter()
                .filter(|(_, key)| !wanted.contains(key.as_str()))
                .map(|(id, _)| *id)
                .collect();
            let have: std::collections::HashSet<&str> =
                present.iter().map(|(_, key)| key.as_str()).collect();
            let new: Vec<(RuleDraft, Option<String>)> = seeds
                .iter()
                .filter(|s| !have.contains(s.key.as_str()))
                .map(|s| (s.draft.clone(), Some(s.key.clone())))
                .collect();
            if gone.is_empty() && new.is_empty() {
                tx.rollback().await.map_err(failed)?;
                return Ok(Seeded::default());
            }
            for chunk in gone.chunks(INSERT_CHUNK) {
                let mut delete =
                    sqlx::QueryBuilder::<Db>::new("DELETE FROM bouncer_rules WHERE id IN (");
                let mut ids = delete.separated(", ");
                for id in chunk {
                    ids.push_bind(*id);
                }
                delete.push(")");
                delete.build().execute(&mut *tx).await.map_err(failed)?;
            }
            record_removals!(tx, gone, version, now);
            let added = insert_rules!(tx, new, version);
            tx.commit().await.map_err(failed)?;
            Ok(Seeded {
                added,
                removed: gone.into_iter().map(|id| RuleId(id as u64)).collect(),
            })
        })
    }
}
