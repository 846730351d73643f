//! The access log end to end: real requests through actix-web, records collected by a test
//! sink, synchronised with `flush()` / `shutdown()` (no sleeps).

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_bouncer::access_log::{AccessLog, AccessRecord, AccessSink, Overflow};
use actix_bouncer::client_ip::{ClientIpResolver, IpHeader};
use actix_bouncer::{BlockReason, Bouncer, Decision, NewRule, StoreError};
use actix_web::dev::{Payload, Service};
use actix_web::http::StatusCode;
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::{test, App, HttpResponse};
use futures_util::{FutureExt, StreamExt};
use tokio::sync::{mpsc, Semaphore};

// ---------------------------------------------------------------- helpers

/// Keeps every record, and the size of every batch.
#[derive(Clone, Default)]
struct Memory {
    records: Arc<Mutex<Vec<AccessRecord>>>,
    batches: Arc<Mutex<Vec<usize>>>,
}

impl AccessSink for Memory {
    async fn write(&self, batch: &[AccessRecord]) -> Result<(), StoreError> {
        self.records.lock().unwrap().extend_from_slice(batch);
        self.batches.lock().unwrap().push(batch.len());
        Ok(())
    }
}

impl Memory {
    fn records(&self) -> Vec<AccessRecord> {
        self.records.lock().unwrap().clone()
    }

    fn one(&self, path: &str) -> AccessRecord {
        let records = self.records();
        let found: Vec<_> = records.iter().filter(|r| r.path == path).collect();
        assert_eq!(found.len(), 1, "one record for {path}: {records:#?}");
        found[0].clone()
    }
}

/// A sink that says when it is entered and waits for a permit before it keeps a batch.
#[derive(Clone)]
struct Gated {
    memory: Memory,
    gate: Arc<Semaphore>,
    entered: mpsc::UnboundedSender<()>,
}

impl Gated {
    fn new() -> (Gated, mpsc::UnboundedReceiver<()>) {
        let (entered, rx) = mpsc::unbounded_channel();
        let gated = Gated {
            memory: Memory::default(),
            gate: Arc::new(Semaphore::new(0)),
            entered,
        };
        (gated, rx)
    }
}

impl AccessSink for Gated {
    async fn write(&self, batch: &[AccessRecord]) -> Result<(), StoreError> {
        let _ = self.entered.send(());
        self.gate.acquire().await.unwrap().forget();
        self.memory.write(batch).await
    }
}

/// Fails its first `fail` writes.
#[derive(Clone, Default)]
struct Flaky {
    memory: Memory,
    fail: usize,
    calls: Arc<AtomicUsize>,
}

impl AccessSink for Flaky {
    async fn write(&self, batch: &[AccessRecord]) -> Result<(), StoreError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.fail {
            return Err(StoreError::new("down"));
        }
        self.memory.write(batch).await
    }
}

fn peer(addr: &str) -> SocketAddr {
    addr.parse().unwrap()
}

/// Reads the whole payload and answers it back.
async fn echo(mut body: web::Payload) -> HttpResponse {
    let mut all = BytesMut::new();
    while let Some(chunk) = body.next().await {
        all.extend_from_slice(&chunk.unwrap());
    }
    HttpResponse::Ok().body(all.freeze())
}

/// An app whose every route echoes the body, behind `$log`.
macro_rules! echo_app {
    ($log:expr) => {
        test::init_service(App::new().wrap($log).default_service(web::to(echo))).await
    };
}

fn post(uri: &str) -> test::TestRequest {
    test::TestRequest::post()
        .uri(uri)
        .peer_addr(peer("198.51.100.1:1000"))
}

fn json(value: &str) -> serde_json::Value {
    serde_json::from_str(value).unwrap()
}

// ---------------------------------------------------------------- redaction

#[actix_web::test]
async fn queries_forms_and_json_are_redacted() {
    let memory = Memory::default();
    let log = AccessLog::builder().sink(memory.clone()).build().unwrap();
    let app = test::init_service(
        App::new()
            .wrap(log.clone())
            .route(
                "/form",
                web::post().to(|f: web::Form<HashMap<String, String>>| async move {
                    HttpResponse::Ok().body(f.len().to_string())
                }),
            )
            .route(
                "/json",
                web::post().to(|j: web::Json<serde_json::Value>| async move {
                    HttpResponse::Ok().json(j.into_inner())
                }),
            )
            .route("/q", web::get().to(HttpResponse::Ok)),
    )
    .await;

    let req = test::TestRequest::get()
        .uri("/q?q=shoes&Token=abc&pass%77ord=x&user_PASSWORD=y&X-Api-Key=k&page=2")
        .to_request();
    test::call_and_read_body(&app, req).await;

    let req = post("/form")
        .insert_header(("content-type", "application/x-www-form-urlencoded"))
        .set_payload("user=ann&Password=hunter2&csrfmiddlewaretoken=t&card%5Bcvv%5D=123&note=hi")
        .to_request();
    assert_eq!(test::call_and_read_body(&app, req).await, "5");

    let body = r#"{"user":"ann","PASSWORD":"hunter2","profile":{"wallet":[{"number":"4111","CVV":"123"},{"Secret":{"deep":true}}],"name":"Ann"},"list":[[{"api_key":1}]]}"#;
    let req = post("/json")
        .insert_header(("content-type", "application/json; charset=utf-8"))
        .set_payload(body)
        .to_request();
    let echoed = test::call_and_read_body(&app, req).await;
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&echoed).unwrap(),
        json(body),
        "the handler gets the body untouched"
    );

    log.shutdown().await;
    assert_eq!(
        memory.one("/q").query.as_deref(),
        Some("q=shoes&Token=[REDACTED]&pass%77ord=[REDACTED]&user_PASSWORD=[REDACTED]&X-Api-Key=[REDACTED]&page=2")
    );
    assert_eq!(
        memory.one("/form").body.as_deref(),
        Some("user=ann&Password=[REDACTED]&csrfmiddlewaretoken=[REDACTED]&card%5Bcvv%5D=[REDACTED]&note=hi")
    );
    let logged = memory.one("/json").body.unwrap();
    assert_eq!(
        json(&logged),
        json(
            r#"{"user":"ann","PASSWORD":"[REDACTED]","profile":{"wallet":[{"number":"4111","CVV":"[REDACTED]"},{"Secret":"[REDACTED]"}],"name":"Ann"},"list":[[{"api_key":"[REDACTED]"}]]}"#
        )
    );
}

#[actix_web::test]
async fn the_redaction_list_is_configurable() {
    let memory = Memory::default();
    let log = AccessLog::builder()
        .sink(memory.clone())
        .redact(["ssn"])
        .build()
        .unwrap();
    let app = echo_app!(log.clone());
    let req = test::TestRequest::get()
        .uri("/a?SSN=1&password=2")
        .to_request();
    test::call_and_read_body(&app, req).await;
    log.shutdown().await;
    assert_eq!(
        memory.one("/a").query.as_deref(),
        Some("SSN=[REDACTED]&password=2")
    );
}

// ---------------------------------------------------------------- bodies

#[actix_web::test]
async fn the_handler_gets_every_body_intact() {
    let memory = Memory::default();
    let log = AccessLog::builder().sink(memory.clone()).build().unwrap();
    let app = echo_app!(log.clone());

    let form = "a=1&password=2";
    let small_json = r#"{"token":"t","x":[1,2,3]}"#;
    let big_json = format!(r#"{{"password":"p","pad":"{}"}}"#, "x".repeat(1 << 20));
    let binary: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let cases: [(&str, &str, Bytes); 4] = [
        (
            "/form",
            "application/x-www-form-urlencoded",
            Bytes::from(form),
        ),
        ("/json", "application/json", Bytes::from(small_json)),
        ("/big", "application/json", Bytes::from(big_json)),
        ("/bin", "application/octet-stream", Bytes::from(binary)),
    ];
    for (path, ct, body) in &cases {
        let req = post(path)
            .insert_header(("content-type", *ct))
            .set_payload(body.clone())
            .to_request();
        let echoed = test::call_and_read_body(&app, req).await;
        assert_eq!(&echoed, body, "{path}: the handler read the body as sent");
    }
    log.shutdown().await;
    assert_eq!(
        memory.one("/form").body.as_deref(),
        Some("a=1&password=[REDACTED]")
    );
    assert_eq!(
        json(&memory.one("/json").body.unwrap()),
        json(r#"{"token":"[REDACTED]","x":[1,2,3]}"#)
    );
    assert_eq!(
        memory.one("/big").body.as_deref(),
        Some("[omitted: over 16384 bytes]")
    );
    assert_eq!(
        memory.one("/bin").body,
        None,
        "binary bodies are not captured"
    );
    let bin = memory.one("/bin");
    assert_eq!(bin.bytes_sent, 300_000);
    assert_eq!(bin.status, 200);
}

/// Sends `chunks` through a streaming payload without a length, one at a time, each only once
/// the handler has received the previous one: a middleware that buffered the body before
/// calling the handler would never let it see the first chunk.
async fn stream_through<S, B>(app: &S, path: &str, content_type: &str, chunks: Vec<Bytes>)
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let (chunk_tx, chunk_rx) = mpsc::unbounded_channel::<Bytes>();
    let stream = futures_util::stream::unfold(chunk_rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok(b), rx))
    });
    let req = test::TestRequest::post()
        .uri(path)
        .insert_header(("content-type", content_type))
        .to_request();
    let payload: actix_http::BoxedPayloadStream = Box::pin(stream);
    let (req, _) = req.replace_payload(Payload::Stream { payload });
    let expected: usize = chunks.iter().map(Bytes::len).sum();
    let driver = async move {
        let (arrived_tx, mut arrived) = mpsc::unbounded_channel::<usize>();
        ARRIVED.with(|a| *a.borrow_mut() = Some(arrived_tx));
        for chunk in chunks {
            let len = chunk.len();
            chunk_tx.send(chunk).unwrap();
            let got = tokio::time::timeout(Duration::from_secs(10), arrived.recv())
                .await
                .expect("the handler receives each chunk as it is sent");
            assert_eq!(got, Some(len));
        }
    };
    let (res, ()) = tokio::join!(test::call_service(app, req), driver);
    assert_eq!(res.status(), StatusCode::OK);
    let body = test::read_body(res).await;
    assert_eq!(body, expected.to_string());
}

thread_local! {
    static ARRIVED: std::cell::RefCell<Option<mpsc::UnboundedSender<usize>>> = const { std::cell::RefCell::new(None) };
}

/// Reports every chunk as it arrives, answers the total.
async fn chunk_counter(mut body: web::Payload) -> HttpResponse {
    let mut total = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.unwrap();
        total += chunk.len();
        ARRIVED.with(|a| {
            if let Some(tx) = a.borrow().as_ref() {
                let _ = tx.send(chunk.len());
            }
        });
    }
    HttpResponse::Ok().body(total.to_string())
}

#[actix_web::test]
async fn streamed_bodies_pass_through_chunk_by_chunk() {
    let memory = Memory::default();
    let log = AccessLog::builder().sink(memory.clone()).build().unwrap();
    let app = test::init_service(
        App::new()
            .wrap(log.clone())
            .default_service(web::to(chunk_counter)),
    )
    .await;
    let upload: Vec<Bytes> = (0..8).map(|_| Bytes::from(vec![7u8; 64 * 1024])).collect();
    stream_through(&app, "/upload", "application/octet-stream", upload).await;
    let multipart: Vec<Bytes> = (0..4).map(|_| Bytes::from(vec![b'-'; 32 * 1024])).collect();
    stream_through(&app, "/multi", "multipart/form-data; boundary=x", multipart).await;
    // JSON is captured, still passed on as it comes; over the limit, the copy is dropped.
    let json_chunks: Vec<Bytes> = (0..3).map(|_| Bytes::from(vec![b' '; 10_000])).collect();
    stream_through(&app, "/json", "application/json", json_chunks).await;
    let small: Vec<Bytes> = vec![Bytes::from(r#"{"a":"#), Bytes::from(r#"1,"secret":2}"#)];
    stream_through(&app, "/small", "application/vnd.api+json", small).await;

    log.shutdown().await;
    assert_eq!(memory.one("/upload").body, None);
    assert_eq!(memory.one("/multi").body, None);
    assert_eq!(
        memory.one("/json").body.as_deref(),
        Some("[omitted: over 16384 bytes]")
    );
    assert_eq!(
        json(&memory.one("/small").body.unwrap()),
        json(r#"{"a":1,"secret":"[REDACTED]"}"#)
    );
}

#[actix_web::test]
async fn an_unread_body_is_marked() {
    let memory = Memory::default();
    let log = AccessLog::builder().sink(memory.clone()).build().unwrap();
    let app = test::init_service(
        App::new()
            .wrap(log.clone())
            .default_service(web::to(HttpResponse::NoContent)),
    )
    .await;
    let req = post("/x")
        .insert_header(("content-type", "application/json"))
        .set_payload(r#"{"password":"p"}"#)
        .to_request();
    test::call_and_read_body(&app, req).await;
    log.shutdown().await;
    let record = memory.one("/x");
    assert_eq!(record.body.as_deref(), Some("[omitted: not read]"));
    assert_eq!(record.status, 204);
}

// ---------------------------------------------------------------- skipped paths

#[actix_web::test]
async fn skipped_prefixes_match_as_the_router_dispatches() {
    let memory = Memory::default();
    let log = AccessLog::builder().sink(memory.clone()).build().unwrap();
    let app = echo_app!(log.clone());
    for path in [
        "/static/app.css",
        "/%73tatic/x",
        "//static/x",
        "/STATIC/x",
        "/media/a.png",
        "/x/../static/y",
        "/staticfoo",
        "/static",
        "/page",
    ] {
        let req = test::TestRequest::get().uri(path).to_request();
        test::call_and_read_body(&app, req).await;
    }
    log.shutdown().await;
    let mut paths: Vec<String> = memory.records().into_iter().map(|r| r.path).collect();
    paths.sort();
    assert_eq!(paths, ["/page", "/staticfoo"]);
}

/// A middleware that fails every request.
async fn refuse(
    _req: actix_web::dev::ServiceRequest,
    _next: actix_web::middleware::Next<actix_web::body::BoxBody>,
) -> Result<actix_web::dev::ServiceResponse, actix_web::Error> {
    Err(actix_web::error::ErrorBadRequest("no"))
}

#[actix_web::test]
async fn an_error_from_inside_is_logged_with_its_status() {
    let memory = Memory::default();
    let log = AccessLog::builder().sink(memory.clone()).build().unwrap();
    let app = test::init_service(
        App::new()
            .wrap(actix_web::middleware::from_fn(refuse))
            .wrap(log.clone())
            .default_service(web::to(HttpResponse::Ok)),
    )
    .await;
    let req = test::TestRequest::get().uri("/err").to_request();
    let res = app.call(req).await;
    assert!(res.is_err(), "the error goes on unchanged");
    log.shutdown().await;
    assert_eq!(memory.one("/err").status, 400);
}

// ---------------------------------------------------------------- with the bouncer

#[actix_web::test]
async fn records_carry_the_verdict_and_refused_requests_are_logged() {
    let hook_runs = Arc::new(AtomicUsize::new(0));
    let runs = Arc::clone(&hook_runs);
    let bouncer = Bouncer::builder()
        .rule(NewRule::block("203.0.113.66".parse().unwrap()))
        .user(move |req| {
            runs.fetch_add(1, Ordering::Relaxed);
            req.headers()
                .get("x-user")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .build()
        .unwrap();
    let memory = Memory::default();
    let log = bouncer.access_log().sink(memory.clone()).build().unwrap();
    let app = test::init_service(
        App::new()
            .wrap(bouncer)
            .wrap(log.clone())
            .route("/ok", web::get().to(HttpResponse::Ok))
            .route("/blocked", web::get().to(HttpResponse::Ok)),
    )
    .await;
    let req = test::TestRequest::get()
        .uri("/ok")
        .peer_addr(peer("198.51.100.1:1"))
        .insert_header(("x-user", "alice"))
        .to_request();
    assert_eq!(test::call_service(&app, req).await.status(), StatusCode::OK);
    let req = test::TestRequest::get()
        .uri("/blocked")
        .peer_addr(peer("203.0.113.66:1"))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let sent = test::read_body(res).await.len() as u64;

    log.shutdown().await;
    let ok = memory.one("/ok");
    let v = ok.verdict.expect("the bouncer ran");
    assert_eq!(v.decision, Decision::Allow);
    assert_eq!(ok.user.as_deref(), Some("alice"), "the bouncer's user hook");
    assert_eq!(ok.status, 200);
    assert_eq!(
        hook_runs.load(Ordering::Relaxed),
        2,
        "the user hook runs once a request: the log reads the user from the verdict"
    );

    let blocked = memory.one("/blocked");
    assert_eq!(blocked.status, 403);
    assert_eq!(blocked.ip.to_string(), "203.0.113.66");
    assert_eq!(blocked.bytes_sent, sent);
    let v = blocked
        .verdict
        .expect("refused requests carry their verdict");
    assert_eq!(v.decision, Decision::Block);
    assert!(v.enforced);
    assert_eq!(v.reason, Some(BlockReason::Blacklisted));
    assert_eq!(v.score, 100);
}

#[actix_web::test]
async fn the_client_is_resolved_through_trusted_proxies() {
    // On its own, with its own resolver.
    let memory = Memory::default();
    let log = AccessLog::builder()
        .resolver(ClientIpResolver::new(
            vec!["10.0.0.0/8".parse().unwrap()],
            vec![IpHeader::XForwardedFor],
            32,
            64,
        ))
        .sink(memory.clone())
        .build()
        .unwrap();
    let app = echo_app!(log.clone());
    let xff = ("x-forwarded-for", "1.2.3.4, 203.0.113.7, 10.0.0.2");
    let req = test::TestRequest::get()
        .uri("/proxied")
        .peer_addr(peer("10.0.0.1:1"))
        .insert_header(xff)
        .to_request();
    test::call_and_read_body(&app, req).await;
    let req = test::TestRequest::get()
        .uri("/direct")
        .peer_addr(peer("198.51.100.9:1"))
        .insert_header(xff)
        .to_request();
    test::call_and_read_body(&app, req).await;
    log.shutdown().await;
    assert_eq!(memory.one("/proxied").ip.to_string(), "203.0.113.7");
    assert_eq!(memory.one("/direct").ip.to_string(), "198.51.100.9");

    // From the bouncer's settings.
    let bouncer = Bouncer::builder()
        .trusted_proxies(["10.0.0.0/8"])
        .ip_headers([IpHeader::XForwardedFor])
        .build()
        .unwrap();
    let memory = Memory::default();
    let log = bouncer.access_log().sink(memory.clone()).build().unwrap();
    let app = echo_app!(log.clone());
    let req = test::TestRequest::get()
        .uri("/proxied")
        .peer_addr(peer("10.0.0.1:1"))
        .insert_header(xff)
        .to_request();
    test::call_and_read_body(&app, req).await;
    log.shutdown().await;
    assert_eq!(memory.one("/proxied").ip.to_string(), "203.0.113.7");
}

// ---------------------------------------------------------------- request fields

#[actix_web::test]
async fn fields_are_recorded_and_bounded() {
    let memory = Memory::default();
    let log = AccessLog::builder()
        .sink(memory.clone())
        .user(|_| Some("u".repeat(1000)))
        .build()
        .unwrap();
    let app = echo_app!(log.clone());
    let long_path = format!("/{}", "p".repeat(5000));
    let ua = "é".repeat(1000);
    let req = test::TestRequest::get()
        .uri(&format!("/a?{}", "q".repeat(5000)))
        .insert_header(("user-agent", ua.as_str()))
        .insert_header(("referer", "https://example.com/from"))
        .insert_header(("cookie", "theme=dark; id=s3cr3t-session; other=1"))
        .to_request();
    test::call_and_read_body(&app, req).await;
    let req = test::TestRequest::get()
        .uri("/b")
        .insert_header(("cookie", "id=s3cr3t-session"))
        .to_request();
    test::call_and_read_body(&app, req).await;
    let req = test::TestRequest::get().uri(&long_path).to_request();
    test::call_and_read_body(&app, req).await;
    log.shutdown().await;

    let a = memory.one("/a");
    assert_eq!(a.method, "GET");
    assert_eq!(a.referrer.as_deref(), Some("https://example.com/from"));
    let logged_ua = a.user_agent.unwrap();
    assert!(logged_ua.len() <= 512 && logged_ua.chars().all(|c| c == 'é'));
    assert_eq!(a.query.unwrap().len(), 2048);
    assert_eq!(a.user.unwrap().len(), 256);
    let session = a.session.expect("the session cookie");
    assert!(!session.contains("s3cr3t"), "never the session id itself");
    assert_eq!(
        memory.one("/b").session,
        Some(session),
        "a stable fingerprint"
    );
    let long = memory
        .records()
        .into_iter()
        .find(|r| r.path.starts_with("/ppp"))
        .unwrap();
    assert_eq!(long.path.len(), 2048);
}

// ---------------------------------------------------------------- the queue

#[actix_web::test]
async fn a_full_queue_drops_and_counts() {
    let (gated, mut entered) = Gated::new();
    let log = AccessLog::builder()
        .sink(gated.clone())
        .queue_size(1)
        .build()
        .unwrap();
    let app = echo_app!(log.clone());
    let call = |path: &'static str| {
        test::call_and_read_body(&app, test::TestRequest::get().uri(path).to_request())
    };
    call("/1").await;
    entered.recv().await.unwrap(); // the writer holds /1 in the sink
    call("/2").await; // fills the queue
    let out = Captured::default();
    let writer = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    call("/3").await;
    call("/4").await;
    drop(guard);
    let warned = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    assert_eq!(
        warned.matches("record(s) dropped").count(),
        1,
        "warned once (at most once per 10 s): {warned}"
    );
    let stats = log.stats();
    assert_eq!(stats.dropped, 2);
    assert_eq!(stats.queued, 1);
    assert_eq!(stats.capacity, 1);
    gated.gate.add_permits(1000);
    log.shutdown().await;
    let paths: Vec<String> = gated.memory.records().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/1", "/2"]);
    let stats = log.stats();
    assert_eq!((stats.written, stats.dropped, stats.queued), (2, 2, 0));
}

#[actix_web::test]
async fn a_full_queue_can_hold_the_response_back() {
    let (gated, mut entered) = Gated::new();
    let log = AccessLog::builder()
        .sink(gated.clone())
        .queue_size(1)
        .overflow(Overflow::Block)
        .build()
        .unwrap();
    let app = test::init_service(
        App::new()
            .wrap(log.clone())
            .default_service(web::to(|| async { HttpResponse::Ok().body("ok") })),
    )
    .await;
    let req = |path: &str| test::TestRequest::get().uri(path).to_request();
    test::call_and_read_body(&app, req("/1")).await;
    entered.recv().await.unwrap();
    test::call_and_read_body(&app, req("/2")).await;
    let res = test::call_service(&app, req("/3")).await;
    let mut body = pin!(test::read_body(res));
    assert!(
        body.as_mut().now_or_never().is_none(),
        "the last chunk waits for room"
    );
    gated.gate.add_permits(1000);
    assert_eq!(body.await, "ok");
    log.shutdown().await;
    let paths: Vec<String> = gated.memory.records().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/1", "/2", "/3"]);
    assert_eq!(log.stats().dropped, 0);
}

#[actix_web::test]
async fn shutdown_writes_every_queued_record() {
    let memory = Memory::default();
    let log = AccessLog::builder().sink(memory.clone()).build().unwrap();
    let app = echo_app!(log.clone());
    for i in 0..10_000 {
        let req = test::TestRequest::get()
            .uri(&format!("/r/{i}"))
            .to_request();
        test::call_and_read_body(&app, req).await;
    }
    log.shutdown().await;
    let records = memory.records();
    assert_eq!(records.len(), 10_000);
    assert_eq!(records[9_999].path, "/r/9999", "in order");
    let stats = log.stats();
    assert_eq!((stats.written, stats.dropped, stats.failed), (10_000, 0, 0));
    assert!(memory
        .batches
        .lock()
        .unwrap()
        .iter()
        .all(|&n| n <= actix_bouncer::access_log::DEFAULT_BATCH));

    // After the shutdown, records are dropped and counted.
    let req = test::TestRequest::get().uri("/late").to_request();
    test::call_and_read_body(&app, req).await;
    assert_eq!(log.stats().dropped, 1);
}

#[actix_web::test]
async fn dropping_every_handle_writes_what_is_queued() {
    let memory = Memory::default();
    {
        let log = AccessLog::builder().sink(memory.clone()).build().unwrap();
        let app = echo_app!(log.clone());
        for i in 0..100 {
            let req = test::TestRequest::get()
                .uri(&format!("/r/{i}"))
                .to_request();
            test::call_and_read_body(&app, req).await;
        }
        // Wait for the writer to end on its own: its sink is the last owner of `batches`.
    }
    // The writer thread ends once it has written everything; it drops its sink then.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while Arc::strong_count(&memory.batches) > 1 && std::time::Instant::now() < deadline {
        std::thread::yield_now();
    }
    assert_eq!(memory.records().len(), 100);
}

#[actix_web::test]
async fn failed_writes_are_retried_then_counted() {
    let flaky = Flaky {
        fail: 2,
        ..Flaky::default()
    };
    let log = AccessLog::builder()
        .sink(flaky.clone())
        .retries(2)
        .build()
        .unwrap();
    let app = echo_app!(log.clone());
    test::call_and_read_body(&app, test::TestRequest::get().uri("/a").to_request()).await;
    log.flush().await;
    assert_eq!(flaky.memory.records().len(), 1, "written on the third try");
    assert_eq!(log.stats().written, 1);

    let down = Flaky {
        fail: usize::MAX,
        ..Flaky::default()
    };
    let log = AccessLog::builder()
        .sink(down.clone())
        .retries(1)
        .build()
        .unwrap();
    let app = echo_app!(log.clone());
    test::call_and_read_body(&app, test::TestRequest::get().uri("/a").to_request()).await;
    log.shutdown().await;
    assert_eq!(down.calls.load(Ordering::SeqCst), 2);
    let stats = log.stats();
    assert_eq!((stats.written, stats.failed), (0, 1));
}

// ---------------------------------------------------------------- the tracing sink

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[actix_web::test]
async fn the_tracing_sink_emits_one_event_per_request() {
    // The writer runs on its own thread: the subscriber must be global (nextest runs each
    // test in a process of its own).
    let out = Captured::default();
    let writer = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let log = AccessLog::new();
    let app = echo_app!(log.clone());
    let req = test::TestRequest::get()
        .uri("/hello?q=1&token=abc")
        .peer_addr(peer("203.0.113.9:1"))
        .to_request();
    test::call_and_read_body(&app, req).await;
    log.shutdown().await;

    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("actix_bouncer::access"))
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    let line = lines[0];
    for expected in [
        "path=/hello",
        "token=[REDACTED]",
        "ip=203.0.113.9",
        "status=200",
        "method=GET",
    ] {
        assert!(line.contains(expected), "{expected} in {line}");
    }
    assert!(!line.contains("abc"));
}

// ---------------------------------------------------------------- settings

#[actix_web::test]
async fn bad_settings_are_typed_errors() {
    let field =
        |b: actix_bouncer::access_log::AccessLogBuilder| b.build().unwrap_err().field().to_owned();
    assert_eq!(field(AccessLog::builder().queue_size(0)), "queue_size");
    assert_eq!(field(AccessLog::builder().batch_size(0)), "batch_size");
    assert_eq!(field(AccessLog::builder().skip(["static"])), "skip");
    assert_eq!(field(AccessLog::builder().redact(["--"])), "redact");
    assert_eq!(
        field(AccessLog::builder().body_limit(2 << 20)),
        "body_limit"
    );
    assert_eq!(
        field(AccessLog::builder().session_cookie(Some("a b"))),
        "session_cookie"
    );
    assert_eq!(field(AccessLog::builder().retries(100)), "retries");
}
