//! The range-feed signal: hosting, CDN, VPN, Tor, proxy and crawler ranges.

use actix_web::dev::ServiceRequest;

use super::{Applied, Signal, Weights};
use crate::feeds::{FeedKind, Feeds};
use crate::verdict::{Flag, IpVerdict, Reason};

/// Flags and scores the kinds of every range around the client's address, and names the
/// range's operator as the verdict's provider. Runs after the User-Agent signal: a crawler
/// confirmed in its own ranges is not punished for being there.
pub(crate) struct RangeSignal {
    pub(crate) weights: Weights,
    pub(crate) feeds: Feeds,
}

impl Signal for RangeSignal {
    fn apply(&self, _: &ServiceRequest, verdict: &mut IpVerdict) -> Applied {
        // An unknown client has no address to look up.
        if !verdict.client_known() {
            return Applied::Done;
        }
        let hit = self.feeds.lookup(verdict.ip());
        let confirmed_crawler = verdict.has(Flag::DeclaredCrawler);
        for kind in hit.kinds.iter() {
            if kind == FeedKind::Bot && confirmed_crawler {
                continue;
            }
            verdict.flag(Flag::from(kind));
            verdict.add(Reason::Range {
                kind,
                provider: hit.provider.clone(),
                points: self.weights.of_kind(kind),
            });
        }
        if let Some(provider) = hit.provider {
            verdict.set_provider(provider);
        }
        Applied::Done
    }
}
