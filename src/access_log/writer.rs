//! The queue and the batch writer: records leave the request path through a bounded channel; a
//! thread of its own (`actix-bouncer-access-log`, with a current-thread runtime) takes them in
//! batches, redacts what the request path only copied, and hands each batch to every sink.
//!
//! A full queue drops the record (counted, and warned about at most once per
//! [`WARN_EVERY`]) or, with [`Overflow::Block`], makes the response's completion wait for room
//! without blocking the actix worker. A sink write that fails is retried with a doubling pause
//! ([`RETRY_FIRST`], [`RETRY_MAX`]) up to the configured number of times, then its records are
//! counted as failed, with a warning.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use actix_web::http::header::HeaderValue;
use actix_web::http::{Method, Uri};

use tokio::sync::{mpsc, oneshot, watch};

use super::capture::BodyKind;
use super::middleware::{
    METHOD_MAX, PATH_MAX, QUERY_READ_MAX, REFERRER_MAX, USER_AGENT_MAX, USER_MAX,
};
use super::record::{AccessRecord, AccessVerdict};
use super::redact::{bound, bounded, Redactor};
use super::sink::DynAccessSink;
use crate::store_error::StoreError;
use crate::sync::RuntimeThread;

/// Name of the writer thread.
const THREAD: &str = "actix-bouncer-access-log";
/// Least time between two warnings about dropped records.
pub(crate) const WARN_EVERY: Duration = Duration::from_secs(10);
/// The first pause before retrying a failed sink write.
const RETRY_FIRST: Duration = Duration::from_millis(100);
/// The longest pause between retries.
const RETRY_MAX: Duration = Duration::from_secs(5);

/// What to do with a record when the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Overflow {
    /// Drop the record, count it in [`AccessLogStats::dropped`](super::AccessLogStats), and
    /// warn (at most once every 10 seconds, with the count). The default: a slow sink never
    /// slows the app.
    #[default]
    Drop,
    /// Wait for room: the response's last chunk is held back (the request's future waits, not
    /// the actix worker thread, which goes on serving other connections) until the writer takes
    /// a record off the queue. The writer runs on a thread of its own and never waits on an
    /// actix worker, so the wait cannot deadlock; it lasts as long as the sinks are slow. A
    /// response body that actix drops without reading it to the end (a client gone away, an
    /// empty body) cannot wait: its record is handed to a task that waits for room on the
    /// worker's runtime.
    Block,
}

/// A record as the request path leaves it: the query not yet redacted, the body still raw.
pub(crate) struct Pending {
    pub(crate) head: RawHead,
    pub(crate) body: RawBody,
}

/// The request's side of a record as the request path leaves it: the method, URI and headers
/// kept by reference count, not copied (the writer makes the record's text of them), the
/// session cookie already reduced to its fingerprint.
pub(crate) struct RawHead {
    pub(crate) time: SystemTime,
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) referrer: Option<HeaderValue>,
    pub(crate) user_agent: Option<HeaderValue>,
    pub(crate) session: Option<u64>,
    pub(crate) ip: IpAddr,
    pub(crate) user: Option<String>,
    pub(crate) status: u16,
    pub(crate) duration: Duration,
    pub(crate) bytes_sent: u64,
    pub(crate) verdict: Option<AccessVerdict>,
}

impl RawHead {
    /// The record's text, bounded: what the request path would have copied.
    fn into_record(self, query_read_max: usize) -> AccessRecord {
        let query = self.uri.query().filter(|q| !q.is_empty());
        AccessRecord {
            time: self.time,
            method: bounded(self.method.as_str(), METHOD_MAX),
            path: bounded(self.uri.path(), PATH_MAX),
            query: query.map(|q| bounded(q, query_read_max)),
            body: None,
            referrer: self.referrer.map(|v| header_text(&v, REFERRER_MAX)),
            ip: self.ip,
            user_agent: self.user_agent.map(|v| header_text(&v, USER_AGENT_MAX)),
            session: self.session.map(|hash| format!("{hash:016x}")),
            user: self.user.map(|u| bounded(&u, USER_MAX)),
            status: self.status,
            duration: self.duration,
            bytes_sent: self.bytes_sent,
            verdict: self.verdict,
        }
    }
}

/// A header's value, lossily decoded and bounded.
fn header_text(value: &HeaderValue, max: usize) -> String {
    let value = value.as_bytes();
    let cut = &value[..value.len().min(max)];
    bounded(&String::from_utf8_lossy(cut), max)
}

/// The body as captured.
pub(crate) enum RawBody {
    /// Not captured (another content type, no body, a skipped path).
    None,
    /// A marker to record as is.
    Marker(String),
    /// Bytes to redact on the writer.
    Bytes { kind: BodyKind, bytes: Vec<u8> },
}

/// What goes through the queue.
pub(crate) enum Msg {
    Record(Box<Pending>),
    /// Answer once everything before has been written.
    Flush(oneshot::Sender<()>),
    /// Write everything before and stop taking records; the writer then ends (and drops its
    /// `done` sender).
    Shutdown,
}

/// The counters, shared by the request path and the writer; atomics only.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) written: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) failed: AtomicU64,
    /// Drops since the last warning.
    dropped_unreported: AtomicU64,
    /// Milliseconds since `epoch` of the last warning, plus one (0: never).
    last_warn: AtomicU64,
    /// Captured body bytes in the queue.
    pub(crate) queued_body_bytes: AtomicUsize,
}

impl Counters {
    /// Counts one dropped record and warns, at most once per [`WARN_EVERY`].
    pub(crate) fn drop_one(&self, epoch: Instant, why: &'static str) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        self.dropped_unreported.fetch_add(1, Ordering::Relaxed);
        let now = u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1;
        let last = self.last_warn.load(Ordering::Relaxed);
        let every = u64::try_from(WARN_EVERY.as_millis()).unwrap_or(u64::MAX);
        if (last == 0 || now.saturating_sub(last) >= every)
            && self
                .last_warn
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let count = self.dropped_unreported.swap(0, Ordering::Relaxed);
            tracing::warn!(
                target: "actix_bouncer",
                dropped = count,
                total_dropped = self.dropped.load(Ordering::Relaxed),
                "access log: {count} record(s) dropped ({why})"
            );
        }
    }
}

/// The writer's settings.
pub(crate) struct WriterConfig {
    pub(crate) sinks: Vec<Box<dyn DynAccessSink>>,
    pub(crate) redactor: Redactor,
    pub(crate) batch: usize,
    pub(crate) retries: u32,
    pub(crate) query_max: usize,
}

/// A store for the writer to open: its URL, and how long it keeps records.
pub(crate) type StoreToOpen = Option<(String, Option<Duration>)>;

/// How often a store with a retention is trimmed.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
const TRIM_EVERY: Duration = Duration::from_secs(3600);

/// Starts the writer thread. With a `store`, the thread opens it first (so its connections
/// belong to the writer's runtime) and answers through the returned channel; on failure the
/// writer ends.
pub(crate) fn spawn(
    config: WriterConfig,
    store: StoreToOpen,
    rx: mpsc::Receiver<Msg>,
    counters: Arc<Counters>,
    done: watch::Sender<()>,
) -> std::io::Result<Option<std::sync::mpsc::Receiver<Result<(), StoreError>>>> {
    let (opened_tx, opened_rx) = std::sync::mpsc::sync_channel(1);
    let answer = store.is_some().then_some(opened_rx);
    RuntimeThread::new()?.run(THREAD, move || async move {
        #[allow(unused_mut)]
        let mut config = config;
        // Kept for as long as the writer runs: dropping it stops the trimming.
        #[cfg(any(feature = "sqlite", feature = "postgres"))]
        let mut _trimmer = None;
        if let Some((url, retain)) = store {
            #[cfg(any(feature = "sqlite", feature = "postgres"))]
            {
                let opened = match super::sql::SqlAccessLog::connect(&url).await {
                    Ok(log) => match retain.map(|r| log.trim_every(r, TRIM_EVERY)).transpose() {
                        Ok(trimmer) => {
                            _trimmer = trimmer;
                            config.sinks.push(Box::new(log));
                            Ok(())
                        }
                        Err(error) => Err(error),
                    },
                    Err(error) => Err(error),
                };
                let failed = opened.is_err();
                let _ = opened_tx.send(opened);
                if failed {
                    return;
                }
            }
            #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
            {
                let _ = (url, retain, &opened_tx);
            }
        }
        drop(opened_tx);
        Writer {
            config,
            counters,
            _done: done,
        }
        .run(rx)
        .await;
    })?;
    Ok(answer)
}

/// How long the writer gathers records after the first of a quiet spell arrives.
const LINGER: std::time::Duration = std::time::Duration::from_millis(10);

struct Writer {
    config: WriterConfig,
    counters: Arc<Counters>,
    /// Dropped when the writer ends: what `shutdown()` waits for.
    _done: watch::Sender<()>,
}

impl Writer {
    async fn run(self, mut rx: mpsc::Receiver<Msg>) {
        let max = self.config.batch;
        let mut msgs = Vec::with_capacity(max.min(4096));
        let mut batch = Vec::with_capacity(max.min(4096));
        let mut waiters = Vec::new();
        let mut stopping = false;
        loop {
            let got = if stopping {
                // Closed: take what is left without waiting.
                let mut n = 0;
                while n < max {
                    match rx.try_recv() {
                        Ok(msg) => {
                            msgs.push(msg);
                            n += 1;
                        }
                        Err(_) => break,
                    }
                }
                n
            } else {
                let mut n = rx.recv_many(&mut msgs, max).await;
                if n > 0 && n < max && msgs.iter().all(|m| matches!(m, Msg::Record(_))) {
                    // Gather for a moment. Meanwhile the writer waits on a timer, not on the
                    // queue, so requests enqueue without waking it: a wake-up is a system call
                    // on the request path, and this keeps them to one per `LINGER`.
                    tokio::time::sleep(LINGER).await;
                    while n < max {
                        match rx.try_recv() {
                            Ok(msg) => {
                                msgs.push(msg);
                                n += 1;
                            }
                            Err(_) => break,
                        }
                    }
                }
                n
            };
            if got == 0 {
                break;
            }
            for msg in msgs.drain(..) {
                match msg {
                    Msg::Record(pending) => batch.push(self.finish(*pending)),
                    Msg::Flush(answer) => waiters.push(answer),
                    Msg::Shutdown => {
                        if !stopping {
                            stopping = true;
                            rx.close();
                        }
                    }
                }
            }
            if !batch.is_empty() {
                self.write(&batch).await;
                batch.clear();
            }
            if !stopping || rx.is_empty() {
                for answer in waiters.drain(..) {
                    let _ = answer.send(());
                }
            }
        }
        for answer in waiters {
            let _ = answer.send(());
        }
    }

    /// Redacts the query and the body.
    fn finish(&self, pending: Pending) -> AccessRecord {
        let Pending { head, body } = pending;
        let mut record = head.into_record(QUERY_READ_MAX);
        let redactor = &self.config.redactor;
        if let Some(query) = record.query.take() {
            let redacted = redactor.urlencoded(&query);
            record.query = Some(bound(&redacted, self.config.query_max).to_owned());
        }
        record.body = match body {
            RawBody::None => None,
            RawBody::Marker(marker) => Some(marker),
            RawBody::Bytes { kind, bytes } => {
                self.counters
                    .queued_body_bytes
                    .fetch_sub(bytes.len(), Ordering::Relaxed);
                Some(match kind {
                    BodyKind::Form => match std::str::from_utf8(&bytes) {
                        Ok(text) => redactor.urlencoded(text),
                        Err(_) => "[omitted: not UTF-8]".to_owned(),
                    },
                    BodyKind::Json => redactor
                        .json(&bytes)
                        .unwrap_or_else(|| "[omitted: not valid JSON]".to_owned()),
                })
            }
        };
        record
    }

    /// Writes `batch` to every sink, retrying each a bounded number of times.
    async fn write(&self, batch: &[AccessRecord]) {
        let mut lost = false;
        for sink in &self.config.sinks {
            let mut pause = RETRY_FIRST;
            let mut attempt = 0;
            loop {
                match sink.write(batch).await {
                    Ok(()) => break,
                    Err(error) if attempt < self.config.retries => {
                        attempt += 1;
                        tracing::debug!(target: "actix_bouncer", %error, attempt, "access log: sink write failed, retrying");
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(RETRY_MAX);
                    }
                    Err(error) => {
                        tracing::warn!(
                            target: "actix_bouncer",
                            %error,
                            records = batch.len(),
                            "access log: a sink failed {} time(s); its records are lost",
                            attempt + 1
                        );
                        lost = true;
                        break;
                    }
                }
            }
        }
        let n = batch.len() as u64;
        if lost {
            self.counters.failed.fetch_add(n, Ordering::Relaxed);
        } else {
            self.counters.written.fetch_add(n, Ordering::Relaxed);
        }
    }
}
