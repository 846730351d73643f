//! The scope middleware: a policy for every route under a `web::scope`.

use std::borrow::Cow;
use std::fmt;
use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_service::{Service, Transform};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, ResponseError};
use pin_project_lite::pin_project;

use super::extractors::{policy_judge, Policy};
use crate::verdict::{Flag, Flags};

/// A threshold outside 1–100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidThreshold(pub u8);

impl fmt::Display for InvalidThreshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a threshold must be between 1 and 100, got {}", self.0)
    }
}

impl std::error::Error for InvalidThreshold {}

/// A scope middleware applying a policy to every route under it: the counterpart of DRF
/// permission classes and class-based-view mixins. (Named apart from actix-web's own
/// `guard::Guard`, which picks routes rather than refusing requests.)
///
/// ```
/// use actix_bouncer::{guard::ScopePolicy, Flag};
/// use actix_web::{web, HttpResponse};
///
/// let api = web::scope("/api")
///     .wrap(ScopePolicy::low_risk::<90>().deny(Flag::Tor).deny(Flag::Vpn))
///     .route("/data", web::get().to(HttpResponse::Ok));
/// ```
///
/// A threshold outside 1–100 does not compile, as with [`LowRisk`](super::LowRisk):
///
/// ```compile_fail
/// let _ = actix_bouncer::guard::ScopePolicy::low_risk::<0>();
/// ```
#[derive(Debug, Clone)]
pub struct ScopePolicy {
    policy: Policy,
    message: Option<Cow<'static, str>>,
}

impl ScopePolicy {
    /// Refuses scores at or above `THRESHOLD` (1–100, checked at compile time).
    pub const fn low_risk<const THRESHOLD: u8>() -> Self {
        const {
            assert!(
                THRESHOLD >= 1 && THRESHOLD <= 100,
                "ScopePolicy threshold must be 1..=100"
            )
        };
        Self::with_threshold(THRESHOLD)
    }

    /// Refuses scores at or above `threshold`, known only at runtime (e.g. from config).
    pub fn try_low_risk(threshold: u8) -> Result<Self, InvalidThreshold> {
        if (1..=100).contains(&threshold) {
            Ok(Self::with_threshold(threshold))
        } else {
            Err(InvalidThreshold(threshold))
        }
    }

    const fn with_threshold(threshold: u8) -> Self {
        ScopePolicy {
            policy: Policy {
                threshold: Some(threshold),
                deny: Flags::empty(),
            },
            message: None,
        }
    }

    /// The `require_human` policy: refuses Tor, and scores of 80 or more.
    pub fn human() -> Self {
        ScopePolicy::low_risk::<80>().deny(Flag::Tor)
    }

    /// Refuses only flagged requests; add flags with [`ScopePolicy::deny`].
    pub fn flags() -> Self {
        ScopePolicy {
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

impl<S, B> Transform<S, ServiceRequest> for ScopePolicy
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = ScopePolicyMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(ScopePolicyMiddleware {
            service,
            policy: self.policy,
            detail: self.message.clone(),
        }))
    }
}

/// The service behind [`ScopePolicy`]; not used directly.
#[doc(hidden)]
pub struct ScopePolicyMiddleware<S> {
    service: S,
    policy: Policy,
    detail: Option<Cow<'static, str>>,
}

impl<S, B> Service<ServiceRequest> for ScopePolicyMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = ScopeFuture<S::Future, B>;

    actix_service::forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        match policy_judge(req.request(), self.policy, self.detail.clone()) {
            Ok(()) => ScopeFuture::Passed {
                fut: self.service.call(req),
            },
            Err(rejection) => {
                let res = rejection.error_response();
                ScopeFuture::Refused {
                    res: Some(req.into_response(res).map_into_right_body()),
                }
            }
        }
    }
}

pin_project! {
    /// The future of [`ScopePolicyMiddleware`].
    #[doc(hidden)]
    #[project = ScopeFutureProj]
    pub enum ScopeFuture<F, B> {
        /// Refused.
        Refused { res: Option<ServiceResponse<EitherBody<B>>> },
        /// Passed on.
        Passed { #[pin] fut: F },
    }
}

impl<F, B> Future for ScopeFuture<F, B>
where
    F: Future<Output = Result<ServiceResponse<B>, Error>>,
{
    type Output = Result<ServiceResponse<EitherBody<B>>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            ScopeFutureProj::Refused { res } => match res.take() {
                Some(res) => Poll::Ready(Ok(res)),
                None => Poll::Pending,
            },
            ScopeFutureProj::Passed { fut } => fut
                .poll(cx)
                .map(|res| res.map(ServiceResponse::map_into_left_body)),
        }
    }
}
