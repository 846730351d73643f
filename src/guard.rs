//! Per-handler policies: "score globally, enforce locally".
//!
//! The global [`Bouncer`](crate::Bouncer) annotates every request with an
//! [`IpVerdict`]; sensitive handlers then declare a stricter policy, in one of three ways:
//!
//! * an attribute (`#[require_low_risk(threshold = 70)]`, `#[require_human]`,
//!   `#[deny_flags(tor, vpn)]`, `#[rate_limit(hits = 5, per = "1m")]`), which expands to
//! * an extractor: [`LowRisk`], [`Human`], [`DenyFlags`], [`HandlerLimit`]; put it first in
//!   the handler's arguments so it runs before body extractors, or
//! * a scope middleware: [`Guard`], for a whole `web::scope`.
//!
//! All three share one implementation per policy and answer refusals with the bouncer's
//! responder (403 `application/problem+json` by default; 429 or 403 with `Retry-After` for
//! handler limits). An allowlisted client passes every guard. In monitor mode guards refuse
//! nothing and log a would-block event instead. Without the `Bouncer` middleware there is no
//! verdict, and guards fail closed with a 500 that names the wiring mistake.
//!
//! ```
//! use actix_bouncer::guard::{Guard, LowRisk};
//! use actix_bouncer::{Bouncer, Flag};
//! use actix_web::{web, App, HttpResponse};
//!
//! async fn login(_guard: LowRisk<70>, form: web::Form<Vec<(String, String)>>) -> HttpResponse {
//!     HttpResponse::Ok().finish()
//! }
//!
//! let app = App::new()
//!     .wrap(Bouncer::new())
//!     .route("/login", web::post().to(login))
//!     .service(
//!         web::scope("/api")
//!             .wrap(Guard::low_risk(90).deny(Flag::Tor))
//!             .route("/data", web::get().to(HttpResponse::Ok)),
//!     );
//! ```

use std::borrow::Cow;
use std::future::{ready, Ready};
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::Arc;
use std::time::Duration;

use actix_service::{Service, Transform};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::{Error, FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};

use crate::client_ip::ClientKey;
use crate::events::EventKind;
use crate::limiter::{BanPolicy, LimitOutcome, LimitPolicy, Limiter};
use crate::middleware::{BouncerFuture, Engine};
use crate::verdict::{BlockReason, Flag, Flags, IpVerdict, MissingVerdict};

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
struct Policy {
    /// Refuse when the score is at or above this.
    threshold: Option<u8>,
    /// Refuse any of these flags.
    deny: Flags,
}

impl Policy {
    fn refuses(&self, verdict: &IpVerdict) -> bool {
        if verdict.has(Flag::Allowlisted) {
            return false;
        }
        self.threshold.is_some_and(|t| verdict.score() >= t)
            || verdict.flags().intersects(self.deny)
    }
}

/// Why a guard refused a request; becomes the refusal response.
///
/// Answered with the bouncer's responder, so a custom block page applies to guards too.
pub struct GuardRejection {
    kind: RejectionKind,
}

enum RejectionKind {
    /// The bouncer middleware did not run.
    Missing,
    Refused {
        req: HttpRequest,
        verdict: Box<IpVerdict>,
        engine: Arc<Engine>,
        reason: BlockReason,
        retry_after: Option<Duration>,
        detail: Option<Cow<'static, str>>,
    },
}

impl std::fmt::Debug for GuardRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            RejectionKind::Missing => f.write_str("GuardRejection(missing verdict)"),
            RejectionKind::Refused { reason, .. } => write!(f, "GuardRejection({reason})"),
        }
    }
}

impl std::fmt::Display for GuardRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            RejectionKind::Missing => MissingVerdict.fmt(f),
            RejectionKind::Refused { reason, .. } => {
                write!(f, "refused by a route guard: {reason}")
            }
        }
    }
}

impl ResponseError for GuardRejection {
    fn status_code(&self) -> StatusCode {
        match &self.kind {
            RejectionKind::Missing => StatusCode::INTERNAL_SERVER_ERROR,
            RejectionKind::Refused {
                reason: BlockReason::RateLimited,
                ..
            } => StatusCode::TOO_MANY_REQUESTS,
            RejectionKind::Refused { .. } => StatusCode::FORBIDDEN,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match &self.kind {
            RejectionKind::Missing => HttpResponse::InternalServerError().finish(),
            RejectionKind::Refused {
                req,
                verdict,
                engine,
                reason,
                retry_after,
                detail,
            } => engine.refusal_response(req, verdict, *reason, *retry_after, detail.as_deref()),
        }
    }
}

/// The future of the guard extractors: the check runs when it is first polled, not when actix
/// builds the extractors. actix builds every argument's extractor first and then polls them in
/// order, stopping at the first error, so a guard placed after one that refused never counts
/// the request (a handler limit) or logs it.
#[doc(hidden)]
pub struct GuardFuture<T> {
    req: Option<HttpRequest>,
    check: fn(&HttpRequest) -> Result<T, GuardRejection>,
}

impl<T> GuardFuture<T> {
    fn new(req: &HttpRequest, check: fn(&HttpRequest) -> Result<T, GuardRejection>) -> Self {
        GuardFuture {
            req: Some(req.clone()),
            check,
        }
    }
}

impl<T> std::future::Future for GuardFuture<T> {
    type Output = Result<T, GuardRejection>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match self.req.take() {
            Some(req) => std::task::Poll::Ready((self.check)(&req)),
            // Polled again after completing: nothing left to produce.
            None => std::task::Poll::Pending,
        }
    }
}

/// Runs `decide` against the request's verdict; a refusal is logged and turned into a rejection.
///
/// `decide` answers `Some((reason, retry_after, ban))` to refuse.
fn judge(
    req: &HttpRequest,
    detail: Option<Cow<'static, str>>,
    decide: impl FnOnce(
        &IpVerdict,
        &Arc<Engine>,
    ) -> Option<(BlockReason, Option<Duration>, Option<Duration>)>,
) -> Result<(), GuardRejection> {
    let ext = req.extensions();
    let Some((verdict, engine)) = ext.get::<IpVerdict>().and_then(|v| Some((v, v.engine()?)))
    else {
        tracing::error!(target: "actix_bouncer", "{MissingVerdict}");
        return Err(GuardRejection {
            kind: RejectionKind::Missing,
        });
    };
    let Some((reason, retry_after, ban)) = decide(verdict, engine) else {
        return Ok(());
    };
    let enforced = engine.enforces();
    let kind = match (enforced, ban.is_some()) {
        (false, _) => EventKind::WouldBlock,
        (true, true) => EventKind::Banned,
        (true, false) => EventKind::Blocked,
    };
    engine.event(req.head(), verdict, kind, Some(reason), retry_after, ban);
    if !enforced {
        return Ok(());
    }
    let mut verdict = Box::new(verdict.clone());
    verdict.block(reason, true);
    let engine = engine.clone();
    drop(ext);
    // Handlers and outer middleware see that this request was refused, and why.
    req.extensions_mut().insert((*verdict).clone());
    Err(GuardRejection {
        kind: RejectionKind::Refused {
            req: req.clone(),
            verdict,
            engine,
            reason,
            retry_after,
            detail,
        },
    })
}

fn policy_judge(
    req: &HttpRequest,
    policy: Policy,
    detail: Option<Cow<'static, str>>,
) -> Result<(), GuardRejection> {
    judge(req, detail, |verdict, _| {
        policy
            .refuses(verdict)
            .then_some((BlockReason::Risk, None, None))
    })
}

/// The detail to send: `None` for the default text, so the default body stays static.
const fn detail_of<M: GuardMessage>() -> Option<&'static str> {
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

/// What a handler limit counts by.
pub mod limit_key {
    /// The client's grouping key (address or network).
    pub const IP: u8 = 0;
    /// The user named by the bouncer's user hook; requests without a user are not counted.
    pub const USER: u8 = 1;
    /// The user when known, otherwise the client's grouping key.
    pub const USER_OR_IP: u8 = 2;
}

/// A key in a handler's own counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum HandlerKey {
    Ip(ClientKey),
    /// A user id, hashed with the engine's random seed (no allocation per request).
    User(u64),
}

/// The identity of a handler's counters: FNV-1a over its module path, name and position.
pub const fn handler_id(module: &str, name: &str, line: u32, column: u32) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let parts: [&[u8]; 2] = [module.as_bytes(), name.as_bytes()];
    let mut p = 0;
    while p < parts.len() {
        let bytes = parts[p];
        let mut i = 0;
        while i < bytes.len() {
            hash = (hash ^ bytes[i] as u64).wrapping_mul(PRIME);
            i += 1;
        }
        hash = (hash ^ 0xff).wrapping_mul(PRIME);
        p += 1;
    }
    let pos = ((line as u64) << 32) | column as u64;
    let mut i = 0;
    while i < 8 {
        hash = (hash ^ ((pos >> (i * 8)) & 0xff)).wrapping_mul(PRIME);
        i += 1;
    }
    hash
}

/// A per-handler rate limit on top of the global one: `HITS` per `PER_MS` milliseconds, and a
/// ban of `BAN_MS` milliseconds (0: no ban) for going over, counted by `KEY` (see
/// [`limit_key`]) in counters of the handler's own (`ID`, see [`handler_id`]).
///
/// Refuses with 429 (reason `rate_limited`) or, when banned, 403 (reason `banned`), both with
/// `Retry-After`. Counters use the same bounded store and ban machinery as the global limit
/// (its `max_tracked_keys`, `ban_growth` and `max_ban`). The extractor twin of
/// `#[rate_limit(...)]`, which fills in `ID`.
#[derive(Debug, Clone, Copy)]
pub struct HandlerLimit<
    const HITS: u32,
    const PER_MS: u64,
    const BAN_MS: u64,
    const KEY: u8,
    const ID: u64,
>;

impl<const HITS: u32, const PER_MS: u64, const BAN_MS: u64, const KEY: u8, const ID: u64>
    HandlerLimit<HITS, PER_MS, BAN_MS, KEY, ID>
{
    const SPEC: LimitSpec = {
        assert!(HITS >= 1, "HandlerLimit needs HITS >= 1");
        assert!(PER_MS >= 1, "HandlerLimit needs PER_MS >= 1");
        assert!(
            BAN_MS == 0 || BAN_MS > PER_MS,
            "a ban must last longer than PER_MS"
        );
        assert!(
            KEY <= limit_key::USER_OR_IP,
            "KEY must be one of limit_key::*"
        );
        LimitSpec {
            id: ID,
            hits: HITS,
            per: Duration::from_millis(PER_MS),
            ban: if BAN_MS == 0 {
                None
            } else {
                Some(Duration::from_millis(BAN_MS))
            },
            key: KEY,
        }
    };
}

impl<const HITS: u32, const PER_MS: u64, const BAN_MS: u64, const KEY: u8, const ID: u64>
    FromRequest for HandlerLimit<HITS, PER_MS, BAN_MS, KEY, ID>
{
    type Error = GuardRejection;
    type Future = GuardFuture<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        GuardFuture::new(req, |req| {
            limit_judge(req, &Self::SPEC).map(|()| HandlerLimit)
        })
    }
}

/// A handler limit's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LimitSpec {
    pub(crate) id: u64,
    hits: u32,
    per: Duration,
    ban: Option<Duration>,
    key: u8,
}

fn limit_judge(req: &HttpRequest, spec: &LimitSpec) -> Result<(), GuardRejection> {
    judge(req, None, |verdict, engine| {
        if verdict.has(Flag::Allowlisted) {
            return None;
        }
        let key = match (spec.key, verdict.user()) {
            (limit_key::USER | limit_key::USER_OR_IP, Some(user)) => {
                HandlerKey::User(engine.handler_limits().user_hasher.hash_one(user))
            }
            (limit_key::USER, None) => return None,
            _ => HandlerKey::Ip(verdict.key()),
        };
        match engine.handler_limits().get(spec).check(&key) {
            LimitOutcome::Allowed { .. } => None,
            LimitOutcome::Limited { retry_after } => {
                Some((BlockReason::RateLimited, Some(retry_after), None))
            }
            LimitOutcome::BanStarted { ban, .. } => {
                Some((BlockReason::Banned, Some(ban), Some(ban)))
            }
            LimitOutcome::Banned { remaining } => {
                Some((BlockReason::Banned, Some(remaining), None))
            }
        }
    })
}

/// The per-handler limiters of one bouncer, created on first use.
pub(crate) struct HandlerLimits {
    limiters: arc_swap::ArcSwap<Vec<(LimitSpec, Arc<Limiter<HandlerKey>>)>>,
    /// Serialises creation; lookups never take it.
    create: std::sync::Mutex<()>,
    user_hasher: foldhash::fast::RandomState,
    clock: Arc<dyn crate::clock::Clock>,
    max_tracked_keys: NonZeroUsize,
    ban_growth: f64,
    max_ban: Duration,
}

impl HandlerLimits {
    pub(crate) fn new(
        clock: Arc<dyn crate::clock::Clock>,
        max_tracked_keys: NonZeroUsize,
        ban_growth: f64,
        max_ban: Duration,
    ) -> Self {
        HandlerLimits {
            limiters: arc_swap::ArcSwap::from_pointee(Vec::new()),
            create: std::sync::Mutex::new(()),
            user_hasher: foldhash::fast::RandomState::default(),
            clock,
            max_tracked_keys,
            ban_growth,
            max_ban,
        }
    }

    /// The limiter for `spec`, created on the handler's first request. A handful of handlers
    /// have limits, so a linear scan of a lock-free snapshot beats hashing.
    fn get(&self, spec: &LimitSpec) -> Arc<Limiter<HandlerKey>> {
        if let Some((_, limiter)) = self.limiters.load().iter().find(|(s, _)| s == spec) {
            return limiter.clone();
        }
        let _creating = self.create.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.limiters.load_full();
        if let Some((_, limiter)) = current.iter().find(|(s, _)| s == spec) {
            return limiter.clone();
        }
        let limiter = Arc::new(Limiter::new(self.policy(spec), self.clock.clone()));
        let mut next = (*current).clone();
        next.push((*spec, limiter.clone()));
        self.limiters.store(Arc::new(next));
        limiter
    }

    fn policy(&self, spec: &LimitSpec) -> LimitPolicy {
        // The spec's consts were checked at compile time, so these cannot fail; fall back to
        // the plainest valid policy rather than panic if a check was ever missed.
        let hits = NonZeroU32::new(spec.hits).unwrap_or(NonZeroU32::MIN);
        let mut policy = LimitPolicy::new(hits, spec.per)
            .or_else(|_| LimitPolicy::new(hits, Duration::from_secs(1)))
            .unwrap_or_else(|_| unreachable!("1 hit per second is a valid policy"));
        if let Some(ban_for) = spec.ban {
            let max_ban = self.max_ban.max(ban_for);
            if let Ok(with_ban) = BanPolicy::new(ban_for, self.ban_growth, max_ban)
                .and_then(|ban| policy.clone().with_ban(ban))
            {
                policy = with_ban;
            }
        }
        policy.with_max_tracked_keys(self.max_tracked_keys)
    }
}

/// A scope middleware applying a policy to every route under it: the counterpart of DRF
/// permission classes and class-based-view mixins.
///
/// ```
/// use actix_bouncer::{guard::Guard, Flag};
/// use actix_web::{web, HttpResponse};
///
/// let api = web::scope("/api")
///     .wrap(Guard::low_risk(90).deny(Flag::Tor).deny(Flag::Vpn))
///     .route("/data", web::get().to(HttpResponse::Ok));
/// ```
#[derive(Debug, Clone)]
pub struct Guard {
    policy: Policy,
    message: Option<Cow<'static, str>>,
}

impl Guard {
    /// Refuses scores at or above `threshold` (1–100; 0 refuses everything and values over
    /// 100 nothing, since scores stay within 0–100).
    pub fn low_risk(threshold: u8) -> Self {
        Guard {
            policy: Policy {
                threshold: Some(threshold),
                deny: Flags::empty(),
            },
            message: None,
        }
    }

    /// The `require_human` policy: refuses Tor, and scores of 80 or more.
    pub fn human() -> Self {
        Guard::low_risk(80).deny(Flag::Tor)
    }

    /// Refuses only flagged requests; add flags with [`Guard::deny`].
    pub fn flags() -> Self {
        Guard {
            policy: Policy {
                threshold: None,
                deny: Flags::empty(),
            },
            message: None,
        }
    }

    /// Also refuses requests carrying `flag`.
    pub fn deny(mut self, flag: Flag) -> Self {
        self.policy.deny.insert(flag);
        self
    }

    /// Replaces the refusal's `detail` text. Default: "This request was refused."
    pub fn message(mut self, message: impl Into<Cow<'static, str>>) -> Self {
        self.message = Some(message.into());
        self
    }
}

impl<S, B> Transform<S, ServiceRequest> for Guard
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = GuardMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(GuardMiddleware {
            service,
            policy: self.policy,
            detail: self.message.clone(),
        }))
    }
}

/// The service behind [`Guard`]; not used directly.
#[doc(hidden)]
pub struct GuardMiddleware<S> {
    service: S,
    policy: Policy,
    detail: Option<Cow<'static, str>>,
}

impl<S, B> Service<ServiceRequest> for GuardMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = BouncerFuture<S::Future, B>;

    actix_service::forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        match policy_judge(req.request(), self.policy, self.detail.clone()) {
            Ok(()) => BouncerFuture::Pass {
                fut: self.service.call(req),
                rate_limit: None,
            },
            Err(rejection) => {
                let res = rejection.error_response();
                BouncerFuture::Reject {
                    res: Some(req.into_response(res).map_into_right_body()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handler_ids_differ_by_module_name_and_position() {
        let a = handler_id("app::auth", "login", 10, 1);
        assert_ne!(a, handler_id("app::admin", "login", 10, 1));
        assert_ne!(a, handler_id("app::auth", "logout", 10, 1));
        assert_ne!(a, handler_id("app::auth", "login", 11, 1));
        assert_eq!(a, handler_id("app::auth", "login", 10, 1));
        // The separator keeps ("ab", "c") apart from ("a", "bc").
        assert_ne!(handler_id("ab", "c", 1, 1), handler_id("a", "bc", 1, 1));
    }

    #[test]
    fn default_messages_are_detected_at_compile_time() {
        struct Custom;
        impl GuardMessage for Custom {
            const MESSAGE: &'static str = "Humans only, please.";
        }
        assert_eq!(detail_of::<DefaultMessage>(), None);
        assert_eq!(detail_of::<Custom>(), Some("Humans only, please."));
    }
}
