//! The dashboard in a real browser: headless Chromium driven over WebDriver (Debian's
//! `chromium` and `chromium-driver`), against a bound server on loopback. The operator signs
//! in, adds a rule and sees a request from that address refused, unbans a banned client, sees
//! the overview's chart drawn and a client's verdict.
//!
//! Clients are told apart by their loopback source address: the operator's browser is
//! 127.0.0.1 (allowlisted), the clients it judges connect from 127.0.0.2 and 127.0.0.3.
//!
//! Without Chromium or ChromeDriver (`BOUNCER_CHROMIUM`, `BOUNCER_CHROMEDRIVER`, or
//! `/usr/bin/chromium` and `/usr/bin/chromedriver`) the test says it was skipped. With
//! `BOUNCER_SCREENSHOTS=<dir>` it also saves a PNG of each page there (the README's).

#![cfg(all(feature = "dashboard", feature = "sqlite"))]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use actix_bouncer::access_log::{AccessLog, AccessRecord, AccessVerdict, SqlAccessLog};
use actix_bouncer::{BlockReason, Bouncer, Decision, NewRule, RuleTarget};
use actix_web::{web, App, HttpResponse, HttpServer};
use fantoccini::{Client, ClientBuilder, Locator};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "ops-token-0123456789abcdef";
const BASE: &str = "/_bouncer/ui";
/// Long enough for a loaded CI machine.
const DEADLINE: Duration = Duration::from_secs(20);

/// The tool `var` names (which must then exist: CI sets it so the test never skips), or
/// `default` when it exists.
fn tool(var: &str, default: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(path) => {
            let path = PathBuf::from(path);
            assert!(
                path.exists(),
                "{var} names {}, which does not exist",
                path.display()
            );
            Some(path)
        }
        None => Some(PathBuf::from(default)).filter(|p| p.exists()),
    }
}

/// A chromedriver on a free port, killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_driver(path: &PathBuf) -> Driver {
    let port = free_port();
    let child = Command::new(path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let start = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(start.elapsed() < DEADLINE, "chromedriver did not listen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    driver
}

async fn browser(driver: &Driver, chromium: &PathBuf) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_owned(),
        serde_json::json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1366,1000"],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a WebDriver session")
}

/// A GET of `path` from the loopback address `from`: the status code.
async fn status_from(from: Ipv4Addr, server: SocketAddr, path: &str) -> u16 {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(IpAddr::V4(from), 0)).unwrap();
    let mut stream = socket.connect(server).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {server}\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) \
         AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\n\
         Accept: text/html\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Waits for an element matching `css`, and returns it.
async fn wait_for(c: &Client, css: &str) -> fantoccini::elements::Element {
    c.wait()
        .at_most(DEADLINE)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
}

/// Waits until the page's text contains `text`.
async fn wait_for_text(c: &Client, text: &str) {
    let start = Instant::now();
    loop {
        let body = c.source().await.unwrap();
        if body.contains(text) {
            return;
        }
        assert!(start.elapsed() < DEADLINE, "no {text:?} in {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn screenshot(c: &Client, name: &str) {
    let Some(dir) = std::env::var_os("BOUNCER_SCREENSHOTS") else {
        return;
    };
    let png = c.screenshot().await.unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(PathBuf::from(dir).join(format!("{name}.png")), png).unwrap();
}

/// A day of past traffic, for the screenshots' charts: a few hundred requests an hour, some
/// refused, through the access log's own writer API.
async fn past_traffic(store: &SqlAccessLog) {
    use actix_bouncer::access_log::AccessSink;
    let now = SystemTime::now();
    let mut batch = Vec::new();
    for minute in (1..24 * 60u64).rev() {
        let at = now - Duration::from_secs(minute * 60);
        let busy = 3 + (minute % 7) + if minute < 60 { 6 } else { 0 };
        for i in 0..busy {
            let bad = i == 0 && minute % 3 == 0;
            let ip: IpAddr = if bad {
                Ipv4Addr::new(203, 0, 113, (minute % 5) as u8 + 10).into()
            } else {
                Ipv4Addr::new(198, 51, 100, (i % 20) as u8 + 1).into()
            };
            let path = match (bad, i % 4) {
                (true, _) => "/wp-login.php",
                (_, 0) => "/",
                (_, 1) => "/api/data",
                (_, 2) => "/verdict",
                _ => "/static/app.css",
            };
            let verdict = if bad {
                AccessVerdict::new(Decision::Block, true, 100, Some(BlockReason::Blacklisted))
            } else {
                AccessVerdict::new(Decision::Allow, true, 5, None)
            };
            let mut record = AccessRecord::new(at, ip, "GET", path);
            record.status = if bad { 403 } else { 200 };
            record.verdict = Some(verdict);
            record.user_agent = Some(
                if bad {
                    "python-requests/2.31"
                } else {
                    "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0"
                }
                .to_owned(),
            );
            batch.push(record);
        }
    }
    store.write(&batch).await.unwrap();
}

#[actix_web::test]
async fn a_browser_signs_in_adds_a_rule_unbans_and_sees_the_chart() {
    let (Some(chromium), Some(chromedriver)) = (
        tool("BOUNCER_CHROMIUM", "/usr/bin/chromium"),
        tool("BOUNCER_CHROMEDRIVER", "/usr/bin/chromedriver"),
    ) else {
        eprintln!(
            "skipped: no Chromium/ChromeDriver (install Debian's chromium and chromium-driver, \
             or set BOUNCER_CHROMIUM and BOUNCER_CHROMEDRIVER)"
        );
        return;
    };

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("access.db").display());
    let bouncer = Bouncer::builder()
        .admin_token("ops", TOKEN)
        .rule_store_url(format!(
            "sqlite://{}",
            dir.path().join("rules.db").display()
        ))
        .rule(NewRule::allow(RuleTarget::ip("127.0.0.1".parse().unwrap())).comment("the operator"))
        .limit(10, Duration::from_secs(60))
        .ban_for(Duration::from_secs(900))
        .build()
        .unwrap();
    let log = AccessLog::builder().store_url(&url).build().unwrap();
    let store = SqlAccessLog::connect(&url).await.unwrap();
    if std::env::var_os("BOUNCER_SCREENSHOTS").is_some() {
        past_traffic(&store).await;
    }
    let (served_bouncer, served_log, served_store) = (bouncer.clone(), log.clone(), store.clone());
    let server = HttpServer::new(move || {
        App::new()
            .wrap(served_bouncer.clone())
            .wrap(served_log.clone())
            .service(
                served_bouncer
                    .dashboard(BASE)
                    .secure_cookie(false)
                    .access_log(served_log.clone())
                    .log_store(served_store.clone()),
            )
            .default_service(web::to(|| async { HttpResponse::Ok().body("app") }))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.addrs()[0];
    let handle = server.run();
    let stop = handle.handle();
    actix_web::rt::spawn(handle);
    let site = format!("http://{addr}");

    let driver = start_driver(&chromedriver).await;
    let c = browser(&driver, &chromium).await;
    let client_a = Ipv4Addr::new(127, 0, 0, 2);
    let client_b = Ipv4Addr::new(127, 0, 0, 3);
    for _ in 0..3 {
        assert_eq!(status_from(client_a, addr, "/").await, 200);
    }

    // Sign in.
    c.goto(&format!("{site}{BASE}/")).await.unwrap();
    wait_for(&c, "input#token").await;
    screenshot(&c, "login").await;
    c.find(Locator::Css("input#token"))
        .await
        .unwrap()
        .send_keys(TOKEN)
        .await
        .unwrap();
    c.find(Locator::Css("form.login button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(&c, "signed in as").await;

    // The overview draws the chart from the access log.
    let start = Instant::now();
    while log.stats().written < 3 {
        assert!(start.elapsed() < DEADLINE, "the access log wrote nothing");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.refresh().await.unwrap();
    wait_for(&c, "svg.chart").await;
    let bars = c.find_all(Locator::Css("svg.chart rect")).await.unwrap();
    assert!(!bars.is_empty(), "the chart has bars");
    let charts = c.find_all(Locator::Css("svg.chart")).await.unwrap();
    assert_eq!(charts.len(), 2);
    let (_, _, w, h) = charts[0].rectangle().await.unwrap();
    assert!(w > 100.0 && h > 20.0, "the chart is drawn at {w}x{h}");
    screenshot(&c, "overview").await;

    // Add a rule: a request from that address is refused at once.
    c.find(Locator::LinkText("Rules"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&c, "form.add input[name=target]").await;
    c.find(Locator::Css("form.add input[name=target]"))
        .await
        .unwrap()
        .send_keys("127.0.0.2")
        .await
        .unwrap();
    c.find(Locator::Css("form.add input[name=for]"))
        .await
        .unwrap()
        .send_keys("1h")
        .await
        .unwrap();
    c.find(Locator::Css("form.add input[name=comment]"))
        .await
        .unwrap()
        .send_keys("scraper seen in the logs")
        .await
        .unwrap();
    c.find(Locator::Css("form.add button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(&c, "added.").await;
    wait_for_text(&c, "scraper seen in the logs").await;
    screenshot(&c, "rules").await;
    assert_eq!(status_from(client_a, addr, "/").await, 403);

    // A client over its limit is banned; unban it from the bans page.
    let mut banned = false;
    for _ in 0..30 {
        if status_from(client_b, addr, "/").await == 403 {
            banned = true;
            break;
        }
    }
    assert!(banned, "127.0.0.3 was banned");
    c.find(Locator::LinkText("Bans"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(&c, "127.0.0.3").await;
    screenshot(&c, "bans").await;
    c.find(Locator::Css("form.inline button.danger"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // htmx asks first (hx-confirm).
    let start = Instant::now();
    while c.accept_alert().await.is_err() {
        assert!(start.elapsed() < DEADLINE, "no confirmation asked");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_for_text(&c, "Unbanned 127.0.0.3.").await;
    assert_eq!(status_from(client_b, addr, "/").await, 200);

    // The client page: the verdict a request from the blocked address would get, and why.
    c.find(Locator::LinkText("Client"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&c, "input[name=q]").await;
    c.find(Locator::Css("input[name=q]"))
        .await
        .unwrap()
        .send_keys("127.0.0.2")
        .await
        .unwrap();
    c.find(Locator::Css("form.filters button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(&c, "refused (blacklisted)").await;
    wait_for_text(&c, "GET /").await;
    screenshot(&c, "client").await;

    // htmx ran: the vendored script passed the Content-Security-Policy and loaded.
    let htmx = c.execute("return typeof htmx;", vec![]).await.unwrap();
    assert_eq!(htmx, serde_json::json!("object"));

    c.close().await.unwrap();
    stop.stop(true).await;
    log.shutdown().await;
}
