//! Structured events for every block, ban, would-block, high-risk request and admin access,
//! and for every change made through the admin API, handed to event sinks.
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
    /// An operator changed rules or bans through the admin API; the event's
    /// [`change`](BouncerEvent::change) says who and what.
    AdminChange,
}

impl EventKind {
    /// The kind's name: `blocked`, `banned`, `would_block`, `high_risk`, `admin_allowed`,
    /// `admin_refused` or `admin_change`.
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
            EventKind::AdminChange => "admin API change",
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
    /// Who changed what, for [`EventKind::AdminChange`]; `None`, and left out of the JSON, for
    /// every other kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<AdminChange>,
}

/// A change made through the admin API: who made it, and what it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AdminChange {
    /// The name of the bearer token the request carried (never the token itself).
    pub actor: String,
    /// What was done.
    pub action: AdminAction,
    /// What it was done to, for a log line: a rule id and target, a client key, the trim's
    /// cutoffs, and what came of it.
    pub detail: String,
}

/// What an admin API change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
#[non_exhaustive]
pub enum AdminAction {
    /// A rule was added (`POST /rules`).
    RuleAdded,
    /// A rule was removed (`DELETE /rules/{id}`).
    RuleRemoved,
    /// A client or user was unbanned, and its automatic rules removed (`DELETE /bans/{key}`).
    Unbanned,
    /// Expired rules were trimmed (`POST /trim`).
    Trimmed,
}

impl AdminAction {
    /// The action's name: `rule_added`, `rule_removed`, `unbanned` or `trimmed`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

fn ser_secs<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_u64(ceil_secs(*d)),
        None => s.serialize_none(),
    }
}

/// The request's user agent, cut short.
fn user_agent(head: &RequestHead) -> Option<String> {
    head.headers()
        .get(header::USER_AGENT)
        .map(|ua| truncate_user_agent(&String::from_utf8_lossy(ua.as_bytes())))
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
        if let Some(change) = &event.change {
            tracing::info!(
                target: "actix_bouncer",
                event = event.kind.as_str(),
                actor = %change.actor,
                action = change.action.as_str(),
                detail = %change.detail,
                ip = %event.ip,
                key = %event.key,
                user = event.user.as_deref(),
                method = %event.method,
                path = %event.path,
                "{}",
                event.kind.message()
            );
            return;
        }
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
        let user_agent = user_agent(head);
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
            change: None,
        };
        self.emit(&event);
    }

    /// Builds the event of a change made through the admin API by the request `head`, from the
    /// client `ip` (counted under `key`), and hands it to every sink.
    #[cfg(feature = "admin-api")]
    pub(crate) fn admin_change(
        &self,
        head: &RequestHead,
        ip: IpAddr,
        key: ClientKey,
        user: Option<String>,
        score: u8,
        change: AdminChange,
    ) {
        let user_agent = user_agent(head);
        let event = BouncerEvent {
            kind: EventKind::AdminChange,
            reason: None,
            enforced: self.enforced,
            ip,
            key,
            user,
            method: head.method.to_string(),
            path: head.uri.path().to_owned(),
            score,
            user_agent,
            retry_after: None,
            ban: None,
            change: Some(change),
        };
        self.emit(&event);
    }

    fn emit(&self, event: &BouncerEvent) {
        for sink in self.sinks.iter() {
            sink.emit(event);
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
