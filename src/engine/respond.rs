//! The last stage: events, then the refusal or the pass (with the verdict attached), and the
//! IETF rate-limit headers.

use std::time::Duration;

use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::HttpMessage;

use super::{Engine, Outcome};
use crate::clock::ceil_secs;
use crate::events::EventKind;
use crate::limiter::LimitPolicy;
use crate::verdict::{BlockReason, IpVerdict};

pub(crate) const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
pub(crate) const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

/// What the middleware does with a decided request.
pub(crate) enum Answer {
    /// Answer it now, without the app.
    Refuse(ServiceResponse),
    /// Pass it to the app (its verdict attached), adding these headers to the response.
    Pass {
        req: ServiceRequest,
        rate_limit: Option<(HeaderValue, HeaderValue)>,
    },
}

impl Engine {
    /// Logs what happened to a decided request and answers it: refused (in enforce mode) or
    /// passed on. The verdict goes along either way, so outer middleware (an access log) sees
    /// who was refused and why.
    pub(crate) fn respond(&self, req: ServiceRequest, outcome: Outcome) -> Answer {
        let Outcome {
            verdict,
            refusal,
            admin,
        } = outcome;
        let reason = refusal.as_ref().map(|r| r.reason);
        #[cfg(feature = "metrics")]
        self.metrics.requests.request(reason);

        let rate_limit = self.rate_limit_policy.as_ref().map(|policy| {
            let retry = refusal
                .as_ref()
                .filter(|r| matches!(r.reason, BlockReason::RateLimited | BlockReason::Banned))
                .and_then(|r| r.retry_after);
            (policy.clone(), self.rate_limit_value(&verdict, retry))
        });

        if verdict.score() >= self.high_risk && matches!(reason, None | Some(BlockReason::Risk)) {
            let kind = EventKind::HighRisk;
            self.events
                .request(req.head(), &verdict, kind, reason, None, None);
        }

        let Some(refusal) = refusal else {
            if admin {
                let kind = EventKind::AdminAllowed;
                self.events
                    .request(req.head(), &verdict, kind, None, None, None);
            }
            req.extensions_mut().insert(verdict);
            return Answer::Pass { req, rate_limit };
        };

        let kind = match (admin, self.enforces(), refusal.ban.is_some()) {
            (true, ..) => EventKind::AdminRefused,
            (false, false, _) => EventKind::WouldBlock,
            (false, true, true) => EventKind::Banned,
            (false, true, false) => EventKind::Blocked,
        };
        if kind == EventKind::Banned {
            self.record_ban(req.head(), &verdict, &refusal);
        }
        #[cfg(feature = "metrics")]
        if refusal.ban.is_some() {
            self.metrics.requests.ban_started(false);
        }
        self.events.request(
            req.head(),
            &verdict,
            kind,
            Some(refusal.reason),
            refusal.retry_after,
            refusal.ban,
        );
        if !self.enforces() {
            req.extensions_mut().insert(verdict);
            return Answer::Pass { req, rate_limit };
        }

        let (http_req, _payload) = req.into_parts();
        let mut res = self.responses.refuse(&http_req, &verdict, &refusal, None);
        if let Some((policy, value)) = rate_limit {
            res.headers_mut().insert(RATELIMIT_POLICY, policy);
            res.headers_mut().insert(RATELIMIT, value);
        }
        http_req.extensions_mut().insert(verdict);
        Answer::Refuse(ServiceResponse::new(http_req, res))
    }

    /// `RateLimit` header value (IETF draft): remaining cells and seconds until the window
    /// refills.
    fn rate_limit_value(&self, verdict: &IpVerdict, retry_after: Option<Duration>) -> HeaderValue {
        let policy = self.limits.policy();
        let burst = policy.burst().get();
        let remaining = burst.saturating_sub(verdict.hits());
        let reset = match retry_after {
            Some(after) => ceil_secs(after),
            None => ceil_secs(
                policy
                    .per()
                    .mul_f64(f64::from(verdict.hits()) / f64::from(policy.hits().get())),
            ),
        };
        HeaderValue::try_from(format!("\"bouncer\";r={remaining};t={reset}"))
            .unwrap_or_else(|_| HeaderValue::from_static("\"bouncer\""))
    }
}

/// The `RateLimit-Policy` value of the global limit: quota and window in seconds.
pub(crate) fn rate_limit_policy(policy: &LimitPolicy) -> HeaderValue {
    let window = ceil_secs(
        policy
            .per()
            .mul_f64(f64::from(policy.burst().get()) / f64::from(policy.hits().get())),
    );
    HeaderValue::try_from(format!("\"bouncer\";q={};w={window}", policy.burst()))
        .unwrap_or_else(|_| HeaderValue::from_static("\"bouncer\""))
}
