//! A demo app behind the bouncer.
//!
//! ```text
//! cargo run --example demo                  # serves 127.0.0.1:8080 with examples/bouncer.toml
//! BIND=0.0.0.0:9000 BOUNCER_CONFIG=my.toml cargo run --example demo
//! curl -i localhost:8080/verdict
//! curl -i -X POST localhost:8080/login      # 5 a minute, then a 15-minute ban
//! curl -i -X POST localhost:8080/signup     # humans only: no Tor, score below 80
//! curl -i localhost:8080/admin/             # the [admin] policy of examples/bouncer.toml
//! curl -i localhost:8080/api/data           # a scope guard: score below 90
//! ```
//!
//! Rules live in `demo-rules.db` (SQLite, created in the working directory) unless the config
//! has a `[store]` of its own, so rules added through the admin API outlive a restart.
//!
//! The admin JSON API is mounted at `/_bouncer`. It is disabled (every route answers 404)
//! unless `BOUNCER_ADMIN_TOKEN` holds a token of at least 16 characters:
//!
//! ```text
//! export BOUNCER_ADMIN_TOKEN=$(openssl rand -hex 32)
//! cargo run --example demo
//! AUTH="Authorization: Bearer $BOUNCER_ADMIN_TOKEN"
//! curl -s -H "$AUTH" localhost:8080/_bouncer/rules                      # the rules, 100 a page
//! curl -s -H "$AUTH" 'localhost:8080/_bouncer/rules?action=block&state=active&limit=10'
//! curl -s -H "$AUTH" --json '{"target":"203.0.113.0/24","action":"block","for":"1h","comment":"scraper"}' \
//!      localhost:8080/_bouncer/rules                                      # 201 with the rule
//! curl -s -H "$AUTH" -X DELETE localhost:8080/_bouncer/rules/4           # 204, or 404
//! curl -s -H "$AUTH" localhost:8080/_bouncer/bans                       # active bans, with their end
//! curl -s -H "$AUTH" -X DELETE localhost:8080/_bouncer/bans/127.0.0.1   # unban, drop its automatic rule
//! curl -s -H "$AUTH" --json '{"expired_days":7}' localhost:8080/_bouncer/trim
//! curl -s -H "$AUTH" localhost:8080/_bouncer/openapi.json               # the OpenAPI description
//! ```
//!
//! The dashboard is at <http://127.0.0.1:8080/_bouncer/ui/> with the same token (sign in with
//! it): traffic charts and panels from `demo-access.db`, rules, bans, and any client's verdict.

use actix_bouncer::access_log::{AccessLog, TracingSink};
use actix_bouncer::guard::ScopePolicy;
use actix_bouncer::{rate_limit, require_human, require_low_risk, Bouncer, IpVerdict};
use actix_web::{get, post, web, App, HttpResponse, HttpServer};
use tracing_subscriber::EnvFilter;

async fn index() -> &'static str {
    "Hello from behind actix-bouncer. GET /verdict shows what it thinks of you.\n"
}

async fn verdict(verdict: IpVerdict) -> HttpResponse {
    HttpResponse::Ok().json(verdict)
}

#[post("/login")]
#[require_low_risk(threshold = 75)]
#[rate_limit(hits = 5, per = "1m", ban_for = "15m")]
async fn login() -> &'static str {
    "logged in (not really: this is a demo)\n"
}

#[post("/signup")]
#[require_human]
async fn signup() -> &'static str {
    "welcome, human\n"
}

#[get("/admin/")]
async fn admin() -> &'static str {
    "admin area: you passed the admin policy\n"
}

async fn api_data() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "data": [1, 2, 3] }))
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("demo=info,actix_bouncer=info,actix_web=info")),
        )
        .init();

    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:8080".to_owned());
    let config =
        std::env::var("BOUNCER_CONFIG").unwrap_or_else(|_| "examples/bouncer.toml".to_owned());
    let builder = Bouncer::builder();
    // Before the file, so that a `[store]` in it wins.
    #[cfg(feature = "sqlite")]
    let builder = builder.rule_store_url("sqlite://demo-rules.db");
    // Unset or empty: the token is skipped with a warning, and the admin API stays disabled.
    #[cfg(feature = "admin-api")]
    let builder = builder.admin_token_env("ops", "BOUNCER_ADMIN_TOKEN");
    // The request counters bind to the recorder installed here; `/metrics` serves it.
    #[cfg(feature = "prometheus")]
    let builder = builder.prometheus(true);
    let bouncer = builder
        .toml_file(&config)
        .and_then(|b| {
            b.user(|req| {
                // A stand-in for actix-identity: the demo trusts a header for the user id.
                req.headers()
                    .get("x-demo-user")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            })
            .build()
        })
        .unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(2);
        });
    let access_log = access_log(&bouncer).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2);
    });
    tracing::info!(%bind, %config, "demo listening");

    // The dashboard reads traffic from the database the access log writes to.
    #[cfg(all(feature = "dashboard", feature = "sqlite"))]
    let log_store = actix_bouncer::access_log::SqlAccessLog::connect(&access_log_url())
        .await
        .unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(2);
        });
    let served = access_log.clone();
    HttpServer::new(move || {
        App::new()
            .wrap(bouncer.clone())
            // Outside the bouncer: refused requests are logged too, with their verdict.
            .wrap(served.clone())
            .route("/", web::get().to(index))
            .route("/verdict", web::get().to(verdict))
            .service(login)
            .service(signup)
            .service(admin)
            .service(
                web::scope("/api")
                    .wrap(ScopePolicy::low_risk::<90>())
                    .route("/data", web::get().to(api_data)),
            )
            .configure(|cfg| {
                // Before the admin API: its scope, /_bouncer, is a prefix of the dashboard's
                // and answers every path under it, so the dashboard must be matched first.
                #[cfg(all(feature = "dashboard", feature = "sqlite"))]
                cfg.service(
                    bouncer
                        .dashboard("/_bouncer/ui")
                        // The demo serves plain HTTP; behind TLS keep the default (`Secure`).
                        .secure_cookie(false)
                        .access_log(served.clone())
                        .log_store(log_store.clone()),
                );
                #[cfg(feature = "admin-api")]
                cfg.service(bouncer.admin_scope("/_bouncer"));
                #[cfg(feature = "prometheus")]
                cfg.service(
                    bouncer
                        .metrics_endpoint()
                        .access_log(served.clone())
                        .resource("/metrics"),
                );
                let _ = cfg;
            })
    })
    .bind(&bind)?
    .run()
    .await?;
    // Writes what is still queued before the process ends.
    access_log.shutdown().await;
    Ok(())
}

/// Where the demo's access log goes: `BOUNCER_ACCESS_LOG`, or `demo-access.db`.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn access_log_url() -> String {
    std::env::var("BOUNCER_ACCESS_LOG").unwrap_or_else(|_| "sqlite://demo-access.db".to_owned())
}

/// The demo's access log: every request into `demo-access.db` (SQLite, or the URL in
/// `BOUNCER_ACCESS_LOG`), opened on the log's writer thread and trimmed to a week, and to
/// `tracing`.
fn access_log(bouncer: &Bouncer) -> Result<AccessLog, Box<dyn std::error::Error>> {
    let builder = bouncer.access_log().sink(TracingSink::new());
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    let builder = builder
        .store_url(access_log_url())
        .retain(std::time::Duration::from_secs(7 * 24 * 3600));
    Ok(builder.build()?)
}
