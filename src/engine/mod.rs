//! The decision, in one direction: resolve the client → rules → limits → signals → score →
//! policy (admin) → respond.
//!
//! Every stage reads the configuration built once by [`config`](crate::config) and the
//! lock-free snapshots of the components; none waits on a store. The one stage that may wait
//! is a signal that says so ([`Applied::Wait`]): the decision is then suspended
//! ([`Step::Wait`]) and resumed at the next signal once the wait ends.
//!
//! The files of this folder: `mod.rs` (the stages up to the verdict), `respond.rs` (events, the
//! refusal or the pass, rate-limit headers), `judge.rs` (what route guards ask of the engine), `probe.rs` (a verdict without counting, for
//! the dashboard).

mod auto_rules;
mod judge;
#[cfg(feature = "dashboard")]
mod probe;
mod respond;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServiceRequest;
use actix_web::http::header::HeaderValue;

use crate::admin::AdminPolicy;
use crate::client_ip::ClientIpResolver;
use crate::clock::Clock;
use crate::events::Events;
use crate::limiter::{LimitOutcome, Limits};
use crate::path_match::Fail;
use crate::response::Responses;
use crate::rules::{RuleSource, Rules};
use crate::signals::{Applied, Finish, Pending, Signal};
use crate::verdict::{rate_usage_points, BlockReason, Flag, IpVerdict, Reason, Refusal};

pub(crate) use self::auto_rules::AutoRules;
#[cfg(feature = "dashboard")]
pub(crate) use self::probe::Probe;
pub(crate) use self::respond::{rate_limit_policy, Answer, RATELIMIT, RATELIMIT_POLICY};

/// Whether the bouncer blocks, or only reports what it would block.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Default,
    strum::IntoStaticStr,
    strum::Display,
    strum::VariantArray,
    strum::VariantNames,
)]
#[strum(serialize_all = "lowercase")]
#[non_exhaustive]
pub enum Mode {
    /// Block what the policy refuses (the default).
    #[default]
    Enforce,
    /// Shadow mode: block nothing, attach verdicts and log "would block" events.
    Monitor,
}

impl Mode {
    /// `"enforce"` or `"monitor"`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Names the user behind a request.
pub(crate) type UserHook = Arc<dyn Fn(&ServiceRequest) -> Option<String> + Send + Sync>;

/// Everything the decision needs, built and validated once by the config, shared by every
/// worker.
pub(crate) struct Engine {
    pub(crate) mode: Mode,
    pub(crate) block_threshold: u8,
    /// Score at which a `high_risk` event goes out.
    pub(crate) high_risk: u8,
    pub(crate) resolver: ClientIpResolver,
    pub(crate) user: Option<UserHook>,
    pub(crate) rules: Rules,
    /// Bans recorded as automatic rules; `None`: off.
    pub(crate) auto_rules: Option<AutoRules>,
    pub(crate) limits: Limits,
    /// The range feeds (also inside their signals), for the dashboard's health panel.
    #[cfg(feature = "dashboard")]
    pub(crate) feeds: Option<crate::feeds::Feeds>,
    /// The built-in signals first, then the app's.
    pub(crate) signals: Box<[Box<dyn Signal>]>,
    pub(crate) admin: Option<AdminPolicy>,
    pub(crate) events: Events,
    pub(crate) responses: Responses,
    /// The `RateLimit-Policy` value, when the IETF rate-limit headers are on.
    pub(crate) rate_limit_policy: Option<HeaderValue>,
    pub(crate) clock: Arc<dyn Clock>,
    /// The request counters, and what the scrape reads.
    #[cfg(feature = "metrics")]
    pub(crate) metrics: crate::metrics::EngineMetrics,
    /// The reputation signal, for its counters.
    #[cfg(feature = "reputation")]
    pub(crate) reputation: Option<crate::signals::ReputationSignal>,
    /// The admin API's bearer tokens; none keeps the API disabled.
    #[cfg(feature = "admin-api")]
    pub(crate) admin_tokens: Box<[AdminToken]>,
    /// Whether `admin_scope` warned that the API is disabled: once per bouncer, not once per
    /// worker.
    #[cfg(feature = "admin-api")]
    pub(crate) admin_warned: std::sync::atomic::AtomicBool,
}

/// A bearer token of the admin API: a name for logs and change events, and the SHA-256 digest
/// of its secret. Only the digest is kept, so the secret never shows in a dump.
#[cfg(feature = "admin-api")]
#[derive(Clone)]
pub(crate) struct AdminToken {
    pub(crate) name: Arc<str>,
    pub(crate) digest: [u8; 32],
}

#[cfg(feature = "admin-api")]
impl AdminToken {
    pub(crate) fn new(name: &str, secret: &[u8]) -> Self {
        AdminToken {
            name: name.into(),
            digest: admin_digest(secret),
        }
    }
}

/// The SHA-256 digest of an admin API secret. Both sides of a token check are hashed, so the
/// comparison runs over 32 bytes whatever the secrets' lengths.
#[cfg(feature = "admin-api")]
pub(crate) fn admin_digest(secret: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(secret).into()
}

/// Where a request's decision stands.
pub(crate) struct Outcome {
    pub(crate) verdict: IpVerdict,
    /// Why the request is (or in monitor mode would be) refused, and until when.
    pub(crate) refusal: Option<Refusal>,
    /// The request is on an admin path.
    pub(crate) admin: bool,
}

impl Outcome {
    /// Still to be judged by the signals: neither refused nor allowlisted.
    fn open(&self) -> bool {
        self.refusal.is_none() && !self.verdict.has(Flag::Allowlisted)
    }

    fn refuse(&mut self, reason: BlockReason, retry_after: Option<Duration>) {
        self.refusal = Some(Refusal::new(reason, retry_after));
    }
}

/// The decision after a stage that may wait.
pub(crate) enum Step {
    /// Decided.
    Done(Outcome),
    /// A signal waits; resume with what its wait gives.
    Wait(Suspended),
}

/// A decision held by a waiting signal.
pub(crate) struct Suspended {
    outcome: Outcome,
    pub(crate) pending: Pending,
    /// The signal after the one that waits.
    next: usize,
}

impl Engine {
    /// Whether refusals are enforced (not monitor mode).
    pub(crate) fn enforces(&self) -> bool {
        self.mode == Mode::Enforce
    }

    /// Judges a request: every stage up to the verdict, unless a signal must wait.
    pub(crate) fn decide(self: &Arc<Self>, req: &ServiceRequest) -> Step {
        let mut outcome = self.resolve(req);
        self.apply_rules(&mut outcome);
        if outcome.open() {
            self.count(&mut outcome);
        }
        self.run_signals(req, outcome, 0)
    }

    /// Goes on with a decision once its waiting signal's wait ended.
    pub(crate) fn resume(
        &self,
        req: &ServiceRequest,
        suspended: Suspended,
        finish: Finish,
    ) -> Step {
        let Suspended {
            mut outcome, next, ..
        } = suspended;
        finish(&mut outcome.verdict);
        self.run_signals(req, outcome, next)
    }

    /// Stage 1: who the client is, and a fresh verdict. The verdict is built once, here, and
    /// changed in place from now on: it is 200-odd bytes, and every move is a memcpy.
    fn resolve(self: &Arc<Self>, req: &ServiceRequest) -> Outcome {
        let client = self
            .resolver
            .resolve(req.peer_addr().map(|a| a.ip()), req.headers());
        let user = self.user.as_ref().and_then(|hook| hook(req));
        let judge: Arc<dyn crate::verdict::Judge> = Arc::clone(self) as _;
        Outcome {
            verdict: IpVerdict::new(&client, user, self.enforces(), judge),
            refusal: None,
            admin: false,
        }
    }

    /// Stage 2: allow and block rules. An unknown client's address is unknown, so only its
    /// user's rules can match: it never inherits a rule of the proxy in front of it.
    fn apply_rules(&self, outcome: &mut Outcome) {
        let verdict = &mut outcome.verdict;
        let ip: Option<IpAddr> = verdict.client_known().then(|| verdict.ip());
        let matched = self.rules.matches(ip, verdict.user());
        if let Some(rule) = matched.allow {
            // Allow wins over everything: no counting, no ban, no block.
            verdict.flag(Flag::Allowlisted);
            verdict.add(Reason::Allowlisted { rule });
        } else if let Some(rule) = matched.block {
            let remaining = matched
                .block_expires
                .and_then(|at| at.duration_since(self.clock.wall()).ok());
            if matched.block_source == Some(RuleSource::Auto) {
                // A ban recorded by this or another instance: answered as the ban it is.
                verdict.flag(Flag::Banned);
                verdict.add(Reason::BannedByRule { rule, remaining });
                outcome.refuse(BlockReason::Banned, remaining);
            } else {
                verdict.flag(Flag::Blacklisted);
                verdict.add(Reason::Blacklisted { rule });
                outcome.refuse(BlockReason::Blacklisted, remaining);
            }
        }
    }

    /// Stage 3: the global limit, and bans.
    fn count(&self, outcome: &mut Outcome) {
        let verdict = &mut outcome.verdict;
        let burst = self.limits.policy().burst().get();
        match self.limits.hit(verdict.key()) {
            LimitOutcome::Allowed { hits } => {
                verdict.set_hits(hits);
                if rate_usage_points(hits, burst) > 0 {
                    verdict.add(Reason::RateUsage { hits, burst });
                }
            }
            LimitOutcome::Limited { retry_after } => {
                verdict.set_hits(burst);
                verdict.flag(Flag::RateLimited);
                verdict.add(Reason::RateLimited { retry_after });
                outcome.refuse(BlockReason::RateLimited, Some(retry_after));
            }
            LimitOutcome::BanStarted { ban, offence } => {
                verdict.set_hits(burst);
                verdict.flag(Flag::RateLimited);
                verdict.flag(Flag::Banned);
                verdict.add(Reason::Banned {
                    remaining: ban,
                    offence: Some(offence),
                });
                outcome.refusal = Some(Refusal {
                    ban: Some(ban),
                    ..Refusal::new(BlockReason::Banned, Some(ban))
                });
            }
            LimitOutcome::Banned { remaining } => {
                verdict.flag(Flag::Banned);
                verdict.add(Reason::Banned {
                    remaining,
                    offence: None,
                });
                outcome.refuse(BlockReason::Banned, Some(remaining));
            }
        }
    }

    /// Stage 4 (from signal `from` on), then the rest: the score and the policy.
    fn run_signals(&self, req: &ServiceRequest, mut outcome: Outcome, from: usize) -> Step {
        if outcome.open() {
            for (i, signal) in self.signals.iter().enumerate().skip(from) {
                if let Applied::Wait(pending) = signal.apply(req, &mut outcome.verdict) {
                    return Step::Wait(Suspended {
                        outcome,
                        pending,
                        next: i + 1,
                    });
                }
            }
            self.score(&mut outcome);
        }
        self.apply_admin(req, &mut outcome);
        if let Some(refusal) = &outcome.refusal {
            outcome.verdict.block(refusal.reason);
        }
        Step::Done(outcome)
    }

    /// Stage 5: the block threshold.
    fn score(&self, outcome: &mut Outcome) {
        if outcome.verdict.score() >= self.block_threshold {
            outcome.refuse(BlockReason::Risk, None);
        }
    }

    /// Stage 6: the admin policy, for requests on admin paths not refused already.
    fn apply_admin(&self, req: &ServiceRequest, outcome: &mut Outcome) {
        let Some(policy) = self.admin.as_ref().filter(|a| a.covers(req.path())) else {
            return;
        };
        outcome.admin = true;
        if outcome.refusal.is_none()
            && policy.counters_fail == Fail::Closed
            && self.limits.degraded()
        {
            // The limits cannot be checked across instances: as a store that fails closed.
            let retry_after = Duration::from_secs(1);
            outcome.verdict.flag(Flag::RateLimited);
            outcome.verdict.add(Reason::RateLimited { retry_after });
            outcome.refuse(BlockReason::RateLimited, Some(retry_after));
        }
        if outcome.refusal.is_none() {
            if let Some(reason) = policy.refuses(&outcome.verdict) {
                outcome.refuse(reason, None);
            }
        }
    }
}
