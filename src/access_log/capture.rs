//! Body capture: the request's payload stream, wrapped so that the handler receives every chunk
//! unchanged and as it comes, while up to a limit is copied aside for the log.
//!
//! Only url-encoded forms and JSON are captured; every other payload (multipart uploads, octet
//! streams…) is left alone, not wrapped at all. A payload whose `Content-Length` is over the
//! limit is not wrapped either: the record says it was omitted. A payload that turns out longer
//! than the limit while streaming drops what was copied and stops copying.

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::header::{HeaderMap, CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::web::Bytes;
use futures_core::Stream;

/// The kinds of body the log keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyKind {
    /// `application/x-www-form-urlencoded`.
    Form,
    /// `application/json`, `application/*+json`.
    Json,
}

impl BodyKind {
    /// The kind of a request's body, from its `Content-Type`.
    pub(crate) fn of(headers: &HeaderMap) -> Option<BodyKind> {
        let value = headers.get(CONTENT_TYPE)?.to_str().ok()?;
        let essence = value.split(';').next().unwrap_or("").trim();
        let (kind, subtype) = essence.split_once('/')?;
        if !kind.eq_ignore_ascii_case("application") {
            return None;
        }
        if subtype.eq_ignore_ascii_case("x-www-form-urlencoded") {
            Some(BodyKind::Form)
        } else if subtype.eq_ignore_ascii_case("json")
            || (subtype.len() > 5
                && subtype.is_char_boundary(subtype.len() - 5)
                && subtype[subtype.len() - 5..].eq_ignore_ascii_case("+json"))
        {
            Some(BodyKind::Json)
        } else {
            None
        }
    }
}

/// The declared `Content-Length`, when there is a valid one.
pub(crate) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// What was copied of a body.
#[derive(Debug, Default)]
pub(crate) struct Captured {
    /// The bytes copied so far (emptied once over the limit).
    pub(crate) bytes: Vec<u8>,
    /// The body went over the limit.
    pub(crate) over: bool,
    /// The stream ended: the handler read all of it.
    pub(crate) complete: bool,
}

/// Shared between the payload stream (the handler's side) and the record (the log's side); one
/// worker thread, no lock.
pub(crate) type Shared = Rc<RefCell<Captured>>;

/// Wraps `payload` so that up to `limit` bytes of it are copied into the returned buffer.
pub(crate) fn tee(payload: Payload, limit: usize) -> (Payload, Shared) {
    let shared = Shared::default();
    let stream = Tee {
        inner: payload,
        shared: Rc::clone(&shared),
        limit,
    };
    (
        Payload::Stream {
            payload: Box::pin(stream),
        },
        shared,
    )
}

struct Tee {
    inner: Payload,
    shared: Shared,
    limit: usize,
}

impl Stream for Tee {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let item = std::task::ready!(Pin::new(&mut this.inner).poll_next(cx));
        let mut captured = this.shared.borrow_mut();
        match &item {
            Some(Ok(chunk)) if !captured.over => {
                if captured.bytes.len() + chunk.len() > this.limit {
                    captured.over = true;
                    captured.bytes = Vec::new();
                } else {
                    captured.bytes.extend_from_slice(chunk);
                }
            }
            Some(_) => {}
            None => captured.complete = true,
        }
        Poll::Ready(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    fn kind(ct: &'static str) -> Option<BodyKind> {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
        BodyKind::of(&h)
    }

    #[test]
    fn content_types() {
        assert_eq!(kind("application/json"), Some(BodyKind::Json));
        assert_eq!(
            kind("Application/JSON; charset=utf-8"),
            Some(BodyKind::Json)
        );
        assert_eq!(kind("application/problem+json"), Some(BodyKind::Json));
        assert_eq!(
            kind("application/x-www-form-urlencoded"),
            Some(BodyKind::Form)
        );
        assert_eq!(kind("multipart/form-data; boundary=x"), None);
        assert_eq!(kind("application/octet-stream"), None);
        assert_eq!(kind("text/json"), None);
        assert_eq!(kind("application/+json"), None);
        assert_eq!(kind("application"), None);
    }
}
