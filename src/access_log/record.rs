//! One request as the access log keeps it.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use serde::{Serialize, Serializer};

use crate::verdict::{BlockReason, Decision, IpVerdict};

/// One request, as the access log records it: who asked for what, what they sent (secrets
/// redacted), and how it went. Built by the `AccessLog` middleware when the response is done;
/// handed to every sink.
///
/// Text that a client wrote (the path, the query, the body, the referrer, the user agent) is
/// kept as sent, cut to a bounded length, never interpreted: escape it where it is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AccessRecord {
    /// When the request arrived (RFC 3339 in JSON).
    #[serde(serialize_with = "ser_time")]
    pub time: SystemTime,
    /// The method: `GET`, `POST`, …
    pub method: String,
    /// The path as the client sent it (percent-encoding kept), without the query.
    pub path: String,
    /// The query string with redacted parameters' values replaced: `q=shoes&token=[REDACTED]`.
    pub query: Option<String>,
    /// The body's fields, redacted, for an url-encoded form (as a query string) or JSON (as
    /// JSON text), when the handler read it and it was within the capture limit; otherwise a
    /// marker saying why it is absent: `[omitted: over 16384 bytes]` (the configured limit),
    /// `[omitted: not read]` (the handler, or a refusal, left it unread),
    /// `[omitted: not valid JSON]`, `[omitted: not UTF-8]` (a form), or
    /// `[omitted: log queue busy]` (too many captured bodies waiting in the queue). `None` for
    /// other content types and for requests without a body.
    pub body: Option<String>,
    /// The `Referer` header.
    pub referrer: Option<String>,
    /// The client's address, resolved the trusted-proxy way (the bouncer's resolver).
    pub ip: IpAddr,
    /// The `User-Agent` header.
    pub user_agent: Option<String>,
    /// A fingerprint of the session id from the configured cookie (16 hex digits, the same for
    /// the same id), never the id itself: a session id is a bearer credential, and the log
    /// must not let its readers take over sessions.
    pub session: Option<String>,
    /// The user id, from the same hook as the bouncer's.
    pub user: Option<String>,
    /// The response's status code.
    pub status: u16,
    /// From the request's arrival to the response's last byte (seconds in JSON).
    #[serde(serialize_with = "ser_secs")]
    pub duration: Duration,
    /// The response body's bytes sent.
    pub bytes_sent: u64,
    /// The bouncer's decision, when it ran on the request.
    pub verdict: Option<AccessVerdict>,
}

/// What the bouncer decided about a logged request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AccessVerdict {
    /// Allowed or blocked (in monitor mode: would have been blocked).
    pub decision: Decision,
    /// Whether the decision was enforced (`false` in monitor mode).
    pub enforced: bool,
    /// The risk score, 0–100.
    pub score: u8,
    /// Why it was blocked, or would have been.
    pub reason: Option<BlockReason>,
}

impl AccessVerdict {
    /// What `verdict` says.
    pub(crate) fn of(verdict: &IpVerdict) -> Self {
        AccessVerdict {
            decision: verdict.decision(),
            enforced: verdict.enforced(),
            score: verdict.score(),
            reason: verdict.blocked_by(),
        }
    }
}

impl AccessRecord {
    /// A record of a `method` request for `path` from `ip` at `time`, answered `200` at once
    /// with an empty body, without a verdict; set the other (public) fields as needed.
    pub fn new(
        time: SystemTime,
        ip: IpAddr,
        method: impl Into<String>,
        path: impl Into<String>,
    ) -> Self {
        AccessRecord {
            time,
            method: method.into(),
            path: path.into(),
            query: None,
            body: None,
            referrer: None,
            ip,
            user_agent: None,
            session: None,
            user: None,
            status: 200,
            duration: Duration::ZERO,
            bytes_sent: 0,
            verdict: None,
        }
    }
}

impl AccessVerdict {
    /// A verdict: `decision`, `enforced` or not (monitor mode), with its score and reason.
    pub fn new(decision: Decision, enforced: bool, score: u8, reason: Option<BlockReason>) -> Self {
        AccessVerdict {
            decision,
            enforced,
            score,
            reason,
        }
    }
}

fn ser_time<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::clock::rfc3339(*t, false))
}

fn ser_secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}
