//! Per-handler policies: "score globally, enforce locally".
//!
//! The global [`Bouncer`](crate::Bouncer) annotates every request with an
//! [`IpVerdict`](crate::IpVerdict); sensitive handlers then declare a stricter policy, in one of
//! three ways:
//!
//! * an attribute (`#[require_low_risk(threshold = 70)]`, `#[require_human]`,
//!   `#[deny_flags(tor, vpn)]`, `#[rate_limit(hits = 5, per = "1m")]`), which expands to
//! * an extractor: [`LowRisk`], [`Human`], [`DenyFlags`], [`HandlerLimit`]; put it first in
//!   the handler's arguments so it runs before body extractors, or
//! * a scope middleware: [`ScopePolicy`], for a whole `web::scope`.
//!
//! All three share one implementation per policy and answer refusals with the bouncer's
//! responder (403 `application/problem+json` by default; 429 or 403 with `Retry-After` for
//! handler limits). An allowlisted client passes every guard. In monitor mode guards refuse
//! nothing and log a would-block event instead. Without the `Bouncer` middleware there is no
//! verdict, and guards fail closed with a 500 that names the wiring mistake.
//!
//! Guards read only the request: its verdict, and through the verdict the bouncer that judged
//! it (to count handler limits, log events and answer refusals).
//!
//! ```
//! use actix_bouncer::guard::{LowRisk, ScopePolicy};
//! use actix_bouncer::{Bouncer, Flag};
//! use actix_web::{web, App, HttpResponse};
//!
//! async fn login(_guard: LowRisk<70>, form: web::Form<Vec<(String, String)>>) -> HttpResponse {
//!     HttpResponse::Ok().finish()
//! }
//!
//! let app = App::new()
//!     .wrap(Bouncer::new())
//!     .route("/login", web::post().to(login))
//!     .service(
//!         web::scope("/api")
//!             .wrap(ScopePolicy::low_risk::<90>().deny(Flag::Tor))
//!             .route("/data", web::get().to(HttpResponse::Ok)),
//!     );
//! ```
//!
//! The files of this folder: `extractors.rs` (the policy extractors), `handler_limit.rs`
//! (per-handler rate limits), `scope.rs` (the scope middleware), `rejection.rs` (judging a
//! request and the refusal it gets).

mod extractors;
mod handler_limit;
mod rejection;
mod scope;

pub use self::extractors::{DefaultMessage, DenyFlags, GuardMessage, Human, LowRisk};
pub use self::handler_limit::{limit_key, HandlerLimit};
pub use self::rejection::{GuardFuture, GuardRejection};
pub use self::scope::{InvalidThreshold, ScopePolicy, ScopePolicyMiddleware};
pub use crate::limiter::limit_id;

#[cfg(test)]
mod tests;
