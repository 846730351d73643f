//! The admin JSON API (feature `admin-api`): rules, bans and trimming over HTTP, with an
//! OpenAPI description.
//!
//! [`Bouncer::admin_scope`] builds an actix [`Scope`] the app mounts where it wants:
//!
//! | route | does |
//! |---|---|
//! | `GET /rules` | a page of rules: `target`, `action` (`block`, `allow`), `source` (`manual`, `config`, `auto`), `state` (`active`, `expired`), `after` (a rule id), `limit` (1–1000, default 100); answers `{"rules": [...], "next": <id or null>}` |
//! | `POST /rules` | adds a rule: `{"target", "action", "expires" (RFC 3339) or "for" ("1h"), "comment"}`; 201 with the rule |
//! | `DELETE /rules/{id}` | removes a rule: 204, or 404 |
//! | `GET /bans` | the active bans of this instance, with their end |
//! | `DELETE /bans/{key}` | unbans a client key (`203.0.113.7`, `2001:db8:1:2::/64`) or `user:<id>` here, and removes its automatic rules everywhere: `{"unbanned": bool, "rules_removed": [ids]}` |
//! | `POST /trim` | removes expired rules: `{"created_days", "expired_days"}` (both default 0); `{"removed": n}` |
//! | `GET /openapi.json` | the OpenAPI 3 description of all this (also [`openapi`]) |
//!
//! # Access
//!
//! Every route, `openapi.json` included, needs `Authorization: Bearer <token>`, a token set
//! with [`admin_token`](crate::BouncerBuilder::admin_token),
//! [`admin_token_env`](crate::BouncerBuilder::admin_token_env) or `[[admin_api.tokens]]`. The
//! scheme may be written in any case (RFC 7235 makes schemes case-insensitive). Tokens are
//! compared as SHA-256 digests in constant time, every configured token checked; anything else
//! (no header, another scheme, an empty, shortened, lengthened or altered token) gets the same
//! 401 with `WWW-Authenticate: Bearer`.
//!
//! Without a token the API is disabled, never open: every route answers 404, as if nothing
//! were mounted (so a forgotten secret neither exposes the rules nor advertises an API to
//! probe), and [`admin_scope`](Bouncer::admin_scope) logs a warning.
//!
//! # Answers
//!
//! JSON in and out. Errors are `application/problem+json` (`type`, `title`, `status`,
//! `detail`); a validation error names the body member or query parameter at fault in
//! `field`. Bodies are read up to 64 KiB ([`MAX_BODY`]) as `application/json`; unknown and
//! repeated members are refused. A store failure answers 503 with a generic `detail`: the
//! store's error is logged (target `actix_bouncer`), never sent.
//!
//! Every change (a rule added or removed, an unban, a trim) goes out as an event of kind
//! [`AdminChange`](crate::events::EventKind::AdminChange), naming the token that made it, to
//! the `tracing` sink and the app's [`EventSink`](crate::events::EventSink)s.
//!
//! The files of this folder: `auth.rs` (the bearer check), `problem.rs` (error answers),
//! `body.rs` (reading bodies and query strings), `rules.rs`, `bans.rs` and `openapi.rs` (the
//! routes).

mod auth;
pub(crate) mod bans;
pub(crate) mod body;
mod openapi;
pub(crate) mod problem;
pub(crate) mod rules;

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use actix_web::{web, HttpMessage, HttpRequest, HttpResponse, Resource, Scope};

#[cfg(feature = "dashboard")]
pub(crate) use self::auth::find as find_token;
use self::auth::Admin;
pub use self::openapi::openapi;
use self::problem::Problem;
use crate::bouncer::Bouncer;
use crate::events::{AdminAction, AdminChange};
use crate::verdict::IpVerdict;

/// Largest request body the API reads, in bytes.
pub const MAX_BODY: usize = 64 * 1024;
/// Longest rule comment, in bytes.
pub const MAX_COMMENT: usize = 1024;
/// Longest rule target or ban key, in bytes.
pub const MAX_TARGET: usize = 512;

/// What the routes share: the bouncer they act on.
pub(crate) struct Api {
    bouncer: Bouncer,
}

impl Bouncer {
    /// The admin JSON API under `path` (a prefix of its own, such as `/_bouncer`): mount it with
    /// `App::service`. See [`admin_api`](crate::admin_api) for the routes.
    ///
    /// Every route needs one of the bouncer's admin tokens as `Authorization: Bearer`. A
    /// bouncer without any token gets a disabled API: every route answers 404, and this logs a
    /// warning. Wrap the app with the bouncer as usual: the API's requests are judged like any
    /// other (list its path in `[admin] paths` for the admin policy).
    ///
    /// ```
    /// use actix_bouncer::Bouncer;
    /// use actix_web::{http::header, test, App};
    ///
    /// # actix_web::rt::System::new().block_on(async {
    /// let bouncer = Bouncer::builder()
    ///     .admin_token("ops", "correct-horse-battery-staple")
    ///     .build()?;
    /// let app = test::init_service(
    ///     App::new()
    ///         .wrap(bouncer.clone())
    ///         .service(bouncer.admin_scope("/_bouncer")),
    /// )
    /// .await;
    /// let req = test::TestRequest::post()
    ///     .uri("/_bouncer/rules")
    ///     .peer_addr("192.0.2.1:4242".parse()?)
    ///     .insert_header((header::AUTHORIZATION, "Bearer correct-horse-battery-staple"))
    ///     .set_json(serde_json::json!({ "target": "203.0.113.0/24", "action": "block", "for": "1h" }));
    /// let res = test::call_service(&app, req.to_request()).await;
    /// assert_eq!(res.status(), 201);
    /// assert!(bouncer.rules().check("203.0.113.9".parse()?, None).block.is_some());
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn admin_scope(&self, path: &str) -> Scope {
        let scope = web::scope(path);
        if self.engine.admin_tokens.is_empty() {
            // An `HttpServer` calls this once per worker: one warning is enough.
            if !self.engine.admin_warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    target: "actix_bouncer",
                    path,
                    "the admin API at {path} is disabled: no admin token is configured; \
                     every route answers 404"
                );
            }
            return scope.default_service(web::to(|| async { Err::<HttpResponse, _>(no_such()) }));
        }
        scope
            .app_data(web::Data::new(Api {
                bouncer: self.clone(),
            }))
            .app_data(web::PathConfig::default().error_handler(|_, _| {
                Problem::invalid("path", "The path could not be decoded.").into()
            }))
            .service(
                resource("/rules", "GET, POST")
                    .route(web::get().to(rules::list_rules))
                    .route(web::post().to(rules::add_rule)),
            )
            .service(resource("/rules/{id}", "DELETE").route(web::delete().to(rules::remove_rule)))
            .service(resource("/bans", "GET").route(web::get().to(bans::list_bans)))
            // A network key holds a `/`: the key is the rest of the path.
            .service(resource("/bans/{key:.*}", "DELETE").route(web::delete().to(bans::lift_ban)))
            .service(resource("/trim", "POST").route(web::post().to(rules::trim_rules)))
            .service(resource("/openapi.json", "GET").route(web::get().to(openapi::openapi_json)))
            // Authenticated first, so an unknown path tells nothing to a client without a token.
            .default_service(web::to(|_: Admin| async {
                Err::<HttpResponse, _>(no_such())
            }))
    }
}

/// A resource answering 405 (after the bearer check) to methods other than `allow`.
fn resource(path: &str, allow: &'static str) -> Resource {
    web::resource(path).default_service(web::to(move |_: Admin| async move {
        Err::<HttpResponse, _>(Problem::method_not_allowed(allow))
    }))
}

/// The 404 of an unknown route, and of every route of a disabled API.
fn no_such() -> Problem {
    Problem::not_found("No such resource.")
}

impl Api {
    /// Sends the event of a change made by `admin` through `req`.
    fn audit(&self, req: &HttpRequest, admin: &Admin, action: AdminAction, detail: String) {
        audit(&self.bouncer, req, &admin.name, action, detail);
    }
}

/// Sends the event of a change made by the token named `actor` through `req` (the API's and
/// the dashboard's changes alike).
pub(crate) fn audit(
    bouncer: &Bouncer,
    req: &HttpRequest,
    actor: &str,
    action: AdminAction,
    detail: String,
) {
    let engine = &bouncer.engine;
    // The bouncer's own view of the client when it wraps the app; resolved here otherwise.
    let client = req
        .extensions()
        .get::<IpVerdict>()
        .map(|v| (v.ip(), v.key(), v.user().map(str::to_owned), v.score()));
    let (ip, key, user, score) = client.unwrap_or_else(|| {
        let c = engine
            .resolver
            .resolve(req.peer_addr().map(|a| a.ip()), req.headers());
        (c.ip, c.key, None, 0)
    });
    let change = AdminChange {
        actor: actor.to_owned(),
        action,
        detail,
    };
    engine
        .events
        .admin_change(req.head(), ip, key, user, score, change);
}

/// `t` as RFC 3339, to the second, in UTC.
fn rfc3339(t: SystemTime) -> String {
    crate::clock::rfc3339(t, true)
}
