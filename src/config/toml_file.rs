//! The TOML front door: raw, unvalidated structures that feed the builder's setters.

use serde::Deserialize;

use super::{parse_duration, quoted, BouncerBuilder, ConfigError, Mode};
use crate::admin::Fail;
use crate::client_ip::IpHeader;
use crate::rules::{NewRule, RuleAction, RuleTarget};
use crate::verdict::Flag;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    mode: Option<String>,
    block_threshold: Option<i64>,
    client: Option<RawClient>,
    limit: Option<RawLimit>,
    admin: Option<RawAdmin>,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    paths: Option<Vec<String>>,
    max_score: Option<i64>,
    deny: Option<Vec<String>>,
    allow_only: Option<Vec<String>>,
    fail: Option<String>,
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
        b = b.mode(match mode.as_str() {
            "enforce" => Mode::Enforce,
            "monitor" => Mode::Monitor,
            _ => {
                return Err(ConfigError::invalid(
                    "mode",
                    quoted(&mode),
                    "expected \"enforce\" or \"monitor\"",
                ))
            }
        });
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
            b = b.admin_fail(match fail.as_str() {
                "closed" => Fail::Closed,
                "open" => Fail::Open,
                _ => {
                    return Err(ConfigError::invalid(
                        "admin.fail",
                        quoted(&fail),
                        "expected \"closed\" or \"open\"",
                    ))
                }
            });
        }
    }
    for (i, rule) in raw.rules.into_iter().enumerate() {
        b = b.rule(new_rule(i, rule)?);
    }
    Ok(b)
}

fn new_rule(i: usize, raw: RawRule) -> Result<NewRule, ConfigError> {
    let key = |field: &str| format!("rules[{i}].{field}");
    let target: RuleTarget = raw
        .target
        .parse()
        .map_err(|e: crate::rules::InvalidTarget| {
            ConfigError::invalid(key("target"), quoted(&raw.target), e.to_string())
        })?;
    let action: RuleAction = raw
        .action
        .parse()
        .map_err(|e: crate::rules::InvalidTarget| {
            ConfigError::invalid(key("action"), quoted(&raw.action), e.to_string())
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
        (None, Some(for_)) => {
            let d = duration(&for_, &key("for"))?;
            if d.is_zero() {
                return Err(ConfigError::invalid(
                    key("for"),
                    quoted(&for_),
                    "must be longer than zero",
                ));
            }
            rule = rule.expires_after(d);
        }
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
