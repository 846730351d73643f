//! The tables, per backend, and the migrations that make them.
//!
//! The crate's tables carry a `bouncer_` prefix and keep their own schema version in
//! `bouncer_schema`, so they can live in an app's database beside its own migrations (sqlx's
//! `_sqlx_migrations` included). Migrations only ever append to [`Dialect::migrations`]; a
//! database whose version is beyond the list was made by a newer crate, and opening it is an
//! error rather than a guess. Each backend's DDL is written out in full: a migration is frozen
//! text, and one backend's must never change because the other's did.
//!
//! `bouncer_rules.version` is the store version that added a rule; `bouncer_removals` records
//! what later versions removed. Every write moves `bouncer_meta.version` first, in its own
//! transaction, which also serialises writers: versions become visible in order, so a reader
//! that has seen version `v` has seen every change up to it. Removals older than
//! [`REMOVALS_KEPT`] are pruned, and `removals_floor` says up to which version, so a reader
//! further behind reloads everything.

use std::time::Duration;

use crate::sql::{Backend, Migrations};

/// How long removals are kept for readers catching up.
pub(super) const REMOVALS_KEPT: Duration = Duration::from_secs(24 * 3600);

/// What differs between the backends.
pub(super) struct Dialect {
    /// The backend, for how transactions start.
    pub(super) backend: Backend,
    /// Migration `i` brings the schema from version `i` to `i + 1`.
    pub(super) migrations: Migrations,
    /// The next batch of active rules after id `$1` at time `$2`, at most `$3` of them: their
    /// count, the last id, and the rules as one text (see [`read_batch`](super::rows::read_batch)).
    /// One result per batch, not per rule: the drivers spend far more on a row than on its bytes.
    /// The expiry of a rule that never expires compares as `i64::MAX` (written out below), in a
    /// form that walks the table by id once rather than gathering ids from the expiry index.
    pub(super) loaded_batch: &'static str,
    /// Names the target index where a listing reads by target (SQLite would otherwise take
    /// the source index when the source is given too); empty where the planner is trusted.
    pub(super) by_target: &'static str,
    /// The same for the source index.
    pub(super) by_source: &'static str,
}

/// Where the schema version lives (the same in both backends).
pub(super) const SCHEMA_TABLE: &str = "bouncer_schema";

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
    backend: Backend::Sqlite,
    migrations: &[
        &[
            "CREATE TABLE bouncer_meta (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            version BIGINT NOT NULL,
            removals_floor BIGINT NOT NULL
        )",
            "INSERT INTO bouncer_meta (id, version, removals_floor) VALUES (1, 0, 0)",
            // AUTOINCREMENT: an id is never given twice, so a removal names one rule forever.
            "CREATE TABLE bouncer_rules (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            target TEXT NOT NULL,
            action TEXT NOT NULL,
            source TEXT NOT NULL,
            expires_us BIGINT,
            created_us BIGINT NOT NULL,
            comment TEXT,
            seed_key TEXT,
            version BIGINT NOT NULL
        )",
            "CREATE INDEX bouncer_rules_version ON bouncer_rules (version)",
            "CREATE INDEX bouncer_rules_target ON bouncer_rules (target)",
            "CREATE INDEX bouncer_rules_expires ON bouncer_rules (expires_us)",
            "CREATE UNIQUE INDEX bouncer_rules_seed ON bouncer_rules (seed_key) \
         WHERE seed_key IS NOT NULL",
            "CREATE TABLE bouncer_removals (
            rule_id BIGINT NOT NULL,
            version BIGINT NOT NULL,
            removed_us BIGINT NOT NULL
        )",
            "CREATE INDEX bouncer_removals_version ON bouncer_removals (version)",
        ],
        &[
            // 2: listing by source and action, by id, the expiry at hand for a state filter.
            "CREATE INDEX bouncer_rules_source ON bouncer_rules (source, action, id, expires_us)",
        ],
    ],
    by_target: "INDEXED BY bouncer_rules_target",
    by_source: "INDEXED BY bouncer_rules_source",
    loaded_batch: "SELECT count(*), max(id), group_concat(rule, '') FROM (
        SELECT id, id || ',' || coalesce(expires_us, '') || ','
            || length(CAST(target AS BLOB)) || ':' || target
            || length(CAST(action AS BLOB)) || ':' || action
            || length(CAST(source AS BLOB)) || ':' || source AS rule
        FROM bouncer_rules
        WHERE id > $1 AND coalesce(expires_us, 9223372036854775807) > $2
        ORDER BY id LIMIT $3
    )",
};

#[cfg(feature = "postgres")]
const POSTGRES: Dialect = Dialect {
    backend: Backend::Postgres,
    migrations: &[
        &[
            "CREATE TABLE bouncer_meta (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            version BIGINT NOT NULL,
            removals_floor BIGINT NOT NULL
        )",
            "INSERT INTO bouncer_meta (id, version, removals_floor) VALUES (1, 0, 0)",
            "CREATE TABLE bouncer_rules (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            target TEXT NOT NULL,
            action TEXT NOT NULL,
            source TEXT NOT NULL,
            expires_us BIGINT,
            created_us BIGINT NOT NULL,
            comment TEXT,
            seed_key TEXT,
            version BIGINT NOT NULL
        )",
            "CREATE INDEX bouncer_rules_version ON bouncer_rules (version)",
            "CREATE INDEX bouncer_rules_target ON bouncer_rules (target)",
            "CREATE INDEX bouncer_rules_expires ON bouncer_rules (expires_us)",
            "CREATE UNIQUE INDEX bouncer_rules_seed ON bouncer_rules (seed_key) \
         WHERE seed_key IS NOT NULL",
            "CREATE TABLE bouncer_removals (
            rule_id BIGINT NOT NULL,
            version BIGINT NOT NULL,
            removed_us BIGINT NOT NULL
        )",
            "CREATE INDEX bouncer_removals_version ON bouncer_removals (version)",
        ],
        &[
            // 2: listing by source and action, by id, the expiry at hand for a state filter; by
            // target, by id (SQLite's index holds the id already).
            "CREATE INDEX bouncer_rules_source ON bouncer_rules (source, action, id) \
         INCLUDE (expires_us)",
            "DROP INDEX bouncer_rules_target",
            "CREATE INDEX bouncer_rules_target ON bouncer_rules (target, id)",
        ],
    ],
    by_target: "",
    by_source: "",
    loaded_batch: "SELECT count(*), max(id), string_agg(rule, '') FROM (
        SELECT id, id::text || ',' || coalesce(expires_us::text, '') || ','
            || octet_length(target)::text || ':' || target
            || octet_length(action)::text || ':' || action
            || octet_length(source)::text || ':' || source AS rule
        FROM bouncer_rules
        WHERE id > $1 AND coalesce(expires_us, 9223372036854775807) > $2
        ORDER BY id LIMIT $3
    ) AS batch",
};
