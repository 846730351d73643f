//! Why a request scored what it did, and why it was refused.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::client_ip::UnknownClient;
use crate::clock::ceil_secs;
use crate::feeds::FeedKind;
use crate::rules::RuleId;

/// Points for a block rule or a ban: enough to block on its own.
pub const BLOCK_POINTS: u8 = 100;
/// Points for a request over the rate limit, and the ceiling of the rate-usage signal.
pub const RATE_POINTS: u8 = 40;
/// Points for a client that could not be determined.
pub const UNKNOWN_CLIENT_POINTS: u8 = 10;

/// What the bouncer decided for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// The request may proceed.
    Allow,
    /// The request is refused (in monitor mode: would be refused).
    Block,
}

/// The machine-readable reason a request was blocked, as sent to clients.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, strum::IntoStaticStr, strum::Display,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
#[non_exhaustive]
pub enum BlockReason {
    /// A block rule matched the client's address, network or user.
    Blacklisted,
    /// The client is serving a ban for going over its rate limit.
    Banned,
    /// The client is over its rate limit.
    RateLimited,
    /// The client's risk score reached the block threshold, or it carries a flag the route
    /// refuses.
    Risk,
    /// The route is restricted to certain networks (the admin policy's `allow_only`).
    Restricted,
}

impl BlockReason {
    /// The reason as sent in responses: `blacklisted`, `banned`, `rate_limited`, `risk` or
    /// `restricted`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// How a crawler claim fared against the crawler's published ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CrawlerCheck {
    /// The address is in the crawler's ranges.
    Declared,
    /// The crawler's ranges are not loaded, so the claim cannot be checked.
    Unverified,
    /// The address is outside the crawler's ranges.
    Fake,
}

/// Why the score is what it is: one signal and the points it added.
///
/// Displays (and serializes) as a human-readable line such as
/// `"banned for 900s more (offence 2) (+100)"`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// An allow rule matched; nothing else was counted.
    Allowlisted {
        /// The rule that matched.
        rule: RuleId,
    },
    /// A block rule matched.
    Blacklisted {
        /// The rule that matched.
        rule: RuleId,
    },
    /// An automatic rule (a ban recorded by this or another instance) matched.
    BannedByRule {
        /// The rule that matched.
        rule: RuleId,
        /// Time left on it, if it expires.
        remaining: Option<Duration>,
    },
    /// The client is banned.
    Banned {
        /// Time left on the ban.
        remaining: Duration,
        /// Which ban this is for the client, when the ban started with this request.
        offence: Option<u32>,
    },
    /// The client went over its rate limit.
    RateLimited {
        /// When the client may try again.
        retry_after: Duration,
    },
    /// The share of the rate limit the client is using.
    RateUsage {
        /// Hits in the current window.
        hits: u32,
        /// Hits the window allows.
        burst: u32,
    },
    /// A signal added by the app (see [`Signal`](crate::signals::Signal)).
    Signal {
        /// What the signal saw, in a few words.
        description: Cow<'static, str>,
        /// The points it adds.
        points: u8,
    },
    /// The address is in a range of an offline feed.
    Range {
        /// The kind of range.
        kind: FeedKind,
        /// Who operates it, when the feed says.
        provider: Option<Arc<str>>,
        /// The points it adds (`[scoring]` weight of the kind).
        points: u8,
    },
    /// No User-Agent header.
    MissingUserAgent {
        /// The points it adds.
        points: u8,
    },
    /// The User-Agent of an automation client.
    AutomationClient {
        /// The tool, e.g. `curl` or `headless-chrome`.
        tool: &'static str,
        /// The points it adds.
        points: u8,
    },
    /// The User-Agent claims to be a crawler.
    Crawler {
        /// The crawler claimed, e.g. `Googlebot`.
        crawler: &'static str,
        /// How the claim fared against the crawler's published ranges.
        verdict: CrawlerCheck,
        /// The points it adds.
        points: u8,
    },
    /// The reputation API's risk score.
    Reputation {
        /// The API's score, 0–100.
        score: u8,
        /// The points it adds (`[scoring] reputation` percent of the score).
        points: u8,
    },
    /// The reputation API says the address is of this kind.
    ReputationKind {
        /// The kind.
        kind: FeedKind,
        /// The points it adds.
        points: u8,
    },
    /// The reputation API has no answer for this address (yet).
    ReputationUnknown {
        /// The points it adds.
        points: u8,
    },
    /// A critical path that fails closed got no answer from the reputation API in time: 100
    /// points, so the request is refused (reason `risk`).
    ReputationUnavailable,
    /// The client could not be determined (see [`client_ip`](crate::client_ip)): it is
    /// counted under a key of its own, and no address rule or network allowlist applies to it.
    ClientUnknown {
        /// Why.
        cause: UnknownClient,
    },
}

impl Reason {
    /// Points this reason adds to the score.
    pub fn points(&self) -> u8 {
        match self {
            Reason::Allowlisted { .. } => 0,
            Reason::Blacklisted { .. } | Reason::Banned { .. } | Reason::BannedByRule { .. } => {
                BLOCK_POINTS
            }
            Reason::RateLimited { .. } => RATE_POINTS,
            Reason::RateUsage { hits, burst } => rate_usage_points(*hits, *burst),
            Reason::ClientUnknown { .. } => UNKNOWN_CLIENT_POINTS,
            Reason::Signal { points, .. }
            | Reason::Range { points, .. }
            | Reason::MissingUserAgent { points }
            | Reason::AutomationClient { points, .. }
            | Reason::Crawler { points, .. }
            | Reason::Reputation { points, .. }
            | Reason::ReputationKind { points, .. }
            | Reason::ReputationUnknown { points } => *points,
            Reason::ReputationUnavailable => BLOCK_POINTS,
        }
    }
}

/// `round(RATE_POINTS × hits / burst)`, capped at `RATE_POINTS`.
pub(crate) fn rate_usage_points(hits: u32, burst: u32) -> u8 {
    if burst == 0 {
        return 0;
    }
    let hits = u64::from(hits.min(burst));
    let points = (u64::from(RATE_POINTS) * hits * 2 + u64::from(burst)) / (2 * u64::from(burst));
    points as u8
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Allowlisted { rule } => write!(f, "allowlisted by rule {rule}")?,
            Reason::Blacklisted { rule } => write!(f, "blacklisted by rule {rule}")?,
            Reason::BannedByRule {
                rule,
                remaining: Some(left),
            } => write!(f, "banned by rule {rule} for {}s more", ceil_secs(*left))?,
            Reason::BannedByRule {
                rule,
                remaining: None,
            } => write!(f, "banned by rule {rule}")?,
            Reason::Banned {
                remaining,
                offence: Some(n),
            } => write!(f, "banned for {}s (offence {n})", ceil_secs(*remaining))?,
            Reason::Banned {
                remaining,
                offence: None,
            } => write!(f, "banned for {}s more", ceil_secs(*remaining))?,
            Reason::RateLimited { retry_after } => write!(
                f,
                "over the rate limit, retry in {}s",
                ceil_secs(*retry_after)
            )?,
            Reason::RateUsage { hits, burst } => {
                write!(f, "rate usage {hits}/{burst} in the window")?
            }
            Reason::Signal { description, .. } => f.write_str(description)?,
            Reason::Range {
                kind,
                provider: Some(provider),
                ..
            } => write!(f, "{kind} range ({provider})")?,
            Reason::Range { kind, .. } => write!(f, "{kind} range")?,
            Reason::MissingUserAgent { .. } => f.write_str("no User-Agent")?,
            Reason::AutomationClient { tool, .. } => write!(f, "automation client ({tool})")?,
            Reason::Crawler {
                crawler,
                verdict: CrawlerCheck::Declared,
                ..
            } => write!(f, "declared crawler {crawler}, inside its published ranges")?,
            Reason::Crawler {
                crawler,
                verdict: CrawlerCheck::Unverified,
                ..
            } => write!(f, "claims to be {crawler}; its ranges are not loaded")?,
            Reason::Crawler {
                crawler,
                verdict: CrawlerCheck::Fake,
                ..
            } => write!(
                f,
                "claims to be {crawler} from outside its published ranges"
            )?,
            Reason::Reputation { score, .. } => write!(f, "reputation API risk score {score}")?,
            Reason::ReputationKind { kind, .. } => write!(f, "reputation API: {kind}")?,
            Reason::ReputationUnknown { .. } => f.write_str("reputation unknown")?,
            Reason::ReputationUnavailable => {
                f.write_str("no reputation answer on a critical path that fails closed")?
            }
            Reason::ClientUnknown { cause } => write!(f, "client unknown: {cause}")?,
        }
        write!(f, " (+{})", self.points())
    }
}

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}
