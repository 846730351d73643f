//! The global middleware: resolve the client, apply rules, count and ban, score, attach the verdict.

use std::future::{ready, Future, Ready};
use std::net::IpAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_service::{Service, Transform};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{RequestHead, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{Error, HttpMessage, HttpRequest, HttpResponse};
use pin_project_lite::pin_project;

use crate::admin::{AdminCheck, AdminPolicy};
use crate::client_ip::{ClientIpResolver, ClientKey};
use crate::clock::Clock;
use crate::config::{BouncerBuilder, ConfigError, Mode, UserHook};
use crate::events::{emit, truncate_user_agent, BouncerEvent, EventHook, EventKind};
use crate::guard::HandlerLimits;
use crate::limiter::{LimitOutcome, Limiter};
use crate::response::{add_retry_after, problem_response, Rejection, Responder};
use crate::rules::Rules;
use crate::signals::Signal;
use crate::verdict::{ceil_secs, rate_usage_points, BlockReason, Flag, IpVerdict, Reason};

/// The bouncer middleware. Build it once and `.wrap()` a clone into each app instance;
/// clones share counters, bans and rules.
///
/// ```no_run
/// use actix_bouncer::{Bouncer, IpVerdict};
/// use actix_web::{web, App, HttpServer};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let bouncer = Bouncer::from_toml_file("bouncer.toml")?;
/// HttpServer::new(move || {
///     App::new()
///         .wrap(bouncer.clone())
///         .route("/", web::get().to(|v: IpVerdict| async move { format!("score {}", v.score()) }))
/// })
/// .bind("127.0.0.1:8080")?
/// .run()
/// .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Bouncer {
    engine: Arc<Engine>,
}

impl std::fmt::Debug for Bouncer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bouncer")
            .field("mode", &self.engine.mode)
            .field("block_threshold", &self.engine.block_threshold)
            .field("rules", &self.engine.rules)
            .finish_non_exhaustive()
    }
}

impl Default for Bouncer {
    fn default() -> Self {
        Self::new()
    }
}

impl Bouncer {
    /// A bouncer with safe defaults: enforce mode, block threshold 90, no trusted proxies (the
    /// peer address is the client), 300 requests a minute per client, no bans, no rules.
    pub fn new() -> Self {
        BouncerBuilder::default()
            .build()
            .unwrap_or_else(|e| unreachable!("the default config is valid: {e}"))
    }

    /// A builder starting from the defaults of [`Bouncer::new`].
    pub fn builder() -> BouncerBuilder {
        BouncerBuilder::default()
    }

    /// A bouncer configured by a TOML file; see [`config`](crate::config) for the keys.
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        Self::builder().toml_file(path)?.build()
    }

    /// A bouncer configured by a TOML document.
    pub fn from_toml_str(toml: &str) -> Result<Self, ConfigError> {
        Self::builder().toml_str(toml)?.build()
    }

    pub(crate) fn from_engine(engine: Engine) -> Self {
        Bouncer {
            engine: Arc::new(engine),
        }
    }

    /// The rules handle: add, remove and list rules at runtime.
    pub fn rules(&self) -> &Rules {
        &self.engine.rules
    }

    /// Enforce or monitor.
    pub fn mode(&self) -> Mode {
        self.engine.mode
    }

    /// The key `ip` is counted and banned under.
    pub fn key_for(&self, ip: IpAddr) -> ClientKey {
        self.engine.resolver.key_for(ip)
    }

    /// Lifts the ban on `ip`'s key and forgets its hits and offences. Returns whether the key
    /// was tracked.
    pub fn forgive(&self, ip: IpAddr) -> bool {
        self.engine.limiter.forgive(&self.key_for(ip))
    }

    /// How many client keys the limiter tracks now (never above `limit.max_tracked_keys`).
    pub fn tracked_keys(&self) -> usize {
        self.engine.limiter.tracked_keys()
    }
}

/// Everything the middleware needs, built and validated once, shared by every worker.
pub(crate) struct Engine {
    pub(crate) mode: Mode,
    pub(crate) block_threshold: u8,
    pub(crate) resolver: ClientIpResolver,
    pub(crate) limiter: Limiter<ClientKey>,
    pub(crate) rules: Rules,
    pub(crate) rate_limit_headers: bool,
    pub(crate) user: Option<UserHook>,
    pub(crate) on_event: Option<EventHook>,
    pub(crate) responder: Option<Responder>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) signals: Box<[Box<dyn Signal>]>,
    pub(crate) admin: Option<AdminPolicy>,
    pub(crate) handler_limits: HandlerLimits,
}

/// The result of the decision path for one request.
struct Outcome {
    verdict: IpVerdict,
    /// Why the request is (or in monitor mode would be) refused, and until when.
    block: Option<(BlockReason, Option<Duration>)>,
    /// A ban that started with this request.
    ban: Option<Duration>,
    /// The request is on an admin path.
    admin: bool,
}

impl Engine {
    fn decide(self: &Arc<Self>, req: &ServiceRequest) -> Outcome {
        let client = self
            .resolver
            .resolve(req.peer_addr().map(|a| a.ip()), req.headers());
        let user = self.user.as_ref().and_then(|hook| hook(req));
        let mut verdict = IpVerdict::new(&client, user, self.clone());
        let mut block = None;
        let mut ban = None;

        let matched = self
            .rules
            .load()
            .check(client.ip, verdict.user(), || self.clock.wall());
        if let Some(rule) = matched.allow {
            // Allow wins over everything: no counting, no ban, no block.
            verdict.flag(Flag::Allowlisted);
            verdict.add(Reason::Allowlisted { rule });
        } else if let Some(rule) = matched.block {
            verdict.flag(Flag::Blacklisted);
            verdict.add(Reason::Blacklisted { rule });
            let remaining = matched
                .block_expires
                .and_then(|at| at.duration_since(self.clock.wall()).ok());
            block = Some((BlockReason::Blacklisted, remaining));
        } else {
            let burst = self.limiter.policy().burst().get();
            match self.limiter.check(&client.key) {
                LimitOutcome::Allowed { hits } => {
                    verdict.set_hits(hits);
                    if rate_usage_points(hits, burst) > 0 {
                        verdict.add(Reason::RateUsage { hits, burst });
                    }
                }
                LimitOutcome::Limited { retry_after } => {
                    verdict.set_hits(burst);
                    verdict.flag(Flag::RateLimited);
                    verdict.add(Reason::RateLimited { retry_after });
                    block = Some((BlockReason::RateLimited, Some(retry_after)));
                }
                LimitOutcome::BanStarted {
                    ban: length,
                    offence,
                } => {
                    verdict.set_hits(burst);
                    verdict.flag(Flag::RateLimited);
                    verdict.flag(Flag::Banned);
                    verdict.add(Reason::Banned {
                        remaining: length,
                        offence: Some(offence),
                    });
                    block = Some((BlockReason::Banned, Some(length)));
                    ban = Some(length);
                }
                LimitOutcome::Banned { remaining } => {
                    verdict.flag(Flag::Banned);
                    verdict.add(Reason::Banned {
                        remaining,
                        offence: None,
                    });
                    block = Some((BlockReason::Banned, Some(remaining)));
                }
            }
            if block.is_none() {
                for signal in self.signals.iter() {
                    signal.apply(req, &mut verdict);
                }
                if verdict.score() >= self.block_threshold {
                    block = Some((BlockReason::Risk, None));
                }
            }
        }

        let admin = self.admin.as_ref().filter(|admin| admin.covers(req.path()));
        if let (Some(policy), None) = (admin, block) {
            if let AdminCheck::Refused(reason) = policy.check(&verdict) {
                block = Some((reason, None));
            }
        }
        if let Some((reason, _)) = block {
            verdict.block(reason, self.enforces());
        }
        Outcome {
            verdict,
            block,
            ban,
            admin: admin.is_some(),
        }
    }

    /// Whether refusals are enforced (not monitor mode).
    pub(crate) fn enforces(&self) -> bool {
        self.mode == Mode::Enforce
    }

    pub(crate) fn handler_limits(&self) -> &HandlerLimits {
        &self.handler_limits
    }

    /// Logs a structured event and hands it to the app's hook.
    pub(crate) fn event(
        &self,
        head: &RequestHead,
        verdict: &IpVerdict,
        kind: EventKind,
        reason: Option<BlockReason>,
        retry_after: Option<Duration>,
        ban: Option<Duration>,
    ) {
        let user_agent = head
            .headers()
            .get(header::USER_AGENT)
            .map(|ua| truncate_user_agent(&String::from_utf8_lossy(ua.as_bytes())));
        let event = BouncerEvent {
            kind,
            reason,
            enforced: self.enforces(),
            ip: verdict.ip(),
            key: verdict.key(),
            user: verdict.user().map(str::to_owned),
            method: head.method.to_string(),
            path: head.uri.path().to_owned(),
            score: verdict.score(),
            user_agent,
            retry_after,
            ban,
        };
        emit(self.on_event.as_ref(), &event);
    }

    /// The refusal answer: the app's responder or problem+json, with `Retry-After` when the
    /// refusal ends.
    pub(crate) fn refusal_response(
        &self,
        req: &HttpRequest,
        verdict: &IpVerdict,
        reason: BlockReason,
        retry_after: Option<Duration>,
        detail: Option<&str>,
    ) -> HttpResponse {
        let mut rejection = Rejection::new(reason, retry_after, verdict);
        if let Some(detail) = detail {
            rejection = rejection.with_detail(detail);
        }
        let mut res = match &self.responder {
            Some(responder) => responder(req, &rejection),
            None => problem_response(&rejection),
        };
        add_retry_after(&mut res, retry_after);
        res
    }

    /// `RateLimit` header value (IETF draft): remaining cells and seconds until the window refills.
    fn rate_limit_value(&self, verdict: &IpVerdict, retry_after: Option<Duration>) -> HeaderValue {
        let policy = self.limiter.policy();
        let burst = policy.burst().get();
        let remaining = burst.saturating_sub(verdict.hits());
        let reset = match retry_after {
            Some(after) => ceil_secs(after),
            None => ceil_secs(
                policy
                    .per()
                    .mul_f64(f64::from(verdict.hits()) / f64::from(policy.hits().get())),
            ),
        };
        HeaderValue::try_from(format!("\"bouncer\";r={remaining};t={reset}"))
            .unwrap_or_else(|_| HeaderValue::from_static("\"bouncer\""))
    }

    fn rate_limit_policy(&self) -> HeaderValue {
        let policy = self.limiter.policy();
        let window = ceil_secs(
            policy
                .per()
                .mul_f64(f64::from(policy.burst().get()) / f64::from(policy.hits().get())),
        );
        HeaderValue::try_from(format!("\"bouncer\";q={};w={window}", policy.burst()))
            .unwrap_or_else(|_| HeaderValue::from_static("\"bouncer\""))
    }
}

const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

impl<S, B> Transform<S, ServiceRequest> for Bouncer
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = BouncerMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        let rate_limit_policy = self
            .engine
            .rate_limit_headers
            .then(|| self.engine.rate_limit_policy());
        ready(Ok(BouncerMiddleware {
            service,
            engine: self.engine.clone(),
            rate_limit_policy,
        }))
    }
}

/// The service behind [`Bouncer`]; not used directly.
#[doc(hidden)]
pub struct BouncerMiddleware<S> {
    service: S,
    engine: Arc<Engine>,
    rate_limit_policy: Option<HeaderValue>,
}

impl<S, B> Service<ServiceRequest> for BouncerMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = BouncerFuture<S::Future, B>;

    actix_service::forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let engine = &self.engine;
        let Outcome {
            verdict,
            block,
            ban,
            admin,
        } = engine.decide(&req);

        let rate_limit = self.rate_limit_policy.clone().map(|policy| {
            let retry = match block {
                Some((BlockReason::RateLimited | BlockReason::Banned, after)) => after,
                _ => None,
            };
            (policy, engine.rate_limit_value(&verdict, retry))
        });

        match block {
            None if admin => {
                engine.event(
                    req.head(),
                    &verdict,
                    EventKind::AdminAllowed,
                    None,
                    None,
                    None,
                );
            }
            None => {}
            Some((reason, retry_after)) => {
                let kind = match (admin, engine.enforces(), ban.is_some()) {
                    (true, ..) => EventKind::AdminRefused,
                    (false, false, _) => EventKind::WouldBlock,
                    (false, true, true) => EventKind::Banned,
                    (false, true, false) => EventKind::Blocked,
                };
                engine.event(req.head(), &verdict, kind, Some(reason), retry_after, ban);
                if engine.enforces() {
                    let (http_req, _payload) = req.into_parts();
                    let mut res =
                        engine.refusal_response(&http_req, &verdict, reason, retry_after, None);
                    if let Some((policy, value)) = rate_limit {
                        res.headers_mut().insert(RATELIMIT_POLICY, policy);
                        res.headers_mut().insert(RATELIMIT, value);
                    }
                    // Outer middleware (an access log) still sees who was refused and why.
                    http_req.extensions_mut().insert(verdict);
                    let res = ServiceResponse::new(http_req, res).map_into_right_body();
                    return BouncerFuture::Reject { res: Some(res) };
                }
            }
        }

        req.extensions_mut().insert(verdict);
        BouncerFuture::Pass {
            fut: self.service.call(req),
            rate_limit,
        }
    }
}

pin_project! {
    /// The future of [`BouncerMiddleware`]: an immediate rejection or the app's response.
    #[doc(hidden)]
    #[project = BouncerFutureProj]
    pub enum BouncerFuture<F, B> {
        /// Refused before reaching the app.
        Reject { res: Option<ServiceResponse<EitherBody<B>>> },
        /// Passed to the app.
        Pass { #[pin] fut: F, rate_limit: Option<(HeaderValue, HeaderValue)> },
    }
}

impl<F, B> Future for BouncerFuture<F, B>
where
    F: Future<Output = Result<ServiceResponse<B>, Error>>,
{
    type Output = Result<ServiceResponse<EitherBody<B>>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            BouncerFutureProj::Reject { res } => match res.take() {
                Some(res) => Poll::Ready(Ok(res)),
                None => Poll::Pending,
            },
            BouncerFutureProj::Pass { fut, rate_limit } => {
                let mut res = std::task::ready!(fut.poll(cx))?;
                if let Some((policy, value)) = rate_limit.take() {
                    let headers = res.headers_mut();
                    headers.insert(RATELIMIT_POLICY, policy);
                    headers.insert(RATELIMIT, value);
                }
                Poll::Ready(Ok(res.map_into_left_body()))
            }
        }
    }
}
