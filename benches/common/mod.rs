//! Helpers shared by the benchmarks.

use std::hint::black_box;
use std::time::{Duration, Instant};

use actix_web::dev::Service;
use futures_util::FutureExt;

/// Times `iters` requests from `make`.
///
/// Each request is built outside the timed region, then called and dropped inside it, one at
/// a time: actix recycles request heads (and their extension maps) through a pool, as it does
/// in a server. Building requests in big batches would defeat the pool and charge every
/// request an extension-map allocation that a server never pays.
pub fn timed<S, F>(iters: u64, svc: &S, mut make: F) -> Duration
where
    S: Service<actix_http::Request>,
    F: FnMut() -> actix_http::Request,
{
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let req = make();
        let start = Instant::now();
        drop(black_box(svc.call(req).now_or_never()));
        total += start.elapsed();
    }
    total
}
