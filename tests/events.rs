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

/// Events go to `tracing` first, then to every sink in the order they were added: a sink of
/// the app's own (metrics, a log shipper) and `on_event` closures alike.
#[actix_web::test]
async fn sinks_get_every_event_in_order() {
    use std::sync::{Arc, Mutex};

    use actix_bouncer::events::{BouncerEvent, EventKind, EventSink};

    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<String>>>);

    impl EventSink for Recorder {
        fn emit(&self, event: &BouncerEvent) {
            self.0
                .lock()
                .unwrap()
                .push(format!("sink:{}", event.kind.as_str()));
        }
    }

    let (out, _guard) = capture();
    let recorder = Recorder::default();
    let log = recorder.0.clone();
    let seen = recorder.0.clone();
    let bouncer = Bouncer::builder()
        .rule(NewRule::block("192.0.2.0/24".parse().unwrap()))
        .event_sink(recorder)
        .on_event(move |event: &BouncerEvent| {
            assert_eq!(event.kind, EventKind::Blocked);
            seen.lock().unwrap().push("closure".into());
        })
        .build()
        .unwrap();
    let recorded = {
        let app = test::init_service(
            App::new()
                .wrap(bouncer)
                .route("/", web::get().to(HttpResponse::Ok)),
        )
        .await;
        let req = test::TestRequest::get()
            .uri("/")
            .peer_addr("192.0.2.9:1".parse().unwrap())
            .to_request();
        let _ = test::call_service(&app, req).await;
        out.lines()
    };
    assert!(
        recorded.iter().any(|l| l.contains("request blocked")),
        "{recorded:?}"
    );
    assert_eq!(*log.lock().unwrap(), ["sink:blocked", "closure"]);
}
