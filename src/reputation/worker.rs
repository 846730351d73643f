//! The background worker thread and the upstream calls: every call runs on the worker's
//! runtime, and concurrent lookups of one address share one call.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, watch, Semaphore};

use super::cache::{bump, Counters, Entry, Lifetimes, Outcome, Source, State};
use super::config::expand;
use super::report::parse_report;
use super::{FieldMap, IpReport, ReputationError};
use crate::clock::Clock;
use crate::sync::{lock, RuntimeThread};

/// The name of the background worker's thread.
const WORKER_THREAD: &str = "actix-bouncer-reputation";

/// The largest response body read from the API; a longer one is [`ReputationError::Malformed`].
const MAX_BODY: usize = 64 * 1024;

/// The state shared by the handles, the worker and the in-flight upstream calls.
pub(super) struct Shared {
    pub(super) url: String,
    pub(super) lifetimes: Lifetimes,
    pub(super) fields: FieldMap,
    pub(super) client: reqwest::Client,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) cache: quick_cache::sync::Cache<IpAddr, Entry>,
    /// The upstream call running for each address, to join instead of starting another.
    pub(super) in_flight: Mutex<HashMap<IpAddr, watch::Receiver<Option<Outcome>>>>,
    /// Addresses queued for (or being looked up by) the worker, so `peek` does not queue one
    /// address twice.
    pub(super) pending: Mutex<HashSet<IpAddr>>,
    /// The worker's runtime, where every upstream call runs.
    pub(super) runtime: tokio::runtime::Handle,
    pub(super) stats: Counters,
    /// The cache shared with other instances through Redis, if configured.
    #[cfg(feature = "redis")]
    pub(super) shared_cache: Option<super::shared_cache::SharedCache>,
}

/// Starts the worker's thread, which drives `runtime` until every handle is gone.
pub(super) fn spawn(
    runtime: RuntimeThread,
    shared: Arc<Shared>,
    queue: mpsc::Receiver<IpAddr>,
    concurrency: usize,
) -> std::io::Result<()> {
    runtime.run(WORKER_THREAD, move || {
        run_worker(shared, queue, concurrency)
    })
}

/// The background worker: takes addresses off the queue and looks each up, at most
/// `concurrency` at a time, until every handle is gone.
///
/// When it returns, the thread drops the runtime, which cancels whatever still runs on it.
async fn run_worker(shared: Arc<Shared>, mut queue: mpsc::Receiver<IpAddr>, concurrency: usize) {
    let slots = Arc::new(Semaphore::new(concurrency));
    loop {
        // Take a slot first, so addresses wait in the bounded queue while all are busy.
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            break;
        };
        let Some(ip) = queue.recv().await else {
            break;
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            // The outcome lands in the cache; failures are logged and counted there.
            let _ = shared.resolve(ip, false).await;
            lock(&shared.pending).remove(&ip);
            drop(slot);
        });
    }
}

/// Removes an address's in-flight marker when its upstream call ends, however it ends (even
/// when the task is dropped before it ran).
struct FlightGuard {
    shared: Arc<Shared>,
    ip: IpAddr,
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        lock(&self.shared.in_flight).remove(&self.ip);
    }
}

impl Shared {
    /// The coalesced lookup behind [`Reputation::lookup`](super::Reputation::lookup) and the
    /// worker. `caller` says whether the answer goes to a caller (and so counts as a hit or
    /// stale serve).
    pub(super) async fn resolve(
        self: &Arc<Self>,
        ip: IpAddr,
        caller: bool,
    ) -> Result<Arc<IpReport>, ReputationError> {
        if let Some(outcome) = self.cached(ip) {
            return self.deliver(outcome, caller);
        }
        if caller {
            bump(&self.stats.cache_misses);
        }
        let mut flight = match self.join_or_start(ip) {
            Ok(outcome) => return self.deliver(outcome, caller),
            Err(flight) => flight,
        };
        let outcome = match flight.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone(),
            // The call was dropped unfinished: only when the worker's runtime is gone.
            Err(_) => None,
        };
        match outcome {
            Some(outcome) => self.deliver(outcome, caller),
            None => Err(ReputationError::Transport),
        }
    }

    /// The answer the cache gives without asking the API, if any.
    fn cached(&self, ip: IpAddr) -> Option<Outcome> {
        let entry = self.cache.get(&ip)?;
        match entry.state(self.clock.monotonic(), &self.lifetimes) {
            State::Fresh(report) => Some(Outcome {
                result: Ok(report),
                source: Source::Cache,
            }),
            State::StaleFailing(report) => Some(Outcome {
                result: Ok(report),
                source: Source::Stale,
            }),
            State::Failing => Some(Outcome {
                result: Err(ReputationError::Unavailable),
                source: Source::Cache,
            }),
            State::Stale(_) | State::Miss => None,
        }
    }

    /// Hands `outcome` to its receiver, counting what a caller was served.
    fn deliver(&self, outcome: Outcome, caller: bool) -> Result<Arc<IpReport>, ReputationError> {
        if caller && outcome.result.is_ok() {
            match outcome.source {
                Source::Cache => bump(&self.stats.cache_hits),
                Source::Stale => bump(&self.stats.stale_served),
                Source::Upstream => {}
            }
        }
        outcome.result
    }

    /// Joins the upstream call running for `ip`, or starts one on the worker's runtime.
    /// `Ok` when the cache answered after all (a call finished in the meantime).
    fn join_or_start(
        self: &Arc<Self>,
        ip: IpAddr,
    ) -> Result<Outcome, watch::Receiver<Option<Outcome>>> {
        let mut in_flight = lock(&self.in_flight);
        if let Some(flight) = in_flight.get(&ip) {
            return Err(flight.clone());
        }
        // A call that ended between our cache read and taking the lock has updated the
        // cache before leaving the map: look again rather than call twice.
        if let Some(outcome) = self.cached(ip) {
            return Ok(outcome);
        }
        let (sender, receiver) = watch::channel(None);
        in_flight.insert(ip, receiver.clone());
        drop(in_flight);

        let guard = FlightGuard {
            shared: Arc::clone(self),
            ip,
        };
        self.runtime.spawn(async move {
            let shared = Arc::clone(&guard.shared);
            let outcome = shared.refresh(ip).await;
            // Leave the map before publishing: a caller that comes after this finds the
            // cache updated, never a finished call to join (its answer may be out of date
            // by the caller's clock).
            drop(guard);
            sender.send_replace(Some(outcome));
        });
        Err(receiver)
    }

    /// Asks the API about `ip` and records the answer (or the failure) in the cache.
    async fn refresh(&self, ip: IpAddr) -> Outcome {
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared_cache {
            if let Some((report, fresh_for)) = shared.get(ip).await {
                let now = self.clock.monotonic();
                let age = self.lifetimes.cache_ttl.saturating_sub(fresh_for);
                let report = Arc::new(report);
                self.cache.insert(
                    ip,
                    Entry {
                        report: Some(Arc::clone(&report)),
                        fetched_at: now.saturating_sub(age),
                        failed_at: None,
                    },
                );
                return Outcome {
                    result: Ok(report),
                    source: Source::Cache,
                };
            }
        }
        #[cfg(feature = "metrics")]
        let started = std::time::Instant::now();
        let fetched = self.fetch(ip).await;
        #[cfg(feature = "metrics")]
        ::metrics::histogram!(super::API_SECONDS).record(started.elapsed().as_secs_f64());
        let now = self.clock.monotonic();
        match fetched {
            Ok(report) => {
                #[cfg(feature = "redis")]
                if let Some(shared) = &self.shared_cache {
                    shared.put(ip, &report, self.lifetimes.cache_ttl).await;
                }
                let report = Arc::new(report);
                self.cache.insert(
                    ip,
                    Entry {
                        report: Some(Arc::clone(&report)),
                        fetched_at: now,
                        failed_at: None,
                    },
                );
                Outcome {
                    result: Ok(report),
                    source: Source::Upstream,
                }
            }
            Err(error) => {
                // Keep a report that may still be served (stale-if-error).
                let (report, fetched_at) = self
                    .cache
                    .get(&ip)
                    .and_then(|entry| {
                        let report = entry.report?;
                        (now.saturating_sub(entry.fetched_at) < self.lifetimes.usable_for)
                            .then_some((report, entry.fetched_at))
                    })
                    .map_or((None, now), |(report, at)| (Some(report), at));
                tracing::warn!(
                    target: "actix_bouncer",
                    %ip,
                    %error,
                    serving_stale = report.is_some(),
                    retry_after = ?self.lifetimes.negative_ttl,
                    "reputation lookup failed"
                );
                self.cache.insert(
                    ip,
                    Entry {
                        report: report.clone(),
                        fetched_at,
                        failed_at: Some(now),
                    },
                );
                bump(&self.stats.failures);
                match report {
                    Some(report) => Outcome {
                        result: Ok(report),
                        source: Source::Stale,
                    },
                    None => Outcome {
                        result: Err(error),
                        source: Source::Upstream,
                    },
                }
            }
        }
    }

    /// One upstream call.
    async fn fetch(&self, ip: IpAddr) -> Result<IpReport, ReputationError> {
        bump(&self.stats.upstream_calls);
        let url = expand(&self.url, ip);
        let mut response = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|error| transport_error(ip, error))?;
        let status = response.status();
        if !status.is_success() {
            return Err(ReputationError::Status(status.as_u16()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| transport_error(ip, error))?
        {
            if body.len() + chunk.len() > MAX_BODY {
                tracing::debug!(target: "actix_bouncer", %ip, "reputation answer too large");
                return Err(ReputationError::Malformed);
            }
            body.extend_from_slice(&chunk);
        }
        parse_report(&body, &self.fields)
    }
}

/// Classifies a failed request, logging the detail (without the URL, which may hold a key).
fn transport_error(ip: IpAddr, error: reqwest::Error) -> ReputationError {
    let kind = if error.is_timeout() {
        ReputationError::Timeout
    } else {
        ReputationError::Transport
    };
    tracing::debug!(
        target: "actix_bouncer",
        %ip,
        detail = ?error.without_url(),
        "reputation request failed"
    );
    kind
}
