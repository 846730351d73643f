//! Rules that last and are shared: several bouncers on one database (SQLite file, and
//! PostgreSQL when `BOUNCER_TEST_POSTGRES` names a server), through real HTTP requests.
//!
//! The rules' worker writes and reloads on its own thread, so these tests wait for it by
//! polling with a deadline (never a fixed sleep); reload periods are short (100 ms).

#![cfg(feature = "sqlite")]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use actix_bouncer::rules::{ListQuery, NewRule, Rule, RuleSource, RuleTarget};
use actix_bouncer::{rate_limit, Bouncer, IpVerdict};
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::{test, web, App, HttpResponse};

const RELOAD: Duration = Duration::from_millis(100);
/// Long enough for a loaded CI machine, short enough to fail a broken reload quickly.
const DEADLINE: Duration = Duration::from_secs(10);

fn get(from: &str) -> actix_http::Request {
    let peer: SocketAddr = format!("{from}:40000").parse().unwrap();
    test::TestRequest::get()
        .uri("/")
        .peer_addr(peer)
        .insert_header(("user-agent", common::BROWSER))
        .insert_header(("x-user", ""))
        .to_request()
}

fn as_user(from: &str, user: &str, path: &str) -> actix_http::Request {
    let peer: SocketAddr = format!("{from}:40000").parse().unwrap();
    test::TestRequest::post()
        .uri(path)
        .peer_addr(peer)
        .insert_header(("user-agent", common::BROWSER))
        .insert_header(("x-user", user))
        .insert_header(("x-request-id", "req-42"))
        .to_request()
}

/// A bouncer on the rule store at `url`, reloading every [`RELOAD`], whose user is the
/// `x-user` header (when not empty).
fn bouncer(url: &str) -> actix_bouncer::config::BouncerBuilder {
    Bouncer::builder()
        .rule_store_url(url)
        .store_reload(RELOAD)
        .user(|req| {
            req.headers()
                .get("x-user")
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        })
}

#[rate_limit(
    hits = 1,
    per = "1m",
    ban_for = "10m",
    user_ban_for = "2h",
    key = "user_or_ip"
)]
async fn login() -> HttpResponse {
    HttpResponse::Ok().finish()
}

macro_rules! app {
    ($bouncer:expr) => {
        test::init_service(
            App::new()
                .wrap($bouncer.clone())
                .route("/login", web::post().to(login))
                .default_service(web::to(
                    |v: IpVerdict| async move { HttpResponse::Ok().json(v) },
                )),
        )
        .await
    };
}

async fn status<S, B>(app: &S, req: actix_http::Request) -> StatusCode
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    test::call_service(app, req).await.status()
}

/// Waits until `check` holds, failing the test at the deadline.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < DEADLINE, "timed out waiting until {what}");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn automatic(bouncer: &Bouncer) -> Vec<Rule> {
    bouncer
        .rules()
        .list(ListQuery::first(100).source(RuleSource::Auto))
        .await
        .unwrap()
        .rules
}

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("rules.db").display())
}

/// Two instances: a rule added on one is enforced on the other after a reload, a removal
/// too, and neither ever asked the other anything.
async fn shared_by_two(url: &str) {
    let a = bouncer(url).build().unwrap();
    let b = bouncer(url).build().unwrap();
    let app_b = app!(b);
    assert_eq!(status(&app_b, get("203.0.113.7")).await, StatusCode::OK);

    let rule = a
        .rules()
        .add(NewRule::block("203.0.113.0/24".parse().unwrap()))
        .await
        .unwrap();
    let added = Instant::now();
    eventually("the other instance enforces the rule", || async {
        status(&app_b, get("203.0.113.7")).await == StatusCode::FORBIDDEN
    })
    .await;
    let took = added.elapsed();
    assert_eq!(b.rules().health().consecutive_failures, 0);
    assert!(b.rules().health().last_reload.is_some());

    a.rules().remove(rule.id).await.unwrap();
    eventually("the other instance drops the rule", || async {
        status(&app_b, get("203.0.113.7")).await == StatusCode::OK
    })
    .await;
    eprintln!("enforced on the other instance after {took:?} (reload every {RELOAD:?})");
}

/// Automatic rules: a ban here becomes a rule everyone enforces, for the user or the
/// address, and both it and manual rules outlive the process.
async fn bans_become_rules_and_outlive_restarts(url: &str) {
    let toml = r#"
        [[rules]]
        target = "192.0.2.0/24"
        action = "block"
        comment = "from the config"
    "#;
    let a = bouncer(url)
        .toml_str(toml)
        .unwrap()
        .limit(2, Duration::from_secs(60))
        .ban_for(Duration::from_secs(600))
        .build()
        .unwrap();
    let app_a = app!(a);
    // The global limit bans an anonymous client: an address rule for as long as the ban.
    for _ in 0..2 {
        assert_eq!(status(&app_a, get("198.51.100.4")).await, StatusCode::OK);
    }
    assert_eq!(
        status(&app_a, get("198.51.100.4")).await,
        StatusCode::FORBIDDEN
    );
    // A handler limit bans a signed-in user: a user rule for `user_ban_for`.
    assert_eq!(
        status(&app_a, as_user("198.51.100.5", "mallory", "/login")).await,
        StatusCode::OK
    );
    assert_eq!(
        status(&app_a, as_user("198.51.100.5", "mallory", "/login")).await,
        StatusCode::FORBIDDEN
    );
    eventually("both bans are recorded as rules", || async {
        automatic(&a).await.len() == 2
    })
    .await;
    let rules = automatic(&a).await;
    let by_ip = rules
        .iter()
        .find(|r| r.target == RuleTarget::ip("198.51.100.4".parse().unwrap()))
        .expect("an address rule");
    let by_user = rules
        .iter()
        .find(|r| r.target == RuleTarget::User("mallory".into()))
        .expect("a user rule");
    let lasts = |r: &Rule| r.expires.unwrap().duration_since(r.created).unwrap();
    assert_eq!(lasts(by_ip), Duration::from_secs(600));
    assert_eq!(lasts(by_user), Duration::from_secs(7200));
    assert_eq!(
        by_user.comment.as_deref(),
        Some("banned by a rate limit: POST /login (request req-42)")
    );
    let manual = a
        .rules()
        .add(NewRule::block("user:trudy".parse().unwrap()).comment("by hand"))
        .await
        .unwrap();
    drop(app_a);
    drop(a);

    // A restart (three, in fact): the bans hold through their rules, on any address for the
    // user; the config's rule is there once.
    for _ in 0..3 {
        let again = bouncer(url).toml_str(toml).unwrap().build().unwrap();
        let app = app!(again);
        let res = test::call_service(&app, get("198.51.100.4")).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert!(res.headers().contains_key("retry-after"));
        let body: serde_json::Value = serde_json::from_slice(&test::read_body(res).await).unwrap();
        assert_eq!(body["reason"], "banned");
        assert_eq!(
            status(&app, as_user("203.0.113.99", "mallory", "/")).await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            status(&app, as_user("203.0.113.99", "trudy", "/")).await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(status(&app, get("192.0.2.1")).await, StatusCode::FORBIDDEN);
        let seeded = again
            .rules()
            .list(ListQuery::first(100).source(RuleSource::Config))
            .await
            .unwrap()
            .rules;
        assert_eq!(seeded.len(), 1, "restarts make no copies of config rules");
        assert_eq!(
            again.rules().get(manual.id).await.unwrap(),
            Some(manual.clone())
        );
    }

    // Lifting the ban removes its rule for every instance.
    let c = bouncer(url).toml_str(toml).unwrap().build().unwrap();
    let removed = c
        .rules()
        .remove_automatic(&RuleTarget::User("mallory".into()))
        .await
        .unwrap();
    assert_eq!(removed.len(), 1);
    let app_c = app!(c);
    assert_eq!(
        status(&app_c, as_user("203.0.113.99", "mallory", "/")).await,
        StatusCode::OK
    );
}

#[actix_web::test]
async fn sqlite_rules_are_shared_by_instances() {
    let dir = tempfile::tempdir().unwrap();
    shared_by_two(&sqlite_url(&dir)).await;
}

#[actix_web::test]
async fn sqlite_bans_become_rules_and_outlive_restarts() {
    let dir = tempfile::tempdir().unwrap();
    bans_become_rules_and_outlive_restarts(&sqlite_url(&dir)).await;
}

#[actix_web::test]
async fn automatic_rules_can_be_turned_off_and_skip_unknown_clients() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir);
    let off = bouncer(&url)
        .limit(1, Duration::from_secs(60))
        .ban_for(Duration::from_secs(60))
        .auto_rules(false)
        .build()
        .unwrap();
    let app = app!(off);
    status(&app, get("198.51.100.4")).await;
    assert_eq!(
        status(&app, get("198.51.100.4")).await,
        StatusCode::FORBIDDEN
    );
    // The worker takes commands in order: a rule queued by the ban would be listed.
    assert_eq!(automatic(&off).await, []);

    // A client behind a trusted proxy whose header names no address: banned here, but there
    // is no address to put a rule on (and never the proxy's).
    let on = bouncer(&url)
        .limit(1, Duration::from_secs(60))
        .ban_for(Duration::from_secs(60))
        .trusted_proxies(["10.0.0.1"])
        .build()
        .unwrap();
    let app = app!(on);
    let unknown = || {
        test::TestRequest::get()
            .uri("/")
            .peer_addr("10.0.0.1:40000".parse().unwrap())
            .insert_header(("x-forwarded-for", "unknown"))
            .to_request()
    };
    status(&app, unknown()).await;
    assert_eq!(status(&app, unknown()).await, StatusCode::FORBIDDEN);
    // A banned known client afterwards: its rule is the only one written, so the worker has
    // handled (and skipped) everything before it.
    status(&app, get("198.51.100.8")).await;
    status(&app, get("198.51.100.8")).await;
    eventually("the known client's rule is written", || async {
        !automatic(&on).await.is_empty()
    })
    .await;
    let rules = automatic(&on).await;
    assert_eq!(rules.len(), 1, "{rules:?}");
    assert_eq!(rules[0].target.to_string(), "198.51.100.8");
}

#[actix_web::test]
async fn a_config_naming_an_unusable_store_fails_at_startup() {
    let error = Bouncer::builder()
        .toml_str("[store]\nrules = \"sqlite:///nonexistent/dir/rules.db\"")
        .unwrap()
        .build()
        .unwrap_err()
        .to_string();
    assert!(error.contains("store.rules"), "{error}");
    let error = Bouncer::builder()
        .toml_str("[store]\nrules = \"mysql://root:hunter2@db/x\"")
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("store.rules") && !error.contains("hunter2"),
        "{error}"
    );
    let error = Bouncer::builder()
        .toml_str("[store]\nreload = \"often\"")
        .unwrap_err()
        .to_string();
    assert!(error.contains("store.reload"), "{error}");
}

#[cfg(feature = "postgres")]
mod postgres {
    use sqlx::{Connection, Executor, PgConnection};

    use super::common::postgres::{TestDatabase, VAR};
    use super::*;

    #[actix_web::test]
    async fn postgres_rules_are_shared_by_instances() {
        let Some(db) = TestDatabase::create("postgres_rules_are_shared_by_instances").await else {
            return;
        };
        shared_by_two(&db.url).await;
    }

    #[actix_web::test]
    async fn postgres_bans_become_rules_and_outlive_restarts() {
        let Some(db) =
            TestDatabase::create("postgres_bans_become_rules_and_outlive_restarts").await
        else {
            return;
        };
        bans_become_rules_and_outlive_restarts(&db.url).await;
    }

    /// Turns connections to the test database off (and cuts the open ones), or on again.
    async fn outage(db: &TestDatabase, down: bool) {
        let server = std::env::var(VAR).unwrap();
        let mut admin = PgConnection::connect(&server).await.unwrap();
        let name = db.url.rsplit('/').next().unwrap();
        admin
            .execute(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS {}", !down).as_str())
            .await
            .unwrap();
        if down {
            admin
                .execute(
                    format!(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE datname = '{name}'"
                    )
                    .as_str(),
                )
                .await
                .unwrap();
        }
    }

    #[actix_web::test]
    async fn a_store_that_goes_away_leaves_requests_served() {
        let Some(db) = TestDatabase::create("a_store_that_goes_away_leaves_requests_served").await
        else {
            return;
        };
        let bouncer = bouncer(&db.url)
            .limit(1, Duration::from_secs(60))
            .ban_for(Duration::from_secs(600))
            .build()
            .unwrap();
        let app = app!(bouncer);
        bouncer
            .rules()
            .add(NewRule::block("203.0.113.0/24".parse().unwrap()))
            .await
            .unwrap();

        outage(&db, true).await;
        // The last good rules keep serving; nothing fails because of the store.
        assert_eq!(
            status(&app, get("203.0.113.7")).await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(status(&app, get("198.51.100.1")).await, StatusCode::OK);
        // A write fails with a typed error, and nothing pretends it worked.
        let error = bouncer
            .rules()
            .add(NewRule::block("user:eve".parse().unwrap()))
            .await
            .unwrap_err();
        assert!(
            matches!(error, actix_bouncer::rules::RuleError::Store(_)),
            "{error}"
        );
        assert_eq!(
            status(&app, as_user("198.51.100.2", "eve", "/")).await,
            StatusCode::OK
        );
        // Reloads fail, are counted, and the ban of the moment still holds here.
        eventually("failed reloads are counted", || async {
            bouncer.rules().health().consecutive_failures >= 2
        })
        .await;
        status(&app, get("198.51.100.3")).await;
        assert_eq!(
            status(&app, get("198.51.100.3")).await,
            StatusCode::FORBIDDEN
        );
        eventually("the ban's rule waits for the store", || async {
            bouncer.rules().health().auto_rules_waiting == 1
        })
        .await;

        // The store comes back: the waiting rule is written, reloads succeed again.
        outage(&db, false).await;
        eventually("the store is back", || async {
            let health = bouncer.rules().health();
            health.consecutive_failures == 0 && health.auto_rules_waiting == 0
        })
        .await;
        let rules = automatic(&bouncer).await;
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].target.to_string(), "198.51.100.3");
        assert!(bouncer.rules().health().reload_failures >= 2);
    }
}
