//! An optional IP-reputation API client (feature `reputation`).
//!
//! [`Reputation`] asks an HTTP JSON API (IPASIS-style: `GET https://…/{ip}` answers one JSON
//! object) what it knows about an address, and remembers the answer:
//!
//! * a bounded cache keeps each answer *fresh* for [`ReputationConfig::cache_ttl`], then
//!   *stale* for [`ReputationConfig::stale_for`] more: a stale answer is still served while a
//!   refresh runs, and when the refresh fails (stale-if-error);
//! * failures are remembered for [`ReputationConfig::negative_ttl`], so a dead API is asked
//!   once per that period, not once per request;
//! * concurrent lookups of one address share one upstream call;
//! * [`Reputation::peek`] never waits: on a miss it hands the address to a background worker
//!   through a bounded queue and returns at once.
//!
//! Every freshness decision reads the injected [`Clock`], so tests move time with
//! [`ManualClock::advance`](crate::clock::ManualClock::advance) instead of sleeping.
//!
//! # Threads and runtimes
//!
//! [`Reputation::new`] starts one std thread, `actix-bouncer-reputation`, that owns a
//! current-thread tokio runtime. Every upstream call runs on that runtime, whichever runtime
//! the caller of [`Reputation::lookup`] is on (actix runs one per worker thread): the callers
//! only wait for the result. A caller that gives up (its future is dropped) therefore does not
//! cancel a call that other callers share, and the answer still lands in the cache. The thread
//! ends when the last clone of the [`Reputation`] is dropped.

mod cache;
mod config;
mod error;
mod report;
#[cfg(feature = "redis")]
mod shared_cache;
mod worker;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::sync::mpsc;

pub use self::config::{FieldMap, ReputationConfig};
pub use self::error::ReputationError;
pub use self::report::IpReport;

use self::cache::{bump, Counters, Lifetimes, State};
use self::worker::Shared;
use crate::clock::Clock;
use crate::setting::InvalidSetting;
use crate::sync::lock;
use crate::sync::RuntimeThread;

/// The histogram of upstream call durations, in seconds (feature `metrics`), recorded by the
/// worker off the request path.
#[cfg(feature = "metrics")]
pub(crate) const API_SECONDS: &str = "bouncer_reputation_api_seconds";

/// Counters for monitoring and tests; every one only grows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReputationStats {
    /// HTTP requests sent to the API.
    pub upstream_calls: u64,
    /// Fresh reports answered from the cache by [`Reputation::peek`] or
    /// [`Reputation::lookup`].
    pub cache_hits: u64,
    /// Lookups the cache could not answer: [`Reputation::peek`] found nothing cached (and
    /// queued a lookup), or [`Reputation::lookup`] found nothing fresh (and asked the API).
    pub cache_misses: u64,
    /// Stale reports answered: while a refresh runs, or because the refresh failed.
    pub stale_served: u64,
    /// Upstream calls that failed (timeout, HTTP error status, malformed answer, transport).
    pub failures: u64,
    /// Background lookups dropped because the queue was full.
    pub dropped: u64,
    /// Background lookups queued for the worker.
    pub queued: u64,
    /// Reports another instance fetched, read from the shared cache instead of the API
    /// (feature `redis`, [`ReputationConfig::shared_cache`]).
    pub shared_hits: u64,
}

/// A client of the reputation API, with its cache and background worker.
///
/// Cheap to clone (one `Arc`); `Send + Sync`. The background thread ends when the last clone
/// is dropped.
///
/// ```no_run
/// use std::net::IpAddr;
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// use actix_bouncer::clock::SystemClock;
/// use actix_bouncer::reputation::{Reputation, ReputationConfig};
///
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let mut config = ReputationConfig::new("https://api.ipasis.example/v1/ip/{ip}");
/// config.auth_header = Some("Authorization".into());
/// config.auth_env = Some("IPASIS_TOKEN".into()); // e.g. "Bearer abc123"
/// config.timeout = Duration::from_millis(500);
/// let reputation = Reputation::new(config, Arc::new(SystemClock::new()))?;
///
/// let ip: IpAddr = "203.0.113.7".parse()?;
/// // On the request path: never waits; a miss is looked up in the background.
/// if let Some(report) = reputation.peek(ip) {
///     println!("risk {:?}, tor: {}", report.risk_score, report.is_tor);
/// }
/// // Where waiting is fine (at most the configured timeout):
/// match reputation.lookup(ip).await {
///     Ok(report) => println!("{report:?}"),
///     Err(error) => println!("no report: {error}"),
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Reputation {
    inner: Arc<Handle>,
}

/// What the clones of one [`Reputation`] share. The worker holds only [`Shared`], not this,
/// so the queue closes (and the worker ends) when the last clone is dropped.
struct Handle {
    shared: Arc<Shared>,
    queue: mpsc::Sender<IpAddr>,
}

impl Reputation {
    /// Validates `config`, reads the auth environment variable, builds the HTTP client and
    /// starts the background worker thread.
    ///
    /// Needs no async runtime: the worker brings its own.
    ///
    /// # Errors
    ///
    /// Whatever [`ReputationConfig::validate`] rejects; an [`InvalidSetting`] naming
    /// `auth_env` when that variable is not set (or its value cannot be sent in a header);
    /// one naming the empty field `""` (the section as a whole) when the HTTP client, the
    /// runtime or the thread cannot be created.
    pub fn new(config: ReputationConfig, clock: Arc<dyn Clock>) -> Result<Self, InvalidSetting> {
        config.validate()?;

        let mut headers = HeaderMap::new();
        if let (Some(header), Some(var)) = (&config.auth_header, &config.auth_env) {
            let name = HeaderName::from_bytes(header.as_bytes()).map_err(|_| {
                InvalidSetting::new(
                    "auth_header",
                    format_args!("{header:?}"),
                    "an HTTP header name",
                )
            })?;
            // Never echo the secret itself (`VarError`'s message would, for a non-UTF-8 one).
            let value = std::env::var(var).map_err(|error| {
                let problem = match error {
                    std::env::VarError::NotPresent => "is not set",
                    std::env::VarError::NotUnicode(_) => "is not valid UTF-8",
                };
                InvalidSetting::new(
                    "auth_env",
                    format_args!("{var:?}"),
                    format!(
                        "an environment variable holding the value of the `{header}` header \
                         (this one {problem})"
                    ),
                )
            })?;
            let mut value = HeaderValue::from_str(value.trim()).map_err(|_| {
                InvalidSetting::new(
                    "auth_env",
                    format_args!("{var:?}"),
                    "a variable whose value is a valid HTTP header value (visible ASCII)",
                )
            })?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }

        let client = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("actix-bouncer/", env!("CARGO_PKG_VERSION")))
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|error| {
                InvalidSetting::new(
                    "",
                    error.without_url(),
                    "settings an HTTP client can be built from",
                )
            })?;

        #[cfg(feature = "redis")]
        let shared_cache = match &config.shared_cache {
            Some(url) => Some(
                shared_cache::SharedCache::new(url, &config.shared_prefix).ok_or_else(|| {
                    InvalidSetting::new(
                        "shared_cache",
                        format!("{:?}", crate::store_url::redact(url)),
                        "a redis:// URL",
                    )
                })?,
            ),
            None => None,
        };
        let runtime = RuntimeThread::new().map_err(|error| {
            InvalidSetting::new("", error, "a runtime for the background worker")
        })?;

        let shared = Arc::new(Shared {
            #[cfg(feature = "redis")]
            shared_cache,
            url: config.url,
            lifetimes: Lifetimes {
                cache_ttl: config.cache_ttl,
                usable_for: config.cache_ttl.saturating_add(config.stale_for),
                negative_ttl: config.negative_ttl,
            },
            fields: config.fields,
            client,
            clock,
            cache: quick_cache::sync::Cache::new(config.max_entries),
            in_flight: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashSet::new()),
            runtime: runtime.handle(),
            stats: Counters::default(),
        });

        let (queue, receiver) = mpsc::channel(config.queue);
        worker::spawn(runtime, Arc::clone(&shared), receiver, config.concurrency).map_err(
            |error| InvalidSetting::new("", error, "a background thread that can start"),
        )?;

        Ok(Self {
            inner: Arc::new(Handle { shared, queue }),
        })
    }

    /// Answers from the cache, never waiting.
    ///
    /// A fresh report is returned as is. A stale one is returned too, and a refresh is queued
    /// for the background worker. With nothing usable cached, a lookup is queued and `None`
    /// returned; the report is there for a later call once the worker has it. While a recent
    /// failure is remembered ([`ReputationConfig::negative_ttl`]) nothing is queued.
    ///
    /// Queueing never blocks: when the queue is full the lookup is dropped and counted in
    /// [`ReputationStats::dropped`]. An address already queued is not queued again.
    ///
    /// A cache hit costs one lookup in a concurrent cache and an `Arc` clone.
    pub fn peek(&self, ip: IpAddr) -> Option<Arc<IpReport>> {
        let shared = &self.inner.shared;
        let state = match shared.cache.get(&ip) {
            Some(entry) => entry.state(shared.clock.monotonic(), &shared.lifetimes),
            None => State::Miss,
        };
        match state {
            State::Fresh(report) => {
                bump(&shared.stats.cache_hits);
                Some(report)
            }
            State::Stale(report) => {
                bump(&shared.stats.stale_served);
                self.enqueue(ip);
                Some(report)
            }
            State::StaleFailing(report) => {
                bump(&shared.stats.stale_served);
                Some(report)
            }
            State::Failing => None,
            State::Miss => {
                bump(&shared.stats.cache_misses);
                self.enqueue(ip);
                None
            }
        }
    }

    /// Waits for a report, at most about [`ReputationConfig::timeout`].
    ///
    /// A fresh cached report is returned at once. Otherwise the API is asked, in one upstream
    /// call shared by every concurrent caller for the same address (on any thread or
    /// runtime). When that call fails, a stale report is returned if one is still usable
    /// (stale-if-error); otherwise the error, and the failure is remembered for
    /// [`ReputationConfig::negative_ttl`], during which lookups of the address answer
    /// [`ReputationError::Unavailable`] (or the stale report) without asking the API.
    ///
    /// Needs no particular runtime: the call itself runs on the background worker's.
    ///
    /// # Errors
    ///
    /// [`ReputationError::Timeout`], [`ReputationError::Status`],
    /// [`ReputationError::Malformed`] or [`ReputationError::Transport`] when the call fails
    /// and no stale report is left; [`ReputationError::Unavailable`] during the negative TTL.
    pub async fn lookup(&self, ip: IpAddr) -> Result<Arc<IpReport>, ReputationError> {
        self.inner.shared.resolve(ip, true).await
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> ReputationStats {
        let stats = &self.inner.shared.stats;
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        ReputationStats {
            upstream_calls: get(&stats.upstream_calls),
            cache_hits: get(&stats.cache_hits),
            cache_misses: get(&stats.cache_misses),
            stale_served: get(&stats.stale_served),
            failures: get(&stats.failures),
            dropped: get(&stats.dropped),
            queued: get(&stats.queued),
            #[cfg(feature = "redis")]
            shared_hits: self
                .inner
                .shared
                .shared_cache
                .as_ref()
                .map_or(0, |c| get(&c.hits)),
            #[cfg(not(feature = "redis"))]
            shared_hits: 0,
        }
    }

    /// Hands `ip` to the background worker, unless it is already queued or the queue is full.
    fn enqueue(&self, ip: IpAddr) {
        let shared = &self.inner.shared;
        if !lock(&shared.pending).insert(ip) {
            return;
        }
        match self.inner.queue.try_send(ip) {
            Ok(()) => bump(&shared.stats.queued),
            Err(error) => {
                lock(&shared.pending).remove(&ip);
                bump(&shared.stats.dropped);
                if matches!(error, mpsc::error::TrySendError::Closed(_)) {
                    tracing::warn!(
                        target: "actix_bouncer",
                        %ip,
                        "reputation worker has stopped; background lookup dropped"
                    );
                }
            }
        }
    }
}

impl fmt::Debug for Reputation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry an API key in its query: leave it out.
        f.debug_struct("Reputation")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}
