//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::borrow::Cow;
use std::io::Write;
use std::sync::{Arc, Mutex};

use actix_bouncer::{Flag, IpVerdict, Reason};

#[cfg(feature = "postgres")]
pub mod postgres;
use actix_web::dev::ServiceRequest;

/// A browser's User-Agent, so the User-Agent signal adds nothing to a test's score.
pub const BROWSER: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";

/// A stand-in signal for the tests: `x-test-flags: tor,vpn` sets flags and `x-test-score: 75`
/// adds points, so verdicts can be shaped request by request.
pub fn test_signal(req: &ServiceRequest, verdict: &mut IpVerdict) {
    if let Some(flags) = req
        .headers()
        .get("x-test-flags")
        .and_then(|v| v.to_str().ok())
    {
        for flag in flags
            .split(',')
            .filter_map(|f| f.trim().parse::<Flag>().ok())
        {
            verdict.flag(flag);
        }
    }
    if let Some(points) = req
        .headers()
        .get("x-test-score")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
    {
        verdict.add(Reason::Signal {
            description: Cow::Borrowed("test signal"),
            points,
        });
    }
}

/// Collects what the fmt subscriber writes.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    pub fn lines(&self) -> Vec<String> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

pub fn capture() -> (Captured, tracing::subscriber::DefaultGuard) {
    let out = Captured::default();
    let writer = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    (out, tracing::subscriber::set_default(subscriber))
}
