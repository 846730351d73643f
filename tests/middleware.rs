//! End-to-end behaviour of the global middleware, through real actix-web requests.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_bouncer::clock::ManualClock;
use actix_bouncer::events::{BouncerEvent, EventKind};
use actix_bouncer::{Bouncer, Flag, IpVerdict, Mode, NewRule, VerdictExt};
use actix_web::http::{header, StatusCode};
use actix_web::{test, web, App, HttpMessage, HttpRequest, HttpResponse};

/// An app behind `$bouncer` whose `/` answers the verdict as JSON.
macro_rules! app {
    ($bouncer:expr) => {
        test::init_service(App::new().wrap($bouncer).route(
            "/",
            web::get().to(|v: IpVerdict| async move { HttpResponse::Ok().json(v) }),
        ))
        .await
    };
}

fn peer(addr: &str) -> SocketAddr {
    addr.parse().unwrap()
}

/// A browser's User-Agent, so the User-Agent signal adds nothing to these tests' scores.
const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";

fn get(from: &str) -> test::TestRequest {
    test::TestRequest::get()
        .uri("/")
        .peer_addr(peer(from))
        .insert_header(("user-agent", BROWSER))
}

async fn verdict_of<S, B>(app: &S, req: test::TestRequest) -> serde_json::Value
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let res = test::call_service(app, req.to_request()).await;
    assert_eq!(res.status(), StatusCode::OK, "expected the request to pass");
    let body = test::read_body(res).await;
    serde_json::from_slice(&body).unwrap()
}

fn retry_after(res: &actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>) -> u64 {
    res.headers()
        .get(header::RETRY_AFTER)
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn problem(
    res: actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
) -> serde_json::Value {
    assert_eq!(
        res.headers().get(header::CONTENT_TYPE).unwrap(),
        "application/problem+json"
    );
    serde_json::from_slice(&test::read_body(res).await).unwrap()
}

// ---------------------------------------------------------------- client identity

#[actix_web::test]
async fn forged_forwarding_headers_from_an_untrusted_peer_are_ignored() {
    let bouncer = Bouncer::builder()
        .trusted_proxies(["10.0.0.0/8"])
        .ip_headers([
            actix_bouncer::client_ip::IpHeader::Forwarded,
            actix_bouncer::client_ip::IpHeader::XForwardedFor,
        ])
        .build()
        .unwrap();
    let app = app!(bouncer);
    let v = verdict_of(
        &app,
        get("198.51.100.20:5000")
            .insert_header(("X-Forwarded-For", "1.2.3.4"))
            .insert_header(("Forwarded", "for=5.6.7.8")),
    )
    .await;
    assert_eq!(v["ip"], "198.51.100.20");
}

#[actix_web::test]
async fn a_chain_through_two_trusted_proxies_yields_the_client() {
    let bouncer = Bouncer::builder()
        .trusted_proxies(["10.0.0.0/8", "192.0.2.10"])
        .build()
        .unwrap();
    let app = app!(bouncer);
    // The client forged a leftmost value; the edge proxy 192.0.2.10 appended the real client,
    // the inner proxy 10.1.1.1 appended the edge proxy and connected to us.
    let v = verdict_of(
        &app,
        get("10.1.1.1:5000")
            .insert_header(("X-Forwarded-For", "6.6.6.6, 203.0.113.50, 192.0.2.10")),
    )
    .await;
    assert_eq!(v["ip"], "203.0.113.50");

    let bouncer = Bouncer::builder()
        .trusted_proxies(["10.0.0.0/8", "192.0.2.10"])
        .ip_headers([actix_bouncer::client_ip::IpHeader::Forwarded])
        .build()
        .unwrap();
    let app = app!(bouncer);
    let v = verdict_of(
        &app,
        get("10.1.1.1:5000").insert_header((
            "Forwarded",
            r#"for=6.6.6.6, for="[2001:db8:cafe::17]:4711";proto=https, for=192.0.2.10"#,
        )),
    )
    .await;
    assert_eq!(v["ip"], "2001:db8:cafe::17");
    assert_eq!(v["key"], "2001:db8:cafe::/64");
}

#[actix_web::test]
async fn unusable_forwarding_headers_make_the_client_unknown_never_the_proxy() {
    let bouncer = Bouncer::builder()
        .trusted_proxies(["10.0.0.0/8"])
        .build()
        .unwrap();
    let app = app!(bouncer);
    let bytes = header::HeaderValue::from_bytes(b"1.2.3.4, \xff\xfe1.2.3.4").unwrap();
    for bad in [
        header::HeaderValue::from_static("not an ip"),
        header::HeaderValue::from_static("1.2.3.4, , "),
        header::HeaderValue::from_static("999.1.1.1"),
        bytes,
    ] {
        let v = verdict_of(
            &app,
            get("10.0.0.1:1").insert_header(("X-Forwarded-For", bad.clone())),
        )
        .await;
        assert_eq!(v["ip"], "0.0.0.0", "{bad:?}");
        assert_eq!(v["key"], "unknown@10.0.0.1", "{bad:?}");
        let reasons = v["reasons"].as_array().unwrap();
        assert!(
            reasons.iter().any(|r| {
                let r = r.as_str().unwrap();
                r.contains("client unknown") && r.contains("x-forwarded-for")
            }),
            "{bad:?}: {reasons:?}"
        );
    }
    // The proxy's own requests (no forwarding header) are the proxy's, under its own key.
    let v = verdict_of(&app, get("10.0.0.1:1")).await;
    assert_eq!(v["ip"], "10.0.0.1");
    assert_eq!(v["key"], "10.0.0.1");
}

#[actix_web::test]
async fn ipv6_clients_are_grouped_by_64() {
    let bouncer = Bouncer::builder()
        .limit(2, Duration::from_secs(60))
        .build()
        .unwrap();
    let app = app!(bouncer);
    let v = verdict_of(&app, get("[2001:db8:1:2::1]:80")).await;
    assert_eq!(v["key"], "2001:db8:1:2::/64");
    let v = verdict_of(&app, get("[2001:db8:1:2:ffff::9]:80")).await;
    assert_eq!(v["hits"], 2, "same /64, same counter");
    let res = test::call_service(&app, get("[2001:db8:1:2:abcd::1]:80").to_request()).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let v = verdict_of(&app, get("[2001:db8:1:3::1]:80")).await;
    assert_eq!(v["hits"], 1, "another /64 has its own counter");
    // IPv4-mapped peers count as IPv4.
    let v = verdict_of(&app, get("[::ffff:203.0.113.5]:80")).await;
    assert_eq!(v["ip"], "203.0.113.5");
}

// ---------------------------------------------------------------- limits and bans

#[actix_web::test]
async fn over_the_limit_answers_429_with_retry_after_then_recovers() {
    let clock = ManualClock::new();
    let bouncer = Bouncer::builder()
        .limit(3, Duration::from_secs(30))
        .clock(clock.clone())
        .build()
        .unwrap();
    let app = app!(bouncer);
    for n in 1..=3 {
        let v = verdict_of(&app, get("203.0.113.1:1")).await;
        assert_eq!(v["hits"], n);
    }
    let res = test::call_service(&app, get("203.0.113.1:1").to_request()).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after(&res), 10);
    let body = problem(res).await;
    assert_eq!(body["reason"], "rate_limited");
    assert_eq!(body["status"], 429);
    assert!(body.get("score").is_none() && body.get("reasons").is_none());

    clock.advance(Duration::from_secs(10));
    verdict_of(&app, get("203.0.113.1:1")).await;
}

#[actix_web::test]
async fn bans_last_longer_than_the_window_grow_and_expire() {
    let clock = ManualClock::new();
    let events = Arc::new(Mutex::new(Vec::<BouncerEvent>::new()));
    let sink = events.clone();
    let bouncer = Bouncer::builder()
        .limit(2, Duration::from_secs(10))
        .ban_for(Duration::from_secs(60))
        .ban_growth(3.0)
        .max_ban(Duration::from_secs(300))
        .clock(clock.clone())
        .on_event(move |e| sink.lock().unwrap().push(e.clone()))
        .build()
        .unwrap();
    let app = app!(bouncer);
    let ip = "198.51.100.7:1";

    let mut expected_bans = [60, 180, 300, 300].into_iter();
    for round in 0..4 {
        verdict_of(&app, get(ip)).await;
        verdict_of(&app, get(ip)).await;
        let res = test::call_service(&app, get(ip).to_request()).await;
        let ban = expected_bans.next().unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "round {round}");
        assert_eq!(retry_after(&res), ban, "round {round}");
        assert_eq!(problem(res).await["reason"], "banned");

        // Still banned just before the end, and hits are not passed on.
        clock.advance(Duration::from_secs(ban - 1));
        let res = test::call_service(&app, get(ip).to_request()).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert_eq!(retry_after(&res), 1);
        clock.advance(Duration::from_secs(1));
    }
    let events = events.lock().unwrap();
    let bans: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventKind::Banned)
        .collect();
    assert_eq!(bans.len(), 4);
    assert_eq!(bans[1].ban, Some(Duration::from_secs(180)));
    assert_eq!(bans[0].ip.to_string(), "198.51.100.7");
    assert_eq!(bans[0].method, "GET");
    assert_eq!(bans[0].path, "/");
    assert!(events.iter().any(|e| e.kind == EventKind::Blocked));
}

#[actix_web::test]
async fn an_allow_rule_beats_a_ban() {
    let clock = ManualClock::new();
    let bouncer = Bouncer::builder()
        .limit(1, Duration::from_secs(10))
        .ban_for(Duration::from_secs(600))
        .clock(clock.clone())
        .build()
        .unwrap();
    let app = app!(bouncer.clone());
    verdict_of(&app, get("192.0.2.44:1")).await;
    let res = test::call_service(&app, get("192.0.2.44:1").to_request()).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    bouncer
        .rules()
        .add(NewRule::allow("192.0.2.0/24".parse().unwrap()).comment("office"))
        .await
        .unwrap();
    for _ in 0..5 {
        let v = verdict_of(&app, get("192.0.2.44:1")).await;
        assert_eq!(v["flags"], serde_json::json!(["allowlisted"]));
        assert_eq!(v["score"], 0);
        assert_eq!(v["hits"], 0, "allowlisted clients are not counted");
    }
}

#[actix_web::test]
async fn block_rules_expire() {
    let clock = ManualClock::new();
    let bouncer = Bouncer::builder()
        .rule(
            NewRule::block("203.0.113.0/24".parse().unwrap())
                .expires_after(Duration::from_secs(120)),
        )
        .clock(clock.clone())
        .build()
        .unwrap();
    let app = app!(bouncer.clone());
    let res = test::call_service(&app, get("203.0.113.9:1").to_request()).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(retry_after(&res), 120);
    assert_eq!(problem(res).await["reason"], "blacklisted");

    clock.advance(Duration::from_secs(120));
    let v = verdict_of(&app, get("203.0.113.9:1")).await;
    assert_eq!(v["decision"], "allow");
    let listed = bouncer
        .rules()
        .list(actix_bouncer::rules::ListQuery::default())
        .await
        .unwrap();
    assert_eq!(listed.rules.len(), 1, "expired rules stay listed");
}

#[actix_web::test]
async fn user_rules_use_the_user_hook() {
    let bouncer = Bouncer::builder()
        .user(|req| {
            req.headers()
                .get("x-user")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .rule(NewRule::block("user:mallory".parse().unwrap()))
        .build()
        .unwrap();
    let app = app!(bouncer);
    let res = test::call_service(
        &app,
        get("198.51.100.1:1")
            .insert_header(("x-user", "mallory"))
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let v = verdict_of(
        &app,
        get("198.51.100.1:1").insert_header(("x-user", "alice")),
    )
    .await;
    assert_eq!(v["user"], "alice");
}

// ---------------------------------------------------------------- monitor mode, verdict, responses

#[actix_web::test]
async fn monitor_mode_blocks_nothing_and_reports_would_block() {
    let events = Arc::new(Mutex::new(Vec::<BouncerEvent>::new()));
    let sink = events.clone();
    let bouncer = Bouncer::builder()
        .mode(Mode::Monitor)
        .limit(1, Duration::from_secs(60))
        .ban_for(Duration::from_secs(600))
        .rule(NewRule::block("203.0.113.66".parse().unwrap()))
        .on_event(move |e| sink.lock().unwrap().push(e.clone()))
        .build()
        .unwrap();
    let app = app!(bouncer);
    let v = verdict_of(&app, get("203.0.113.66:1")).await;
    assert_eq!(v["decision"], "block");
    assert_eq!(v["blocked_by"], "blacklisted");
    assert_eq!(v["enforced"], false);
    assert_eq!(v["score"], 100);

    verdict_of(&app, get("198.51.100.2:1")).await;
    let v = verdict_of(&app, get("198.51.100.2:1")).await;
    assert_eq!(v["blocked_by"], "banned");
    let v = verdict_of(&app, get("198.51.100.2:1")).await;
    assert_eq!(v["flags"], serde_json::json!(["banned"]));

    let events = events.lock().unwrap();
    assert_eq!(events.len(), 3);
    assert!(events.iter().all(|e| e.kind == EventKind::WouldBlock));
    assert_eq!(events[1].ban, Some(Duration::from_secs(600)));
}

#[actix_web::test]
async fn the_verdict_reaches_handlers_three_ways() {
    let bouncer = Bouncer::new();
    let app = test::init_service(
        App::new()
            .wrap(bouncer)
            .route(
                "/ext",
                web::get().to(|req: HttpRequest| async move {
                    let score = req.verdict().map(|v| v.score());
                    let ext = req
                        .extensions()
                        .get::<IpVerdict>()
                        .map(|v| v.ip().to_string());
                    format!("{score:?} {ext:?}")
                }),
            )
            .route(
                "/extractor",
                web::get().to(|v: IpVerdict| async move { v.key().to_string() }),
            ),
    )
    .await;
    let req = test::TestRequest::get()
        .uri("/ext")
        .peer_addr(peer("192.0.2.1:1"))
        .insert_header(("user-agent", BROWSER));
    let body = test::call_and_read_body(&app, req.to_request()).await;
    assert_eq!(body, r#"Some(0) Some("192.0.2.1")"#);
    let req = test::TestRequest::get()
        .uri("/extractor")
        .peer_addr(peer("192.0.2.1:1"));
    assert_eq!(
        test::call_and_read_body(&app, req.to_request()).await,
        "192.0.2.1"
    );
}

#[actix_web::test]
async fn the_extractor_without_the_middleware_is_a_clear_500() {
    let app = test::init_service(App::new().route(
        "/",
        web::get().to(|v: IpVerdict| async move { v.ip().to_string() }),
    ))
    .await;
    let res = test::call_service(&app, get("192.0.2.1:1").to_request()).await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

#[actix_web::test]
async fn verdict_json_shape() {
    let bouncer = Bouncer::builder()
        .limit(4, Duration::from_secs(60))
        .build()
        .unwrap();
    let app = app!(bouncer);
    verdict_of(&app, get("192.0.2.9:1")).await;
    let v = verdict_of(&app, get("192.0.2.9:1")).await;
    assert_eq!(
        v,
        serde_json::json!({
            "ip": "192.0.2.9",
            "key": "192.0.2.9",
            "user": null,
            "score": 20,
            "decision": "allow",
            "blocked_by": null,
            "enforced": true,
            "flags": [],
            "reasons": ["rate usage 2/4 in the window (+20)"],
            "hits": 2,
            "provider": null
        })
    );
}

#[actix_web::test]
async fn a_custom_responder_replaces_the_body_and_keeps_retry_after() {
    let bouncer = Bouncer::builder()
        .limit(1, Duration::from_secs(60))
        .responder(|_req, rejection| {
            HttpResponse::build(rejection.status())
                .content_type("text/html")
                .body(format!("<h1>slow down ({})</h1>", rejection.reason()))
        })
        .build()
        .unwrap();
    let app = app!(bouncer);
    verdict_of(&app, get("192.0.2.9:1")).await;
    let res = test::call_service(&app, get("192.0.2.9:1").to_request()).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after(&res), 60);
    assert_eq!(
        test::read_body(res).await,
        "<h1>slow down (rate_limited)</h1>"
    );
}

#[actix_web::test]
async fn rate_limit_headers_are_opt_in() {
    let app = app!(Bouncer::builder()
        .limit(10, Duration::from_secs(60))
        .build()
        .unwrap());
    let res = test::call_service(&app, get("192.0.2.9:1").to_request()).await;
    assert!(res.headers().get("ratelimit").is_none());

    let app = app!(Bouncer::builder()
        .limit(10, Duration::from_secs(60))
        .rate_limit_headers(true)
        .build()
        .unwrap());
    let res = test::call_service(&app, get("192.0.2.9:1").to_request()).await;
    assert_eq!(
        res.headers().get("ratelimit-policy").unwrap(),
        r#""bouncer";q=10;w=60"#
    );
    assert_eq!(
        res.headers().get("ratelimit").unwrap(),
        r#""bouncer";r=9;t=6"#
    );
}

#[actix_web::test]
async fn the_risk_threshold_blocks_at_or_above() {
    // Rate usage alone reaches 40 points at a full window, so a threshold of 40 blocks there.
    let bouncer = Bouncer::builder()
        .limit(4, Duration::from_secs(60))
        .block_threshold(40)
        .build()
        .unwrap();
    let app = app!(bouncer);
    for _ in 0..3 {
        verdict_of(&app, get("192.0.2.9:1")).await;
    }
    let res = test::call_service(&app, get("192.0.2.9:1").to_request()).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        res.headers().get(header::RETRY_AFTER),
        None,
        "a risk block has no end"
    );
    assert_eq!(problem(res).await["reason"], "risk");
}

#[actix_web::test]
async fn blocked_requests_still_carry_the_verdict_for_outer_middleware() {
    use actix_web::dev::Service as _;
    let bouncer = Bouncer::builder()
        .rule(NewRule::block("192.0.2.0/24".parse().unwrap()))
        .build()
        .unwrap();
    let seen = Arc::new(Mutex::new(None));
    let seen2 = seen.clone();
    let app = test::init_service(
        // The last `wrap` is the outermost: this access-log stand-in runs around the bouncer.
        App::new()
            .wrap(bouncer)
            .wrap_fn(move |req, srv| {
                let fut = srv.call(req);
                let seen = seen2.clone();
                async move {
                    let res = fut.await?;
                    // `VerdictExt` on the response: what an access log reads after the handler.
                    *seen.lock().unwrap() = res.verdict().map(|v| v.blocked_by());
                    Ok(res)
                }
            })
            .route("/", web::get().to(HttpResponse::Ok)),
    )
    .await;
    let res = test::call_service(&app, get("192.0.2.1:1").to_request()).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        *seen.lock().unwrap(),
        Some(Some(actix_bouncer::BlockReason::Blacklisted))
    );
}

#[actix_web::test]
async fn unban_lifts_a_ban() {
    let bouncer = Bouncer::builder()
        .limit(1, Duration::from_secs(60))
        .ban_for(Duration::from_secs(600))
        .build()
        .unwrap();
    let app = app!(bouncer.clone());
    verdict_of(&app, get("192.0.2.3:1")).await;
    let res = test::call_service(&app, get("192.0.2.3:1").to_request()).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let key = bouncer.key_for("192.0.2.3".parse().unwrap());
    let bans = bouncer.bans().await.unwrap();
    assert_eq!(bans.len(), 1);
    assert_eq!(bans[0].key, actix_bouncer::limiter::BannedKey::Client(key));
    assert_eq!(&*bans[0].limit, "global");
    assert!(bans[0].remaining <= Duration::from_secs(600));
    assert!(bouncer.unban(key).await.unwrap());
    assert!(bouncer.bans().await.unwrap().is_empty());
    let v = verdict_of(&app, get("192.0.2.3:1")).await;
    assert!(!v["flags"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!(Flag::Banned.as_str())));
}

#[actix_web::test]
async fn a_request_without_a_peer_address_is_not_an_error() {
    let app = app!(Bouncer::new());
    let v = verdict_of(
        &app,
        test::TestRequest::get()
            .uri("/")
            .insert_header(("user-agent", BROWSER)),
    )
    .await;
    assert_eq!(v["ip"], "0.0.0.0");
    assert_eq!(v["key"], "unknown@unix");
}
