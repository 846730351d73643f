//! Block responses: `application/problem+json` (RFC 9457) by default, replaceable by the app.
//!
//! The default body names a machine-readable `reason` and nothing else: internal signals,
//! rules and scores are never sent to the client.
//!
//! ```json
//! {"type":"about:blank","title":"Forbidden","status":403,
//!  "detail":"This client is temporarily banned.","reason":"banned"}
//! ```

use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};

use crate::clock::ceil_secs;
use crate::verdict::{BlockReason, IpVerdict, Refusal};

/// The app's replacement for the default block response.
pub(crate) type Responder =
    std::sync::Arc<dyn Fn(&HttpRequest, &Rejection<'_>) -> HttpResponse + Send + Sync>;

/// How a bouncer answers refusals: the app's responder, or problem+json.
#[derive(Clone, Default)]
pub(crate) struct Responses {
    pub(crate) responder: Option<Responder>,
}

impl Responses {
    /// The answer to `refusal`, with `Retry-After` when it ends.
    pub(crate) fn refuse(
        &self,
        req: &HttpRequest,
        verdict: &IpVerdict,
        refusal: &Refusal,
        detail: Option<&str>,
    ) -> HttpResponse {
        let mut rejection = Rejection::new(refusal.reason, refusal.retry_after, verdict);
        if let Some(detail) = detail {
            rejection = rejection.with_detail(detail);
        }
        let mut res = match &self.responder {
            Some(responder) => responder(req, &rejection),
            None => problem_response(&rejection),
        };
        add_retry_after(&mut res, refusal.retry_after);
        res
    }
}

/// The media type of the default block body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A refused request, as handed to a custom responder.
#[derive(Debug, Clone, Copy)]
pub struct Rejection<'a> {
    pub(crate) reason: BlockReason,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) verdict: &'a IpVerdict,
    pub(crate) detail: Option<&'a str>,
}

impl<'a> Rejection<'a> {
    /// A rejection of `verdict`'s request for `reason`, ending after `retry_after`.
    pub fn new(reason: BlockReason, retry_after: Option<Duration>, verdict: &'a IpVerdict) -> Self {
        Rejection {
            reason,
            retry_after,
            verdict,
            detail: None,
        }
    }

    /// The same rejection with its own `detail` text (a guard's `message`).
    pub fn with_detail(mut self, detail: &'a str) -> Self {
        self.detail = Some(detail);
        self
    }

    /// The `detail` text a guard asked for, if any.
    pub fn detail(&self) -> Option<&str> {
        self.detail
    }

    /// Why the request is refused.
    pub fn reason(&self) -> BlockReason {
        self.reason
    }

    /// 429 for `rate_limited`, 403 otherwise.
    pub fn status(&self) -> StatusCode {
        match self.reason {
            BlockReason::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::FORBIDDEN,
        }
    }

    /// When the block ends, if it does.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The request's verdict (for logging; do not echo its signals to the client).
    pub fn verdict(&self) -> &IpVerdict {
        self.verdict
    }
}

/// The body for each reason, built at compile time: the block path formats nothing.
const fn body(reason: BlockReason) -> &'static str {
    match reason {
        BlockReason::Blacklisted => concat!(
            r#"{"type":"about:blank","title":"Forbidden","status":403,"#,
            r#""detail":"Access from this client is not allowed.","reason":"blacklisted"}"#
        ),
        BlockReason::Banned => concat!(
            r#"{"type":"about:blank","title":"Forbidden","status":403,"#,
            r#""detail":"This client is temporarily banned.","reason":"banned"}"#
        ),
        BlockReason::RateLimited => concat!(
            r#"{"type":"about:blank","title":"Too Many Requests","status":429,"#,
            r#""detail":"Too many requests; retry later.","reason":"rate_limited"}"#
        ),
        BlockReason::Risk => concat!(
            r#"{"type":"about:blank","title":"Forbidden","status":403,"#,
            r#""detail":"This request was refused.","reason":"risk"}"#
        ),
        BlockReason::Restricted => concat!(
            r#"{"type":"about:blank","title":"Forbidden","status":403,"#,
            r#""detail":"This resource is restricted.","reason":"restricted"}"#
        ),
    }
}

/// The default block response: `application/problem+json` with `status`, `title`, `detail`
/// and `reason`, plus `Retry-After` when the block ends.
pub fn problem_response(rejection: &Rejection<'_>) -> HttpResponse {
    let mut builder = HttpResponse::build(rejection.status());
    builder
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
    let mut res = match rejection.detail {
        None => builder.body(body(rejection.reason)),
        Some(detail) => {
            let status = rejection.status();
            builder.body(
                serde_json::json!({
                    "type": "about:blank",
                    "title": status.canonical_reason().unwrap_or_default(),
                    "status": status.as_u16(),
                    "detail": detail,
                    "reason": rejection.reason.as_str(),
                })
                .to_string(),
            )
        }
    };
    add_retry_after(&mut res, rejection.retry_after);
    res
}

/// Sets `Retry-After` (whole seconds, rounded up) unless the response already has one.
fn add_retry_after(res: &mut HttpResponse, retry_after: Option<Duration>) {
    if let Some(after) = retry_after {
        let headers = res.headers_mut();
        if !headers.contains_key(header::RETRY_AFTER) {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(ceil_secs(after).max(1)),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_valid_problem_json() {
        for (reason, status) in [
            (BlockReason::Blacklisted, 403),
            (BlockReason::Banned, 403),
            (BlockReason::RateLimited, 429),
            (BlockReason::Risk, 403),
            (BlockReason::Restricted, 403),
        ] {
            let v: serde_json::Value = serde_json::from_str(body(reason)).unwrap();
            assert_eq!(v["status"], status);
            assert_eq!(v["reason"], reason.as_str());
            assert!(v["title"].is_string());
        }
    }
}
