//! A demo app behind the bouncer.
//!
//! ```text
//! cargo run --example demo                  # serves 127.0.0.1:8080 with examples/bouncer.toml
//! BIND=0.0.0.0:9000 BOUNCER_CONFIG=my.toml cargo run --example demo
//! curl -i localhost:8080/verdict
//! ```

use actix_bouncer::{Bouncer, IpVerdict};
use actix_web::{web, App, HttpResponse, HttpServer};
use tracing_subscriber::EnvFilter;

async fn index() -> &'static str {
    "Hello from behind actix-bouncer. GET /verdict shows what it thinks of you.\n"
}

async fn verdict(verdict: IpVerdict) -> HttpResponse {
    HttpResponse::Ok().json(verdict)
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("actix_bouncer=info,actix_web=info")),
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
    })
    .bind(&bind)?
    .run()
    .await
}
