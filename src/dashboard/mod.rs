//! The admin dashboard (feature `dashboard`): rules, bans, clients and traffic at a glance, as
//! server-rendered HTML pages.
//!
//! [`Bouncer::dashboard`] builds a [`Dashboard`], an actix service the app mounts with
//! `App::service` under a prefix of its own:
//!
//! | page | shows, does |
//! |---|---|
//! | `GET /` | overview: requests allowed and refused per minute (last hour) and per hour (last day) as SVG charts, block reasons, top refused clients, top paths, active bans, rules by source, feed, reputation, counter-store and access-log health |
//! | `GET /rules` | rules, filtered (`target`, `action`, `source`, `state`) and paged (`after`); `POST /rules` adds one (validated as the admin API does), `POST /rules/{id}/delete` removes one |
//! | `GET /bans` | this instance's active bans with their end; `POST /bans/unban` lifts one (and removes its automatic rules everywhere) |
//! | `GET /client?q=` | an address, a network or `user:<id>`: the verdict such a request would get now and why, matching rules, ban state, recent activity |
//! | `GET /login`, `POST /login`, `POST /logout` | the session |
//!
//! # Access
//!
//! The dashboard takes the admin API's tokens
//! ([`admin_token`](crate::BouncerBuilder::admin_token), `[[admin_api.tokens]]`): the login
//! form takes a token and sets a session cookie (`HttpOnly`, `SameSite=Strict`, `Secure`
//! unless [`Dashboard::secure_cookie`] turns it off for plain-HTTP development, scoped to the
//! dashboard's path). Sessions are signed, not stored: the cookie holds its end and an
//! HMAC-SHA-256 made with a key derived from the token, so every instance sharing the tokens
//! accepts it, and changing a token ends its sessions. Every form that changes something
//! carries a CSRF token bound to the session. Without any token the dashboard is off: every
//! route answers 404.
//!
//! Every answer carries a strict `Content-Security-Policy` (scripts, styles and images from
//! the dashboard itself only; no inline script or style), `X-Frame-Options: DENY`,
//! `Cache-Control: no-store`, `X-Content-Type-Options: nosniff` and
//! `Referrer-Policy: no-referrer`.
//!
//! Every read and every action works with JavaScript off (links and forms). With it on, the
//! vendored [htmx](https://htmx.org) (served by the dashboard, no CDN) turns links and forms
//! into in-place swaps and refreshes the overview's charts every 30 seconds.
//!
//! # Data
//!
//! Pages read the bouncer's snapshots (rules in force, feeds), its counter store (bans) and,
//! for traffic, an access log in SQL ([`Dashboard::log_store`], a [`SqlAccessLog`] on the
//! database the [`AccessLog`] writes to). A panel whose source is not connected says so.
//!
//! The files of this folder: `mod.rs` (the service and its settings), `session.rs` (login,
//! session cookie, CSRF), `layout.rs` (the page shell, headers, shared bits), `chart.rs`
//! (SVG charts), `assets.rs` (htmx, the stylesheet), and one file per page: `overview.rs`,
//! `rules.rs`, `bans.rs`, `client.rs`.

mod assets;
mod bans;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod chart;
mod client;
mod layout;
mod overview;
mod rules;
mod session;

use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{AppService, HttpServiceFactory};
use actix_web::{web, HttpResponse};

use crate::access_log::AccessLog;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
use crate::access_log::SqlAccessLog;
use crate::bouncer::Bouncer;

/// How long a session lasts unless [`Dashboard::session_ttl`] says otherwise.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(8 * 3600);

/// The dashboard: mount it with `App::service`. Built by [`Bouncer::dashboard`].
///
/// ```
/// use actix_bouncer::Bouncer;
/// use actix_web::{test, App};
///
/// # actix_web::rt::System::new().block_on(async {
/// let bouncer = Bouncer::builder()
///     .admin_token("ops", "correct-horse-battery-staple")
///     .build()?;
/// let app = test::init_service(
///     App::new()
///         .wrap(bouncer.clone())
///         .service(bouncer.dashboard("/_bouncer/ui").secure_cookie(false)),
/// )
/// .await;
/// let req = test::TestRequest::get()
///     .uri("/_bouncer/ui/login")
///     .peer_addr("192.0.2.1:4242".parse()?);
/// let res = test::call_service(&app, req.to_request()).await;
/// assert_eq!(res.status(), 200);
/// assert_eq!(res.headers().get("x-frame-options").unwrap(), "DENY");
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[must_use = "a dashboard does nothing until it is mounted with `App::service`"]
pub struct Dashboard {
    ui: Ui,
}

/// What every page of one dashboard shares.
#[derive(Clone)]
pub(crate) struct Ui {
    pub(crate) bouncer: Bouncer,
    /// The mount path without a trailing `/` (`""` at the root).
    pub(crate) base: Arc<str>,
    pub(crate) secure_cookie: bool,
    pub(crate) session_ttl: Duration,
    pub(crate) log: Option<AccessLog>,
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) store: Option<SqlAccessLog>,
    /// One session key per admin token, derived from its digest.
    pub(crate) keys: Arc<[session::SessionKey]>,
}

impl Bouncer {
    /// The admin dashboard under `path` (a prefix of its own, such as `/_bouncer/ui`). See
    /// [`dashboard`](crate::dashboard) for its pages, its access and its headers.
    ///
    /// It takes the admin API's tokens; a bouncer without any gets a disabled dashboard:
    /// every route answers 404, and the admin API logs a warning. Wrap the app with the
    /// bouncer as usual: the dashboard's requests are judged like any other (list its path in
    /// `[admin] paths` for the admin policy).
    pub fn dashboard(&self, path: &str) -> Dashboard {
        let base = path.trim_end_matches('/');
        Dashboard {
            ui: Ui {
                bouncer: self.clone(),
                base: base.into(),
                secure_cookie: true,
                session_ttl: DEFAULT_SESSION_TTL,
                log: None,
                #[cfg(any(feature = "sqlite", feature = "postgres"))]
                store: None,
                keys: session::keys(&self.engine.admin_tokens),
            },
        }
    }
}

impl Dashboard {
    /// Whether the session cookie is marked `Secure` (sent over HTTPS only). Default: `true`.
    /// Turn it off only for development over plain HTTP.
    pub fn secure_cookie(mut self, secure: bool) -> Self {
        self.ui.secure_cookie = secure;
        self
    }

    /// How long a session lasts after the login. Default: [`DEFAULT_SESSION_TTL`] (8 hours).
    /// A zero length is taken as one second.
    pub fn session_ttl(mut self, ttl: Duration) -> Self {
        self.ui.session_ttl = ttl.max(Duration::from_secs(1));
        self
    }

    /// The access log the app is wrapped with, for its queue health (written, dropped,
    /// failed). Default: none (the panel says the log is not connected).
    pub fn access_log(mut self, log: AccessLog) -> Self {
        self.ui.log = Some(log);
        self
    }

    /// Where the traffic panels and a client's activity are read from: a [`SqlAccessLog`] on
    /// the database the access log writes to. Default: none (those panels say so).
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub fn log_store(mut self, store: SqlAccessLog) -> Self {
        self.ui.store = Some(store);
        self
    }
}

impl HttpServiceFactory for Dashboard {
    fn register(self, config: &mut AppService) {
        let scope = web::scope(&self.ui.base);
        if self.ui.keys.is_empty() {
            scope
                .wrap(layout::security_headers())
                .default_service(web::to(|| async { HttpResponse::NotFound().finish() }))
                .register(config);
            return;
        }
        scope
            .wrap(layout::security_headers())
            .app_data(web::Data::new(self.ui))
            .app_data(web::FormConfig::default().limit(layout::MAX_FORM))
            .route("", web::get().to(overview::page))
            .route("/", web::get().to(overview::page))
            .route("/overview/charts", web::get().to(overview::charts))
            .route("/login", web::get().to(session::login_page))
            .route("/login", web::post().to(session::login))
            .route("/logout", web::post().to(session::logout))
            .route("/rules", web::get().to(rules::page))
            .route("/rules", web::post().to(rules::add))
            .route("/rules/{id}/delete", web::post().to(rules::remove))
            .route("/bans", web::get().to(bans::page))
            .route("/bans/unban", web::post().to(bans::unban))
            .route("/client", web::get().to(client::page))
            .route("/assets/{name}", web::get().to(assets::serve))
            .default_service(web::to(layout::not_found))
            .register(config);
    }
}

impl std::fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboard")
            .field("base", &self.ui.base)
            .field("secure_cookie", &self.ui.secure_cookie)
            .field("session_ttl", &self.ui.session_ttl)
            .field("tokens", &self.ui.keys.len())
            .finish_non_exhaustive()
    }
}
