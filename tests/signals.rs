//! Risk signals through the middleware: range feeds, the User-Agent, crawler checks, weights,
//! and the high-risk event. Uses the sample feeds shipped in `examples/data/`.

use std::sync::{Arc, Mutex};

use actix_bouncer::events::{BouncerEvent, EventKind};
use actix_bouncer::feeds::{FeedConfig, FeedFormat, FeedKind};
use actix_bouncer::guard::Human;
use actix_bouncer::Weights;
use actix_bouncer::{Bouncer, BouncerBuilder, IpVerdict};
use actix_web::http::StatusCode;
use actix_web::{test, web, App, HttpResponse};

const BROWSER: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";
const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

fn data(file: &str) -> String {
    format!("{}/examples/data/{file}", env!("CARGO_MANIFEST_DIR"))
}

fn with_sample_feeds() -> BouncerBuilder {
    Bouncer::builder()
        .feed(FeedConfig::new(
            data("tor-exits.txt"),
            FeedFormat::Netset,
            Some(FeedKind::Tor),
        ))
        .feed(FeedConfig::new(
            data("hosting.netset"),
            FeedFormat::Netset,
            Some(FeedKind::Hosting),
        ))
        .feed(FeedConfig::new(data("ranges.tsv"), FeedFormat::Tsv, None))
}

macro_rules! app {
    ($bouncer:expr) => {
        test::init_service(
            App::new()
                .wrap($bouncer)
                .route(
                    "/",
                    web::get().to(|v: IpVerdict| async move { HttpResponse::Ok().json(v) }),
                )
                .route("/signup", web::get().to(|_h: Human| async { "welcome" })),
        )
        .await
    };
}

fn from(ip: &str, ua: Option<&str>) -> test::TestRequest {
    let ip: std::net::IpAddr = ip.parse().unwrap();
    let req = test::TestRequest::get()
        .uri("/")
        .peer_addr(std::net::SocketAddr::new(ip, 4000));
    match ua {
        Some(ua) => req.insert_header(("user-agent", ua.to_owned())),
        None => req,
    }
}

async fn verdict<S, B>(app: &S, req: test::TestRequest) -> serde_json::Value
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let res = test::call_service(app, req.to_request()).await;
    assert_eq!(res.status(), StatusCode::OK);
    serde_json::from_slice(&test::read_body(res).await).unwrap()
}

#[actix_web::test]
async fn range_feeds_set_flags_points_reasons_and_provider() {
    let app = app!(with_sample_feeds().build().unwrap());
    let v = verdict(&app, from("203.0.113.7", Some(BROWSER))).await;
    assert_eq!(v["flags"], serde_json::json!(["tor"]));
    assert_eq!(v["score"], 60);
    assert_eq!(v["reasons"], serde_json::json!(["tor range (+60)"]));

    let v = verdict(&app, from("192.0.2.10", Some(BROWSER))).await;
    assert_eq!(v["flags"], serde_json::json!(["hosting"]));
    assert_eq!(v["provider"], "Example Cloud");
    assert_eq!(
        v["reasons"],
        serde_json::json!(["hosting range (Example Cloud) (+20)"])
    );

    let v = verdict(&app, from("2001:db8:c10d::5", Some(BROWSER))).await;
    assert_eq!(v["flags"], serde_json::json!(["hosting"]));

    let v = verdict(&app, from("198.51.100.150", Some(BROWSER))).await;
    assert_eq!(v["flags"], serde_json::json!(["vpn"]));
    assert_eq!(v["provider"], "Example VPN");

    let v = verdict(&app, from("192.0.2.200", Some(BROWSER))).await;
    assert_eq!(v["flags"], serde_json::json!([]));
    assert_eq!(v["score"], 0);
}

#[actix_web::test]
async fn tor_is_refused_by_require_human() {
    let app = app!(with_sample_feeds().build().unwrap());
    let req = from("203.0.113.23", Some(BROWSER)).uri("/signup");
    assert_eq!(
        test::call_service(&app, req.to_request()).await.status(),
        StatusCode::FORBIDDEN
    );
    let req = from("192.0.2.200", Some(BROWSER)).uri("/signup");
    assert_eq!(
        test::call_service(&app, req.to_request()).await.status(),
        StatusCode::OK
    );
}

#[actix_web::test]
async fn user_agent_signals() {
    let app = app!(with_sample_feeds().build().unwrap());
    let v = verdict(&app, from("192.0.2.200", None)).await;
    assert_eq!(v["flags"], serde_json::json!(["bot"]));
    assert_eq!(v["reasons"], serde_json::json!(["no User-Agent (+15)"]));

    let v = verdict(&app, from("192.0.2.201", Some("curl/8.5.0"))).await;
    assert_eq!(v["flags"], serde_json::json!(["bot"]));
    assert_eq!(
        v["reasons"],
        serde_json::json!(["automation client (curl) (+25)"])
    );

    let v = verdict(&app, from("192.0.2.202", Some("python-requests/2.31.0"))).await;
    assert_eq!(v["score"], 25);
}

#[actix_web::test]
async fn crawler_claims_are_checked_against_their_published_ranges() {
    let app = app!(with_sample_feeds().build().unwrap());
    // Inside Googlebot's ranges: a declared crawler, not punished for its range either.
    let v = verdict(&app, from("192.0.2.70", Some(GOOGLEBOT))).await;
    assert_eq!(v["flags"], serde_json::json!(["declared_crawler"]));
    assert_eq!(v["score"], 0);
    assert_eq!(v["provider"], "Googlebot");
    let v = verdict(&app, from("2001:db8:b07::9", Some(GOOGLEBOT))).await;
    assert_eq!(v["flags"], serde_json::json!(["declared_crawler"]));

    // The same claim from elsewhere: a fake crawler (70) on top of that range's own kind.
    let v = verdict(&app, from("192.0.2.200", Some(GOOGLEBOT))).await;
    assert_eq!(v["flags"], serde_json::json!(["fake_crawler"]));
    assert_eq!(v["score"], 70);
    assert_eq!(
        v["reasons"],
        serde_json::json!(["claims to be Googlebot from outside its published ranges (+70)"])
    );
    // From a hosting range: 20 + 70 reaches the default threshold of 90.
    let res = test::call_service(&app, from("192.0.2.10", Some(GOOGLEBOT)).to_request()).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // A crawler whose ranges are not loaded cannot be checked: a small, explained penalty.
    let v = verdict(
        &app,
        from(
            "192.0.2.200",
            Some("Mozilla/5.0 (compatible; YandexBot/3.0)"),
        ),
    )
    .await;
    assert_eq!(v["flags"], serde_json::json!(["bot"]));
    assert_eq!(v["score"], 10);

    // A browser from a crawler range is automation without a claim: the `bot` range weight.
    let v = verdict(&app, from("192.0.2.70", Some(BROWSER))).await;
    assert_eq!(v["flags"], serde_json::json!(["bot"]));
    assert_eq!(v["score"], 20);
}

#[actix_web::test]
async fn a_fake_crawler_on_a_tor_exit_is_blocked_by_the_global_threshold() {
    let app = app!(with_sample_feeds().build().unwrap());
    let res = test::call_service(&app, from("203.0.113.7", Some(GOOGLEBOT)).to_request()).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn weights_come_from_scoring() {
    let bouncer = Bouncer::builder()
        .toml_str(&format!(
            "[scoring]\ntor = 95\nmissing_user_agent = 0\n[[feeds]]\npath = {:?}\nformat = \"netset\"\nkind = \"tor\"\n",
            data("tor-exits.txt")
        ))
        .unwrap()
        .build()
        .unwrap();
    let app = app!(bouncer);
    let res = test::call_service(&app, from("203.0.113.7", Some(BROWSER)).to_request()).await;
    assert_eq!(
        res.status(),
        StatusCode::FORBIDDEN,
        "95 points is over the 90 threshold"
    );
    let v = verdict(&app, from("192.0.2.200", None)).await;
    assert_eq!(v["score"], 0);
    assert_eq!(
        v["flags"],
        serde_json::json!(["bot"]),
        "a zero weight still flags"
    );
}

#[actix_web::test]
async fn high_risk_requests_emit_an_event() {
    let events = Arc::new(Mutex::new(Vec::<BouncerEvent>::new()));
    let sink = events.clone();
    let mut weights = Weights::default();
    weights.high_risk = 60;
    let app = app!(with_sample_feeds()
        .scoring(weights)
        .on_event(move |e| sink.lock().unwrap().push(e.clone()))
        .build()
        .unwrap());
    verdict(&app, from("203.0.113.7", Some(BROWSER))).await;
    verdict(&app, from("192.0.2.200", Some(BROWSER))).await;
    let events = events.lock().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, EventKind::HighRisk);
    assert_eq!(events[0].score, 60);
    assert_eq!(events[0].ip.to_string(), "203.0.113.7");
}

// `test` is actix's module here, so synchronous tests use its runtime attribute too.
#[actix_web::test]
async fn feed_config_errors_name_the_key() {
    for (toml, key) in [
        (
            "[[feeds]]\npath = \"/nonexistent/feed.txt\"\nformat = \"netset\"\nkind = \"tor\"",
            "feeds[0].path",
        ),
        (
            "[[feeds]]\npath = \"x\"\nformat = \"csv\"\nkind = \"tor\"",
            "feeds[0].format",
        ),
        (
            "[[feeds]]\npath = \"x\"\nformat = \"netset\"\nkind = \"martian\"",
            "feeds[0].kind",
        ),
        (
            "[[feeds]]\npath = \"x\"\nformat = \"netset\"\nkind = \"tor\"\nreload = \"soon\"",
            "feeds[0].reload",
        ),
        ("[scoring]\ntor = 101", "scoring.tor"),
        ("[scoring]\nhigh_risk = 0", "scoring.high_risk"),
    ] {
        let e = Bouncer::from_toml_str(toml).unwrap_err();
        assert_eq!(e.key(), Some(key), "{toml}: {e}");
    }
    let e = Bouncer::from_toml_str("[scoring]\ntorr = 5").unwrap_err();
    assert!(e.to_string().contains("torr"), "{e}");
}

#[cfg(not(feature = "reputation"))]
#[actix_web::test]
async fn a_reputation_section_needs_the_feature() {
    let e = Bouncer::from_toml_str("[reputation]\nurl = \"https://api.example/v1/ip/{ip}\"")
        .unwrap_err();
    assert_eq!(e.key(), Some("reputation"));
    assert!(e.to_string().contains("`reputation` feature"), "{e}");
}
