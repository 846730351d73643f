//! What a request would get now, without counting it: the dashboard's client page asks.

use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServiceRequest;

use super::{Engine, Outcome};
use crate::signals::Applied;
use crate::verdict::{BlockReason, Flag, IpVerdict, Reason, Refusal};

/// The verdict a request would get, and what the probe could not tell.
pub(crate) struct Probe {
    /// As the middleware would attach it, refusal included.
    pub(crate) verdict: IpVerdict,
    /// Why it would be refused (or, in monitor mode, logged as such).
    pub(crate) refusal: Option<Refusal>,
    /// Signals that would have waited (a reputation lookup not cached yet): left out of the
    /// score, which may therefore come out lower than the real request's.
    pub(crate) waiting: usize,
}

impl Engine {
    /// Judges `req` as the middleware would, for `user`, except that nothing is counted: the
    /// limiter stage reads the client's active ban (`ban`, time left) instead of adding a hit,
    /// and a signal that would wait is skipped and counted in [`Probe::waiting`]. Rules,
    /// signals and the score are the real ones, read from the same snapshots.
    pub(crate) fn probe(
        self: &Arc<Self>,
        req: &ServiceRequest,
        user: Option<String>,
        ban: Option<Duration>,
    ) -> Probe {
        let client = self
            .resolver
            .resolve(req.peer_addr().map(|a| a.ip()), req.headers());
        let judge: Arc<dyn crate::verdict::Judge> = Arc::clone(self) as _;
        let mut outcome = Outcome {
            verdict: IpVerdict::new(&client, user, self.enforces(), judge),
            refusal: None,
            admin: false,
        };
        self.apply_rules(&mut outcome);
        if outcome.open() {
            if let Some(remaining) = ban {
                outcome.verdict.flag(Flag::Banned);
                outcome.verdict.add(Reason::Banned {
                    remaining,
                    offence: None,
                });
                outcome.refuse(BlockReason::Banned, Some(remaining));
            }
        }
        let mut waiting = 0;
        if outcome.open() {
            for signal in self.signals.iter() {
                // The wait is dropped: a reputation lookup it started still fills the cache,
                // so the next probe sees its answer.
                if let Applied::Wait(_) = signal.apply(req, &mut outcome.verdict) {
                    waiting += 1;
                }
            }
            self.score(&mut outcome);
        }
        if let Some(refusal) = &outcome.refusal {
            outcome.verdict.block(refusal.reason);
        }
        Probe {
            verdict: outcome.verdict,
            refusal: outcome.refusal,
            waiting,
        }
    }
}
