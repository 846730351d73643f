//! The [`AccessLog`]'s `Transform`, its service, its future, and the response body that
//! completes the record when its last byte is sent (or when it is dropped).

use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use actix_service::{Service, Transform};
use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, COOKIE, REFERER, USER_AGENT};
use actix_web::web::Bytes;
use actix_web::{Error, HttpMessage};
use pin_project_lite::pin_project;
use tokio::sync::mpsc::error::SendError;
use tokio::sync::mpsc::OwnedPermit;

use super::capture::{self, BodyKind};
use super::record::AccessVerdict;
use super::writer::{Msg, Pending, RawBody, RawHead};
use super::{AccessLog, Inner};
use crate::path_match::PathMatch;
use crate::verdict::VerdictExt;

/// Longest path kept, in bytes.
pub(crate) const PATH_MAX: usize = 2048;
/// Longest query kept (after redaction), in bytes.
pub(crate) const QUERY_MAX: usize = 2048;
/// Longest query read for redaction, in bytes.
pub(crate) const QUERY_READ_MAX: usize = 4 * QUERY_MAX;
/// Longest referrer kept, in bytes.
pub(crate) const REFERRER_MAX: usize = 1024;
/// Longest user agent kept, in bytes.
pub(crate) const USER_AGENT_MAX: usize = 512;
/// Longest user id kept, in bytes.
pub(crate) const USER_MAX: usize = 256;
/// Longest method kept, in bytes.
pub(crate) const METHOD_MAX: usize = 32;
/// The seed of session fingerprints (stable across restarts, so records can be joined).
const SESSION_SEED: u64 = 0x6163_6365_7373_6c67;

impl<S, B> Transform<S, ServiceRequest> for AccessLog
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<AccessBody<B>>;
    type Error = Error;
    type Transform = AccessLogMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(AccessLogMiddleware {
            service,
            log: Arc::clone(&self.inner),
        }))
    }
}

/// The service behind [`AccessLog`]; not used directly.
#[doc(hidden)]
pub struct AccessLogMiddleware<S> {
    service: S,
    log: Arc<Inner>,
}

impl<S, B> Service<ServiceRequest> for AccessLogMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<AccessBody<B>>;
    type Error = Error;
    type Future = AccessFuture<S::Future>;

    actix_service::forward_ready!(service);

    fn call(&self, mut req: ServiceRequest) -> Self::Future {
        let log = &self.log;
        if log.skip.check(req.path()) == PathMatch::Under {
            return AccessFuture {
                fut: self.service.call(req),
                started: None,
            };
        }
        let start = Instant::now();
        let started = Started {
            // Boxed once, here: this box goes through the queue as it is.
            pending: Box::new(Pending {
                head: head(log, &req, SystemTime::now()),
                body: RawBody::None,
            }),
            body: capture_body(log, &mut req),
            start,
            log: Arc::clone(log),
        };
        AccessFuture {
            fut: self.service.call(req),
            started: Some(started),
        }
    }
}

/// The request's side of the record: reference-counted clones and copies only, no text made
/// here (the writer thread makes it).
fn head(log: &Inner, req: &ServiceRequest, time: SystemTime) -> RawHead {
    let headers = req.headers();
    let client = log
        .resolver
        .resolve(req.peer_addr().map(|a| a.ip()), headers);
    RawHead {
        time,
        method: req.method().clone(),
        uri: req.uri().clone(),
        referrer: headers.get(REFERER).cloned(),
        user_agent: headers.get(USER_AGENT).cloned(),
        session: log
            .session_cookie
            .as_deref()
            .and_then(|name| session(headers, name)),
        ip: client.ip,
        user: log.user.as_ref().and_then(|hook| hook(req)),
        status: 0,
        duration: Duration::ZERO,
        bytes_sent: 0,
        verdict: None,
    }
}

/// The fingerprint of the session cookie `name`.
fn session(headers: &HeaderMap, name: &str) -> Option<u64> {
    use std::hash::BuildHasher;
    for line in headers.get_all(COOKIE) {
        let Ok(line) = line.to_str() else { continue };
        for pair in line.split(';') {
            let Some((n, value)) = pair.trim().split_once('=') else {
                continue;
            };
            if n.trim() == name {
                let value = value.trim().trim_matches('"');
                if value.is_empty() {
                    return None;
                }
                return Some(
                    foldhash::quality::FixedState::with_seed(SESSION_SEED).hash_one(value),
                );
            }
        }
    }
    None
}

/// How the body is being captured.
enum BodyState {
    None,
    Marker(String),
    Capture {
        kind: BodyKind,
        captured: capture::Shared,
        declared: Option<u64>,
    },
}

/// Wraps the payload of a form or JSON request, up to the limit.
fn capture_body(log: &Inner, req: &mut ServiceRequest) -> BodyState {
    if log.body_limit == 0 {
        return BodyState::None;
    }
    let Some(kind) = BodyKind::of(req.headers()) else {
        return BodyState::None;
    };
    let declared = capture::content_length(req.headers());
    match declared {
        Some(0) => BodyState::None,
        Some(n) if n > log.body_limit as u64 => BodyState::Marker(over(log.body_limit)),
        _ => {
            let (payload, captured) = capture::tee(req.take_payload(), log.body_limit);
            req.set_payload(payload);
            BodyState::Capture {
                kind,
                captured,
                declared,
            }
        }
    }
}

fn over(limit: usize) -> String {
    format!("[omitted: over {limit} bytes]")
}

/// A record waiting for its response.
pub(crate) struct Started {
    /// What goes to the writer; its body is filled in at the end.
    pending: Box<Pending>,
    body: BodyState,
    start: Instant,
    log: Arc<Inner>,
}

impl Started {
    /// The record, complete.
    fn finish(self, bytes_sent: u64) -> (Arc<Inner>, Msg) {
        let Started {
            mut pending,
            body,
            start,
            log,
        } = self;
        pending.head.duration = start.elapsed();
        pending.head.bytes_sent = bytes_sent;
        pending.body = match body {
            BodyState::None => RawBody::None,
            BodyState::Marker(m) => RawBody::Marker(m),
            BodyState::Capture {
                kind,
                captured,
                declared,
            } => {
                let captured = std::mem::take(&mut *captured.borrow_mut());
                if captured.over {
                    RawBody::Marker(over(log.body_limit))
                } else if captured.complete && !captured.bytes.is_empty() {
                    if log.reserve_body(captured.bytes.len()) {
                        RawBody::Bytes {
                            kind,
                            bytes: captured.bytes,
                        }
                    } else {
                        RawBody::Marker("[omitted: log queue busy]".to_owned())
                    }
                } else if (!captured.complete && declared.is_some_and(|n| n > 0))
                    || !captured.bytes.is_empty()
                {
                    RawBody::Marker("[omitted: not read]".to_owned())
                } else {
                    RawBody::None
                }
            }
        };
        (log, Msg::Record(pending))
    }
}

pin_project! {
    /// The future of [`AccessLogMiddleware`]: the app's response, with its body wrapped.
    #[doc(hidden)]
    pub struct AccessFuture<F> {
        #[pin]
        fut: F,
        started: Option<Started>,
    }
}

impl<F, B> Future for AccessFuture<F>
where
    F: Future<Output = Result<ServiceResponse<B>, Error>>,
{
    type Output = Result<ServiceResponse<AccessBody<B>>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match std::task::ready!(this.fut.poll(cx)) {
            Ok(res) => {
                let started = this.started.take().map(|mut started| {
                    started.pending.head.status = res.status().as_u16();
                    if let Some(v) = res.verdict() {
                        started.pending.head.verdict = Some(AccessVerdict::of(&v));
                        // The bouncer named the user with the same hook, possibly after an
                        // identity middleware between the two had run.
                        if let Some(user) = v.user() {
                            started.pending.head.user = Some(user.to_owned());
                        }
                    }
                    started
                });
                Poll::Ready(Ok(res.map_body(|_, body| AccessBody {
                    body,
                    done: Completion {
                        started,
                        bytes: 0,
                        waiting: None,
                        ended: false,
                    },
                })))
            }
            Err(error) => {
                // The error becomes a response further out; log its status now.
                if let Some(mut started) = this.started.take() {
                    started.pending.head.status = error.as_response_error().status_code().as_u16();
                    let (log, msg) = started.finish(0);
                    log.offer_detached(msg);
                }
                Poll::Ready(Err(error))
            }
        }
    }
}

type Room = Pin<Box<dyn Future<Output = Result<OwnedPermit<Msg>, SendError<()>>> + Send>>;

/// Completes the record: counts bytes, and queues the record at the end or on drop.
struct Completion {
    started: Option<Started>,
    bytes: u64,
    /// With [`Overflow::Block`](super::Overflow::Block): waiting for room for this record.
    waiting: Option<(Room, Msg, Arc<Inner>)>,
    ended: bool,
}

impl Completion {
    /// The body ended: queue the record, or start waiting for room.
    fn end(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.ended = true;
        if let Some(started) = self.started.take() {
            let (log, msg) = started.finish(self.bytes);
            if let Some(msg) = log.offer(msg) {
                let room: Room = Box::pin(log.tx.clone().reserve_owned());
                self.waiting = Some((room, msg, log));
            }
        }
        self.poll_room(cx)
    }

    fn poll_room(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some((room, _, _)) = self.waiting.as_mut() else {
            return Poll::Ready(());
        };
        let permit = std::task::ready!(room.as_mut().poll(cx));
        if let Some((_, msg, log)) = self.waiting.take() {
            match permit {
                Ok(permit) => {
                    permit.send(msg);
                }
                Err(_) => log.lost(msg, "the access log is shut down"),
            }
        }
        Poll::Ready(())
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        if let Some(started) = self.started.take() {
            let (log, msg) = started.finish(self.bytes);
            log.offer_detached(msg);
        }
        if let Some((_, msg, log)) = self.waiting.take() {
            log.send_detached(msg);
        }
    }
}

pin_project! {
    /// The response body behind [`AccessLog`]: the app's body, unchanged, counted.
    #[doc(hidden)]
    pub struct AccessBody<B> {
        #[pin]
        body: B,
        done: Completion,
    }
}

impl<B: MessageBody> MessageBody for AccessBody<B> {
    type Error = B::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.project();
        if this.done.ended {
            return this.done.poll_room(cx).map(|()| None);
        }
        match std::task::ready!(this.body.poll_next(cx)) {
            Some(Ok(chunk)) => {
                this.done.bytes += chunk.len() as u64;
                Poll::Ready(Some(Ok(chunk)))
            }
            Some(Err(error)) => {
                // The body failed: the record is complete as far as it got.
                this.done.ended = true;
                if let Some(started) = this.done.started.take() {
                    let (log, msg) = started.finish(this.done.bytes);
                    log.offer_detached(msg);
                }
                Poll::Ready(Some(Err(error)))
            }
            None => this.done.end(cx).map(|()| None),
        }
    }
}
