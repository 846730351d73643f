//! The reputation API through the middleware: critical paths wait, every other path never
//! does, failure policies, caching across paths, and automatic bans. The API is impersonated by
//! a local actix server (the real one is unreachable from tests).
#![cfg(feature = "reputation")]

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_bouncer::config::{PathGroup, ReputationSettings};
use actix_bouncer::Fail;
use actix_bouncer::{Bouncer, IpVerdict};
use actix_web::http::StatusCode;
use actix_web::{test, web, App, HttpResponse, HttpServer};
use serde_json::{json, Value};

const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

/// What the fake API answers: a JSON body after a delay, or a status.
#[derive(Clone)]
enum Answer {
    Json(Value, Duration),
    Status(u16),
}

struct FakeApi {
    calls: Arc<AtomicUsize>,
    url: String,
}

impl FakeApi {
    fn start(answer: Answer) -> FakeApi {
        let answer = Arc::new(Mutex::new(answer));
        let calls = Arc::new(AtomicUsize::new(0));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (a, c) = (answer.clone(), calls.clone());
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                HttpServer::new(move || {
                    let (a, c) = (a.clone(), c.clone());
                    App::new().default_service(web::to(move || {
                        let (a, c) = (a.clone(), c.clone());
                        async move {
                            c.fetch_add(1, Ordering::SeqCst);
                            let answer = a.lock().unwrap().clone();
                            match answer {
                                Answer::Json(body, delay) => {
                                    actix_web::rt::time::sleep(delay).await;
                                    HttpResponse::Ok().json(body)
                                }
                                Answer::Status(code) => {
                                    HttpResponse::build(StatusCode::from_u16(code).unwrap())
                                        .finish()
                                }
                            }
                        }
                    }))
                })
                .workers(1)
                .disable_signals()
                .listen(listener)
                .unwrap()
                .run()
                .await
            })
        });
        FakeApi {
            calls,
            url: format!("http://127.0.0.1:{port}/v1/ip/{{ip}}"),
        }
    }

    fn settings(&self) -> ReputationSettings {
        let mut s = ReputationSettings::new(self.url.clone());
        s.api.timeout = Duration::from_millis(300);
        s.critical_paths = vec!["/login".into()];
        s
    }
}

macro_rules! app {
    ($settings:expr) => {
        test::init_service(
            App::new()
                .wrap(Bouncer::builder().reputation($settings).build().unwrap())
                .default_service(web::to(
                    |v: IpVerdict| async move { HttpResponse::Ok().json(v) },
                )),
        )
        .await
    };
}

fn get(path: &str, ip: &str) -> actix_http::Request {
    test::TestRequest::get()
        .uri(path)
        .peer_addr(format!("{ip}:4000").parse().unwrap())
        .insert_header(("user-agent", BROWSER))
        .to_request()
}

async fn json_of(res: actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>) -> Value {
    serde_json::from_slice(&test::read_body(res).await).unwrap()
}

#[actix_web::test]
async fn a_non_critical_path_never_waits_for_the_api() {
    // The API takes 5 s; an ordinary path answers at once, flagged as unknown.
    let api = FakeApi::start(Answer::Json(
        json!({"risk_score": 10}),
        Duration::from_secs(5),
    ));
    let mut settings = api.settings();
    settings.api.timeout = Duration::from_secs(10);
    let app = app!(settings);
    let started = Instant::now();
    let res = test::call_service(&app, get("/", "192.0.2.1")).await;
    let took = started.elapsed();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        took < Duration::from_millis(500),
        "an ordinary path waited {took:?}"
    );
    let v = json_of(res).await;
    assert_eq!(v["flags"], json!(["reputation_unknown"]));
    assert_eq!(v["reasons"], json!(["reputation unknown (+0)"]));
}

#[actix_web::test]
async fn a_critical_path_waits_scores_and_bans_extreme_addresses() {
    let api = FakeApi::start(Answer::Json(
        json!({"risk_score": 95, "is_vpn": true, "isp": "Example Transit"}),
        Duration::ZERO,
    ));
    let mut settings = api.settings();
    settings.ban_at = Some(90);
    settings.ban_for = Duration::from_secs(600);
    let bouncer = Bouncer::builder().reputation(settings).build().unwrap();
    let app = test::init_service(App::new().wrap(bouncer.clone()).default_service(web::to(
        |v: IpVerdict| async move { HttpResponse::Ok().json(v) },
    )))
    .await;
    let res = test::call_service(&app, get("/login", "198.51.100.9")).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(json_of(res).await["reason"], "risk");
    assert_eq!(api.calls.load(Ordering::SeqCst), 1);

    // Written off the request path; a read comes after it.
    let rules = bouncer
        .rules()
        .list(actix_bouncer::rules::ListQuery::default())
        .await
        .unwrap()
        .rules;
    assert_eq!(rules.len(), 1, "an automatic ban through the rules handle");
    assert_eq!(rules[0].source, actix_bouncer::rules::RuleSource::Auto);
    assert_eq!(rules[0].target.to_string(), "198.51.100.9");
    assert_eq!(
        rules[0].comment.as_deref(),
        Some("automatic: reputation score 95")
    );
    let ban = rules[0]
        .expires
        .unwrap()
        .duration_since(rules[0].created)
        .unwrap();
    assert_eq!(ban, Duration::from_secs(600));

    // From now on the rule answers, before the API is even consulted: an automatic rule is
    // a ban, with its time left.
    let res = test::call_service(&app, get("/", "198.51.100.9")).await;
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(json_of(res).await["reason"], "banned");
    assert_eq!(api.calls.load(Ordering::SeqCst), 1);
}

#[actix_web::test]
async fn a_report_fetched_on_a_critical_path_serves_every_path() {
    let api = FakeApi::start(Answer::Json(
        json!({"risk_score": 12, "isp": "Example Broadband"}),
        Duration::ZERO,
    ));
    let bouncer = Bouncer::builder()
        .reputation(api.settings())
        .build()
        .unwrap();
    let app = test::init_service(App::new().wrap(bouncer.clone()).default_service(web::to(
        |v: IpVerdict| async move { HttpResponse::Ok().json(v) },
    )))
    .await;
    let res = test::call_service(&app, get("/login", "203.0.113.50")).await;
    let v = json_of(res).await;
    assert_eq!(v["score"], 12);
    assert_eq!(v["reasons"], json!(["reputation API risk score 12 (+12)"]));
    assert_eq!(v["provider"], "Example Broadband");
    let v = json_of(test::call_service(&app, get("/", "203.0.113.50")).await).await;
    assert_eq!(v["score"], 12, "the cached report, without waiting");
    assert_eq!(api.calls.load(Ordering::SeqCst), 1);
    let stats = bouncer
        .reputation_stats()
        .expect("a reputation API is configured");
    assert_eq!(stats.upstream_calls, 1);
    assert!(stats.cache_hits >= 1, "{stats:?}");
}

#[actix_web::test]
async fn failure_policy_on_critical_paths() {
    let api = FakeApi::start(Answer::Status(503));
    let app = app!(api.settings());
    let res = test::call_service(&app, get("/login", "192.0.2.7")).await;
    assert_eq!(res.status(), StatusCode::OK, "fail open (the default)");
    assert_eq!(json_of(res).await["flags"], json!(["reputation_unknown"]));

    let mut closed = api.settings();
    closed.fail = Fail::Closed;
    let app = app!(closed);
    let res = test::call_service(&app, get("/login", "192.0.2.8")).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "fail closed");
    // Paths that never wait are never refused for an unknown score.
    let res = test::call_service(&app, get("/", "192.0.2.9")).await;
    assert_eq!(res.status(), StatusCode::OK);
}

/// Critical paths are matched as the router dispatches: `/%6Cogin` reaches the `/login`
/// handler, so it must wait for a score (and, failing closed, be refused); `/loginfoo` is
/// another path and must not wait.
#[actix_web::test]
async fn critical_paths_match_what_the_router_dispatches() {
    let api = FakeApi::start(Answer::Status(503));
    let mut closed = api.settings();
    closed.fail = Fail::Closed;
    let app = app!(closed);
    for (i, path) in [
        "/%6Cogin",
        "/%6cogin/",
        "//login",
        "/LOGIN",
        "/x/../login",
        "/login;jsessionid=1",
    ]
    .into_iter()
    .enumerate()
    {
        let res = test::call_service(&app, get(path, &format!("192.0.2.{}", 100 + i))).await;
        assert_eq!(
            res.status(),
            StatusCode::FORBIDDEN,
            "{path} slipped past the critical path"
        );
        assert_eq!(json_of(res).await["reason"], "risk");
    }
    let calls = api.calls.load(Ordering::SeqCst);
    assert!(calls >= 6, "every one waited for the API: {calls}");
    // Not under /login: never waits, never refused for an unknown score.
    for path in ["/loginfoo", "/log", "/api/login"] {
        let res = test::call_service(&app, get(path, "192.0.2.120")).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert_eq!(json_of(res).await["flags"], json!(["reputation_unknown"]));
    }
    // A path that cannot be decoded counts as critical, under the strictest policy.
    let res = test::call_service(&app, get("/%zzlogin", "192.0.2.121")).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn each_path_group_has_its_own_failure_policy() {
    let api = FakeApi::start(Answer::Status(503));
    let mut settings = api.settings();
    settings.groups = vec![PathGroup::new(["/admin"], Fail::Closed)];
    let app = app!(settings);
    let res = test::call_service(&app, get("/admin/users", "192.0.2.40")).await;
    assert_eq!(
        res.status(),
        StatusCode::FORBIDDEN,
        "the /admin group fails closed"
    );
    let res = test::call_service(&app, get("/login", "192.0.2.41")).await;
    assert_eq!(res.status(), StatusCode::OK, "critical_paths fail open");
}

#[actix_web::test]
async fn a_slow_api_is_cut_off_by_the_timeout() {
    let api = FakeApi::start(Answer::Json(
        json!({"risk_score": 1}),
        Duration::from_secs(5),
    ));
    let app = app!(api.settings());
    let started = Instant::now();
    let res = test::call_service(&app, get("/login", "192.0.2.30")).await;
    let took = started.elapsed();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        took < Duration::from_secs(2),
        "the 300 ms timeout did not apply: {took:?}"
    );
    assert_eq!(json_of(res).await["flags"], json!(["reputation_unknown"]));
}

#[actix_web::test]
async fn reputation_config_from_toml() {
    let bouncer = Bouncer::from_toml_str(
        r#"
        [reputation]
        url = "http://127.0.0.1:9/v1/ip/{ip}"
        timeout = "2s"
        cache_ttl = "5m"
        critical_paths = ["/login", "/signup", "/api/"]
        fail = "open"
        ban_at = 95
        ban_for = "1h"
        [reputation.fields]
        risk_score = "score"
        is_vpn = "vpn"
        [[reputation.groups]]
        paths = ["/admin", "/payments"]
        fail = "closed"
        "#,
    );
    assert!(bouncer.is_ok(), "{:?}", bouncer.err());
    for (toml, key) in [
        ("[reputation]\nurl = \"ftp://x/{ip}\"", "reputation.url"),
        (
            "[reputation]\nurl = \"http://x/{ip}\"\nfail = \"maybe\"",
            "reputation.fail",
        ),
        (
            "[reputation]\nurl = \"http://x/{ip}\"\nban_at = 101",
            "reputation.ban_at",
        ),
        (
            "[reputation]\nurl = \"http://x/{ip}\"\ncritical_paths = [\"login\"]",
            "reputation.critical_paths[0]",
        ),
        (
            "[reputation]\nurl = \"http://x/{ip}\"\ntimeout = \"0s\"",
            "reputation.timeout",
        ),
        (
            "[reputation]\nurl = \"http://x/{ip}\"\n[reputation.fields]\nisp = \"\"",
            "reputation.fields.isp",
        ),
        (
            "[reputation]\nurl = \"http://x/{ip}\"\n[[reputation.groups]]\npaths = [\"/a\"]\nfail = \"sometimes\"",
            "reputation.groups[0].fail",
        ),
        (
            "[reputation]\nurl = \"http://x/{ip}\"\n[[reputation.groups]]\npaths = [\"a\"]\nfail = \"open\"",
            "reputation.groups[0].paths[0]",
        ),
    ] {
        let e = Bouncer::from_toml_str(toml).unwrap_err();
        assert_eq!(e.key(), Some(key), "{toml}: {e}");
    }
}
