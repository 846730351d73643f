//! Blocks, bans and would-blocks are structured `tracing` events with target `actix_bouncer`.

use std::time::Duration;

use actix_bouncer::{Bouncer, Mode, NewRule};
use actix_web::{test, web, App, HttpResponse};

mod common;
use common::capture;

#[actix_web::test]
async fn bans_and_blocks_are_logged_with_their_fields() {
    let (out, _guard) = capture();
    let bouncer = Bouncer::builder()
        .limit(1, Duration::from_secs(60))
        .ban_for(Duration::from_secs(300))
        .build()
        .unwrap();
    let app = test::init_service(
        App::new()
            .wrap(bouncer)
            .route("/login", web::post().to(HttpResponse::Ok)),
    )
    .await;
    let long_ua = "x".repeat(1000);
    for _ in 0..3 {
        let req = test::TestRequest::post()
            .uri("/login")
            .peer_addr("192.0.2.5:1".parse().unwrap())
            .insert_header(("user-agent", long_ua.as_str()))
            .to_request();
        test::call_service(&app, req).await;
    }
    let lines = out.lines();
    let ban = lines
        .iter()
        .find(|l| l.contains("client banned"))
        .expect("a ban event");
    for field in [
        "WARN",
        "actix_bouncer",
        "event=\"banned\"",
        "reason=\"banned\"",
        "ip=192.0.2.5",
        "key=192.0.2.5",
        "method=POST",
        "path=/login",
        "score=100",
        "ban_secs=300",
    ] {
        assert!(ban.contains(field), "{field} missing in {ban}");
    }
    let ua = ban
        .split("user_agent=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    assert_eq!(ua.len(), 256, "the user agent is truncated");
    let blocked = lines
        .iter()
        .find(|l| l.contains("request blocked"))
        .expect("a block event");
    assert!(
        blocked.contains("INFO") && blocked.contains("retry_after_secs="),
        "{blocked}"
    );
}

#[actix_web::test]
async fn monitor_mode_logs_would_block() {
    let (out, _guard) = capture();
    let bouncer = Bouncer::builder()
        .mode(Mode::Monitor)
        .rule(NewRule::block("192.0.2.0/24".parse().unwrap()))
        .build()
        .unwrap();
    let app = test::init_service(
        App::new()
            .wrap(bouncer)
            .route("/", web::get().to(HttpResponse::Ok)),
    )
    .await;
    let req = test::TestRequest::get()
        .peer_addr("192.0.2.5:1".parse().unwrap())
        .to_request();
    assert!(test::call_service(&app, req).await.status().is_success());
    let lines = out.lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("event=\"would_block\"") && l.contains("reason=\"blacklisted\"")),
        "{lines:?}"
    );
}
