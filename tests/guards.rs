//! Route guards (extractors and the scope middleware) and the admin policy, through real
//! requests whose verdicts are shaped by rules, limits and a test signal.

mod common;
use common::{test_signal, BROWSER};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_bouncer::clock::ManualClock;
use actix_bouncer::events::{BouncerEvent, EventKind};
use actix_bouncer::guard::{
    limit_key, DenyFlags, GuardMessage, HandlerLimit, Human, LowRisk, ScopePolicy,
};
use actix_bouncer::{Bouncer, BouncerBuilder, Flag, Mode, NewRule};
use actix_web::dev::Payload;
use actix_web::http::{header, StatusCode};
use actix_web::{test, web, App, FromRequest, HttpRequest, HttpResponse};

/// A limit high enough that rate usage adds no points to the test scores.
fn bouncer() -> BouncerBuilder {
    Bouncer::builder()
        .signal(test_signal)
        .limit(1_000_000, Duration::from_secs(60))
}

fn get(path: &str) -> test::TestRequest {
    test::TestRequest::get()
        .uri(path)
        .peer_addr("198.51.100.10:4000".parse().unwrap())
        .insert_header(("user-agent", BROWSER))
}

async fn status<S, B>(app: &S, req: test::TestRequest) -> StatusCode
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    test::call_service(app, req.to_request()).await.status()
}

async fn body_json<S, B>(app: &S, req: test::TestRequest) -> (StatusCode, serde_json::Value)
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let res = test::call_service(app, req.to_request()).await;
    let status = res.status();
    let body = test::read_body(res).await;
    (
        status,
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    )
}

#[actix_web::test]
async fn low_risk_refuses_at_or_above_its_threshold() {
    let app = test::init_service(
        App::new()
            .wrap(bouncer().build().unwrap())
            .route("/", web::get().to(|_g: LowRisk<70>| async { "ok" })),
    )
    .await;
    assert_eq!(
        status(&app, get("/").insert_header(("x-test-score", "69"))).await,
        StatusCode::OK
    );
    let (code, body) = body_json(&app, get("/").insert_header(("x-test-score", "70"))).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert_eq!(body["reason"], "risk");
    assert_eq!(body["status"], 403);
    assert!(
        body.get("score").is_none(),
        "no internal signals in the body"
    );
}

#[actix_web::test]
async fn human_refuses_tor_always_and_high_scores() {
    let app = test::init_service(
        App::new()
            .wrap(bouncer().build().unwrap())
            .route("/default", web::get().to(|_g: Human| async { "ok" }))
            .route("/strict", web::get().to(|_g: Human<50>| async { "ok" })),
    )
    .await;
    assert_eq!(status(&app, get("/default")).await, StatusCode::OK);
    assert_eq!(
        status(&app, get("/default").insert_header(("x-test-flags", "tor"))).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status(&app, get("/default").insert_header(("x-test-flags", "vpn"))).await,
        StatusCode::OK
    );
    assert_eq!(
        status(&app, get("/default").insert_header(("x-test-score", "79"))).await,
        StatusCode::OK
    );
    assert_eq!(
        status(&app, get("/default").insert_header(("x-test-score", "80"))).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status(&app, get("/strict").insert_header(("x-test-score", "50"))).await,
        StatusCode::FORBIDDEN
    );
}

#[actix_web::test]
async fn deny_flags_refuses_only_the_listed_flags() {
    const MASK: u32 = Flag::Vpn.bit() | Flag::Hosting.bit();
    let app = test::init_service(
        App::new()
            .wrap(bouncer().build().unwrap())
            .route("/", web::get().to(|_g: DenyFlags<MASK>| async { "ok" })),
    )
    .await;
    assert_eq!(status(&app, get("/")).await, StatusCode::OK);
    assert_eq!(
        status(&app, get("/").insert_header(("x-test-flags", "tor"))).await,
        StatusCode::OK
    );
    assert_eq!(
        status(&app, get("/").insert_header(("x-test-flags", "hosting"))).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status(&app, get("/").insert_header(("x-test-flags", "tor,vpn"))).await,
        StatusCode::FORBIDDEN
    );
}

struct HumansOnly;
impl GuardMessage for HumansOnly {
    const MESSAGE: &'static str = "Humans only, \"please\".";
}

#[actix_web::test]
async fn a_guard_message_becomes_the_detail() {
    let app = test::init_service(App::new().wrap(bouncer().build().unwrap()).route(
        "/",
        web::get().to(|_g: LowRisk<10, HumansOnly>| async { "ok" }),
    ))
    .await;
    let (code, body) = body_json(&app, get("/").insert_header(("x-test-score", "10"))).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert_eq!(body["detail"], "Humans only, \"please\".");
    assert_eq!(body["title"], "Forbidden");
}

/// Stands in for a body extractor: like `web::Json`, its work happens when its future is
/// polled (actix builds every extractor's future first, then polls them in order).
struct Counted;
static BODY_EXTRACTED: AtomicUsize = AtomicUsize::new(0);
impl FromRequest for Counted {
    type Error = actix_web::Error;
    type Future = std::future::PollFn<
        fn(&mut std::task::Context<'_>) -> std::task::Poll<Result<Counted, actix_web::Error>>,
    >;
    fn from_request(_: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::poll_fn(|_| {
            BODY_EXTRACTED.fetch_add(1, Ordering::SeqCst);
            std::task::Poll::Ready(Ok(Counted))
        })
    }
}

#[actix_web::test]
async fn a_refused_request_never_reaches_body_extractors() {
    let app = test::init_service(
        App::new()
            .wrap(bouncer().build().unwrap())
            .route(
                "/json",
                web::post().to(
                    |_g: LowRisk<50>, body: web::Json<serde_json::Value>| async move {
                        body.to_string()
                    },
                ),
            )
            .route(
                "/counted",
                web::post().to(|_g: LowRisk<50>, _c: Counted| async { "ok" }),
            ),
    )
    .await;
    // Malformed JSON would be a 400 if the body were parsed; the guard answers first.
    let req = test::TestRequest::post()
        .uri("/json")
        .peer_addr("198.51.100.10:4000".parse().unwrap())
        .insert_header(("user-agent", BROWSER))
        .insert_header(("x-test-score", "60"))
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .set_payload("{not json");
    assert_eq!(status(&app, req).await, StatusCode::FORBIDDEN);

    let before = BODY_EXTRACTED.load(Ordering::SeqCst);
    let req = test::TestRequest::post()
        .uri("/counted")
        .peer_addr("198.51.100.10:4000".parse().unwrap())
        .insert_header(("user-agent", BROWSER))
        .insert_header(("x-test-score", "60"));
    assert_eq!(status(&app, req).await, StatusCode::FORBIDDEN);
    assert_eq!(
        BODY_EXTRACTED.load(Ordering::SeqCst),
        before,
        "the extractor after the guard ran"
    );
    let req = test::TestRequest::post()
        .uri("/counted")
        .peer_addr("198.51.100.10:4000".parse().unwrap())
        .insert_header(("user-agent", BROWSER));
    assert_eq!(status(&app, req).await, StatusCode::OK);
    assert_eq!(BODY_EXTRACTED.load(Ordering::SeqCst), before + 1);
}

type Login = HandlerLimit<2, 60_000, 600_000, { limit_key::IP }, 1>;
type Search = HandlerLimit<3, 60_000, 0, { limit_key::IP }, 2>;
type ByUser = HandlerLimit<1, 60_000, 0, { limit_key::USER }, 3>;

#[actix_web::test]
async fn handler_limits_count_per_handler_ban_and_expire() {
    let clock = ManualClock::new();
    let app = test::init_service(
        App::new()
            .wrap(bouncer().clock(clock.clone()).build().unwrap())
            .route("/login", web::get().to(|_l: Login| async { "ok" }))
            .route("/search", web::get().to(|_l: Search| async { "ok" })),
    )
    .await;
    assert_eq!(status(&app, get("/login")).await, StatusCode::OK);
    assert_eq!(status(&app, get("/login")).await, StatusCode::OK);
    let res = test::call_service(&app, get("/login").to_request()).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(res.headers().get(header::RETRY_AFTER).unwrap(), "600");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&test::read_body(res).await).unwrap()["reason"],
        "banned"
    );
    // Counters are separate per handler: the ban on /login leaves /search alone.
    for _ in 0..3 {
        assert_eq!(status(&app, get("/search")).await, StatusCode::OK);
    }
    let res = test::call_service(&app, get("/search").to_request()).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.headers().get(header::RETRY_AFTER).unwrap(), "20");

    clock.advance(Duration::from_secs(599));
    assert_eq!(status(&app, get("/login")).await, StatusCode::FORBIDDEN);
    clock.advance(Duration::from_secs(1));
    assert_eq!(status(&app, get("/login")).await, StatusCode::OK);
}

#[actix_web::test]
async fn a_user_keyed_limit_counts_users_not_addresses() {
    let app = test::init_service(
        App::new()
            .wrap(
                bouncer()
                    .user(|req| {
                        req.headers()
                            .get("x-user")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned)
                    })
                    .build()
                    .unwrap(),
            )
            .route("/", web::get().to(|_l: ByUser| async { "ok" })),
    )
    .await;
    let as_user = |user: &str| get("/").insert_header(("x-user", user.to_owned()));
    assert_eq!(status(&app, as_user("alice")).await, StatusCode::OK);
    assert_eq!(
        status(&app, as_user("alice")).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        status(&app, as_user("bob")).await,
        StatusCode::OK,
        "same address, other user"
    );
    // Anonymous requests are not counted by a `user` key.
    assert_eq!(status(&app, get("/")).await, StatusCode::OK);
    assert_eq!(status(&app, get("/")).await, StatusCode::OK);
}

#[actix_web::test]
async fn the_scope_guard_protects_every_route_under_it() {
    let app = test::init_service(
        App::new()
            .wrap(bouncer().build().unwrap())
            .service(
                web::scope("/api")
                    .wrap(
                        ScopePolicy::low_risk::<90>()
                            .deny(Flag::Tor)
                            .message("No API for you."),
                    )
                    .route("/data", web::get().to(HttpResponse::Ok)),
            )
            .route("/open", web::get().to(HttpResponse::Ok)),
    )
    .await;
    assert_eq!(status(&app, get("/api/data")).await, StatusCode::OK);
    let (code, body) = body_json(
        &app,
        get("/api/data").insert_header(("x-test-flags", "tor")),
    )
    .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert_eq!(body["detail"], "No API for you.");
    assert_eq!(
        status(&app, get("/api/data").insert_header(("x-test-score", "90"))).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status(&app, get("/open").insert_header(("x-test-flags", "tor"))).await,
        StatusCode::OK
    );
}

#[actix_web::test]
async fn allowlisted_clients_pass_every_guard() {
    let app = test::init_service(
        App::new()
            .wrap(
                bouncer()
                    .rule(NewRule::allow("198.51.100.0/24".parse().unwrap()))
                    .build()
                    .unwrap(),
            )
            .route(
                "/",
                web::get().to(
                    |_h: Human<10>,
                     _d: DenyFlags<{ Flag::Tor.bit() }>,
                     _l: HandlerLimit<1, 60_000, 0, 0, 9>| async { "ok" },
                ),
            ),
    )
    .await;
    // Allowlisted requests skip signals, so flags never get set; and handler limits skip them.
    for _ in 0..3 {
        assert_eq!(
            status(&app, get("/").insert_header(("x-test-flags", "tor"))).await,
            StatusCode::OK
        );
    }
}

#[actix_web::test]
async fn guards_without_the_middleware_fail_closed() {
    let app =
        test::init_service(App::new().route("/", web::get().to(|_g: LowRisk<70>| async { "ok" })))
            .await;
    assert_eq!(
        status(&app, get("/")).await,
        StatusCode::INTERNAL_SERVER_ERROR
    );
}

#[actix_web::test]
async fn monitor_mode_guards_only_log() {
    let events = Arc::new(Mutex::new(Vec::<BouncerEvent>::new()));
    let sink = events.clone();
    let app = test::init_service(
        App::new()
            .wrap(
                bouncer()
                    .mode(Mode::Monitor)
                    .on_event(move |e| sink.lock().unwrap().push(e.clone()))
                    .build()
                    .unwrap(),
            )
            .route("/", web::get().to(|_g: LowRisk<50>| async { "ok" })),
    )
    .await;
    assert_eq!(
        status(&app, get("/").insert_header(("x-test-score", "60"))).await,
        StatusCode::OK
    );
    let events = events.lock().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, EventKind::WouldBlock);
    assert!(!events[0].enforced);
}

#[actix_web::test]
async fn guard_refusals_use_the_bouncers_responder_and_emit_events() {
    let events = Arc::new(Mutex::new(Vec::<BouncerEvent>::new()));
    let sink = events.clone();
    let app = test::init_service(
        App::new()
            .wrap(
                bouncer()
                    .responder(|_req, r| {
                        HttpResponse::build(r.status()).body(format!("custom {}", r.reason()))
                    })
                    .on_event(move |e| sink.lock().unwrap().push(e.clone()))
                    .build()
                    .unwrap(),
            )
            .route("/", web::get().to(|_g: LowRisk<50>| async { "ok" })),
    )
    .await;
    let res = test::call_service(
        &app,
        get("/").insert_header(("x-test-score", "60")).to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(test::read_body(res).await, "custom risk");
    let events = events.lock().unwrap();
    assert_eq!(events[0].kind, EventKind::Blocked);
    assert_eq!(events[0].path, "/");
}

// ---------------------------------------------------------------- admin paths

fn admin_bouncer(events: Arc<Mutex<Vec<BouncerEvent>>>) -> Bouncer {
    bouncer()
        .admin_paths(["/admin"])
        .admin_max_score(60)
        .admin_deny([Flag::Tor, Flag::Vpn])
        .admin_allow_only(["198.51.100.0/24", "2001:db8::/32"])
        .on_event(move |e| events.lock().unwrap().push(e.clone()))
        .build()
        .unwrap()
}

#[actix_web::test]
async fn admin_paths_apply_the_stricter_policy_and_log_every_access() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let app = test::init_service(
        App::new()
            .wrap(admin_bouncer(events.clone()))
            .default_service(web::to(HttpResponse::Ok)),
    )
    .await;
    assert_eq!(status(&app, get("/admin/")).await, StatusCode::OK);
    assert_eq!(
        status(&app, get("/admin/").insert_header(("x-test-score", "59"))).await,
        StatusCode::OK
    );
    assert_eq!(
        status(&app, get("/admin/").insert_header(("x-test-score", "60"))).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status(&app, get("/admin/").insert_header(("x-test-flags", "vpn"))).await,
        StatusCode::FORBIDDEN
    );
    // The same score passes outside admin paths.
    assert_eq!(
        status(&app, get("/public").insert_header(("x-test-score", "60"))).await,
        StatusCode::OK
    );
    // allow_only: an address outside the networks is refused as `restricted`.
    let req = test::TestRequest::get()
        .uri("/admin/")
        .peer_addr("203.0.113.5:1".parse().unwrap());
    let (code, body) = body_json(&app, req).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert_eq!(body["reason"], "restricted");

    let events = events.lock().unwrap();
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::AdminAllowed,
            EventKind::AdminAllowed,
            EventKind::AdminRefused,
            EventKind::AdminRefused,
            EventKind::AdminRefused
        ]
    );
}

#[actix_web::test]
async fn admin_path_tricks_do_not_slip_past() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let app = test::init_service(
        App::new()
            .wrap(admin_bouncer(events))
            .default_service(web::to(HttpResponse::Ok)),
    )
    .await;
    for path in [
        "/admin",
        "//admin",
        "/admin/../admin",
        "/x/../admin/users",
        "/%61dmin/",
        "/%2561dmin/",
        "/ADMIN/",
        "/admin;x=1/",
        "/./admin",
        "/%zz/admin",
    ] {
        let req = test::TestRequest::get()
            .uri(path)
            .peer_addr("203.0.113.5:1".parse().unwrap())
            .insert_header(("user-agent", BROWSER));
        assert_eq!(
            status(&app, req).await,
            StatusCode::FORBIDDEN,
            "{path} slipped past"
        );
    }
    let req = test::TestRequest::get()
        .uri("/administrators")
        .peer_addr("203.0.113.5:1".parse().unwrap())
        .insert_header(("user-agent", BROWSER));
    assert_eq!(status(&app, req).await, StatusCode::OK);
}

// `test` here is actix's module (and attribute), so this synchronous test is async too.
#[actix_web::test]
async fn admin_config_errors_name_the_key() {
    for (toml, key) in [
        ("[admin]\npaths = [\"admin\"]", "admin.paths[0]"),
        (
            "[admin]\npaths = [\"/admin\"]\nmax_score = 0",
            "admin.max_score",
        ),
        (
            "[admin]\npaths = [\"/admin\"]\ndeny = [\"tor\", \"martian\"]",
            "admin.deny[1]",
        ),
        (
            "[admin]\npaths = [\"/admin\"]\nallow_only = [\"10.0.0.0/33\"]",
            "admin.allow_only[0]",
        ),
        (
            "[admin]\npaths = [\"/admin\"]\nfail = \"maybe\"",
            "admin.fail",
        ),
    ] {
        let e = Bouncer::from_toml_str(toml).unwrap_err();
        assert_eq!(e.key(), Some(key), "{toml}: {e}");
    }
    let e = Bouncer::from_toml_str("[admin]\npath = [\"/admin\"]").unwrap_err();
    assert!(e.to_string().contains("path"), "{e}");
    Bouncer::from_toml_str(
        "[admin]\npaths = [\"/admin\", \"/ops\"]\nmax_score = 60\ndeny = [\"tor\", \"vpn\"]\nallow_only = [\"10.0.0.0/8\"]\nfail = \"closed\"",
    )
    .unwrap();
}
