//! The Prometheus recorder, and the `GET /metrics` resource that renders it (feature
//! `prometheus`).

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use actix_web::http::header::{HeaderValue, CONTENT_TYPE as CONTENT_TYPE_HEADER};
use actix_web::{web, HttpResponse, Resource};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

pub use metrics_exporter_prometheus::PrometheusHandle;

use crate::sync::lock;

/// The content type of the Prometheus text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Histogram buckets of every `*_seconds` histogram (upstream calls: milliseconds to the
/// timeout).
const SECONDS_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The handle the resource renders: set by [`install_prometheus`] or [`use_prometheus`].
static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
/// Serialises installs, so that two callers racing get the same recorder.
static INSTALLING: Mutex<()> = Mutex::new(());

/// The Prometheus recorder could not be installed: another global recorder is installed
/// already (the `metrics` facade takes one per process).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrometheusError(String);

impl fmt::Display for PrometheusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PrometheusError {}

/// Installs a Prometheus recorder as the process's global `metrics` recorder, and returns its
/// handle. Idempotent: a second call returns the handle of the first.
///
/// Call it before [`build`](crate::BouncerBuilder::build) (or use
/// [`BouncerBuilder::prometheus`](crate::BouncerBuilder::prometheus)): the request counters
/// bind to the recorder installed when the bouncer is built. Histograms named `*_seconds` get
/// buckets from 5 ms to 10 s.
///
/// # Errors
///
/// When another global recorder is installed already. Hand an existing Prometheus recorder's
/// handle to [`use_prometheus`] instead.
pub fn install_prometheus() -> Result<PrometheusHandle, PrometheusError> {
    let _installing = lock(&INSTALLING);
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS_BUCKETS)
        .map_err(|e| PrometheusError(format!("cannot build the Prometheus recorder: {e}")))?
        .build_recorder();
    let handle = recorder.handle();
    ::metrics::set_global_recorder(recorder).map_err(|_| {
        PrometheusError(
            "another metrics recorder is installed already: pass its handle to \
             actix_bouncer::metrics::use_prometheus"
                .to_owned(),
        )
    })?;
    // Set under the lock, once: the cell was empty.
    let _ = HANDLE.set(handle.clone());
    Ok(handle)
}

/// Renders `handle` (a Prometheus recorder the app installed itself) from the bouncer's
/// metrics resource. Returns `false`, changing nothing, when a handle is set already.
pub fn use_prometheus(handle: PrometheusHandle) -> bool {
    let _installing = lock(&INSTALLING);
    HANDLE.set(handle).is_ok()
}

/// The handle set by [`install_prometheus`] or [`use_prometheus`], if any.
pub fn prometheus_handle() -> Option<PrometheusHandle> {
    HANDLE.get().cloned()
}

/// Something to run before each scrape: publishing gauges.
type BeforeScrape = Arc<dyn Fn() + Send + Sync>;

/// A Prometheus scrape endpoint: runs its hooks (publishing the gauges), then renders the
/// recorder in the text format. [`Bouncer::metrics_endpoint`](crate::Bouncer::metrics_endpoint)
/// gives one that publishes the bouncer's gauges; add your own hooks (an access log's counts)
/// with [`before_scrape`](Self::before_scrape).
#[derive(Clone, Default)]
pub struct MetricsEndpoint {
    handle: Option<PrometheusHandle>,
    before: Vec<BeforeScrape>,
}

impl fmt::Debug for MetricsEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsEndpoint")
            .field("own_handle", &self.handle.is_some())
            .field("before_scrape", &self.before.len())
            .finish()
    }
}

impl MetricsEndpoint {
    /// An endpoint rendering the handle of [`install_prometheus`] (or [`use_prometheus`]),
    /// looked up at each scrape.
    pub fn new() -> Self {
        Self::default()
    }

    /// An endpoint rendering `handle`.
    pub fn with_handle(handle: PrometheusHandle) -> Self {
        MetricsEndpoint {
            handle: Some(handle),
            before: Vec::new(),
        }
    }

    /// Runs `hook` before each scrape, e.g. to publish counts of your own.
    pub fn before_scrape(mut self, hook: impl Fn() + Send + Sync + 'static) -> Self {
        self.before.push(Arc::new(hook));
        self
    }

    /// Publishes `log`'s counts before each scrape
    /// ([`publish_access_log`](super::publish_access_log)).
    pub fn access_log(self, log: crate::access_log::AccessLog) -> Self {
        self.before_scrape(move || super::publish_access_log(&log))
    }

    /// Runs the hooks and renders the metrics in the Prometheus text format; `None` when no
    /// handle is set.
    pub fn render(&self) -> Option<String> {
        let handle = self.handle.as_ref().or_else(|| HANDLE.get())?;
        for hook in &self.before {
            hook();
        }
        handle.run_upkeep();
        Some(handle.render())
    }

    /// A `GET` resource at `path` answering the scrape (`text/plain; version=0.0.4`), or
    /// `503 Service Unavailable` when no recorder is installed. It has no authentication of
    /// its own: see the [module docs](super#serving-metrics-feature-prometheus).
    pub fn resource(self, path: &str) -> Resource {
        let endpoint = Arc::new(self);
        web::resource(path).route(web::get().to(move || {
            let endpoint = Arc::clone(&endpoint);
            async move {
                match endpoint.render() {
                    Some(body) => HttpResponse::Ok()
                        .insert_header((
                            CONTENT_TYPE_HEADER,
                            HeaderValue::from_static(CONTENT_TYPE),
                        ))
                        .body(body),
                    None => HttpResponse::ServiceUnavailable()
                        .content_type("text/plain; charset=utf-8")
                        .body("no Prometheus recorder installed\n"),
                }
            }
        }))
    }
}
