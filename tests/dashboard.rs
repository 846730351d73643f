//! The dashboard through real HTTP requests (`actix_web::test`): sign-in, sessions and their
//! end, CSRF, security headers, every page and action, escaping of client-controlled text, and
//! the panels with and without an access log (real SQLite files).

#![cfg(all(feature = "dashboard", feature = "sqlite"))]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use actix_bouncer::access_log::{AccessLog, SqlAccessLog};
use actix_bouncer::clock::ManualClock;
use actix_bouncer::config::BouncerBuilder;
use actix_bouncer::{Bouncer, NewRule, RuleTarget};
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header::{self, HeaderMap};
use actix_web::http::StatusCode;
use actix_web::{test, web, App, HttpResponse};

const TOKEN: &str = "ops-token-0123456789abcdef";
const OTHER_TOKEN: &str = "ci-token-fedcba9876543210";
const BASE: &str = "/_bouncer/ui";
/// Where the operator's browser is.
const OPERATOR: &str = "192.0.2.10";

fn builder() -> BouncerBuilder {
    Bouncer::builder()
        .admin_token("ops", TOKEN)
        .admin_token("ci", OTHER_TOKEN)
        .rule(NewRule::allow(RuleTarget::ip(OPERATOR.parse().unwrap())))
}

macro_rules! app {
    ($bouncer:expr) => {
        app!($bouncer, |d| d)
    };
    ($bouncer:expr, $configure:expr) => {{
        let configure: fn(
            actix_bouncer::dashboard::Dashboard,
        ) -> actix_bouncer::dashboard::Dashboard = $configure;
        test::init_service(
            App::new()
                .wrap($bouncer.clone())
                .service(configure($bouncer.dashboard(BASE)))
                .default_service(web::to(|| async { HttpResponse::Ok().body("app") })),
        )
        .await
    }};
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
}

impl Answer {
    fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    fn set_cookie(&self) -> Option<String> {
        self.headers
            .get(header::SET_COOKIE)
            .map(|v| v.to_str().unwrap().to_owned())
    }

    /// The CSRF token the page's forms carry.
    fn csrf(&self) -> String {
        let at = self
            .text
            .find(r#"name="csrf" value=""#)
            .expect("a form with a CSRF token");
        let rest = &self.text[at + r#"name="csrf" value=""#.len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }
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
    assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "{text}");
    Answer {
        status,
        headers,
        text,
    }
}

fn from(ip: &str, method: &str, path: &str) -> test::TestRequest {
    test::TestRequest::default()
        .method(method.parse().unwrap())
        .uri(path)
        .peer_addr(SocketAddr::new(ip.parse().unwrap(), 40000))
        .insert_header(("user-agent", common::BROWSER))
}

fn get(path: &str) -> test::TestRequest {
    from(OPERATOR, "GET", path)
}

fn post_form(path: &str, fields: &[(&str, &str)]) -> test::TestRequest {
    let body: Vec<String> = fields
        .iter()
        .map(|(n, v)| format!("{}={}", encode(n), encode(v)))
        .collect();
    from(OPERATOR, "POST", path)
        .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
        .set_payload(body.join("&"))
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A signed-in operator: the cookie to send, and the CSRF token of its forms.
struct Session {
    cookie: String,
    csrf: String,
}

impl Session {
    fn get(&self, path: &str) -> test::TestRequest {
        get(path).insert_header((header::COOKIE, self.cookie.as_str()))
    }

    fn post(&self, path: &str, fields: &[(&str, &str)]) -> test::TestRequest {
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        post_form(path, &all).insert_header((header::COOKIE, self.cookie.as_str()))
    }
}

async fn sign_in<S, B>(app: &S, token: &str) -> Session
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let answer = send(
        app,
        post_form(&format!("{BASE}/login"), &[("token", token)]),
    )
    .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text);
    assert_eq!(answer.location(), format!("{BASE}/"));
    let set = answer.set_cookie().expect("a session cookie");
    let cookie = set.split(';').next().unwrap().to_owned();
    let page = send(
        app,
        get(&format!("{BASE}/")).insert_header((header::COOKIE, cookie.as_str())),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    Session {
        csrf: page.csrf(),
        cookie,
    }
}

fn assert_security_headers(answer: &Answer, what: &str) {
    let csp = answer
        .headers
        .get(header::CONTENT_SECURITY_POLICY)
        .unwrap_or_else(|| panic!("{what}: no CSP"))
        .to_str()
        .unwrap();
    assert!(csp.contains("default-src 'none'"), "{what}: {csp}");
    assert!(csp.contains("script-src 'self'"), "{what}: {csp}");
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert_eq!(
        answer.headers.get(header::X_FRAME_OPTIONS).unwrap(),
        "DENY",
        "{what}"
    );
    assert_eq!(
        answer.headers.get(header::CACHE_CONTROL).unwrap(),
        "no-store",
        "{what}"
    );
    assert_eq!(
        answer.headers.get(header::X_CONTENT_TYPE_OPTIONS).unwrap(),
        "nosniff",
        "{what}"
    );
}

#[actix_web::test]
async fn without_a_token_every_route_is_404() {
    let bouncer = Bouncer::builder().build().unwrap();
    let app = app!(bouncer);
    for (method, path) in [
        ("GET", ""),
        ("GET", "/"),
        ("GET", "/login"),
        ("POST", "/login"),
        ("GET", "/rules"),
        ("GET", "/assets/htmx.min.js"),
        ("GET", "/client?q=192.0.2.1"),
    ] {
        let answer = send(&app, from(OPERATOR, method, &format!("{BASE}{path}"))).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{method} {path}");
        assert_security_headers(&answer, path);
    }
}

#[actix_web::test]
async fn signing_in_takes_a_token_and_sets_a_strict_cookie() {
    let bouncer = builder().build().unwrap();
    let app = app!(bouncer);

    // Pages send a reader without a session to the sign-in form; actions are refused.
    for path in ["", "/", "/rules", "/bans", "/client?q=192.0.2.1", "/nope"] {
        let answer = send(&app, get(&format!("{BASE}{path}"))).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(answer.location(), format!("{BASE}/login"), "{path}");
        assert_security_headers(&answer, path);
    }
    let answer = send(
        &app,
        post_form(
            &format!("{BASE}/rules"),
            &[("target", "203.0.113.0/24"), ("action", "block")],
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(bouncer
        .rules()
        .check("203.0.113.1".parse().unwrap(), None)
        .block
        .is_none());

    let form = send(&app, get(&format!("{BASE}/login"))).await;
    assert_eq!(form.status, StatusCode::OK);
    assert_security_headers(&form, "login");
    assert!(form.text.contains(r#"type="password" name="token""#));

    // Wrong, shortened, lengthened and empty tokens: the same 401, no cookie.
    for wrong in [
        "",
        "ops-token",
        &TOKEN[..TOKEN.len() - 1],
        &format!("{TOKEN}x"),
        "x".repeat(5000).as_str(),
    ] {
        let answer = send(
            &app,
            post_form(&format!("{BASE}/login"), &[("token", wrong)]),
        )
        .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{wrong:.20}");
        assert!(answer.text.contains("Wrong token."));
        assert!(answer.set_cookie().is_none());
    }

    let answer = send(
        &app,
        post_form(&format!("{BASE}/login"), &[("token", TOKEN)]),
    )
    .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    let cookie = answer.set_cookie().unwrap();
    for part in [
        "HttpOnly",
        "SameSite=Strict",
        "Secure",
        &format!("Path={BASE}"),
        "Max-Age=28800",
    ] {
        assert!(cookie.contains(part), "{part} in {cookie}");
    }
    let session = sign_in(&app, OTHER_TOKEN).await;
    let page = send(&app, session.get(&format!("{BASE}/"))).await;
    assert!(
        page.text.contains("signed in as <strong>ci</strong>"),
        "{}",
        page.text
    );
    assert_security_headers(&page, "overview");

    // A cross-site sign-in (login CSRF) is refused.
    let answer = send(
        &app,
        post_form(&format!("{BASE}/login"), &[("token", TOKEN)])
            .insert_header(("sec-fetch-site", "cross-site")),
    )
    .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(answer.set_cookie().is_none());
}

#[actix_web::test]
async fn plain_http_development_drops_secure_only() {
    let bouncer = builder().build().unwrap();
    let app = app!(bouncer, |d| d.secure_cookie(false));
    let answer = send(
        &app,
        post_form(&format!("{BASE}/login"), &[("token", TOKEN)]),
    )
    .await;
    let cookie = answer.set_cookie().unwrap();
    assert!(!cookie.contains("Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
}

#[actix_web::test]
async fn sessions_end_and_cannot_be_forged() {
    let clock =
        ManualClock::starting_at(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let bouncer = builder().clock(clock.clone()).build().unwrap();
    let app = app!(bouncer, |d| d.session_ttl(Duration::from_secs(600)));
    let session = sign_in(&app, TOKEN).await;
    let overview = format!("{BASE}/");

    // Tampered: another end, another MAC, garbage, two cookies.
    let value = session.cookie.split_once('=').unwrap().1.to_owned();
    let (payload, mac) = value.rsplit_once('.').unwrap();
    let later = format!("v1.{}", 1_800_000_000u64 + 99_999);
    let flipped = format!(
        "{}{}",
        &mac[..63],
        if mac.ends_with('0') { "1" } else { "0" }
    );
    for bad in [
        format!("bouncer_dashboard={later}.{mac}"),
        format!("bouncer_dashboard={payload}.{flipped}"),
        "bouncer_dashboard=v1.99999999999.zz".to_owned(),
        "bouncer_dashboard=".to_owned(),
        format!("{}; bouncer_dashboard={value}", session.cookie),
    ] {
        let answer = send(
            &app,
            get(&overview).insert_header((header::COOKIE, bad.as_str())),
        )
        .await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{bad}");
    }

    clock.advance(Duration::from_secs(599));
    assert_eq!(
        send(&app, session.get(&overview)).await.status,
        StatusCode::OK
    );
    clock.advance(Duration::from_secs(1));
    let answer = send(&app, session.get(&overview)).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "the session ended");

    // A session made with a token the bouncer no longer has is refused.
    let fresh = sign_in(&app, OTHER_TOKEN).await;
    let without_ci = Bouncer::builder()
        .admin_token("ops", TOKEN)
        .clock(clock.clone())
        .build()
        .unwrap();
    let other_app = app!(without_ci);
    let answer = send(&other_app, fresh.get(&overview)).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    // A bouncer with the same tokens (another instance) accepts it.
    let twin = builder().clock(clock.clone()).build().unwrap();
    let twin_app = app!(twin);
    assert_eq!(
        send(&twin_app, fresh.get(&overview)).await.status,
        StatusCode::OK
    );
}

#[actix_web::test]
async fn every_action_needs_the_sessions_csrf_token() {
    let bouncer = builder().build().unwrap();
    let app = app!(bouncer);
    let session = sign_in(&app, TOKEN).await;
    let other = sign_in(&app, OTHER_TOKEN).await;
    assert_ne!(session.csrf, other.csrf);
    let rule = [("target", "203.0.113.0/24"), ("action", "block")];
    let rules = format!("{BASE}/rules");
    for (what, csrf) in [
        ("missing", None),
        ("wrong", Some("0".repeat(64))),
        ("another session's", Some(other.csrf.clone())),
    ] {
        let mut fields: Vec<(&str, &str)> = rule.to_vec();
        if let Some(csrf) = &csrf {
            fields.push(("csrf", csrf.as_str()));
        }
        let answer = send(
            &app,
            post_form(&rules, &fields).insert_header((header::COOKIE, session.cookie.as_str())),
        )
        .await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{what}");
        assert!(answer.text.contains("CSRF"), "{what}");
    }
    // The right token, but the browser says the form came from another site.
    let answer = send(
        &app,
        session
            .post(&rules, &rule)
            .insert_header(("sec-fetch-site", "cross-site")),
    )
    .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(bouncer
        .rules()
        .check("203.0.113.1".parse().unwrap(), None)
        .block
        .is_none());
    // Unban and delete and sign-out are guarded the same way.
    for path in ["/bans/unban", "/rules/1/delete", "/logout"] {
        let answer = send(
            &app,
            post_form(&format!("{BASE}{path}"), &[("key", "203.0.113.1")])
                .insert_header((header::COOKIE, session.cookie.as_str())),
        )
        .await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{path}");
    }

    let answer = send(&app, session.post(&rules, &rule)).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text);
    assert!(bouncer
        .rules()
        .check("203.0.113.1".parse().unwrap(), None)
        .block
        .is_some());
}

#[actix_web::test]
async fn rules_are_added_listed_filtered_and_deleted() {
    let bouncer = builder().rule_store_url("sqlite::memory:").build().unwrap();
    let app = app!(bouncer);
    let session = sign_in(&app, TOKEN).await;
    let rules = format!("{BASE}/rules");

    let answer = send(
        &app,
        session.post(
            &rules,
            &[
                ("target", "203.0.113.0/24"),
                ("action", "block"),
                ("for", "1h"),
                ("comment", "scraper"),
            ],
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    let shown = send(
        &app,
        get(answer.location()).insert_header((header::COOKIE, session.cookie.as_str())),
    )
    .await;
    assert!(shown.text.contains("added."), "{}", shown.text);
    assert!(shown.text.contains("203.0.113.0/24") && shown.text.contains("scraper"));
    assert!(shown.text.contains("in 1h"), "{}", shown.text);
    // The rule is in force at once: a request from that network is refused.
    let refused = send(&app, from("203.0.113.9", "GET", "/")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    // Validation as in the API: the field is named, what was typed is kept, nothing added.
    for (fields, field) in [
        (
            vec![("target", "203.0.113.7/24"), ("action", "block")],
            "target",
        ),
        (
            vec![("target", "not an address"), ("action", "block")],
            "target",
        ),
        (
            vec![("target", "198.51.100.0/24"), ("action", "ban")],
            "action",
        ),
        (
            vec![
                ("target", "198.51.100.0/24"),
                ("action", "block"),
                ("for", "soon"),
            ],
            "for",
        ),
        (
            vec![
                ("target", "198.51.100.0/24"),
                ("action", "block"),
                ("for", "1h"),
                ("expires", "2030-01-01T00:00:00Z"),
            ],
            "for",
        ),
        (
            vec![
                ("target", "198.51.100.0/24"),
                ("action", "block"),
                ("expires", "2000-01-01T00:00:00Z"),
            ],
            "expires",
        ),
        (vec![("action", "block")], "target"),
    ] {
        let answer = send(&app, session.post(&rules, &fields)).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{fields:?}: {}",
            answer.text
        );
        assert!(
            answer.text.contains(&format!("`{field}`")),
            "{field}: {}",
            answer.text
        );
        if let Some((_, target)) = fields.iter().find(|(n, _)| *n == "target") {
            assert!(
                answer.text.contains(&format!(r#"value="{target}""#)),
                "kept {target}"
            );
        }
    }
    assert!(bouncer
        .rules()
        .check("198.51.100.1".parse().unwrap(), None)
        .block
        .is_none());

    // Filters: by action and source; a bad one is named.
    send(
        &app,
        session.post(&rules, &[("target", "user:mallory"), ("action", "allow")]),
    )
    .await;
    let blocks = send(
        &app,
        session.get(&format!("{rules}?action=block&source=&state=active")),
    )
    .await;
    assert_eq!(blocks.status, StatusCode::OK);
    assert!(blocks.text.contains(">203.0.113.0/24<") && !blocks.text.contains("mallory"));
    let allows = send(&app, session.get(&format!("{rules}?action=allow"))).await;
    assert!(allows.text.contains("mallory") && !allows.text.contains(">203.0.113.0/24<"));
    let bad = send(&app, session.get(&format!("{rules}?action=maybe"))).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text.contains("Bad filter `action`"), "{}", bad.text);
    let unknown = send(&app, session.get(&format!("{rules}?colour=red"))).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);

    // Delete: gone from the page and from force; deleting again says so.
    let page = bouncer
        .rules()
        .list(actix_bouncer::rules::ListQuery::first(10))
        .await
        .unwrap();
    let id = page
        .rules
        .iter()
        .find(|r| r.target.to_string() == "203.0.113.0/24")
        .unwrap()
        .id
        .0;
    let answer = send(&app, session.post(&format!("{rules}/{id}/delete"), &[])).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(
        send(&app, from("203.0.113.9", "GET", "/")).await.status,
        StatusCode::OK
    );
    let again = send(&app, session.post(&format!("{rules}/{id}/delete"), &[])).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    let junk = send(&app, session.post(&format!("{rules}/12x/delete"), &[])).await;
    assert_eq!(junk.status, StatusCode::BAD_REQUEST);
}

#[actix_web::test]
async fn paging_walks_every_rule_once() {
    let bouncer = builder().build().unwrap();
    let app = app!(bouncer);
    let session = sign_in(&app, TOKEN).await;
    let batch: Vec<NewRule> = (0..120u32)
        .map(|i| {
            NewRule::block(RuleTarget::ip(
                std::net::Ipv4Addr::from(0xCB00_7100 + i).into(),
            ))
        })
        .collect();
    bouncer.rules().add_many(batch).await.unwrap();
    let mut seen = 0;
    let mut next = format!("{BASE}/rules?action=block");
    for _ in 0..10 {
        let page = send(&app, session.get(&next)).await;
        seen += page.text.matches("203.0.113.").count() / 2; // the link text and its href
        match page.text.find("\">Next page<") {
            Some(end) => {
                let start = page.text[..end].rfind("href=\"").unwrap() + 6;
                next = page.text[start..end].replace("&amp;", "&");
            }
            None => break,
        }
    }
    assert_eq!(seen, 120);
}

#[actix_web::test]
async fn bans_are_listed_and_lifted() {
    let bouncer = builder().build().unwrap();
    let app = app!(bouncer);
    let session = sign_in(&app, TOKEN).await;
    let key = bouncer.key_for("198.51.100.23".parse().unwrap());
    bouncer.ban(key, Duration::from_secs(900)).await.unwrap();
    assert_eq!(
        send(&app, from("198.51.100.23", "GET", "/")).await.status,
        StatusCode::FORBIDDEN
    );

    let page = send(&app, session.get(&format!("{BASE}/bans"))).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.text.contains("198.51.100.23") && page.text.contains("in 15m"),
        "{}",
        page.text
    );
    let overview = send(&app, session.get(&format!("{BASE}/"))).await;
    assert!(
        overview.text.contains("1 active on this instance"),
        "{}",
        overview.text
    );

    let answer = send(
        &app,
        session.post(&format!("{BASE}/bans/unban"), &[("key", "198.51.100.23")]),
    )
    .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text);
    assert_eq!(
        send(&app, from("198.51.100.23", "GET", "/")).await.status,
        StatusCode::OK
    );
    let page = send(
        &app,
        get(answer.location()).insert_header((header::COOKIE, session.cookie.as_str())),
    )
    .await;
    assert!(page.text.contains("Unbanned 198.51.100.23."));
    assert!(page.text.contains("Nobody is banned"));

    let bad = send(
        &app,
        session.post(&format!("{BASE}/bans/unban"), &[("key", "not-a-key")]),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text.contains("Not unbanned"));
}

#[actix_web::test]
async fn a_client_page_says_what_a_request_would_get_and_why() {
    let bouncer = builder()
        .rule(
            NewRule::block(RuleTarget::Network("203.0.113.0/24".parse().unwrap()))
                .comment("scraper"),
        )
        .rule(NewRule::block(RuleTarget::User("mallory".to_owned())))
        .build()
        .unwrap();
    let app = app!(bouncer);
    let session = sign_in(&app, TOKEN).await;

    let blocked = send(&app, session.get(&format!("{BASE}/client?q=203.0.113.7"))).await;
    assert_eq!(blocked.status, StatusCode::OK, "{}", blocked.text);
    assert!(
        blocked.text.contains("refused (blacklisted)"),
        "{}",
        blocked.text
    );
    assert!(blocked.text.contains("Rules on exactly 203.0.113.7"));
    let network = send(
        &app,
        session.get(&format!("{BASE}/client?q=203.0.113.0%2F24")),
    )
    .await;
    assert!(network.text.contains("scraper"), "{}", network.text);

    let fine = send(&app, session.get(&format!("{BASE}/client?q=198.51.100.4"))).await;
    assert!(fine.text.contains(">allowed<"), "{}", fine.text);
    // Judging does not count: a hundred looks leave the client's limit untouched.
    for _ in 0..100 {
        send(&app, session.get(&format!("{BASE}/client?q=198.51.100.4"))).await;
    }
    assert_eq!(
        send(&app, from("198.51.100.4", "GET", "/")).await.status,
        StatusCode::OK
    );

    let tool = send(
        &app,
        session.get(&format!("{BASE}/client?q=198.51.100.4&ua=curl%2F8.5.0")),
    )
    .await;
    assert!(tool.text.contains("curl"), "{}", tool.text);

    let user = send(
        &app,
        session.get(&format!("{BASE}/client?q=user%3Amallory")),
    )
    .await;
    assert!(user.text.contains("refused (blacklisted)"), "{}", user.text);

    let key = bouncer.key_for("198.51.100.99".parse().unwrap());
    bouncer.ban(key, Duration::from_secs(60)).await.unwrap();
    let banned = send(&app, session.get(&format!("{BASE}/client?q=198.51.100.99"))).await;
    assert!(
        banned.text.contains("refused (banned)") && banned.text.contains("banned, ends"),
        "{}",
        banned.text
    );

    for bad in ["nonsense", "203.0.113.7%2F24", "user%3A", "1%0A2"] {
        let answer = send(&app, session.get(&format!("{BASE}/client?q={bad}"))).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let answer = send(
        &app,
        session.get(&format!("{BASE}/client?q=198.51.100.4&from=nowhere")),
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
}

#[actix_web::test]
async fn client_controlled_text_comes_out_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("access.db").display());
    let bouncer = builder()
        .rule_store_url("sqlite::memory:")
        .trusted_proxies(["127.0.0.1"])
        .build()
        .unwrap();
    let log = AccessLog::builder().store_url(&url).build().unwrap();
    let store = SqlAccessLog::connect(&url).await.unwrap();
    let dashboard = bouncer
        .dashboard(BASE)
        .access_log(log.clone())
        .log_store(store);
    let app = test::init_service(
        App::new()
            .wrap(bouncer.clone())
            .wrap(log.clone())
            .service(dashboard)
            .default_service(web::to(|| async { HttpResponse::Ok().body("app") })),
    )
    .await;
    let script = "<script>alert(1)</script>";
    let session = sign_in(&app, TOKEN).await;
    send(
        &app,
        session.post(
            &format!("{BASE}/rules"),
            &[
                ("target", "user:<img src=x onerror=alert(1)>"),
                ("action", "block"),
                ("comment", script),
            ],
        ),
    )
    .await;
    let req = from("198.51.100.7", "GET", "/%3Cscript%3Ealert(1)%3C/script%3E")
        .insert_header(("user-agent", script));
    send(&app, req).await;
    log.flush().await;

    let pages = [
        format!("{BASE}/"),
        format!("{BASE}/rules"),
        format!("{BASE}/client?q=198.51.100.7"),
        format!("{BASE}/client?q=user%3A%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E"),
    ];
    for page in &pages {
        let answer = send(&app, session.get(page)).await;
        assert_eq!(answer.status, StatusCode::OK, "{page}: {}", answer.text);
        assert!(!answer.text.contains("<script>alert"), "{page}: raw script");
        assert!(!answer.text.contains("<img src=x"), "{page}: raw img");
    }
    let rules = send(&app, session.get(&pages[1])).await;
    assert!(
        rules.text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{}",
        rules.text
    );
    let client = send(&app, session.get(&pages[2])).await;
    assert!(
        client
            .text
            .contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{}",
        client.text
    );
    log.shutdown().await;
}

#[actix_web::test]
async fn the_overview_draws_traffic_from_the_access_log() {
    let dir = tempfile::tempdir().unwrap();
    overview_from(&format!(
        "sqlite://{}",
        dir.path().join("access.db").display()
    ))
    .await;
}

#[cfg(feature = "postgres")]
#[actix_web::test]
async fn the_overview_draws_traffic_from_a_postgresql_access_log() {
    let Some(db) = common::postgres::TestDatabase::create("dashboard overview").await else {
        return;
    };
    overview_from(&db.url).await;
    db.drop_database().await;
}

/// The overview and a client's activity, read from the access log at `url`.
async fn overview_from(url: &str) {
    let bouncer = builder()
        .rule(NewRule::block(RuleTarget::Network(
            "203.0.113.0/24".parse().unwrap(),
        )))
        .build()
        .unwrap();
    let log = AccessLog::builder().store_url(url).build().unwrap();
    let store = SqlAccessLog::connect(url).await.unwrap();
    let app = test::init_service(
        App::new()
            .wrap(bouncer.clone())
            .wrap(log.clone())
            .service(
                bouncer
                    .dashboard(BASE)
                    .access_log(log.clone())
                    .log_store(store.clone()),
            )
            .default_service(web::to(|| async { HttpResponse::Ok().body("app") })),
    )
    .await;
    for i in 0..7 {
        send(
            &app,
            from("198.51.100.1", "GET", &format!("/page/{}", i % 2)),
        )
        .await;
    }
    for _ in 0..3 {
        send(&app, from("203.0.113.5", "GET", "/wp-login.php")).await;
    }
    log.flush().await;
    let session = sign_in(&app, TOKEN).await;
    let overview = send(&app, session.get(&format!("{BASE}/"))).await;
    assert_eq!(overview.status, StatusCode::OK);
    let text = &overview.text;
    assert!(text.contains("<svg"), "a chart");
    assert!(text.contains("Requests per minute, last hour: "), "{text}");
    assert!(text.contains("3 refused"), "{text}");
    assert!(
        text.contains("/wp-login.php") && text.contains("/page/0"),
        "{text}"
    );
    // The refused client, the reason, and nobody refused who was not.
    assert!(
        text.contains(">203.0.113.5<") && !text.contains(">198.51.100.1<"),
        "{text}"
    );
    assert!(text.contains("<td>blacklisted</td>"), "{text}");
    assert!(text.contains("log written"), "{text}");
    assert!(text.contains(r#"class="blocked""#), "{text}");
    // The charts alone, for htmx's refresh.
    let charts = send(&app, session.get(&format!("{BASE}/overview/charts"))).await;
    assert_eq!(charts.status, StatusCode::OK);
    assert!(charts.text.starts_with("<section"), "{}", charts.text);
    // The client page shows its activity.
    let client = send(&app, session.get(&format!("{BASE}/client?q=203.0.113.5"))).await;
    assert!(
        client.text.contains("refused: blacklisted") && client.text.contains("GET /wp-login.php"),
        "{}",
        client.text
    );
    log.shutdown().await;
}

#[actix_web::test]
async fn panels_say_when_their_source_is_not_connected() {
    let bouncer = builder().build().unwrap();
    let app = app!(bouncer);
    let session = sign_in(&app, TOKEN).await;
    let overview = send(&app, session.get(&format!("{BASE}/"))).await;
    assert!(
        overview.text.contains("The access log is not connected"),
        "{}",
        overview.text
    );
    assert!(overview.text.contains("No range feed is configured"));
    let client = send(&app, session.get(&format!("{BASE}/client?q=198.51.100.4"))).await;
    assert!(client.text.contains("The access log is not connected"));
}

#[actix_web::test]
async fn hostile_forms_get_a_clear_answer() {
    let bouncer = builder().build().unwrap();
    let app = app!(bouncer);
    let session = sign_in(&app, TOKEN).await;
    let huge = "a".repeat(64 * 1024);
    let answer = send(
        &app,
        session.post(&format!("{BASE}/rules"), &[("comment", &huge)]),
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let answer = send(
        &app,
        session
            .get(&format!("{BASE}/rules"))
            .method(actix_web::http::Method::POST)
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .set_payload("{}"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    // Sign-out clears the cookie.
    let answer = send(&app, session.post(&format!("{BASE}/logout"), &[])).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert!(answer.set_cookie().unwrap().contains("Max-Age=0"));
    // Assets need no session and are the vendored files.
    let js = send(&app, get(&format!("{BASE}/assets/htmx.min.js"))).await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(js.text.starts_with("var htmx="));
    assert_security_headers(&js, "asset");
    assert_eq!(
        send(&app, get(&format!("{BASE}/assets/..%2Fmod.rs")))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[actix_web::test]
async fn the_overview_shows_the_feeds_health() {
    use actix_bouncer::feeds::{FeedConfig, FeedFormat, FeedKind};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tor.netset");
    std::fs::write(
        &path,
        "# tor exits\n198.51.100.0/24\n203.0.113.7\nnot a network\n",
    )
    .unwrap();
    let bouncer = builder()
        .feed(FeedConfig::new(
            &path,
            FeedFormat::Netset,
            Some(FeedKind::Tor),
        ))
        .build()
        .unwrap();
    let app = app!(bouncer);
    let session = sign_in(&app, TOKEN).await;
    let page = send(&app, session.get(&format!("{BASE}/"))).await;
    assert_eq!(page.status, StatusCode::OK);
    let text = &page.text;
    assert!(
        text.contains("<td>tor</td><td class=\"num\">2</td>"),
        "{text}"
    );
    assert!(
        text.contains("Warnings") && text.contains("not a network"),
        "{text}"
    );
    assert!(text.contains("reload failures"), "{text}");
}
