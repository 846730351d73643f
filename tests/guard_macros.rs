//! The route-guard attributes, driven by real requests.
#![cfg(feature = "macros")]

mod common;
use common::{test_signal, BROWSER};

use std::time::Duration;

use actix_bouncer::clock::ManualClock;
use actix_bouncer::{deny_flags, rate_limit, require_human, require_low_risk, Bouncer};
use actix_web::http::{header, StatusCode};
use actix_web::{get, post, test, web, App, HttpResponse};

fn bouncer(clock: ManualClock) -> Bouncer {
    Bouncer::builder()
        .signal(test_signal)
        .limit(1_000_000, Duration::from_secs(60))
        .clock(clock)
        .build()
        .unwrap()
}

#[derive(serde::Deserialize)]
struct Login {
    user: String,
}

// Routing attribute above the guards.
#[post("/login")]
#[require_low_risk(threshold = 75)]
#[rate_limit(hits = 2, per = "1m", ban_for = "15m")]
async fn login(form: web::Form<Login>) -> HttpResponse {
    HttpResponse::Ok().body(format!("hello {}", form.user))
}

// Routing attribute below the guards, with a message.
#[require_human(message = "Humans only.")]
#[get("/signup")]
async fn signup() -> &'static str {
    "welcome"
}

#[deny_flags(vpn, hosting)]
async fn download() -> &'static str {
    "file"
}

#[require_human(threshold = 50)]
#[deny_flags(bot)]
async fn strict() -> &'static str {
    "strict"
}

#[rate_limit(hits = 1, per = "10s")]
async fn once_per_ten_seconds() -> &'static str {
    "tick"
}

macro_rules! app {
    ($clock:expr) => {
        test::init_service(
            App::new()
                .wrap(bouncer($clock))
                .service(login)
                .service(signup)
                .service(web::resource("/download").to(download))
                .route("/strict", web::get().to(strict))
                .route("/tick", web::get().to(once_per_ten_seconds)),
        )
        .await
    };
}

fn req(method: &str, path: &str) -> test::TestRequest {
    let r = match method {
        "POST" => test::TestRequest::post(),
        _ => test::TestRequest::get(),
    };
    r.uri(path)
        .peer_addr("198.51.100.20:4000".parse().unwrap())
        .insert_header(("user-agent", BROWSER))
}

fn login_form(score: &str) -> test::TestRequest {
    req("POST", "/login")
        .insert_header(("x-test-score", score.to_owned()))
        .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
        .set_payload("user=alice")
}

#[actix_web::test]
async fn require_low_risk_and_rate_limit_stacked_under_post() {
    let clock = ManualClock::new();
    let app = app!(clock.clone());
    let res = test::call_service(&app, login_form("74").to_request()).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(test::read_body(res).await, "hello alice");
    // Refused by the score: the rate limit below it is not even counted.
    let res = test::call_service(&app, login_form("75").to_request()).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = serde_json::from_slice(&test::read_body(res).await).unwrap();
    assert_eq!(body["reason"], "risk");

    assert_eq!(
        test::call_service(&app, login_form("0").to_request())
            .await
            .status(),
        StatusCode::OK
    );
    let res = test::call_service(&app, login_form("0").to_request()).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(res.headers().get(header::RETRY_AFTER).unwrap(), "900");
    clock.advance(Duration::from_secs(900));
    assert_eq!(
        test::call_service(&app, login_form("0").to_request())
            .await
            .status(),
        StatusCode::OK
    );
}

#[actix_web::test]
async fn a_refused_request_never_has_its_body_parsed() {
    let app = app!(ManualClock::new());
    // A malformed form is a 400 once parsed; refused first, it is a 403.
    let bad = req("POST", "/login")
        .insert_header(("x-test-score", "90"))
        .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
        .set_payload("%%%");
    assert_eq!(
        test::call_service(&app, bad.to_request()).await.status(),
        StatusCode::FORBIDDEN
    );
    let bad = req("POST", "/login")
        .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
        .set_payload("%%%");
    assert_eq!(
        test::call_service(&app, bad.to_request()).await.status(),
        StatusCode::BAD_REQUEST
    );
}

#[actix_web::test]
async fn require_human_with_a_message_under_get() {
    let app = app!(ManualClock::new());
    assert_eq!(
        test::call_service(&app, req("GET", "/signup").to_request())
            .await
            .status(),
        StatusCode::OK
    );
    let res = test::call_service(
        &app,
        req("GET", "/signup")
            .insert_header(("x-test-flags", "tor"))
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = serde_json::from_slice(&test::read_body(res).await).unwrap();
    assert_eq!(body["detail"], "Humans only.");
    let res = test::call_service(
        &app,
        req("GET", "/signup")
            .insert_header(("x-test-score", "80"))
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn deny_flags_on_a_resource() {
    let app = app!(ManualClock::new());
    let call = |flags: &'static str| {
        req("GET", "/download")
            .insert_header(("x-test-flags", flags))
            .to_request()
    };
    assert_eq!(
        test::call_service(&app, call("tor")).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        test::call_service(&app, call("vpn")).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        test::call_service(&app, call("hosting")).await.status(),
        StatusCode::FORBIDDEN
    );
}

#[actix_web::test]
async fn stacked_human_and_deny_flags() {
    let app = app!(ManualClock::new());
    let call = |name: &'static str, value: &'static str| {
        req("GET", "/strict")
            .insert_header((name, value))
            .to_request()
    };
    assert_eq!(
        test::call_service(&app, call("x-test-score", "49"))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        test::call_service(&app, call("x-test-score", "50"))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        test::call_service(&app, call("x-test-flags", "bot"))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        test::call_service(&app, call("x-test-flags", "tor"))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
}

#[actix_web::test]
async fn a_rate_limit_without_a_ban_answers_429() {
    let clock = ManualClock::new();
    let app = app!(clock.clone());
    assert_eq!(
        test::call_service(&app, req("GET", "/tick").to_request())
            .await
            .status(),
        StatusCode::OK
    );
    let res = test::call_service(&app, req("GET", "/tick").to_request()).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.headers().get(header::RETRY_AFTER).unwrap(), "10");
    clock.advance(Duration::from_secs(10));
    assert_eq!(
        test::call_service(&app, req("GET", "/tick").to_request())
            .await
            .status(),
        StatusCode::OK
    );
}

mod account {
    use actix_bouncer::rate_limit;

    // Two handlers, one named limit: they count together.
    #[rate_limit(hits = 2, per = "1m", name = "account")]
    pub async fn rename() -> &'static str {
        "renamed"
    }

    #[rate_limit(hits = 2, per = "1m", name = "account")]
    pub async fn delete() -> &'static str {
        "deleted"
    }

    // No name: named after the module path and the function, wherever it sits in the file.
    #[rate_limit(hits = 1, per = "1m", ban_for = "1m")]
    pub async fn export() -> &'static str {
        "exported"
    }
}

/// Handler limits are named, not placed: the default name is the module path and function,
/// so moving code keeps its counters; handlers given the same name share them.
#[actix_web::test]
async fn handler_limits_have_stable_names() {
    let bouncer = bouncer(ManualClock::new());
    let app = test::init_service(
        App::new()
            .wrap(bouncer.clone())
            .route("/rename", web::post().to(account::rename))
            .route("/delete", web::post().to(account::delete))
            .route("/export", web::get().to(account::export)),
    )
    .await;
    let post = |path: &str| {
        test::TestRequest::post()
            .uri(path)
            .peer_addr("198.51.100.30:4000".parse().unwrap())
            .insert_header(("user-agent", BROWSER))
            .to_request()
    };
    assert_eq!(
        test::call_service(&app, post("/rename")).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        test::call_service(&app, post("/delete")).await.status(),
        StatusCode::OK
    );
    let res = test::call_service(&app, post("/rename")).await;
    assert_eq!(
        res.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the named limit is shared"
    );

    let get = || {
        test::TestRequest::get()
            .uri("/export")
            .peer_addr("198.51.100.31:4000".parse().unwrap())
            .insert_header(("user-agent", BROWSER))
            .to_request()
    };
    assert_eq!(
        test::call_service(&app, get()).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        test::call_service(&app, get()).await.status(),
        StatusCode::FORBIDDEN
    );
    let bans = bouncer.bans().await.unwrap();
    let id = actix_bouncer::guard::limit_id(concat!(module_path!(), "::account::export"));
    assert_eq!(bans.len(), 1, "{bans:?}");
    assert_eq!(&*bans[0].limit, format!("handler:{id:016x}"));
}

/// The global limit and every handler limit keep their keys in one bounded store: one sweeper,
/// one cap, and `tracked_keys` counts them all.
#[actix_web::test]
async fn every_limit_shares_one_bounded_store() {
    let bouncer = Bouncer::builder()
        .signal(test_signal)
        .limit(1_000_000, Duration::from_secs(60))
        .max_tracked_keys(64)
        .build()
        .unwrap();
    let app = test::init_service(
        App::new()
            .wrap(bouncer.clone())
            .route("/once", web::get().to(once_per_ten_seconds))
            .route("/export", web::get().to(account::export)),
    )
    .await;
    let from = |path: &str, i: u32| {
        test::TestRequest::get()
            .uri(path)
            .peer_addr(
                format!("10.1.{}.{}:4000", i / 250, i % 250)
                    .parse()
                    .unwrap(),
            )
            .insert_header(("user-agent", BROWSER))
            .to_request()
    };
    // One client, three limits: three keys in the one store.
    test::call_service(&app, from("/once", 0)).await;
    test::call_service(&app, from("/export", 0)).await;
    assert_eq!(bouncer.tracked_keys(), 3);
    // Many clients over every limit: never past the one cap.
    for i in 1..500 {
        test::call_service(&app, from("/once", i)).await;
        test::call_service(&app, from("/export", i)).await;
        assert!(bouncer.tracked_keys() <= 64, "{}", bouncer.tracked_keys());
    }
    assert_eq!(bouncer.tracked_keys(), 64);
}
