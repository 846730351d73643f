//! The cost of one request, in instructions, for callgrind: bare actix-web against the same app
//! behind the bouncer, for a repeat client and a first-seen client, with and without a million
//! block rules, and a repeat client sending a browser User-Agent.
//!
//! Instruction counts repeat from run to run where wall-clock times on a busy machine do not.
//! Everything is set up (app, bouncer, rules, warm-up, every request) outside
//! [`measured`], which only sends prepared requests through the service, one at a time, and
//! drops each response, as a server would. Run under
//! `valgrind --tool=callgrind --toggle-collect='*measured*'`, the collected instructions
//! divided by the request count are the cost of one request; `benches/request_cost.sh` runs
//! every scenario that way and prints the table.
//!
//! `request_cost SCENARIO [REQUESTS]` (default 2000 requests), SCENARIO one of `bare`,
//! `repeat`, `first_seen`, `repeat_1m`, `first_seen_1m`, `repeat_ua`. Arguments starting with
//! `-` (such as cargo's `--bench`) are ignored; without a scenario it prints this usage.
//!
//! This bench uses only the public API that stays across refactors: the builder's `limit`,
//! `rules().add_many` with `NewRule::block`, and actix-web's `test` module.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use actix_bouncer::Bouncer;
use actix_http::Request;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header::USER_AGENT;
use actix_web::http::StatusCode;
use actix_web::{test, web, App, HttpResponse};
use futures_util::FutureExt;

mod common;
use common::million_rules;

const SCENARIOS: [&str; 7] = [
    "bare",
    "access_log",
    "repeat",
    "first_seen",
    "repeat_1m",
    "first_seen_1m",
    "repeat_ua",
];

const DEFAULT_REQUESTS: usize = 2000;

/// Requests sent before the measurement, outside it.
const WARM_UP: usize = 200;

/// First-seen clients sent before a `first_seen` measurement: well past the default cap of
/// 100,000 tracked keys, so that every shard is full and each measured request evicts.
const FILL_TRACKED_KEYS: usize = 120_000;

/// Requests prepared at a time. actix-http recycles request heads through a thread-local pool
/// of 128, as a server does; preparing more at once would empty the pool, and every measured
/// drop past 128 would free a head (and its header map) that a server would have recycled.
const CHUNK: usize = 100;

const CHROME: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                      Chrome/126.0 Safari/537.36";

/// Which clients send the requests.
#[derive(Clone, Copy)]
enum Clients {
    /// The same client every time.
    Repeat,
    /// The same client every time, with a browser User-Agent.
    RepeatBrowser,
    /// A new IPv6 /64 every time.
    FirstSeen,
}

/// Builds the requests of one scenario, in order.
struct Requests {
    clients: Clients,
    next: u32,
}

impl Requests {
    fn new(clients: Clients) -> Self {
        Self { clients, next: 0 }
    }

    fn next(&mut self) -> Request {
        let repeat = SocketAddr::from(([198, 18, 0, 1], 40000));
        let req = test::TestRequest::get().uri("/");
        match self.clients {
            Clients::Repeat => req.peer_addr(repeat),
            Clients::RepeatBrowser => req.peer_addr(repeat).insert_header((USER_AGENT, CHROME)),
            Clients::FirstSeen => {
                self.next = self.next.wrapping_add(1);
                let ip = Ipv6Addr::from((0x2001_0db8u128 << 96) | (u128::from(self.next) << 64));
                req.peer_addr(SocketAddr::new(IpAddr::V6(ip), 40000))
            }
        }
        .to_request()
    }

    /// Replaces the contents of `batch` with the next `n` requests.
    fn fill(&mut self, batch: &mut Vec<Request>, n: usize) {
        batch.clear();
        batch.extend((0..n).map(|_| self.next()));
    }
}

/// Sends every request of `batch`, in order, one at a time, and drops each response.
///
/// The app answers synchronously, so each call completes on its first poll. Always inlined, so
/// that the loop is the body of [`measured`] (not a tail call out of it, which would leave the
/// measured function before the requests are sent).
#[inline(always)]
fn send<S, B>(svc: &S, batch: &mut Vec<Request>)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    for req in batch.drain(..) {
        let res = svc
            .call(req)
            .now_or_never()
            .expect("the app answers without waiting")
            .expect("the app answers without error");
        assert_eq!(res.status(), StatusCode::OK);
    }
}

/// The measured region: `send`, in a function of its own that callgrind's `--toggle-collect`
/// can find by name.
#[inline(never)]
fn measured<S, B>(svc: &S, batch: &mut Vec<Request>)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    send(svc, batch);
}

/// Sends `n` requests (`CHUNK` at a time, each chunk prepared before the call that sends it).
fn send_n<S, B>(svc: &S, requests: &mut Requests, batch: &mut Vec<Request>, n: usize)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    let mut left = n;
    while left > 0 {
        let k = left.min(CHUNK);
        requests.fill(batch, k);
        send(svc, batch);
        left -= k;
    }
}

/// Sends `fill` requests then `WARM_UP` more, then measures `n` requests; returns the time
/// spent in [`measured`]. Requests are prepared `CHUNK` at a time, each chunk before the call
/// that sends it.
fn run<S, B>(svc: &S, mut requests: Requests, fill: usize, n: usize) -> Duration
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    let mut batch = Vec::with_capacity(CHUNK);
    send_n(svc, &mut requests, &mut batch, fill);
    send_n(svc, &mut requests, &mut batch, WARM_UP);

    let mut spent = Duration::ZERO;
    let mut left = n;
    while left > 0 {
        let k = left.min(CHUNK);
        requests.fill(&mut batch, k);
        let started = Instant::now();
        measured(svc, &mut batch);
        spent += started.elapsed();
        left -= k;
    }
    spent
}

fn usage() -> String {
    format!(
        "usage: request_cost SCENARIO [REQUESTS]   (SCENARIO: {}; REQUESTS default {DEFAULT_REQUESTS})",
        SCENARIOS.join(", ")
    )
}

fn main() -> ExitCode {
    let (scenario, n) =
        match common::scenario_args(&SCENARIOS, DEFAULT_REQUESTS, "REQUESTS", &usage()) {
            Ok(Some(args)) => args,
            Ok(None) => return ExitCode::SUCCESS,
            Err(code) => return code,
        };

    let rt = actix_web::rt::System::new();
    let (clients, fill) = match scenario.as_str() {
        "first_seen" | "first_seen_1m" => (Clients::FirstSeen, FILL_TRACKED_KEYS),
        "repeat_ua" => (Clients::RepeatBrowser, 0),
        _ => (Clients::Repeat, 0),
    };
    let requests = Requests::new(clients);

    #[cfg(feature = "sqlite")]
    if scenario == "access_log" {
        // Bare actix-web behind the access log alone, its records going to a SQLite file on
        // the writer thread (whose work callgrind leaves out: it counts this thread).
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("access.db").display());
        let store = rt
            .block_on(actix_bouncer::access_log::SqlAccessLog::connect(&url))
            .expect("the access log's store");
        let log = actix_bouncer::access_log::AccessLog::builder()
            .sink(store)
            .build()
            .expect("a valid access log");
        let app = rt.block_on(test::init_service(
            App::new()
                .wrap(log.clone())
                .route("/", web::get().to(HttpResponse::Ok)),
        ));
        let spent = run(&app, requests, fill, n);
        rt.block_on(log.shutdown());
        eprintln!(
            "{scenario}: {n} requests measured ({spent:?} wall-clock in the measured region)"
        );
        return ExitCode::SUCCESS;
    }
    let spent = if scenario == "bare" {
        let app = rt.block_on(test::init_service(
            App::new().route("/", web::get().to(HttpResponse::Ok)),
        ));
        run(&app, requests, fill, n)
    } else {
        let (hits, per) = match clients {
            // Generous limits: the repeat client must stay allowed for the whole run.
            Clients::Repeat | Clients::RepeatBrowser => (1_000_000_000, Duration::from_secs(1)),
            // One cell every 14 minutes: a first-seen client's entry carries information for
            // that long, so the limiter's background sweep (every 10 s) leaves the full store
            // full, and every measured request evicts, whenever the sweep runs.
            Clients::FirstSeen => (100, Duration::from_secs(86_400)),
        };
        // With feature `prometheus`, the request counters go to a real recorder, installed
        // before `build` as they must be (`--features metrics` alone measures no-op handles).
        #[cfg(feature = "prometheus")]
        actix_bouncer::metrics::install_prometheus().expect("the only recorder");
        let bouncer = Bouncer::builder()
            .limit(hits, per)
            .build()
            .expect("a valid bouncer");
        if scenario.ends_with("_1m") {
            rt.block_on(bouncer.rules().add_many(million_rules()))
                .expect("the rules load");
        }
        let app = rt.block_on(test::init_service(
            App::new()
                .wrap(bouncer.clone())
                .route("/", web::get().to(HttpResponse::Ok)),
        ));
        run(&app, requests, fill, n)
    };
    eprintln!(
        "{scenario}: {n} requests measured ({:?} wall-clock in the measured region)",
        spent
    );
    ExitCode::SUCCESS
}
