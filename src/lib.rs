//! Keeps abusive clients out of actix-web apps.
//!
//! One global middleware, [`Bouncer`], works out who the client really is (the peer address,
//! forwarding headers only from trusted proxies, IPv6 grouped by prefix, an optional user),
//! counts its hits (GCRA), bans clients that go over their limit (bans grow for repeat
//! offenders), applies blacklist and allowlist rules (IPs, networks, users; each may expire),
//! scores the request 0–100 with reasons, and attaches an [`IpVerdict`] to it. It blocks what
//! crosses the threshold with an `application/problem+json` answer, or in monitor mode only
//! logs what it would block.
//!
//! ```
//! use actix_bouncer::{Bouncer, IpVerdict};
//! use actix_web::{test, web, App};
//!
//! # actix_web::rt::System::new().block_on(async {
//! let app = test::init_service(
//!     App::new()
//!         .wrap(Bouncer::new())
//!         .route("/", web::get().to(|v: IpVerdict| async move { v.ip().to_string() })),
//! )
//! .await;
//! let req = test::TestRequest::get().peer_addr("203.0.113.7:4242".parse().unwrap());
//! let body = test::call_and_read_body(&app, req.to_request()).await;
//! assert_eq!(body, "203.0.113.7");
//! # });
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

pub mod admin;
pub mod client_ip;
pub mod clock;
pub mod config;
pub mod events;
pub mod feeds;
pub mod guard;
pub mod limiter;
mod middleware;
pub mod net;
pub mod prefix_table;
#[cfg(feature = "reputation")]
pub mod reputation;
pub mod response;
pub mod rules;
pub mod scoring;
pub mod setting;
pub mod signals;
mod sync;
pub mod user_agent;
pub mod verdict;

pub use crate::config::{BouncerBuilder, ConfigError, Mode};
pub use crate::middleware::Bouncer;
#[doc(hidden)]
pub use crate::middleware::{BouncerFuture, BouncerMiddleware};
pub use crate::rules::{NewRule, Rule, RuleAction, RuleId, RuleTarget, Rules};
pub use crate::signals::Signal;
pub use crate::verdict::{BlockReason, Decision, Flag, Flags, IpVerdict, Reason, VerdictExt};
#[cfg(feature = "macros")]
pub use actix_bouncer_macros::{deny_flags, rate_limit, require_human, require_low_risk};

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
