//! Time sources.
//!
//! Every time-dependent decision (rate-limit cells, ban expiry, rule expiry, idle-key
//! eviction) reads one injected [`Clock`], so tests can move time forward with a
//! [`ManualClock`] instead of sleeping.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A source of monotonic and wall-clock time.
///
/// The middleware reads [`Clock::monotonic`] once per request; [`Clock::wall`] is only read
/// when a matched rule carries an expiry, or when a rule is created.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Time elapsed since an arbitrary, fixed origin. Never goes backwards.
    fn monotonic(&self) -> Duration;

    /// The current wall-clock time, used for rule creation and expiry.
    fn wall(&self) -> SystemTime;
}

/// The real clock: the CPU's time-stamp counter (through `quanta`, which falls back to the
/// OS clock where the counter is unreliable) for monotonic time, [`SystemTime`] for wall time.
///
/// Each request reads the monotonic clock once; the counter costs about a third of a
/// `clock_gettime` call.
#[derive(Debug, Clone)]
pub struct SystemClock {
    clock: quanta::Clock,
    origin: quanta::Instant,
}

impl SystemClock {
    /// A clock whose monotonic origin is now.
    pub fn new() -> Self {
        let clock = quanta::Clock::new();
        let origin = clock.now();
        Self { clock, origin }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    #[inline]
    fn monotonic(&self) -> Duration {
        self.clock.now().saturating_duration_since(self.origin)
    }

    #[inline]
    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that only moves when told to; for tests.
///
/// Clones share the same time, so a test keeps one handle and gives a clone to the
/// bouncer. Monotonic and wall time advance together.
///
/// ```
/// use std::time::Duration;
/// use actix_bouncer::clock::{Clock, ManualClock};
///
/// let clock = ManualClock::new();
/// let before = clock.monotonic();
/// clock.advance(Duration::from_secs(90));
/// assert_eq!(clock.monotonic() - before, Duration::from_secs(90));
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    inner: Arc<ManualInner>,
}

#[derive(Debug)]
struct ManualInner {
    nanos: AtomicU64,
    wall_origin: SystemTime,
}

impl ManualClock {
    /// A manual clock whose wall time starts at the real current time.
    pub fn new() -> Self {
        Self::starting_at(SystemTime::now())
    }

    /// A manual clock whose wall time starts at `wall`.
    pub fn starting_at(wall: SystemTime) -> Self {
        Self {
            inner: Arc::new(ManualInner {
                nanos: AtomicU64::new(0),
                wall_origin: wall,
            }),
        }
    }

    /// Moves time forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        // Saturate rather than wrap: a test that jumps centuries ahead still sees time move forward.
        let _ = self
            .inner
            .nanos
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_add(by))
            });
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn monotonic(&self) -> Duration {
        Duration::from_nanos(self.inner.nanos.load(Ordering::Acquire))
    }

    fn wall(&self) -> SystemTime {
        self.inner.wall_origin + self.monotonic()
    }
}

/// A duration in whole nanoseconds, saturating at `u64::MAX` (about 584 years).
#[inline]
pub(crate) fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Whole seconds, rounded up, for `Retry-After` and messages.
#[inline]
pub(crate) fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// `t` as RFC 3339 in UTC (`2026-12-03T14:47:48.724156Z`), to the nanosecond, or to the second
/// with `whole_seconds`; empty outside the format's range.
pub(crate) fn rfc3339(t: SystemTime, whole_seconds: bool) -> String {
    let nanos = match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    };
    let nanos = if whole_seconds {
        nanos.div_euclid(1_000_000_000) * 1_000_000_000
    } else {
        nanos
    };
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
