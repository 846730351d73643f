//! Who the client really is: peer address, trusted proxies, forwarding headers, grouping by prefix.
//!
//! The TCP peer is the only address nobody can forge, so it is the starting point. Forwarding
//! headers are read only when that peer is a configured trusted proxy (or, with `"unix"` among
//! the trusted proxies, when the connection is a Unix socket and so has no peer address), and
//! then only from the right: every proxy appends what it saw, so the rightmost hop that is *not*
//! one of our proxies is the client, and anything to its left is whatever the client chose to
//! send.
//!
//! Because that left part is client-controlled, nothing in it may change the answer: every check
//! (bad bytes, syntax, hop length, the hop limit) applies only to the hops the walk actually reads,
//! and the walk reads at most [`MAX_HOPS`] hops of at most [`MAX_HOP_BYTES`] bytes each, however
//! long the header is. Junk or padding prepended by a client cannot change the answer.
//!
//! # When the client cannot be determined
//!
//! A trusted proxy may send a forwarding header the walk cannot use (a hop it reaches is
//! `unknown`, `_hidden`, `fe80::1%eth0`, not an address at all, or more than 32 of our own
//! proxies are chained), a connection may have no peer address, or a trusted Unix-socket proxy may
//! send no header. The client is then **unknown**, and it never inherits the identity of the
//! proxy in front of it: its [`ResolvedClient::ip`] is the unspecified address (`0.0.0.0` or
//! `::`), its [`ClientKey`] is a key of its own per peer (`unknown@10.0.0.1`, `unknown@unix`), so
//! it shares neither counters nor bans with the proxy's own traffic, and the bouncer applies no
//! address rule (allow or block) and no network allowlist to it. [`ResolvedClient::source`] says
//! why, and the verdict carries that as a reason.
//!
//! Resolution never allocates: header lines are walked as byte slices, from the last line back.
//!
//! The files of this folder: `walk.rs` (the right-to-left walk and what every hop shares),
//! `x_forwarded_for.rs` (`X-Forwarded-For` and `X-Real-IP` entries), `forwarded.rs` (RFC 7239
//! `Forwarded` elements).

mod forwarded;
mod walk;
mod x_forwarded_for;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::net::{normalize, normalize_net};
use crate::prefix_table::PrefixTable;

pub use self::walk::{MAX_HOPS, MAX_HOP_BYTES};

// Statics rather than consts: `HeaderName` holds `Bytes`, and a static avoids building a fresh
// value (and clippy's interior-mutability lint) at every lookup.
static FORWARDED: HeaderName = HeaderName::from_static("forwarded");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// A forwarding header the resolver may read. Its config spelling is the header's name in
/// lower case (`"x-forwarded-for"`), parsed ignoring ASCII case.
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
)]
#[strum(serialize_all = "kebab-case")]
#[non_exhaustive]
pub enum IpHeader {
    /// `Forwarded` (RFC 7239), read through its `for` parameter.
    Forwarded,
    /// `X-Forwarded-For`: a comma-separated list of addresses, client first.
    XForwardedFor,
    /// `X-Real-IP`: a single address set by the proxy in front of us.
    #[strum(serialize = "x-real-ip")]
    XRealIp,
}

impl IpHeader {
    /// The config spelling, which is also the HTTP header name in lower case (as HTTP/2 spells
    /// it): "forwarded", "x-forwarded-for", "x-real-ip".
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    fn name(self) -> &'static HeaderName {
        match self {
            Self::Forwarded => &FORWARDED,
            Self::XForwardedFor => &X_FORWARDED_FOR,
            Self::XRealIp => &X_REAL_IP,
        }
    }
}

impl FromStr for IpHeader {
    type Err = UnknownIpHeader;

    /// Parses the config spelling, ignoring ASCII case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        <IpHeader as strum::VariantArray>::VARIANTS
            .iter()
            .copied()
            .find(|h| h.as_str().eq_ignore_ascii_case(s))
            .ok_or(UnknownIpHeader)
    }
}

/// The error for a header name that is not one of the supported forwarding headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownIpHeader;

impl fmt::Display for UnknownIpHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"expected one of "forwarded", "x-forwarded-for", "x-real-ip""#)
    }
}

impl std::error::Error for UnknownIpHeader {}

/// What a client is counted and banned under: its address masked to the configured prefix, or,
/// for a client that could not be determined, a key of its own per peer.
///
/// Kept as plain integers (the masked address, its prefix length and what it stands for), so
/// that hashing and comparing one on the request path is a few instructions.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ClientKey {
    /// The masked address (IPv4 in the low 32 bits), or the peer of unknown clients, as two
    /// halves: a `u128` would align the key, and every verdict holding it, to 16 bytes.
    bits: [u64; 2],
    /// The prefix length of a known client's network.
    len: u8,
    kind: KeyKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
enum KeyKind {
    V4,
    V6,
    /// Unknown clients behind an IPv4 peer, an IPv6 peer, or a connection without a peer
    /// address.
    UnknownV4Peer,
    UnknownV6Peer,
    UnknownUnix,
}

impl ClientKey {
    /// The key of unknown clients behind `peer` (`None`: connections without a peer address).
    pub fn unknown(peer: Option<IpAddr>) -> ClientKey {
        let (bits, kind) = match peer.map(normalize) {
            Some(IpAddr::V4(v4)) => (u128::from(u32::from(v4)), KeyKind::UnknownV4Peer),
            Some(IpAddr::V6(v6)) => (u128::from(v6), KeyKind::UnknownV6Peer),
            None => (0, KeyKind::UnknownUnix),
        };
        ClientKey {
            bits: halves(bits),
            len: 0,
            kind,
        }
    }

    fn addr(&self) -> u128 {
        (u128::from(self.bits[0]) << 64) | u128::from(self.bits[1])
    }

    /// The key of a network (host bits cleared); the reference for [`ClientIpResolver::key_for`].
    #[cfg(test)]
    fn of(net: IpNet) -> ClientKey {
        match net {
            IpNet::V4(n) => ClientKey {
                bits: halves(u128::from(u32::from(n.network()))),
                len: n.prefix_len(),
                kind: KeyKind::V4,
            },
            IpNet::V6(n) => ClientKey {
                bits: halves(u128::from(n.network())),
                len: n.prefix_len(),
                kind: KeyKind::V6,
            },
        }
    }

    /// The network this key stands for (host bits cleared); `None` for unknown clients.
    pub fn network(&self) -> Option<IpNet> {
        match self.kind {
            KeyKind::V4 => Ipv4Net::new(Ipv4Addr::from(self.addr() as u32), self.len)
                .ok()
                .map(IpNet::V4),
            KeyKind::V6 => Ipv6Net::new(Ipv6Addr::from(self.addr()), self.len)
                .ok()
                .map(IpNet::V6),
            _ => None,
        }
    }

    /// Whether the key stands for a known client address.
    pub fn is_known(&self) -> bool {
        matches!(self.kind, KeyKind::V4 | KeyKind::V6)
    }
}

impl fmt::Display for ClientKey {
    /// A bare address for a full-length prefix (`203.0.113.7`), CIDR otherwise
    /// (`2001:db8:1:2::/64`); `unknown@<peer>` or `unknown@unix` for unknown clients.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.kind, self.network()) {
            (_, Some(net)) if net.prefix_len() == net.max_prefix_len() => {
                fmt::Display::fmt(&net.addr(), f)
            }
            (_, Some(net)) => fmt::Display::fmt(&net, f),
            (KeyKind::UnknownV4Peer, None) => {
                write!(f, "unknown@{}", Ipv4Addr::from(self.addr() as u32))
            }
            (KeyKind::UnknownV6Peer, None) => write!(f, "unknown@{}", Ipv6Addr::from(self.addr())),
            _ => f.write_str("unknown@unix"),
        }
    }
}

/// Two words: the cheapest hash input, as the limiter hashes a key on every request.
impl std::hash::Hash for ClientKey {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let [high, low] = self.hash_words();
        state.write_u64(high);
        state.write_u64(low);
    }
}

impl ClientKey {
    /// The key as plain integers: the address halves, and its prefix length and kind in one
    /// word (never `u16::MAX`). Equal parts, equal keys.
    #[inline]
    pub(crate) fn parts(&self) -> ([u64; 2], u16) {
        (self.bits, (u16::from(self.len) << 8) | self.kind as u16)
    }

    /// The key whose [`parts`](Self::parts) these are; `None` for parts of no key.
    pub(crate) fn from_parts(bits: [u64; 2], meta: u16) -> Option<ClientKey> {
        let kind = match meta & 0xff {
            0 => KeyKind::V4,
            1 => KeyKind::V6,
            2 => KeyKind::UnknownV4Peer,
            3 => KeyKind::UnknownV6Peer,
            4 => KeyKind::UnknownUnix,
            _ => return None,
        };
        let key = ClientKey {
            bits,
            len: (meta >> 8) as u8,
            kind,
        };
        (key.parts() == (bits, meta)).then_some(key)
    }

    /// The key in two words for hashing (keys that differ may share them; equality decides).
    #[inline]
    pub(crate) fn hash_words(&self) -> [u64; 2] {
        let (bits, meta) = self.parts();
        // The meta word lands in the low bits of the high half, which an IPv4 key leaves zero
        // and an IPv6 /64 or shorter leaves mostly zero too.
        [bits[0].rotate_left(16) ^ u64::from(meta), bits[1]]
    }
}

/// A `u128` as its high and low halves.
fn halves(bits: u128) -> [u64; 2] {
    [(bits >> 64) as u64, bits as u64]
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientKey({self})")
    }
}

impl serde::Serialize for ClientKey {
    /// Serialized as its `Display` form.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// What went wrong with a forwarding header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderProblem {
    /// A hop the walk reached is malformed: bad list or parameter syntax, an empty element, or
    /// text that is not an IP address.
    Syntax,
    /// A hop the walk reached is well-formed but names no address: `unknown`, an obfuscated
    /// `_id`, or a `Forwarded` element without `for`.
    NotAnAddress,
    /// The walk read 32 hops, all trusted proxies, and the header still lists more to their left.
    TooManyHops,
    /// A hop the walk reached is longer than 1 KiB.
    TooLong,
    /// A hop the walk reached holds bytes outside tab and printable ASCII (invalid UTF-8,
    /// non-ASCII or control bytes).
    NotUtf8,
}

impl fmt::Display for HeaderProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Syntax => "malformed value",
            Self::NotAnAddress => "hop is not an IP address",
            Self::TooManyHops => "too many hops",
            Self::TooLong => "hop too long",
            Self::NotUtf8 => "non-ASCII or control bytes",
        })
    }
}

/// Where a request's client address came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientSource {
    /// The TCP peer: no trusted proxy in front, or a trusted proxy's own request (it sent no
    /// forwarding header).
    Peer,
    /// A forwarding header sent by a trusted proxy.
    Header(IpHeader),
    /// The client could not be determined; see the [module docs](self) for what follows.
    Unknown(UnknownClient),
}

/// Why a request's client could not be determined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnknownClient {
    /// A trusted proxy's forwarding header could not be used.
    Header {
        /// The header.
        header: IpHeader,
        /// What was wrong with it.
        problem: HeaderProblem,
    },
    /// The connection has no peer address (a Unix socket) and `"unix"` is not among the
    /// trusted proxies, so forwarding headers are not believed and every such request shares
    /// one key.
    NoPeerAddress,
    /// The connection is a Unix socket from a trusted proxy that sent no forwarding header.
    NoHeaderFromUnixProxy,
}

impl fmt::Display for UnknownClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnknownClient::Header { header, problem } => {
                write!(
                    f,
                    "unusable {header} header from a trusted proxy ({problem})"
                )
            }
            UnknownClient::NoPeerAddress => f.write_str(
                "no peer address (a Unix socket?); add \"unix\" to client.trusted_proxies to \
                 read forwarding headers from it",
            ),
            UnknownClient::NoHeaderFromUnixProxy => {
                f.write_str("the trusted Unix-socket proxy sent no forwarding header")
            }
        }
    }
}

/// How the client of one request was resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResolvedClient {
    /// The client address, IPv4-mapped IPv6 normalised to IPv4; the unspecified address
    /// (`0.0.0.0`, or `::` behind an IPv6 peer) when the client is unknown.
    pub ip: IpAddr,
    /// The grouping key of `ip`, or the key of unknown clients behind this peer.
    pub key: ClientKey,
    /// Where `ip` came from.
    pub source: ClientSource,
    /// The TCP peer (normalised), when the connection has one.
    pub peer: Option<IpAddr>,
}

impl ResolvedClient {
    /// Whether the client address is known.
    pub fn is_known(&self) -> bool {
        !matches!(self.source, ClientSource::Unknown(_))
    }
}

/// Resolves the client address of a request and its grouping key.
///
/// Forwarding headers are read only when the TCP peer is a trusted proxy; the chain is then walked
/// from the right and the first hop that is not a trusted proxy is the client.
///
/// ```
/// use actix_bouncer::client_ip::{ClientIpResolver, ClientSource, IpHeader};
/// use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
///
/// let resolver = ClientIpResolver::new(
///     vec!["10.0.0.0/8".parse().unwrap()],
///     vec![IpHeader::XForwardedFor],
///     32,
///     64,
/// );
/// let mut headers = HeaderMap::new();
/// headers.insert(
///     HeaderName::from_static("x-forwarded-for"),
///     // A forged first entry, the real client, then our own load balancer.
///     HeaderValue::from_static("1.2.3.4, 203.0.113.7, 10.0.0.2"),
/// );
///
/// let client = resolver.resolve(Some("10.0.0.1".parse().unwrap()), &headers);
/// assert_eq!(client.ip.to_string(), "203.0.113.7");
/// assert_eq!(client.source, ClientSource::Header(IpHeader::XForwardedFor));
/// assert_eq!(client.key.to_string(), "203.0.113.7");
///
/// // From a peer that is not a trusted proxy, the header is ignored.
/// let direct = resolver.resolve(Some("198.51.100.9".parse().unwrap()), &headers);
/// assert_eq!(direct.ip.to_string(), "198.51.100.9");
/// assert_eq!(direct.source, ClientSource::Peer);
/// ```
#[derive(Debug, Clone)]
pub struct ClientIpResolver {
    trusted: Trusted,
    /// Connections without a peer address (Unix sockets) come from a trusted proxy.
    trust_unix: bool,
    headers: Vec<IpHeader>,
    ipv4_prefix: u8,
    ipv6_prefix: u8,
}

impl ClientIpResolver {
    /// Builds a resolver.
    ///
    /// `headers` are tried in order and the first one present on a request is used. Validated
    /// inputs from the config layer: prefixes are 1..=32 and 1..=128 (clamped defensively,
    /// never a panic).
    pub fn new(
        trusted_proxies: Vec<IpNet>,
        headers: Vec<IpHeader>,
        ipv4_prefix: u8,
        ipv6_prefix: u8,
    ) -> Self {
        Self {
            // The crate's one longest-prefix-match table: a few proxies or a CDN's hundreds of
            // ranges cost the same lookup.
            trusted: Trusted::new(PrefixTable::build(
                trusted_proxies.into_iter().map(|n| (normalize_net(n), ())),
            )),
            trust_unix: false,
            headers,
            ipv4_prefix: ipv4_prefix.clamp(1, 32),
            ipv6_prefix: ipv6_prefix.clamp(1, 128),
        }
    }

    /// Treats connections without a peer address (Unix sockets) as coming from a trusted proxy,
    /// whose forwarding headers are read (`"unix"` in `client.trusted_proxies`). Default: off.
    pub fn trust_unix_socket(mut self, trust: bool) -> Self {
        self.trust_unix = trust;
        self
    }

    /// Works out the client of a request from its peer address and headers.
    ///
    /// Never panics and never allocates. When the client cannot be determined, the result says
    /// so ([`ClientSource::Unknown`]) and never names the peer as the client.
    pub fn resolve(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> ResolvedClient {
        let peer = peer.map(normalize);
        let trusted = match peer {
            Some(ip) => self.is_trusted(ip),
            None => self.trust_unix,
        };
        let unknown = |why| self.unknown(peer, why);
        if !trusted {
            return match peer {
                Some(ip) => self.known(ip, ClientSource::Peer, peer),
                None => {
                    warn_no_peer_once();
                    unknown(UnknownClient::NoPeerAddress)
                }
            };
        }

        for &header in &self.headers {
            let lines = headers.get_all(header.name()).as_slice();
            if lines.is_empty() {
                continue;
            }
            return match read_header(header, lines, &self.trusted) {
                Ok(ip) => self.known(ip, ClientSource::Header(header), peer),
                Err(problem) => unknown(UnknownClient::Header { header, problem }),
            };
        }
        // No configured header: the proxy's own request.
        match peer {
            Some(ip) => self.known(ip, ClientSource::Peer, peer),
            None => unknown(UnknownClient::NoHeaderFromUnixProxy),
        }
    }

    fn known(&self, ip: IpAddr, source: ClientSource, peer: Option<IpAddr>) -> ResolvedClient {
        ResolvedClient {
            ip,
            key: self.key_for(ip),
            source,
            peer,
        }
    }

    fn unknown(&self, peer: Option<IpAddr>, why: UnknownClient) -> ResolvedClient {
        let ip = match peer {
            Some(IpAddr::V6(_)) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        };
        ResolvedClient {
            ip,
            key: ClientKey::unknown(peer),
            source: ClientSource::Unknown(why),
            peer,
        }
    }

    /// The grouping key of an address (after IPv4-mapped normalisation).
    pub fn key_for(&self, ip: IpAddr) -> ClientKey {
        // What `ClientKey::of` makes of the network `ip/prefix` with its host bits cleared,
        // without building it. The prefixes are clamped to 1..=32 and 1..=128 in `new`, so
        // the shifts stay below the width (and a zero mask stands for any that would not).
        match normalize(ip) {
            IpAddr::V4(v4) => {
                let len = self.ipv4_prefix;
                let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
                ClientKey {
                    bits: halves(u128::from(u32::from(v4) & mask)),
                    len,
                    kind: KeyKind::V4,
                }
            }
            IpAddr::V6(v6) => {
                let len = self.ipv6_prefix;
                let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
                ClientKey {
                    bits: halves(u128::from(v6) & mask),
                    len,
                    kind: KeyKind::V6,
                }
            }
        }
    }

    /// Whether an address (after IPv4-mapped normalisation) is inside the trusted proxies.
    pub fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        self.is_trusted(normalize(ip))
    }

    /// `ip` must already be normalised.
    #[inline]
    fn is_trusted(&self, ip: IpAddr) -> bool {
        !self.trusted.table.is_empty() && self.trusted.contains(ip)
    }
}

/// Most trusted networks checked one by one rather than through the prefix table's index.
const FEW_TRUSTED: usize = 8;

/// The trusted proxies: the crate's prefix table and, for the usual handful of networks, the
/// same networks as `(network, mask)` pairs, tried in turn (a few masks cost less than the
/// table's index).
#[derive(Debug, Clone)]
pub(super) struct Trusted {
    table: PrefixTable<()>,
    /// Every IPv4 and IPv6 network of `table`, when it holds at most [`FEW_TRUSTED`].
    few: Option<FewTrusted>,
}

/// `(network, mask)` of every trusted IPv4 network, then of every IPv6 one.
type FewTrusted = (Box<[(u32, u32)]>, Box<[(u128, u128)]>);

impl Trusted {
    fn new(table: PrefixTable<()>) -> Self {
        let few = (table.len() <= FEW_TRUSTED).then(|| {
            let mut v4 = Vec::new();
            let mut v6 = Vec::new();
            for (net, ()) in table.iter() {
                let len = u32::from(net.prefix_len());
                match net {
                    IpNet::V4(n) => {
                        let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
                        v4.push((u32::from(n.network()) & mask, mask));
                    }
                    IpNet::V6(n) => {
                        let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
                        v6.push((u128::from(n.network()) & mask, mask));
                    }
                }
            }
            (v4.into_boxed_slice(), v6.into_boxed_slice())
        });
        Self { table, few }
    }

    /// Whether a trusted network contains `ip` (already normalised).
    #[inline]
    pub(super) fn contains(&self, ip: IpAddr) -> bool {
        match (&self.few, ip) {
            (Some((v4, _)), IpAddr::V4(a)) => {
                let a = u32::from(a);
                v4.iter().any(|&(net, mask)| a & mask == net)
            }
            (Some((_, v6)), IpAddr::V6(a)) => {
                let a = u128::from(a);
                v6.iter().any(|&(net, mask)| a & mask == net)
            }
            (None, ip) => self.table.contains(ip),
        }
    }
}

/// Says once per process that requests arrive without a peer address: behind a Unix-socket
/// proxy that is not trusted, every client shares one key, which the operator should know.
fn warn_no_peer_once() {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            target: "actix_bouncer",
            "requests arrive without a peer address (a Unix socket?) and \"unix\" is not in \
             client.trusted_proxies: their clients are unknown and share one key; add \"unix\" \
             to read the proxy's forwarding headers"
        );
    }
}

/// Reads one present header (all its lines) sent by a trusted peer.
fn read_header(
    header: IpHeader,
    lines: &[HeaderValue],
    trusted: &Trusted,
) -> Result<IpAddr, HeaderProblem> {
    match header {
        IpHeader::XRealIp => match lines {
            // A single address, set by the trusted peer: a one-element chain, so the walk
            // ends on it whether or not it is itself a proxy.
            [line] => x_forwarded_for::parse_real_ip(line.as_bytes()),
            _ => Err(HeaderProblem::Syntax),
        },
        // Both splitters work on bytes from the right, so whatever a client put on the left
        // (bad bytes, stray quotes, empty elements, padding) cannot change the elements to its
        // right, and is never read once the walk has its answer.
        // The usual single line is walked without the chaining of lines (same hops, in the
        // same order).
        IpHeader::XForwardedFor => match lines {
            [line] => walk::walk(
                walk::ListHops::new(line.as_bytes()),
                x_forwarded_for::parse_hop,
                trusted,
            ),
            _ => walk::walk(
                lines
                    .iter()
                    .rev()
                    .flat_map(|l| walk::ListHops::new(l.as_bytes())),
                x_forwarded_for::parse_hop,
                trusted,
            ),
        },
        IpHeader::Forwarded => walk::walk(
            lines
                .iter()
                .rev()
                .flat_map(|l| forwarded::Elements::new(l.as_bytes()))
                .map(|hop| hop.map(walk::Split::Text)),
            forwarded::parse_element,
            trusted,
        ),
    }
}

#[cfg(test)]
mod tests;
