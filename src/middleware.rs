//! The global middleware: resolve the client, apply rules, count and ban, score, attach the verdict.

use std::future::{ready, Future, Ready};
use std::net::IpAddr;
use std::path::Path;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_service::{Service, Transform};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{RequestHead, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{Error, HttpMessage, HttpRequest, HttpResponse};
use pin_project_lite::pin_project;

#[cfg(feature = "reputation")]
use crate::admin::Fail;
use crate::admin::{AdminCheck, AdminPolicy};
use crate::client_ip::{ClientIpResolver, ClientKey};
use crate::clock::Clock;
use crate::config::{BouncerBuilder, ConfigError, Mode, UserHook};
use crate::events::{emit, truncate_user_agent, BouncerEvent, EventHook, EventKind};
#[cfg(feature = "reputation")]
use crate::feeds::FeedKind;
use crate::guard::HandlerLimits;
use crate::limiter::{LimitOutcome, Limiter};
#[cfg(feature = "reputation")]
use crate::reputation::{IpReport, Reputation};
use crate::response::{add_retry_after, problem_response, Rejection, Responder};
use crate::rules::Rules;
#[cfg(feature = "reputation")]
use crate::rules::{NewRule, RuleTarget};
use crate::scoring::{RiskSignal, Weights};
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

    /// The reputation API's counters (upstream calls, cache hits, failures, and background
    /// lookups dropped because the queue was full), when one is configured.
    #[cfg(feature = "reputation")]
    pub fn reputation_stats(&self) -> Option<crate::reputation::ReputationStats> {
        self.engine.reputation.as_ref().map(|r| r.client.stats())
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
    /// The built-in signal: range feeds and the User-Agent.
    pub(crate) risk: RiskSignal,
    pub(crate) weights: Weights,
    #[cfg(feature = "reputation")]
    pub(crate) reputation: Option<ReputationSetup>,
}

/// The reputation API as the middleware uses it.
#[cfg(feature = "reputation")]
pub(crate) struct ReputationSetup {
    pub(crate) client: Reputation,
    /// Groups of path prefixes that wait for a score on a cache miss, each with its failure
    /// policy; the first group with a matching prefix applies.
    pub(crate) groups: Vec<(Vec<String>, Fail)>,
    /// A score at or above this bans the address through the rules handle…
    pub(crate) ban_at: Option<u8>,
    /// …for this long.
    pub(crate) ban_for: Duration,
}

#[cfg(feature = "reputation")]
impl ReputationSetup {
    /// The failure policy of the critical-path group `path` belongs to, if any.
    fn group_of(&self, path: &str) -> Option<Fail> {
        self.groups
            .iter()
            .find(|(prefixes, _)| prefixes.iter().any(|p| path.starts_with(p.as_str())))
            .map(|(_, fail)| *fail)
    }
}

/// Where the decision stands after its synchronous part.
enum Step {
    /// Decided.
    Done(Outcome),
    /// A critical path waits for the reputation API; what to do if that fails.
    #[cfg(feature = "reputation")]
    Wait(Outcome, Fail),
}

/// What the reputation API contributed.
enum Scored {
    /// Nothing to add (no API configured, or the request was already decided).
    Skip,
    /// A report.
    #[cfg(feature = "reputation")]
    Known(Arc<IpReport>),
    /// No report; `failed` carries the group's policy when a critical path's wait ended
    /// without one.
    #[cfg(feature = "reputation")]
    Unknown { failed: Option<Fail> },
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
    /// The decision up to the reputation API: rules, limits and the synchronous signals.
    /// A critical path whose address the reputation cache does not know yet comes back as
    /// [`Step::Wait`], to be finished once the API answers.
    fn decide(self: &Arc<Self>, req: &ServiceRequest) -> Step {
        let client = self
            .resolver
            .resolve(req.peer_addr().map(|a| a.ip()), req.headers());
        let user = self.user.as_ref().and_then(|hook| hook(req));
        // The verdict is built once, in the outcome, and changed in place from here on: it is
        // 200-odd bytes, and every move of it is a memcpy on the request path.
        let mut out = Outcome {
            verdict: IpVerdict::new(&client, user, self.clone()),
            block: None,
            ban: None,
            admin: false,
        };
        let Outcome {
            verdict,
            block,
            ban,
            ..
        } = &mut out;

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
            *block = Some((BlockReason::Blacklisted, remaining));
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
                    *block = Some((BlockReason::RateLimited, Some(retry_after)));
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
                    *block = Some((BlockReason::Banned, Some(length)));
                    *ban = Some(length);
                }
                LimitOutcome::Banned { remaining } => {
                    verdict.flag(Flag::Banned);
                    verdict.add(Reason::Banned {
                        remaining,
                        offence: None,
                    });
                    *block = Some((BlockReason::Banned, Some(remaining)));
                }
            }
        }
        if out.block.is_some() || out.verdict.has(Flag::Allowlisted) {
            self.finish(req, &mut out, Scored::Skip);
            return Step::Done(out);
        }
        self.risk.apply(req, &mut out.verdict);
        #[cfg(feature = "reputation")]
        if let Some(reputation) = &self.reputation {
            let scored = match reputation.client.peek(out.verdict.ip()) {
                Some(report) => Scored::Known(report),
                None => match reputation.group_of(req.path()) {
                    Some(fail) => return Step::Wait(out, fail),
                    None => Scored::Unknown { failed: None },
                },
            };
            self.finish(req, &mut out, scored);
            return Step::Done(out);
        }
        self.finish(req, &mut out, Scored::Skip);
        Step::Done(out)
    }

    /// The rest of the decision: the reputation result, the app's signals, the threshold and
    /// the admin policy.
    fn finish(&self, req: &ServiceRequest, out: &mut Outcome, scored: Scored) {
        let Outcome {
            verdict,
            block,
            admin: on_admin_path,
            ..
        } = out;
        if block.is_none() && !verdict.has(Flag::Allowlisted) {
            match scored {
                Scored::Skip => {}
                #[cfg(feature = "reputation")]
                Scored::Known(report) => self.apply_report(verdict, &report),
                #[cfg(feature = "reputation")]
                Scored::Unknown { failed } => {
                    verdict.flag(Flag::ReputationUnknown);
                    verdict.add(Reason::ReputationUnknown {
                        points: self.weights.reputation_unknown,
                    });
                    if failed == Some(Fail::Closed) {
                        *block = Some((BlockReason::Risk, None));
                    }
                }
            }
            if block.is_none() {
                for signal in self.signals.iter() {
                    signal.apply(req, verdict);
                }
                if verdict.score() >= self.block_threshold {
                    *block = Some((BlockReason::Risk, None));
                }
            }
        }

        let admin = self.admin.as_ref().filter(|admin| admin.covers(req.path()));
        if let (Some(policy), None) = (admin, *block) {
            if let AdminCheck::Refused(reason) = policy.check(verdict) {
                *block = Some((reason, None));
            }
        }
        if let Some((reason, _)) = *block {
            verdict.block(reason, self.enforces());
        }
        *on_admin_path = admin.is_some();
    }

    /// Adds a reputation report's points, flags and provider; bans extreme scores.
    #[cfg(feature = "reputation")]
    fn apply_report(&self, verdict: &mut IpVerdict, report: &IpReport) {
        let w = &self.weights;
        if let Some(score) = report.risk_score {
            let points = (u16::from(score) * u16::from(w.reputation) / 100).min(100) as u8;
            verdict.add(Reason::Reputation { score, points });
            if let Some(reputation) = &self.reputation {
                if reputation.ban_at.is_some_and(|at| score >= at) {
                    self.ban_by_reputation(verdict.ip(), score, reputation.ban_for);
                }
            }
        }
        for (is, kind) in [
            (report.is_tor, FeedKind::Tor),
            (report.is_vpn, FeedKind::Vpn),
            (report.is_proxy, FeedKind::Proxy),
            (report.is_datacenter, FeedKind::Hosting),
        ] {
            let flag = crate::scoring::flag_of(kind);
            // A kind the feeds already reported is not counted twice.
            if is && !verdict.has(flag) {
                verdict.flag(flag);
                verdict.add(Reason::ReputationKind {
                    kind,
                    points: w.of_kind(kind),
                });
            }
        }
        if verdict.provider().is_none() {
            // The report's names are shared `Arc<str>`s: no allocation per request.
            if let Some(provider) = report.isp.as_ref().or(report.asn.as_ref()) {
                verdict.set_provider(provider.clone());
            }
        }
    }

    /// The article's `blocked:{ip}` entry: a timed block rule for an extreme reputation score.
    #[cfg(feature = "reputation")]
    fn ban_by_reputation(&self, ip: IpAddr, score: u8, ban_for: Duration) {
        if self.rules.check(ip, None).block.is_some() {
            return;
        }
        let rule = NewRule::block(RuleTarget::ip(ip))
            .expires_after(ban_for)
            .comment(format!("automatic: reputation score {score}"));
        if let Err(e) = self.rules.insert_now(vec![rule]) {
            tracing::warn!(target: "actix_bouncer", %ip, "could not add a reputation ban: {e}");
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
            service: Rc::new(service),
            engine: self.engine.clone(),
            rate_limit_policy,
        }))
    }
}

/// The service behind [`Bouncer`]; not used directly.
#[doc(hidden)]
pub struct BouncerMiddleware<S> {
    service: Rc<S>,
    engine: Arc<Engine>,
    rate_limit_policy: Option<HeaderValue>,
}

impl<S, B> Service<ServiceRequest> for BouncerMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = BouncerFuture<S::Future, B>;

    actix_service::forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        match self.engine.decide(&req) {
            Step::Done(outcome) => respond(
                &self.engine,
                &*self.service,
                self.rate_limit_policy.clone(),
                req,
                outcome,
            ),
            #[cfg(feature = "reputation")]
            Step::Wait(mut outcome, fail) => {
                // A critical path: wait for the reputation API (bounded by its timeout), then
                // finish the decision. Every other path never gets here.
                let engine = self.engine.clone();
                let service = self.service.clone();
                let rate_limit_policy = self.rate_limit_policy.clone();
                BouncerFuture::Scoring {
                    fut: Box::pin(async move {
                        let scored = match engine.reputation.as_ref() {
                            Some(reputation) => {
                                match reputation.client.lookup(outcome.verdict.ip()).await {
                                    Ok(report) => Scored::Known(report),
                                    Err(_) => Scored::Unknown { failed: Some(fail) },
                                }
                            }
                            None => Scored::Skip,
                        };
                        engine.finish(&req, &mut outcome, scored);
                        respond(&engine, &*service, rate_limit_policy, req, outcome).await
                    }),
                }
            }
        }
    }
}

/// Answers a decided request: refuses it, or passes it to the app with its verdict attached.
fn respond<S, B>(
    engine: &Engine,
    service: &S,
    rate_limit_policy: Option<HeaderValue>,
    req: ServiceRequest,
    outcome: Outcome,
) -> BouncerFuture<S::Future, B>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    let Outcome {
        verdict,
        block,
        ban,
        admin,
    } = outcome;

    let rate_limit = rate_limit_policy.map(|policy| {
        let retry = match block {
            Some((BlockReason::RateLimited | BlockReason::Banned, after)) => after,
            _ => None,
        };
        (policy, engine.rate_limit_value(&verdict, retry))
    });

    if verdict.score() >= engine.weights.high_risk
        && matches!(block, None | Some((BlockReason::Risk, _)))
    {
        engine.event(
            req.head(),
            &verdict,
            EventKind::HighRisk,
            block.map(|b| b.0),
            None,
            None,
        );
    }

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
        fut: service.call(req),
        rate_limit,
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
        /// A critical path waiting for the reputation API, then answered as above.
        Scoring { fut: Pin<Box<dyn Future<Output = Result<ServiceResponse<EitherBody<B>>, Error>>>> },
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
            BouncerFutureProj::Scoring { fut } => fut.as_mut().poll(cx),
        }
    }
}
