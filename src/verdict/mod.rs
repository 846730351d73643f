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
//! | client unknown (an unusable forwarding header, no peer address) | 10 |
//! | matched an allow rule | 0 (and nothing else is counted) |
//!
//! plus the risk signals' points (see [`signals`](crate::signals)). A request whose score is at
//! or above the bouncer's `block_threshold` (default 90) is blocked. Rate usage alone stays below
//! that on purpose: the limit itself answers 429.
//!
//! # Reaching the verdict
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
//!
//! Middleware wrapped *outside* the bouncer (an access log) reads it after the handler through
//! [`VerdictExt`] on the `ServiceResponse`; refused requests carry their verdict too.
//!
//! The files of this folder: `flags.rs` (the categories), `reason.rs` (the reasons and the
//! refusal reasons), `extract.rs` (reaching the verdict from handlers and middleware),
//! `judge.rs` (what route guards ask of the bouncer that judged the request).

mod extract;
mod flags;
mod judge;
mod reason;

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;
use smallvec::SmallVec;

use crate::client_ip::{ClientKey, ClientSource, ResolvedClient};

pub use self::extract::{MissingVerdict, VerdictExt};
pub use self::flags::{Flag, Flags};
pub(crate) use self::judge::{Judge, Refusal};
pub(crate) use self::reason::rate_usage_points;
pub use self::reason::{
    BlockReason, CrawlerCheck, Decision, Reason, BLOCK_POINTS, RATE_POINTS, UNKNOWN_CLIENT_POINTS,
};

/// What the bouncer concluded about one request.
///
/// Attached to every request that passes through the [`Bouncer`](crate::Bouncer) middleware,
/// blocked or not. Serializes to JSON for logs and debugging endpoints.
#[derive(Clone, Serialize)]
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
    /// The bouncer that judged the request, as route guards see it.
    #[serde(skip)]
    judge: Option<Arc<dyn Judge>>,
}

impl fmt::Debug for IpVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IpVerdict")
            .field("ip", &self.ip)
            .field("key", &self.key)
            .field("user", &self.user)
            .field("score", &self.score)
            .field("decision", &self.decision)
            .field("blocked_by", &self.blocked_by)
            .field("enforced", &self.enforced)
            .field("flags", &self.flags)
            .field("reasons", &self.reasons)
            .field("hits", &self.hits)
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

impl IpVerdict {
    /// A fresh verdict for `client`: score 0, allowed. `enforced` is false in monitor mode.
    pub(crate) fn new(
        client: &ResolvedClient,
        user: Option<String>,
        enforced: bool,
        judge: Arc<dyn Judge>,
    ) -> Self {
        let mut verdict = IpVerdict {
            ip: client.ip,
            key: client.key,
            user,
            score: 0,
            decision: Decision::Allow,
            blocked_by: None,
            enforced,
            flags: Flags::empty(),
            reasons: SmallVec::new(),
            hits: 0,
            provider: None,
            judge: Some(judge),
        };
        if let ClientSource::Unknown(cause) = client.source {
            verdict.add(Reason::ClientUnknown { cause });
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

    pub(crate) fn judge(&self) -> Option<&Arc<dyn Judge>> {
        self.judge.as_ref()
    }

    pub(crate) fn set_hits(&mut self, hits: u32) {
        self.hits = hits;
    }

    pub(crate) fn block(&mut self, reason: BlockReason) {
        self.decision = Decision::Block;
        self.blocked_by = Some(reason);
    }

    /// The client's address, after trusted-proxy resolution; the unspecified address
    /// (`0.0.0.0` or `::`) when the client could not be determined ([`client_known`](Self::client_known)).
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// Whether the client's address is known. When it is not, [`reasons`](Self::reasons) says
    /// why, and the client is counted under a key of its own.
    pub fn client_known(&self) -> bool {
        self.key.is_known()
    }

    /// The key the client is counted and banned under (its address masked to the configured
    /// prefix, or the key of unknown clients behind its peer).
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

    /// False when the bouncer runs in monitor mode: refusals are only logged.
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

#[cfg(test)]
mod tests;
