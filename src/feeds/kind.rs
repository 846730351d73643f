//! What a feed says an address is ([`FeedKind`], [`FeedKinds`]) and how its file is written
//! ([`FeedFormat`]), with their names as written in configs and `tsv` lines.

use std::str::FromStr;

use crate::bitset::{parse_name, BitSet, Member, UnknownName};

/// What a feed says an address is. Parses from and prints as its lowercase name.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    strum::IntoStaticStr,
    strum::Display,
    strum::VariantArray,
    strum::VariantNames,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
#[non_exhaustive]
#[repr(u8)]
pub enum FeedKind {
    /// A hosting or cloud provider's range (servers rather than people).
    Hosting,
    /// A content delivery network's range.
    Cdn,
    /// A VPN provider's exit range.
    Vpn,
    /// A Tor exit node.
    Tor,
    /// An open or commercial proxy.
    Proxy,
    /// A crawler's published range (e.g. Googlebot's).
    Bot,
}

impl FeedKind {
    /// Every kind, in declaration order.
    pub const ALL: &'static [FeedKind] = <FeedKind as strum::VariantArray>::VARIANTS;

    /// The kind's lowercase name, as written in feed configs and `tsv` files.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl Member for FeedKind {
    const ALL: &'static [FeedKind] = FeedKind::ALL;
    const NAMES: &'static [&'static str] = <FeedKind as strum::VariantNames>::VARIANTS;

    #[inline]
    fn bit(self) -> u32 {
        1 << self as u8
    }
}

/// Parses a kind's lowercase name, e.g. `"tor"`.
impl FromStr for FeedKind {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FeedKind::from_name(s)
    }
}

/// A set of [`FeedKind`]s: one address can be in several feeds (a Tor exit inside a hosting
/// range).
pub type FeedKinds = BitSet<FeedKind>;

/// The line format of a feed file (see the [module docs](super)).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    strum::IntoStaticStr,
    strum::Display,
    strum::VariantArray,
    strum::VariantNames,
)]
#[strum(serialize_all = "lowercase")]
#[non_exhaustive]
pub enum FeedFormat {
    /// One CIDR network or address per line, `#` comments (FireHOL `.netset`).
    Netset,
    /// `cidr ; SBLnnn` lines, `;` comments (Spamhaus DROP).
    Drop,
    /// `cidr<TAB>kind<TAB>provider` lines, `#` comments.
    Tsv,
}

impl FeedFormat {
    /// The format's name, as written in feed configs.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Parses `"netset"`, `"drop"` or `"tsv"`.
impl FromStr for FeedFormat {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_name(s)
    }
}
