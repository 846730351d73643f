//! The admin JSON API through real HTTP requests, on the in-process rule store and on SQLite:
//! every route, validation, pagination, bearer auth, the disabled API, bans and the automatic
//! rules behind them, change events, the OpenAPI description, and store failures.

#![cfg(all(feature = "admin-api", feature = "sqlite"))]

mod common;

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use actix_bouncer::clock::{ManualClock, SystemClock};
use actix_bouncer::config::BouncerBuilder;
use actix_bouncer::events::{AdminAction, BouncerEvent, EventKind};
use actix_bouncer::limiter::{
    ActiveBan, CounterStore, LimitOutcome, LimitPolicy, LimitSlot, MemoryCounterStore, Subject,
};
use actix_bouncer::rules::{
    Changes, ListQuery, Loaded, MemoryRuleStore, Rule, RuleDraft, RuleId, RulePage, RuleSource,
    RuleStore, Seed, Seeded, Trim,
};
use actix_bouncer::{Bouncer, NewRule, RuleTarget, StoreError};
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header::{self, HeaderMap};
use actix_web::http::StatusCode;
use actix_web::{test, web, App, HttpResponse};
use serde_json::{json, Value};

const TOKEN: &str = "ops-token-0123456789abcdef";
const CI_TOKEN: &str = "ci-token-fedcba9876543210";
/// Where the operator's requests come from: allowlisted, so tight limits never touch them.
const OPERATOR: &str = "192.0.2.10";
/// Long enough for a loaded CI machine; the worker usually answers in milliseconds.
const DEADLINE: Duration = Duration::from_secs(5);

/// A builder with the two tokens and the operator allowlisted.
fn with_tokens(b: BouncerBuilder) -> BouncerBuilder {
    b.admin_token("ops", TOKEN)
        .admin_token("ci", CI_TOKEN)
        .rule(NewRule::allow(RuleTarget::ip(OPERATOR.parse().unwrap())))
}

/// The same bouncer on the in-process store and on SQLite.
fn on_each_store(
    configure: impl Fn(BouncerBuilder) -> BouncerBuilder,
) -> Vec<(&'static str, Bouncer)> {
    vec![
        ("memory", configure(Bouncer::builder()).build().unwrap()),
        (
            "sqlite",
            configure(Bouncer::builder().rule_store_url("sqlite::memory:"))
                .build()
                .unwrap(),
        ),
    ]
}

macro_rules! app {
    ($bouncer:expr) => {
        test::init_service(
            App::new()
                .wrap($bouncer.clone())
                .service($bouncer.admin_scope("/_bouncer"))
                .default_service(web::to(|| async { HttpResponse::Ok().body("app") })),
        )
        .await
    };
}

/// A request from the operator carrying `token` (none when `None`).
fn from_operator(method: &str, path: &str, token: Option<&str>) -> test::TestRequest {
    let req = test::TestRequest::default()
        .method(method.parse().unwrap())
        .uri(path)
        .peer_addr(format!("{OPERATOR}:40000").parse().unwrap())
        .insert_header(("user-agent", common::BROWSER));
    match token {
        Some(token) => req.insert_header((header::AUTHORIZATION, format!("Bearer {token}"))),
        None => req,
    }
}

/// An authorized request.
fn admin(method: &str, path: &str) -> test::TestRequest {
    from_operator(method, path, Some(TOKEN))
}

/// A client's request to the app.
fn visit(from: &str) -> actix_http::Request {
    let peer: SocketAddr = SocketAddr::new(from.parse().unwrap(), 40000);
    test::TestRequest::get()
        .uri("/")
        .peer_addr(peer)
        .insert_header(("user-agent", common::BROWSER))
        .to_request()
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
    json: Value,
}

async fn send<S, B>(app: &S, req: test::TestRequest) -> Answer
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let res = test::call_service(app, req.to_request()).await;
    let status = res.status();
    let headers = res.headers().clone();
    let body = test::read_body(res).await;
    let text = String::from_utf8_lossy(&body).into_owned();
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "{text}");
    Answer {
        status,
        headers,
        text,
        json,
    }
}

/// Asserts a problem+json answer with `status` (and `field`, when given).
fn assert_problem(answer: &Answer, status: StatusCode, field: Option<&str>, what: &str) {
    assert_eq!(answer.status, status, "{what}: {}", answer.text);
    assert_eq!(
        answer.headers.get(header::CONTENT_TYPE).unwrap(),
        "application/problem+json",
        "{what}"
    );
    assert_eq!(answer.json["status"], status.as_u16(), "{what}");
    assert_eq!(answer.json["type"], "about:blank", "{what}");
    assert!(answer.json["title"].is_string(), "{what}");
    assert!(answer.json["detail"].is_string(), "{what}");
    match field {
        Some(field) => assert_eq!(answer.json["field"], field, "{what}: {}", answer.text),
        None => assert!(
            answer.json.get("field").is_none(),
            "{what}: {}",
            answer.text
        ),
    }
}

/// Polls until `bouncer` lists an automatic rule on `target`.
async fn auto_rule_on(bouncer: &Bouncer, target: &str) -> Rule {
    let target: RuleTarget = target.parse().unwrap();
    let start = Instant::now();
    loop {
        let page = bouncer
            .rules()
            .list(
                ListQuery::first(10)
                    .source(RuleSource::Auto)
                    .target(target.clone()),
            )
            .await
            .unwrap();
        if let Some(rule) = page.rules.into_iter().next() {
            return rule;
        }
        assert!(start.elapsed() < DEADLINE, "no automatic rule on {target}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn rules_are_added_listed_and_removed() {
    for (store, bouncer) in on_each_store(with_tokens) {
        let app = app!(bouncer);

        let created = send(
            &app,
            admin("POST", "/_bouncer/rules").set_json(json!({
                "target": "203.0.113.0/24", "action": "block", "for": "1h", "comment": "scraper"
            })),
        )
        .await;
        assert_eq!(
            created.status,
            StatusCode::CREATED,
            "{store}: {}",
            created.text
        );
        let rule = &created.json;
        assert_eq!(rule["target"], "203.0.113.0/24", "{store}");
        assert_eq!(rule["action"], "block");
        assert_eq!(rule["source"], "manual");
        assert_eq!(rule["comment"], "scraper");
        assert!(rule["expires"].as_str().unwrap().ends_with('Z'));
        assert!(rule["created"].is_string());
        let block_id = rule["id"].as_u64().unwrap();
        let res = test::call_service(&app, visit("203.0.113.9")).await;
        assert_eq!(
            res.status(),
            StatusCode::FORBIDDEN,
            "{store}: the rule is in force"
        );

        let allow = send(
            &app,
            admin("POST", "/_bouncer/rules").set_json(json!({
                "target": "user:alice", "action": "allow", "expires": "2099-01-01T00:00:00Z"
            })),
        )
        .await;
        assert_eq!(allow.status, StatusCode::CREATED, "{}", allow.text);
        assert_eq!(allow.json["expires"], "2099-01-01T00:00:00Z");
        assert_eq!(allow.json["comment"], Value::Null);

        // The operator's own allow rule, from the config, is listed too.
        let all = send(&app, admin("GET", "/_bouncer/rules")).await;
        assert_eq!(all.status, StatusCode::OK, "{}", all.text);
        assert_eq!(all.json["rules"].as_array().unwrap().len(), 3, "{store}");
        assert_eq!(all.json["next"], Value::Null);
        for (query, expected) in [
            ("action=allow", 2),
            ("action=block", 1),
            ("target=user:alice", 1),
            ("target=203.0.113.0%2F24", 1),
            ("target=203.0.113.9", 0),
            ("source=manual", 2),
            ("source=config", 1),
            ("source=auto", 0),
            ("state=active", 3),
            ("state=expired", 0),
            ("source=manual&action=block&state=active", 1),
        ] {
            let page = send(&app, admin("GET", &format!("/_bouncer/rules?{query}"))).await;
            assert_eq!(page.status, StatusCode::OK, "{query}: {}", page.text);
            assert_eq!(
                page.json["rules"].as_array().unwrap().len(),
                expected,
                "{store}: {query}"
            );
        }

        let removed = send(
            &app,
            admin("DELETE", &format!("/_bouncer/rules/{block_id}")),
        )
        .await;
        assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.text);
        assert!(removed.text.is_empty());
        let res = test::call_service(&app, visit("203.0.113.9")).await;
        assert_eq!(res.status(), StatusCode::OK, "{store}: the rule is gone");
        let again = send(
            &app,
            admin("DELETE", &format!("/_bouncer/rules/{block_id}")),
        )
        .await;
        assert_problem(&again, StatusCode::NOT_FOUND, None, "a second delete");
        let absent = send(&app, admin("DELETE", "/_bouncer/rules/987654321")).await;
        assert_problem(&absent, StatusCode::NOT_FOUND, None, "an absent rule");
    }
}

#[actix_web::test]
async fn pages_follow_the_cursor() {
    for (store, bouncer) in on_each_store(with_tokens) {
        let app = app!(bouncer);
        for i in 1..=6 {
            let res = send(
                &app,
                admin("POST", "/_bouncer/rules")
                    .set_json(json!({ "target": format!("10.0.0.{i}"), "action": "block" })),
            )
            .await;
            assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
        }
        // 7 rules (with the operator's), 3 a page: 3, 3, 1.
        let mut seen = Vec::new();
        let mut pages = 0;
        let mut uri = "/_bouncer/rules?limit=3".to_owned();
        loop {
            let page = send(&app, admin("GET", &uri)).await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.text);
            pages += 1;
            let rules = page.json["rules"].as_array().unwrap();
            assert!(
                rules.len() <= 3 && !rules.is_empty(),
                "{store}: {}",
                page.text
            );
            seen.extend(rules.iter().map(|r| r["id"].as_u64().unwrap()));
            match page.json["next"].as_u64() {
                Some(next) => {
                    assert_eq!(Some(next), seen.last().copied());
                    uri = format!("/_bouncer/rules?limit=3&after={next}");
                }
                None => break,
            }
        }
        assert_eq!(pages, 3, "{store}");
        assert_eq!(seen.len(), 7, "{store}: {seen:?}");
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "ascending: {seen:?}");
        // The largest page holds them all; the cursor of the last rule gives an empty page.
        let big = send(&app, admin("GET", "/_bouncer/rules?limit=1000")).await;
        assert_eq!(big.json["rules"].as_array().unwrap().len(), 7);
        let last = seen.last().unwrap();
        let empty = send(&app, admin("GET", &format!("/_bouncer/rules?after={last}"))).await;
        assert_eq!(empty.json, json!({ "rules": [], "next": null }));
        // Filters and the cursor together.
        let page = send(&app, admin("GET", "/_bouncer/rules?action=block&limit=2")).await;
        let ids: Vec<u64> = page.json["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_u64().unwrap())
            .collect();
        assert_eq!(ids.len(), 2);
        assert_eq!(page.json["next"], ids[1]);
    }
}

#[actix_web::test]
async fn trim_removes_expired_rules() {
    let clock = ManualClock::new();
    let c = clock.clone();
    for (store, bouncer) in on_each_store(move |b| with_tokens(b).clock(c.clone())) {
        let app = app!(bouncer);
        for body in [
            json!({ "target": "198.51.100.1", "action": "block", "for": "1m" }),
            json!({ "target": "198.51.100.2", "action": "block", "for": "30d" }),
            json!({ "target": "198.51.100.3", "action": "block" }),
        ] {
            let res = send(&app, admin("POST", "/_bouncer/rules").set_json(body)).await;
            assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
        }
        clock.advance(Duration::from_secs(3600));
        let expired = send(&app, admin("GET", "/_bouncer/rules?state=expired")).await;
        assert_eq!(
            expired.json["rules"].as_array().unwrap().len(),
            1,
            "{store}"
        );
        // Expired an hour ago, not a week: kept.
        let kept = send(
            &app,
            admin("POST", "/_bouncer/trim")
                .set_json(json!({ "expired_days": 7, "created_days": 0 })),
        )
        .await;
        assert_eq!(kept.status, StatusCode::OK, "{}", kept.text);
        assert_eq!(kept.json, json!({ "removed": 0 }));
        // No body: every expired rule.
        let trimmed = send(&app, admin("POST", "/_bouncer/trim")).await;
        assert_eq!(
            trimmed.json,
            json!({ "removed": 1 }),
            "{store}: {}",
            trimmed.text
        );
        let trimmed = send(&app, admin("POST", "/_bouncer/trim").set_json(json!({}))).await;
        assert_eq!(trimmed.json, json!({ "removed": 0 }));
        let left = send(&app, admin("GET", "/_bouncer/rules")).await;
        assert_eq!(left.json["rules"].as_array().unwrap().len(), 3, "{store}");
    }
}

#[actix_web::test]
async fn validation_errors_name_the_field() {
    let clock =
        ManualClock::starting_at(SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000));
    let c = clock.clone();
    for (store, bouncer) in on_each_store(move |b| with_tokens(b).clock(c.clone())) {
        let app = app!(bouncer);
        let long_comment = "x".repeat(1025);
        let long_user = format!("user:{}", "u".repeat(600));
        for (body, field) in [
            (json!({ "action": "block" }), "target"),
            (json!({ "target": "", "action": "block" }), "target"),
            (json!({ "target": "nonsense", "action": "block" }), "target"),
            (
                json!({ "target": "10.1.2.3/8", "action": "block" }),
                "target",
            ),
            (
                json!({ "target": "203.0.113.0/33", "action": "block" }),
                "target",
            ),
            (json!({ "target": "user:", "action": "block" }), "target"),
            (
                json!({ "target": "user:a\u{0}b", "action": "block" }),
                "target",
            ),
            (json!({ "target": long_user, "action": "block" }), "target"),
            (json!({ "target": 7, "action": "block" }), "target"),
            (
                json!({ "target": ["10.0.0.1"], "action": "block" }),
                "target",
            ),
            (json!({ "target": "10.0.0.1" }), "action"),
            (json!({ "target": "10.0.0.1", "action": "deny" }), "action"),
            (json!({ "target": "10.0.0.1", "action": true }), "action"),
            (
                json!({ "target": "10.0.0.1", "action": "block", "expires": "soon" }),
                "expires",
            ),
            (
                json!({ "target": "10.0.0.1", "action": "block", "expires": "2030-01-01" }),
                "expires",
            ),
            (
                json!({ "target": "10.0.0.1", "action": "block", "expires": 1_900_000_000 }),
                "expires",
            ),
            // The manual clock stands in 2033: 2030 is past.
            (
                json!({ "target": "10.0.0.1", "action": "block", "expires": "2030-01-01T00:00:00Z" }),
                "expires",
            ),
            (
                json!({ "target": "10.0.0.1", "action": "block", "for": "a while" }),
                "for",
            ),
            (
                json!({ "target": "10.0.0.1", "action": "block", "for": "0s" }),
                "for",
            ),
            (
                json!({ "target": "10.0.0.1", "action": "block", "for": 60 }),
                "for",
            ),
            (
                json!({ "target": "10.0.0.1", "action": "block", "for": "1h", "expires": "2099-01-01T00:00:00Z" }),
                "for",
            ),
            (
                json!({ "target": "10.0.0.1", "action": "block", "comment": long_comment }),
                "comment",
            ),
            (
                json!({ "target": "10.0.0.1", "action": "block", "comment": "a\nb" }),
                "comment",
            ),
            (
                json!({ "target": "10.0.0.1", "action": "block", "comment": 5 }),
                "comment",
            ),
            (
                json!({ "target": "10.0.0.1", "action": "block", "source": "auto" }),
                "source",
            ),
            (
                json!({ "target": "10.0.0.1", "action": "block", "id": 1 }),
                "id",
            ),
        ] {
            let what = format!("{store}: {body}");
            let res = send(&app, admin("POST", "/_bouncer/rules").set_json(&body)).await;
            assert_problem(&res, StatusCode::BAD_REQUEST, Some(field), &what);
        }
        // Bodies that are not one JSON object.
        for (raw, content_type, status, what) in [
            (
                "{\"target\":",
                "application/json",
                StatusCode::BAD_REQUEST,
                "cut short",
            ),
            (
                "[1, 2]",
                "application/json",
                StatusCode::BAD_REQUEST,
                "an array",
            ),
            (
                "\"block\"",
                "application/json",
                StatusCode::BAD_REQUEST,
                "a string",
            ),
            ("null", "application/json", StatusCode::BAD_REQUEST, "null"),
            ("", "application/json", StatusCode::BAD_REQUEST, "empty"),
            (
                "{}{}",
                "application/json",
                StatusCode::BAD_REQUEST,
                "two objects",
            ),
            (
                r#"{"target":"10.0.0.1","action":"block"}"#,
                "text/plain",
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "not JSON",
            ),
            (
                "target=10.0.0.1&action=block",
                "application/x-www-form-urlencoded",
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "a form",
            ),
        ] {
            let res = send(
                &app,
                admin("POST", "/_bouncer/rules")
                    .insert_header((header::CONTENT_TYPE, content_type))
                    .set_payload(raw),
            )
            .await;
            assert_problem(&res, status, Some("body"), what);
        }
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let res = send(
            &app,
            admin("POST", "/_bouncer/rules")
                .insert_header((header::CONTENT_TYPE, "application/json"))
                .set_payload(deep),
        )
        .await;
        assert_problem(
            &res,
            StatusCode::PAYLOAD_TOO_LARGE,
            Some("body"),
            "too deep and long",
        );
        let deep = format!(
            r#"{{"target":{}{}}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        let res = send(
            &app,
            admin("POST", "/_bouncer/rules")
                .insert_header((header::CONTENT_TYPE, "application/json"))
                .set_payload(deep),
        )
        .await;
        assert_problem(
            &res,
            StatusCode::BAD_REQUEST,
            Some("body"),
            "nested too deep",
        );
        let huge =
            json!({ "target": "10.0.0.1", "action": "block", "comment": "x".repeat(70_000) });
        let res = send(&app, admin("POST", "/_bouncer/rules").set_json(huge)).await;
        assert_problem(
            &res,
            StatusCode::PAYLOAD_TOO_LARGE,
            Some("body"),
            "over 64 KiB",
        );
        // A member given twice is refused, not silently the last one.
        let res = send(
            &app,
            admin("POST", "/_bouncer/rules")
                .insert_header((header::CONTENT_TYPE, "application/json"))
                .set_payload(r#"{"target":"10.0.0.1","action":"allow","action":"block"}"#),
        )
        .await;
        assert_problem(
            &res,
            StatusCode::BAD_REQUEST,
            Some("action"),
            "a repeated member",
        );
        // The media type may carry parameters, or a +json suffix.
        let res = send(
            &app,
            admin("POST", "/_bouncer/rules")
                .insert_header((header::CONTENT_TYPE, "application/json; charset=utf-8"))
                .set_payload(r#"{"target":"10.0.0.1","action":"block"}"#),
        )
        .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);

        for (query, field) in [
            ("limit=0", "limit"),
            ("limit=1001", "limit"),
            ("limit=ten", "limit"),
            ("limit=", "limit"),
            ("limit=18446744073709551616", "limit"),
            ("after=x", "after"),
            ("after=-1", "after"),
            ("after=99999999999999999999", "after"),
            ("action=deny", "action"),
            ("source=cli", "source"),
            ("state=gone", "state"),
            ("target=nonsense", "target"),
            ("page=2", "page"),
            ("limit=5&limit=6", "limit"),
        ] {
            let res = send(&app, admin("GET", &format!("/_bouncer/rules?{query}"))).await;
            assert_problem(&res, StatusCode::BAD_REQUEST, Some(field), query);
        }
        for id in [
            "abc",
            "-1",
            "1.5",
            "%2e%2e",
            "99999999999999999999999",
            "%20",
        ] {
            let res = send(&app, admin("DELETE", &format!("/_bouncer/rules/{id}"))).await;
            assert_problem(&res, StatusCode::BAD_REQUEST, Some("id"), id);
        }
        for key in [
            "",
            "nonsense",
            "user:",
            "203.0.113.0%2F24",
            "2001:db8::%2F32",
            "1.2.3.4%0A",
        ] {
            let res = send(&app, admin("DELETE", &format!("/_bouncer/bans/{key}"))).await;
            assert_problem(&res, StatusCode::BAD_REQUEST, Some("key"), key);
        }
        for (body, field) in [
            (json!({ "expired_days": -1 }), "expired_days"),
            (json!({ "expired_days": "7" }), "expired_days"),
            (json!({ "created_days": 1.5 }), "created_days"),
            (json!({ "created_days": 4_294_967_296u64 }), "created_days"),
            (json!({ "days": 7 }), "days"),
        ] {
            let res = send(&app, admin("POST", "/_bouncer/trim").set_json(&body)).await;
            assert_problem(
                &res,
                StatusCode::BAD_REQUEST,
                Some(field),
                &body.to_string(),
            );
        }
        // Other methods, and paths the API does not have.
        let res = send(&app, admin("PUT", "/_bouncer/rules")).await;
        assert_problem(&res, StatusCode::METHOD_NOT_ALLOWED, None, "PUT /rules");
        assert_eq!(res.headers.get(header::ALLOW).unwrap(), "GET, POST");
        let res = send(&app, admin("GET", "/_bouncer/rules/1")).await;
        assert_problem(&res, StatusCode::METHOD_NOT_ALLOWED, None, "GET /rules/1");
        for path in [
            "/_bouncer/",
            "/_bouncer/nope",
            "/_bouncer/rules/1/2",
            "/_bouncer/../_bouncer/x",
        ] {
            let res = send(&app, admin("GET", path)).await;
            assert_problem(&res, StatusCode::NOT_FOUND, None, path);
        }
        // Nothing above added a rule but the one valid request.
        let all = send(&app, admin("GET", "/_bouncer/rules?source=manual")).await;
        assert_eq!(all.json["rules"].as_array().unwrap().len(), 1, "{store}");
    }
}

#[actix_web::test]
async fn every_route_refuses_a_bad_token_with_401() {
    let bouncer = with_tokens(Bouncer::builder()).build().unwrap();
    let app = app!(bouncer);
    let near_miss = {
        let mut t = TOKEN.to_owned();
        t.pop();
        t.push('0');
        t
    };
    let mut variants: Vec<(&str, Vec<String>)> = vec![
        ("missing", vec![]),
        ("wrong", vec!["Bearer not-the-token-at-all-000".into()]),
        ("one char off", vec![format!("Bearer {near_miss}")]),
        (
            "a prefix",
            vec![format!("Bearer {}", &TOKEN[..TOKEN.len() - 1])],
        ),
        ("an extra char", vec![format!("Bearer {TOKEN}x")]),
        ("another scheme", vec![format!("Basic {TOKEN}")]),
        ("a made-up scheme", vec![format!("Token {TOKEN}")]),
        ("no scheme", vec![TOKEN.into()]),
        ("no space", vec![format!("Bearer{TOKEN}")]),
        ("empty", vec!["Bearer ".into()]),
        ("the scheme alone", vec!["Bearer".into()]),
        ("an empty header", vec![String::new()]),
        (
            "twice",
            vec![format!("Bearer {TOKEN}"), format!("Bearer {TOKEN}")],
        ),
        ("the digest", vec![format!("Bearer {}", "0".repeat(64))]),
    ];
    variants.push((
        "the token in capitals",
        vec![format!("Bearer {}", TOKEN.to_uppercase())],
    ));
    let routes: [(&str, &str, Option<Value>); 9] = [
        ("GET", "/_bouncer/rules", None),
        (
            "POST",
            "/_bouncer/rules",
            Some(json!({ "target": "10.9.9.9", "action": "block" })),
        ),
        ("DELETE", "/_bouncer/rules/1", None),
        ("GET", "/_bouncer/bans", None),
        ("DELETE", "/_bouncer/bans/203.0.113.7", None),
        ("POST", "/_bouncer/trim", Some(json!({}))),
        ("GET", "/_bouncer/openapi.json", None),
        ("GET", "/_bouncer/unknown", None),
        ("PUT", "/_bouncer/rules", None),
    ];
    for (what, values) in &variants {
        for (method, path, body) in &routes {
            // Every time: a refusal never turns into anything else on a retry.
            for _ in 0..2 {
                let mut req = from_operator(method, path, None);
                for value in values {
                    req = req.append_header((header::AUTHORIZATION, value.as_str()));
                }
                if let Some(body) = body {
                    req = req.set_json(body);
                }
                let res = send(&app, req).await;
                let context = format!("{what}: {method} {path}");
                assert_problem(&res, StatusCode::UNAUTHORIZED, None, &context);
                let challenge = res
                    .headers
                    .get(header::WWW_AUTHENTICATE)
                    .unwrap()
                    .to_str()
                    .unwrap();
                assert!(challenge.starts_with("Bearer"), "{context}: {challenge}");
                assert!(!res.text.contains(TOKEN), "{context}");
            }
        }
    }
    // Nothing got through.
    assert!(bouncer
        .rules()
        .check("10.9.9.9".parse().unwrap(), None)
        .block
        .is_none());
    // The scheme is case-insensitive (RFC 7235); both tokens open the API.
    for value in [
        format!("bearer {TOKEN}"),
        format!("BEARER {TOKEN}"),
        format!("Bearer   {TOKEN}"),
        format!("Bearer {CI_TOKEN}"),
    ] {
        let res = send(
            &app,
            from_operator("GET", "/_bouncer/rules", None)
                .insert_header((header::AUTHORIZATION, value.as_str())),
        )
        .await;
        assert_eq!(res.status, StatusCode::OK, "{value}: {}", res.text);
    }
}

#[actix_web::test]
async fn without_a_token_the_api_is_disabled() {
    let (log, _guard) = common::capture();
    let plain = Bouncer::new();
    // A token whose variable is unset is skipped: still no token.
    let unset = Bouncer::builder()
        .admin_token_env("ops", "ACTIX_BOUNCER_TEST_ADMIN_TOKEN_NEVER_SET")
        .build()
        .unwrap();
    let from_toml = Bouncer::from_toml_str(
        r#"
        [admin_api]
        [[admin_api.tokens]]
        name = "ops"
        env = "ACTIX_BOUNCER_TEST_ADMIN_TOKEN_NEVER_SET"
        "#,
    )
    .unwrap();
    let empty_section = Bouncer::from_toml_str("[admin_api]\ntokens = []\n").unwrap();
    for bouncer in [&plain, &unset, &from_toml, &empty_section] {
        let app = app!(bouncer);
        for (method, path) in [
            ("GET", "/_bouncer/rules"),
            ("POST", "/_bouncer/rules"),
            ("DELETE", "/_bouncer/rules/1"),
            ("GET", "/_bouncer/bans"),
            ("DELETE", "/_bouncer/bans/203.0.113.7"),
            ("POST", "/_bouncer/trim"),
            ("GET", "/_bouncer/openapi.json"),
            ("GET", "/_bouncer"),
        ] {
            for token in [None, Some(TOKEN)] {
                let res = send(&app, from_operator(method, path, token)).await;
                assert_problem(&res, StatusCode::NOT_FOUND, None, path);
                assert!(!res.headers.contains_key(header::WWW_AUTHENTICATE));
            }
        }
        // The rest of the app is untouched.
        let res = test::call_service(&app, visit("203.0.113.7")).await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    // One warning per bouncer, however many workers build the scope.
    let _ = plain.admin_scope("/_bouncer");
    let lines = log.lines();
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("WARN") && l.contains("admin API at /_bouncer is disabled"))
            .count(),
        4,
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("ACTIX_BOUNCER_TEST_ADMIN_TOKEN_NEVER_SET")),
        "the skipped token is named: {lines:#?}"
    );
}

#[actix_web::test]
async fn lifting_a_ban_removes_it_and_its_automatic_rule() {
    for (store, bouncer) in on_each_store(|b| {
        with_tokens(b)
            .limit(1, Duration::from_secs(60))
            .ban_for(Duration::from_secs(600))
            .auto_rules(true)
    }) {
        let app = app!(bouncer);
        let empty = send(&app, admin("GET", "/_bouncer/bans")).await;
        assert_eq!(empty.json, json!({ "bans": [] }), "{store}: {}", empty.text);

        // Over the limit: banned here, and an automatic rule for every instance.
        assert_eq!(
            test::call_service(&app, visit("203.0.113.7"))
                .await
                .status(),
            StatusCode::OK
        );
        let res = test::call_service(&app, visit("203.0.113.7")).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{store}");
        let rule = auto_rule_on(&bouncer, "203.0.113.7").await;

        let bans = send(&app, admin("GET", "/_bouncer/bans")).await;
        assert_eq!(bans.status, StatusCode::OK, "{}", bans.text);
        let list = bans.json["bans"].as_array().unwrap();
        assert_eq!(list.len(), 1, "{store}: {}", bans.text);
        let ban = &list[0];
        assert_eq!(ban["key"], "203.0.113.7");
        assert_eq!(ban["kind"], "client");
        assert_eq!(ban["limit"], "global");
        assert_eq!(ban["offence"], 1);
        let remaining = ban["remaining_secs"].as_u64().unwrap();
        assert!((590..=600).contains(&remaining), "{remaining}");
        let until = ban["until"].as_str().unwrap();
        time::OffsetDateTime::parse(until, &time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|e| panic!("{until}: {e}"));

        let lifted = send(&app, admin("DELETE", "/_bouncer/bans/203.0.113.7")).await;
        assert_eq!(lifted.status, StatusCode::OK, "{}", lifted.text);
        assert_eq!(
            lifted.json,
            json!({ "unbanned": true, "rules_removed": [rule.id.0] }),
            "{store}"
        );
        let bans = send(&app, admin("GET", "/_bouncer/bans")).await;
        assert_eq!(bans.json, json!({ "bans": [] }));
        let left = bouncer
            .rules()
            .list(ListQuery::default().source(RuleSource::Auto))
            .await
            .unwrap();
        assert!(left.rules.is_empty(), "{store}: {left:?}");
        let res = test::call_service(&app, visit("203.0.113.7")).await;
        assert_eq!(res.status(), StatusCode::OK, "{store}: the client is back");
        // Again: nothing left to do, and no error.
        let again = send(&app, admin("DELETE", "/_bouncer/bans/203.0.113.7")).await;
        assert_eq!(again.json["rules_removed"], json!([]), "{}", again.text);
    }
}

#[actix_web::test]
async fn network_and_user_keys_are_lifted() {
    for (store, bouncer) in on_each_store(with_tokens) {
        let app = app!(bouncer);
        let ip: IpAddr = "2001:db8:1:2::7".parse().unwrap();
        // The key of a /64, sent with its slash as is, and percent-encoded.
        for path in [
            "/_bouncer/bans/2001:db8:1:2::/64",
            "/_bouncer/bans/2001:db8:1:2::%2F64",
        ] {
            bouncer
                .ban(bouncer.key_for(ip), Duration::from_secs(600))
                .await
                .unwrap();
            let res = test::call_service(&app, visit("2001:db8:1:2::9")).await;
            assert_eq!(res.status(), StatusCode::FORBIDDEN, "{store}: banned");
            let bans = send(&app, admin("GET", "/_bouncer/bans")).await;
            assert_eq!(bans.json["bans"][0]["key"], "2001:db8:1:2::/64");
            let lifted = send(&app, admin("DELETE", path)).await;
            assert_eq!(lifted.status, StatusCode::OK, "{path}: {}", lifted.text);
            assert_eq!(
                lifted.json,
                json!({ "unbanned": true, "rules_removed": [] })
            );
            let res = test::call_service(&app, visit("2001:db8:1:2::9")).await;
            assert_eq!(
                res.status(),
                StatusCode::OK,
                "{store}: {path} lifted the ban"
            );
        }
        // An address stands for its key.
        bouncer
            .ban(bouncer.key_for(ip), Duration::from_secs(600))
            .await
            .unwrap();
        let lifted = send(&app, admin("DELETE", "/_bouncer/bans/2001:db8:1:2::1234")).await;
        assert_eq!(lifted.json["unbanned"], true, "{}", lifted.text);
        // A user never seen: nothing tracked, but its automatic rules go.
        let rule = bouncer
            .rules()
            .add(NewRule::block(RuleTarget::User("mallory".into())).source(RuleSource::Auto))
            .await
            .unwrap();
        let lifted = send(&app, admin("DELETE", "/_bouncer/bans/user:mallory")).await;
        assert_eq!(
            lifted.json,
            json!({ "unbanned": false, "rules_removed": [rule.id.0] }),
            "{store}: {}",
            lifted.text
        );
        assert!(bouncer.rules().check(ip, Some("mallory")).block.is_none());
    }
}

#[actix_web::test]
async fn every_change_is_an_event_naming_its_token() {
    let (log, _guard) = common::capture();
    let events: Arc<Mutex<Vec<BouncerEvent>>> = Arc::default();
    let sink = Arc::clone(&events);
    let bouncer = with_tokens(Bouncer::builder())
        .on_event(move |e: &BouncerEvent| sink.lock().unwrap().push(e.clone()))
        .build()
        .unwrap();
    let app = app!(bouncer);
    let changes = || -> Vec<BouncerEvent> {
        events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.kind == EventKind::AdminChange)
            .cloned()
            .collect()
    };

    // Reads and refused changes are no changes.
    send(&app, admin("GET", "/_bouncer/rules")).await;
    send(&app, admin("GET", "/_bouncer/bans")).await;
    send(
        &app,
        admin("POST", "/_bouncer/rules").set_json(json!({ "target": "x" })),
    )
    .await;
    send(&app, admin("DELETE", "/_bouncer/rules/999")).await;
    send(
        &app,
        from_operator("POST", "/_bouncer/rules", Some(&TOKEN[1..]))
            .set_json(json!({ "target": "10.0.0.1", "action": "block" })),
    )
    .await;
    assert!(changes().is_empty(), "{:?}", changes());

    let added = send(
        &app,
        admin("POST", "/_bouncer/rules")
            .set_json(json!({ "target": "203.0.113.0/24", "action": "block" })),
    )
    .await;
    let id = added.json["id"].as_u64().unwrap();
    send(&app, admin("DELETE", &format!("/_bouncer/rules/{id}"))).await;
    send(
        &app,
        from_operator("DELETE", "/_bouncer/bans/203.0.113.7", Some(CI_TOKEN)),
    )
    .await;
    send(
        &app,
        from_operator("POST", "/_bouncer/trim", Some(CI_TOKEN)),
    )
    .await;

    let changes = changes();
    let summary: Vec<(String, AdminAction)> = changes
        .iter()
        .map(|e| {
            let change = e.change.as_ref().unwrap();
            (change.actor.clone(), change.action)
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("ops".to_owned(), AdminAction::RuleAdded),
            ("ops".to_owned(), AdminAction::RuleRemoved),
            ("ci".to_owned(), AdminAction::Unbanned),
            ("ci".to_owned(), AdminAction::Trimmed),
        ]
    );
    let detail = |i: usize| changes[i].change.as_ref().unwrap().detail.clone();
    assert!(
        detail(0).contains(&format!("#{id}")) && detail(0).contains("203.0.113.0/24"),
        "{}",
        detail(0)
    );
    assert!(detail(1).contains(&format!("#{id}")), "{}", detail(1));
    assert!(detail(2).contains("203.0.113.7"), "{}", detail(2));
    assert!(detail(3).contains("0 removed"), "{}", detail(3));
    let first = &changes[0];
    assert_eq!(first.ip, OPERATOR.parse::<IpAddr>().unwrap());
    assert_eq!(first.method, "POST");
    assert_eq!(first.path, "/_bouncer/rules");
    assert_eq!(first.reason, None);
    let as_json = serde_json::to_value(first).unwrap();
    assert_eq!(as_json["kind"], "admin_change");
    assert_eq!(as_json["change"]["actor"], "ops");
    assert_eq!(as_json["change"]["action"], "rule_added");
    // Request events keep their shape: no `change` member.
    let blocked = bouncer
        .rules()
        .add(NewRule::block(RuleTarget::ip(
            "198.51.100.9".parse().unwrap(),
        )))
        .await
        .unwrap();
    test::call_service(&app, visit("198.51.100.9")).await;
    let request_event = events
        .lock()
        .unwrap()
        .iter()
        .find(|e| e.kind == EventKind::Blocked)
        .cloned()
        .unwrap_or_else(|| panic!("no blocked event for rule {}", blocked.id));
    assert!(serde_json::to_value(&request_event)
        .unwrap()
        .get("change")
        .is_none());

    // The tracing sink saw them too, with who and what, and never a token.
    let lines = log.lines();
    let logged: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("admin API change"))
        .collect();
    assert_eq!(logged.len(), 4, "{lines:#?}");
    assert!(
        logged[0].contains("actor=ops") && logged[0].contains("action=\"rule_added\""),
        "{}",
        logged[0]
    );
    assert!(logged[3].contains("actor=ci"), "{}", logged[3]);
    assert!(lines
        .iter()
        .all(|l| !l.contains(TOKEN) && !l.contains(CI_TOKEN)));
}

#[actix_web::test]
async fn openapi_describes_every_route_and_the_bearer_scheme() {
    let bouncer = with_tokens(Bouncer::builder()).build().unwrap();
    let app = test::init_service(
        App::new()
            .service(bouncer.admin_scope("/_bouncer"))
            .service(web::scope("/ops").service(bouncer.admin_scope("/bouncer"))),
    )
    .await;
    let res = send(&app, admin("GET", "/_bouncer/openapi.json")).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(
        res.headers.get(header::CONTENT_TYPE).unwrap(),
        "application/json"
    );
    let doc = &res.json;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    for (path, methods) in [
        ("/rules", &["get", "post"][..]),
        ("/rules/{id}", &["delete"][..]),
        ("/bans", &["get"][..]),
        ("/bans/{key}", &["delete"][..]),
        ("/trim", &["post"][..]),
        ("/openapi.json", &["get"][..]),
    ] {
        let item = doc["paths"][path]
            .as_object()
            .unwrap_or_else(|| panic!("{path} missing"));
        for method in methods {
            let op = &item[*method];
            assert!(op.is_object(), "{method} {path}");
            assert!(
                op["responses"]["401"].is_object(),
                "{method} {path} documents 401"
            );
        }
    }
    assert_eq!(doc["paths"].as_object().unwrap().len(), 6);
    let scheme = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "bearer");
    assert_eq!(doc["security"], json!([{ "bearer": [] }]));
    assert_eq!(doc["servers"][0]["url"], "/_bouncer");
    let params: Vec<&str> = doc["paths"]["/rules"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        params,
        ["target", "action", "source", "state", "after", "limit"]
    );
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for schema in [
        "Rule",
        "RulePage",
        "CreateRule",
        "Trim",
        "Bans",
        "Unbanned",
        "Problem",
    ] {
        assert!(schemas.contains_key(schema), "{schema}");
    }
    assert!(schemas["CreateRule"]["properties"]["for"].is_object());
    assert!(schemas["Problem"]["properties"]["field"].is_object());
    // Mounted inside another scope: the server is where it really is.
    let nested = send(&app, admin("GET", "/ops/bouncer/openapi.json")).await;
    assert_eq!(nested.json["servers"][0]["url"], "/ops/bouncer");
    // The same description, in code.
    let in_code = serde_json::to_value(actix_bouncer::admin_api::openapi()).unwrap();
    assert_eq!(in_code["paths"], doc["paths"]);
}

/// A rule store that fails on demand with an error holding a secret.
#[derive(Clone, Default)]
struct Flaky {
    rules: MemoryRuleStore,
    failing: Arc<AtomicBool>,
}

const SECRET: &str = "password=hunter2 host=db.internal";

impl Flaky {
    fn check(&self) -> Result<(), StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            Err(StoreError::new(SECRET))
        } else {
            Ok(())
        }
    }
}

impl RuleStore for Flaky {
    async fn insert(&self, rules: Vec<RuleDraft>) -> Result<Vec<Rule>, StoreError> {
        self.check()?;
        self.rules.insert(rules).await
    }
    async fn delete(&self, id: RuleId) -> Result<Option<Rule>, StoreError> {
        self.check()?;
        self.rules.delete(id).await
    }
    async fn get(&self, id: RuleId) -> Result<Option<Rule>, StoreError> {
        self.check()?;
        self.rules.get(id).await
    }
    async fn list(&self, query: ListQuery, now: SystemTime) -> Result<RulePage, StoreError> {
        self.check()?;
        self.rules.list(query, now).await
    }
    async fn active(&self, now: SystemTime) -> Result<Loaded, StoreError> {
        self.rules.active(now).await
    }
    async fn changes_since(&self, version: u64) -> Result<Changes, StoreError> {
        self.rules.changes_since(version).await
    }
    async fn trim(&self, trim: Trim, now: SystemTime) -> Result<u64, StoreError> {
        self.check()?;
        self.rules.trim(trim, now).await
    }
    async fn seed(&self, seeds: Vec<Seed>) -> Result<Seeded, StoreError> {
        self.rules.seed(seeds).await
    }
}

/// A counter store whose operator calls fail on demand.
#[derive(Clone)]
struct FlakyCounters {
    counters: MemoryCounterStore,
    failing: Arc<AtomicBool>,
}

impl CounterStore for FlakyCounters {
    fn register(&self, name: &str, policy: &LimitPolicy) -> LimitSlot {
        self.counters.register(name, policy)
    }
    fn hit(&self, limit: LimitSlot, subject: Subject<'_>) -> LimitOutcome {
        self.counters.hit(limit, subject)
    }
    async fn ban(
        &self,
        limit: LimitSlot,
        subject: Subject<'_>,
        length: Duration,
    ) -> Result<(), StoreError> {
        self.counters.ban(limit, subject, length).await
    }
    async fn unban(&self, subject: Subject<'_>) -> Result<bool, StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::new(SECRET));
        }
        self.counters.unban(subject).await
    }
    async fn bans(&self) -> Result<Vec<ActiveBan>, StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::new(SECRET));
        }
        self.counters.bans().await
    }
    fn tracked_keys(&self) -> usize {
        self.counters.tracked_keys()
    }
}

#[actix_web::test]
async fn store_failures_answer_503_without_their_text() {
    let (log, _guard) = common::capture();
    let store = Flaky::default();
    let failing = Arc::clone(&store.failing);
    let counters = FlakyCounters {
        counters: MemoryCounterStore::new(
            NonZeroUsize::new(1000).unwrap(),
            Arc::new(SystemClock::new()),
        ),
        failing: Arc::clone(&failing),
    };
    let bouncer = with_tokens(Bouncer::builder())
        .rule_store(store)
        .counter_store(counters)
        .build()
        .unwrap();
    let app = app!(bouncer);
    let ok = send(&app, admin("GET", "/_bouncer/rules")).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);

    failing.store(true, Ordering::SeqCst);
    for (method, path, body) in [
        ("GET", "/_bouncer/rules", None),
        (
            "POST",
            "/_bouncer/rules",
            Some(json!({ "target": "10.0.0.1", "action": "block" })),
        ),
        ("DELETE", "/_bouncer/rules/1", None),
        ("GET", "/_bouncer/bans", None),
        ("DELETE", "/_bouncer/bans/203.0.113.7", None),
        ("DELETE", "/_bouncer/bans/user:alice", None),
        ("POST", "/_bouncer/trim", None),
    ] {
        let mut req = admin(method, path);
        if let Some(body) = body {
            req = req.set_json(body);
        }
        let res = send(&app, req).await;
        let what = format!("{method} {path}");
        assert_problem(&res, StatusCode::SERVICE_UNAVAILABLE, None, &what);
        assert!(
            !res.text.contains("hunter2") && !res.text.contains("db.internal"),
            "{what}: {}",
            res.text
        );
    }
    // The operator's log has the store's error; the client never does.
    let lines = log.lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("ERROR") && l.contains("hunter2")),
        "{lines:#?}"
    );

    failing.store(false, Ordering::SeqCst);
    let ok = send(&app, admin("GET", "/_bouncer/bans")).await;
    assert_eq!(ok.status, StatusCode::OK, "recovers: {}", ok.text);
}

#[actix_web::test]
async fn tokens_are_checked_at_build() {
    let key = |toml: &str| {
        let err = Bouncer::from_toml_str(toml).unwrap_err();
        (err.key().map(str::to_owned), err.to_string())
    };
    let short = "[[admin_api.tokens]]\nname = \"ops\"\ntoken = \"tooShort123\"\n";
    let (at, message) = key(short);
    assert_eq!(at.as_deref(), Some("admin_api.tokens[0].token"));
    assert!(
        !message.contains("tooShort123"),
        "the secret stays out: {message}"
    );
    assert!(message.contains("16"), "{message}");
    for (toml, expected) in [
        (
            "[[admin_api.tokens]]\nname = \"ops\"\ntoken = \"0123456789abcdef\"\n[[admin_api.tokens]]\nname = \"ci\"\ntoken = \"short\"\n",
            "admin_api.tokens[1].token",
        ),
        (
            "[[admin_api.tokens]]\nname = \"ops\"\ntoken = \"0123456789abcdef\"\nenv = \"X\"\n",
            "admin_api.tokens[0].env",
        ),
        ("[[admin_api.tokens]]\nname = \"ops\"\n", "admin_api.tokens[0]"),
        (
            "[[admin_api.tokens]]\nname = \"\"\ntoken = \"0123456789abcdef\"\n",
            "admin_api.tokens[0].name",
        ),
        (
            "[[admin_api.tokens]]\nname = \"ops\"\ntoken = \"0123456789abcdef\"\n[[admin_api.tokens]]\nname = \"ops\"\ntoken = \"fedcba9876543210\"\n",
            "admin_api.tokens[1].name",
        ),
        (
            "[[admin_api.tokens]]\nname = \"ops\"\ntoken = \"0123456789abcdef\"\n[[admin_api.tokens]]\nname = \"ci\"\ntoken = \"0123456789abcdef\"\n",
            "admin_api.tokens[1].token",
        ),
        (
            "[[admin_api.tokens]]\nname = \"ops\"\ntoken = \"0123456789 abcdef\"\n",
            "admin_api.tokens[0].token",
        ),
        (
            "[[admin_api.tokens]]\nname = \"ops\"\nenv = \"\"\n",
            "admin_api.tokens[0].env",
        ),
    ] {
        assert_eq!(key(toml).0.as_deref(), Some(expected), "{toml}");
    }
    // Unknown keys are TOML errors.
    let err = Bouncer::from_toml_str("[admin_api]\nopen = true\n").unwrap_err();
    assert!(err.to_string().contains("open"), "{err}");
    let err = Bouncer::from_toml_str(
        "[[admin_api.tokens]]\nname = \"ops\"\nsecret = \"0123456789abcdef\"\n",
    )
    .unwrap_err();
    assert!(err.to_string().contains("secret"), "{err}");
    // The builder names the same keys.
    let err = Bouncer::builder()
        .admin_token("ops", "short")
        .build()
        .unwrap_err();
    assert_eq!(err.key(), Some("admin_api.tokens[0].token"));
    assert!(Bouncer::builder()
        .admin_token("ops", "0123456789abcdef")
        .build()
        .is_ok());
}

#[actix_web::test]
async fn a_token_can_come_from_the_environment() {
    // A name no other test uses. Rust's std serialises its own environment reads and writes.
    const VAR: &str = "ACTIX_BOUNCER_TEST_ADMIN_TOKEN_FROM_ENV";
    std::env::set_var(VAR, "from-the-environment-0123");
    let bouncer = Bouncer::from_toml_str(&format!(
        "[[admin_api.tokens]]\nname = \"env\"\nenv = \"{VAR}\"\n"
    ))
    .unwrap();
    let app = app!(bouncer);
    let res = send(
        &app,
        from_operator("GET", "/_bouncer/bans", Some("from-the-environment-0123")),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    std::env::set_var(VAR, "short");
    let err = Bouncer::from_toml_str(&format!(
        "[[admin_api.tokens]]\nname = \"env\"\nenv = \"{VAR}\"\n"
    ))
    .unwrap_err();
    assert_eq!(err.key(), Some("admin_api.tokens[0].env"));
    assert!(!err.to_string().contains("short\""), "{err}");
    std::env::remove_var(VAR);
}
