//! The access log: who did what, one record per request, secrets redacted, written off the
//! request path to `tracing` and SQL sinks.
//!
//! [`AccessLog`] is a middleware. Wrap it **outside** the [`Bouncer`](crate::Bouncer)
//! (`.wrap(bouncer).wrap(access_log)`: actix runs the last `wrap` first), so that it sees every
//! request, refused ones included, and each record carries the bouncer's verdict. Build it from
//! the bouncer with [`Bouncer::access_log`](crate::Bouncer::access_log) to share its client
//! resolution (trusted proxies) and user hook, or on its own with [`AccessLog::builder`].
//!
//! ```
//! use actix_bouncer::access_log::{AccessLog, AccessRecord, AccessSink};
//! use actix_bouncer::{Bouncer, StoreError};
//! use actix_web::{test, web, App, HttpResponse};
//! use std::sync::{Arc, Mutex};
//!
//! /// Keeps the records in memory.
//! #[derive(Clone, Default)]
//! struct Memory(Arc<Mutex<Vec<AccessRecord>>>);
//!
//! impl AccessSink for Memory {
//!     async fn write(&self, batch: &[AccessRecord]) -> Result<(), StoreError> {
//!         self.0.lock().unwrap().extend_from_slice(batch);
//!         Ok(())
//!     }
//! }
//!
//! # actix_web::rt::System::new().block_on(async {
//! let bouncer = Bouncer::new();
//! let memory = Memory::default();
//! let log = bouncer.access_log().sink(memory.clone()).build()?;
//! let app = test::init_service(
//!     App::new()
//!         .wrap(bouncer)
//!         .wrap(log.clone())
//!         .route("/login", web::post().to(HttpResponse::Ok)),
//! )
//! .await;
//! let req = test::TestRequest::post()
//!     .uri("/login?next=/home&token=abc")
//!     .peer_addr("203.0.113.7:4242".parse().unwrap())
//!     .insert_header(("content-type", "application/x-www-form-urlencoded"))
//!     .set_payload("user=ann&password=hunter2");
//! test::call_and_read_body(&app, req.to_request()).await;
//!
//! log.shutdown().await; // writes everything queued
//! let records = memory.0.lock().unwrap();
//! assert_eq!(records[0].query.as_deref(), Some("next=/home&token=[REDACTED]"));
//! assert_eq!(records[0].ip.to_string(), "203.0.113.7");
//! assert!(records[0].verdict.is_some());
//! # Ok::<_, actix_bouncer::setting::InvalidSetting>(())
//! # }).unwrap();
//! ```
//!
//! # What is recorded
//!
//! See [`AccessRecord`]: time, method, path, query, body fields, referrer, client address,
//! user agent, session fingerprint, user, status, duration, bytes sent and verdict. Text a
//! client wrote is cut to a bounded length on a character boundary: path 2 KiB, query 2 KiB,
//! referrer 1 KiB, user agent 512 B, user 256 B.
//!
//! **Redaction.** The values of query parameters, url-encoded form fields and JSON keys (at any
//! depth, in arrays too) whose name *contains* a configured name are replaced by `[REDACTED]`,
//! never dropped. Names are percent-decoded and folded (ASCII lowercase, punctuation dropped)
//! first, so `pass%77ord`, `User_Password`, `user[password]` and `X-Api-Key` are all caught;
//! substring matching errs on the side of hiding (`discard` matches `card`). Default names:
//! `password, passwd, secret, token, csrfmiddlewaretoken, authorization, api_key, card, cvv`.
//!
//! **Bodies** are captured only for `application/x-www-form-urlencoded` and JSON
//! (`application/json`, `application/*+json`), and only what the handler reads: the payload
//! stream is wrapped, each chunk is passed to the handler unchanged and as it comes, and a copy
//! is kept up to the limit (16 KiB by default). A longer body is recorded as
//! `[omitted: over 16384 bytes]`, never cut. Other payloads (multipart uploads, octet streams)
//! are not wrapped at all. Parsing and redaction run on the writer thread, not on the request
//! path.
//!
//! **Skipped paths** (`/static/` and `/media/` by default) are matched the way the router
//! dispatches them ([`path_match`](crate::path_match)): `/%73tatic/x` and `//static/x` are
//! skipped too.
//!
//! # The queue
//!
//! A record is complete when the response's last byte is sent (or the response is dropped,
//! when the client goes away). It then goes through a bounded queue to a writer thread of its
//! own, which hands the sinks batches of up to 8,192 records (one transaction each in SQL). Nothing on the request path
//! waits for a sink or takes a lock. When the queue is full, [`Overflow`] decides: drop and
//! count (the default), or hold the response's completion until there is room. Drops, failed
//! writes and the queue depth are in [`AccessLog::stats`], and drops and failures are logged
//! (`tracing` warnings).
//!
//! The default queue holds 65,536 records: at 5,000 requests a second the SQL sink (≥ 50,000
//! rows a second) keeps it near empty, and a stall of the database of up to 13 seconds is
//! absorbed without losing a record. Captured bodies in the queue are limited to 64 MiB in
//! all; beyond that a record keeps its other fields and the body is marked
//! `[omitted: log queue busy]`.
//!
//! [`AccessLog::shutdown`] writes everything queued and stops the writer; call it after the
//! server has stopped. When the last handle (and the last middleware) is dropped, the writer
//! also writes what is left and ends.

mod capture;
mod middleware;
mod record;
mod redact;
mod sink;
mod writer;

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::ServiceRequest;
use tokio::sync::{mpsc, watch};

use self::redact::{Redactor, DEFAULT_REDACT};
use self::writer::{Counters, Msg, WriterConfig};
use crate::client_ip::ClientIpResolver;
use crate::path_match::PathPrefixes;
use crate::setting::InvalidSetting;

#[doc(hidden)]
pub use self::middleware::{AccessBody, AccessFuture, AccessLogMiddleware};
pub use self::record::{AccessRecord, AccessVerdict};
pub(crate) use self::sink::DynAccessSink;
pub use self::sink::{AccessSink, TracingSink};
pub use self::writer::Overflow;

/// Names the user behind a request (the bouncer's hook).
pub(crate) type UserHook = Arc<dyn Fn(&ServiceRequest) -> Option<String> + Send + Sync>;

/// Default queue size, in records.
pub const DEFAULT_QUEUE: usize = 65_536;
/// Default body capture limit, in bytes.
pub const DEFAULT_BODY_LIMIT: usize = 16 * 1024;
/// Default most records per sink write.
pub const DEFAULT_BATCH: usize = 8192;
/// Default retries of a failed sink write.
pub const DEFAULT_RETRIES: u32 = 3;
/// Default most captured body bytes in the queue.
pub const DEFAULT_QUEUED_BODY_BYTES: usize = 64 * 1024 * 1024;
/// Default skipped path prefixes.
pub const DEFAULT_SKIP: &[&str] = &["/static/", "/media/"];
/// Default session cookie (actix-session's default name).
pub const DEFAULT_SESSION_COOKIE: &str = "id";

const MAX_QUEUE: usize = 1 << 24;
const MAX_BATCH: usize = 1 << 16;
const MAX_BODY_LIMIT: usize = 1 << 20;
const MAX_RETRIES: u32 = 20;

/// The access-log middleware. Cheap to clone: clones share the queue, the writer and the
/// counters. See the [module docs](self).
#[derive(Clone)]
pub struct AccessLog {
    inner: Arc<Inner>,
}

/// What the middleware and the handles share.
pub(crate) struct Inner {
    tx: mpsc::Sender<Msg>,
    counters: Arc<Counters>,
    capacity: usize,
    overflow: Overflow,
    skip: PathPrefixes,
    resolver: ClientIpResolver,
    user: Option<UserHook>,
    session_cookie: Option<String>,
    body_limit: usize,
    body_budget: usize,
    epoch: Instant,
    done: watch::Receiver<()>,
}

impl Inner {
    /// Queues `msg`; on a full queue, drops it (counted) or, with [`Overflow::Block`], gives
    /// it back to wait for room.
    fn offer(&self, msg: Msg) -> Option<Msg> {
        match self.tx.try_send(msg) {
            Ok(()) => None,
            Err(mpsc::error::TrySendError::Full(msg)) => match self.overflow {
                Overflow::Block => Some(msg),
                Overflow::Drop => {
                    self.lost(msg, "the queue is full");
                    None
                }
            },
            Err(mpsc::error::TrySendError::Closed(msg)) => {
                self.lost(msg, "the access log is shut down");
                None
            }
        }
    }

    /// Queues `msg` where nothing can wait: a full queue with [`Overflow::Block`] hands it to
    /// a task that waits for room.
    fn offer_detached(&self, msg: Msg) {
        if let Some(msg) = self.offer(msg) {
            self.send_detached(msg);
        }
    }

    /// Sends `msg` from a task of the current runtime, waiting for room.
    fn send_detached(&self, msg: Msg) {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let tx = self.tx.clone();
                let counters = Arc::clone(&self.counters);
                let epoch = self.epoch;
                runtime.spawn(async move {
                    if let Err(mpsc::error::SendError(msg)) = tx.send(msg).await {
                        release(&counters, &msg);
                        counters.drop_one(epoch, "the access log is shut down");
                    }
                });
            }
            Err(_) => self.lost(msg, "no runtime to wait for room on"),
        }
    }

    /// Counts `msg` as dropped.
    fn lost(&self, msg: Msg, why: &'static str) {
        release(&self.counters, &msg);
        if matches!(msg, Msg::Record(_)) {
            self.counters.drop_one(self.epoch, why);
        }
    }

    /// Takes `len` bytes of the queued-body budget.
    fn reserve_body(&self, len: usize) -> bool {
        let before = self
            .counters
            .queued_body_bytes
            .fetch_add(len, Ordering::Relaxed);
        if before.saturating_add(len) > self.body_budget {
            self.counters
                .queued_body_bytes
                .fetch_sub(len, Ordering::Relaxed);
            return false;
        }
        true
    }
}

/// Gives back the body budget of a record that will not reach the writer.
fn release(counters: &Counters, msg: &Msg) {
    if let Msg::Record(pending) = msg {
        if let writer::RawBody::Bytes { bytes, .. } = &pending.body {
            counters
                .queued_body_bytes
                .fetch_sub(bytes.len(), Ordering::Relaxed);
        }
    }
}

impl fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessLog")
            .field("stats", &self.stats())
            .field("overflow", &self.inner.overflow)
            .finish_non_exhaustive()
    }
}

impl AccessLog {
    /// An access log with the defaults of [`AccessLogBuilder`]: the `tracing` sink, no trusted
    /// proxy (the client is the TCP peer), no user hook.
    ///
    /// # Panics
    ///
    /// When the operating system cannot start the writer thread; [`AccessLog::builder`]'s
    /// `build()` returns that as an error instead.
    pub fn new() -> Self {
        AccessLog::builder()
            .build()
            .unwrap_or_else(|e| panic!("cannot start the access log: {e}"))
    }

    /// A builder, starting from the defaults.
    pub fn builder() -> AccessLogBuilder {
        AccessLogBuilder::default()
    }

    /// The queue and the writer's counters, for metrics. Reads a few atomics.
    pub fn stats(&self) -> AccessLogStats {
        let c = &self.inner.counters;
        AccessLogStats {
            queued: self.inner.capacity - self.inner.tx.capacity().min(self.inner.capacity),
            capacity: self.inner.capacity,
            written: c.written.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
        }
    }

    /// Waits until every record queued before the call has been written (or has failed).
    pub async fn flush(&self) {
        let (answer, done) = tokio::sync::oneshot::channel();
        if self.inner.tx.send(Msg::Flush(answer)).await.is_ok() {
            let _ = done.await;
        }
    }

    /// Writes everything queued, then stops the writer: records that complete afterwards are
    /// dropped (and counted). Returns once the writer has ended. Call it after the server has
    /// stopped (`server.await`), before the process exits.
    pub async fn shutdown(&self) {
        let _ = self.inner.tx.send(Msg::Shutdown).await;
        let mut done = self.inner.done.clone();
        while done.changed().await.is_ok() {}
    }
}

impl Default for AccessLog {
    fn default() -> Self {
        AccessLog::new()
    }
}

/// The access log's counters, for metrics ([`AccessLog::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AccessLogStats {
    /// Records (and flush requests) in the queue now.
    pub queued: usize,
    /// The queue's size.
    pub capacity: usize,
    /// Records every sink accepted.
    pub written: u64,
    /// Records dropped: the queue was full (with [`Overflow::Drop`]) or the log shut down.
    pub dropped: u64,
    /// Records at least one sink refused after every retry.
    pub failed: u64,
}

/// Builds an [`AccessLog`]. Every setter says its default.
pub struct AccessLogBuilder {
    sinks: Vec<Box<dyn DynAccessSink>>,
    resolver: ClientIpResolver,
    user: Option<UserHook>,
    settings: Settings,
}

/// The access log's plain settings: what the builder's setters and `[access_log]` in the
/// bouncer's TOML file set, checked by [`Settings::check`] (at `build`, and when the TOML file
/// is loaded, so a bad value is reported at startup under its key).
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) redact: Vec<String>,
    pub(crate) skip: Vec<String>,
    pub(crate) session_cookie: Option<String>,
    pub(crate) body_limit: usize,
    pub(crate) queue: usize,
    pub(crate) batch: usize,
    pub(crate) overflow: Overflow,
    pub(crate) retries: u32,
    pub(crate) body_budget: usize,
    /// A database the writer opens (its URL).
    pub(crate) store: Option<String>,
    /// How long the store keeps records.
    pub(crate) retain: Option<Duration>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            redact: DEFAULT_REDACT.iter().map(|s| (*s).to_owned()).collect(),
            skip: DEFAULT_SKIP.iter().map(|s| (*s).to_owned()).collect(),
            session_cookie: Some(DEFAULT_SESSION_COOKIE.to_owned()),
            body_limit: DEFAULT_BODY_LIMIT,
            queue: DEFAULT_QUEUE,
            batch: DEFAULT_BATCH,
            overflow: Overflow::Drop,
            retries: DEFAULT_RETRIES,
            body_budget: DEFAULT_QUEUED_BODY_BYTES,
            store: None,
            retain: None,
        }
    }
}

/// What checking the settings compiles.
pub(crate) struct Checked {
    skip: PathPrefixes,
    redactor: Redactor,
}

impl Settings {
    /// Every setting checked, the field at fault named as the builder's setter is.
    pub(crate) fn check(&self) -> Result<Checked, InvalidSetting> {
        if !(1..=MAX_QUEUE).contains(&self.queue) {
            return Err(InvalidSetting::new(
                "queue_size",
                self.queue,
                "from 1 to 16777216 records",
            ));
        }
        if !(1..=MAX_BATCH).contains(&self.batch) {
            return Err(InvalidSetting::new(
                "batch_size",
                self.batch,
                "from 1 to 65536 records",
            ));
        }
        if self.body_limit > MAX_BODY_LIMIT {
            return Err(InvalidSetting::new(
                "body_limit",
                self.body_limit,
                "at most 1048576 bytes",
            ));
        }
        if self.body_budget < self.body_limit {
            return Err(InvalidSetting::new(
                "queued_body_bytes",
                self.body_budget,
                "at least the body limit",
            ));
        }
        if self.retries > MAX_RETRIES {
            return Err(InvalidSetting::new("retries", self.retries, "at most 20"));
        }
        if let Some(name) = &self.session_cookie {
            let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
            if name.is_empty() || !name.bytes().all(token) {
                return Err(InvalidSetting::new(
                    "session_cookie",
                    format!("{name:?}"),
                    "a cookie name",
                ));
            }
        }
        for prefix in &self.skip {
            if PathPrefixes::new([prefix]).is_err() {
                return Err(InvalidSetting::new(
                    "skip",
                    format!("{prefix:?}"),
                    "a path starting with `/`",
                ));
            }
        }
        let skip = PathPrefixes::new(&self.skip)
            .map_err(|_| InvalidSetting::new("skip", "the prefixes", "paths starting with `/`"))?;
        let redactor = Redactor::new(&self.redact).map_err(|name| {
            InvalidSetting::new(
                "redact",
                format!("{name:?}"),
                "a field name with a letter or a digit",
            )
        })?;
        if let Some(retain) = self.retain {
            if self.store.is_none() {
                return Err(InvalidSetting::new(
                    "retain",
                    humantime::format_duration(retain),
                    "a store to trim: set the store too",
                ));
            }
            if retain.is_zero() {
                return Err(InvalidSetting::new("retain", "0s", "longer than zero"));
            }
        }
        Ok(Checked { skip, redactor })
    }
}

impl fmt::Debug for AccessLogBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.settings;
        f.debug_struct("AccessLogBuilder")
            .field("sinks", &self.sinks.len())
            .field("redact", &s.redact)
            .field("skip", &s.skip)
            .field("resolver", &self.resolver)
            .field("user", &self.user.is_some())
            .field("session_cookie", &s.session_cookie)
            .field("body_limit", &s.body_limit)
            .field("queue", &s.queue)
            .field("batch", &s.batch)
            .field("overflow", &s.overflow)
            .field("retries", &s.retries)
            .field("body_budget", &s.body_budget)
            .field("store", &s.store.as_deref().map(crate::store_url::redact))
            .field("retain", &s.retain)
            .finish()
    }
}

impl Default for AccessLogBuilder {
    fn default() -> Self {
        AccessLogBuilder {
            sinks: Vec::new(),
            resolver: ClientIpResolver::new(Vec::new(), Vec::new(), 32, 64),
            user: None,
            settings: Settings::default(),
        }
    }
}

impl AccessLogBuilder {
    /// Starts from `settings` (`[access_log]` of the bouncer's TOML file).
    pub(crate) fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// The settings made so far (for the TOML loader, which uses the setters).
    pub(crate) fn into_settings(self) -> Settings {
        self.settings
    }

    /// Adds a sink; several may be added, each gets every batch. Default: none added, in which
    /// case the log writes to [`TracingSink`] (add it explicitly to have it with others).
    pub fn sink(mut self, sink: impl AccessSink) -> Self {
        self.sinks.push(Box::new(sink));
        self
    }

    /// The field names whose values are redacted, replacing the list (an empty list redacts
    /// nothing). Matching is case-insensitive, on decoded names, by substring: see the
    /// [module docs](self). Default: `password, passwd, secret, token, csrfmiddlewaretoken,
    /// authorization, api_key, card, cvv`.
    pub fn redact<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.settings.redact = names.into_iter().map(Into::into).collect();
        self
    }

    /// Adds field names to redact, keeping the list.
    pub fn also_redact<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.settings
            .redact
            .extend(names.into_iter().map(Into::into));
        self
    }

    /// Path prefixes not logged, replacing the list; matched on segment boundaries, decoded
    /// and normalised ([`PathPrefixes`]): `/static/` skips `/static`, `/static/app.css`,
    /// `/%73tatic/x` and `//static/x`, not `/staticfoo`. Default: `/static/`, `/media/`.
    pub fn skip<I, S>(mut self, prefixes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.settings.skip = prefixes.into_iter().map(Into::into).collect();
        self
    }

    /// How the client address is resolved (trusted proxies, forwarding headers). Default: no
    /// trusted proxy, the client is the TCP peer. [`Bouncer::access_log`](crate::Bouncer::access_log)
    /// sets the bouncer's.
    pub fn resolver(mut self, resolver: ClientIpResolver) -> Self {
        self.resolver = resolver;
        self
    }

    /// Names the user behind a request, when it reaches the log. Default: none. Whatever the
    /// hook, a response carrying the bouncer's verdict is recorded with the user the bouncer
    /// named (so [`Bouncer::access_log`](crate::Bouncer::access_log) needs no hook, and an
    /// identity middleware between the log and the bouncer is seen).
    pub fn user<F>(mut self, hook: F) -> Self
    where
        F: Fn(&ServiceRequest) -> Option<String> + Send + Sync + 'static,
    {
        self.user = Some(Arc::new(hook));
        self
    }

    /// The cookie holding the session id, whose fingerprint is recorded; `None` records no
    /// session. Default: `id` (actix-session's default name; Django's is `sessionid`).
    pub fn session_cookie(mut self, name: Option<&str>) -> Self {
        self.settings.session_cookie = name.map(str::to_owned);
        self
    }

    /// Most body bytes captured; a longer body is recorded as `[omitted: over N bytes]`. 0
    /// captures no body. At most 1 MiB. Default: 16 KiB.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.settings.body_limit = bytes;
        self
    }

    /// The queue's size, in records, 1 to 16,777,216. Default: 65,536 (see the
    /// [module docs](self)).
    pub fn queue_size(mut self, records: usize) -> Self {
        self.settings.queue = records;
        self
    }

    /// Most records per sink write, 1 to 65,536. Default: 8,192 (SQLite takes about twice as
    /// many rows a second in batches of 8,192 as of 1,024: `cargo bench --bench access_log`).
    pub fn batch_size(mut self, records: usize) -> Self {
        self.settings.batch = records;
        self
    }

    /// What a full queue does. Default: [`Overflow::Drop`].
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.settings.overflow = overflow;
        self
    }

    /// How many times a failed sink write is retried (pauses from 100 ms, doubling, at most
    /// 5 s) before its records count as failed; at most 20. Default: 3.
    pub fn retries(mut self, retries: u32) -> Self {
        self.settings.retries = retries;
        self
    }

    /// Most captured body bytes waiting in the queue, in all; at least the body limit.
    /// Default: 64 MiB.
    pub fn queued_body_bytes(mut self, bytes: usize) -> Self {
        self.settings.body_budget = bytes;
        self
    }

    /// Records also go to the database at `url` ([`SqlAccessLog`]: `sqlite://access.db`,
    /// `postgres://user:password@host/db`), which [`build`](Self::build) opens on the writer's
    /// own runtime, where its connections then live, and fails (setting `store`, the password
    /// masked) when it cannot. Default: none.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub fn store_url(mut self, url: impl Into<String>) -> Self {
        self.settings.store = Some(url.into());
        self
    }

    /// With [`store_url`](Self::store_url): deletes the store's records older than `retain`,
    /// when the writer starts and every hour after ([`SqlAccessLog::trim_every`]), on the
    /// writer's thread; without a store, [`build`](Self::build) fails (setting `retain`).
    /// Default: records are kept until trimmed (`bouncer logs trim`).
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub fn retain(mut self, retain: Duration) -> Self {
        self.settings.retain = Some(retain);
        self
    }

    /// Checks the settings and starts the writer thread.
    pub fn build(self) -> Result<AccessLog, InvalidSetting> {
        let Checked { skip, redactor } = self.settings.check()?;
        let settings = self.settings;
        let mut sinks = self.sinks;
        if sinks.is_empty() && settings.store.is_none() {
            sinks.push(Box::new(TracingSink::new()));
        }
        let counters = Arc::new(Counters::default());
        let (tx, rx) = mpsc::channel(settings.queue);
        let (done_tx, done) = watch::channel(());
        let store = settings.store.clone().map(|url| (url, settings.retain));
        let opened = writer::spawn(
            WriterConfig {
                sinks,
                redactor,
                batch: settings.batch,
                retries: settings.retries,
                query_max: middleware::QUERY_MAX,
            },
            store,
            rx,
            Arc::clone(&counters),
            done_tx,
        )
        .map_err(|e| InvalidSetting::new("", e, "a thread for the access log's writer"))?;
        if let (Some(opened), Some(url)) = (opened, &settings.store) {
            let shown = crate::store_url::redact(url);
            match opened.recv() {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    let mut error = error.to_string();
                    for password in crate::store_url::passwords(url) {
                        error = error.replace(password, "***");
                    }
                    return Err(InvalidSetting::new(
                        "store",
                        format!("{shown:?}"),
                        format!("a database that opens ({error})"),
                    ));
                }
                Err(_) => {
                    return Err(InvalidSetting::new(
                        "store",
                        format!("{shown:?}"),
                        "a database the writer could open (its thread ended)",
                    ))
                }
            }
        }
        Ok(AccessLog {
            inner: Arc::new(Inner {
                tx,
                counters,
                capacity: settings.queue,
                overflow: settings.overflow,
                skip,
                resolver: self.resolver,
                user: self.user,
                session_cookie: settings.session_cookie,
                body_limit: settings.body_limit,
                body_budget: settings.body_budget,
                epoch: Instant::now(),
                done,
            }),
        })
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use self::sql::{
    AccessLogTrimmer, BlockedBucket, BlockedIp, Bucket, IpCount, PathCount, ReasonCount,
    SqlAccessLog, Subject, Top, TOP_READ_MAX,
};
