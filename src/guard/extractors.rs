//! The policy extractors: [`LowRisk`], [`Human`] and [`DenyFlags`], one implementation for all.

use std::borrow::Cow;
use std::marker::PhantomData;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};

use super::rejection::{judge, GuardFuture, GuardRejection};
use crate::verdict::{BlockReason, Flag, Flags, IpVerdict, Refusal};

/// The `detail` text of a guard's 403 answer.
pub trait GuardMessage {
    /// The text.
    const MESSAGE: &'static str;
}

/// The default refusal text.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultMessage;

impl GuardMessage for DefaultMessage {
    const MESSAGE: &'static str = "This request was refused.";
}

/// A policy over a verdict: a score threshold and flags to refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Policy {
    /// Refuse when the score is at or above this.
    pub(super) threshold: Option<u8>,
    /// Refuse any of these flags.
    pub(super) deny: Flags,
}

impl Policy {
    pub(super) fn refuses(&self, verdict: &IpVerdict) -> bool {
        if verdict.has(Flag::Allowlisted) {
            return false;
        }
        self.threshold.is_some_and(|t| verdict.score() >= t)
            || verdict.flags().intersects(self.deny)
    }
}

pub(super) fn policy_judge(
    req: &HttpRequest,
    policy: Policy,
    detail: Option<Cow<'static, str>>,
) -> Result<(), GuardRejection> {
    judge(req, detail, |verdict, _| {
        policy
            .refuses(verdict)
            .then(|| Refusal::new(BlockReason::Risk, None))
    })
}

/// The detail to send: `None` for the default text, so the default body stays static.
pub(super) const fn detail_of<M: GuardMessage>() -> Option<&'static str> {
    if M::MESSAGE.len() == DefaultMessage::MESSAGE.len() {
        // Lengths first: comparing `&str` in const context needs a byte loop.
        let (a, b) = (M::MESSAGE.as_bytes(), DefaultMessage::MESSAGE.as_bytes());
        let mut i = 0;
        while i < a.len() {
            if a[i] != b[i] {
                return Some(M::MESSAGE);
            }
            i += 1;
        }
        return None;
    }
    Some(M::MESSAGE)
}

/// A guard that is a fixed [`Policy`] and message: one implementation for all three.
trait PolicyGuard: Sized + 'static {
    const POLICY: Policy;
    const DETAIL: Option<&'static str>;
    fn make() -> Self;

    fn judged(req: &HttpRequest) -> GuardFuture<Self> {
        GuardFuture::new(req, |req| {
            policy_judge(req, Self::POLICY, Self::DETAIL.map(Cow::Borrowed)).map(|()| Self::make())
        })
    }
}

/// Refuses (403, reason `risk`) requests whose score is at or above `THRESHOLD` (1–100).
///
/// The extractor twin of `#[require_low_risk(threshold = N)]`.
#[derive(Debug, Clone, Copy)]
pub struct LowRisk<const THRESHOLD: u8, M: GuardMessage = DefaultMessage>(PhantomData<M>);

impl<const THRESHOLD: u8, M: GuardMessage + 'static> PolicyGuard for LowRisk<THRESHOLD, M> {
    const POLICY: Policy = {
        assert!(
            THRESHOLD >= 1 && THRESHOLD <= 100,
            "LowRisk threshold must be 1..=100"
        );
        Policy {
            threshold: Some(THRESHOLD),
            deny: Flags::empty(),
        }
    };
    const DETAIL: Option<&'static str> = detail_of::<M>();
    fn make() -> Self {
        LowRisk(PhantomData)
    }
}

impl<const THRESHOLD: u8, M: GuardMessage + 'static> FromRequest for LowRisk<THRESHOLD, M> {
    type Error = GuardRejection;
    type Future = GuardFuture<Self>;

    #[inline]
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        Self::judged(req)
    }
}

/// The stricter check for humans-only routes: refuses Tor always, and scores at or above
/// `THRESHOLD` (default 80).
///
/// The extractor twin of `#[require_human]`.
#[derive(Debug, Clone, Copy)]
pub struct Human<const THRESHOLD: u8 = 80, M: GuardMessage = DefaultMessage>(PhantomData<M>);

impl<const THRESHOLD: u8, M: GuardMessage + 'static> PolicyGuard for Human<THRESHOLD, M> {
    const POLICY: Policy = {
        assert!(
            THRESHOLD >= 1 && THRESHOLD <= 100,
            "Human threshold must be 1..=100"
        );
        Policy {
            threshold: Some(THRESHOLD),
            deny: Flags::from_bits(Flag::Tor.bit()),
        }
    };
    const DETAIL: Option<&'static str> = detail_of::<M>();
    fn make() -> Self {
        Human(PhantomData)
    }
}

impl<const THRESHOLD: u8, M: GuardMessage + 'static> FromRequest for Human<THRESHOLD, M> {
    type Error = GuardRejection;
    type Future = GuardFuture<Self>;

    #[inline]
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        Self::judged(req)
    }
}

/// Refuses (403, reason `risk`) requests carrying any flag in `MASK`, e.g.
/// `DenyFlags<{ Flag::Tor.bit() | Flag::Vpn.bit() }>`.
///
/// The extractor twin of `#[deny_flags(tor, vpn)]`.
#[derive(Debug, Clone, Copy)]
pub struct DenyFlags<const MASK: u32, M: GuardMessage = DefaultMessage>(PhantomData<M>);

impl<const MASK: u32, M: GuardMessage + 'static> PolicyGuard for DenyFlags<MASK, M> {
    const POLICY: Policy = Policy {
        threshold: None,
        deny: Flags::from_bits(MASK),
    };
    const DETAIL: Option<&'static str> = detail_of::<M>();
    fn make() -> Self {
        DenyFlags(PhantomData)
    }
}

impl<const MASK: u32, M: GuardMessage + 'static> FromRequest for DenyFlags<MASK, M> {
    type Error = GuardRejection;
    type Future = GuardFuture<Self>;

    #[inline]
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        Self::judged(req)
    }
}
