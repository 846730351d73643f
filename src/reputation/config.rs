//! The client's settings, and the checks they must pass before anything starts.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use reqwest::header::HeaderName;
use tokio::sync::Semaphore;

use crate::setting::InvalidSetting;

/// Stands in for `{ip}` when the URL template is checked.
const SAMPLE_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

/// Settings of the reputation client.
///
/// The integrator maps the TOML `[reputation]` table onto this. A refused setting is an
/// [`InvalidSetting`] naming the field as it sits in that table (`url`, `fields.isp`); the
/// config layer reports it as `reputation.<field>`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReputationConfig {
    /// The API's URL template; `{ip}` is replaced with the address looked up (IPv6 without
    /// brackets). Required: must start with `http://` or `https://` and contain `{ip}`.
    pub url: String,
    /// The name of the header that carries the API credentials, e.g. `Authorization` or
    /// `X-Api-Key`. Default: none. Set together with [`auth_env`](Self::auth_env).
    pub auth_header: Option<String>,
    /// The environment variable that holds the value of [`auth_header`](Self::auth_header)
    /// (e.g. `Bearer …`). Read once, by [`Reputation::new`](super::Reputation::new); a
    /// missing variable is an [`InvalidSetting`] naming `auth_env`. Default: none.
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
    /// one is dropped and counted in [`ReputationStats::dropped`](super::ReputationStats::dropped).
    /// Default: 1024.
    pub queue: usize,
    /// How many background lookups the worker runs at once. Default: 16.
    pub concurrency: usize,
    /// The names of the JSON fields read from the API's answer.
    pub fields: FieldMap,
    /// A Redis URL (feature `redis`): every instance with the same one and the same
    /// [`shared_prefix`](Self::shared_prefix) shares its answers, so that an address is
    /// looked up once per `cache_ttl` across all instances. The local cache stays in front.
    /// Default: none.
    #[cfg(feature = "redis")]
    pub shared_cache: Option<String>,
    /// The prefix of the shared cache's keys (`<prefix>:rep:<ip>`). Default: `bouncer`.
    #[cfg(feature = "redis")]
    pub shared_prefix: String,
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
    /// [`Reputation::new`](super::Reputation::new)).
    ///
    /// # Errors
    ///
    /// An [`InvalidSetting`] naming the first bad field: `url`, `auth_header`, `auth_env`,
    /// `timeout`, `cache_ttl`, `stale_for`, `negative_ttl`, `max_entries`, `queue`,
    /// `concurrency` or `fields.<name>`. Zero durations and sizes are errors.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        validate_url(&self.url)?;

        match (&self.auth_header, &self.auth_env) {
            (None, None) => {}
            (Some(header), Some(var)) => {
                if HeaderName::from_bytes(header.as_bytes()).is_err() {
                    return Err(InvalidSetting::new(
                        "auth_header",
                        format_args!("{header:?}"),
                        "an HTTP header name, e.g. \"Authorization\"",
                    ));
                }
                if var.is_empty() || var.contains(['=', '\0']) {
                    return Err(InvalidSetting::new(
                        "auth_env",
                        format_args!("{var:?}"),
                        "the name of an environment variable",
                    ));
                }
            }
            (Some(header), None) => {
                return Err(InvalidSetting::new(
                    "auth_env",
                    "(unset)",
                    format!(
                        "the environment variable holding the value of the `{header}` header \
                         (reputation.auth_header is set)"
                    ),
                ));
            }
            (None, Some(var)) => {
                return Err(InvalidSetting::new(
                    "auth_header",
                    "(unset)",
                    format!(
                        "the header that carries the value of ${var} (reputation.auth_env is set)"
                    ),
                ));
            }
        }

        for (field, value) in [
            ("timeout", self.timeout),
            ("cache_ttl", self.cache_ttl),
            ("stale_for", self.stale_for),
            ("negative_ttl", self.negative_ttl),
        ] {
            if value.is_zero() {
                return Err(InvalidSetting::new(
                    field,
                    format_args!("{value:?}"),
                    "a duration above zero",
                ));
            }
        }
        for (field, value) in [
            ("max_entries", self.max_entries),
            ("queue", self.queue),
            ("concurrency", self.concurrency),
        ] {
            if value == 0 {
                return Err(InvalidSetting::new(field, value, "a number above zero"));
            }
        }
        // A semaphore cannot hold more permits than this; nobody needs that many anyway.
        if self.concurrency > Semaphore::MAX_PERMITS {
            return Err(InvalidSetting::new(
                "concurrency",
                self.concurrency,
                format!("at most {}", Semaphore::MAX_PERMITS),
            ));
        }

        for (field, name) in self.fields.named() {
            if name.is_empty() {
                return Err(InvalidSetting::new(
                    field,
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
            #[cfg(feature = "redis")]
            shared_cache: None,
            #[cfg(feature = "redis")]
            shared_prefix: "bouncer".to_owned(),
        }
    }
}

fn validate_url(url: &str) -> Result<(), InvalidSetting> {
    const FIELD: &str = "url";
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return Err(InvalidSetting::new(
            FIELD,
            format_args!("{url:?}"),
            "an http:// or https:// URL containing {ip}",
        ));
    }
    if !url.contains("{ip}") {
        return Err(InvalidSetting::new(
            FIELD,
            format_args!("{url:?}"),
            "a URL containing {ip}, where the address goes",
        ));
    }
    match reqwest::Url::parse(&expand(url, SAMPLE_IP)) {
        Ok(parsed) if parsed.host().is_some() => Ok(()),
        Ok(_) => Err(InvalidSetting::new(
            FIELD,
            format_args!("{url:?}"),
            "a URL with a host",
        )),
        Err(error) => Err(InvalidSetting::new(
            FIELD,
            format_args!("{url:?}"),
            format!("a valid URL once {{ip}} is replaced ({error})"),
        )),
    }
}

/// The URL for `ip`: every `{ip}` of the template replaced with the address.
pub(super) fn expand(template: &str, ip: IpAddr) -> String {
    template.replace("{ip}", &ip.to_string())
}

/// The names of the JSON fields read from the API's answer.
///
/// A name is first looked up as a top-level key; when there is none and the name contains
/// dots, it is followed as a path into nested objects (`"security.is_vpn"`).
#[derive(Debug, Clone)]
#[non_exhaustive]
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
    /// Each name with its field, as an [`InvalidSetting`] names it.
    pub(super) fn named(&self) -> [(&'static str, &str); 8] {
        [
            ("fields.risk_score", &self.risk_score),
            ("fields.is_vpn", &self.is_vpn),
            ("fields.is_proxy", &self.is_proxy),
            ("fields.is_tor", &self.is_tor),
            ("fields.is_datacenter", &self.is_datacenter),
            ("fields.country_code", &self.country_code),
            ("fields.asn", &self.asn),
            ("fields.isp", &self.isp),
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
