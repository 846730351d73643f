//! What the cache holds for an address, what that means at a given instant, and the counters
//! that record how lookups were answered.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{IpReport, ReputationError};

/// How long the cache's answers last: the periods [`Entry::state`] compares ages with.
#[derive(Debug, Clone, Copy)]
pub(super) struct Lifetimes {
    /// How long a report is fresh.
    pub(super) cache_ttl: Duration,
    /// `cache_ttl + stale_for`: how long after its fetch a report may be served at all.
    pub(super) usable_for: Duration,
    /// How long a failure is remembered.
    pub(super) negative_ttl: Duration,
}

/// What the cache holds for one address.
#[derive(Clone)]
pub(super) struct Entry {
    /// The last good report, if it is still usable.
    pub(super) report: Option<Arc<IpReport>>,
    /// When `report` was fetched (monotonic clock).
    pub(super) fetched_at: Duration,
    /// When the last upstream call failed, if the last call failed.
    pub(super) failed_at: Option<Duration>,
}

/// What one cache entry means at a given instant.
pub(super) enum State {
    /// A fresh report: serve it.
    Fresh(Arc<IpReport>),
    /// A stale report and no recent failure: serve it, and refresh.
    Stale(Arc<IpReport>),
    /// A stale report and a recent failure: serve it, do not ask the API yet.
    StaleFailing(Arc<IpReport>),
    /// No usable report and a recent failure: do not ask the API yet.
    Failing,
    /// Nothing usable: ask the API.
    Miss,
}

impl Entry {
    /// What the entry means at `now`. Takes the entry by value: the cache hands out a
    /// clone, and the report's `Arc` moves out of it rather than being cloned again.
    pub(super) fn state(self, now: Duration, lifetimes: &Lifetimes) -> State {
        let failing = self
            .failed_at
            .is_some_and(|at| now.saturating_sub(at) < lifetimes.negative_ttl);
        let age = now.saturating_sub(self.fetched_at);
        match self.report {
            Some(report) if age < lifetimes.cache_ttl => State::Fresh(report),
            Some(report) if age < lifetimes.usable_for && failing => State::StaleFailing(report),
            Some(report) if age < lifetimes.usable_for => State::Stale(report),
            _ if failing => State::Failing,
            _ => State::Miss,
        }
    }
}

/// An answer to a lookup, and where it came from (for the counters).
#[derive(Clone)]
pub(super) struct Outcome {
    pub(super) result: Result<Arc<IpReport>, ReputationError>,
    pub(super) source: Source,
}

/// Where an [`Outcome`] came from, which decides the counter it bumps.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    /// A fresh report from the cache, or a remembered failure.
    Cache,
    /// A stale report, served because the API failed (now or recently).
    Stale,
    /// The upstream call's own answer.
    Upstream,
}

/// The live counters behind [`ReputationStats`](super::ReputationStats).
#[derive(Default)]
pub(super) struct Counters {
    pub(super) upstream_calls: AtomicU64,
    pub(super) cache_hits: AtomicU64,
    pub(super) cache_misses: AtomicU64,
    pub(super) stale_served: AtomicU64,
    pub(super) failures: AtomicU64,
    pub(super) dropped: AtomicU64,
    pub(super) queued: AtomicU64,
}

/// Counts one event; the counters are only read for monitoring, so no ordering is needed.
pub(super) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}
