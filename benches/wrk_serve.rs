//! An actix-web server for wrk: the demo's index handler, bare or behind the bouncer, so that
//! `benches/wrk.sh` can compare their throughput over real sockets.
//!
//! `cargo bench --bench wrk_serve -- bare|bouncer [port]` serves on `127.0.0.1:port` (default
//! 8089) with one worker until killed. The bouncer has its defaults except two settings a load
//! test needs: `127.0.0.1` is a trusted proxy (wrk stands in for it; `benches/wrk.lua` names
//! the client in `X-Forwarded-For`, 1,000 of them in turn, with a browser's User-Agent), and
//! the limit is high enough that no request is refused, so both sides answer the same 200.

use std::time::Duration;

use actix_bouncer::Bouncer;
use actix_web::{web, App, HttpServer};

async fn index() -> &'static str {
    "Hello from behind actix-bouncer. GET /verdict shows what it thinks of you.\n"
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mode = args.first().map_or("bouncer", String::as_str).to_owned();
    let port: u16 = args.get(1).and_then(|p| p.parse().ok()).unwrap_or(8089);
    let bouncer = match mode.as_str() {
        "bare" => None,
        "bouncer" => Some(
            Bouncer::builder()
                .trusted_proxies(["127.0.0.1"])
                .limit(1_000_000_000, Duration::from_secs(60))
                .build()
                .map_err(std::io::Error::other)?,
        ),
        other => {
            eprintln!("wrk_serve: bare|bouncer, not {other:?}");
            std::process::exit(2);
        }
    };
    println!("serving {mode} on 127.0.0.1:{port}");
    actix_web::rt::System::new().block_on(async move {
        match bouncer {
            None => {
                HttpServer::new(|| App::new().route("/", web::get().to(index)))
                    .workers(1)
                    .bind(("127.0.0.1", port))?
                    .run()
                    .await
            }
            Some(bouncer) => {
                HttpServer::new(move || {
                    App::new()
                        .wrap(bouncer.clone())
                        .route("/", web::get().to(index))
                })
                .workers(1)
                .bind(("127.0.0.1", port))?
                .run()
                .await
            }
        }
    })
}
