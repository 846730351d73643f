//! The User-Agent signal: a missing header, automation clients, and crawler claims checked
//! against the crawler's published ranges.

use actix_web::dev::ServiceRequest;
use actix_web::http::header;

use super::{Applied, Signal, Weights};
use crate::feeds::{FeedKind, Feeds};
use crate::user_agent::{UaClass, UaMatcher};
use crate::verdict::{CrawlerCheck, Flag, IpVerdict, Reason};

/// Classifies the User-Agent; a crawler claim is judged against the `bot` ranges the feeds
/// publish under the crawler's name.
pub(crate) struct UserAgentSignal {
    pub(crate) weights: Weights,
    /// `None` when no feed is configured: crawler claims cannot be checked.
    pub(crate) feeds: Option<Feeds>,
    pub(crate) matcher: UaMatcher,
}

impl Signal for UserAgentSignal {
    fn apply(&self, req: &ServiceRequest, verdict: &mut IpVerdict) -> Applied {
        let w = &self.weights;
        let ua = self
            .matcher
            .classify(req.headers().get(header::USER_AGENT).map(|v| v.as_bytes()));
        match ua {
            UaClass::Missing => {
                verdict.flag(Flag::Bot);
                verdict.add(Reason::MissingUserAgent {
                    points: w.missing_user_agent,
                });
            }
            UaClass::Automation { tool } => {
                verdict.flag(Flag::Bot);
                verdict.add(Reason::AutomationClient {
                    tool,
                    points: w.automation_user_agent,
                });
            }
            UaClass::Crawler { crawler } => {
                // An unknown client's address can neither confirm nor refute a claim.
                let feeds = self.feeds.as_ref().filter(|_| verdict.client_known());
                let hit = feeds
                    .map(|feeds| feeds.lookup(verdict.ip()))
                    .unwrap_or_default();
                let (flag, check, points) = if hit.kinds.contains(FeedKind::Bot)
                    && hit.provider.as_deref() == Some(crawler)
                {
                    (
                        Flag::DeclaredCrawler,
                        CrawlerCheck::Declared,
                        w.declared_crawler,
                    )
                } else if feeds.is_some_and(|feeds| feeds.has_provider(FeedKind::Bot, crawler)) {
                    (Flag::FakeCrawler, CrawlerCheck::Fake, w.fake_crawler)
                } else {
                    (Flag::Bot, CrawlerCheck::Unverified, w.unverified_crawler)
                };
                verdict.flag(flag);
                verdict.add(Reason::Crawler {
                    crawler,
                    verdict: check,
                    points,
                });
            }
            _ => {}
        }
        Applied::Done
    }
}
