//! The weight of each built-in signal.
//!
//! Every point comes with a [`Reason`](crate::Reason). Weights are set in `[scoring]` (or
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
//! | `reputation_unknown` | 0 | the reputation API has no answer (yet); the flag is set either way (a critical path that fails closed adds 100 instead) |
//! | `high_risk` | 80 | score at which a `high_risk` event is emitted |
//!
//! The score is the sum, capped at 100.

use crate::feeds::FeedKind;

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
