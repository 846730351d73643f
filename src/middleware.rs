//! The global middleware: the [`Bouncer`]'s `Transform`, its service and its future. The
//! decision itself is the engine's.

use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_service::{Service, Transform};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::HeaderValue;
use actix_web::Error;
use pin_project_lite::pin_project;

use crate::bouncer::Bouncer;
use crate::engine::{Answer, Engine, Step, RATELIMIT, RATELIMIT_POLICY};

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
        ready(Ok(BouncerMiddleware {
            service: Rc::new(service),
            engine: Arc::clone(&self.engine),
        }))
    }
}

/// The service behind [`Bouncer`]; not used directly.
#[doc(hidden)]
pub struct BouncerMiddleware<S> {
    service: Rc<S>,
    engine: Arc<Engine>,
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
            Step::Done(outcome) => answer(&*self.service, self.engine.respond(req, outcome)),
            Step::Wait(mut suspended) => {
                // A signal waits (the reputation API on a critical path): finish the decision
                // once it is done. Every other request is decided above, without a box.
                let engine = Arc::clone(&self.engine);
                let service = Rc::clone(&self.service);
                BouncerFuture::Waiting {
                    fut: Box::pin(async move {
                        let outcome = loop {
                            let finish = (&mut suspended.pending).await;
                            match engine.resume(&req, suspended, finish) {
                                Step::Done(outcome) => break outcome,
                                Step::Wait(next) => suspended = next,
                            }
                        };
                        answer(&*service, engine.respond(req, outcome)).await
                    }),
                }
            }
        }
    }
}

/// Refuses a request at once, or passes it to the app.
fn answer<S, B>(service: &S, answer: Answer) -> BouncerFuture<S::Future, B>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    match answer {
        Answer::Refuse(res) => BouncerFuture::Refused {
            res: Some(res.map_into_right_body()),
        },
        Answer::Pass { req, rate_limit } => BouncerFuture::Passed {
            fut: service.call(req),
            rate_limit,
        },
    }
}

pin_project! {
    /// The future of [`BouncerMiddleware`]: an immediate refusal or the app's response.
    #[doc(hidden)]
    #[project = BouncerFutureProj]
    pub enum BouncerFuture<F, B> {
        /// Refused before reaching the app.
        Refused { res: Option<ServiceResponse<EitherBody<B>>> },
        /// Passed to the app.
        Passed { #[pin] fut: F, rate_limit: Option<(HeaderValue, HeaderValue)> },
        /// A signal waits, then the request is answered as above.
        Waiting { fut: Pin<Box<dyn Future<Output = Result<ServiceResponse<EitherBody<B>>, Error>>>> },
    }
}

impl<F, B> Future for BouncerFuture<F, B>
where
    F: Future<Output = Result<ServiceResponse<B>, Error>>,
{
    type Output = Result<ServiceResponse<EitherBody<B>>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            BouncerFutureProj::Refused { res } => match res.take() {
                Some(res) => Poll::Ready(Ok(res)),
                None => Poll::Pending,
            },
            BouncerFutureProj::Passed { fut, rate_limit } => {
                let mut res = std::task::ready!(fut.poll(cx))?;
                if let Some((policy, value)) = rate_limit.take() {
                    let headers = res.headers_mut();
                    headers.insert(RATELIMIT_POLICY, policy);
                    headers.insert(RATELIMIT, value);
                }
                Poll::Ready(Ok(res.map_into_left_body()))
            }
            BouncerFutureProj::Waiting { fut } => fut.as_mut().poll(cx),
        }
    }
}
