//! The circuit breaker between the syncer and Redis.
//!
//! Closed: batches go to Redis. After [`TRIP_AFTER`] failed round trips in a row (an error or
//! a timeout) it opens: nothing is sent for a back-off that starts at 100 ms and doubles up to
//! 5 s, and the store answers from its local limiter alone (or refuses, with `fail = "closed"`).
//! When the back-off ends one probe is let through (half-open): its success closes the breaker
//! (the store then resyncs its bans), its failure opens it again for twice as long.
//!
//! The request path reads only [`Breaker::is_open`]: one relaxed atomic load.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Failed round trips in a row that open the breaker.
pub(super) const TRIP_AFTER: u32 = 3;
/// The first back-off.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest back-off.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The breaker's state, owned by the syncer; the request path sees only the open flag.
#[derive(Debug)]
pub(super) struct Breaker {
    open: AtomicBool,
    state: std::sync::Mutex<State>,
}

#[derive(Debug, Clone, Copy)]
struct State {
    failures: u32,
    backoff: Duration,
    /// While open: when (monotonic ns) the next probe may go.
    retry_at: u64,
}

/// What a failure did to the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tripped {
    /// Still closed.
    No,
    /// Opened (or stayed open) for this long.
    Open(Duration),
}

impl Breaker {
    /// An open breaker whose first probe may go at once: the store starts unconnected.
    pub(super) fn new() -> Self {
        Breaker {
            open: AtomicBool::new(true),
            state: std::sync::Mutex::new(State {
                failures: TRIP_AFTER,
                backoff: FIRST_BACKOFF,
                retry_at: 0,
            }),
        }
    }

    /// Whether requests are answered without Redis now.
    #[inline]
    pub(super) fn is_open(&self) -> bool {
        self.open.load(Ordering::Relaxed)
    }

    /// Whether a round trip may be tried at `now` (monotonic ns): closed, or open with its
    /// back-off over (a probe).
    pub(super) fn may_try(&self, now: u64) -> bool {
        let state = crate::sync::lock(&self.state);
        !self.is_open() || now >= state.retry_at
    }

    /// A round trip succeeded; whether this closed an open breaker (time to resync).
    pub(super) fn success(&self) -> bool {
        let mut state = crate::sync::lock(&self.state);
        state.failures = 0;
        state.backoff = FIRST_BACKOFF;
        self.open.swap(false, Ordering::Relaxed)
    }

    /// A round trip failed at `now` (monotonic ns).
    pub(super) fn failure(&self, now: u64) -> Tripped {
        let mut state = crate::sync::lock(&self.state);
        state.failures = state.failures.saturating_add(1);
        if state.failures < TRIP_AFTER {
            return Tripped::No;
        }
        let backoff = state.backoff;
        state.retry_at = now.saturating_add(crate::clock::duration_nanos(backoff));
        state.backoff = (backoff * 2).min(MAX_BACKOFF);
        self.open.store(true, Ordering::Relaxed);
        Tripped::Open(backoff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn opens_after_failures_in_a_row_backs_off_and_closes_on_success() {
        let b = Breaker::new();
        // Starts open, probing at once.
        assert!(b.is_open());
        assert!(b.may_try(0));
        assert!(b.success());
        assert!(!b.is_open());
        assert!(!b.success());
        // Two failures keep it closed; a success in between resets the count.
        assert_eq!(b.failure(0), Tripped::No);
        assert_eq!(b.failure(0), Tripped::No);
        b.success();
        assert_eq!(b.failure(0), Tripped::No);
        assert_eq!(b.failure(0), Tripped::No);
        assert_eq!(b.failure(0), Tripped::Open(Duration::from_millis(100)));
        assert!(b.is_open());
        assert!(!b.may_try(99 * MS));
        assert!(b.may_try(100 * MS));
        // The probe fails: twice as long.
        assert_eq!(
            b.failure(100 * MS),
            Tripped::Open(Duration::from_millis(200))
        );
        assert!(!b.may_try(299 * MS));
        assert!(b.may_try(300 * MS));
        for _ in 0..10 {
            b.failure(0);
        }
        assert_eq!(b.failure(0), Tripped::Open(MAX_BACKOFF));
        assert!(b.success());
        assert!(!b.is_open());
    }
}
