//! The engine as route guards see it (see [`Judge`]).

use actix_web::{HttpRequest, HttpResponse};

use super::Engine;
use crate::events::EventKind;
use crate::limiter::{LimitOutcome, LimitSpec, Subject};
use crate::verdict::{IpVerdict, Judge, Refusal};

impl Judge for Engine {
    fn count(&self, limit: &LimitSpec, subject: Subject<'_>) -> LimitOutcome {
        self.limits.hit_handler(limit, subject)
    }

    fn report(&self, req: &HttpRequest, verdict: &IpVerdict, refusal: &Refusal) {
        let kind = match (self.enforces(), refusal.ban.is_some()) {
            (false, _) => EventKind::WouldBlock,
            (true, true) => EventKind::Banned,
            (true, false) => EventKind::Blocked,
        };
        if kind == EventKind::Banned {
            self.record_ban(req.head(), verdict, refusal);
        }
        #[cfg(feature = "metrics")]
        {
            self.metrics.requests.guard_refusal(refusal.reason);
            if refusal.ban.is_some() {
                self.metrics.requests.ban_started(true);
            }
        }
        self.events.request(
            req.head(),
            verdict,
            kind,
            Some(refusal.reason),
            refusal.retry_after,
            refusal.ban,
        );
    }

    fn respond(
        &self,
        req: &HttpRequest,
        verdict: &IpVerdict,
        refusal: &Refusal,
        detail: Option<&str>,
    ) -> HttpResponse {
        self.responses.refuse(req, verdict, refusal, detail)
    }
}
