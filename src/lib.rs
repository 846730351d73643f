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
//!
//! # How it works
//!
//! One request goes one way through the [`Bouncer`] middleware; each stage has a module, and
//! reads configuration built once and snapshots swapped in atomically (no lock, no store call
//! on the request path):
//!
//! ```text
//! request
//!   │ resolve the client ──────────── client_ip   (peer, trusted proxies, Forwarded / X-Forwarded-For,
//!   │                                              prefix grouping; an unknown client gets a key of its own)
//!   │ rules: allow? block? ────────── rules       (compiled snapshot + recent changes; RuleStore behind)
//!   │ count the hit, ban ──────────── limiter     (GCRA over one bounded store; CounterStore behind)
//!   │ signals add points/flags ────── signals     (User-Agent, range feeds, reputation, the app's own;
//!   │                                              a signal may wait: the request is held, not a thread)
//!   │ score ≥ threshold? ──────────── engine
//!   │ admin path policy ───────────── admin       (paths matched as the router dispatches: path_match)
//!   │ respond ─────────────────────── engine → events (EventSink), response (problem+json / yours)
//!   ▼
//! IpVerdict in the request's extensions ── verdict
//!   │ per-handler guards ──────────── guard       (extractors, #[rate_limit], ScopePolicy)
//!   ▼
//! handler ─► response ─► outer middleware reads the verdict (VerdictExt on ServiceResponse)
//! ```
//!
//! The modules form a one-way graph. At the bottom, leaves that know nothing of the decision:
//! [`prefix_table`] (the one longest-prefix-match table), [`clock`], [`net`], [`path_match`],
//! [`user_agent`], [`client_ip`]. Above them the components, each with its own typed errors:
//! [`rules`], [`limiter`], [`feeds`], `reputation`. Then the decision: [`verdict`],
//! [`signals`], `admin`, [`events`], [`response`] and `engine`. Then the wiring: the
//! [`Bouncer`] handle and its middleware, [`guard`], [`access_log`] (one redacted record per
//! request, written off the request path; wrapped outside the bouncer, it reads the verdict),
//! and `admin_api` (the operators' JSON API, [`Bouncer::admin_scope`], feature `admin-api`). [`config`] sits on top, builds everything,
//! and is the one place that turns a component's error into a TOML key. `metrics` (feature
//! `metrics`) sits between the components it reads and `config`: the respond stage adds to
//! pre-registered counters (one atomic add per request), and the rest is read from the
//! components at scrape time (`Bouncer::publish_metrics`; `Bouncer::metrics_resource` serves
//! `GET /metrics` with feature `prometheus`).
//!
//! ## Seams
//!
//! | seam | trait | implementations |
//! |---|---|---|
//! | where rules live | [`RuleStore`](rules::RuleStore) | [`MemoryRuleStore`](rules::MemoryRuleStore); `SqlRuleStore` (SQLite, PostgreSQL) |
//! | where counts and bans live | [`CounterStore`](limiter::CounterStore) | [`MemoryCounterStore`](limiter::MemoryCounterStore); `RedisCounterStore` (feature `redis`: shared by every instance, no round trip per request) |
//! | what adds risk | [`Signal`] | the User-Agent, range-feed and reputation signals |
//! | where events go | [`EventSink`](events::EventSink) | `tracing`, and [`on_event`](BouncerBuilder::on_event) closures |
//! | what a refusal looks like | [`responder`](BouncerBuilder::responder) | [`problem_response`](response::problem_response) |
//! | what runs after the handler | [`VerdictExt`] on `ServiceResponse` | [`AccessLog`](access_log::AccessLog) |
//! | where access records go | [`AccessSink`](access_log::AccessSink) | [`TracingSink`](access_log::TracingSink) (the default); the SQL sink |
//! | how operators change rules and bans | `Bouncer::admin_scope` (feature `admin-api`) | a JSON API with an OpenAPI description; its changes go out as `admin_change` events |
//!
//! ## Adding a signal
//!
//! ```
//! use std::borrow::Cow;
//! use actix_bouncer::signals::{Applied, Signal};
//! use actix_bouncer::{Bouncer, Flag, IpVerdict, Reason};
//! use actix_web::dev::ServiceRequest;
//!
//! /// Browsers send Accept-Language; most scripts do not.
//! struct NoLanguage;
//!
//! impl Signal for NoLanguage {
//!     fn apply(&self, req: &ServiceRequest, verdict: &mut IpVerdict) -> Applied {
//!         if !req.headers().contains_key("accept-language") {
//!             verdict.flag(Flag::Bot);
//!             verdict.add(Reason::Signal { description: Cow::Borrowed("no Accept-Language"), points: 15 });
//!         }
//!         Applied::Done
//!     }
//! }
//!
//! let bouncer = Bouncer::builder().signal(NoLanguage).build()?;
//! # Ok::<_, actix_bouncer::ConfigError>(())
//! ```
//!
//! ## Adding a store
//!
//! A store implements a small trait of `async fn`s; the bouncer calls it off the request path
//! (rules on their own worker thread). Here, a rule store that keeps the memory store's
//! behaviour and counts writes:
//!
//! ```
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::sync::Arc;
//! use std::time::SystemTime;
//! use actix_bouncer::rules::{
//!     Changes, ListQuery, Loaded, MemoryRuleStore, Rule, RuleDraft, RuleId, RulePage, RuleStore,
//!     Seed, Seeded, Trim,
//! };
//! use actix_bouncer::{Bouncer, StoreError};
//!
//! #[derive(Clone, Default)]
//! struct Counting {
//!     rules: MemoryRuleStore,
//!     writes: Arc<AtomicUsize>,
//! }
//!
//! impl RuleStore for Counting {
//!     async fn insert(&self, rules: Vec<RuleDraft>) -> Result<Vec<Rule>, StoreError> {
//!         self.writes.fetch_add(1, Ordering::Relaxed);
//!         self.rules.insert(rules).await
//!     }
//!     async fn delete(&self, id: RuleId) -> Result<Option<Rule>, StoreError> {
//!         self.writes.fetch_add(1, Ordering::Relaxed);
//!         self.rules.delete(id).await
//!     }
//!     async fn get(&self, id: RuleId) -> Result<Option<Rule>, StoreError> {
//!         self.rules.get(id).await
//!     }
//!     async fn list(&self, query: ListQuery, now: SystemTime) -> Result<RulePage, StoreError> {
//!         self.rules.list(query, now).await
//!     }
//!     async fn active(&self, now: SystemTime) -> Result<Loaded, StoreError> {
//!         self.rules.active(now).await
//!     }
//!     async fn changes_since(&self, version: u64) -> Result<Changes, StoreError> {
//!         self.rules.changes_since(version).await
//!     }
//!     async fn trim(&self, trim: Trim, now: SystemTime) -> Result<u64, StoreError> {
//!         self.writes.fetch_add(1, Ordering::Relaxed);
//!         self.rules.trim(trim, now).await
//!     }
//!     async fn seed(&self, seeds: Vec<Seed>) -> Result<Seeded, StoreError> {
//!         self.writes.fetch_add(1, Ordering::Relaxed);
//!         self.rules.seed(seeds).await
//!     }
//! }
//!
//! let store = Counting::default();
//! let bouncer = Bouncer::builder().rule_store(store.clone()).build()?;
//! assert_eq!(store.writes.load(Ordering::Relaxed), 1, "startup seeds the config's rules");
//! # Ok::<_, actix_bouncer::ConfigError>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

pub mod access_log;
mod admin;
#[cfg(feature = "admin-api")]
pub mod admin_api;
pub mod bitset;
mod bouncer;
pub mod client_ip;
pub mod clock;
pub mod config;
#[cfg(feature = "dashboard")]
pub mod dashboard;
mod engine;
pub mod events;
pub mod feeds;
pub mod guard;
pub mod limiter;
#[cfg(feature = "metrics")]
pub mod metrics;
mod middleware;
pub mod net;
pub mod path_match;
pub mod prefix_table;
#[cfg(feature = "reputation")]
pub mod reputation;
pub mod response;
pub mod rules;
pub mod setting;
pub mod signals;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
mod store_error;
pub mod store_url;
mod sync;
pub mod user_agent;
pub mod verdict;

pub use crate::bouncer::Bouncer;
pub use crate::config::{BouncerBuilder, ConfigError, Mode};
#[doc(hidden)]
pub use crate::middleware::{BouncerFuture, BouncerMiddleware};
pub use crate::path_match::Fail;
pub use crate::rules::{NewRule, Rule, RuleAction, RuleId, RuleTarget, Rules};
pub use crate::signals::{Signal, Weights};
pub use crate::store_error::StoreError;
pub use crate::verdict::{BlockReason, Decision, Flag, Flags, IpVerdict, Reason, VerdictExt};
#[cfg(feature = "macros")]
pub use actix_bouncer_macros::{deny_flags, rate_limit, require_human, require_low_risk};

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
