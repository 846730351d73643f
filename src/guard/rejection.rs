//! Judging a request against a guard's policy, and the refusal it gets.

use std::borrow::Cow;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, ResponseError};

use crate::verdict::{BlockReason, IpVerdict, Judge, MissingVerdict, Refusal};

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
        judge: Arc<dyn Judge>,
        refusal: Refusal,
        detail: Option<Cow<'static, str>>,
    },
}

impl std::fmt::Debug for GuardRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            RejectionKind::Missing => f.write_str("GuardRejection(missing verdict)"),
            RejectionKind::Refused { refusal, .. } => {
                write!(f, "GuardRejection({})", refusal.reason)
            }
        }
    }
}

impl std::fmt::Display for GuardRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            RejectionKind::Missing => MissingVerdict.fmt(f),
            RejectionKind::Refused { refusal, .. } => {
                write!(f, "refused by a route guard: {}", refusal.reason)
            }
        }
    }
}

impl ResponseError for GuardRejection {
    fn status_code(&self) -> StatusCode {
        match &self.kind {
            RejectionKind::Missing => StatusCode::INTERNAL_SERVER_ERROR,
            RejectionKind::Refused { refusal, .. }
                if refusal.reason == BlockReason::RateLimited =>
            {
                StatusCode::TOO_MANY_REQUESTS
            }
            RejectionKind::Refused { .. } => StatusCode::FORBIDDEN,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match &self.kind {
            RejectionKind::Missing => HttpResponse::InternalServerError().finish(),
            RejectionKind::Refused {
                req,
                verdict,
                judge,
                refusal,
                detail,
            } => judge.respond(req, verdict, refusal, detail.as_deref()),
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
    pub(super) fn new(
        req: &HttpRequest,
        check: fn(&HttpRequest) -> Result<T, GuardRejection>,
    ) -> Self {
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

/// Runs `decide` against the request's verdict and the bouncer that judged it; a refusal is
/// logged and, unless in monitor mode, turned into a rejection with the guard's `detail`.
pub(super) fn judge(
    req: &HttpRequest,
    detail: Option<Cow<'static, str>>,
    decide: impl FnOnce(&IpVerdict, &dyn Judge) -> Option<Refusal>,
) -> Result<(), GuardRejection> {
    let ext = req.extensions();
    let Some((verdict, judge)) = ext.get::<IpVerdict>().and_then(|v| Some((v, v.judge()?))) else {
        tracing::error!(target: "actix_bouncer", "{MissingVerdict}");
        return Err(GuardRejection {
            kind: RejectionKind::Missing,
        });
    };
    let Some(refusal) = decide(verdict, &**judge) else {
        return Ok(());
    };
    judge.report(req, verdict, &refusal);
    if !verdict.enforced() {
        return Ok(());
    }
    let mut verdict = Box::new(verdict.clone());
    verdict.block(refusal.reason);
    let judge = Arc::clone(judge);
    drop(ext);
    // Handlers and outer middleware see that this request was refused, and why.
    req.extensions_mut().insert((*verdict).clone());
    Err(GuardRejection {
        kind: RejectionKind::Refused {
            req: req.clone(),
            verdict,
            judge,
            refusal,
            detail,
        },
    })
}
