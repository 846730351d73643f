//! Structured events for every block, ban and would-block.
//!
//! Each event is logged with `tracing` (target `actix_bouncer`; bans at `WARN`, blocks and
//! would-blocks at `INFO`) and then handed to the app's hook, if any, so alerts can go out
//! the way the bot-detection article's `high_risk_detected` signal mails admins:
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

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::client_ip::ClientKey;
use crate::verdict::{ceil_secs, BlockReason};

/// The app's event hook.
pub(crate) type EventHook = Arc<dyn Fn(&BouncerEvent) + Send + Sync>;

/// Longest user agent kept in an event, in bytes.
pub const USER_AGENT_MAX: usize = 256;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
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
    /// `"blocked"`, `"banned"` or `"would_block"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::Blocked => "blocked",
            EventKind::Banned => "banned",
            EventKind::WouldBlock => "would_block",
            EventKind::HighRisk => "high_risk",
            EventKind::AdminAllowed => "admin_allowed",
            EventKind::AdminRefused => "admin_refused",
        }
    }
}

/// One block, ban or would-block.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct BouncerEvent {
    /// What happened.
    pub kind: EventKind,
    /// Why the request was (or would be) refused; `None` for an allowed admin access.
    pub reason: Option<BlockReason>,
    /// False in monitor mode: nothing was refused.
    pub enforced: bool,
    /// The client address.
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
    /// When the client may try again, for blocks that end.
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
pub(crate) fn truncate_user_agent(ua: &str) -> String {
    if ua.len() <= USER_AGENT_MAX {
        return ua.to_owned();
    }
    let mut end = USER_AGENT_MAX;
    while !ua.is_char_boundary(end) {
        end -= 1;
    }
    ua[..end].to_owned()
}

pub(crate) fn emit(hook: Option<&EventHook>, event: &BouncerEvent) {
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
                match event.kind {
                    EventKind::Blocked => "request blocked",
                    EventKind::Banned => "client banned",
                    EventKind::WouldBlock => "request would be blocked (monitor mode)",
                    EventKind::HighRisk => "high-risk request",
                    EventKind::AdminAllowed => "admin access allowed",
                    EventKind::AdminRefused => "admin access refused",
                }
            )
        };
    }
    match event.kind {
        EventKind::Banned | EventKind::AdminRefused | EventKind::HighRisk => log!(warn),
        _ => log!(info),
    }
    if let Some(hook) = hook {
        hook(event);
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
    }
}
