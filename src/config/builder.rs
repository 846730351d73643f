//! The builder: every setting, with its default.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServiceRequest;
use actix_web::{HttpRequest, HttpResponse};

use super::{
    toml_file, ConfigError, DEFAULT_ADMIN_MAX_SCORE, DEFAULT_BLOCK_THRESHOLD, DEFAULT_HITS,
    DEFAULT_MAX_TRACKED_KEYS, DEFAULT_PER,
};
use crate::client_ip::IpHeader;
use crate::clock::{Clock, SystemClock};
use crate::engine::{Mode, UserHook};
use crate::events::{BouncerEvent, EventSink};
use crate::feeds::FeedConfig;
use crate::limiter::{CounterStore, LimitPolicy, Limits};
use crate::path_match::Fail;
#[cfg(feature = "reputation")]
use crate::reputation::ReputationConfig;
use crate::response::{Rejection, Responder};
use crate::rules::{NewRule, RuleError, RuleStore, Rules, RulesBuilder};
use crate::signals::{Signal, Weights};
use crate::verdict::{Flag, Flags};
#[allow(unused_imports)] // the docs' links
use crate::{limiter::MemoryCounterStore, Bouncer};

/// Opens the rule store at build time, with the clock and the reload period.
pub(super) type RuleStoreFactory =
    Box<dyn FnOnce(RulesBuilder) -> Result<Rules, ConfigError> + Send>;
/// Puts the global limit into the counter store at build time.
pub(super) type CounterStoreFactory = Box<dyn FnOnce(LimitPolicy, f64, Duration) -> Limits + Send>;

/// Builds a [`Bouncer`]. Every setter documents its default; [`build`](Self::build) validates.
///
/// ```
/// use std::time::Duration;
/// use actix_bouncer::{Bouncer, Mode};
///
/// let bouncer = Bouncer::builder()
///     .mode(Mode::Monitor)
///     .trusted_proxies(["10.0.0.0/8"])
///     .limit(100, Duration::from_secs(60))
///     .ban_for(Duration::from_secs(15 * 60))
///     .build()?;
/// # Ok::<_, actix_bouncer::ConfigError>(())
/// ```
#[must_use = "call .build() to get a Bouncer"]
pub struct BouncerBuilder {
    pub(super) mode: Mode,
    pub(super) block_threshold: u8,
    pub(super) trusted_proxies: Vec<String>,
    pub(super) ip_headers: Vec<IpHeader>,
    pub(super) ipv4_prefix: u8,
    pub(super) ipv6_prefix: u8,
    pub(super) hits: u32,
    pub(super) per: Duration,
    pub(super) burst: Option<u32>,
    pub(super) ban_for: Option<Duration>,
    pub(super) ban_growth: Option<f64>,
    pub(super) max_ban: Option<Duration>,
    pub(super) max_tracked_keys: usize,
    /// Startup rules, each with the name it goes by in warnings (`rules[3]`).
    pub(super) rules: Vec<(String, NewRule)>,
    pub(super) rule_store: Option<RuleStoreFactory>,
    pub(super) store_reload: Duration,
    pub(super) auto_rules: Option<bool>,
    pub(super) user_ban_for: Option<Duration>,
    pub(super) counter_store: Option<CounterStoreFactory>,
    pub(super) rate_limit_headers: bool,
    pub(super) user: Option<UserHook>,
    pub(super) event_sinks: Vec<Arc<dyn EventSink>>,
    pub(super) responder: Option<Responder>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) signals: Vec<Box<dyn Signal>>,
    pub(super) admin_paths: Vec<String>,
    pub(super) admin_max_score: u8,
    pub(super) admin_deny: Flags,
    pub(super) admin_allow_only: Option<Vec<String>>,
    pub(super) admin_fail: Fail,
    pub(super) admin_counters_fail: Fail,
    pub(super) weights: Weights,
    pub(super) feeds: Vec<FeedConfig>,
    #[cfg(feature = "reputation")]
    pub(super) reputation: Option<ReputationSettings>,
    #[cfg(feature = "admin-api")]
    pub(super) admin_tokens: Vec<AdminTokenSetting>,
    #[cfg(feature = "prometheus")]
    pub(super) prometheus: bool,
    /// `[access_log]`: what [`Bouncer::access_log`] starts from.
    pub(super) access_log: crate::access_log::Settings,
    #[cfg(feature = "redis")]
    pub(super) redis_counters: RedisCounters,
}

/// The `[store] counters*` settings (feature `redis`).
#[cfg(feature = "redis")]
#[derive(Default)]
pub(super) struct RedisCounters {
    pub(super) url: Option<String>,
    pub(super) prefix: Option<String>,
    pub(super) timeout: Option<Duration>,
    pub(super) fail: Option<crate::limiter::FailPolicy>,
    pub(super) sync_every: Option<Duration>,
    pub(super) batch_hits: Option<u32>,
    pub(super) max_delay: Option<Duration>,
}

/// An admin API token as configured: its name, and where its secret comes from.
#[cfg(feature = "admin-api")]
pub(super) struct AdminTokenSetting {
    pub(super) name: String,
    pub(super) secret: AdminSecret,
}

/// Where an admin API token's secret comes from.
#[cfg(feature = "admin-api")]
pub(super) enum AdminSecret {
    /// Given in code or in the config file (`token`).
    Given(String),
    /// Read from this environment variable at build time (`env`).
    Env(String),
}

/// How the middleware uses the reputation API (feature `reputation`).
#[cfg(feature = "reputation")]
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReputationSettings {
    /// The API client's settings.
    pub api: ReputationConfig,
    /// Path prefixes that wait (up to the API timeout) for a score when the cache has none.
    /// Every other path never waits. Default: none.
    pub critical_paths: Vec<String>,
    /// Whether a critical path whose wait ends without a score is refused
    /// ([`Fail::Closed`]) or let through flagged `reputation_unknown` ([`Fail::Open`], the
    /// default).
    pub fail: Fail,
    /// More groups of critical paths, each with its own failure policy, checked before
    /// `critical_paths` (e.g. `/admin` failing closed while `/login` fails open). Default: none.
    pub groups: Vec<PathGroup>,
    /// A score at or above this adds a timed block rule for the address. Default: none.
    pub ban_at: Option<u8>,
    /// How long such a rule lasts. Default: 1 hour.
    pub ban_for: Duration,
}

/// Critical paths with their own failure policy (`[[reputation.groups]]`).
#[cfg(feature = "reputation")]
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PathGroup {
    /// Path prefixes of the group.
    pub paths: Vec<String>,
    /// What a wait that ends without a score does on these paths.
    pub fail: Fail,
}

#[cfg(feature = "reputation")]
impl PathGroup {
    /// Critical paths `paths`, whose waits that end without a score do what `fail` says.
    pub fn new<I, S>(paths: I, fail: Fail) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        PathGroup {
            paths: paths.into_iter().map(Into::into).collect(),
            fail,
        }
    }
}

#[cfg(feature = "reputation")]
impl ReputationSettings {
    /// Settings for the API at `url` (with `{ip}` where the address goes), with the defaults.
    pub fn new(url: impl Into<String>) -> Self {
        ReputationSettings {
            api: ReputationConfig::new(url),
            critical_paths: Vec::new(),
            fail: Fail::Open,
            groups: Vec::new(),
            ban_at: None,
            ban_for: Duration::from_secs(3600),
        }
    }
}

impl fmt::Debug for BouncerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BouncerBuilder")
            .field("mode", &self.mode)
            .field("block_threshold", &self.block_threshold)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("ip_headers", &self.ip_headers)
            .field("hits", &self.hits)
            .field("per", &self.per)
            .field("rules", &self.rules.len())
            .finish_non_exhaustive()
    }
}

impl Default for BouncerBuilder {
    fn default() -> Self {
        BouncerBuilder {
            mode: Mode::Enforce,
            block_threshold: DEFAULT_BLOCK_THRESHOLD,
            trusted_proxies: Vec::new(),
            ip_headers: vec![IpHeader::XForwardedFor],
            ipv4_prefix: 32,
            ipv6_prefix: 64,
            hits: DEFAULT_HITS,
            per: DEFAULT_PER,
            burst: None,
            ban_for: None,
            ban_growth: None,
            max_ban: None,
            max_tracked_keys: DEFAULT_MAX_TRACKED_KEYS,
            rules: Vec::new(),
            rule_store: None,
            store_reload: super::DEFAULT_STORE_RELOAD,
            auto_rules: None,
            user_ban_for: None,
            counter_store: None,
            rate_limit_headers: false,
            user: None,
            event_sinks: Vec::new(),
            responder: None,
            clock: Arc::new(SystemClock::new()),
            signals: Vec::new(),
            admin_paths: Vec::new(),
            admin_max_score: DEFAULT_ADMIN_MAX_SCORE,
            admin_deny: Flags::from_bits(Flag::Tor.bit()),
            admin_allow_only: None,
            admin_fail: Fail::Closed,
            admin_counters_fail: Fail::Open,
            weights: Weights::default(),
            feeds: Vec::new(),
            #[cfg(feature = "reputation")]
            reputation: None,
            #[cfg(feature = "admin-api")]
            admin_tokens: Vec::new(),
            #[cfg(feature = "prometheus")]
            prometheus: false,
            access_log: crate::access_log::Settings::default(),
            #[cfg(feature = "redis")]
            redis_counters: RedisCounters::default(),
        }
    }
}

impl BouncerBuilder {
    /// Applies the settings of a TOML config file over this builder.
    ///
    /// Use it to combine a file with hooks that only code can give:
    /// `Bouncer::builder().toml_file("bouncer.toml")?.user(...).build()?`.
    pub fn toml_file(self, path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        toml_file::apply(self, &text).map_err(|e| e.in_file(path))
    }

    /// Applies the settings of a TOML document over this builder.
    pub fn toml_str(self, toml: &str) -> Result<Self, ConfigError> {
        toml_file::apply(self, toml)
    }

    /// Enforce or monitor. Default: [`Mode::Enforce`].
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Score (0–100) at or above which a request is blocked with reason `risk`. Default: 90.
    pub fn block_threshold(mut self, threshold: u8) -> Self {
        self.block_threshold = threshold;
        self
    }

    /// CIDR networks (or single addresses) of the reverse proxies whose forwarding headers are
    /// believed, and `"unix"` for a proxy in front of a Unix socket (such connections have no
    /// peer address). Default: none, so forwarding headers are ignored and the peer address is
    /// the client. Parsed by [`build`](Self::build); errors name `client.trusted_proxies[i]`.
    pub fn trusted_proxies<I, S>(mut self, proxies: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.trusted_proxies = proxies.into_iter().map(|s| s.as_ref().to_owned()).collect();
        self
    }

    /// The forwarding headers to read from trusted proxies, in order of preference; the first
    /// one present is used. List only headers your proxy sets or overwrites: a header it passes
    /// through untouched is the client's to forge. Default: `[IpHeader::XForwardedFor]`.
    pub fn ip_headers(mut self, headers: impl IntoIterator<Item = IpHeader>) -> Self {
        self.ip_headers = headers.into_iter().collect();
        self
    }

    /// IPv4 clients are counted and banned per network of this prefix length (1–32). Default: 32.
    pub fn ipv4_prefix(mut self, prefix: u8) -> Self {
        self.ipv4_prefix = prefix;
        self
    }

    /// IPv6 clients are counted and banned per network of this prefix length (1–128).
    /// Default: 64, since one subscriber usually holds a whole /64.
    pub fn ipv6_prefix(mut self, prefix: u8) -> Self {
        self.ipv6_prefix = prefix;
        self
    }

    /// Each client key may make `hits` requests per `per` (GCRA). Default: 300 per minute.
    pub fn limit(mut self, hits: u32, per: Duration) -> Self {
        self.hits = hits;
        self.per = per;
        self
    }

    /// How many requests may arrive at once before the rate applies. Default: `hits`.
    pub fn burst(mut self, burst: u32) -> Self {
        self.burst = Some(burst);
        self
    }

    /// Going over the limit also bans the client key for this long (403 while banned); any
    /// length above zero. Default: no bans, only 429 answers.
    pub fn ban_for(mut self, ban_for: Duration) -> Self {
        self.ban_for = Some(ban_for);
        self
    }

    /// Each repeat ban of the same key is this many times longer than the last (≥ 1.0).
    /// Default: 2.0. Requires `ban_for`.
    pub fn ban_growth(mut self, growth: f64) -> Self {
        self.ban_growth = Some(growth);
        self
    }

    /// Bans never grow longer than this. Default: 24 hours, or `ban_for` if longer.
    /// Requires `ban_for`.
    pub fn max_ban(mut self, max_ban: Duration) -> Self {
        self.max_ban = Some(max_ban);
        self
    }

    /// At most this many client keys are tracked; idle keys are evicted first. Bounds memory
    /// (about 100 bytes a key). Default: 100,000.
    pub fn max_tracked_keys(mut self, max: usize) -> Self {
        self.max_tracked_keys = max;
        self
    }

    /// Adds a rule that is in force from startup. A rule whose expiry has passed by then is
    /// skipped with a warning. Default: no rules.
    pub fn rule(mut self, rule: NewRule) -> Self {
        let name = format!("rule {} added in code", self.rules.len());
        self.rules.push((name, rule));
        self
    }

    /// Adds several startup rules.
    pub fn rules(self, rules: impl IntoIterator<Item = NewRule>) -> Self {
        rules.into_iter().fold(self, Self::rule)
    }

    /// Where rules live. Default: a [`MemoryRuleStore`](crate::rules::MemoryRuleStore), in
    /// process. [`build`](Self::build) loads the store's active rules before it returns.
    pub fn rule_store(mut self, store: impl RuleStore) -> Self {
        self.rule_store = Some(Box::new(move |rules| {
            rules
                .store(store)
                .map_err(|e| store_error("the rule store", &e))
        }));
        self
    }

    /// Rules in the database at `url`: `sqlite://bouncer.db` (created if missing),
    /// `sqlite::memory:`, or `postgres://user@host/db` (feature `postgres`). The schema is
    /// created or upgraded at [`build`](Self::build), which fails (naming `store.rules`) when
    /// the database cannot be reached or has a newer schema than this crate knows. Default: no
    /// database, rules in process.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub fn rule_store_url(mut self, url: impl Into<String>) -> Self {
        let url = url.into();
        self.rule_store = Some(Box::new(move |rules| {
            let shown = super::quoted(&crate::store_url::redact(&url));
            rules
                .open(move || async move { crate::rules::SqlRuleStore::connect(&url).await })
                .map_err(|e| store_error(&shown, &e))
        }));
        self
    }

    /// How often to apply the rule changes other instances made in a shared store (loading
    /// only what changed); zero turns it off. Default: 60 s (django-blacklist's
    /// `BLACKLIST_RELOAD_PERIOD`).
    pub fn store_reload(mut self, every: Duration) -> Self {
        self.store_reload = every;
        self
    }

    /// Whether a ban (by the global limit or a handler limit) is also recorded as an automatic
    /// block rule (source `auto`) that expires when the ban ends, so every instance sharing
    /// the rule store enforces it. Default: on with a rule store, off without one (the ban
    /// itself already holds in this process).
    pub fn auto_rules(mut self, enabled: bool) -> Self {
        self.auto_rules = Some(enabled);
        self
    }

    /// How long the automatic rule of a signed-in user lasts, when a ban of theirs is recorded
    /// (an address's rule lasts as long as its ban). Default: as long as the ban.
    pub fn user_ban_for(mut self, length: Duration) -> Self {
        self.user_ban_for = Some(length);
        self
    }

    /// Where counts and bans live. Default: a [`MemoryCounterStore`] of
    /// [`max_tracked_keys`](Self::max_tracked_keys) keys, in process.
    pub fn counter_store(mut self, store: impl CounterStore) -> Self {
        self.counter_store = Some(Box::new(move |policy, growth, max_ban| {
            Limits::new(store, policy, growth, max_ban)
        }));
        self
    }

    /// Counts and bans in the Redis at `url`, shared by every instance that uses the same
    /// Redis and [`counters_prefix`](Self::counters_prefix) (feature `redis`): a
    /// [`RedisCounterStore`](crate::limiter::RedisCounterStore) of
    /// [`max_tracked_keys`](Self::max_tracked_keys) local keys. Requests never wait for Redis
    /// (see [`limiter`](crate::limiter) for the bound and the outage behaviour).
    /// [`build`](Self::build) fails (naming `store.counters`) on a URL that is not a Redis
    /// one, but does not wait for Redis: until it answers, the store behaves as during an
    /// outage. Default: counts in process. [`counter_store`](Self::counter_store) wins over it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use actix_bouncer::limiter::FailPolicy;
    ///
    /// let bouncer = actix_bouncer::Bouncer::builder()
    ///     .counter_store_url("redis://127.0.0.1:6379/0")
    ///     .counters_prefix("shop")
    ///     .counters_timeout(Duration::from_millis(5))
    ///     .counters_fail(FailPolicy::Open)
    ///     .build()?;
    /// # Ok::<_, actix_bouncer::ConfigError>(())
    /// ```
    #[cfg(feature = "redis")]
    pub fn counter_store_url(mut self, url: impl Into<String>) -> Self {
        self.redis_counters.url = Some(url.into());
        self
    }

    /// The prefix of the Redis keys and channel (feature `redis`). Default: `bouncer`.
    #[cfg(feature = "redis")]
    pub fn counters_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.redis_counters.prefix = Some(prefix.into());
        self
    }

    /// The longest one Redis round trip may take before it counts as a failure (feature
    /// `redis`). Default: 5 ms.
    #[cfg(feature = "redis")]
    pub fn counters_timeout(mut self, timeout: Duration) -> Self {
        self.redis_counters.timeout = Some(timeout);
        self
    }

    /// What to do while Redis cannot be reached (feature `redis`). Default:
    /// [`FailPolicy::Open`](crate::limiter::FailPolicy::Open).
    #[cfg(feature = "redis")]
    pub fn counters_fail(mut self, fail: crate::limiter::FailPolicy) -> Self {
        self.redis_counters.fail = Some(fail);
        self
    }

    /// How often pending counts are synced to Redis (feature `redis`). Default: 10 ms. Longer:
    /// fewer Redis operations, a looser bound (see
    /// [`RedisCounterStore`](crate::limiter::RedisCounterStore)).
    #[cfg(feature = "redis")]
    pub fn counters_sync_every(mut self, every: Duration) -> Self {
        self.redis_counters.sync_every = Some(every);
        self
    }

    /// A key's pending hits are synced once they are this many (feature `redis`). Default: 16.
    #[cfg(feature = "redis")]
    pub fn counters_batch_hits(mut self, hits: u32) -> Self {
        self.redis_counters.batch_hits = Some(hits);
        self
    }

    /// The longest a pending hit waits to be synced (feature `redis`). Default: 100 ms. Longer:
    /// fewer Redis operations for clients that send few requests, a looser bound.
    #[cfg(feature = "redis")]
    pub fn counters_max_delay(mut self, delay: Duration) -> Self {
        self.redis_counters.max_delay = Some(delay);
        self
    }

    /// Installs the Prometheus recorder ([`install_prometheus`](crate::metrics::install_prometheus))
    /// as the first step of [`build`](Self::build), so that the request counters bind to it;
    /// serve it with [`Bouncer::metrics_resource`]. Idempotent across bouncers. `build` fails
    /// (key `metrics.prometheus`) when another global `metrics` recorder is installed. Default:
    /// off (the counters go to whatever recorder is installed before `build`, if any).
    #[cfg(feature = "prometheus")]
    pub fn prometheus(mut self, enabled: bool) -> Self {
        self.prometheus = enabled;
        self
    }

    /// Sends the IETF `RateLimit` and `RateLimit-Policy` headers on every response.
    /// Default: off.
    pub fn rate_limit_headers(mut self, enabled: bool) -> Self {
        self.rate_limit_headers = enabled;
        self
    }

    /// Names the user behind a request (for instance from actix-identity or a header), so
    /// `user:<id>` rules can match. Wrap the bouncer inside the middleware that sets the
    /// identity. Default: no user.
    pub fn user<F>(mut self, hook: F) -> Self
    where
        F: Fn(&ServiceRequest) -> Option<String> + Send + Sync + 'static,
    {
        self.user = Some(Arc::new(hook));
        self
    }

    /// Called for every event (see [`events`](crate::events)), after the `tracing` event. Keep
    /// it quick: hand the event to a channel for alerts. Default: none.
    pub fn on_event<F>(self, hook: F) -> Self
    where
        F: Fn(&BouncerEvent) + Send + Sync + 'static,
    {
        self.event_sink(hook)
    }

    /// Adds an [`EventSink`] (metrics, a log shipper); sinks get every event in the order they
    /// were added, after the `tracing` one. Default: none.
    pub fn event_sink(mut self, sink: impl EventSink) -> Self {
        self.event_sinks.push(Arc::new(sink));
        self
    }

    /// Replaces the `application/problem+json` block response. `Retry-After` is added when the
    /// block has an end and the response does not set it. Default:
    /// [`problem_response`](crate::response::problem_response).
    pub fn responder<F>(mut self, responder: F) -> Self
    where
        F: Fn(&HttpRequest, &Rejection<'_>) -> HttpResponse + Send + Sync + 'static,
    {
        self.responder = Some(Arc::new(responder));
        self
    }

    /// The time source for limits, bans and rule expiry; tests pass a
    /// [`ManualClock`](crate::clock::ManualClock). Default: [`SystemClock`].
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Adds a [`Signal`]: a check that adds points and flags to each request's verdict before
    /// the block threshold applies, after the built-in signals. Default: none.
    pub fn signal(mut self, signal: impl Signal) -> Self {
        self.signals.push(Box::new(signal));
        self
    }

    /// Path prefixes under the admin policy, matched after normalisation (see
    /// [`path_match`](crate::path_match)). Default: none, which turns the admin policy off.
    pub fn admin_paths<I, S>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.admin_paths = paths.into_iter().map(|s| s.as_ref().to_owned()).collect();
        self
    }

    /// Admin paths refuse scores at or above this (1–100). Default: 60.
    pub fn admin_max_score(mut self, max_score: u8) -> Self {
        self.admin_max_score = max_score;
        self
    }

    /// Admin paths refuse requests carrying any of these flags. Default: `[Flag::Tor]`.
    pub fn admin_deny(mut self, flags: impl IntoIterator<Item = Flag>) -> Self {
        self.admin_deny = flags.into_iter().collect();
        self
    }

    /// Admin paths accept only clients inside these networks (the allowed-IP filter).
    /// Default: any network. Parsed by [`build`](Self::build); errors name
    /// `admin.allow_only[i]`.
    pub fn admin_allow_only<I, S>(mut self, networks: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.admin_allow_only = Some(
            networks
                .into_iter()
                .map(|s| s.as_ref().to_owned())
                .collect(),
        );
        self
    }

    /// Whether a path that cannot be normalised counts as an admin path ([`Fail::Closed`],
    /// the default) or not ([`Fail::Open`]).
    pub fn admin_fail(mut self, fail: Fail) -> Self {
        self.admin_fail = fail;
        self
    }

    /// Whether admin paths are refused (`429`, `Retry-After: 1`) while a counter store shared
    /// by several instances cannot be reached ([`Fail::Closed`]), or counted by this instance
    /// alone as other paths are ([`Fail::Open`], the default). For a Redis store
    /// (`counters_fail`) that fails open everywhere else.
    pub fn admin_counters_fail(mut self, fail: Fail) -> Self {
        self.admin_counters_fail = fail;
        self
    }

    /// The points each built-in signal adds; see [`Weights`] for the defaults.
    pub fn scoring(mut self, weights: Weights) -> Self {
        self.weights = weights;
        self
    }

    /// Adds an offline IP-range feed (hosting, CDN, VPN, Tor, proxy or crawler ranges). Files
    /// are loaded by [`build`](Self::build) and re-read when they change. Default: none.
    pub fn feed(mut self, feed: FeedConfig) -> Self {
        self.feeds.push(feed);
        self
    }

    /// Scores addresses with an IP-reputation API (feature `reputation`). Default: none.
    #[cfg(feature = "reputation")]
    pub fn reputation(mut self, settings: ReputationSettings) -> Self {
        self.reputation = Some(settings);
        self
    }

    /// Adds a bearer token of the admin API ([`Bouncer::admin_scope`], feature `admin-api`):
    /// clients send `Authorization: Bearer <secret>`, and `name` (unique) says in logs and
    /// change events who made a change. The secret must be at least
    /// [`MIN_ADMIN_TOKEN_LEN`](super::MIN_ADMIN_TOKEN_LEN) (16) bytes of visible ASCII; only its
    /// SHA-256 digest is kept. Default: no token, which keeps the admin API disabled (every
    /// route answers 404). [`build`](Self::build) validates; errors name
    /// `admin_api.tokens[i].name` or `admin_api.tokens[i].token`, `i` counting the tokens
    /// added so far.
    #[cfg(feature = "admin-api")]
    pub fn admin_token(mut self, name: impl Into<String>, secret: impl Into<String>) -> Self {
        self.admin_tokens.push(AdminTokenSetting {
            name: name.into(),
            secret: AdminSecret::Given(secret.into()),
        });
        self
    }

    /// Adds an admin API token whose secret [`build`](Self::build) reads from the environment
    /// variable `var`, with the rules of [`admin_token`](Self::admin_token). A variable that is
    /// unset or empty skips the token with a warning, so an app without it still starts (with
    /// the API disabled if no other token is left). Errors name `admin_api.tokens[i].env`.
    #[cfg(feature = "admin-api")]
    pub fn admin_token_env(mut self, name: impl Into<String>, var: impl Into<String>) -> Self {
        self.admin_tokens.push(AdminTokenSetting {
            name: name.into(),
            secret: AdminSecret::Env(var.into()),
        });
        self
    }
}

/// A rule store that failed to open or load, as a config error on `store.rules`.
fn store_error(shown: &str, error: &RuleError) -> ConfigError {
    ConfigError::invalid("store.rules", shown, error.to_string())
}
