//! Route-guard attributes for [actix-bouncer](https://docs.rs/actix-bouncer).
//!
//! Use them through `actix_bouncer` (its `macros` feature, on by default), not this crate:
//!
//! ```rust,ignore
//! use actix_bouncer::{deny_flags, rate_limit, require_human, require_low_risk};
//! use actix_web::{post, web, HttpResponse};
//!
//! #[post("/login")]
//! #[require_human]
//! #[deny_flags(tor, proxy)]
//! #[rate_limit(hits = 5, per = "1m", ban_for = "15m")]
//! async fn login(form: web::Form<Credentials>) -> HttpResponse {
//!     // Reached only by clients that passed all three guards, in that order.
//!     HttpResponse::Ok().finish()
//! }
//! ```
//!
//! # How they work
//!
//! Each attribute adds one parameter to the handler, whose type is an extractor of
//! `actix_bouncer::guard` (`LowRisk`, `Human`, `DenyFlags`, `HandlerLimit`). actix-web extracts
//! parameters in order and the guard goes first, so a refused request gets its `403`/`429`
//! before any of the handler's own extractors runs; a `web::Form` or `web::Json` body is never
//! read. Stacked attributes run top to bottom. The body, return type, generics and other
//! attributes are untouched, and the attributes work above or below actix-web's routing
//! attributes (`#[get]`, `#[post]`, ...) and on handlers registered with
//! `web::resource(..).to(handler)`.
//!
//! The guards read the verdict that the `Bouncer` middleware attached to the request, so the
//! app must be wrapped in `Bouncer`; without it they fail closed with a `500`.
//!
//! ```rust,ignore
//! // `#[require_low_risk(threshold = 70)] async fn page(q: web::Query<Q>)` becomes:
//! async fn page(_bouncer_low_risk: ::actix_bouncer::guard::LowRisk<70>, q: web::Query<Q>)
//! ```
//!
//! # Common arguments
//!
//! - `message = "..."` (not on `rate_limit`) replaces the `detail` text of the refusal. It is
//!   carried by a hidden marker type emitted beside the handler, so the handler must be a free
//!   function (at module level or in a block), not an associated function in an `impl`.
//! - `crate = "path"` names the actix-bouncer crate when it is not reachable as
//!   `::actix_bouncer`, e.g. after `extern crate actix_bouncer as bouncer;` or a rename in
//!   `Cargo.toml`.
//!
//! # Limits
//!
//! Handlers must be `async fn`s without `self`, and each attribute may appear once per handler.
//! actix-web handlers take at most 16 parameters, guards included. Arguments are checked at
//! compile time: a typo in a key, a threshold out of range or a malformed duration is a
//! compile error pointing at it.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use proc_macro::TokenStream;

mod args;
mod expand;
#[cfg(test)]
mod tests;

/// Refuses requests whose risk score is at or above `threshold` (`403`).
///
/// Arguments: `threshold` (required, 1 to 100), `message`, `crate`. With `message`, the handler
/// must be a free function (see the crate docs).
///
/// ```rust,ignore
/// use actix_bouncer::require_low_risk;
///
/// #[require_low_risk(threshold = 70, message = "Too risky; try again later.")]
/// async fn checkout(order: web::Json<Order>) -> HttpResponse {
///     HttpResponse::Ok().finish()
/// }
/// ```
///
/// The added parameter is `_bouncer_low_risk: actix_bouncer::guard::LowRisk<70, M>`.
#[proc_macro_attribute]
pub fn require_low_risk(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::run::<args::LowRiskArgs>(args.into(), item.into()).into()
}

/// Refuses Tor exits always, and requests whose risk score is at or above `threshold` (`403`).
///
/// Arguments, all optional: `threshold` (1 to 100, default 80), `message`, `crate`. With
/// `message`, the handler must be a free function (see the crate docs).
///
/// ```rust,ignore
/// use actix_bouncer::require_human;
///
/// #[require_human]
/// async fn signup(form: web::Form<Signup>) -> HttpResponse {
///     HttpResponse::Ok().finish()
/// }
///
/// #[require_human(threshold = 60, message = "Please sign up from a regular connection.")]
/// async fn invite(form: web::Form<Invite>) -> HttpResponse {
///     HttpResponse::Ok().finish()
/// }
/// ```
///
/// The added parameter is `_bouncer_human: actix_bouncer::guard::Human<80, M>`.
#[proc_macro_attribute]
pub fn require_human(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::run::<args::HumanArgs>(args.into(), item.into()).into()
}

/// Refuses requests carrying any of the listed flags (`403`).
///
/// Flags, at least one: `tor`, `vpn`, `proxy`, `hosting`, `cdn`, `bot`, `fake_crawler`
/// (`actix_bouncer::Flag::Tor` ... `Flag::FakeCrawler`). Optional `message = "..."` and
/// `crate = "..."` go in the same list; with `message`, the handler must be a free function
/// (see the crate docs).
///
/// ```rust,ignore
/// use actix_bouncer::deny_flags;
///
/// #[deny_flags(tor, vpn, proxy, hosting, message = "Anonymous networks cannot vote.")]
/// async fn vote(form: web::Form<Ballot>) -> HttpResponse {
///     HttpResponse::Ok().finish()
/// }
/// ```
///
/// The added parameter is
/// `_bouncer_deny_flags: actix_bouncer::guard::DenyFlags<{ Flag::Tor.bit() | ... }, M>`.
#[proc_macro_attribute]
pub fn deny_flags(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::run::<args::DenyFlagsArgs>(args.into(), item.into()).into()
}

/// Limits how often one client may call this handler (`429` over the limit, `403` while
/// banned), on top of the global limit of the `Bouncer` middleware.
///
/// Arguments:
/// - `hits` (required, at least 1): requests allowed per window;
/// - `per` (required): the window, as a duration string (`"30s"`, `"1m"`, `"1h 30m"`) of whole
///   milliseconds;
/// - `ban_for` (optional, above zero; as long as `per`, or shorter, is fine): how long a
///   client that went over is refused outright; without it the client is only held to the
///   limit;
/// - `key` (optional): whose hits are counted, `"ip"` (default), `"user"` (the user named by the
///   bouncer's user hook; requests without one are not counted) or `"user_or_ip"`;
/// - `name` (optional): the limit's name; handlers with the same name and rate share their
///   counters. Default: the handler's module path and function name (`app::auth::login`);
/// - `crate`.
///
/// ```rust,ignore
/// use actix_bouncer::rate_limit;
///
/// #[rate_limit(hits = 5, per = "1m", ban_for = "15m", key = "ip")]
/// async fn login(form: web::Form<Credentials>) -> HttpResponse {
///     HttpResponse::Ok().finish()
/// }
/// ```
///
/// The counters are identified by the limit's name, not by where the handler sits in its file:
/// moving code keeps them.
/// The added parameter is
/// `_bouncer_rate_limit: actix_bouncer::guard::HandlerLimit<5, 60000, 900000, KEY, ID>`.
#[proc_macro_attribute]
pub fn rate_limit(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::run::<args::RateLimitArgs>(args.into(), item.into()).into()
}
