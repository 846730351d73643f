//! The IP-reputation signal (feature `reputation`): the API's score and kinds from its cache,
//! and a first-class wait on critical paths.
//!
//! Every path reads the reputation cache and never waits: on a miss the lookup runs in the
//! background and the request is flagged `reputation_unknown`. A path in a critical group
//! waits for the answer instead (at most the API's timeout), then, without one, goes on flagged
//! `reputation_unknown` (`fail = "open"`) or is refused (`fail = "closed"`: 100 points). Paths
//! are matched as the router dispatches them (see [`path_match`](crate::path_match)): `/%6Cogin`
//! is `/login`, and `/loginfoo` is not. A path that cannot be decoded counts as critical, under
//! the strictest group's policy.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServiceRequest;

use super::{Applied, Pending, Signal, Weights};
use crate::feeds::FeedKind;
use crate::path_match::{Fail, PathMatch, PathPrefixes};
use crate::reputation::{IpReport, Reputation};
use crate::rules::{NewRule, RuleTarget, Rules};
use crate::verdict::{Flag, IpVerdict, Reason};

/// How the reputation signal is set up.
pub(crate) struct ReputationSignalConfig {
    pub(crate) client: Reputation,
    /// Critical path groups, each with its failure policy; the first group that covers a path
    /// applies.
    pub(crate) groups: Vec<(PathPrefixes, Fail)>,
    /// A score at or above this adds a timed block rule for the address, for `ban_for`.
    pub(crate) ban: Option<(u8, Duration)>,
    pub(crate) rules: Rules,
    pub(crate) weights: Weights,
}

/// The signal; cheap to clone into a wait.
#[derive(Clone)]
pub(crate) struct ReputationSignal(Arc<ReputationSignalConfig>);

impl ReputationSignal {
    pub(crate) fn new(config: ReputationSignalConfig) -> Self {
        ReputationSignal(Arc::new(config))
    }

    /// The API client, for its counters.
    pub(crate) fn client(&self) -> &Reputation {
        &self.0.client
    }

    /// The failure policy of the critical group `path` belongs to, if any.
    fn group_of(&self, path: &str) -> Option<Fail> {
        let groups = &self.0.groups;
        let mut undecodable = false;
        for (prefixes, fail) in groups {
            match prefixes.check(path) {
                PathMatch::Under => return Some(*fail),
                PathMatch::Undecodable => undecodable = true,
                PathMatch::Outside => {}
            }
        }
        // What the router would make of it is anyone's guess: the strictest policy.
        undecodable.then(|| {
            if groups.iter().any(|(_, fail)| *fail == Fail::Closed) {
                Fail::Closed
            } else {
                Fail::Open
            }
        })
    }

    /// No report: flagged; refused on a critical path that fails closed.
    fn unknown(&self, verdict: &mut IpVerdict, failed: Option<Fail>) {
        verdict.flag(Flag::ReputationUnknown);
        if failed == Some(Fail::Closed) {
            verdict.add(Reason::ReputationUnavailable);
        } else {
            verdict.add(Reason::ReputationUnknown {
                points: self.0.weights.reputation_unknown,
            });
        }
    }

    /// Adds a report's points, flags and provider; bans extreme scores.
    fn report(&self, verdict: &mut IpVerdict, report: &IpReport) {
        let w = &self.0.weights;
        if let Some(score) = report.risk_score {
            let points = (u16::from(score) * u16::from(w.reputation) / 100).min(100) as u8;
            verdict.add(Reason::Reputation { score, points });
            if let Some((ban_at, ban_for)) = self.0.ban {
                if score >= ban_at {
                    self.ban(verdict.ip(), score, ban_for);
                }
            }
        }
        for (is, kind) in [
            (report.is_tor, FeedKind::Tor),
            (report.is_vpn, FeedKind::Vpn),
            (report.is_proxy, FeedKind::Proxy),
            (report.is_datacenter, FeedKind::Hosting),
        ] {
            let flag = Flag::from(kind);
            // A kind the feeds already reported is not counted twice.
            if is && !verdict.has(flag) {
                verdict.flag(flag);
                verdict.add(Reason::ReputationKind {
                    kind,
                    points: w.of_kind(kind),
                });
            }
        }
        if verdict.provider().is_none() {
            // The report's names are shared `Arc<str>`s: no allocation per request.
            if let Some(provider) = report.isp.as_ref().or(report.asn.as_ref()) {
                verdict.set_provider(provider.clone());
            }
        }
    }

    /// The article's `blocked:{ip}` entry: a timed block rule, added off the request path and
    /// once however many requests race to add it.
    fn ban(&self, ip: IpAddr, score: u8, ban_for: Duration) {
        self.0.rules.add_automatic(
            NewRule::block(RuleTarget::ip(ip))
                .expires_after(ban_for)
                .comment(format!("automatic: reputation score {score}")),
        );
    }
}

impl Signal for ReputationSignal {
    fn apply(&self, req: &ServiceRequest, verdict: &mut IpVerdict) -> Applied {
        let group = || self.group_of(req.path());
        if !verdict.client_known() {
            // No address to ask about: as if the wait had failed.
            self.unknown(verdict, group());
            return Applied::Done;
        }
        let ip = verdict.ip();
        if let Some(report) = self.0.client.peek(ip) {
            self.report(verdict, &report);
            return Applied::Done;
        }
        let Some(fail) = group() else {
            self.unknown(verdict, None);
            return Applied::Done;
        };
        let this = self.clone();
        Applied::Wait(Pending::new(async move {
            let looked_up = this.0.client.lookup(ip).await;
            move |verdict: &mut IpVerdict| match looked_up {
                Ok(report) => this.report(verdict, &report),
                Err(_) => this.unknown(verdict, Some(fail)),
            }
        }))
    }
}
