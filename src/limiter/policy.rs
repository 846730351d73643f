//! How many hits a key may make, and how long it is banned for making more.

use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use governor::Quota;

use crate::setting::InvalidSetting;

/// The longest span, in nanoseconds, that `per` and a full burst may cover (about 146 years).
pub(super) const MAX_SPAN_NANOS: u64 = 1 << 62;

/// `max_tracked_keys` when nothing says otherwise.
pub const DEFAULT_MAX_TRACKED_KEYS: NonZeroUsize = match NonZeroUsize::new(100_000) {
    Some(n) => n,
    None => NonZeroUsize::MIN,
};

/// How many hits a key may make, and what happens when it makes more.
///
/// ```
/// use std::num::NonZeroU32;
/// use std::time::Duration;
/// use actix_bouncer::limiter::{BanPolicy, LimitPolicy};
///
/// let policy = LimitPolicy::new(NonZeroU32::new(60).unwrap(), Duration::from_secs(60))?
///     .with_burst(NonZeroU32::new(10).unwrap())
///     .with_ban(BanPolicy::new(Duration::from_secs(600), 2.0, Duration::from_secs(86_400))?);
/// assert_eq!(policy.burst().get(), 10);
/// # Ok::<(), actix_bouncer::setting::InvalidSetting>(())
/// ```
///
/// Errors are [`InvalidSetting`]s naming the field: `per`, `ban_for`, `ban_growth`, `max_ban`.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitPolicy {
    hits: NonZeroU32,
    per: Duration,
    burst: NonZeroU32,
    /// Nanoseconds per cell: `per / hits`, rounded down; never zero.
    period: u64,
    /// `period` and `burst` as governor wants them.
    pub(super) quota: Quota,
    ban: Option<BanPolicy>,
}

impl LimitPolicy {
    /// `hits` per `per`. The burst defaults to `hits`, and there is no ban.
    ///
    /// Refused (field `per`): a zero `per`, one longer than 2^62 ns (about 146 years), or one
    /// so short that `per / hits` rounds to 0 ns.
    pub fn new(hits: NonZeroU32, per: Duration) -> Result<Self, InvalidSetting> {
        let invalid = |expected: String| InvalidSetting::new("per", format!("{per:?}"), expected);
        let per_nanos = match u64::try_from(per.as_nanos()) {
            Ok(0) => return Err(invalid("a duration longer than zero".into())),
            Ok(n) if n <= MAX_SPAN_NANOS => n,
            _ => return Err(invalid("a duration of at most 146 years".into())),
        };
        let period = per_nanos / u64::from(hits.get());
        let quota = Quota::with_period(Duration::from_nanos(period)).ok_or_else(|| {
            invalid(format!(
                "at least {hits} ns, so that one hit every `per` / `hits` is a whole nanosecond"
            ))
        })?;
        Ok(Self {
            hits,
            per,
            burst: hits,
            period,
            quota: quota.allow_burst(hits),
            ban: None,
        })
    }

    /// Allows bursts of up to `burst` hits (default: `hits`).
    ///
    /// A burst whose full refill would take longer than about 146 years
    /// (`burst * per / hits > 2^62 ns`) is capped to the largest one that does not; see
    /// [`LimitPolicy::burst`] for the value in use.
    pub fn with_burst(mut self, burst: NonZeroU32) -> Self {
        let most = u32::try_from(MAX_SPAN_NANOS / self.period.max(1)).unwrap_or(u32::MAX);
        self.burst = NonZeroU32::new(burst.get().min(most)).unwrap_or(NonZeroU32::MIN);
        self.quota = self.quota.allow_burst(self.burst);
        self
    }

    /// Bans keys that go over the limit. Any ban length is accepted, even one shorter than
    /// `per`: fail2ban bans for as long as it counts by default.
    pub fn with_ban(mut self, ban: BanPolicy) -> Self {
        self.ban = Some(ban);
        self
    }

    /// Hits allowed per [`LimitPolicy::per`].
    pub fn hits(&self) -> NonZeroU32 {
        self.hits
    }

    /// The window `hits` are counted over.
    pub fn per(&self) -> Duration {
        self.per
    }

    /// The most hits allowed at once (after any capping by [`LimitPolicy::with_burst`]).
    pub fn burst(&self) -> NonZeroU32 {
        self.burst
    }

    /// The ban policy, if keys over the limit are banned.
    pub fn ban(&self) -> Option<&BanPolicy> {
        self.ban.as_ref()
    }

    /// GCRA tolerance in nanoseconds: the weight of the burst beyond its first cell.
    pub(super) fn tau(&self) -> u64 {
        self.period
            .saturating_mul(u64::from(self.burst.get().saturating_sub(1)))
    }
}

/// How long keys over the limit are banned, growing with repeat offences.
#[derive(Debug, Clone, PartialEq)]
pub struct BanPolicy {
    ban_for: Duration,
    growth: f64,
    max_ban: Duration,
}

impl BanPolicy {
    /// The first ban lasts `ban_for`; each repeat offence multiplies it by `growth`, up to
    /// `max_ban`.
    ///
    /// Refused: `ban_for` zero (field `ban_for`); `growth` not finite or below 1.0
    /// (`ban_growth`); `max_ban` shorter than `ban_for` (`max_ban`).
    pub fn new(ban_for: Duration, growth: f64, max_ban: Duration) -> Result<Self, InvalidSetting> {
        if ban_for.is_zero() {
            return Err(InvalidSetting::new(
                "ban_for",
                format!("{ban_for:?}"),
                "a duration longer than zero",
            ));
        }
        if !growth.is_finite() || growth < 1.0 {
            return Err(InvalidSetting::new(
                "ban_growth",
                growth,
                "a finite number of at least 1.0",
            ));
        }
        if max_ban < ban_for {
            return Err(InvalidSetting::new(
                "max_ban",
                format!("{max_ban:?}"),
                format!("a duration at least as long as `ban_for` ({ban_for:?})"),
            ));
        }
        Ok(Self {
            ban_for,
            growth,
            max_ban,
        })
    }

    /// The first ban's length.
    pub fn ban_for(&self) -> Duration {
        self.ban_for
    }

    /// The factor each repeat offence multiplies the ban by.
    pub fn growth(&self) -> f64 {
        self.growth
    }

    /// The longest ban; also how long a key must stay out of trouble after its last ban
    /// before its offences are forgotten.
    pub fn max_ban(&self) -> Duration {
        self.max_ban
    }

    /// Length of the n-th ban (n >= 1), capped at max_ban.
    ///
    /// `ban_for * growth^(n-1)`; `offence` 0 is treated as 1.
    pub fn ban_length(&self, offence: u32) -> Duration {
        if offence <= 1 || self.growth == 1.0 {
            return self.ban_for.min(self.max_ban);
        }
        let exponent = i32::try_from(offence - 1).unwrap_or(i32::MAX);
        let secs = self.ban_for.as_secs_f64() * self.growth.powi(exponent);
        // Also catches an infinite power (and NaN, which cannot happen: `ban_for` > 0).
        if secs.is_nan() || secs >= self.max_ban.as_secs_f64() {
            return self.max_ban;
        }
        Duration::try_from_secs_f64(secs).map_or(self.max_ban, |d| d.min(self.max_ban))
    }
}
