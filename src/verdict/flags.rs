//! The categories a request falls into.

use crate::bitset::{BitSet, Member, UnknownName};
use crate::feeds::FeedKind;

/// A category the request falls into. Parses from and prints as its snake_case name
/// (`"tor"`, `"declared_crawler"`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    strum::IntoStaticStr,
    strum::Display,
    strum::VariantArray,
    strum::VariantNames,
)]
#[strum(serialize_all = "snake_case")]
#[non_exhaustive]
#[repr(u8)]
pub enum Flag {
    /// An allow rule matched.
    Allowlisted = 0,
    /// A block rule matched.
    Blacklisted = 1,
    /// The client went over its rate limit.
    RateLimited = 2,
    /// The client is banned.
    Banned = 3,
    /// The address belongs to a hosting provider or data centre.
    Hosting = 4,
    /// The address belongs to a CDN.
    Cdn = 5,
    /// The address belongs to a VPN provider.
    Vpn = 6,
    /// The address is a Tor exit.
    Tor = 7,
    /// The address is an open or anonymising proxy.
    Proxy = 8,
    /// The client is automated.
    Bot = 9,
    /// A crawler whose claim matches its published ranges.
    DeclaredCrawler = 10,
    /// A crawler claim from outside the crawler's published ranges.
    FakeCrawler = 11,
    /// The IP-reputation API had no answer for this address (yet): not known to be clean.
    ReputationUnknown = 12,
}

impl Flag {
    /// The flag's name, as serialized: `"allowlisted"`, `"tor"`, `"declared_crawler"`…
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The flag's bit in a [`Flags`] mask, for const contexts such as
    /// [`DenyFlags`](crate::guard::DenyFlags)`<{ Flag::Tor.bit() | Flag::Vpn.bit() }>`.
    pub const fn bit(self) -> u32 {
        1 << self as u8
    }
}

impl Member for Flag {
    const ALL: &'static [Flag] = <Flag as strum::VariantArray>::VARIANTS;
    const NAMES: &'static [&'static str] = <Flag as strum::VariantNames>::VARIANTS;

    #[inline]
    fn bit(self) -> u32 {
        Flag::bit(self)
    }
}

/// Parses a flag's name, e.g. `"tor"` or `"declared_crawler"`.
impl std::str::FromStr for Flag {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Flag::from_name(s)
    }
}

/// The flag a range kind sets.
impl From<FeedKind> for Flag {
    fn from(kind: FeedKind) -> Flag {
        match kind {
            FeedKind::Hosting => Flag::Hosting,
            FeedKind::Cdn => Flag::Cdn,
            FeedKind::Vpn => Flag::Vpn,
            FeedKind::Tor => Flag::Tor,
            FeedKind::Proxy => Flag::Proxy,
            FeedKind::Bot => Flag::Bot,
        }
    }
}

/// A set of [`Flag`]s. Serializes as an array of names, e.g. `["banned"]`.
pub type Flags = BitSet<Flag>;
