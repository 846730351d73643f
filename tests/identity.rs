//! Who the client is, tried as an attacker would: a client behind a trusted proxy must never
//! take the proxy's identity or privileges, however it shapes the forwarding header.
//!
//! The setup of every test: a trusted loopback proxy that appends the real client address on
//! the right (as nginx's `$proxy_add_x_forwarded_for` does), an allow rule covering the proxy's
//! own network, and an admin area open only to that network.

use std::time::Duration;

use actix_bouncer::{Bouncer, BouncerBuilder, IpVerdict, NewRule};
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::{test, web, App, HttpResponse};
use serde_json::Value;

mod common;
use common::BROWSER;

const PROXY: &str = "127.0.0.1:40000";

fn behind_loopback(headers: &[&str]) -> BouncerBuilder {
    Bouncer::builder()
        .trusted_proxies(["127.0.0.1", "::1"])
        .ip_headers(headers.iter().map(|h| h.parse().unwrap()))
        .rule(NewRule::allow("127.0.0.0/8".parse().unwrap()).comment("our own proxy"))
        .rule(NewRule::block("203.0.113.9".parse().unwrap()).comment("a known scraper"))
        .admin_paths(["/admin"])
        .admin_allow_only(["127.0.0.0/8"])
        .limit(2, Duration::from_secs(60))
        .ban_for(Duration::from_secs(600))
}

macro_rules! app {
    ($bouncer:expr) => {
        test::init_service(
            App::new()
                .wrap($bouncer)
                .route("/admin/", web::get().to(|| async { "admin area" }))
                .default_service(web::to(
                    |v: IpVerdict| async move { HttpResponse::Ok().json(v) },
                )),
        )
        .await
    };
}

fn via_proxy(path: &str, header: &str, value: &str) -> actix_http::Request {
    test::TestRequest::get()
        .uri(path)
        .peer_addr(PROXY.parse().unwrap())
        .insert_header(("user-agent", BROWSER))
        .insert_header((header, value))
        .to_request()
}

async fn call<S, B>(app: &S, req: actix_http::Request) -> (StatusCode, Value)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: actix_web::body::MessageBody,
{
    let res = test::call_service(app, req).await;
    let status = res.status();
    let body = test::read_body(res).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Client-written hops on the left, however many, never make the header unusable: the walk
/// reads from the right, and finds the address the proxy appended.
#[actix_web::test]
async fn padding_the_header_does_not_shed_a_block_a_ban_or_the_admin_policy() {
    let xff_pad = "1.1.1.1, ".repeat(2_000); // 18 KB, far past any whole-header cap
    let fwd_pad = "for=1.1.1.1, ".repeat(2_000);
    for (header, pad, hop) in [
        ("x-forwarded-for", &xff_pad, ""),
        ("forwarded", &fwd_pad, "for="),
    ] {
        let app = app!(behind_loopback(&[header]).build().unwrap());
        let padded = |client: &str| format!("{pad}{hop}{client}");

        // A blocked address stays blocked.
        let (status, body) = call(&app, via_proxy("/", header, &padded("203.0.113.9"))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{header}");
        assert_eq!(body["reason"], "blacklisted", "{header}");

        // A banned client keeps its ban.
        for _ in 0..2 {
            let (status, body) = call(&app, via_proxy("/", header, &padded("203.0.113.50"))).await;
            assert_eq!(status, StatusCode::OK, "{header}");
            assert_eq!(body["ip"], "203.0.113.50");
            assert_eq!(
                body["flags"],
                serde_json::json!([]),
                "not the proxy's allow rule"
            );
        }
        let (status, body) = call(&app, via_proxy("/", header, &padded("203.0.113.50"))).await;
        assert_eq!(
            (status, &body["reason"]),
            (StatusCode::FORBIDDEN, &"banned".into())
        );
        let (status, body) = call(&app, via_proxy("/", header, &padded("203.0.113.50"))).await;
        assert_eq!(
            (status, &body["reason"]),
            (StatusCode::FORBIDDEN, &"banned".into())
        );

        // The admin area stays closed to outside clients.
        let (status, body) =
            call(&app, via_proxy("/admin/", header, &padded("203.0.113.77"))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{header}");
        assert_eq!(body["reason"], "restricted");
    }
}

/// A hop the walk must read but cannot use: the client is unknown, and gets none of the
/// proxy's identity (its allow rule, its key) or privileges (the admin network allowlist).
#[actix_web::test]
async fn an_unusable_last_hop_makes_the_client_unknown_never_the_proxy() {
    let cases = [
        ("x-forwarded-for", "203.0.113.9, unknown"),
        ("x-forwarded-for", "203.0.113.9, _hidden"),
        ("x-forwarded-for", "203.0.113.9, fe80::1%eth0"),
        ("forwarded", "for=203.0.113.9, proto=https;by=_proxy"),
        ("forwarded", "for=203.0.113.9, for=unknown"),
    ];
    for (header, value) in cases {
        let app = app!(behind_loopback(&[header]).build().unwrap());
        let (status, v) = call(&app, via_proxy("/", header, value)).await;
        assert_eq!(status, StatusCode::OK, "{value}");
        assert_eq!(v["ip"], "0.0.0.0", "{value}");
        assert_eq!(v["key"], "unknown@127.0.0.1", "{value}");
        assert!(
            !v["flags"]
                .as_array()
                .unwrap()
                .contains(&"allowlisted".into()),
            "{value}: inherited the proxy's allow rule: {v}"
        );
        let reasons = v["reasons"].to_string();
        assert!(
            reasons.contains("client unknown") && reasons.contains(header),
            "{value}: {reasons}"
        );

        let (status, body) = call(&app, via_proxy("/admin/", header, value)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{value}");
        assert_eq!(body["reason"], "restricted", "{value}");

        // The proxy itself (no forwarding header) is still itself, and allowlisted.
        let own = test::TestRequest::get()
            .uri("/admin/")
            .peer_addr(PROXY.parse().unwrap())
            .insert_header(("user-agent", BROWSER))
            .to_request();
        let res = test::call_service(&app, own).await;
        assert_eq!(res.status(), StatusCode::OK);
    }
}

/// Unknown clients are counted under a key of their own: they can neither exhaust the proxy's
/// own budget nor borrow it.
#[actix_web::test]
async fn unknown_clients_share_no_counter_with_the_proxy() {
    let bouncer = Bouncer::builder()
        .trusted_proxies(["127.0.0.1"])
        .limit(2, Duration::from_secs(60))
        .build()
        .unwrap();
    let app = app!(bouncer);
    let unknown = || via_proxy("/", "x-forwarded-for", "unknown");
    for _ in 0..2 {
        assert_eq!(call(&app, unknown()).await.0, StatusCode::OK);
    }
    assert_eq!(call(&app, unknown()).await.0, StatusCode::TOO_MANY_REQUESTS);
    let own = test::TestRequest::get()
        .uri("/")
        .peer_addr(PROXY.parse().unwrap())
        .insert_header(("user-agent", BROWSER))
        .to_request();
    let (status, v) = call(&app, own).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["key"], "127.0.0.1");
    assert_eq!(v["hits"], 1);
}

fn over_unix_socket(header: Option<&str>) -> actix_http::Request {
    // actix gives connections on a Unix socket no peer address.
    let mut req = test::TestRequest::get()
        .uri("/")
        .insert_header(("user-agent", BROWSER));
    if let Some(value) = header {
        req = req.insert_header(("x-forwarded-for", value));
    }
    req.to_request()
}

/// Behind a Unix-socket proxy there is no peer address: without `"unix"` among the trusted
/// proxies every client is unknown (one key, and a reason saying what to configure); with it,
/// the proxy's forwarding header is read.
#[actix_web::test]
async fn a_unix_socket_proxy_can_be_trusted_by_name() {
    let untrusted = app!(Bouncer::builder()
        .rule(NewRule::block("203.0.113.9".parse().unwrap()))
        .build()
        .unwrap());
    let (status, v) = call(&untrusted, over_unix_socket(Some("203.0.113.9"))).await;
    assert_eq!(status, StatusCode::OK, "the forged header is not believed");
    assert_eq!(v["key"], "unknown@unix");
    let reasons = v["reasons"].to_string();
    assert!(
        reasons.contains("\\\"unix\\\""),
        "the reason says what to configure: {reasons}"
    );

    let trusted = app!(Bouncer::from_toml_str(
        r#"
        [client]
        trusted_proxies = ["unix"]
        [[rules]]
        target = "203.0.113.9"
        action = "block"
        "#
    )
    .unwrap());
    let (status, body) = call(
        &trusted,
        over_unix_socket(Some("198.51.100.1, 203.0.113.9")),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["reason"], "blacklisted");
    let (status, v) = call(&trusted, over_unix_socket(Some("198.51.100.7"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["ip"], "198.51.100.7");
    assert_eq!(v["key"], "198.51.100.7");
    // The proxy's own request on the socket names no client.
    let (_, v) = call(&trusted, over_unix_socket(None)).await;
    assert_eq!(v["key"], "unknown@unix");
}

/// The sample config follows the README's advice: behind a proxy that sets only
/// `X-Forwarded-For`, a client cannot claim an allowlisted address with a `Forwarded` header
/// of its own.
#[actix_web::test]
async fn the_example_config_believes_only_the_header_its_proxy_sets() {
    let bouncer = Bouncer::from_toml_file(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/bouncer.toml"
    ))
    .unwrap();
    let app = app!(bouncer);
    // 198.51.100.0/24 is the example's allowlisted partner network; 203.0.113.66 is blocked.
    let req = test::TestRequest::get()
        .uri("/")
        .peer_addr(PROXY.parse().unwrap())
        .insert_header(("user-agent", BROWSER))
        .insert_header(("forwarded", "for=198.51.100.7"))
        .insert_header(("x-forwarded-for", "203.0.113.66"))
        .to_request();
    let (status, body) = call(&app, req).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["reason"], "blacklisted");
}
