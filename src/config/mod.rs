//! Configuration: the [`BouncerBuilder`] and the TOML file format, two doors to one validation.
//!
//! The TOML loader reads each key and calls the matching builder setter, so both doors accept
//! exactly the same values and report errors with the same key names (`limit.hits`,
//! `client.trusted_proxies[1]`, `rules[0].target`, …).
//!
//! ```toml
//! mode = "enforce"          # or "monitor": log what would be blocked, block nothing
//! block_threshold = 90      # 0–100
//!
//! [client]
//! trusted_proxies = ["10.0.0.0/8"]  # forwarding headers are read only from these peers
//! ip_headers = ["x-forwarded-for"]  # any of "forwarded", "x-forwarded-for", "x-real-ip", in order
//! ipv4_prefix = 32
//! ipv6_prefix = 64
//!
//! [limit]
//! hits = 300
//! per = "1m"
//! burst = 300
//! ban_for = "15m"
//! ban_growth = 2.0
//! max_ban = "24h"
//! max_tracked_keys = 100000
//!
//! [[rules]]
//! target = "203.0.113.0/24"   # an IP, a CIDR network, or "user:<id>"
//! action = "block"            # or "allow"
//! for = "7d"                  # or expires = "2030-01-01T00:00:00Z"
//! comment = "scraper"
//! ```

mod error;
mod toml_file;

use std::fmt;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServiceRequest;
use actix_web::{HttpRequest, HttpResponse};
use ipnet::IpNet;

pub use self::error::ConfigError;
use crate::admin::{AdminPolicy, Fail};
use crate::client_ip::{normalize_net, ClientIpResolver, IpHeader};
use crate::clock::{Clock, SystemClock};
use crate::events::{BouncerEvent, EventHook};
use crate::feeds::{FeedConfig, Feeds};
use crate::guard::HandlerLimits;
use crate::limiter::{BanPolicy, LimitPolicy, Limiter};
#[cfg(feature = "reputation")]
use crate::middleware::ReputationSetup;
use crate::middleware::{Bouncer, Engine};
use crate::prefix_table::PrefixTable;
#[cfg(feature = "reputation")]
use crate::reputation::{Reputation, ReputationConfig};
use crate::response::{Rejection, Responder};
use crate::rules::{NewRule, Rules};
use crate::scoring::{RiskSignal, Weights};
use crate::signals::Signal;
use crate::user_agent::UaMatcher;
use crate::verdict::{Flag, Flags};

/// Whether the bouncer blocks, or only reports what it would block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// Block what the policy refuses (the default).
    #[default]
    Enforce,
    /// Shadow mode: block nothing, attach verdicts and log "would block" events.
    Monitor,
}

impl Mode {
    /// `"enforce"` or `"monitor"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Monitor => "monitor",
        }
    }
}

/// Default `block_threshold`.
pub const DEFAULT_BLOCK_THRESHOLD: u8 = 90;
/// Default `limit.hits`.
pub const DEFAULT_HITS: u32 = 300;
/// Default `limit.per`.
pub const DEFAULT_PER: Duration = Duration::from_secs(60);
/// Default `limit.ban_growth`.
pub const DEFAULT_BAN_GROWTH: f64 = 2.0;
/// Default `limit.max_ban`, raised to `ban_for` when that is longer.
pub const DEFAULT_MAX_BAN: Duration = Duration::from_secs(24 * 3600);
/// Default `admin.max_score`.
pub const DEFAULT_ADMIN_MAX_SCORE: u8 = 60;
/// Default `limit.max_tracked_keys`.
pub const DEFAULT_MAX_TRACKED_KEYS: usize = 100_000;

/// The User-Agent automaton is the same for every bouncer (about 1.3 MB, a few ms to build):
/// built once, shared.
static USER_AGENTS: std::sync::LazyLock<UaMatcher> = std::sync::LazyLock::new(UaMatcher::new);

pub(crate) type UserHook = Arc<dyn Fn(&ServiceRequest) -> Option<String> + Send + Sync>;

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
    mode: Mode,
    block_threshold: u8,
    trusted_proxies: Vec<String>,
    ip_headers: Vec<IpHeader>,
    ipv4_prefix: u8,
    ipv6_prefix: u8,
    hits: u32,
    per: Duration,
    burst: Option<u32>,
    ban_for: Option<Duration>,
    ban_growth: Option<f64>,
    max_ban: Option<Duration>,
    max_tracked_keys: usize,
    rules: Vec<NewRule>,
    rate_limit_headers: bool,
    user: Option<UserHook>,
    on_event: Option<EventHook>,
    responder: Option<Responder>,
    clock: Arc<dyn Clock>,
    signals: Vec<Box<dyn Signal>>,
    admin_paths: Vec<String>,
    admin_max_score: u8,
    admin_deny: Flags,
    admin_allow_only: Option<Vec<String>>,
    admin_fail: Fail,
    weights: Weights,
    feeds: Vec<FeedConfig>,
    #[cfg(feature = "reputation")]
    reputation: Option<ReputationSettings>,
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
pub struct PathGroup {
    /// Path prefixes of the group.
    pub paths: Vec<String>,
    /// What a wait that ends without a score does on these paths.
    pub fail: Fail,
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
            rate_limit_headers: false,
            user: None,
            on_event: None,
            responder: None,
            clock: Arc::new(SystemClock::new()),
            signals: Vec::new(),
            admin_paths: Vec::new(),
            admin_max_score: DEFAULT_ADMIN_MAX_SCORE,
            admin_deny: Flags::from_bits(Flag::Tor.bit()),
            admin_allow_only: None,
            admin_fail: Fail::Closed,
            weights: Weights::default(),
            feeds: Vec::new(),
            #[cfg(feature = "reputation")]
            reputation: None,
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
    /// believed. Default: none, so forwarding headers are ignored and the peer address is the
    /// client. Parsed by [`build`](Self::build); errors name `client.trusted_proxies[i]`.
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

    /// Going over the limit also bans the client key for this long (403 while banned). Must be
    /// longer than the limit's period. Default: no bans, only 429 answers.
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

    /// Adds a rule that is in force from startup. Default: no rules.
    pub fn rule(mut self, rule: NewRule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Adds several startup rules.
    pub fn rules(mut self, rules: impl IntoIterator<Item = NewRule>) -> Self {
        self.rules.extend(rules);
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

    /// Called for every block, ban and would-block, after the `tracing` event. Keep it quick:
    /// hand the event to a channel for alerts. Default: none.
    pub fn on_event<F>(mut self, hook: F) -> Self
    where
        F: Fn(&BouncerEvent) + Send + Sync + 'static,
    {
        self.on_event = Some(Arc::new(hook));
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

    /// Adds a [`Signal`]: a cheap, synchronous check that adds points and flags to each
    /// request's verdict before the block threshold applies. Default: none.
    pub fn signal(mut self, signal: impl Signal) -> Self {
        self.signals.push(Box::new(signal));
        self
    }

    /// Path prefixes under the admin policy, matched after normalisation (see
    /// [`admin`](crate::admin)). Default: none, which turns the admin policy off.
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

    /// The points each signal adds; see [`scoring`](crate::scoring) for the defaults.
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

    /// Validates the settings and builds the middleware.
    pub fn build(self) -> Result<Bouncer, ConfigError> {
        if self.block_threshold > 100 {
            return Err(ConfigError::invalid(
                "block_threshold",
                self.block_threshold,
                "must be between 0 and 100",
            ));
        }
        let trusted = parse_networks(&self.trusted_proxies, "client.trusted_proxies")?;
        if !(1..=32).contains(&self.ipv4_prefix) {
            return Err(ConfigError::invalid(
                "client.ipv4_prefix",
                self.ipv4_prefix,
                "must be between 1 and 32",
            ));
        }
        if !(1..=128).contains(&self.ipv6_prefix) {
            return Err(ConfigError::invalid(
                "client.ipv6_prefix",
                self.ipv6_prefix,
                "must be between 1 and 128",
            ));
        }
        let policy = self.limit_policy()?;
        let admin = self.admin_policy()?;
        let resolver = ClientIpResolver::new(
            trusted,
            dedup(self.ip_headers),
            self.ipv4_prefix,
            self.ipv6_prefix,
        );
        let rules = Rules::with_clock(self.clock.clone());
        rules.insert_now(self.rules).map_err(|e| {
            ConfigError::invalid("rules", "a rule whose expiry has passed", e.to_string())
        })?;
        let handler_limits = HandlerLimits::new(
            self.clock.clone(),
            policy.max_tracked_keys(),
            self.ban_growth.unwrap_or(DEFAULT_BAN_GROWTH),
            self.max_ban.unwrap_or(DEFAULT_MAX_BAN),
        );
        let limiter = Limiter::new(policy, self.clock.clone());
        let weights = self.weights;
        if !(1..=100).contains(&weights.high_risk) {
            return Err(ConfigError::invalid(
                "scoring.high_risk",
                weights.high_risk,
                "must be between 1 and 100",
            ));
        }
        let feeds = if self.feeds.is_empty() {
            None
        } else {
            Some(Feeds::load(self.feeds)?)
        };
        #[cfg(feature = "reputation")]
        let reputation = match self.reputation {
            Some(settings) => Some(reputation_setup(settings, self.clock.clone())?),
            None => None,
        };
        Ok(Bouncer::from_engine(Engine {
            mode: self.mode,
            block_threshold: self.block_threshold,
            resolver,
            limiter,
            rules,
            rate_limit_headers: self.rate_limit_headers,
            user: self.user,
            on_event: self.on_event,
            responder: self.responder,
            clock: self.clock,
            signals: self.signals.into_boxed_slice(),
            admin,
            handler_limits,
            risk: RiskSignal {
                weights,
                feeds,
                user_agents: USER_AGENTS.clone(),
            },
            weights,
            #[cfg(feature = "reputation")]
            reputation,
        }))
    }

    fn admin_policy(&self) -> Result<Option<AdminPolicy>, ConfigError> {
        if !(1..=100).contains(&self.admin_max_score) {
            return Err(ConfigError::invalid(
                "admin.max_score",
                self.admin_max_score,
                "must be between 1 and 100",
            ));
        }
        let allow_only = match &self.admin_allow_only {
            Some(nets) => Some(PrefixTable::build(
                parse_networks(nets, "admin.allow_only")?
                    .into_iter()
                    .map(|n| (n, ())),
            )),
            None => None,
        };
        if self.admin_paths.is_empty() {
            return Ok(None);
        }
        check_paths(&self.admin_paths, "admin.paths")?;
        AdminPolicy::new(
            &self.admin_paths,
            self.admin_max_score,
            self.admin_deny,
            allow_only,
            self.admin_fail,
        )
        .map(Some)
        .map_err(|_| {
            ConfigError::invalid(
                "admin.paths",
                format!("{:?}", self.admin_paths),
                "every path must be valid once percent-decoded",
            )
        })
    }

    fn limit_policy(&self) -> Result<LimitPolicy, ConfigError> {
        let hits = NonZeroU32::new(self.hits)
            .ok_or_else(|| ConfigError::invalid("limit.hits", 0, "must be at least 1"))?;
        let mut policy = LimitPolicy::new(hits, self.per)?;
        if let Some(burst) = self.burst {
            let burst = NonZeroU32::new(burst)
                .ok_or_else(|| ConfigError::invalid("limit.burst", 0, "must be at least 1"))?;
            policy = policy.with_burst(burst);
        }
        let max = NonZeroUsize::new(self.max_tracked_keys).ok_or_else(|| {
            ConfigError::invalid("limit.max_tracked_keys", 0, "must be at least 1")
        })?;
        policy = policy.with_max_tracked_keys(max);
        match self.ban_for {
            Some(ban_for) => {
                let growth = self.ban_growth.unwrap_or(DEFAULT_BAN_GROWTH);
                let max_ban = self.max_ban.unwrap_or(DEFAULT_MAX_BAN.max(ban_for));
                policy = policy.with_ban(BanPolicy::new(ban_for, growth, max_ban)?)?;
            }
            None => {
                if let Some(growth) = self.ban_growth {
                    return Err(ConfigError::invalid(
                        "limit.ban_growth",
                        growth,
                        "has no effect without limit.ban_for",
                    ));
                }
                if let Some(max_ban) = self.max_ban {
                    return Err(ConfigError::invalid(
                        "limit.max_ban",
                        humantime::format_duration(max_ban),
                        "has no effect without limit.ban_for",
                    ));
                }
            }
        }
        Ok(policy)
    }
}

#[cfg(feature = "reputation")]
fn reputation_setup(
    settings: ReputationSettings,
    clock: Arc<dyn Clock>,
) -> Result<ReputationSetup, ConfigError> {
    let mut groups: Vec<(Vec<String>, Fail)> = Vec::new();
    for (g, group) in settings.groups.iter().enumerate() {
        check_paths(&group.paths, &format!("reputation.groups[{g}].paths"))?;
        groups.push((group.paths.clone(), group.fail));
    }
    check_paths(&settings.critical_paths, "reputation.critical_paths")?;
    if !settings.critical_paths.is_empty() {
        groups.push((settings.critical_paths.clone(), settings.fail));
    }
    if let Some(at) = settings.ban_at {
        if !(1..=100).contains(&at) {
            return Err(ConfigError::invalid(
                "reputation.ban_at",
                at,
                "must be between 1 and 100",
            ));
        }
    }
    if settings.ban_for.is_zero() {
        return Err(ConfigError::invalid(
            "reputation.ban_for",
            "0s",
            "must be longer than zero",
        ));
    }
    Ok(ReputationSetup {
        client: Reputation::new(settings.api, clock)?,
        groups,
        ban_at: settings.ban_at,
        ban_for: settings.ban_for,
    })
}

/// Paths must start with `/`; errors name `key[i]`.
fn check_paths(paths: &[String], key: &str) -> Result<(), ConfigError> {
    for (i, path) in paths.iter().enumerate() {
        if !path.starts_with('/') {
            return Err(ConfigError::invalid(
                format!("{key}[{i}]"),
                quoted(path),
                "must be a path starting with `/`",
            ));
        }
    }
    Ok(())
}

/// Parses a list of networks; errors name `key[i]`.
fn parse_networks(list: &[String], key: &str) -> Result<Vec<IpNet>, ConfigError> {
    let mut nets = Vec::with_capacity(list.len());
    for (i, s) in list.iter().enumerate() {
        nets.push(parse_network(s).map_err(|e| {
            let expected = match e {
                NetworkError::NotANetwork => {
                    "expected an IP address or a CIDR network such as 10.0.0.0/8"
                }
                NetworkError::HostBits => NetworkError::HOST_BITS,
            };
            ConfigError::invalid(format!("{key}[{i}]"), quoted(s), expected)
        })?);
    }
    Ok(nets)
}

fn dedup(headers: Vec<IpHeader>) -> Vec<IpHeader> {
    let mut out: Vec<IpHeader> = Vec::with_capacity(headers.len());
    for h in headers {
        if !out.contains(&h) {
            out.push(h);
        }
    }
    out
}

pub(crate) fn quoted(s: &str) -> String {
    format!("{s:?}")
}

/// Why a network could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NetworkError {
    /// Neither an address nor a CIDR network.
    NotANetwork,
    /// A CIDR network with host bits set (`10.1.2.3/8`): rejected rather than widened silently.
    HostBits,
}

impl NetworkError {
    pub(crate) const HOST_BITS: &'static str =
        "the network has host bits set; write the network address (e.g. 10.0.0.0/8)";
}

/// A CIDR network or a single address (as a full-length network), IPv4-mapped IPv6 stored as
/// IPv4; host bits must be clear.
pub(crate) fn parse_network(s: &str) -> Result<IpNet, NetworkError> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<std::net::IpAddr>() {
        return Ok(normalize_net(IpNet::from(ip)));
    }
    let net: IpNet = s.parse().map_err(|_| NetworkError::NotANetwork)?;
    if net.trunc() != net {
        return Err(NetworkError::HostBits);
    }
    Ok(normalize_net(net))
}

/// Parses a human duration such as `"90s"`, `"10m"`, `"24h"`, `"7d"` or `"1h 30m"`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("expected a duration like \"90s\", \"10m\" or \"24h\" ({e})"))
}
