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
    let bouncer = Bouncer::builder()
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
    tracing::info!(%bind, %config, "demo listening");

    HttpServer::new(move || {
        App::new()
            .wrap(bouncer.clone())
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
    })
    .bind(&bind)?
    .run()
    .await
}
