//! Counters and gauges through the [`metrics` facade](https://docs.rs/metrics/0.24) (feature `metrics`), and a
//! Prometheus exporter with a ready `GET /metrics` resource (feature `prometheus`).
//!
//! # What is counted
//!
//! | name | type | labels | what |
//! |---|---|---|---|
//! | `bouncer_requests_total` | counter | `decision`, `reason` | requests the middleware decided: `decision` is `allow`, `block` or (monitor mode) `would_block`; `reason` is `none` or the [`BlockReason`] |
//! | `bouncer_guard_refusals_total` | counter | `decision`, `reason` | refusals by route guards (`#[rate_limit]`, extractors, scope policies) |
//! | `bouncer_bans_started_total` | counter | `limit` (`global`, `handler`) | bans started by going over a limit |
//! | `bouncer_active_bans` | gauge | | keys banned now (memory store) |
//! | `bouncer_tracked_keys` | gauge | | keys the counter store tracks now |
//! | `bouncer_evictions_total` | counter | | keys evicted to make room (memory store) |
//! | `bouncer_counter_store_connected` | gauge | | a shared (Redis) counter store's backend answers: 1 or 0 |
//! | `bouncer_counter_store_round_trips_total`, `_failures_total` | counter | | its round trips, and those that failed or timed out |
//! | `bouncer_counter_store_fallbacks_total` | counter | | times it fell back to this instance's own counts |
//! | `bouncer_counter_store_unshared_hits_total` | counter | | hits whose share never reached the backend |
//! | `bouncer_counter_store_refused_total`, `_malformed_total` | counter | | hits refused while it failed closed; malformed values met |
//! | `bouncer_rules_in_snapshot` | gauge | | rules in the compiled snapshot |
//! | `bouncer_rules_reload_failures_total` | counter | | rule store reloads that failed |
//! | `bouncer_rules_consecutive_failures` | gauge | | failures in a row now (0: the store answers) |
//! | `bouncer_feed_ranges` | gauge | | distinct networks loaded from the range feeds |
//! | `bouncer_feed_reload_failures_total` | counter | | feed reloads that failed (the feed kept its ranges) |
//! | `bouncer_reputation_cache_hits_total` | counter | | reputation answers from the cache (feature `reputation`) |
//! | `bouncer_reputation_cache_misses_total` | counter | | lookups the cache could not answer |
//! | `bouncer_reputation_stale_served_total` | counter | | stale reports served |
//! | `bouncer_reputation_queue_dropped_total` | counter | | background lookups dropped (queue full) |
//! | `bouncer_reputation_api_calls_total` | counter | | upstream calls |
//! | `bouncer_reputation_api_failures_total` | counter | | upstream calls that failed |
//! | `bouncer_reputation_api_seconds` | histogram | | upstream call durations |
//! | `bouncer_access_log_queue_depth` | gauge | | access-log records waiting to be written |
//! | `bouncer_access_log_rows_written_total` | counter | | access-log rows written |
//! | `bouncer_access_log_records_dropped_total` | counter | | access-log records dropped (queue full) |
//! | `bouncer_access_log_write_failures_total` | counter | | access-log writes that failed |
//!
//! No label ever holds a client address, a user or a path: every label takes a handful of
//! fixed values, so the number of series is bounded.
//!
//! # Cost on the request path
//!
//! The request counters are registered once, when [`build`](crate::BouncerBuilder::build)
//! runs, and kept in a small table indexed by the decision: a request does one atomic add, no
//! registry lookup, no lock, no allocation. Everything else is read from the components'
//! own counters (`Rules::health`, [`CounterStore::stats`](crate::limiter::CounterStore::stats),
//! `Feeds::len`, `Reputation::stats`) and published **at scrape time** by
//! [`Bouncer::publish_metrics`](crate::Bouncer::publish_metrics), which the Prometheus resource
//! calls before it renders. With a push-based recorder (StatsD, OpenTelemetry…), call
//! `publish_metrics` on your own schedule (every 10–60 s is plenty).
//!
//! # The recorder comes first
//!
//! The request counters are bound to the global recorder installed when the bouncer is
//! built: **install the recorder before [`build`](crate::BouncerBuilder::build)** (a counter
//! registered before any recorder is a no-op for good). With feature `prometheus`,
//! `BouncerBuilder::prometheus(true)` does it for you, or call `install_prometheus()`
//! yourself. Several bouncers in one process add to the same request
//! counters; of what is read from the components, the last bouncer to publish sets the gauges,
//! and the running totals (`*_total`) keep the largest value published (a counter never goes
//! back).
//!
//! # Serving `/metrics` (feature `prometheus`)
//!
//! ```
//! # #[cfg(feature = "prometheus")] {
//! use actix_bouncer::Bouncer;
//! use actix_web::{test, App};
//!
//! # actix_web::rt::System::new().block_on(async {
//! let bouncer = Bouncer::builder().prometheus(true).build()?;
//! let app = test::init_service(
//!     App::new()
//!         .wrap(bouncer.clone())
//!         .service(bouncer.metrics_resource("/metrics")),
//! )
//! .await;
//! let req = test::TestRequest::get().uri("/metrics").peer_addr("127.0.0.1:1".parse()?);
//! let body = test::call_and_read_body(&app, req.to_request()).await;
//! assert!(std::str::from_utf8(&body)?.contains("bouncer_requests_total"));
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! # })?;
//! # }
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```
//!
//! The resource has no authentication of its own: mount it where only your scraper reaches
//! it (a second `HttpServer` bound to an internal address is the usual way), or protect it
//! with the bouncer's admin policy (`admin.paths = ["/metrics"]` with `admin.allow_only`
//! networks), or any guard or middleware of your own on the returned [`Resource`]. Mounted
//! inside an app the bouncer wraps, each scrape is itself a request the bouncer decides (and
//! counts).
//!
//! [`Resource`]: actix_web::Resource

#[cfg(feature = "prometheus")]
mod prometheus;

use ::metrics::{describe_counter, describe_gauge, Counter, Unit};

use crate::access_log::{AccessLog, AccessLogStats};
use crate::feeds::Feeds;
use crate::limiter::CounterStats;
use crate::rules::Rules;
use crate::verdict::BlockReason;

#[cfg(feature = "prometheus")]
pub use self::prometheus::{
    install_prometheus, prometheus_handle, use_prometheus, MetricsEndpoint, PrometheusError,
    PrometheusHandle, CONTENT_TYPE,
};

/// Requests the middleware decided, by `decision` and `reason`.
pub const REQUESTS: &str = "bouncer_requests_total";
/// Refusals by route guards, by `decision` and `reason`.
pub const GUARD_REFUSALS: &str = "bouncer_guard_refusals_total";
/// Bans started by going over a limit, by `limit`.
pub const BANS_STARTED: &str = "bouncer_bans_started_total";
/// Keys banned now.
pub const ACTIVE_BANS: &str = "bouncer_active_bans";
/// Keys the counter store tracks now.
pub const TRACKED_KEYS: &str = "bouncer_tracked_keys";
/// Keys evicted from the counter store to make room.
pub const EVICTIONS: &str = "bouncer_evictions_total";
/// Whether a shared counter store's backend (Redis) answers now: 1 or 0.
pub const COUNTER_STORE_CONNECTED: &str = "bouncer_counter_store_connected";
/// Round trips of a shared counter store to its backend that succeeded.
pub const COUNTER_STORE_ROUND_TRIPS: &str = "bouncer_counter_store_round_trips_total";
/// Round trips of a shared counter store that failed or timed out.
pub const COUNTER_STORE_FAILURES: &str = "bouncer_counter_store_failures_total";
/// Times a shared counter store fell back to this instance's own counts.
pub const COUNTER_STORE_FALLBACKS: &str = "bouncer_counter_store_fallbacks_total";
/// Hits whose share never reached the shared counter store's backend.
pub const COUNTER_STORE_UNSHARED_HITS: &str = "bouncer_counter_store_unshared_hits_total";
/// Hits refused because the shared counter store's backend was unreachable (fail closed).
pub const COUNTER_STORE_REFUSED: &str = "bouncer_counter_store_refused_total";
/// Malformed values met in the shared counter store's backend.
pub const COUNTER_STORE_MALFORMED: &str = "bouncer_counter_store_malformed_total";
/// Rules in the compiled snapshot.
pub const RULES: &str = "bouncer_rules_in_snapshot";
/// Rule store reloads that failed.
pub const RULES_RELOAD_FAILURES: &str = "bouncer_rules_reload_failures_total";
/// Rule store failures in a row now.
pub const RULES_CONSECUTIVE_FAILURES: &str = "bouncer_rules_consecutive_failures";
/// Distinct networks loaded from the range feeds.
pub const FEED_RANGES: &str = "bouncer_feed_ranges";
/// Feed reloads that failed.
pub const FEED_RELOAD_FAILURES: &str = "bouncer_feed_reload_failures_total";
/// Reputation answers from the cache.
#[cfg(feature = "reputation")]
pub const REPUTATION_CACHE_HITS: &str = "bouncer_reputation_cache_hits_total";
/// Reputation lookups the cache could not answer.
#[cfg(feature = "reputation")]
pub const REPUTATION_CACHE_MISSES: &str = "bouncer_reputation_cache_misses_total";
/// Stale reputation reports served.
#[cfg(feature = "reputation")]
pub const REPUTATION_STALE: &str = "bouncer_reputation_stale_served_total";
/// Background reputation lookups dropped because the queue was full.
#[cfg(feature = "reputation")]
pub const REPUTATION_DROPPED: &str = "bouncer_reputation_queue_dropped_total";
/// Calls to the reputation API.
#[cfg(feature = "reputation")]
pub const REPUTATION_CALLS: &str = "bouncer_reputation_api_calls_total";
/// Calls to the reputation API that failed.
#[cfg(feature = "reputation")]
pub const REPUTATION_FAILURES: &str = "bouncer_reputation_api_failures_total";
/// Durations of calls to the reputation API (histogram, seconds).
#[cfg(feature = "reputation")]
pub const REPUTATION_API_SECONDS: &str = crate::reputation::API_SECONDS;
/// Access-log records waiting to be written.
pub const ACCESS_LOG_QUEUE: &str = "bouncer_access_log_queue_depth";
/// Access-log rows written.
pub const ACCESS_LOG_WRITTEN: &str = "bouncer_access_log_rows_written_total";
/// Access-log records dropped.
pub const ACCESS_LOG_DROPPED: &str = "bouncer_access_log_records_dropped_total";
/// Access-log writes that failed.
pub const ACCESS_LOG_FAILED: &str = "bouncer_access_log_write_failures_total";

/// The `reason` label of every [`BlockReason`], in [`reason_index`] order (after `none`).
const REASONS: [&str; 5] = [
    "blacklisted",
    "banned",
    "rate_limited",
    "risk",
    "restricted",
];

/// 0 for no refusal, 1.. for a reason, in [`REASONS`] order.
#[inline]
fn reason_index(reason: Option<BlockReason>) -> usize {
    match reason {
        None => 0,
        Some(BlockReason::Blacklisted) => 1,
        Some(BlockReason::Banned) => 2,
        Some(BlockReason::RateLimited) => 3,
        Some(BlockReason::Risk) => 4,
        Some(BlockReason::Restricted) => 5,
    }
}

/// The request-path handles, registered once at build time against the global recorder.
pub(crate) struct RequestMetrics {
    /// `allow`, then `block`/`would_block` by reason.
    requests: [Counter; 6],
    /// `none` unused; `block`/`would_block` by reason.
    guard_refusals: [Counter; 6],
    /// `global`, `handler`.
    bans_started: [Counter; 2],
}

impl RequestMetrics {
    /// Registers every series (so each shows from the first scrape, at 0). `enforce` picks
    /// the `decision` label of refusals: `block`, or `would_block` in monitor mode.
    pub(crate) fn new(enforce: bool) -> Self {
        describe();
        let refused = if enforce { "block" } else { "would_block" };
        let by_reason = |name: &'static str, allow: Option<&'static str>| -> [Counter; 6] {
            std::array::from_fn(|i| match i {
                0 => match allow {
                    Some(decision) => {
                        ::metrics::counter!(name, "decision" => decision, "reason" => "none")
                    }
                    None => Counter::noop(),
                },
                i => ::metrics::counter!(name, "decision" => refused, "reason" => REASONS[i - 1]),
            })
        };
        RequestMetrics {
            requests: by_reason(REQUESTS, Some("allow")),
            guard_refusals: by_reason(GUARD_REFUSALS, None),
            bans_started: [
                ::metrics::counter!(BANS_STARTED, "limit" => "global"),
                ::metrics::counter!(BANS_STARTED, "limit" => "handler"),
            ],
        }
    }

    /// One request decided by the middleware: allowed (`None`) or refused for `reason`.
    #[inline]
    pub(crate) fn request(&self, reason: Option<BlockReason>) {
        self.requests[reason_index(reason)].increment(1);
    }

    /// One refusal by a route guard.
    #[inline]
    pub(crate) fn guard_refusal(&self, reason: BlockReason) {
        self.guard_refusals[reason_index(Some(reason))].increment(1);
    }

    /// A ban started: under the global limit, or a handler limit.
    #[inline]
    pub(crate) fn ban_started(&self, handler: bool) {
        self.bans_started[usize::from(handler)].increment(1);
    }
}

/// What the engine keeps for metrics: the request-path handles, and the components it does
/// not hold otherwise (the feeds live inside their signals).
pub(crate) struct EngineMetrics {
    pub(crate) requests: RequestMetrics,
    pub(crate) feeds: Option<Feeds>,
}

/// Help texts and units for every name; the recorder keeps the first it sees.
fn describe() {
    describe_counter!(
        REQUESTS,
        Unit::Count,
        "Requests the bouncer middleware decided, by decision (allow, block, would_block) and block reason."
    );
    describe_counter!(
        GUARD_REFUSALS,
        Unit::Count,
        "Refusals by route guards (handler limits, extractors, scope policies), by decision and reason."
    );
    describe_counter!(
        BANS_STARTED,
        Unit::Count,
        "Bans started by going over a limit, by limit (global, handler)."
    );
    describe_gauge!(ACTIVE_BANS, Unit::Count, "Keys banned now.");
    describe_gauge!(
        TRACKED_KEYS,
        Unit::Count,
        "Keys the counter store tracks now, over all limits."
    );
    describe_counter!(
        EVICTIONS,
        Unit::Count,
        "Keys evicted from the counter store to make room."
    );
    describe_gauge!(
        COUNTER_STORE_CONNECTED,
        Unit::Count,
        "Whether the shared counter store's backend (Redis) answers now (1) or not (0)."
    );
    describe_counter!(
        COUNTER_STORE_ROUND_TRIPS,
        Unit::Count,
        "Round trips of the shared counter store to its backend that succeeded."
    );
    describe_counter!(
        COUNTER_STORE_FAILURES,
        Unit::Count,
        "Round trips of the shared counter store that failed or timed out."
    );
    describe_counter!(
        COUNTER_STORE_FALLBACKS,
        Unit::Count,
        "Times the shared counter store fell back to this instance's own counts."
    );
    describe_counter!(
        COUNTER_STORE_UNSHARED_HITS,
        Unit::Count,
        "Hits counted locally whose share never reached the shared counter store."
    );
    describe_counter!(
        COUNTER_STORE_REFUSED,
        Unit::Count,
        "Hits refused while the shared counter store was unreachable (fail closed)."
    );
    describe_counter!(
        COUNTER_STORE_MALFORMED,
        Unit::Count,
        "Malformed values met in the shared counter store (treated as missing)."
    );
    describe_gauge!(RULES, Unit::Count, "Rules in the compiled rule snapshot.");
    describe_counter!(
        RULES_RELOAD_FAILURES,
        Unit::Count,
        "Rule store reloads that failed."
    );
    describe_gauge!(
        RULES_CONSECUTIVE_FAILURES,
        Unit::Count,
        "Rule store failures in a row now (0 when the store answers)."
    );
    describe_gauge!(
        FEED_RANGES,
        Unit::Count,
        "Distinct networks loaded from the range feeds."
    );
    describe_counter!(
        FEED_RELOAD_FAILURES,
        Unit::Count,
        "Feed reloads that failed (the feed kept its previous ranges)."
    );
    #[cfg(feature = "reputation")]
    {
        use ::metrics::describe_histogram;
        describe_counter!(
            REPUTATION_CACHE_HITS,
            Unit::Count,
            "Reputation answers served from the cache."
        );
        describe_counter!(
            REPUTATION_CACHE_MISSES,
            Unit::Count,
            "Reputation lookups the cache could not answer."
        );
        describe_counter!(
            REPUTATION_STALE,
            Unit::Count,
            "Stale reputation reports served."
        );
        describe_counter!(
            REPUTATION_DROPPED,
            Unit::Count,
            "Background reputation lookups dropped because the queue was full."
        );
        describe_counter!(
            REPUTATION_CALLS,
            Unit::Count,
            "Calls to the reputation API."
        );
        describe_counter!(
            REPUTATION_FAILURES,
            Unit::Count,
            "Calls to the reputation API that failed."
        );
        describe_histogram!(
            REPUTATION_API_SECONDS,
            Unit::Seconds,
            "Durations of calls to the reputation API."
        );
    }
    describe_gauge!(
        ACCESS_LOG_QUEUE,
        Unit::Count,
        "Access-log records waiting to be written."
    );
    describe_counter!(ACCESS_LOG_WRITTEN, Unit::Count, "Access-log rows written.");
    describe_counter!(
        ACCESS_LOG_DROPPED,
        Unit::Count,
        "Access-log records dropped because the queue was full."
    );
    describe_counter!(
        ACCESS_LOG_FAILED,
        Unit::Count,
        "Access-log writes that failed."
    );
}

/// Publishes the components' gauges and running totals (called at scrape time).
pub(crate) fn publish(
    rules: &Rules,
    counters: CounterStats,
    feeds: Option<&Feeds>,
    #[cfg(feature = "reputation")] reputation: Option<crate::reputation::ReputationStats>,
) {
    let health = rules.health();
    set(RULES, rules.snapshot().len() as f64);
    total(RULES_RELOAD_FAILURES, health.reload_failures);
    set(
        RULES_CONSECUTIVE_FAILURES,
        f64::from(health.consecutive_failures),
    );
    set(TRACKED_KEYS, counters.tracked_keys as f64);
    if let Some(bans) = counters.active_bans {
        set(ACTIVE_BANS, bans as f64);
    }
    if let Some(evictions) = counters.evictions {
        total(EVICTIONS, evictions);
    }
    if let Some(shared) = counters.shared {
        set(
            COUNTER_STORE_CONNECTED,
            f64::from(u8::from(shared.connected)),
        );
        total(COUNTER_STORE_ROUND_TRIPS, shared.round_trips);
        total(COUNTER_STORE_FAILURES, shared.failures);
        total(COUNTER_STORE_FALLBACKS, shared.fallbacks);
        total(COUNTER_STORE_UNSHARED_HITS, shared.unshared_hits);
        total(COUNTER_STORE_REFUSED, shared.refused_closed);
        total(COUNTER_STORE_MALFORMED, shared.malformed);
    }
    if let Some(feeds) = feeds {
        set(FEED_RANGES, feeds.len() as f64);
        total(FEED_RELOAD_FAILURES, feeds.reload_failures());
    }
    #[cfg(feature = "reputation")]
    if let Some(stats) = reputation {
        total(REPUTATION_CACHE_HITS, stats.cache_hits);
        total(REPUTATION_CACHE_MISSES, stats.cache_misses);
        total(REPUTATION_STALE, stats.stale_served);
        total(REPUTATION_DROPPED, stats.dropped);
        total(REPUTATION_CALLS, stats.upstream_calls);
        total(REPUTATION_FAILURES, stats.failures);
    }
}

/// An access log's counts, as [`publish_access_log_counts`] publishes them (for a log of your
/// own; the crate's [`AccessLog`] converts from its [`AccessLogStats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccessLogCounts {
    /// Records waiting to be written now.
    pub queued: u64,
    /// Rows written, ever.
    pub written: u64,
    /// Records dropped because the queue was full, ever.
    pub dropped: u64,
    /// Writes that failed, ever.
    pub failed: u64,
}

impl From<AccessLogStats> for AccessLogCounts {
    fn from(stats: AccessLogStats) -> Self {
        AccessLogCounts {
            queued: stats.queued as u64,
            written: stats.written,
            dropped: stats.dropped,
            failed: stats.failed,
        }
    }
}

/// Publishes `log`'s counts ([`AccessLog::stats`]): `bouncer_access_log_queue_depth` and the
/// `bouncer_access_log_*_total` counters. Call it before each scrape: with feature
/// `prometheus`, `bouncer.metrics_endpoint().access_log(log.clone()).resource("/metrics")` does.
pub fn publish_access_log(log: &AccessLog) {
    publish_access_log_counts(log.stats().into());
}

/// Publishes an access log's counts, for a log other than [`AccessLog`]: see
/// [`publish_access_log`].
pub fn publish_access_log_counts(counts: AccessLogCounts) {
    set(ACCESS_LOG_QUEUE, counts.queued as f64);
    total(ACCESS_LOG_WRITTEN, counts.written);
    total(ACCESS_LOG_DROPPED, counts.dropped);
    total(ACCESS_LOG_FAILED, counts.failed);
}

fn set(name: &'static str, value: f64) {
    ::metrics::gauge!(name).set(value);
}

/// A running total kept by the component itself.
fn total(name: &'static str, value: u64) {
    ::metrics::counter!(name).absolute(value);
}
