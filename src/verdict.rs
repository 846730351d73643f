//! The verdict the bouncer attaches to every request: who the client is, its score and why.
//!
//! # Scoring
//! Signals add weighted points; the score is their sum, capped at 100 (the anomaly-scoring
//! model of the OWASP Core Rule Set). Every point comes with a [`Reason`].
//!
//! | signal | points |
//! |---|---|
//! | matched a block rule | 100 |
//! | banned | 100 |
//! | over the rate limit | 40 |
//! | rate usage (hits in the window / burst) | `round(40 × hits / burst)` |
//! | unusable forwarding header | 10 |
//! | matched an allow rule | 0 (and nothing else is counted) |
//!
//! A request whose score is at or above the bouncer's `block_threshold` (default 90) is blocked.
//! Rate usage alone stays below that on purpose: the limit itself answers 429.
//!
//! # Reaching the verdict from a handler
//! ```
//! use actix_bouncer::{IpVerdict, VerdictExt};
//! use actix_web::HttpRequest;
//!
//! // As an extractor:
//! async fn by_extractor(verdict: IpVerdict) -> String {
//!     format!("{} scored {}", verdict.ip(), verdict.score())
//! }
//!
//! // Through the extension trait, without cloning:
//! async fn by_ext(req: HttpRequest) -> String {
//!     req.verdict().map_or(0, |v| v.score()).to_string()
//! }
//! ```

use std::cell::Ref;
use std::fmt;
use std::future::{ready, Ready};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Payload, ServiceRequest};
use actix_web::{FromRequest, HttpMessage, HttpRequest, ResponseError};
use serde::ser::{SerializeSeq, Serializer};
use serde::Serialize;
use smallvec::SmallVec;

use crate::client_ip::{ClientKey, HeaderProblem, IpHeader, ResolvedClient};
use crate::feeds::FeedKind;
use crate::middleware::Engine;
use crate::rules::RuleId;
use crate::scoring::CrawlerCheck;

/// Points for a block rule or a ban: enough to block on its own.
pub const BLOCK_POINTS: u8 = 100;
/// Points for a request over the rate limit, and the ceiling of the rate-usage signal.
pub const RATE_POINTS: u8 = 40;
/// Points for a forwarding header that could not be used.
pub const FORWARDING_HEADER_POINTS: u8 = 10;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
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
    /// The reason as sent in responses: `blacklisted`, `banned`, `rate_limited` or `risk`.
    pub const fn as_str(self) -> &'static str {
        match self {
            BlockReason::Blacklisted => "blacklisted",
            BlockReason::Banned => "banned",
            BlockReason::RateLimited => "rate_limited",
            BlockReason::Risk => "risk",
            BlockReason::Restricted => "restricted",
        }
    }
}

impl fmt::Display for BlockReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A category the request falls into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(u8)]
pub enum Flag {
    /// An allow rule matched.
    Allowlisted = 0,
    /// A block rule matched.
    Blacklisted = 1,
    /// The client went over its rate limit.
    RateLimited = 2,
    /// The client is banned.
    Banned = 3,
    /// The address belongs to a hosting provider or data centre.
    Hosting = 4,
    /// The address belongs to a CDN.
    Cdn = 5,
    /// The address belongs to a VPN provider.
    Vpn = 6,
    /// The address is a Tor exit.
    Tor = 7,
    /// The address is an open or anonymising proxy.
    Proxy = 8,
    /// The client is automated.
    Bot = 9,
    /// A crawler whose claim matches its published ranges.
    DeclaredCrawler = 10,
    /// A crawler claim from outside the crawler's published ranges.
    FakeCrawler = 11,
    /// The IP-reputation API had no answer for this address (yet): not known to be clean.
    ReputationUnknown = 12,
}

impl Flag {
    const ALL: [Flag; 13] = [
        Flag::Allowlisted,
        Flag::Blacklisted,
        Flag::RateLimited,
        Flag::Banned,
        Flag::Hosting,
        Flag::Cdn,
        Flag::Vpn,
        Flag::Tor,
        Flag::Proxy,
        Flag::Bot,
        Flag::DeclaredCrawler,
        Flag::FakeCrawler,
        Flag::ReputationUnknown,
    ];

    /// The flag's lowercase name, as serialized.
    pub const fn as_str(self) -> &'static str {
        match self {
            Flag::Allowlisted => "allowlisted",
            Flag::Blacklisted => "blacklisted",
            Flag::RateLimited => "rate_limited",
            Flag::Banned => "banned",
            Flag::Hosting => "hosting",
            Flag::Cdn => "cdn",
            Flag::Vpn => "vpn",
            Flag::Tor => "tor",
            Flag::Proxy => "proxy",
            Flag::Bot => "bot",
            Flag::DeclaredCrawler => "declared_crawler",
            Flag::FakeCrawler => "fake_crawler",
            Flag::ReputationUnknown => "reputation_unknown",
        }
    }

    /// The flag's bit in a [`Flags`] mask, for const contexts such as
    /// [`DenyFlags`](crate::guard::DenyFlags)`<{ Flag::Tor.bit() | Flag::Vpn.bit() }>`.
    pub const fn bit(self) -> u32 {
        1 << self as u8
    }
}

/// An unknown flag name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownFlag;

impl fmt::Display for UnknownFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("expected one of ")?;
        for (i, flag) in Flag::ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "\"{}\"", flag.as_str())?;
        }
        Ok(())
    }
}

impl std::error::Error for UnknownFlag {}

/// Parses a flag's lowercase name, e.g. `"tor"` or `"declared_crawler"`.
impl std::str::FromStr for Flag {
    type Err = UnknownFlag;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Flag::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or(UnknownFlag)
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of [`Flag`]s. Serializes as an array of lowercase names, e.g. `["banned"]`.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Flags(u32);

impl Flags {
    /// The empty set.
    pub const fn empty() -> Self {
        Flags(0)
    }

    /// The set whose bits are `mask` (bits of unknown flags are ignored).
    pub const fn from_bits(mask: u32) -> Self {
        Flags(mask & ((1 << Flag::ALL.len()) - 1))
    }

    /// The set's bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether any flag is in both sets.
    pub const fn intersects(self, other: Flags) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether `flag` is in the set.
    pub const fn contains(self, flag: Flag) -> bool {
        self.0 & flag.bit() != 0
    }

    /// Adds `flag`.
    pub fn insert(&mut self, flag: Flag) {
        self.0 |= flag.bit();
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The flags in the set, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = Flag> {
        Flag::ALL.into_iter().filter(move |f| self.contains(*f))
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl FromIterator<Flag> for Flags {
    fn from_iter<I: IntoIterator<Item = Flag>>(iter: I) -> Self {
        let mut flags = Flags::empty();
        iter.into_iter().for_each(|f| flags.insert(f));
        flags
    }
}

impl Serialize for Flags {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(None)?;
        for flag in self.iter() {
            seq.serialize_element(flag.as_str())?;
        }
        seq.end()
    }
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
        description: std::borrow::Cow<'static, str>,
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
    /// A forwarding header was unusable, so the peer address was used.
    ForwardingHeader {
        /// The header.
        header: IpHeader,
        /// What was wrong with it.
        problem: HeaderProblem,
    },
}

impl Reason {
    /// Points this reason adds to the score.
    pub fn points(&self) -> u8 {
        match self {
            Reason::Allowlisted { .. } => 0,
            Reason::Blacklisted { .. } | Reason::Banned { .. } => BLOCK_POINTS,
            Reason::RateLimited { .. } => RATE_POINTS,
            Reason::RateUsage { hits, burst } => rate_usage_points(*hits, *burst),
            Reason::ForwardingHeader { .. } => FORWARDING_HEADER_POINTS,
            Reason::Signal { points, .. }
            | Reason::Range { points, .. }
            | Reason::MissingUserAgent { points }
            | Reason::AutomationClient { points, .. }
            | Reason::Crawler { points, .. }
            | Reason::Reputation { points, .. }
            | Reason::ReputationKind { points, .. }
            | Reason::ReputationUnknown { points } => *points,
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
            Reason::ForwardingHeader { header, problem } => write!(
                f,
                "unusable {} header ({problem}), used the peer address",
                header.header_name()
            )?,
        }
        write!(f, " (+{})", self.points())
    }
}

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Whole seconds, rounded up, for `Retry-After` and messages.
pub(crate) fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// What the bouncer concluded about one request.
///
/// Attached to every request that passes through the [`Bouncer`](crate::Bouncer) middleware,
/// blocked or not. Serializes to JSON for logs and debugging endpoints.
#[derive(Debug, Clone, Serialize)]
pub struct IpVerdict {
    ip: IpAddr,
    key: ClientKey,
    user: Option<String>,
    score: u8,
    decision: Decision,
    blocked_by: Option<BlockReason>,
    enforced: bool,
    flags: Flags,
    reasons: SmallVec<[Reason; 2]>,
    hits: u32,
    provider: Option<Arc<str>>,
    /// The bouncer that judged the request, for per-handler guards.
    #[serde(skip)]
    engine: Option<EngineRef>,
}

/// The bouncer behind a verdict; opaque in `Debug` output.
#[derive(Clone)]
struct EngineRef(Arc<Engine>);

impl fmt::Debug for EngineRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Bouncer")
    }
}

impl IpVerdict {
    pub(crate) fn new(client: &ResolvedClient, user: Option<String>, engine: Arc<Engine>) -> Self {
        let mut verdict = IpVerdict {
            ip: client.ip,
            key: client.key,
            user,
            score: 0,
            decision: Decision::Allow,
            blocked_by: None,
            enforced: true,
            flags: Flags::empty(),
            reasons: SmallVec::new(),
            hits: 0,
            provider: None,
            engine: Some(EngineRef(engine)),
        };
        if let Some((header, problem)) = client.problem {
            verdict.add(Reason::ForwardingHeader { header, problem });
        }
        verdict
    }

    /// Adds a signal's reason and its points (the score saturates at 100).
    pub fn add(&mut self, reason: Reason) {
        self.score = self.score.saturating_add(reason.points()).min(100);
        self.reasons.push(reason);
    }

    /// Marks the request with `flag`.
    pub fn flag(&mut self, flag: Flag) {
        self.flags.insert(flag);
    }

    pub(crate) fn engine(&self) -> Option<&Arc<Engine>> {
        self.engine.as_ref().map(|e| &e.0)
    }

    pub(crate) fn set_hits(&mut self, hits: u32) {
        self.hits = hits;
    }

    pub(crate) fn block(&mut self, reason: BlockReason, enforced: bool) {
        self.decision = Decision::Block;
        self.blocked_by = Some(reason);
        self.enforced = enforced;
    }

    /// The client's address, after trusted-proxy resolution.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// The key the client is counted and banned under (its address masked to the configured prefix).
    pub fn key(&self) -> ClientKey {
        self.key
    }

    /// The user, when the app's user hook named one.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The risk score, 0–100.
    pub fn score(&self) -> u8 {
        self.score
    }

    /// Allow or block.
    pub fn decision(&self) -> Decision {
        self.decision
    }

    /// Why the request was blocked (or, in monitor mode, would have been).
    pub fn blocked_by(&self) -> Option<BlockReason> {
        self.blocked_by
    }

    /// Whether the decision is to block.
    pub fn is_blocked(&self) -> bool {
        self.decision == Decision::Block
    }

    /// False when the bouncer runs in monitor mode: a blocking decision was only logged.
    pub fn enforced(&self) -> bool {
        self.enforced
    }

    /// The categories the request falls into.
    pub fn flags(&self) -> Flags {
        self.flags
    }

    /// Whether the request carries `flag`.
    pub fn has(&self, flag: Flag) -> bool {
        self.flags.contains(flag)
    }

    /// Why the score is what it is, one line per signal.
    pub fn reasons(&self) -> &[Reason] {
        &self.reasons
    }

    /// Who operates the client's address (a hosting provider, VPN, crawler…), when a feed or
    /// the reputation API says.
    pub fn provider(&self) -> Option<&str> {
        self.provider.as_deref()
    }

    /// Records who operates the client's address.
    pub fn set_provider(&mut self, provider: Arc<str>) {
        self.provider = Some(provider);
    }

    /// Hits from this client in the current rate-limit window, this one included.
    pub fn hits(&self) -> u32 {
        self.hits
    }
}

/// The bouncer middleware did not run for this request, so there is no verdict.
#[derive(Debug, Clone, Copy)]
pub struct MissingVerdict;

impl fmt::Display for MissingVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "no IpVerdict on this request: wrap the app or scope with actix_bouncer::Bouncer",
        )
    }
}

impl std::error::Error for MissingVerdict {}

/// A missing verdict is a wiring mistake in the app, so it answers 500.
impl ResponseError for MissingVerdict {}

impl FromRequest for IpVerdict {
    type Error = MissingVerdict;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(req.extensions().get::<IpVerdict>().cloned().ok_or_else(|| {
            tracing::error!(target: "actix_bouncer", "{MissingVerdict}");
            MissingVerdict
        }))
    }
}

/// Reads the request's [`IpVerdict`] without cloning it.
///
/// Do not hold the returned borrow across an `.await`.
pub trait VerdictExt {
    /// The verdict, when the bouncer middleware ran.
    fn verdict(&self) -> Option<Ref<'_, IpVerdict>>;
}

impl VerdictExt for HttpRequest {
    fn verdict(&self) -> Option<Ref<'_, IpVerdict>> {
        Ref::filter_map(self.extensions(), |ext| ext.get::<IpVerdict>()).ok()
    }
}

impl VerdictExt for ServiceRequest {
    fn verdict(&self) -> Option<Ref<'_, IpVerdict>> {
        Ref::filter_map(self.extensions(), |ext| ext.get::<IpVerdict>()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_usage_points_round_and_cap() {
        assert_eq!(rate_usage_points(0, 10), 0);
        assert_eq!(rate_usage_points(1, 300), 0);
        assert_eq!(rate_usage_points(5, 10), 20);
        assert_eq!(rate_usage_points(10, 10), 40);
        assert_eq!(rate_usage_points(11, 10), 40);
        assert_eq!(rate_usage_points(1, 0), 0);
    }

    #[test]
    fn flags_serialize_as_names() {
        let flags: Flags = [Flag::Banned, Flag::DeclaredCrawler].into_iter().collect();
        assert_eq!(
            serde_json::to_string(&flags).unwrap(),
            r#"["banned","declared_crawler"]"#
        );
        assert!(flags.contains(Flag::Banned));
        assert!(!flags.contains(Flag::Tor));
    }

    #[test]
    fn reasons_read_as_sentences() {
        let r = Reason::Banned {
            remaining: Duration::from_millis(899_001),
            offence: Some(2),
        };
        assert_eq!(r.to_string(), "banned for 900s (offence 2) (+100)");
        let r = Reason::RateUsage { hits: 5, burst: 10 };
        assert_eq!(r.to_string(), "rate usage 5/10 in the window (+20)");
    }
}
