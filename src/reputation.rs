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

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, watch, Semaphore};

use crate::clock::Clock;
use crate::config::ConfigError;

/// The name of the background worker's thread.
const WORKER_THREAD: &str = "actix-bouncer-reputation";

/// The largest response body read from the API; a longer one is [`ReputationError::Malformed`].
const MAX_BODY: usize = 64 * 1024;

/// Stands in for `{ip}` when the URL template is checked.
const SAMPLE_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

/// Settings of the reputation client.
///
/// The integrator maps the TOML `[reputation]` table onto this; each field's key is
/// `reputation.<field>`, which is also the key a [`ConfigError`] names.
#[derive(Debug, Clone)]
pub struct ReputationConfig {
    /// The API's URL template; `{ip}` is replaced with the address looked up (IPv6 without
    /// brackets). Required: must start with `http://` or `https://` and contain `{ip}`.
    pub url: String,
    /// The name of the header that carries the API credentials, e.g. `Authorization` or
    /// `X-Api-Key`. Default: none. Set together with [`auth_env`](Self::auth_env).
    pub auth_header: Option<String>,
    /// The environment variable that holds the value of [`auth_header`](Self::auth_header)
    /// (e.g. `Bearer …`). Read once, by [`Reputation::new`]; a missing variable is a
    /// [`ConfigError`] naming `reputation.auth_env`. Default: none.
    pub auth_env: Option<String>,
    /// How long one upstream call may take, connecting and reading the body included.
    /// Default: 2 s.
    pub timeout: Duration,
    /// How long an answer is fresh: served from the cache without asking again.
    /// Default: 5 min.
    pub cache_ttl: Duration,
    /// How long after [`cache_ttl`](Self::cache_ttl) an answer may still be served: while a
    /// refresh runs, and when the refresh fails (stale-if-error). Default: 1 h.
    pub stale_for: Duration,
    /// How long a failure is remembered, so a dead API is not asked on every request.
    /// Default: 30 s.
    pub negative_ttl: Duration,
    /// How many addresses the cache holds at most (approximately; the least useful are
    /// evicted first). Default: 100 000.
    pub max_entries: usize,
    /// How many background lookups may wait for the worker; when the queue is full, a new
    /// one is dropped and counted in [`ReputationStats::dropped`]. Default: 1024.
    pub queue: usize,
    /// How many background lookups the worker runs at once. Default: 16.
    pub concurrency: usize,
    /// The names of the JSON fields read from the API's answer.
    pub fields: FieldMap,
}

impl ReputationConfig {
    /// The defaults, with `url` as the API's URL template.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }

    /// Checks every setting without side effects (the auth variable is read later, by
    /// [`Reputation::new`]).
    ///
    /// # Errors
    ///
    /// A [`ConfigError::Invalid`] naming the first bad key: `reputation.url`,
    /// `reputation.auth_header`, `reputation.auth_env`, `reputation.timeout`,
    /// `reputation.cache_ttl`, `reputation.stale_for`, `reputation.negative_ttl`,
    /// `reputation.max_entries`, `reputation.queue`, `reputation.concurrency` or
    /// `reputation.fields.<name>`. Zero durations and sizes are errors.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_url(&self.url)?;

        match (&self.auth_header, &self.auth_env) {
            (None, None) => {}
            (Some(header), Some(var)) => {
                if HeaderName::from_bytes(header.as_bytes()).is_err() {
                    return Err(ConfigError::invalid(
                        "reputation.auth_header",
                        format_args!("{header:?}"),
                        "an HTTP header name, e.g. \"Authorization\"",
                    ));
                }
                if var.is_empty() || var.contains(['=', '\0']) {
                    return Err(ConfigError::invalid(
                        "reputation.auth_env",
                        format_args!("{var:?}"),
                        "the name of an environment variable",
                    ));
                }
            }
            (Some(header), None) => {
                return Err(ConfigError::invalid(
                    "reputation.auth_env",
                    "(unset)",
                    format!(
                        "the environment variable holding the value of the `{header}` header \
                         (reputation.auth_header is set)"
                    ),
                ));
            }
            (None, Some(var)) => {
                return Err(ConfigError::invalid(
                    "reputation.auth_header",
                    "(unset)",
                    format!(
                        "the header that carries the value of ${var} (reputation.auth_env is set)"
                    ),
                ));
            }
        }

        for (key, value) in [
            ("reputation.timeout", self.timeout),
            ("reputation.cache_ttl", self.cache_ttl),
            ("reputation.stale_for", self.stale_for),
            ("reputation.negative_ttl", self.negative_ttl),
        ] {
            if value.is_zero() {
                return Err(ConfigError::invalid(
                    key,
                    format_args!("{value:?}"),
                    "a duration above zero",
                ));
            }
        }
        for (key, value) in [
            ("reputation.max_entries", self.max_entries),
            ("reputation.queue", self.queue),
            ("reputation.concurrency", self.concurrency),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(key, value, "a number above zero"));
            }
        }
        // A semaphore cannot hold more permits than this; nobody needs that many anyway.
        if self.concurrency > Semaphore::MAX_PERMITS {
            return Err(ConfigError::invalid(
                "reputation.concurrency",
                self.concurrency,
                format!("at most {}", Semaphore::MAX_PERMITS),
            ));
        }

        for (key, name) in self.fields.named() {
            if name.is_empty() {
                return Err(ConfigError::invalid(
                    key,
                    "\"\"",
                    "the name of a field of the API's JSON answer",
                ));
            }
        }
        Ok(())
    }
}

impl Default for ReputationConfig {
    /// The documented defaults, with an empty (so invalid) `url`.
    fn default() -> Self {
        Self {
            url: String::new(),
            auth_header: None,
            auth_env: None,
            timeout: Duration::from_secs(2),
            cache_ttl: Duration::from_secs(5 * 60),
            stale_for: Duration::from_secs(60 * 60),
            negative_ttl: Duration::from_secs(30),
            max_entries: 100_000,
            queue: 1024,
            concurrency: 16,
            fields: FieldMap::default(),
        }
    }
}

fn validate_url(url: &str) -> Result<(), ConfigError> {
    const KEY: &str = "reputation.url";
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return Err(ConfigError::invalid(
            KEY,
            format_args!("{url:?}"),
            "an http:// or https:// URL containing {ip}",
        ));
    }
    if !url.contains("{ip}") {
        return Err(ConfigError::invalid(
            KEY,
            format_args!("{url:?}"),
            "a URL containing {ip}, where the address goes",
        ));
    }
    match reqwest::Url::parse(&expand(url, SAMPLE_IP)) {
        Ok(parsed) if parsed.host().is_some() => Ok(()),
        Ok(_) => Err(ConfigError::invalid(
            KEY,
            format_args!("{url:?}"),
            "a URL with a host",
        )),
        Err(error) => Err(ConfigError::invalid(
            KEY,
            format_args!("{url:?}"),
            format!("a valid URL once {{ip}} is replaced ({error})"),
        )),
    }
}

/// The URL for `ip`: every `{ip}` of the template replaced with the address.
fn expand(template: &str, ip: IpAddr) -> String {
    template.replace("{ip}", &ip.to_string())
}

/// The names of the JSON fields read from the API's answer.
///
/// A name is first looked up as a top-level key; when there is none and the name contains
/// dots, it is followed as a path into nested objects (`"security.is_vpn"`).
#[derive(Debug, Clone)]
pub struct FieldMap {
    /// The risk score, 0 (harmless) to 100. Default: `risk_score`.
    pub risk_score: String,
    /// Whether the address is a VPN exit. Default: `is_vpn`.
    pub is_vpn: String,
    /// Whether the address is an open or commercial proxy. Default: `is_proxy`.
    pub is_proxy: String,
    /// Whether the address is a Tor exit node. Default: `is_tor`.
    pub is_tor: String,
    /// Whether the address belongs to a hosting provider. Default: `is_datacenter`.
    pub is_datacenter: String,
    /// The ISO 3166 country code. Default: `country_code`.
    pub country_code: String,
    /// The autonomous system number. Default: `asn`.
    pub asn: String,
    /// The network operator's name. Default: `isp`.
    pub isp: String,
}

impl FieldMap {
    /// Each name with its config key.
    fn named(&self) -> [(&'static str, &str); 8] {
        [
            ("reputation.fields.risk_score", &self.risk_score),
            ("reputation.fields.is_vpn", &self.is_vpn),
            ("reputation.fields.is_proxy", &self.is_proxy),
            ("reputation.fields.is_tor", &self.is_tor),
            ("reputation.fields.is_datacenter", &self.is_datacenter),
            ("reputation.fields.country_code", &self.country_code),
            ("reputation.fields.asn", &self.asn),
            ("reputation.fields.isp", &self.isp),
        ]
    }
}

impl Default for FieldMap {
    fn default() -> Self {
        Self {
            risk_score: "risk_score".into(),
            is_vpn: "is_vpn".into(),
            is_proxy: "is_proxy".into(),
            is_tor: "is_tor".into(),
            is_datacenter: "is_datacenter".into(),
            country_code: "country_code".into(),
            asn: "asn".into(),
            isp: "isp".into(),
        }
    }
}

/// What the API said about one address.
///
/// Missing (or `null`) fields are `None`/`false`. A `risk_score` outside 0..=100 is clamped
/// and a fractional one rounded; a numeric string is accepted too. The flags accept `true`,
/// a non-zero number, or the strings `"true"`, `"yes"`, `"1"`. `asn` may arrive as a number
/// or a string (`13335`, `"13335"`, `"AS13335"`) and is normalised to `"AS13335"`; a string
/// that is not a bare number keeps its text.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct IpReport {
    /// The risk score, 0 (harmless) to 100, when the API gave one.
    pub risk_score: Option<u8>,
    /// The address is a VPN exit.
    pub is_vpn: bool,
    /// The address is an open or commercial proxy.
    pub is_proxy: bool,
    /// The address is a Tor exit node.
    pub is_tor: bool,
    /// The address belongs to a hosting provider.
    pub is_datacenter: bool,
    /// The ISO 3166 country code, as the API spelled it.
    pub country_code: Option<String>,
    /// The autonomous system, as `"AS<number>"` when the API gave a number. Shared, since
    /// every request from the address names it as the verdict's provider.
    pub asn: Option<Arc<str>>,
    /// The network operator's name (shared, like `asn`).
    pub isp: Option<Arc<str>>,
}

/// Why a lookup gave no report.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReputationError {
    /// The API did not answer within [`ReputationConfig::timeout`].
    Timeout,
    /// The API answered with this non-success HTTP status.
    Status(u16),
    /// The answer was not a JSON object holding any of the configured fields (or was
    /// larger than 64 KiB).
    Malformed,
    /// The API could not be reached: connection refused or reset, DNS or TLS failure.
    Transport,
    /// A recent lookup of this address failed, and the failure is remembered for
    /// [`ReputationConfig::negative_ttl`]: the API is not asked again until then.
    Unavailable,
    /// The background queue was full, so the lookup was dropped.
    QueueFull,
}

impl fmt::Display for ReputationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReputationError::Timeout => f.write_str("the reputation API timed out"),
            ReputationError::Status(status) => {
                write!(f, "the reputation API answered HTTP {status}")
            }
            ReputationError::Malformed => {
                f.write_str("the reputation API's answer is not a usable JSON object")
            }
            ReputationError::Transport => f.write_str("the reputation API cannot be reached"),
            ReputationError::Unavailable => {
                f.write_str("the reputation API failed recently for this address")
            }
            ReputationError::QueueFull => f.write_str("the reputation lookup queue is full"),
        }
    }
}

impl std::error::Error for ReputationError {}

/// Counters for monitoring and tests; every one only grows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReputationStats {
    /// HTTP requests sent to the API.
    pub upstream_calls: u64,
    /// Fresh reports answered from the cache by [`Reputation::peek`] or
    /// [`Reputation::lookup`].
    pub cache_hits: u64,
    /// Stale reports answered: while a refresh runs, or because the refresh failed.
    pub stale_served: u64,
    /// Upstream calls that failed (timeout, HTTP error status, malformed answer, transport).
    pub failures: u64,
    /// Background lookups dropped because the queue was full.
    pub dropped: u64,
    /// Background lookups queued for the worker.
    pub queued: u64,
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

/// The state shared by the handles, the worker and the in-flight upstream calls.
struct Shared {
    url: String,
    cache_ttl: Duration,
    /// `cache_ttl + stale_for`: how long after its fetch a report may be served at all.
    usable_for: Duration,
    negative_ttl: Duration,
    fields: FieldMap,
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
    cache: quick_cache::sync::Cache<IpAddr, Entry>,
    /// The upstream call running for each address, to join instead of starting another.
    in_flight: Mutex<HashMap<IpAddr, watch::Receiver<Option<Outcome>>>>,
    /// Addresses queued for (or being looked up by) the worker, so `peek` does not queue one
    /// address twice.
    pending: Mutex<HashSet<IpAddr>>,
    /// The worker's runtime, where every upstream call runs.
    runtime: tokio::runtime::Handle,
    stats: Counters,
}

/// What the cache holds for one address.
#[derive(Clone)]
struct Entry {
    /// The last good report, if it is still usable.
    report: Option<Arc<IpReport>>,
    /// When `report` was fetched (monotonic clock).
    fetched_at: Duration,
    /// When the last upstream call failed, if the last call failed.
    failed_at: Option<Duration>,
}

/// What one cache entry means at a given instant.
enum State {
    /// A fresh report: serve it.
    Fresh(Arc<IpReport>),
    /// A stale report and no recent failure: serve it, and refresh.
    Stale(Arc<IpReport>),
    /// A stale report and a recent failure: serve it, do not ask the API yet.
    StaleFailing(Arc<IpReport>),
    /// No usable report and a recent failure: do not ask the API yet.
    Failing,
    /// Nothing usable: ask the API.
    Miss,
}

impl Entry {
    /// What the entry means at `now`. Takes the entry by value: the cache hands out a
    /// clone, and the report's `Arc` moves out of it rather than being cloned again.
    fn state(self, now: Duration, shared: &Shared) -> State {
        let failing = self
            .failed_at
            .is_some_and(|at| now.saturating_sub(at) < shared.negative_ttl);
        let age = now.saturating_sub(self.fetched_at);
        match self.report {
            Some(report) if age < shared.cache_ttl => State::Fresh(report),
            Some(report) if age < shared.usable_for && failing => State::StaleFailing(report),
            Some(report) if age < shared.usable_for => State::Stale(report),
            _ if failing => State::Failing,
            _ => State::Miss,
        }
    }
}

/// An answer to a lookup, and where it came from (for the counters).
#[derive(Clone)]
struct Outcome {
    result: Result<Arc<IpReport>, ReputationError>,
    source: Source,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    /// A fresh report from the cache, or a remembered failure.
    Cache,
    /// A stale report, served because the API failed (now or recently).
    Stale,
    /// The upstream call's own answer.
    Upstream,
}

#[derive(Default)]
struct Counters {
    upstream_calls: AtomicU64,
    cache_hits: AtomicU64,
    stale_served: AtomicU64,
    failures: AtomicU64,
    dropped: AtomicU64,
    queued: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded maps stay consistent even if a holder panicked.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Reputation {
    /// Validates `config`, reads the auth environment variable, builds the HTTP client and
    /// starts the background worker thread.
    ///
    /// Needs no async runtime: the worker brings its own.
    ///
    /// # Errors
    ///
    /// Whatever [`ReputationConfig::validate`] rejects; a [`ConfigError`] naming
    /// `reputation.auth_env` when that variable is not set (or its value cannot be sent in a
    /// header); one naming `reputation` when the HTTP client, the runtime or the thread
    /// cannot be created.
    pub fn new(config: ReputationConfig, clock: Arc<dyn Clock>) -> Result<Self, ConfigError> {
        config.validate()?;

        let mut headers = HeaderMap::new();
        if let (Some(header), Some(var)) = (&config.auth_header, &config.auth_env) {
            let name = HeaderName::from_bytes(header.as_bytes()).map_err(|_| {
                ConfigError::invalid(
                    "reputation.auth_header",
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
                ConfigError::invalid(
                    "reputation.auth_env",
                    format_args!("{var:?}"),
                    format!(
                        "an environment variable holding the value of the `{header}` header \
                         (this one {problem})"
                    ),
                )
            })?;
            let mut value = HeaderValue::from_str(value.trim()).map_err(|_| {
                ConfigError::invalid(
                    "reputation.auth_env",
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
                ConfigError::invalid(
                    "reputation",
                    error.without_url(),
                    "settings an HTTP client can be built from",
                )
            })?;

        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| {
                ConfigError::invalid("reputation", error, "a runtime for the background worker")
            })?;

        let shared = Arc::new(Shared {
            url: config.url,
            cache_ttl: config.cache_ttl,
            usable_for: config.cache_ttl.saturating_add(config.stale_for),
            negative_ttl: config.negative_ttl,
            fields: config.fields,
            client,
            clock,
            cache: quick_cache::sync::Cache::new(config.max_entries),
            in_flight: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashSet::new()),
            runtime: runtime.handle().clone(),
            stats: Counters::default(),
        });

        let (queue, receiver) = mpsc::channel(config.queue);
        let worker = Arc::clone(&shared);
        let concurrency = config.concurrency;
        std::thread::Builder::new()
            .name(WORKER_THREAD.into())
            .spawn(move || run_worker(runtime, worker, receiver, concurrency))
            .map_err(|error| {
                ConfigError::invalid("reputation", error, "a background thread that can start")
            })?;

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
            Some(entry) => entry.state(shared.clock.monotonic(), shared),
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
            stale_served: get(&stats.stale_served),
            failures: get(&stats.failures),
            dropped: get(&stats.dropped),
            queued: get(&stats.queued),
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

/// The background worker: takes addresses off the queue and looks each up, at most
/// `concurrency` at a time, until every handle is gone.
fn run_worker(
    runtime: tokio::runtime::Runtime,
    shared: Arc<Shared>,
    mut queue: mpsc::Receiver<IpAddr>,
    concurrency: usize,
) {
    runtime.block_on(async move {
        let slots = Arc::new(Semaphore::new(concurrency));
        loop {
            // Take a slot first, so addresses wait in the bounded queue while all are busy.
            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                break;
            };
            let Some(ip) = queue.recv().await else {
                break;
            };
            let shared = Arc::clone(&shared);
            tokio::spawn(async move {
                // The outcome lands in the cache; failures are logged and counted there.
                let _ = shared.resolve(ip, false).await;
                lock(&shared.pending).remove(&ip);
                drop(slot);
            });
        }
    });
    // Dropping the runtime here cancels whatever was still running.
}

/// Removes an address's in-flight marker when its upstream call ends, however it ends (even
/// when the task is dropped before it ran).
struct FlightGuard {
    shared: Arc<Shared>,
    ip: IpAddr,
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        lock(&self.shared.in_flight).remove(&self.ip);
    }
}

impl Shared {
    /// The coalesced lookup behind [`Reputation::lookup`] and the worker. `caller` says
    /// whether the answer goes to a caller (and so counts as a hit or stale serve).
    async fn resolve(
        self: &Arc<Self>,
        ip: IpAddr,
        caller: bool,
    ) -> Result<Arc<IpReport>, ReputationError> {
        if let Some(outcome) = self.cached(ip) {
            return self.deliver(outcome, caller);
        }
        let mut flight = match self.join_or_start(ip) {
            Ok(outcome) => return self.deliver(outcome, caller),
            Err(flight) => flight,
        };
        let outcome = match flight.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone(),
            // The call was dropped unfinished: only when the worker's runtime is gone.
            Err(_) => None,
        };
        match outcome {
            Some(outcome) => self.deliver(outcome, caller),
            None => Err(ReputationError::Transport),
        }
    }

    /// The answer the cache gives without asking the API, if any.
    fn cached(&self, ip: IpAddr) -> Option<Outcome> {
        let entry = self.cache.get(&ip)?;
        match entry.state(self.clock.monotonic(), self) {
            State::Fresh(report) => Some(Outcome {
                result: Ok(report),
                source: Source::Cache,
            }),
            State::StaleFailing(report) => Some(Outcome {
                result: Ok(report),
                source: Source::Stale,
            }),
            State::Failing => Some(Outcome {
                result: Err(ReputationError::Unavailable),
                source: Source::Cache,
            }),
            State::Stale(_) | State::Miss => None,
        }
    }

    fn deliver(&self, outcome: Outcome, caller: bool) -> Result<Arc<IpReport>, ReputationError> {
        if caller && outcome.result.is_ok() {
            match outcome.source {
                Source::Cache => bump(&self.stats.cache_hits),
                Source::Stale => bump(&self.stats.stale_served),
                Source::Upstream => {}
            }
        }
        outcome.result
    }

    /// Joins the upstream call running for `ip`, or starts one on the worker's runtime.
    /// `Ok` when the cache answered after all (a call finished in the meantime).
    fn join_or_start(
        self: &Arc<Self>,
        ip: IpAddr,
    ) -> Result<Outcome, watch::Receiver<Option<Outcome>>> {
        let mut in_flight = lock(&self.in_flight);
        if let Some(flight) = in_flight.get(&ip) {
            return Err(flight.clone());
        }
        // A call that ended between our cache read and taking the lock has updated the
        // cache before leaving the map: look again rather than call twice.
        if let Some(outcome) = self.cached(ip) {
            return Ok(outcome);
        }
        let (sender, receiver) = watch::channel(None);
        in_flight.insert(ip, receiver.clone());
        drop(in_flight);

        let guard = FlightGuard {
            shared: Arc::clone(self),
            ip,
        };
        self.runtime.spawn(async move {
            let shared = Arc::clone(&guard.shared);
            let outcome = shared.refresh(ip).await;
            // Leave the map before publishing: a caller that comes after this finds the
            // cache updated, never a finished call to join (its answer may be out of date
            // by the caller's clock).
            drop(guard);
            sender.send_replace(Some(outcome));
        });
        Err(receiver)
    }

    /// Asks the API about `ip` and records the answer (or the failure) in the cache.
    async fn refresh(&self, ip: IpAddr) -> Outcome {
        let fetched = self.fetch(ip).await;
        let now = self.clock.monotonic();
        match fetched {
            Ok(report) => {
                let report = Arc::new(report);
                self.cache.insert(
                    ip,
                    Entry {
                        report: Some(Arc::clone(&report)),
                        fetched_at: now,
                        failed_at: None,
                    },
                );
                Outcome {
                    result: Ok(report),
                    source: Source::Upstream,
                }
            }
            Err(error) => {
                // Keep a report that may still be served (stale-if-error).
                let (report, fetched_at) = self
                    .cache
                    .get(&ip)
                    .and_then(|entry| {
                        let report = entry.report?;
                        (now.saturating_sub(entry.fetched_at) < self.usable_for)
                            .then_some((report, entry.fetched_at))
                    })
                    .map_or((None, now), |(report, at)| (Some(report), at));
                tracing::warn!(
                    target: "actix_bouncer",
                    %ip,
                    %error,
                    serving_stale = report.is_some(),
                    retry_after = ?self.negative_ttl,
                    "reputation lookup failed"
                );
                self.cache.insert(
                    ip,
                    Entry {
                        report: report.clone(),
                        fetched_at,
                        failed_at: Some(now),
                    },
                );
                bump(&self.stats.failures);
                match report {
                    Some(report) => Outcome {
                        result: Ok(report),
                        source: Source::Stale,
                    },
                    None => Outcome {
                        result: Err(error),
                        source: Source::Upstream,
                    },
                }
            }
        }
    }

    /// One upstream call.
    async fn fetch(&self, ip: IpAddr) -> Result<IpReport, ReputationError> {
        bump(&self.stats.upstream_calls);
        let url = expand(&self.url, ip);
        let mut response = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|error| transport_error(ip, error))?;
        let status = response.status();
        if !status.is_success() {
            return Err(ReputationError::Status(status.as_u16()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| transport_error(ip, error))?
        {
            if body.len() + chunk.len() > MAX_BODY {
                tracing::debug!(target: "actix_bouncer", %ip, "reputation answer too large");
                return Err(ReputationError::Malformed);
            }
            body.extend_from_slice(&chunk);
        }
        parse_report(&body, &self.fields)
    }
}

/// Classifies a failed request, logging the detail (without the URL, which may hold a key).
fn transport_error(ip: IpAddr, error: reqwest::Error) -> ReputationError {
    let kind = if error.is_timeout() {
        ReputationError::Timeout
    } else {
        ReputationError::Transport
    };
    tracing::debug!(
        target: "actix_bouncer",
        %ip,
        detail = ?error.without_url(),
        "reputation request failed"
    );
    kind
}

/// Reads a report out of the API's answer.
fn parse_report(body: &[u8], fields: &FieldMap) -> Result<IpReport, ReputationError> {
    let value: Value = serde_json::from_slice(body).map_err(|_| ReputationError::Malformed)?;
    let object = value.as_object().ok_or(ReputationError::Malformed)?;
    let get = |name: &str| field(object, name);

    // An object without any of the fields is an error message or a wrong field map, not a
    // clean bill of health: do not cache it as one.
    if fields.named().iter().all(|(_, name)| get(name).is_none()) {
        return Err(ReputationError::Malformed);
    }

    Ok(IpReport {
        risk_score: get(&fields.risk_score).and_then(score),
        is_vpn: get(&fields.is_vpn).is_some_and(flag),
        is_proxy: get(&fields.is_proxy).is_some_and(flag),
        is_tor: get(&fields.is_tor).is_some_and(flag),
        is_datacenter: get(&fields.is_datacenter).is_some_and(flag),
        country_code: get(&fields.country_code).and_then(text),
        asn: get(&fields.asn).and_then(asn).map(Arc::from),
        isp: get(&fields.isp).and_then(text).map(Arc::from),
    })
}

/// The value of `name`: a top-level key, else a dotted path into nested objects. `null`
/// counts as missing.
fn field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    let value = match object.get(name) {
        Some(value) => value,
        None if name.contains('.') => {
            let mut parts = name.split('.');
            let first = object.get(parts.next()?)?;
            parts.try_fold(first, |value, part| value.as_object()?.get(part))?
        }
        None => return None,
    };
    (!value.is_null()).then_some(value)
}

fn score(value: &Value) -> Option<u8> {
    let number = match value {
        Value::Number(number) => number.as_f64()?,
        Value::String(text) => text.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    if !number.is_finite() {
        return None;
    }
    // In 0..=100 after the clamp, so the cast is exact.
    Some(number.round().clamp(0.0, 100.0) as u8)
}

fn flag(value: &Value) -> bool {
    match value {
        Value::Bool(flag) => *flag,
        Value::Number(number) => number.as_f64().is_some_and(|n| n != 0.0),
        Value::String(text) => {
            let text = text.trim();
            ["true", "yes", "1"]
                .iter()
                .any(|yes| text.eq_ignore_ascii_case(yes))
        }
        _ => false,
    }
}

fn text(value: &Value) -> Option<String> {
    let text = value.as_str()?.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

fn asn(value: &Value) -> Option<String> {
    match value {
        Value::Number(number) => number.as_u64().map(|n| format!("AS{n}")),
        Value::String(text) => {
            let text = text.trim();
            let digits = match text.get(..2) {
                Some(prefix) if prefix.eq_ignore_ascii_case("as") => &text[2..],
                _ => text,
            };
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                Some(format!("AS{digits}"))
            } else {
                (!text.is_empty()).then(|| text.to_owned())
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<IpReport, ReputationError> {
        parse_report(json.as_bytes(), &FieldMap::default())
    }

    #[test]
    fn scores_are_clamped_and_rounded() {
        let cases = [
            ("42", Some(42)),
            ("42.5", Some(43)),
            ("-3", Some(0)),
            ("250", Some(100)),
            ("\"77\"", Some(77)),
            ("\"high\"", None),
            ("true", None),
            ("null", None),
        ];
        for (raw, expected) in cases {
            let report = parse(&format!(r#"{{"risk_score": {raw}, "isp": "x"}}"#)).unwrap();
            assert_eq!(report.risk_score, expected, "risk_score = {raw}");
        }
    }

    #[test]
    fn asn_forms_are_normalised() {
        let cases = [
            ("13335", Some("AS13335")),
            ("\"13335\"", Some("AS13335")),
            ("\"AS13335\"", Some("AS13335")),
            ("\"as13335\"", Some("AS13335")),
            ("\"AS13335 Cloudflare\"", Some("AS13335 Cloudflare")),
            ("\"\"", None),
            ("-5", None),
        ];
        for (raw, expected) in cases {
            let report = parse(&format!(r#"{{"asn": {raw}}}"#)).unwrap();
            assert_eq!(report.asn.as_deref(), expected, "asn = {raw}");
        }
    }

    #[test]
    fn flags_accept_common_spellings() {
        let report =
            parse(r#"{"is_vpn": 1, "is_proxy": "yes", "is_tor": "false", "is_datacenter": null}"#)
                .unwrap();
        assert!(report.is_vpn);
        assert!(report.is_proxy);
        assert!(!report.is_tor);
        assert!(!report.is_datacenter);
    }

    #[test]
    fn dotted_names_reach_nested_fields() {
        let fields = FieldMap {
            is_tor: "security.tor".into(),
            ..FieldMap::default()
        };
        let report = parse_report(br#"{"security": {"tor": true}}"#, &fields).unwrap();
        assert!(report.is_tor);
    }

    #[test]
    fn unusable_answers_are_malformed() {
        for body in [
            "",
            "nonsense",
            "[1, 2]",
            "42",
            "{}",
            r#"{"error": "bad key"}"#,
        ] {
            assert_eq!(parse(body), Err(ReputationError::Malformed), "{body:?}");
        }
    }

    #[test]
    fn urls_are_checked() {
        let ok = ReputationConfig::new("https://api.example.com/v1/{ip}?fields=all");
        assert!(ok.validate().is_ok());
        for url in [
            "",
            "ftp://api.example.com/{ip}",
            "https://api.example.com/v1/",
            "http://{ip}:99999/",
        ] {
            let error = ReputationConfig::new(url).validate().unwrap_err();
            assert_eq!(error.key(), Some("reputation.url"), "{url:?}");
        }
    }

    #[test]
    fn ipv6_addresses_expand_without_brackets() {
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        let url = expand("http://127.0.0.1:1/ip/{ip}", ip);
        assert_eq!(url, "http://127.0.0.1:1/ip/2001:db8::1");
        assert!(reqwest::Url::parse(&url).is_ok());
    }
}
