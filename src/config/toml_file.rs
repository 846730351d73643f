//! The TOML front door: raw, unvalidated structures that feed the builder's setters.

use serde::Deserialize;

#[cfg(feature = "reputation")]
use super::ReputationSettings;
use super::{parse_duration, quoted, BouncerBuilder, ConfigError, Mode};
use crate::bitset::{expected_one_of, parse_name};
use crate::client_ip::IpHeader;
use crate::feeds::{FeedConfig, FeedFormat, FeedKind};
use crate::path_match::Fail;
use crate::rules::{NewRule, RuleAction, RuleTarget};
use crate::signals::Weights;
use crate::verdict::Flag;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    mode: Option<String>,
    block_threshold: Option<i64>,
    client: Option<RawClient>,
    limit: Option<RawLimit>,
    admin: Option<RawAdmin>,
    scoring: Option<RawScoring>,
    #[serde(default)]
    feeds: Vec<RawFeed>,
    reputation: Option<RawReputation>,
    store: Option<RawStore>,
    admin_api: Option<RawAdminApi>,
    #[serde(default)]
    rules: Vec<RawRule>,
    access_log: Option<RawAccessLog>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccessLog {
    store: Option<String>,
    retain: Option<String>,
    redact: Option<Vec<String>>,
    also_redact: Option<Vec<String>>,
    skip: Option<Vec<String>>,
    session_cookie: Option<String>,
    body_limit: Option<i64>,
    queue_size: Option<i64>,
    batch_size: Option<i64>,
    overflow: Option<String>,
    retries: Option<i64>,
    queued_body_bytes: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(feature = "admin-api"), allow(dead_code))]
struct RawAdminApi {
    #[serde(default)]
    tokens: Vec<RawAdminToken>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(feature = "admin-api"), allow(dead_code))]
struct RawAdminToken {
    name: String,
    token: Option<String>,
    env: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    rules: Option<String>,
    counters: Option<String>,
    counters_prefix: Option<String>,
    counters_timeout: Option<String>,
    counters_fail: Option<String>,
    counters_sync_every: Option<String>,
    counters_batch_hits: Option<i64>,
    counters_max_delay: Option<String>,
    reload: Option<String>,
    auto_rules: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScoring {
    hosting: Option<i64>,
    cdn: Option<i64>,
    vpn: Option<i64>,
    tor: Option<i64>,
    proxy: Option<i64>,
    bot: Option<i64>,
    missing_user_agent: Option<i64>,
    automation_user_agent: Option<i64>,
    declared_crawler: Option<i64>,
    unverified_crawler: Option<i64>,
    fake_crawler: Option<i64>,
    reputation: Option<i64>,
    reputation_unknown: Option<i64>,
    high_risk: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFeed {
    path: String,
    format: String,
    kind: Option<String>,
    reload: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(feature = "reputation"), allow(dead_code))]
struct RawReputation {
    url: String,
    auth_header: Option<String>,
    auth_env: Option<String>,
    timeout: Option<String>,
    cache_ttl: Option<String>,
    stale_for: Option<String>,
    negative_ttl: Option<String>,
    max_entries: Option<i64>,
    queue: Option<i64>,
    concurrency: Option<i64>,
    critical_paths: Option<Vec<String>>,
    fail: Option<String>,
    #[serde(default)]
    groups: Vec<RawGroup>,
    ban_at: Option<i64>,
    ban_for: Option<String>,
    fields: Option<RawFields>,
    shared_cache: Option<String>,
    shared_prefix: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(feature = "reputation"), allow(dead_code))]
struct RawGroup {
    paths: Vec<String>,
    fail: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(feature = "reputation"), allow(dead_code))]
struct RawFields {
    risk_score: Option<String>,
    is_vpn: Option<String>,
    is_proxy: Option<String>,
    is_tor: Option<String>,
    is_datacenter: Option<String>,
    country_code: Option<String>,
    asn: Option<String>,
    isp: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    paths: Option<Vec<String>>,
    max_score: Option<i64>,
    deny: Option<Vec<String>>,
    allow_only: Option<Vec<String>>,
    fail: Option<String>,
    counters_fail: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    trusted_proxies: Option<Vec<String>>,
    ip_headers: Option<Vec<String>>,
    ipv4_prefix: Option<i64>,
    ipv6_prefix: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimit {
    hits: Option<i64>,
    per: Option<String>,
    burst: Option<i64>,
    ban_for: Option<String>,
    ban_growth: Option<f64>,
    max_ban: Option<String>,
    max_tracked_keys: Option<i64>,
    user_ban_for: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    target: String,
    action: String,
    expires: Option<RawTime>,
    #[serde(rename = "for")]
    for_: Option<String>,
    comment: Option<String>,
}

/// `expires` may be written as a TOML datetime or as a string.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawTime {
    Datetime(toml::value::Datetime),
    Text(String),
}

pub(super) fn apply(mut b: BouncerBuilder, text: &str) -> Result<BouncerBuilder, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Toml {
        path: None,
        message: e.to_string().trim_end().to_owned(),
    })?;
    if let Some(mode) = raw.mode {
        let mode = parse_name::<Mode>(&mode)
            .map_err(|e| ConfigError::invalid("mode", quoted(&mode), e.to_string()))?;
        b = b.mode(mode);
    }
    if let Some(t) = raw.block_threshold {
        b = b.block_threshold(int(t, "block_threshold", 0, 100)? as u8);
    }
    if let Some(client) = raw.client {
        if let Some(proxies) = client.trusted_proxies {
            b = b.trusted_proxies(proxies);
        }
        if let Some(names) = client.ip_headers {
            let mut headers = Vec::with_capacity(names.len());
            for (i, name) in names.iter().enumerate() {
                headers.push(name.parse::<IpHeader>().map_err(|e| {
                    ConfigError::invalid(
                        format!("client.ip_headers[{i}]"),
                        quoted(name),
                        e.to_string(),
                    )
                })?);
            }
            b = b.ip_headers(headers);
        }
        if let Some(p) = client.ipv4_prefix {
            b = b.ipv4_prefix(int(p, "client.ipv4_prefix", 1, 32)? as u8);
        }
        if let Some(p) = client.ipv6_prefix {
            b = b.ipv6_prefix(int(p, "client.ipv6_prefix", 1, 128)? as u8);
        }
    }
    if let Some(limit) = raw.limit {
        let hits = match limit.hits {
            Some(h) => int(h, "limit.hits", 1, u32::MAX.into())? as u32,
            None => super::DEFAULT_HITS,
        };
        let per = match &limit.per {
            Some(p) => duration(p, "limit.per")?,
            None => super::DEFAULT_PER,
        };
        b = b.limit(hits, per);
        if let Some(burst) = limit.burst {
            b = b.burst(int(burst, "limit.burst", 1, u32::MAX.into())? as u32);
        }
        if let Some(ban_for) = &limit.ban_for {
            b = b.ban_for(duration(ban_for, "limit.ban_for")?);
        }
        if let Some(growth) = limit.ban_growth {
            b = b.ban_growth(growth);
        }
        if let Some(max_ban) = &limit.max_ban {
            b = b.max_ban(duration(max_ban, "limit.max_ban")?);
        }
        if let Some(max) = limit.max_tracked_keys {
            b = b.max_tracked_keys(int(max, "limit.max_tracked_keys", 1, i64::MAX)? as usize);
        }
        if let Some(length) = &limit.user_ban_for {
            b = b.user_ban_for(positive(length, "limit.user_ban_for")?);
        }
    }
    if let Some(store) = raw.store {
        b = store_settings(b, store)?;
    }
    if let Some(log) = raw.access_log {
        b.access_log = access_log_settings(log)?;
    }
    if let Some(admin) = raw.admin {
        if let Some(paths) = admin.paths {
            b = b.admin_paths(paths);
        }
        if let Some(max) = admin.max_score {
            b = b.admin_max_score(int(max, "admin.max_score", 1, 100)? as u8);
        }
        if let Some(names) = admin.deny {
            let mut flags = Vec::with_capacity(names.len());
            for (i, name) in names.iter().enumerate() {
                flags.push(name.parse::<Flag>().map_err(|e| {
                    ConfigError::invalid(format!("admin.deny[{i}]"), quoted(name), e.to_string())
                })?);
            }
            b = b.admin_deny(flags);
        }
        if let Some(nets) = admin.allow_only {
            b = b.admin_allow_only(nets);
        }
        if let Some(fail) = admin.fail {
            b = b.admin_fail(fail_policy(&fail, "admin.fail".into())?);
        }
        if let Some(fail) = admin.counters_fail {
            b = b.admin_counters_fail(fail_policy(&fail, "admin.counters_fail".into())?);
        }
    }
    if let Some(scoring) = raw.scoring {
        let mut w = Weights::default();
        let fields: [(&'static str, Option<i64>, &mut u8); 14] = [
            ("scoring.hosting", scoring.hosting, &mut w.hosting),
            ("scoring.cdn", scoring.cdn, &mut w.cdn),
            ("scoring.vpn", scoring.vpn, &mut w.vpn),
            ("scoring.tor", scoring.tor, &mut w.tor),
            ("scoring.proxy", scoring.proxy, &mut w.proxy),
            ("scoring.bot", scoring.bot, &mut w.bot),
            (
                "scoring.missing_user_agent",
                scoring.missing_user_agent,
                &mut w.missing_user_agent,
            ),
            (
                "scoring.automation_user_agent",
                scoring.automation_user_agent,
                &mut w.automation_user_agent,
            ),
            (
                "scoring.declared_crawler",
                scoring.declared_crawler,
                &mut w.declared_crawler,
            ),
            (
                "scoring.unverified_crawler",
                scoring.unverified_crawler,
                &mut w.unverified_crawler,
            ),
            (
                "scoring.fake_crawler",
                scoring.fake_crawler,
                &mut w.fake_crawler,
            ),
            ("scoring.reputation", scoring.reputation, &mut w.reputation),
            (
                "scoring.reputation_unknown",
                scoring.reputation_unknown,
                &mut w.reputation_unknown,
            ),
            ("scoring.high_risk", scoring.high_risk, &mut w.high_risk),
        ];
        for (key, value, slot) in fields {
            if let Some(v) = value {
                *slot = int(v, key, 0, 100)? as u8;
            }
        }
        b = b.scoring(w);
    }
    for (i, feed) in raw.feeds.into_iter().enumerate() {
        b = b.feed(feed_config(i, feed)?);
    }
    if let Some(reputation) = raw.reputation {
        #[cfg(feature = "reputation")]
        {
            b = b.reputation(reputation_settings(reputation)?);
        }
        #[cfg(not(feature = "reputation"))]
        {
            return Err(ConfigError::invalid(
                "reputation",
                quoted(&reputation.url),
                "the [reputation] section needs actix-bouncer's `reputation` feature",
            ));
        }
    }
    if let Some(api) = raw.admin_api {
        #[cfg(feature = "admin-api")]
        {
            b = admin_api_settings(b, api)?;
        }
        #[cfg(not(feature = "admin-api"))]
        {
            return Err(ConfigError::invalid(
                "admin_api",
                format!("{} token(s)", api.tokens.len()),
                "the [admin_api] section needs actix-bouncer's `admin-api` feature",
            ));
        }
    }
    for (i, rule) in raw.rules.into_iter().enumerate() {
        // Named by their place in the file, for the warning if one has expired.
        b.rules.push((format!("rules[{i}]"), new_rule(i, rule)?));
    }
    Ok(b)
}

fn feed_config(i: usize, raw: RawFeed) -> Result<FeedConfig, ConfigError> {
    let key = |field: &str| format!("feeds[{i}].{field}");
    let format: FeedFormat = raw
        .format
        .parse()
        .map_err(|e: crate::bitset::UnknownName| {
            ConfigError::invalid(key("format"), quoted(&raw.format), e.to_string())
        })?;
    let kind = match &raw.kind {
        Some(kind) => Some(
            kind.parse::<FeedKind>()
                .map_err(|e| ConfigError::invalid(key("kind"), quoted(kind), e.to_string()))?,
        ),
        None => None,
    };
    let reload = match &raw.reload {
        Some(r) => duration(r, &key("reload"))?,
        None => crate::feeds::DEFAULT_RELOAD,
    };
    Ok(FeedConfig {
        path: raw.path.into(),
        format,
        kind,
        reload,
    })
}

#[cfg(feature = "reputation")]
fn reputation_settings(raw: RawReputation) -> Result<ReputationSettings, ConfigError> {
    let mut s = ReputationSettings::new(raw.url);
    #[cfg(feature = "redis")]
    {
        s.api.shared_cache = raw.shared_cache;
        if let Some(prefix) = raw.shared_prefix {
            s.api.shared_prefix = prefix;
        }
    }
    #[cfg(not(feature = "redis"))]
    if let Some((key, value)) = [
        ("reputation.shared_cache", raw.shared_cache.as_deref()),
        ("reputation.shared_prefix", raw.shared_prefix.as_deref()),
    ]
    .into_iter()
    .find_map(|(k, v)| Some((k, v?)))
    {
        return Err(ConfigError::invalid(
            key,
            quoted(&crate::store_url::redact(value)),
            "this build of actix-bouncer lacks the `redis` feature",
        ));
    }
    s.api.auth_header = raw.auth_header;
    s.api.auth_env = raw.auth_env;
    for (value, key, slot) in [
        (&raw.timeout, "reputation.timeout", &mut s.api.timeout),
        (&raw.cache_ttl, "reputation.cache_ttl", &mut s.api.cache_ttl),
        (&raw.stale_for, "reputation.stale_for", &mut s.api.stale_for),
        (
            &raw.negative_ttl,
            "reputation.negative_ttl",
            &mut s.api.negative_ttl,
        ),
        (&raw.ban_for, "reputation.ban_for", &mut s.ban_for),
    ] {
        if let Some(v) = value {
            *slot = duration(v, key)?;
        }
    }
    for (value, key, slot) in [
        (
            raw.max_entries,
            "reputation.max_entries",
            &mut s.api.max_entries,
        ),
        (raw.queue, "reputation.queue", &mut s.api.queue),
        (
            raw.concurrency,
            "reputation.concurrency",
            &mut s.api.concurrency,
        ),
    ] {
        if let Some(v) = value {
            *slot = int(v, key, 1, i64::from(u32::MAX))? as usize;
        }
    }
    if let Some(paths) = raw.critical_paths {
        s.critical_paths = paths;
    }
    if let Some(fail) = raw.fail {
        s.fail = fail_policy(&fail, "reputation.fail".into())?;
    }
    for (i, group) in raw.groups.into_iter().enumerate() {
        let fail = fail_policy(&group.fail, format!("reputation.groups[{i}].fail"))?;
        s.groups.push(super::PathGroup {
            paths: group.paths,
            fail,
        });
    }
    if let Some(at) = raw.ban_at {
        s.ban_at = Some(int(at, "reputation.ban_at", 1, 100)? as u8);
    }
    if let Some(f) = raw.fields {
        let map = &mut s.api.fields;
        for (value, slot) in [
            (f.risk_score, &mut map.risk_score),
            (f.is_vpn, &mut map.is_vpn),
            (f.is_proxy, &mut map.is_proxy),
            (f.is_tor, &mut map.is_tor),
            (f.is_datacenter, &mut map.is_datacenter),
            (f.country_code, &mut map.country_code),
            (f.asn, &mut map.asn),
            (f.isp, &mut map.isp),
        ] {
            if let Some(v) = value {
                *slot = v;
            }
        }
    }
    Ok(s)
}

/// `[[admin_api.tokens]]`: each names its secret directly (`token`) or by variable (`env`).
#[cfg(feature = "admin-api")]
fn admin_api_settings(
    mut b: BouncerBuilder,
    raw: RawAdminApi,
) -> Result<BouncerBuilder, ConfigError> {
    let first = b.admin_tokens.len();
    for (i, token) in raw.tokens.into_iter().enumerate() {
        let key = |field: &str| format!("admin_api.tokens[{}].{field}", first + i);
        b = match (token.token, token.env) {
            (Some(_), Some(env)) => {
                return Err(ConfigError::invalid(
                    key("env"),
                    quoted(&env),
                    "give either `token` or `env`, not both",
                ))
            }
            (None, None) => {
                return Err(ConfigError::invalid(
                    format!("admin_api.tokens[{}]", first + i),
                    quoted(&token.name),
                    "give the secret as `token` or name its variable with `env`",
                ))
            }
            (Some(secret), None) => b.admin_token(token.name, secret),
            (None, Some(env)) => b.admin_token_env(token.name, env),
        };
    }
    Ok(b)
}

fn store_settings(b: BouncerBuilder, raw: RawStore) -> Result<BouncerBuilder, ConfigError> {
    let mut b = counter_settings(b, &raw)?;
    if let Some(url) = raw.rules {
        check_store_url(&url, "store.rules")?;
        #[cfg(any(feature = "sqlite", feature = "postgres"))]
        {
            b = b.rule_store_url(url);
        }
    }
    if let Some(reload) = &raw.reload {
        b = b.store_reload(duration(reload, "store.reload")?);
    }

    if let Some(auto) = raw.auto_rules {
        b = b.auto_rules(auto);
    }
    Ok(b)
}

/// `[access_log]` through the access log builder's setters; their checks run when the bouncer
/// is built (`access_log.queue_size`, …), these only the TOML-level ones.
fn access_log_settings(raw: RawAccessLog) -> Result<crate::access_log::Settings, ConfigError> {
    use crate::access_log::{AccessLog, Overflow};

    let mut log = AccessLog::builder();
    if let Some(url) = raw.store {
        check_store_url(&url, "access_log.store")?;
        #[cfg(any(feature = "sqlite", feature = "postgres"))]
        {
            log = log.store_url(url);
        }
    }
    if let Some(retain) = &raw.retain {
        let _retain = positive(retain, "access_log.retain")?;
        #[cfg(any(feature = "sqlite", feature = "postgres"))]
        {
            log = log.retain(_retain);
        }
    }
    if let Some(names) = raw.redact {
        log = log.redact(names);
    }
    if let Some(names) = raw.also_redact {
        log = log.also_redact(names);
    }
    if let Some(prefixes) = raw.skip {
        log = log.skip(prefixes);
    }
    if let Some(name) = &raw.session_cookie {
        // "" records no session.
        log = log.session_cookie((!name.is_empty()).then_some(name.as_str()));
    }
    if let Some(n) = raw.body_limit {
        log = log.body_limit(int(n, "access_log.body_limit", 0, i64::MAX)? as usize);
    }
    if let Some(n) = raw.queue_size {
        log = log.queue_size(int(n, "access_log.queue_size", 1, i64::MAX)? as usize);
    }
    if let Some(n) = raw.batch_size {
        log = log.batch_size(int(n, "access_log.batch_size", 1, i64::MAX)? as usize);
    }
    if let Some(overflow) = &raw.overflow {
        log = log.overflow(match overflow.as_str() {
            "drop" => Overflow::Drop,
            "block" => Overflow::Block,
            _ => {
                return Err(ConfigError::invalid(
                    "access_log.overflow",
                    quoted(overflow),
                    "expected one of \"drop\", \"block\"",
                ))
            }
        });
    }
    if let Some(n) = raw.retries {
        log = log.retries(int(n, "access_log.retries", 0, u32::MAX.into())? as u32);
    }
    if let Some(n) = raw.queued_body_bytes {
        log = log.queued_body_bytes(int(n, "access_log.queued_body_bytes", 0, i64::MAX)? as usize);
    }
    Ok(log.into_settings())
}

/// A SQL store's URL: a scheme this build can open (the URL is shown with its password
/// masked).
fn check_store_url(url: &str, key: &'static str) -> Result<(), ConfigError> {
    let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
    let known = match scheme {
        "sqlite" => cfg!(feature = "sqlite"),
        "postgres" | "postgresql" => cfg!(feature = "postgres"),
        _ => {
            return Err(ConfigError::invalid(
                key,
                quoted(&crate::store_url::redact(url)),
                "expected a sqlite:// or postgres:// URL",
            ))
        }
    };
    if !known {
        return Err(ConfigError::invalid(
            key,
            quoted(&crate::store_url::redact(url)),
            format!("this build of actix-bouncer lacks the `{scheme}` feature"),
        ));
    }
    Ok(())
}

/// `[store] counters`, `counters_prefix`, `counters_timeout`, `counters_fail`.
fn counter_settings(b: BouncerBuilder, raw: &RawStore) -> Result<BouncerBuilder, ConfigError> {
    let batch_hits = raw.counters_batch_hits.map(|n| n.to_string());
    let set = [
        ("store.counters", raw.counters.as_ref()),
        ("store.counters_prefix", raw.counters_prefix.as_ref()),
        ("store.counters_timeout", raw.counters_timeout.as_ref()),
        ("store.counters_fail", raw.counters_fail.as_ref()),
        (
            "store.counters_sync_every",
            raw.counters_sync_every.as_ref(),
        ),
        ("store.counters_batch_hits", batch_hits.as_ref()),
        ("store.counters_max_delay", raw.counters_max_delay.as_ref()),
    ];
    #[cfg(not(feature = "redis"))]
    if let Some((key, Some(value))) = set.into_iter().find(|(_, v)| v.is_some()) {
        let value = if key == "store.counters" {
            crate::store_url::redact(value)
        } else {
            value.clone()
        };
        return Err(ConfigError::invalid(
            key,
            quoted(&value),
            "this build of actix-bouncer lacks the `redis` feature",
        ));
    }
    #[cfg(feature = "redis")]
    {
        let _ = set;
        let mut b = b;
        if let Some(url) = &raw.counters {
            let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
            if !matches!(scheme, "redis" | "rediss" | "redis+unix" | "unix") {
                return Err(ConfigError::invalid(
                    "store.counters",
                    quoted(&crate::store_url::redact(url)),
                    "expected a redis:// URL",
                ));
            }
            b = b.counter_store_url(url.clone());
        }
        if let Some(prefix) = &raw.counters_prefix {
            b = b.counters_prefix(prefix.clone());
        }
        if let Some(timeout) = &raw.counters_timeout {
            b = b.counters_timeout(positive(timeout, "store.counters_timeout")?);
        }
        if let Some(fail) = &raw.counters_fail {
            let fail = fail.parse().map_err(|_| {
                ConfigError::invalid(
                    "store.counters_fail",
                    quoted(fail),
                    r#"expected "open" or "closed""#,
                )
            })?;
            b = b.counters_fail(fail);
        }
        if let Some(every) = &raw.counters_sync_every {
            b = b.counters_sync_every(positive(every, "store.counters_sync_every")?);
        }
        if let Some(hits) = raw.counters_batch_hits {
            b = b.counters_batch_hits(
                int(hits, "store.counters_batch_hits", 1, u32::MAX.into())? as u32
            );
        }
        if let Some(delay) = &raw.counters_max_delay {
            b = b.counters_max_delay(positive(delay, "store.counters_max_delay")?);
        }
        Ok(b)
    }
    #[cfg(not(feature = "redis"))]
    Ok(b)
}

fn positive(value: &str, key: &str) -> Result<std::time::Duration, ConfigError> {
    let d = duration(value, key)?;
    if d.is_zero() {
        return Err(ConfigError::invalid(
            key.to_owned(),
            quoted(value),
            "must be longer than zero",
        ));
    }
    Ok(d)
}

fn fail_policy(value: &str, key: String) -> Result<Fail, ConfigError> {
    parse_name::<Fail>(value).map_err(|e| ConfigError::invalid(key, quoted(value), e.to_string()))
}

fn new_rule(i: usize, raw: RawRule) -> Result<NewRule, ConfigError> {
    let key = |field: &str| format!("rules[{i}].{field}");
    let target: RuleTarget = raw
        .target
        .parse()
        .map_err(|e: crate::rules::InvalidTarget| {
            ConfigError::invalid(key("target"), quoted(&raw.target), e.to_string())
        })?;
    let action: RuleAction = raw.action.parse().map_err(|_| {
        ConfigError::invalid(
            key("action"),
            quoted(&raw.action),
            expected_one_of(<RuleAction as strum::VariantNames>::VARIANTS),
        )
    })?;
    let mut rule = NewRule::new(action, target);
    match (raw.expires, raw.for_) {
        (Some(_), Some(for_)) => {
            return Err(ConfigError::invalid(
                key("for"),
                quoted(&for_),
                "give either `expires` or `for`, not both",
            ))
        }
        (Some(expires), None) => {
            let text = match expires {
                RawTime::Datetime(dt) => dt.to_string(),
                RawTime::Text(s) => s,
            };
            let at = time::OffsetDateTime::parse(
                text.trim(),
                &time::format_description::well_known::Rfc3339,
            )
            .map_err(|_| {
                ConfigError::invalid(
                    key("expires"),
                    quoted(&text),
                    "expected an RFC 3339 time with an offset, like \"2030-01-01T00:00:00Z\"",
                )
            })?;
            rule = rule.expires_at(at.into());
        }
        (None, Some(for_)) => rule = rule.expires_after(positive(&for_, &key("for"))?),
        (None, None) => {}
    }
    if let Some(comment) = raw.comment {
        rule = rule.comment(comment);
    }
    Ok(rule)
}

fn int(v: i64, key: &'static str, min: i64, max: i64) -> Result<i64, ConfigError> {
    if (min..=max).contains(&v) {
        Ok(v)
    } else {
        Err(ConfigError::invalid(
            key,
            v,
            format!("must be between {min} and {max}"),
        ))
    }
}

fn duration(s: &str, key: &str) -> Result<std::time::Duration, ConfigError> {
    parse_duration(s).map_err(|e| ConfigError::invalid(key.to_owned(), quoted(s), e))
}
