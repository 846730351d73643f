//! Per-handler rate limits: the extractor twin of `#[rate_limit]`.

use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};

use super::rejection::{judge, GuardFuture, GuardRejection};
use crate::limiter::{LimitOutcome, LimitSpec, Subject};
use crate::verdict::{BlockReason, Flag, Refusal};

/// What a handler limit counts by.
pub mod limit_key {
    /// The client's grouping key (address or network).
    pub const IP: u8 = 0;
    /// The user named by the bouncer's user hook; requests without a user are not counted.
    pub const USER: u8 = 1;
    /// The user when known, otherwise the client's grouping key.
    pub const USER_OR_IP: u8 = 2;
}

/// A per-handler rate limit on top of the global one: `HITS` per `PER_MS` milliseconds, and a
/// ban of `BAN_MS` milliseconds (0: no ban) for going over, counted by `KEY` (see
/// [`limit_key`]) in the counters of the limit `ID` ([`limit_id`](super::limit_id) of its
/// name). With automatic rules on, a ban of a signed-in user is recorded as a rule lasting
/// `USER_BAN_MS` (0, the default: the bouncer's `user_ban_for`, or the ban's length).
///
/// Refuses with 429 (reason `rate_limited`) or, when banned, 403 (reason `banned`), both with
/// `Retry-After`. Counters live in the bouncer's one counter store, beside the global limit's
/// (sharing its `max_tracked_keys`, `ban_growth` and `max_ban`). Handlers with the same name
/// and rate share their counters. The extractor twin of `#[rate_limit(...)]`, which names the
/// limit after the handler's module path and function (`app::auth::login`), or `name = "…"`.
///
/// ```
/// use actix_bouncer::guard::{limit_id, limit_key, HandlerLimit};
///
/// // 5 a minute per client, then a 15-minute ban, counted as "login".
/// type LoginLimit = HandlerLimit<5, 60_000, 900_000, { limit_key::IP }, { limit_id("login") }>;
///
/// async fn login(_limit: LoginLimit) -> &'static str {
///     "ok"
/// }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct HandlerLimit<
    const HITS: u32,
    const PER_MS: u64,
    const BAN_MS: u64,
    const KEY: u8,
    const ID: u64,
    const USER_BAN_MS: u64 = 0,
>;

impl<
        const HITS: u32,
        const PER_MS: u64,
        const BAN_MS: u64,
        const KEY: u8,
        const ID: u64,
        const USER_BAN_MS: u64,
    > HandlerLimit<HITS, PER_MS, BAN_MS, KEY, ID, USER_BAN_MS>
{
    const SPEC: LimitSpec = {
        assert!(HITS >= 1, "HandlerLimit needs HITS >= 1");
        assert!(PER_MS >= 1, "HandlerLimit needs PER_MS >= 1");
        assert!(
            KEY <= limit_key::USER_OR_IP,
            "KEY must be one of limit_key::*"
        );
        LimitSpec {
            id: ID,
            hits: HITS,
            per: Duration::from_millis(PER_MS),
            ban_for: millis_or_none(BAN_MS),
            user_ban_for: millis_or_none(USER_BAN_MS),
        }
    };
}

/// `ms` milliseconds; `None` for 0, which the macro writes for "not set".
const fn millis_or_none(ms: u64) -> Option<Duration> {
    if ms == 0 {
        None
    } else {
        Some(Duration::from_millis(ms))
    }
}

impl<
        const HITS: u32,
        const PER_MS: u64,
        const BAN_MS: u64,
        const KEY: u8,
        const ID: u64,
        const USER_BAN_MS: u64,
    > FromRequest for HandlerLimit<HITS, PER_MS, BAN_MS, KEY, ID, USER_BAN_MS>
{
    type Error = GuardRejection;
    type Future = GuardFuture<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        GuardFuture::new(req, |req| {
            limit_judge(req, &Self::SPEC, KEY).map(|()| HandlerLimit)
        })
    }
}

fn limit_judge(req: &HttpRequest, spec: &LimitSpec, key: u8) -> Result<(), GuardRejection> {
    judge(req, None, |verdict, judge| {
        if verdict.has(Flag::Allowlisted) {
            return None;
        }
        let subject = match (key, verdict.user()) {
            (limit_key::USER | limit_key::USER_OR_IP, Some(user)) => Subject::User(user),
            (limit_key::USER, None) => return None,
            _ => Subject::Client(verdict.key()),
        };
        match judge.count(spec, subject) {
            LimitOutcome::Allowed { .. } => None,
            LimitOutcome::Limited { retry_after } => {
                Some(Refusal::new(BlockReason::RateLimited, Some(retry_after)))
            }
            LimitOutcome::BanStarted { ban, .. } => Some(Refusal {
                ban: Some(ban),
                user_ban: spec.user_ban_for,
                ..Refusal::new(BlockReason::Banned, Some(ban))
            }),
            LimitOutcome::Banned { remaining } => {
                Some(Refusal::new(BlockReason::Banned, Some(remaining)))
            }
        }
    })
}
