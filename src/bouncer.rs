//! The [`Bouncer`] handle: what an app holds, wraps into its `App`s, and asks about rules,
//! bans and counters. Built by [`config`](crate::config); its `Transform` is in `middleware.rs`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::client_ip::ClientKey;
use crate::engine::{Engine, Mode};
use crate::limiter::{ActiveBan, CounterStats, Subject};
use crate::rules::Rules;
use crate::store_error::StoreError;

/// The bouncer middleware. Build it once and `.wrap()` a clone into each app instance;
/// clones share counters, bans and rules.
///
/// ```no_run
/// use actix_bouncer::{Bouncer, IpVerdict};
/// use actix_web::{web, App, HttpServer};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let bouncer = Bouncer::from_toml_file("bouncer.toml")?;
/// HttpServer::new(move || {
///     App::new()
///         .wrap(bouncer.clone())
///         .route("/", web::get().to(|v: IpVerdict| async move { format!("score {}", v.score()) }))
/// })
/// .bind("127.0.0.1:8080")?
/// .run()
/// .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Bouncer {
    pub(crate) engine: Arc<Engine>,
    /// `[access_log]` of the TOML file, for [`Bouncer::access_log`].
    access_log: Arc<crate::access_log::Settings>,
}

impl std::fmt::Debug for Bouncer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bouncer")
            .field("mode", &self.engine.mode)
            .field("block_threshold", &self.engine.block_threshold)
            .field("rules", &self.engine.rules)
            .finish_non_exhaustive()
    }
}

impl Bouncer {
    pub(crate) fn from_engine(
        engine: Engine,
        access_log: Arc<crate::access_log::Settings>,
    ) -> Self {
        Bouncer {
            engine: Arc::new(engine),
            access_log,
        }
    }

    /// The rules handle: add, remove, list and check rules at runtime.
    pub fn rules(&self) -> &Rules {
        &self.engine.rules
    }

    /// Enforce or monitor.
    pub fn mode(&self) -> Mode {
        self.engine.mode
    }

    /// The key `ip` is counted and banned under.
    pub fn key_for(&self, ip: IpAddr) -> ClientKey {
        self.engine.resolver.key_for(ip)
    }

    /// An [`AccessLog`](crate::access_log::AccessLog) builder that starts from the TOML
    /// file's `[access_log]` settings (the defaults without one), resolves clients with this
    /// bouncer's settings (trusted proxies, forwarding headers) and records the user the
    /// bouncer's user hook named, read from the verdict the bouncer attaches to every request
    /// (the hook is not run a second time). Wrap the log outside the bouncer, so refused
    /// requests are logged too: `App::new().wrap(bouncer.clone()).wrap(log.clone())`.
    pub fn access_log(&self) -> crate::access_log::AccessLogBuilder {
        crate::access_log::AccessLog::builder()
            .settings((*self.access_log).clone())
            .resolver(self.engine.resolver.clone())
    }

    /// Every active ban (global and handler limits), soonest end first.
    pub async fn bans(&self) -> Result<Vec<ActiveBan>, StoreError> {
        self.engine.limits.bans().await
    }

    /// Bans `key` under the global limit for `length` (an operator's ban: 403 with
    /// `Retry-After` until it ends).
    pub async fn ban(&self, key: ClientKey, length: Duration) -> Result<(), StoreError> {
        self.engine.limits.ban(key, length).await
    }

    /// Lifts every ban on `key` and forgets its hits and offences, under every limit. Returns
    /// whether the key was tracked.
    pub async fn unban(&self, key: ClientKey) -> Result<bool, StoreError> {
        self.engine.limits.unban(Subject::Client(key)).await
    }

    /// Lifts every ban on a user (handler limits keyed by user) and forgets its hits.
    pub async fn unban_user(&self, user: &str) -> Result<bool, StoreError> {
        self.engine.limits.unban(Subject::User(user)).await
    }

    /// How many keys the counter store tracks now, over all limits (never above
    /// `limit.max_tracked_keys` with the memory store).
    pub fn tracked_keys(&self) -> usize {
        self.engine.limits.tracked_keys()
    }

    /// The counter store's counts for monitoring: tracked keys, and with the memory store the
    /// keys banned now and the evictions so far. Walks every shard (taking each lock in turn,
    /// briefly): for health checks and scrapes, not for the request path.
    pub fn counter_stats(&self) -> CounterStats {
        self.engine.limits.stats()
    }

    /// The reputation API's counters (upstream calls, cache hits, failures, and background
    /// lookups dropped because the queue was full), when one is configured.
    #[cfg(feature = "reputation")]
    pub fn reputation_stats(&self) -> Option<crate::reputation::ReputationStats> {
        self.engine.reputation.as_ref().map(|r| r.client().stats())
    }

    /// Publishes the gauges and running totals read from the components (rules, counter
    /// store, feeds, reputation) to the global `metrics` recorder (feature `metrics`). The
    /// Prometheus resource calls it before each scrape; with a push-based recorder, call it
    /// on your own schedule. Takes each counter-store shard's lock in turn, briefly (as the
    /// sweeper does); never call it per request.
    #[cfg(feature = "metrics")]
    pub fn publish_metrics(&self) {
        let engine = &self.engine;
        crate::metrics::publish(
            &engine.rules,
            self.counter_stats(),
            engine.metrics.feeds.as_ref(),
            #[cfg(feature = "reputation")]
            self.reputation_stats(),
        );
    }

    /// A Prometheus scrape endpoint that publishes this bouncer's gauges before rendering the
    /// recorder of [`install_prometheus`](crate::metrics::install_prometheus) (feature
    /// `prometheus`). Add hooks (an access log's counts) before making it a resource.
    #[cfg(feature = "prometheus")]
    pub fn metrics_endpoint(&self) -> crate::metrics::MetricsEndpoint {
        let bouncer = self.clone();
        crate::metrics::MetricsEndpoint::new().before_scrape(move || bouncer.publish_metrics())
    }

    /// `GET path` in the Prometheus text format, with this bouncer's metrics (feature
    /// `prometheus`): `App::new().service(bouncer.metrics_resource("/metrics"))`. No
    /// authentication of its own: see [`metrics`](crate::metrics#serving-metrics-feature-prometheus).
    #[cfg(feature = "prometheus")]
    pub fn metrics_resource(&self, path: &str) -> actix_web::Resource {
        self.metrics_endpoint().resource(path)
    }
}
