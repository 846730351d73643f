//! Structured events for every block, ban, would-block, high-risk request and admin access,
//! handed to event sinks.
//!
//! Every event goes first to the `tracing` sink (target `actix_bouncer`; bans, refused admin
//! accesses and high-risk requests at `WARN`, the rest at `INFO`), then to the app's sinks in the
//! order they were added: an [`EventSink`] of its own (metrics, a SIEM shipper), or a closure
//! through [`BouncerBuilder::on_event`](crate::BouncerBuilder::on_event). Alerts can go out the
//! way the bot-detection article's `high_risk_detected` signal mails admins:
//!
//! ```
//! use actix_bouncer::{events::EventKind, Bouncer};
//!
//! let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
//! let bouncer = Bouncer::builder()
//!     .on_event(move |event| {
//!         if event.kind == EventKind::Banned {
//!             // Never block the request path: drop the alert if the channel is full.
//!             let _ = tx.try_send(event.clone());
//!         }
//!     })
//!     .build()?;
//! # drop(rx.try_recv());
//! # Ok::<_, actix_bouncer::ConfigError>(())
//! ```
//!
//! A sink runs on the request path: keep it quick, hand the event on.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::RequestHead;
use actix_web::http::header;
use serde::{Serialize, Serializer};

use crate::client_ip::ClientKey;
use crate::clock::ceil_secs;
use crate::verdict::{BlockReason, IpVerdict};

/// Longest user agent kept in an event, in bytes.
pub const USER_AGENT_MAX: usize = 256;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// A request was refused.
    Blocked,
    /// A client went over its limit and a ban started (this request was refused).
    Banned,
    /// Monitor mode: the request would have been refused, and was let through.
    WouldBlock,
    /// A request scored at or above `[scoring] high_risk` (the bot-detection article's
    /// `high_risk_detected` signal).
    HighRisk,
    /// A request on an admin path passed the admin policy.
    AdminAllowed,
    /// A request on an admin path was refused by the admin policy (or, in monitor mode,
    /// would have been).
    AdminRefused,
}

impl EventKind {
    /// The kind's name: `blocked`, `banned`, `would_block`, `high_risk`, `admin_allowed` or
    /// `admin_refused`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// A few words for a log line.
    fn message(self) -> &'static str {
        match self {
            EventKind::Blocked => "request blocked",
            EventKind::Banned => "client banned",
            EventKind::WouldBlock => "request would be blocked (monitor mode)",
            EventKind::HighRisk => "high-risk request",
            EventKind::AdminAllowed => "admin access allowed",
            EventKind::AdminRefused => "admin access refused",
        }
    }
}

/// One event.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct BouncerEvent {
    /// What happened.
    pub kind: EventKind,
    /// Why the request was (or would be) refused; `None` for an allowed request.
    pub reason: Option<BlockReason>,
    /// False in monitor mode: nothing was refused.
    pub enforced: bool,
    /// The client address (unspecified when the client is unknown).
    pub ip: IpAddr,
    /// The key the client is counted under.
    pub key: ClientKey,
    /// The user, when known.
    pub user: Option<String>,
    /// The request method.
    pub method: String,
    /// The request path.
    pub path: String,
    /// The risk score.
    pub score: u8,
    /// The user agent, cut to at most [`USER_AGENT_MAX`] bytes.
    pub user_agent: Option<String>,
    /// When the client may try again, for refusals that end.
    #[serde(serialize_with = "ser_secs")]
    pub retry_after: Option<Duration>,
    /// The length of the ban that started with this request.
    #[serde(serialize_with = "ser_secs")]
    pub ban: Option<Duration>,
}

fn ser_secs<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_u64(ceil_secs(*d)),
        None => s.serialize_none(),
    }
}

/// Cuts `ua` to at most `USER_AGENT_MAX` bytes on a character boundary.
fn truncate_user_agent(ua: &str) -> String {
    if ua.len() <= USER_AGENT_MAX {
        return ua.to_owned();
    }
    let mut end = USER_AGENT_MAX;
    while !ua.is_char_boundary(end) {
        end -= 1;
    }
    ua[..end].to_owned()
}

/// Where events go. Implemented for closures taking `&BouncerEvent`.
pub trait EventSink: Send + Sync + 'static {
    /// Takes one event. Runs on the request path: hand it on, do not wait.
    fn emit(&self, event: &BouncerEvent);
}

impl<F> EventSink for F
where
    F: Fn(&BouncerEvent) + Send + Sync + 'static,
{
    fn emit(&self, event: &BouncerEvent) {
        self(event)
    }
}

/// The sink every bouncer has: one `tracing` event per bouncer event (target `actix_bouncer`).
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingSink;

impl EventSink for TracingSink {
    fn emit(&self, event: &BouncerEvent) {
        macro_rules! log {
            ($level:ident) => {
                tracing::$level!(
                    target: "actix_bouncer",
                    event = event.kind.as_str(),
                    reason = event.reason.map(BlockReason::as_str),
                    enforced = event.enforced,
                    ip = %event.ip,
                    key = %event.key,
                    user = event.user.as_deref(),
                    method = %event.method,
                    path = %event.path,
                    score = event.score,
                    user_agent = event.user_agent.as_deref(),
                    retry_after_secs = event.retry_after.map(ceil_secs),
                    ban_secs = event.ban.map(ceil_secs),
                    "{}",
                    event.kind.message()
                )
            };
        }
        match event.kind {
            EventKind::Banned | EventKind::AdminRefused | EventKind::HighRisk => log!(warn),
            _ => log!(info),
        }
    }
}

/// A bouncer's sinks: tracing first, then the app's.
#[derive(Clone)]
pub(crate) struct Events {
    sinks: Box<[Arc<dyn EventSink>]>,
    enforced: bool,
}

impl Events {
    pub(crate) fn new(app_sinks: Vec<Arc<dyn EventSink>>, enforced: bool) -> Self {
        let mut sinks: Vec<Arc<dyn EventSink>> = Vec::with_capacity(app_sinks.len() + 1);
        sinks.push(Arc::new(TracingSink));
        sinks.extend(app_sinks);
        Events {
            sinks: sinks.into_boxed_slice(),
            enforced,
        }
    }

    /// Builds the event of one request and hands it to every sink.
    pub(crate) fn request(
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
            enforced: self.enforced,
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
        for sink in self.sinks.iter() {
            sink.emit(&event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agent_is_cut_on_a_char_boundary() {
        let ua = "é".repeat(200); // 400 bytes
        let cut = truncate_user_agent(&ua);
        assert!(cut.len() <= USER_AGENT_MAX);
        assert_eq!(cut.len(), 256);
        assert_eq!(truncate_user_agent("curl/8.0"), "curl/8.0");
        assert_eq!(EventKind::AdminRefused.as_str(), "admin_refused");
        assert_eq!(
            serde_json::to_string(&EventKind::WouldBlock).unwrap(),
            "\"would_block\""
        );
    }
}
