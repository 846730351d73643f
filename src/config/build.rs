//! [`BouncerBuilder::build`]: validates every setting, builds every component and wires the
//! engine. Each component reports its own typed error; this is the one place that turns them
//! into keys of the TOML file.

use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::{Arc, LazyLock};
use std::time::SystemTime;

use ipnet::IpNet;

use super::builder::BouncerBuilder;
use super::{quoted, ConfigError, DEFAULT_BAN_GROWTH, DEFAULT_MAX_BAN};
use crate::admin::AdminPolicy;
use crate::bouncer::Bouncer;
use crate::client_ip::{ClientIpResolver, IpHeader};
use crate::engine::{rate_limit_policy, AutoRules, Engine};
use crate::events::Events;
use crate::feeds::Feeds;
use crate::limiter::{BanPolicy, LimitPolicy, Limits, MemoryCounterStore};
use crate::net::parse_network;
use crate::path_match::PathPrefixes;
use crate::prefix_table::PrefixTable;
use crate::response::Responses;
use crate::rules::{Expiry, NewRule, Rules};
use crate::signals::{RangeSignal, Signal, UserAgentSignal};
use crate::user_agent::UaMatcher;

/// The Redis counter store of `[store] counters`, its errors on the key at fault.
#[cfg(feature = "redis")]
fn redis_counters(
    url: String,
    settings: super::builder::RedisCounters,
    max_tracked_keys: NonZeroUsize,
    clock: std::sync::Arc<dyn crate::clock::Clock>,
) -> Result<crate::limiter::RedisCounterStore, ConfigError> {
    for (key, length) in [
        ("store.counters_timeout", settings.timeout),
        ("store.counters_sync_every", settings.sync_every),
        ("store.counters_max_delay", settings.max_delay),
    ] {
        if let Some(length) = length.filter(|t| t.is_zero()) {
            return Err(ConfigError::invalid(
                key,
                format!("{length:?}"),
                "must be longer than zero",
            ));
        }
    }
    if settings.batch_hits == Some(0) {
        return Err(ConfigError::invalid(
            "store.counters_batch_hits",
            0,
            "must be at least 1",
        ));
    }
    if settings.prefix.as_deref().is_some_and(str::is_empty) {
        return Err(ConfigError::invalid(
            "store.counters_prefix",
            "\"\"",
            "must not be empty",
        ));
    }
    let shown = quoted(&crate::store_url::redact(&url));
    let mut store = crate::limiter::RedisCounterStore::builder(url)
        .max_tracked_keys(max_tracked_keys)
        .clock(clock);
    if let Some(prefix) = settings.prefix {
        store = store.prefix(prefix);
    }
    if let Some(timeout) = settings.timeout {
        store = store.timeout(timeout);
    }
    if let Some(fail) = settings.fail {
        store = store.fail(fail);
    }
    if let Some(every) = settings.sync_every {
        store = store.sync_every(every);
    }
    if let Some(hits) = settings.batch_hits {
        store = store.batch_hits(hits);
    }
    if let Some(delay) = settings.max_delay {
        store = store.max_delay(delay);
    }
    store
        .build()
        .map_err(|e| ConfigError::invalid("store.counters", shown, e.to_string()))
}

/// The User-Agent automaton is the same for every bouncer (about 1.3 MB, a few ms to build):
/// built once, shared.
static USER_AGENTS: LazyLock<UaMatcher> = LazyLock::new(UaMatcher::new);

impl BouncerBuilder {
    /// Validates the settings and builds the middleware.
    ///
    /// Errors name the key at fault. A startup rule whose expiry has passed is not an error
    /// (a config must not stop working because time passed): it is skipped with a warning that
    /// names it (`rules[2]`).
    pub fn build(self) -> Result<Bouncer, ConfigError> {
        // The access log's settings (`[access_log]`), checked now so a bad one fails startup
        // under its key; `Bouncer::access_log` starts from them.
        self.access_log
            .check()
            .map_err(|e| ConfigError::setting("access_log", &e))?;
        let access_log = Arc::new(self.access_log.clone());
        // First: the request counters bind to the recorder installed when they register.
        #[cfg(feature = "prometheus")]
        if self.prometheus {
            crate::metrics::install_prometheus()
                .map_err(|e| ConfigError::invalid("metrics.prometheus", true, e.to_string()))?;
        }
        if self.block_threshold > 100 {
            return Err(ConfigError::invalid(
                "block_threshold",
                self.block_threshold,
                "must be between 0 and 100",
            ));
        }
        let weights = self.weights;
        if !(1..=100).contains(&weights.high_risk) {
            return Err(ConfigError::invalid(
                "scoring.high_risk",
                weights.high_risk,
                "must be between 1 and 100",
            ));
        }
        let resolver = self.resolver()?;
        let policy = self.limit_policy()?;
        let admin = self.admin_policy()?;
        #[cfg(feature = "admin-api")]
        let admin_tokens = admin_api::tokens(&self.admin_tokens)?;
        let max_tracked_keys = NonZeroUsize::new(self.max_tracked_keys).ok_or_else(|| {
            ConfigError::invalid("limit.max_tracked_keys", 0, "must be at least 1")
        })?;
        let growth = self.ban_growth.unwrap_or(DEFAULT_BAN_GROWTH);
        let max_ban = self.max_ban.unwrap_or(DEFAULT_MAX_BAN);
        let rate_limit_policy = self.rate_limit_headers.then(|| rate_limit_policy(&policy));
        // `[store] counters` is one more store factory; a store of the app's own wins over it.
        #[cfg_attr(not(feature = "redis"), allow(unused_mut))]
        let mut counter_store = self.counter_store;
        #[cfg(feature = "redis")]
        {
            let mut redis = self.redis_counters;
            if let (None, Some(url)) = (&counter_store, redis.url.take()) {
                let store = redis_counters(url, redis, max_tracked_keys, self.clock.clone())?;
                counter_store = Some(Box::new(move |policy, growth, max_ban| {
                    Limits::new(store, policy, growth, max_ban)
                }));
            }
        }
        let limits = match counter_store {
            Some(store) => store(policy, growth, max_ban),
            None => Limits::new(
                MemoryCounterStore::new(max_tracked_keys, self.clock.clone()),
                policy,
                growth,
                max_ban,
            ),
        };
        let feeds =
            if self.feeds.is_empty() {
                None
            } else {
                Some(Feeds::load(self.feeds).map_err(|e| {
                    ConfigError::setting(&format!("feeds[{}]", e.feed()), e.setting())
                })?)
            };

        #[cfg(feature = "metrics")]
        let metrics_feeds = feeds.clone();
        #[cfg(feature = "dashboard")]
        let engine_feeds = feeds.clone();
        let clock = self.clock;
        let has_store = self.rule_store.is_some();
        let rules = match self.rule_store {
            Some(open) => {
                let rules = Rules::builder()
                    .clock(clock.clone())
                    .reload(self.store_reload);
                open(rules)?
            }
            None => Rules::with_clock(clock.clone()),
        };
        let seeds = in_force(self.rules, clock.wall());
        // Always with a store: a rule taken out of the config leaves the store too.
        if has_store || !seeds.is_empty() {
            rules
                .seed(seeds)
                .map_err(|e| ConfigError::invalid("rules", "the startup rules", e.to_string()))?;
        }
        let auto_rules = self.auto_rules.unwrap_or(has_store).then_some(AutoRules {
            user_ban_for: self.user_ban_for,
        });

        // The built-in signals first (the User-Agent before the ranges, so a crawler confirmed
        // in its own ranges is not punished for being there), then the app's.
        let mut signals: Vec<Box<dyn Signal>> = vec![Box::new(UserAgentSignal {
            weights,
            feeds: feeds.clone(),
            matcher: USER_AGENTS.clone(),
        })];
        if let Some(feeds) = feeds {
            signals.push(Box::new(RangeSignal { weights, feeds }));
        }
        #[cfg(feature = "reputation")]
        let reputation = match self.reputation {
            Some(settings) => {
                let signal = reputation::signal(settings, clock.clone(), rules.clone(), weights)?;
                signals.push(Box::new(signal.clone()));
                Some(signal)
            }
            None => None,
        };
        signals.extend(self.signals);

        Ok(Bouncer::from_engine(
            Engine {
                mode: self.mode,
                block_threshold: self.block_threshold,
                high_risk: weights.high_risk,
                resolver,
                user: self.user,
                rules,
                auto_rules,
                limits,
                #[cfg(feature = "dashboard")]
                feeds: engine_feeds,
                signals: signals.into_boxed_slice(),
                admin,
                events: Events::new(self.event_sinks, self.mode == super::Mode::Enforce),
                responses: Responses {
                    responder: self.responder,
                },
                rate_limit_policy,
                clock,
                #[cfg(feature = "metrics")]
                metrics: crate::metrics::EngineMetrics {
                    requests: crate::metrics::RequestMetrics::new(
                        self.mode == super::Mode::Enforce,
                    ),
                    feeds: metrics_feeds,
                },
                #[cfg(feature = "reputation")]
                reputation,
                #[cfg(feature = "admin-api")]
                admin_tokens,
                #[cfg(feature = "admin-api")]
                admin_warned: Default::default(),
            },
            access_log,
        ))
    }

    fn resolver(&self) -> Result<ClientIpResolver, ConfigError> {
        let mut trust_unix = false;
        let mut networks = Vec::with_capacity(self.trusted_proxies.len());
        for (i, entry) in self.trusted_proxies.iter().enumerate() {
            if entry.trim().eq_ignore_ascii_case("unix") {
                trust_unix = true;
            } else {
                networks.push(network(entry, &format!("client.trusted_proxies[{i}]"))?);
            }
        }
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
        let mut headers: Vec<IpHeader> = Vec::with_capacity(self.ip_headers.len());
        for &header in &self.ip_headers {
            if !headers.contains(&header) {
                headers.push(header);
            }
        }
        Ok(
            ClientIpResolver::new(networks, headers, self.ipv4_prefix, self.ipv6_prefix)
                .trust_unix_socket(trust_unix),
        )
    }

    fn limit_policy(&self) -> Result<LimitPolicy, ConfigError> {
        let limit = |e| ConfigError::setting("limit", &e);
        let hits = NonZeroU32::new(self.hits)
            .ok_or_else(|| ConfigError::invalid("limit.hits", 0, "must be at least 1"))?;
        let mut policy = LimitPolicy::new(hits, self.per).map_err(limit)?;
        if let Some(burst) = self.burst {
            let burst = NonZeroU32::new(burst)
                .ok_or_else(|| ConfigError::invalid("limit.burst", 0, "must be at least 1"))?;
            policy = policy.with_burst(burst);
        }
        match self.ban_for {
            Some(ban_for) => {
                let growth = self.ban_growth.unwrap_or(DEFAULT_BAN_GROWTH);
                let max_ban = self.max_ban.unwrap_or(DEFAULT_MAX_BAN.max(ban_for));
                policy = policy.with_ban(BanPolicy::new(ban_for, growth, max_ban).map_err(limit)?);
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

    fn admin_policy(&self) -> Result<Option<AdminPolicy>, ConfigError> {
        if !(1..=100).contains(&self.admin_max_score) {
            return Err(ConfigError::invalid(
                "admin.max_score",
                self.admin_max_score,
                "must be between 1 and 100",
            ));
        }
        let allow_only = match &self.admin_allow_only {
            Some(nets) => {
                let mut table = Vec::with_capacity(nets.len());
                for (i, net) in nets.iter().enumerate() {
                    table.push((network(net, &format!("admin.allow_only[{i}]"))?, ()));
                }
                Some(PrefixTable::build(table))
            }
            None => None,
        };
        if self.admin_paths.is_empty() {
            return Ok(None);
        }
        Ok(Some(AdminPolicy {
            paths: path_prefixes(&self.admin_paths, "admin.paths")?,
            max_score: self.admin_max_score,
            deny: self.admin_deny,
            allow_only,
            fail: self.admin_fail,
            counters_fail: self.admin_counters_fail,
        }))
    }
}

/// The startup rules still in force at `now`, each with its seed key; the others are skipped
/// with a warning naming them, so a config that worked yesterday still starts today.
fn in_force(rules: Vec<(String, NewRule)>, now: SystemTime) -> Vec<(String, NewRule)> {
    rules
        .into_iter()
        .filter_map(|(name, rule)| {
            let expires = rule.expires.map(|e| e.at(now));
            match expires {
                Some(at) if at <= now => {
                    let at = humantime::format_rfc3339_seconds(at);
                    tracing::warn!(
                        target: "actix_bouncer",
                        rule = %name,
                        "{name} ({}) expired at {at}; skipped",
                        rule.target
                    );
                    None
                }
                _ => Some((seed_key(&rule), rule)),
            }
        })
        .collect()
}

/// What names a startup rule across restarts: the entry as written (an expiry `for` a
/// duration stays a duration, so the rule seeded first keeps its expiry).
fn seed_key(rule: &NewRule) -> String {
    let expires = match rule.expires {
        None => "never".to_owned(),
        Some(Expiry::At(at)) => format!("at {}", humantime::format_rfc3339_nanos(at)),
        Some(Expiry::After(d)) => format!("for {}ns", d.as_nanos()),
    };
    format!(
        "{} {} {expires} {:?}",
        rule.action,
        rule.target,
        rule.comment.as_deref().unwrap_or("")
    )
}

/// A network or address; errors name `key`.
fn network(entry: &str, key: &str) -> Result<IpNet, ConfigError> {
    parse_network(entry)
        .map_err(|e| ConfigError::invalid(key.to_owned(), quoted(entry), e.to_string()))
}

/// Path prefixes; errors name `key[i]`.
fn path_prefixes(paths: &[String], key: &str) -> Result<PathPrefixes, ConfigError> {
    for (i, path) in paths.iter().enumerate() {
        if PathPrefixes::new([path]).is_err() {
            let expected = if path.starts_with('/') {
                "a path that is valid once percent-decoded"
            } else {
                "must be a path starting with `/`"
            };
            return Err(ConfigError::invalid(
                format!("{key}[{i}]"),
                quoted(path),
                expected,
            ));
        }
    }
    PathPrefixes::new(paths).map_err(|_| ConfigError::invalid(key.to_owned(), "", "valid paths"))
}

#[cfg(feature = "reputation")]
mod reputation {
    use std::sync::Arc;

    use super::super::builder::ReputationSettings;
    use super::{path_prefixes, ConfigError};
    use crate::clock::Clock;
    use crate::reputation::Reputation;
    use crate::rules::Rules;
    use crate::signals::{ReputationSignal, ReputationSignalConfig, Weights};

    /// The reputation signal of `[reputation]`.
    pub(super) fn signal(
        settings: ReputationSettings,
        clock: Arc<dyn Clock>,
        rules: Rules,
        weights: Weights,
    ) -> Result<ReputationSignal, ConfigError> {
        let mut groups = Vec::new();
        for (g, group) in settings.groups.iter().enumerate() {
            let key = format!("reputation.groups[{g}].paths");
            groups.push((path_prefixes(&group.paths, &key)?, group.fail));
        }
        let critical = path_prefixes(&settings.critical_paths, "reputation.critical_paths")?;
        if !critical.is_empty() {
            groups.push((critical, settings.fail));
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
        let client = Reputation::new(settings.api, clock)
            .map_err(|e| ConfigError::setting("reputation", &e))?;
        Ok(ReputationSignal::new(ReputationSignalConfig {
            client,
            groups,
            ban: settings.ban_at.map(|at| (at, settings.ban_for)),
            rules,
            weights,
        }))
    }
}

#[cfg(feature = "admin-api")]
mod admin_api {
    use super::super::builder::{AdminSecret, AdminTokenSetting};
    use super::super::{quoted, MIN_ADMIN_TOKEN_LEN};
    use super::ConfigError;
    use crate::engine::AdminToken;

    /// The admin API's tokens: names checked, secrets read and checked, then hashed. A token
    /// whose variable is unset or empty is skipped with a warning. A secret never shows in an
    /// error: its length does.
    pub(super) fn tokens(settings: &[AdminTokenSetting]) -> Result<Box<[AdminToken]>, ConfigError> {
        let mut tokens: Vec<AdminToken> = Vec::with_capacity(settings.len());
        for (i, setting) in settings.iter().enumerate() {
            let key = |field: &str| format!("admin_api.tokens[{i}].{field}");
            let name = setting.name.as_str();
            if name.trim().is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
                return Err(ConfigError::invalid(
                    key("name"),
                    quoted(name),
                    "a name of 1 to 64 bytes without control characters",
                ));
            }
            if tokens.iter().any(|t| &*t.name == name) {
                return Err(ConfigError::invalid(
                    key("name"),
                    quoted(name),
                    "a name no other token has: it says who made a change",
                ));
            }
            let (secret, field, shown) = match &setting.secret {
                AdminSecret::Given(secret) => {
                    (secret.clone(), "token", format!("<{} bytes>", secret.len()))
                }
                AdminSecret::Env(var) => match env_secret(var, &key("env"))? {
                    Some(secret) => (secret, "env", quoted(var)),
                    None => {
                        tracing::warn!(
                            target: "actix_bouncer",
                            token = name,
                            var = %var,
                            "admin API token {name:?} skipped: the variable {var} is unset or empty"
                        );
                        continue;
                    }
                },
            };
            if secret.len() < MIN_ADMIN_TOKEN_LEN {
                return Err(ConfigError::invalid(
                    key(field),
                    shown,
                    format!(
                        "a secret of at least {MIN_ADMIN_TOKEN_LEN} bytes (this one has {})",
                        secret.len()
                    ),
                ));
            }
            // What a client can send after `Bearer `: anything else could never match.
            if !secret.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(ConfigError::invalid(
                    key(field),
                    shown,
                    "a secret of visible ASCII characters only (no spaces or line breaks)",
                ));
            }
            let token = AdminToken::new(name, secret.as_bytes());
            if tokens.iter().any(|t| t.digest == token.digest) {
                return Err(ConfigError::invalid(
                    key(field),
                    shown,
                    "a secret no other token has: it says who made a change",
                ));
            }
            tokens.push(token);
        }
        Ok(tokens.into_boxed_slice())
    }

    /// The value of `var`; `None` when it is unset or empty.
    fn env_secret(var: &str, key: &str) -> Result<Option<String>, ConfigError> {
        if var.is_empty() || var.contains(['=', '\0']) {
            return Err(ConfigError::invalid(
                key.to_owned(),
                quoted(var),
                "the name of an environment variable",
            ));
        }
        match std::env::var_os(var) {
            None => Ok(None),
            Some(value) if value.is_empty() => Ok(None),
            Some(value) => value.into_string().map(Some).map_err(|_| {
                ConfigError::invalid(key.to_owned(), quoted(var), "a variable holding UTF-8 text")
            }),
        }
    }
}
