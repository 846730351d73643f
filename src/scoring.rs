//! Risk scoring: the weight of each signal, and the built-in signal that reads the offline
//! range feeds and the User-Agent.
//!
//! Every point comes with a [`Reason`]. Weights are set in `[scoring]` (or
//! [`BouncerBuilder::scoring`](crate::BouncerBuilder::scoring)); the defaults:
//!
//! | key | default | when |
//! |---|---|---|
//! | `hosting` | 20 | the address is in a hosting / data-centre range |
//! | `cdn` | 10 | in a CDN range |
//! | `vpn` | 30 | in a VPN provider's range |
//! | `tor` | 60 | a Tor exit |
//! | `proxy` | 40 | an open or anonymising proxy |
//! | `bot` | 20 | in a crawler's range, without claiming to be that crawler |
//! | `missing_user_agent` | 15 | no User-Agent header |
//! | `automation_user_agent` | 25 | curl, wget, python-requests, Go-http-client, headless browsers… |
//! | `declared_crawler` | 0 | a crawler claim that matches its published ranges |
//! | `unverified_crawler` | 10 | a crawler claim whose ranges are not loaded, so it cannot be checked |
//! | `fake_crawler` | 70 | a crawler claim from outside its published ranges |
//! | `reputation` | 100 | percent of the reputation API's `risk_score` added as points |
//! | `reputation_unknown` | 0 | the reputation API has no answer (yet); the flag is set either way |
//! | `high_risk` | 80 | score at which a `high_risk` event is emitted |
//!
//! The score is the sum, capped at 100.

use actix_web::dev::ServiceRequest;
use actix_web::http::header;

use crate::feeds::{FeedKind, Feeds};
use crate::signals::Signal;
use crate::user_agent::{UaClass, UaMatcher};
use crate::verdict::{Flag, IpVerdict, Reason};

/// The points each signal adds. Build with [`Weights::default`] and change fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Weights {
    /// A hosting or data-centre range.
    pub hosting: u8,
    /// A CDN range.
    pub cdn: u8,
    /// A VPN provider's range.
    pub vpn: u8,
    /// A Tor exit.
    pub tor: u8,
    /// A proxy.
    pub proxy: u8,
    /// A crawler's range, without a matching crawler claim.
    pub bot: u8,
    /// No User-Agent.
    pub missing_user_agent: u8,
    /// An automation client's User-Agent.
    pub automation_user_agent: u8,
    /// A crawler claim confirmed by its ranges.
    pub declared_crawler: u8,
    /// A crawler claim that cannot be checked.
    pub unverified_crawler: u8,
    /// A crawler claim refuted by its ranges.
    pub fake_crawler: u8,
    /// Percent of the reputation API's `risk_score` added as points.
    pub reputation: u8,
    /// No answer from the reputation API.
    pub reputation_unknown: u8,
    /// Score at which a `high_risk` event is emitted.
    pub high_risk: u8,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            hosting: 20,
            cdn: 10,
            vpn: 30,
            tor: 60,
            proxy: 40,
            bot: 20,
            missing_user_agent: 15,
            automation_user_agent: 25,
            declared_crawler: 0,
            unverified_crawler: 10,
            fake_crawler: 70,
            reputation: 100,
            reputation_unknown: 0,
            high_risk: 80,
        }
    }
}

impl Weights {
    /// The weight of a range kind.
    pub fn of_kind(&self, kind: FeedKind) -> u8 {
        match kind {
            FeedKind::Hosting => self.hosting,
            FeedKind::Cdn => self.cdn,
            FeedKind::Vpn => self.vpn,
            FeedKind::Tor => self.tor,
            FeedKind::Proxy => self.proxy,
            FeedKind::Bot => self.bot,
        }
    }
}

/// The flag a range kind sets.
pub(crate) fn flag_of(kind: FeedKind) -> Flag {
    match kind {
        FeedKind::Hosting => Flag::Hosting,
        FeedKind::Cdn => Flag::Cdn,
        FeedKind::Vpn => Flag::Vpn,
        FeedKind::Tor => Flag::Tor,
        FeedKind::Proxy => Flag::Proxy,
        FeedKind::Bot => Flag::Bot,
    }
}

/// The built-in signal: range feeds and the User-Agent, with crawler claims checked against
/// the crawler's published ranges.
pub(crate) struct RiskSignal {
    pub(crate) weights: Weights,
    /// `None` when no feed is configured: then nothing is looked up.
    pub(crate) feeds: Option<Feeds>,
    pub(crate) user_agents: UaMatcher,
}

impl Signal for RiskSignal {
    fn apply(&self, req: &ServiceRequest, verdict: &mut IpVerdict) {
        let w = &self.weights;
        let hit = self
            .feeds
            .as_ref()
            .map(|feeds| feeds.lookup(verdict.ip()))
            .unwrap_or_default();
        let ua = self
            .user_agents
            .classify(req.headers().get(header::USER_AGENT).map(|v| v.as_bytes()));

        // A crawler claim is judged against the `bot` ranges published under its name.
        let mut crawler_confirmed = false;
        if let UaClass::Crawler { crawler } = ua {
            let in_its_ranges =
                hit.kinds.contains(FeedKind::Bot) && hit.provider.as_deref() == Some(crawler);
            if in_its_ranges {
                crawler_confirmed = true;
                verdict.flag(Flag::DeclaredCrawler);
                verdict.add(Reason::Crawler {
                    crawler,
                    verdict: CrawlerCheck::Declared,
                    points: w.declared_crawler,
                });
            } else if self
                .feeds
                .as_ref()
                .is_some_and(|feeds| feeds.has_provider(FeedKind::Bot, crawler))
            {
                verdict.flag(Flag::FakeCrawler);
                verdict.add(Reason::Crawler {
                    crawler,
                    verdict: CrawlerCheck::Fake,
                    points: w.fake_crawler,
                });
            } else {
                verdict.flag(Flag::Bot);
                verdict.add(Reason::Crawler {
                    crawler,
                    verdict: CrawlerCheck::Unverified,
                    points: w.unverified_crawler,
                });
            }
        }

        for kind in hit.kinds.iter() {
            // A confirmed crawler in its own ranges is not punished for being there.
            if kind == FeedKind::Bot && crawler_confirmed {
                continue;
            }
            verdict.flag(flag_of(kind));
            verdict.add(Reason::Range {
                kind,
                provider: hit.provider.clone(),
                points: w.of_kind(kind),
            });
        }
        if let Some(provider) = hit.provider {
            verdict.set_provider(provider);
        }

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
            _ => {}
        }
    }
}

/// How a crawler claim fared against the crawler's published ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CrawlerCheck {
    /// The address is in the crawler's ranges.
    Declared,
    /// The crawler's ranges are not loaded, so the claim cannot be checked.
    Unverified,
    /// The address is outside the crawler's ranges.
    Fake,
}
