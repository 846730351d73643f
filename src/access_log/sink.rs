//! Where access records go: the [`AccessSink`] seam, and the `tracing` sink.

use std::future::Future;
use std::pin::Pin;

use super::record::AccessRecord;
use crate::store_error::StoreError;
use crate::verdict::Decision;

/// Where access records go. The access log's writer hands each sink the records in batches,
/// off the request path; a sink never runs on an actix worker.
///
/// A failed write is retried by the writer (see the access log's docs); return the error
/// rather than dropping records silently.
pub trait AccessSink: Send + Sync + 'static {
    /// Writes `batch` (oldest first), all of it or nothing where the backend allows.
    fn write(&self, batch: &[AccessRecord]) -> impl Future<Output = Result<(), StoreError>> + Send;
}

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// [`AccessSink`] in a form that fits behind `dyn`.
pub(crate) trait DynAccessSink: Send + Sync + 'static {
    fn write<'a>(&'a self, batch: &'a [AccessRecord]) -> BoxFuture<'a, Result<(), StoreError>>;
}

impl<S: AccessSink> DynAccessSink for S {
    fn write<'a>(&'a self, batch: &'a [AccessRecord]) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(AccessSink::write(self, batch))
    }
}

/// The default sink: one `tracing` event per record, at `INFO`, target
/// `actix_bouncer::access`, every field flat (`method`, `path`, `query`, `body`, `referrer`,
/// `ip`, `user_agent`, `session`, `user`, `status`, `duration_ms`, `bytes_sent`, `decision`,
/// `enforced`, `score`, `block_reason`, `time`), so a JSON formatter
/// (`tracing_subscriber::fmt().json()`) writes one JSON line per request. Absent values are
/// left out.
///
/// The events are emitted on the access log's writer thread: install the subscriber globally
/// (`tracing::subscriber::set_global_default`, `tracing_subscriber::fmt().init()`).
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct TracingSink;

impl TracingSink {
    /// The sink.
    pub fn new() -> Self {
        TracingSink
    }
}

impl AccessSink for TracingSink {
    async fn write(&self, batch: &[AccessRecord]) -> Result<(), StoreError> {
        for r in batch {
            let v = r.verdict.as_ref();
            tracing::info!(
                target: "actix_bouncer::access",
                time = %crate::clock::rfc3339(r.time, false),
                method = %r.method,
                path = %r.path,
                query = r.query.as_deref(),
                body = r.body.as_deref(),
                referrer = r.referrer.as_deref(),
                ip = %r.ip,
                user_agent = r.user_agent.as_deref(),
                session = r.session.as_deref(),
                user = r.user.as_deref(),
                status = r.status,
                duration_ms = r.duration.as_secs_f64() * 1000.0,
                bytes_sent = r.bytes_sent,
                decision = v.map(|v| match v.decision {
                    Decision::Allow => "allow",
                    Decision::Block => "block",
                }),
                enforced = v.map(|v| v.enforced),
                score = v.map(|v| v.score),
                block_reason = v.and_then(|v| v.reason).map(<&'static str>::from),
                "access"
            );
        }
        Ok(())
    }
}
