//! What route guards ask of the bouncer that judged a request.
//!
//! A guard runs inside the handler's extraction, long after the middleware: it finds the
//! verdict in the request's extensions and, through it, the bouncer. The bouncer is seen only
//! through this narrow trait, defined here, so that the verdict (and the guards reading it)
//! depend on nothing above them; the engine implements it.

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse};

use super::{BlockReason, IpVerdict};
use crate::limiter::{LimitOutcome, LimitSpec, Subject};

/// Why a request is refused, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) reason: BlockReason,
    /// When the refusal ends, if it does (`Retry-After`).
    pub(crate) retry_after: Option<Duration>,
    /// A ban that started with this request.
    pub(crate) ban: Option<Duration>,
    /// How long a signed-in user's automatic rule for that ban lasts, when the limit says
    /// (`user_ban_for`); otherwise the bouncer's setting, or the ban's length.
    pub(crate) user_ban: Option<Duration>,
}

impl Refusal {
    pub(crate) fn new(reason: BlockReason, retry_after: Option<Duration>) -> Self {
        Refusal {
            reason,
            retry_after,
            ban: None,
            user_ban: None,
        }
    }
}

/// The bouncer, as route guards see it.
pub(crate) trait Judge: Send + Sync + 'static {
    /// Counts a hit of `subject` against the handler limit `limit`.
    fn count(&self, limit: &LimitSpec, subject: Subject<'_>) -> LimitOutcome;

    /// Logs a guard's refusal: blocked, banned, or (in monitor mode) would-block.
    fn report(&self, req: &HttpRequest, verdict: &IpVerdict, refusal: &Refusal);

    /// The answer to a guard's refusal, with the guard's own `detail` text if it has one: the
    /// app's responder, or problem+json.
    fn respond(
        &self,
        req: &HttpRequest,
        verdict: &IpVerdict,
        refusal: &Refusal,
        detail: Option<&str>,
    ) -> HttpResponse;
}
