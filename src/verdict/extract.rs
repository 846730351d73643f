//! Reaching the verdict: the `IpVerdict` extractor, and [`VerdictExt`] for requests and, after
//! the handler, for responses.

use std::cell::Ref;
use std::fmt;
use std::future::{ready, Ready};

use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::{FromRequest, HttpMessage, HttpRequest, ResponseError};

use super::IpVerdict;

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

/// Reads the request's [`IpVerdict`] without cloning it: from handlers (`HttpRequest`), from
/// middleware before the handler (`ServiceRequest`) and after it (`ServiceResponse`, e.g. an
/// access log wrapped outside the bouncer; refused requests carry their verdict too).
///
/// Do not hold the returned borrow across an `.await`.
///
/// ```
/// use actix_bouncer::{Bouncer, VerdictExt};
/// use actix_web::{middleware::from_fn, test, web, App, HttpResponse};
///
/// # actix_web::rt::System::new().block_on(async {
/// let app = test::init_service(
///     App::new()
///         // Outside the bouncer: sees every verdict once the response exists.
///         .wrap(from_fn(|req, next: actix_web::middleware::Next<_>| async move {
///             let res = next.call(req).await?;
///             // No User-Agent on this request: 15 points from the User-Agent signal.
///             let score = res.verdict().map(|v| v.score());
///             assert_eq!(score, Some(15));
///             Ok::<_, actix_web::Error>(res)
///         }))
///         .wrap(Bouncer::new())
///         .route("/", web::get().to(HttpResponse::Ok)),
/// )
/// .await;
/// let req = test::TestRequest::get().peer_addr("203.0.113.7:4242".parse().unwrap());
/// test::call_service(&app, req.to_request()).await;
/// # });
/// ```
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

impl<B> VerdictExt for ServiceResponse<B> {
    fn verdict(&self) -> Option<Ref<'_, IpVerdict>> {
        self.request().verdict()
    }
}
