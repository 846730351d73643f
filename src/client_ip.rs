//! Who the client really is: peer address, trusted proxies, forwarding headers, grouping by prefix.
//!
//! The TCP peer is the only address nobody can forge, so it is the starting point. Forwarding
//! headers are read only when that peer is a configured trusted proxy, and then only from the
//! right: every proxy appends what it saw, so the rightmost hop that is *not* one of our proxies
//! is the client, and anything to its left is whatever the client chose to send.
//!
//! Because that left part is client-controlled, nothing in it may change the answer: content
//! checks (bad bytes, syntax, the hop limit) apply only to the hops the walk actually reads, so
//! junk prepended by a client cannot push resolution back onto our proxy's address. The walk gives
//! up with [`HeaderProblem::TooManyHops`] only after passing 32 trusted proxies with hops still
//! to their left; the one whole-header check is the 8 KiB size cap, which also bounds the work.
//!
//! Resolution never allocates: header lines are walked as byte slices, from the last line back.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::prefix_table::PrefixTable;

/// Most bytes accepted over all lines of one forwarding header.
const MAX_HEADER_BYTES: usize = 8 * 1024;

/// Most hops the walk reads: after this many trusted proxies with more hops still to their left,
/// it gives up. The peer itself is not counted; hops left of the answer never are.
const MAX_HOPS: usize = 32;

/// Room for an unescaped `Forwarded` node; a real node is at most ~55 bytes
/// (`[` IPv6-with-embedded-IPv4 `]:` port), so anything longer cannot be an address.
const MAX_NODE_BYTES: usize = 128;

// Statics rather than consts: `HeaderName` holds `Bytes`, and a static avoids building a fresh
// value (and clippy's interior-mutability lint) at every lookup.
static FORWARDED: HeaderName = HeaderName::from_static("forwarded");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// A forwarding header the resolver may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpHeader {
    /// `Forwarded` (RFC 7239), read through its `for` parameter.
    Forwarded,
    /// `X-Forwarded-For`: a comma-separated list of addresses, client first.
    XForwardedFor,
    /// `X-Real-IP`: a single address set by the proxy in front of us.
    XRealIp,
}

impl IpHeader {
    /// The config spelling: "forwarded", "x-forwarded-for", "x-real-ip".
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Forwarded => "forwarded",
            Self::XForwardedFor => "x-forwarded-for",
            Self::XRealIp => "x-real-ip",
        }
    }

    /// The HTTP header name (lower case, as HTTP/2 spells it): "forwarded", "x-forwarded-for",
    /// "x-real-ip".
    pub const fn header_name(self) -> &'static str {
        // The config spelling was chosen to be the header name.
        self.as_str()
    }

    fn name(self) -> &'static HeaderName {
        match self {
            Self::Forwarded => &FORWARDED,
            Self::XForwardedFor => &X_FORWARDED_FOR,
            Self::XRealIp => &X_REAL_IP,
        }
    }
}

impl fmt::Display for IpHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IpHeader {
    type Err = UnknownIpHeader;

    /// Parses the config spelling, ignoring ASCII case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Forwarded, Self::XForwardedFor, Self::XRealIp]
            .into_iter()
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

/// The grouping key: the client address masked to the configured prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientKey(IpNet);

impl ClientKey {
    /// The network this key stands for (host bits cleared).
    pub fn network(&self) -> IpNet {
        self.0
    }
}

impl fmt::Display for ClientKey {
    /// A bare address for a full-length prefix (`203.0.113.7`), CIDR otherwise (`2001:db8:1:2::/64`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.prefix_len() == self.0.max_prefix_len() {
            fmt::Display::fmt(&self.0.addr(), f)
        } else {
            fmt::Display::fmt(&self.0, f)
        }
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
    /// A hop the walk reached is malformed: bad list or parameter syntax, an empty element, or text that is not an IP address.
    Syntax,
    /// A hop the walk reached is well-formed but names no address: `unknown`, an obfuscated `_id`, or a `Forwarded` element without `for`.
    NotAnAddress,
    /// The walk read 32 hops, all trusted proxies, and the header still lists more to their left.
    TooManyHops,
    /// The header is longer than 8 KiB over all its lines.
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
            Self::TooLong => "value too long",
            Self::NotUtf8 => "non-ASCII or control bytes",
        })
    }
}

/// How the client was resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolvedClient {
    /// The client address, IPv4-mapped IPv6 normalised to IPv4.
    pub ip: IpAddr,
    /// The grouping key of `ip`.
    pub key: ClientKey,
    /// The header the address came from; None when it is the peer address.
    pub via: Option<IpHeader>,
    /// A forwarding header that was unusable, which made the resolver fall back to the peer.
    pub problem: Option<(IpHeader, HeaderProblem)>,
    /// The connection had no peer address; `ip` is 0.0.0.0.
    pub peer_missing: bool,
}

/// The networks whose forwarding headers are believed.
///
/// A linear scan: the list is short in practice, and an empty list (the default) costs one check.
#[derive(Debug, Clone)]
struct TrustedProxies(PrefixTable<()>);

impl TrustedProxies {
    fn new(nets: Vec<IpNet>) -> Self {
        // The crate's one longest-prefix-match table: a few proxies or a CDN's hundreds of
        // ranges cost the same lookup.
        Self(PrefixTable::build(
            nets.into_iter().map(|n| (normalize_net(n), ())),
        ))
    }

    #[inline]
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `ip` must already be normalised.
    #[inline]
    fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(ip)
    }
}

/// Host bits cleared, and an IPv4-mapped IPv6 network (`::ffff:10.0.0.0/104`) rewritten as the
/// IPv4 network it means, since every address is normalised to IPv4 before the comparison.
pub(crate) fn normalize_net(net: IpNet) -> IpNet {
    let net = net.trunc();
    if let IpNet::V6(v6) = net {
        if let (Some(v4), Some(len)) = (v6.addr().to_ipv4_mapped(), v6.prefix_len().checked_sub(96))
        {
            if let Ok(v4net) = Ipv4Net::new(v4, len) {
                return IpNet::V4(v4net.trunc());
            }
        }
    }
    net
}

/// Resolves the client address of a request and its grouping key.
///
/// Forwarding headers are read only when the TCP peer is a trusted proxy; the chain is then walked
/// from the right and the first hop that is not a trusted proxy is the client.
///
/// ```
/// use actix_bouncer::client_ip::{ClientIpResolver, IpHeader};
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
/// assert_eq!(client.via, Some(IpHeader::XForwardedFor));
/// assert_eq!(client.key.to_string(), "203.0.113.7");
///
/// // From a peer that is not a trusted proxy, the header is ignored.
/// let direct = resolver.resolve(Some("198.51.100.9".parse().unwrap()), &headers);
/// assert_eq!(direct.ip.to_string(), "198.51.100.9");
/// assert_eq!(direct.via, None);
/// ```
#[derive(Debug, Clone)]
pub struct ClientIpResolver {
    trusted: TrustedProxies,
    headers: Vec<IpHeader>,
    ipv4_prefix: u8,
    ipv6_prefix: u8,
}

impl ClientIpResolver {
    /// Builds a resolver.
    ///
    /// `headers` are tried in order and the first one present on a request is used. Validated
    /// inputs from the config layer: prefixes are 1..=32 and 1..=128 (clamp defensively, never
    /// panic).
    pub fn new(
        trusted_proxies: Vec<IpNet>,
        headers: Vec<IpHeader>,
        ipv4_prefix: u8,
        ipv6_prefix: u8,
    ) -> Self {
        Self {
            trusted: TrustedProxies::new(trusted_proxies),
            headers,
            ipv4_prefix: ipv4_prefix.clamp(1, 32),
            ipv6_prefix: ipv6_prefix.clamp(1, 128),
        }
    }

    /// Works out the client of a request from its peer address and headers.
    ///
    /// Never panics and never allocates. Any unusable header the walk depends on makes the
    /// result the peer address, with the header and the problem in [`ResolvedClient::problem`].
    pub fn resolve(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> ResolvedClient {
        let peer_missing = peer.is_none();
        let peer_ip = peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), normalize);
        let from_peer = |problem| ResolvedClient {
            ip: peer_ip,
            key: self.key_for(peer_ip),
            via: None,
            problem,
            peer_missing,
        };

        // Headers mean something only when a proxy we trust wrote them; without a peer address
        // there is no telling who did.
        if peer_missing
            || self.headers.is_empty()
            || self.trusted.is_empty()
            || !self.trusted.contains(peer_ip)
        {
            return from_peer(None);
        }

        for &header in &self.headers {
            let lines = headers.get_all(header.name()).as_slice();
            if lines.is_empty() {
                continue;
            }
            return match read_header(header, lines, &self.trusted) {
                Ok(ip) => ResolvedClient {
                    ip,
                    key: self.key_for(ip),
                    via: Some(header),
                    problem: None,
                    peer_missing: false,
                },
                Err(problem) => from_peer(Some((header, problem))),
            };
        }
        from_peer(None)
    }

    /// The grouping key of an address (after IPv4-mapped normalisation).
    pub fn key_for(&self, ip: IpAddr) -> ClientKey {
        let ip = normalize(ip);
        let net = match ip {
            IpAddr::V4(v4) => Ipv4Net::new(v4, self.ipv4_prefix).map(|n| IpNet::V4(n.trunc())),
            IpAddr::V6(v6) => Ipv6Net::new(v6, self.ipv6_prefix).map(|n| IpNet::V6(n.trunc())),
        };
        // The prefixes are clamped in `new`, so the fallback (the host itself) is never used.
        ClientKey(net.unwrap_or_else(|_| IpNet::from(ip)))
    }

    /// Whether an address (after IPv4-mapped normalisation) is inside the trusted proxies.
    pub fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        !self.trusted.is_empty() && self.trusted.contains(normalize(ip))
    }
}

/// IPv4-mapped IPv6 to IPv4; everything else unchanged.
pub fn normalize(ip: IpAddr) -> IpAddr {
    // `to_canonical` maps only `::ffff:a.b.c.d`, not the deprecated IPv4-compatible `::a.b.c.d`.
    ip.to_canonical()
}

/// Reads one present header (all its lines) sent by a trusted peer.
fn read_header(
    header: IpHeader,
    lines: &[HeaderValue],
    trusted: &TrustedProxies,
) -> Result<IpAddr, HeaderProblem> {
    // The one whole-header limit: an 8 KiB forwarding header is abuse by itself, and the cap
    // bounds the work of the walk. Every other check looks only at hops the walk reads, because
    // the part left of the answer is whatever the client sent.
    let total = lines.iter().fold(0usize, |n, l| n.saturating_add(l.len()));
    if total > MAX_HEADER_BYTES {
        return Err(HeaderProblem::TooLong);
    }

    match header {
        IpHeader::XRealIp => match lines {
            // A single address, set by the trusted peer: a one-element chain, so the walk
            // ends on it whether or not it is itself a proxy.
            [line] => {
                let value = line.as_bytes();
                check_hop_bytes(value)?;
                if value.contains(&b',') {
                    return Err(HeaderProblem::Syntax);
                }
                parse_list_hop(value).map(normalize)
            }
            _ => Err(HeaderProblem::Syntax),
        },
        // Both splitters work on bytes from the right, so whatever a client put on the left
        // (bad bytes, stray quotes, empty elements) cannot change the elements to its right.
        IpHeader::XForwardedFor => walk(
            lines
                .iter()
                .rev()
                .flat_map(|l| l.as_bytes().rsplit(|&b| b == b',')),
            parse_list_hop,
            trusted,
        ),
        IpHeader::Forwarded => walk(
            lines
                .iter()
                .rev()
                .flat_map(|l| ForwardedElements::new(l.as_bytes())),
            parse_forwarded_element,
            trusted,
        ),
    }
}

/// Walks hops right to left and returns the first one that is not a trusted proxy, or the
/// leftmost when all are. Hops left of the answer are never looked at, not even for their bytes.
///
/// At most [`MAX_HOPS`] hops are read: 32 trusted proxies with nothing left of them still yield
/// the leftmost, but a 33rd hop (whatever it holds) is [`HeaderProblem::TooManyHops`].
fn walk<'a>(
    hops: impl Iterator<Item = &'a [u8]>,
    parse: fn(&[u8]) -> Result<IpAddr, HeaderProblem>,
    trusted: &TrustedProxies,
) -> Result<IpAddr, HeaderProblem> {
    let mut leftmost = None;
    for (read, hop) in hops.enumerate() {
        if read == MAX_HOPS {
            return Err(HeaderProblem::TooManyHops);
        }
        check_hop_bytes(hop)?;
        let ip = normalize(parse(hop)?);
        if !trusted.contains(ip) {
            return Ok(ip);
        }
        leftmost = Some(ip);
    }
    // A present header always yields at least one (possibly empty) hop, so this is `Some`.
    leftmost.ok_or(HeaderProblem::Syntax)
}

/// None of these headers has any business outside tab and printable ASCII; checked on each hop
/// the walk reads, this also makes every slice the parsers see valid UTF-8.
fn check_hop_bytes(hop: &[u8]) -> Result<(), HeaderProblem> {
    if hop.iter().all(|&b| b == b'\t' || (0x20..0x7f).contains(&b)) {
        Ok(())
    } else {
        Err(HeaderProblem::NotUtf8)
    }
}

/// One `X-Forwarded-For` / `X-Real-IP` entry: `ip`, `ip:port` or `[v6]:port`, with optional
/// whitespace around it.
fn parse_list_hop(hop: &[u8]) -> Result<IpAddr, HeaderProblem> {
    let text = ascii_str(trim_ows(hop))?;
    if text.is_empty() {
        return Err(HeaderProblem::Syntax);
    }
    // Squid and some others write `unknown` for a hop they could not see.
    if text.eq_ignore_ascii_case("unknown") {
        return Err(HeaderProblem::NotAnAddress);
    }
    if let Some(rest) = text.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or(HeaderProblem::Syntax)?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return Err(HeaderProblem::Syntax);
        }
        return v6
            .parse::<Ipv6Addr>()
            .map(IpAddr::V6)
            .map_err(|_| HeaderProblem::Syntax);
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(ip);
    }
    // Only IPv4 may carry a port without brackets: a bare IPv6 address was handled above.
    match text.split_once(':') {
        Some((v4, port)) if is_port(port) => v4
            .parse::<Ipv4Addr>()
            .map(IpAddr::V4)
            .map_err(|_| HeaderProblem::Syntax),
        _ => Err(HeaderProblem::Syntax),
    }
}

/// Splits one `Forwarded` line into elements from the right, honouring quoted strings (a comma
/// inside quotes does not split). Scanning from the right means a malformed prefix that a client
/// sent cannot change how the elements our proxies appended are read.
struct ForwardedElements<'a> {
    line: &'a [u8],
    /// Exclusive end of the part not yet returned; `None` once the line is exhausted.
    end: Option<usize>,
}

impl<'a> ForwardedElements<'a> {
    fn new(line: &'a [u8]) -> Self {
        Self {
            line,
            end: Some(line.len()),
        }
    }
}

impl<'a> Iterator for ForwardedElements<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let end = self.end?;
        let rest = self.line.get(..end)?;
        let mut i = end;
        while let Some(i_prev) = i.checked_sub(1) {
            match rest[i_prev] {
                b',' => {
                    self.end = Some(i_prev);
                    return rest.get(i..);
                }
                b'"' => i = opening_quote(rest, i_prev),
                _ => i = i_prev,
            }
        }
        self.end = None;
        Some(rest)
    }
}

/// The index of the quote that opens the quoted string closed at `close`, or 0 when it is
/// unterminated (the rest of the line is then one malformed element). A quote preceded by an
/// odd run of backslashes is escaped: inside a quoted string backslashes pair up from the left,
/// and a run always starts on a pair boundary.
fn opening_quote(s: &[u8], close: usize) -> usize {
    let mut j = close;
    while let Some(k) = j.checked_sub(1) {
        j = k;
        if s[k] == b'"' {
            let run = s[..k].iter().rev().take_while(|&&b| b == b'\\').count();
            if run % 2 == 0 {
                return k;
            }
        }
    }
    0
}

/// One `Forwarded` element: `;`-separated `name=value` pairs; returns the `for` node's address.
fn parse_forwarded_element(element: &[u8]) -> Result<IpAddr, HeaderProblem> {
    let element = trim_ows(element);
    if element.is_empty() {
        return Err(HeaderProblem::Syntax);
    }
    let mut node = None;
    let mut rest = element;
    loop {
        let end = find_unquoted(rest, b';');
        let pair = trim_ows(&rest[..end]);
        // `for=a;;proto=http` is allowed: the grammar makes every pair optional.
        if !pair.is_empty() {
            let eq = pair
                .iter()
                .position(|&b| b == b'=')
                .ok_or(HeaderProblem::Syntax)?;
            let name = trim_ows(&pair[..eq]);
            let value = parse_value(trim_ows(&pair[eq + 1..]))?;
            if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
                return Err(HeaderProblem::Syntax);
            }
            if name.eq_ignore_ascii_case(b"for") {
                // RFC 7239 §4: a parameter must not occur twice in one element; which one
                // would be right is anybody's guess.
                if node.replace(value).is_some() {
                    return Err(HeaderProblem::Syntax);
                }
            }
        }
        match rest.get(end + 1..) {
            Some(next) => rest = next,
            None => break,
        }
    }
    // An element without `for` hides the hop just as `for=unknown` would.
    let mut buf = [0u8; MAX_NODE_BYTES];
    parse_node(
        node.ok_or(HeaderProblem::NotAnAddress)?
            .unescape(&mut buf)?,
    )
}

/// A `Forwarded` parameter value as written.
#[derive(Clone, Copy)]
enum Value<'a> {
    Token(&'a [u8]),
    /// The inside of a quoted string, escapes still in place.
    Quoted(&'a [u8]),
}

impl<'a> Value<'a> {
    /// The value with quoted-string escapes removed, borrowing `buf` only when there are any.
    fn unescape<'b>(self, buf: &'b mut [u8; MAX_NODE_BYTES]) -> Result<&'b str, HeaderProblem>
    where
        'a: 'b,
    {
        let raw = match self {
            Self::Quoted(raw) if raw.contains(&b'\\') => raw,
            Self::Token(raw) | Self::Quoted(raw) => return ascii_str(raw),
        };
        let mut len = 0;
        let mut escaped = false;
        for &b in raw {
            if b == b'\\' && !escaped {
                escaped = true;
                continue;
            }
            escaped = false;
            *buf.get_mut(len).ok_or(HeaderProblem::Syntax)? = b;
            len += 1;
        }
        ascii_str(&buf[..len])
    }
}

/// A parameter value: a complete quoted string, or a token. Tokens may also hold `:`, `[` and
/// `]`, since some proxies write `for=[2001:db8::1]:80` or `for=192.0.2.1:80` unquoted and the
/// meaning is still unambiguous.
fn parse_value(v: &[u8]) -> Result<Value<'_>, HeaderProblem> {
    if let Some(inner) = v.strip_prefix(b"\"") {
        let mut i = 0;
        loop {
            match inner.get(i) {
                Some(b'\\') if i + 1 < inner.len() => i += 2,
                Some(b'"') => break,
                Some(b'\\') | None => return Err(HeaderProblem::Syntax),
                Some(_) => i += 1,
            }
        }
        // Nothing may follow the closing quote.
        return if i + 1 == inner.len() {
            Ok(Value::Quoted(&inner[..i]))
        } else {
            Err(HeaderProblem::Syntax)
        };
    }
    if !v.is_empty()
        && v.iter()
            .all(|&b| is_tchar(b) || matches!(b, b':' | b'[' | b']'))
    {
        Ok(Value::Token(v))
    } else {
        Err(HeaderProblem::Syntax)
    }
}

/// A `Forwarded` node (RFC 7239 §6): `IPv4[:port]`, `[IPv6][:port]`, `unknown` or `_obfuscated`,
/// where a port may itself be obfuscated.
fn parse_node(node: &str) -> Result<IpAddr, HeaderProblem> {
    let valid_port = |p: Option<&str>| p.is_none_or(|p| is_port(p) || is_obfuscated(p));
    if let Some(rest) = node.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or(HeaderProblem::Syntax)?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or(HeaderProblem::Syntax)?),
        };
        if !valid_port(port) {
            return Err(HeaderProblem::Syntax);
        }
        return v6
            .parse::<Ipv6Addr>()
            .map(IpAddr::V6)
            .map_err(|_| HeaderProblem::Syntax);
    }
    // IPv6 must be bracketed here (RFC 7239 §6), so the first colon starts the port.
    let (name, port) = match node.split_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (node, None),
    };
    if !valid_port(port) {
        return Err(HeaderProblem::Syntax);
    }
    if name.eq_ignore_ascii_case("unknown") || is_obfuscated(name) {
        return Err(HeaderProblem::NotAnAddress);
    }
    name.parse::<Ipv4Addr>()
        .map(IpAddr::V4)
        .map_err(|_| HeaderProblem::Syntax)
}

/// The index of the first `delim` outside a quoted string, or `s.len()`.
fn find_unquoted(s: &[u8], delim: u8) -> usize {
    let mut quoted = false;
    let mut escaped = false;
    for (i, &b) in s.iter().enumerate() {
        if quoted {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                quoted = false;
            }
        } else if b == b'"' {
            quoted = true;
        } else if b == delim {
            return i;
        }
    }
    s.len()
}

/// RFC 7239 `obfnode` / `obfport`: `_` then one or more of ALPHA, DIGIT, `.`, `_`, `-`.
fn is_obfuscated(s: &str) -> bool {
    s.strip_prefix('_').is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    })
}

/// 1 to 5 digits, at most 65535.
fn is_port(s: &str) -> bool {
    (1..=5).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) && s.parse::<u16>().is_ok()
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Optional whitespace (space, tab) trimmed from both ends.
fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// The bytes as text; the hop was checked to be ASCII already, so this only guards against misuse.
fn ascii_str(s: &[u8]) -> Result<&str, HeaderProblem> {
    std::str::from_utf8(s).map_err(|_| HeaderProblem::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use IpHeader::{Forwarded, XForwardedFor, XRealIp};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn resolver(trusted: &[&str], headers: &[IpHeader]) -> ClientIpResolver {
        ClientIpResolver::new(
            trusted.iter().map(|n| n.parse().unwrap()).collect(),
            headers.to_vec(),
            32,
            64,
        )
    }

    /// The usual setup: our proxies live in 10/8 and 2001:db8:ffff::/48; all headers, XFF first.
    fn default_resolver() -> ClientIpResolver {
        resolver(
            &["10.0.0.0/8", "2001:db8:ffff::/48"],
            &[XForwardedFor, Forwarded, XRealIp],
        )
    }

    fn map(lines: &[(IpHeader, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for &(header, value) in lines {
            map.append(
                header.name().clone(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        map
    }

    fn one(header: IpHeader, value: &str) -> HeaderMap {
        map(&[(header, value.as_bytes())])
    }

    const PROXY: &str = "10.0.0.1";

    fn from_proxy(r: &ClientIpResolver, headers: &HeaderMap) -> ResolvedClient {
        r.resolve(Some(ip(PROXY)), headers)
    }

    #[track_caller]
    fn assert_client(got: ResolvedClient, want: &str, via: IpHeader) {
        assert_eq!(got.ip, ip(want), "{got:?}");
        assert_eq!(got.via, Some(via), "{got:?}");
        assert_eq!(got.problem, None, "{got:?}");
        assert!(!got.peer_missing);
    }

    #[track_caller]
    fn assert_peer(got: ResolvedClient, problem: Option<(IpHeader, HeaderProblem)>) {
        assert_eq!(got.ip, ip(PROXY), "{got:?}");
        assert_eq!(got.via, None, "{got:?}");
        assert_eq!(got.problem, problem, "{got:?}");
    }

    // ---- names and config spelling -------------------------------------------------------

    #[test]
    fn header_spellings() {
        for h in [Forwarded, XForwardedFor, XRealIp] {
            assert_eq!(h.as_str().parse::<IpHeader>(), Ok(h));
            assert_eq!(h.as_str().to_uppercase().parse::<IpHeader>(), Ok(h));
            assert_eq!(h.header_name(), h.name().as_str());
            assert_eq!(h.to_string(), h.as_str());
        }
        assert_eq!("X-Real-Ip".parse::<IpHeader>(), Ok(XRealIp));
        assert_eq!("x_real_ip".parse::<IpHeader>(), Err(UnknownIpHeader));
        assert_eq!("".parse::<IpHeader>(), Err(UnknownIpHeader));
        assert_eq!(
            UnknownIpHeader.to_string(),
            r#"expected one of "forwarded", "x-forwarded-for", "x-real-ip""#
        );
        let _: &dyn std::error::Error = &UnknownIpHeader;
        assert_eq!(HeaderProblem::TooLong.to_string(), "value too long");
    }

    // ---- spoofing ---------------------------------------------------------------------------

    #[test]
    fn forged_headers_from_untrusted_peer_are_ignored() {
        let r = default_resolver();
        let peer = ip("198.51.100.20");
        for headers in [
            one(XForwardedFor, "203.0.113.9"),
            one(Forwarded, "for=203.0.113.9"),
            one(XRealIp, "203.0.113.9"),
            one(XForwardedFor, "garbage\"[;,"),
        ] {
            let got = r.resolve(Some(peer), &headers);
            assert_eq!(got.ip, peer);
            assert_eq!(got.via, None);
            assert_eq!(got.problem, None);
        }
    }

    #[test]
    fn no_trusted_proxies_means_headers_are_never_used() {
        let r = resolver(&[], &[XForwardedFor, Forwarded, XRealIp]);
        let got = r.resolve(Some(ip(PROXY)), &one(XForwardedFor, "203.0.113.9"));
        assert_eq!(got.ip, ip(PROXY));
        assert_eq!(got.via, None);
        assert!(!r.is_trusted_proxy(ip(PROXY)));
    }

    #[test]
    fn no_configured_headers_means_headers_are_never_used() {
        let r = resolver(&["10.0.0.0/8"], &[]);
        assert_peer(from_proxy(&r, &one(XForwardedFor, "203.0.113.9")), None);
    }

    #[test]
    fn unconfigured_header_is_ignored() {
        let r = resolver(&["10.0.0.0/8"], &[Forwarded]);
        assert_peer(from_proxy(&r, &one(XForwardedFor, "203.0.113.9")), None);
        assert_peer(from_proxy(&r, &one(XRealIp, "203.0.113.9")), None);
    }

    // ---- the walk ---------------------------------------------------------------------------

    #[test]
    fn chain_through_two_trusted_proxies() {
        let r = default_resolver();
        // client -> 10.1.1.1 (in the header) -> 10.0.0.1 (the peer)
        let got = from_proxy(&r, &one(XForwardedFor, "203.0.113.9, 10.1.1.1"));
        assert_client(got, "203.0.113.9", XForwardedFor);
        assert_eq!(got.key.to_string(), "203.0.113.9");
    }

    #[test]
    fn client_prepended_values_are_ignored() {
        let r = default_resolver();
        for value in [
            "1.1.1.1, 203.0.113.9, 10.1.1.1",
            "10.9.9.9, 203.0.113.9, 10.1.1.1", // a forged "trusted" value left of the answer
            "not-an-ip, 203.0.113.9, 10.1.1.1",
            "\"[;, , unknown, 203.0.113.9",
        ] {
            assert_client(
                from_proxy(&r, &one(XForwardedFor, value)),
                "203.0.113.9",
                XForwardedFor,
            );
        }
    }

    #[test]
    fn all_trusted_chain_yields_leftmost() {
        let r = default_resolver();
        assert_client(
            from_proxy(&r, &one(XForwardedFor, "10.3.3.3, 10.2.2.2, 10.1.1.1")),
            "10.3.3.3",
            XForwardedFor,
        );
        assert_client(
            from_proxy(&r, &one(Forwarded, "for=10.3.3.3, for=10.2.2.2")),
            "10.3.3.3",
            Forwarded,
        );
    }

    #[test]
    fn garbage_reached_by_the_walk_falls_back_to_peer() {
        let r = default_resolver();
        // The only non-proxy candidate is garbage: we cannot tell who the client is.
        assert_peer(
            from_proxy(&r, &one(XForwardedFor, "nonsense, 10.1.1.1")),
            Some((XForwardedFor, HeaderProblem::Syntax)),
        );
        assert_peer(
            from_proxy(&r, &one(XForwardedFor, "203.0.113.9, unknown")),
            Some((XForwardedFor, HeaderProblem::NotAnAddress)),
        );
        assert_peer(
            from_proxy(&r, &one(XForwardedFor, "1.2.3")),
            Some((XForwardedFor, HeaderProblem::Syntax)),
        );
        assert_peer(
            from_proxy(&r, &one(XForwardedFor, "010.0.0.1")),
            Some((XForwardedFor, HeaderProblem::Syntax)),
        );
    }

    // ---- Forwarded --------------------------------------------------------------------------

    #[test]
    fn forwarded_forms() {
        let r = default_resolver();
        let cases = [
            ("for=192.0.2.60", "192.0.2.60"),
            ("for=\"[2001:db8:cafe::17]:4711\"", "2001:db8:cafe::17"),
            ("for=\"[2001:db8:cafe::17]\"", "2001:db8:cafe::17"),
            ("for=\"192.0.2.43:47011\"", "192.0.2.43"),
            ("for=\"192.0.2.43:_obfport\"", "192.0.2.43"),
            ("FOR=192.0.2.60", "192.0.2.60"),
            ("For=192.0.2.60;proto=https;by=203.0.113.43", "192.0.2.60"),
            (
                "proto=https;by=\"[2001:db8::1]\";for=192.0.2.60",
                "192.0.2.60",
            ),
            ("for=192.0.2.60;;proto=http", "192.0.2.60"),
            (" for=192.0.2.60 ; proto=http ", "192.0.2.60"),
            ("for=\"\\1\\9\\2.0.2.60\"", "192.0.2.60"),
            (
                "for=\"[2001:db8:cafe::17]:4711\";host=\"a\\\"b,c;d\"",
                "2001:db8:cafe::17",
            ),
            // Unquoted though RFC 7239 wants quotes; unambiguous, so accepted.
            ("for=192.0.2.43:47011", "192.0.2.43"),
            ("for=[2001:db8::2]:80", "2001:db8::2"),
            // Multiple elements: the rightmost non-proxy wins.
            ("for=192.0.2.43, for=198.51.100.17", "198.51.100.17"),
            (
                "for=192.0.2.43, for=198.51.100.17;by=10.0.0.1, for=10.1.1.1",
                "198.51.100.17",
            ),
            // A quoted comma does not split elements.
            ("for=192.0.2.43;host=\"x,y\", for=10.1.1.1", "192.0.2.43"),
        ];
        for (value, want) in cases {
            assert_client(from_proxy(&r, &one(Forwarded, value)), want, Forwarded);
        }
    }

    #[test]
    fn forwarded_multiple_lines_are_one_list() {
        let r = resolver(&["10.0.0.0/8"], &[Forwarded]);
        let headers = map(&[
            (Forwarded, b"for=198.51.100.1"),
            (Forwarded, b"for=203.0.113.5, for=10.2.2.2"),
            (Forwarded, b"for=10.1.1.1"),
        ]);
        assert_client(from_proxy(&r, &headers), "203.0.113.5", Forwarded);

        let headers = map(&[
            (Forwarded, b"for=198.51.100.1"),
            (Forwarded, b"for=10.1.1.1"),
        ]);
        assert_client(from_proxy(&r, &headers), "198.51.100.1", Forwarded);
    }

    #[test]
    fn forwarded_non_addresses_reached_fall_back() {
        let r = default_resolver();
        let cases = [
            ("for=unknown", HeaderProblem::NotAnAddress),
            ("for=UNKNOWN", HeaderProblem::NotAnAddress),
            ("for=\"unknown:4711\"", HeaderProblem::NotAnAddress),
            ("for=\"_hidden\"", HeaderProblem::NotAnAddress),
            ("for=_SEVKISEK", HeaderProblem::NotAnAddress),
            ("for=_hidden, for=10.1.1.1", HeaderProblem::NotAnAddress),
            ("proto=https;by=10.0.0.1", HeaderProblem::NotAnAddress),
            ("for=192.0.2.60, ", HeaderProblem::Syntax),
            ("", HeaderProblem::Syntax),
            ("for=", HeaderProblem::Syntax),
            ("for=\"192.0.2.60", HeaderProblem::Syntax),
            ("for=\"192.0.2.60\"x", HeaderProblem::Syntax),
            ("for=192.0.2.60;for=192.0.2.61", HeaderProblem::Syntax),
            ("for=2001:db8::1", HeaderProblem::Syntax),
            ("for=\"[2001:db8::1\"", HeaderProblem::Syntax),
            ("for=\"[2001:db8::1]x\"", HeaderProblem::Syntax),
            ("for=\"[192.0.2.1]\"", HeaderProblem::Syntax),
            ("for=192.0.2.1:99999", HeaderProblem::Syntax),
            ("for=192.0.2.1:", HeaderProblem::Syntax),
            ("for=_", HeaderProblem::Syntax),
            ("for=\"_a b\"", HeaderProblem::Syntax),
            ("for", HeaderProblem::Syntax),
            ("=192.0.2.60", HeaderProblem::Syntax),
            ("f(r=192.0.2.60", HeaderProblem::Syntax),
            ("for=192.0.2.60 x", HeaderProblem::Syntax),
            ("for=\"192.0.2.60\\\"", HeaderProblem::Syntax),
        ];
        for (value, problem) in cases {
            assert_peer(
                from_proxy(&r, &one(Forwarded, value)),
                Some((Forwarded, problem)),
            );
        }
    }

    #[test]
    fn forwarded_garbage_left_of_the_answer_is_ignored() {
        let r = default_resolver();
        for value in [
            "for=unknown, for=203.0.113.9",
            "for=\"_hidden\", for=203.0.113.9, for=10.1.1.1",
            "garbage;;;===, for=203.0.113.9",
            "for=\"unterminated, for=203.0.113.9",
            "\"\\\"\\, for=203.0.113.9",
            "for=1.1.1.1;for=2.2.2.2, for=\"[2001:db8:cafe::17]:4711\", for=203.0.113.9",
        ] {
            assert_client(
                from_proxy(&r, &one(Forwarded, value)),
                "203.0.113.9",
                Forwarded,
            );
        }
        // And on an earlier line.
        let headers = map(&[(Forwarded, b"for=\"oops"), (Forwarded, b"for=203.0.113.9")]);
        assert_client(from_proxy(&r, &headers), "203.0.113.9", Forwarded);
    }

    #[test]
    fn forwarded_elements_split_from_the_right() {
        let split = |s: &str| -> Vec<String> {
            ForwardedElements::new(s.as_bytes())
                .map(|e| String::from_utf8(e.to_vec()).unwrap())
                .collect()
        };
        assert_eq!(split(""), [""]);
        assert_eq!(split("a,b"), ["b", "a"]);
        assert_eq!(split("a,"), ["", "a"]);
        assert_eq!(split("a=\"x,y\",b"), ["b", "a=\"x,y\""]);
        assert_eq!(split(r#"a="x\",y",b"#), ["b", r#"a="x\",y""#]);
        // An odd quote at the right end cannot be told apart from the right; it only ever
        // makes that (malformed) rightmost element larger.
        assert_eq!(split(r#"a="x\\",y""#), [r#"a="x\\",y""#]);
        // A stray quote left of a comma cannot swallow the elements to its right.
        assert_eq!(split("x\",y"), ["y", "x\""]);
    }

    // ---- X-Forwarded-For and X-Real-IP ------------------------------------------------------

    #[test]
    fn xff_forms() {
        let r = default_resolver();
        let cases = [
            ("203.0.113.9", "203.0.113.9"),
            ("  203.0.113.9  ", "203.0.113.9"),
            ("\t203.0.113.9,10.1.1.1\t", "203.0.113.9"),
            ("203.0.113.9:443", "203.0.113.9"),
            ("2001:db8::9", "2001:db8::9"),
            ("[2001:db8::9]", "2001:db8::9"),
            ("[2001:db8::9]:8080", "2001:db8::9"),
            (
                "198.51.100.1 ,203.0.113.9 , [2001:db8:ffff::1]:80",
                "203.0.113.9",
            ),
            // Empty elements left of the answer are never reached.
            (",,198.51.100.1, , 203.0.113.9", "203.0.113.9"),
            ("::ffff:203.0.113.9", "203.0.113.9"),
            ("[::ffff:203.0.113.9]:1", "203.0.113.9"),
        ];
        for (value, want) in cases {
            assert_client(
                from_proxy(&r, &one(XForwardedFor, value)),
                want,
                XForwardedFor,
            );
        }
    }

    #[test]
    fn xff_bad_forms_reached_fall_back() {
        let r = default_resolver();
        for value in [
            "",
            "  ",
            "203.0.113.9,",
            "203.0.113.9, ,10.1.1.1",
            "203.0.113.9:",
            "203.0.113.9:http",
            "203.0.113.9:65536",
            "[203.0.113.9]",
            "[2001:db8::9",
            "[2001:db8::9]:",
            "[2001:db8::9]x",
            "2001:db8::9:80:x",
            "fe80::1%eth0",
            "\"203.0.113.9\"",
        ] {
            assert_peer(
                from_proxy(&r, &one(XForwardedFor, value)),
                Some((XForwardedFor, HeaderProblem::Syntax)),
            );
        }
    }

    #[test]
    fn xff_multiple_lines_are_one_list() {
        let r = default_resolver();
        let headers = map(&[
            (XForwardedFor, b"198.51.100.1, 203.0.113.9"),
            (XForwardedFor, b"10.2.2.2"),
            (XForwardedFor, b" 10.1.1.1 "),
        ]);
        assert_client(from_proxy(&r, &headers), "203.0.113.9", XForwardedFor);

        let headers = map(&[
            (XForwardedFor, b"198.51.100.1"),
            (XForwardedFor, b"203.0.113.9"),
        ]);
        assert_client(from_proxy(&r, &headers), "203.0.113.9", XForwardedFor);
    }

    #[test]
    fn x_real_ip() {
        let r = resolver(&["10.0.0.0/8"], &[XRealIp]);
        for (value, want) in [
            ("203.0.113.9", "203.0.113.9"),
            (" 203.0.113.9:8080 ", "203.0.113.9"),
            ("[2001:db8::9]:8080", "2001:db8::9"),
            ("2001:db8::9", "2001:db8::9"),
            // Set by the trusted peer and the only element, so used even if it is a proxy.
            ("10.5.5.5", "10.5.5.5"),
        ] {
            assert_client(from_proxy(&r, &one(XRealIp, value)), want, XRealIp);
        }
        for value in ["203.0.113.9, 198.51.100.1", "", "nope"] {
            assert_peer(
                from_proxy(&r, &one(XRealIp, value)),
                Some((XRealIp, HeaderProblem::Syntax)),
            );
        }
        assert_peer(
            from_proxy(&r, &one(XRealIp, "unknown")),
            Some((XRealIp, HeaderProblem::NotAnAddress)),
        );
        // Two lines: no single value the peer set.
        let headers = map(&[(XRealIp, b"203.0.113.9"), (XRealIp, b"198.51.100.1")]);
        assert_peer(
            from_proxy(&r, &headers),
            Some((XRealIp, HeaderProblem::Syntax)),
        );
    }

    // ---- header choice ----------------------------------------------------------------------

    #[test]
    fn first_present_header_wins() {
        let r = resolver(&["10.0.0.0/8"], &[XRealIp, XForwardedFor]);
        let both = map(&[(XForwardedFor, b"198.51.100.1"), (XRealIp, b"203.0.113.9")]);
        assert_client(from_proxy(&r, &both), "203.0.113.9", XRealIp);

        let xff_only = one(XForwardedFor, "198.51.100.1");
        assert_client(from_proxy(&r, &xff_only), "198.51.100.1", XForwardedFor);

        // Present but unusable: no falling through to the next header.
        let bad_real_ip = map(&[(XForwardedFor, b"198.51.100.1"), (XRealIp, b"junk")]);
        assert_peer(
            from_proxy(&r, &bad_real_ip),
            Some((XRealIp, HeaderProblem::Syntax)),
        );

        // None present: the peer, no problem.
        assert_peer(from_proxy(&r, &one(Forwarded, "for=198.51.100.1")), None);

        let r = resolver(&["10.0.0.0/8"], &[XForwardedFor, XRealIp]);
        assert_client(from_proxy(&r, &both), "198.51.100.1", XForwardedFor);
    }

    // ---- limits -----------------------------------------------------------------------------

    /// `n` distinct trusted proxies, leftmost first: 10.0.0.n, ..., 10.0.0.1.
    fn trusted_hops(n: usize) -> Vec<String> {
        (1..=n)
            .rev()
            .map(|i| format!("10.0.{}.{}", i / 256, i % 256))
            .collect()
    }

    #[test]
    fn too_many_hops_counts_only_trusted_hops_walked() {
        let r = default_resolver();
        let xff = |hops: &[String]| one(XForwardedFor, &hops.join(", "));
        let fwd = |hops: &[String]| {
            let elements: Vec<String> = hops
                .iter()
                .map(|h| format!("for={h};host=\"a,b\""))
                .collect();
            one(Forwarded, &elements.join(", "))
        };

        // 32 trusted hops and nothing left of them: the all-trusted rule, leftmost wins.
        let mut hops = trusted_hops(32);
        assert_eq!(hops[0], "10.0.0.32");
        assert_client(from_proxy(&r, &xff(&hops)), "10.0.0.32", XForwardedFor);
        assert_client(from_proxy(&r, &fwd(&hops)), "10.0.0.32", Forwarded);

        // 31 trusted hops, then the client as hop 32: still inside the limit.
        hops[0] = "203.0.113.9".into();
        assert_client(from_proxy(&r, &xff(&hops)), "203.0.113.9", XForwardedFor);
        assert_client(from_proxy(&r, &fwd(&hops)), "203.0.113.9", Forwarded);

        // 32 trusted hops with anything at all left of them: the walk would have to read hop 33.
        for left in ["10.0.0.33", "203.0.113.9", "", "garbage"] {
            let mut hops = trusted_hops(32);
            hops.insert(0, left.into());
            assert_peer(
                from_proxy(&r, &xff(&hops)),
                Some((XForwardedFor, HeaderProblem::TooManyHops)),
            );
            assert_peer(
                from_proxy(&r, &fwd(&hops)),
                Some((Forwarded, HeaderProblem::TooManyHops)),
            );
        }
        let mut hops = trusted_hops(32);
        hops.insert(0, "203.0.113.9".into());
        let headers = map(&[
            (XForwardedFor, &b"\xff"[..]),
            (XForwardedFor, hops.join(",").as_bytes()),
        ]);
        assert_peer(
            from_proxy(&r, &headers),
            Some((XForwardedFor, HeaderProblem::TooManyHops)),
        );

        // Counted over all lines: 16 + 16 trusted is the limit, 11 + 11 + 11 is past it.
        let all = trusted_hops(33);
        let lines = [all[1..17].join(", "), all[17..].join(", ")];
        let headers = map(&[
            (XForwardedFor, lines[0].as_bytes()),
            (XForwardedFor, lines[1].as_bytes()),
        ]);
        assert_client(from_proxy(&r, &headers), "10.0.0.32", XForwardedFor);
        let lines = [
            all[..11].join(","),
            all[11..22].join(","),
            all[22..].join(","),
        ];
        let headers = map(&[
            (XForwardedFor, lines[0].as_bytes()),
            (XForwardedFor, lines[1].as_bytes()),
            (XForwardedFor, lines[2].as_bytes()),
        ]);
        assert_peer(
            from_proxy(&r, &headers),
            Some((XForwardedFor, HeaderProblem::TooManyHops)),
        );
    }

    #[test]
    fn many_hops_left_of_the_answer_are_ignored() {
        let r = default_resolver();
        for junk in ["x, ".repeat(1000), ",".repeat(40), "10.9.9.9, ".repeat(500)] {
            assert_client(
                from_proxy(
                    &r,
                    &one(XForwardedFor, &format!("{junk}203.0.113.9, 10.1.1.1")),
                ),
                "203.0.113.9",
                XForwardedFor,
            );
            assert_client(
                from_proxy(
                    &r,
                    &one(Forwarded, &format!("{junk}for=203.0.113.9, for=10.1.1.1")),
                ),
                "203.0.113.9",
                Forwarded,
            );
        }
        // Also as earlier lines of their own.
        let junk = ",".repeat(100);
        let headers = map(&[
            (XForwardedFor, junk.as_bytes()),
            (XForwardedFor, junk.as_bytes()),
            (XForwardedFor, b"203.0.113.9"),
        ]);
        assert_client(from_proxy(&r, &headers), "203.0.113.9", XForwardedFor);
        // 31 trusted proxies, the client as hop 32, then 900 more.
        let hops = trusted_hops(31).join(", ");
        let value = format!("{}198.51.100.7, {hops}", "1.1.1.1,".repeat(900));
        assert!(value.len() <= MAX_HEADER_BYTES);
        assert_client(
            from_proxy(&r, &one(XForwardedFor, &value)),
            "198.51.100.7",
            XForwardedFor,
        );
    }

    #[test]
    fn too_long() {
        let r = default_resolver();
        let exact = format!("{}203.0.113.9", " ".repeat(MAX_HEADER_BYTES - 11));
        assert_eq!(exact.len(), MAX_HEADER_BYTES);
        assert_client(
            from_proxy(&r, &one(XForwardedFor, &exact)),
            "203.0.113.9",
            XForwardedFor,
        );
        let over = format!(" {exact}");
        assert_peer(
            from_proxy(&r, &one(XForwardedFor, &over)),
            Some((XForwardedFor, HeaderProblem::TooLong)),
        );
        // Counted over all lines.
        let half = " ".repeat(MAX_HEADER_BYTES / 2);
        let headers = map(&[
            (Forwarded, half.as_bytes()),
            (Forwarded, half.as_bytes()),
            (Forwarded, b"for=203.0.113.9"),
        ]);
        assert_peer(
            from_proxy(&r, &headers),
            Some((Forwarded, HeaderProblem::TooLong)),
        );
    }

    #[test]
    fn not_utf8_in_a_hop_the_walk_reads() {
        let r = default_resolver();
        for (header, value) in [
            (XForwardedFor, &b"203.0.113.9\xff"[..]),
            (XForwardedFor, b"\xff, 10.1.1.1"),
            (XForwardedFor, b"203.0.113.9, 10.1.1.1\x80"),
            (XForwardedFor, b"203.0.113.9, 10.1\xc3\xa9.1.1"),
            (Forwarded, b"for=\"\xc3\xa9\", for=10.1.1.1"),
            (Forwarded, b"for=203.0.113.9;host=\"\xff\""),
            (Forwarded, b"for=203.0.113.9, for=10.1.1.1;by=\xfe"),
            (XRealIp, b"203.0.113.9\x80"),
            (XRealIp, b"\xff"),
        ] {
            let r2 = resolver(&["10.0.0.0/8"], &[header]);
            for r in [&r, &r2] {
                let got = from_proxy(r, &map(&[(header, value)]));
                assert_peer(got, Some((header, HeaderProblem::NotUtf8)));
            }
        }
    }

    #[test]
    fn bad_bytes_left_of_the_answer_are_ignored() {
        let r = default_resolver();
        for (header, value) in [
            (XForwardedFor, &b"\xff, 203.0.113.9"[..]),
            (XForwardedFor, b"\xff\xfe\x80, 203.0.113.9, 10.1.1.1"),
            (XForwardedFor, b"\xc3\xa9,203.0.113.9,10.1.1.1"),
            (XForwardedFor, b"1.1.1.1\xff\"[, 203.0.113.9"),
            (Forwarded, b"for=\"\xc3\xa9\", for=203.0.113.9"),
            (Forwarded, b"\xff, for=203.0.113.9, for=10.1.1.1"),
            // A stray quote or escape next to the bad bytes: still only the left element.
            (Forwarded, b"for=\"\xff, for=203.0.113.9"),
            (
                Forwarded,
                b"\xff\"\\, for=203.0.113.9;proto=https, for=\"[2001:db8:ffff::1]:80\"",
            ),
            (
                Forwarded,
                b"\"\xff\"\xff\", for=\"203.0.113.9:4711\", for=10.1.1.1",
            ),
        ] {
            let r2 = resolver(&["10.0.0.0/8", "2001:db8:ffff::/48"], &[header]);
            for r in [&r, &r2] {
                assert_client(
                    from_proxy(r, &map(&[(header, value)])),
                    "203.0.113.9",
                    header,
                );
            }
        }
        // On an earlier line of its own.
        for header in [XForwardedFor, Forwarded] {
            let answer: &[u8] = match header {
                Forwarded => b"for=203.0.113.9",
                _ => b"203.0.113.9",
            };
            let headers = map(&[(header, b"\xff\"\xff"), (header, answer)]);
            assert_client(from_proxy(&r, &headers), "203.0.113.9", header);
        }
    }

    // ---- normalisation ----------------------------------------------------------------------

    #[test]
    fn ipv4_mapped_normalisation() {
        assert_eq!(normalize(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
        assert_eq!(normalize(ip("::10.0.0.1")), ip("::10.0.0.1"));
        assert_eq!(normalize(ip("2001:db8::1")), ip("2001:db8::1"));
        assert_eq!(normalize(ip("10.0.0.1")), ip("10.0.0.1"));

        let r = resolver(&["10.0.0.0/8"], &[XForwardedFor]);
        assert!(r.is_trusted_proxy(ip("::ffff:10.0.0.1")));
        let got = r.resolve(
            Some(ip("::ffff:10.0.0.1")),
            &one(XForwardedFor, "::ffff:203.0.113.9, ::ffff:10.9.9.9"),
        );
        assert_client(got, "203.0.113.9", XForwardedFor);
        assert_eq!(got.key, r.key_for(ip("203.0.113.9")));

        // An untrusted mapped peer comes back as IPv4 too.
        let got = r.resolve(Some(ip("::ffff:198.51.100.1")), &HeaderMap::new());
        assert_eq!(got.ip, ip("198.51.100.1"));
        assert_eq!(got.key.to_string(), "198.51.100.1");
    }

    #[test]
    fn mapped_trusted_network_means_ipv4() {
        let r = resolver(&["::ffff:10.0.0.0/104"], &[XForwardedFor]);
        assert!(r.is_trusted_proxy(ip("10.1.2.3")));
        assert!(r.is_trusted_proxy(ip("::ffff:10.1.2.3")));
        assert!(!r.is_trusted_proxy(ip("11.0.0.1")));
        assert_client(
            r.resolve(Some(ip("10.0.0.1")), &one(XForwardedFor, "203.0.113.9")),
            "203.0.113.9",
            XForwardedFor,
        );
    }

    #[test]
    fn trusted_ipv6_proxy() {
        let r = default_resolver();
        assert!(r.is_trusted_proxy(ip("2001:db8:ffff:1::1")));
        assert!(!r.is_trusted_proxy(ip("2001:db8:fffe::1")));
        let got = r.resolve(
            Some(ip("2001:db8:ffff::1")),
            &one(
                Forwarded,
                "for=\"[2001:db8:1:2::9]:1\", for=\"[2001:db8:ffff::2]\"",
            ),
        );
        assert_client(got, "2001:db8:1:2::9", Forwarded);
        assert_eq!(got.key.to_string(), "2001:db8:1:2::/64");
    }

    // ---- grouping ---------------------------------------------------------------------------

    #[test]
    fn grouping_keys() {
        let r = resolver(&[], &[]);
        let a = r.key_for(ip("2001:db8:1:2::1"));
        let b = r.key_for(ip("2001:db8:1:2:ffff::9"));
        let c = r.key_for(ip("2001:db8:1:3::1"));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.to_string(), "2001:db8:1:2::/64");
        assert_eq!(a.network(), "2001:db8:1:2::/64".parse::<IpNet>().unwrap());
        assert_eq!(r.key_for(ip("203.0.113.7")).to_string(), "203.0.113.7");
        assert_ne!(r.key_for(ip("203.0.113.7")), r.key_for(ip("203.0.113.8")));
        assert_eq!(
            r.key_for(ip("::ffff:203.0.113.7")),
            r.key_for(ip("203.0.113.7"))
        );

        let r56 = ClientIpResolver::new(vec![], vec![], 32, 56);
        assert_eq!(
            r56.key_for(ip("2001:db8:1:2::1")),
            r56.key_for(ip("2001:db8:1:ff::1"))
        );
        assert_ne!(
            r56.key_for(ip("2001:db8:1:2::1")),
            r56.key_for(ip("2001:db8:1:100::1"))
        );
        assert_eq!(
            r56.key_for(ip("2001:db8:1:2::1")).to_string(),
            "2001:db8:1::/56"
        );

        let r24 = ClientIpResolver::new(vec![], vec![], 24, 64);
        assert_eq!(
            r24.key_for(ip("203.0.113.7")),
            r24.key_for(ip("203.0.113.200"))
        );
        assert_ne!(
            r24.key_for(ip("203.0.113.7")),
            r24.key_for(ip("203.0.114.7"))
        );
        assert_eq!(r24.key_for(ip("203.0.113.7")).to_string(), "203.0.113.0/24");

        let r128 = ClientIpResolver::new(vec![], vec![], 32, 128);
        assert_eq!(r128.key_for(ip("2001:db8::1")).to_string(), "2001:db8::1");
    }

    #[test]
    fn out_of_range_prefixes_are_clamped() {
        let r = ClientIpResolver::new(vec![], vec![], 0, 200);
        assert_eq!(r.key_for(ip("203.0.113.7")).to_string(), "128.0.0.0/1");
        assert_eq!(r.key_for(ip("2001:db8::1")).to_string(), "2001:db8::1");
        let r = ClientIpResolver::new(vec![], vec![], 99, 0);
        assert_eq!(r.key_for(ip("203.0.113.7")).to_string(), "203.0.113.7");
        assert_eq!(r.key_for(ip("2001:db8::1")).to_string(), "::/1");
    }

    #[test]
    fn client_key_serializes_as_display() {
        let r = ClientIpResolver::new(vec![], vec![], 24, 64);
        let keys = [
            r.key_for(ip("203.0.113.7")),
            r.key_for(ip("2001:db8:1:2::1")),
        ];
        assert_eq!(
            serde_json::to_string(&keys).unwrap(),
            r#"["203.0.113.0/24","2001:db8:1:2::/64"]"#
        );
        let host = default_resolver().key_for(ip("203.0.113.7"));
        assert_eq!(serde_json::to_string(&host).unwrap(), r#""203.0.113.7""#);
    }

    // ---- missing peer -----------------------------------------------------------------------

    #[test]
    fn missing_peer() {
        // Even trusting everything, headers are not believed without a peer.
        let r = resolver(&["0.0.0.0/0", "::/0"], &[XForwardedFor, Forwarded, XRealIp]);
        let got = r.resolve(None, &one(XForwardedFor, "203.0.113.9"));
        assert_eq!(got.ip, ip("0.0.0.0"));
        assert!(got.peer_missing);
        assert_eq!(got.via, None);
        assert_eq!(got.problem, None);
        assert_eq!(got.key.to_string(), "0.0.0.0");

        let present = r.resolve(Some(ip("10.0.0.1")), &HeaderMap::new());
        assert!(!present.peer_missing);
    }

    // ---- properties -------------------------------------------------------------------------

    /// Whether some substring of a line (raw, or with backslash escapes removed) parses to `ip`.
    fn appears_in(ip: IpAddr, lines: &[Vec<u8>]) -> bool {
        lines.iter().any(|line| {
            let unescaped: Vec<u8> = line.iter().copied().filter(|&b| b != b'\\').collect();
            [line.as_slice(), unescaped.as_slice()].iter().any(|s| {
                (0..s.len()).any(|i| {
                    (i + 1..=s.len()).any(|j| {
                        std::str::from_utf8(&s[i..j])
                            .ok()
                            .and_then(|t| t.parse::<IpAddr>().ok())
                            .is_some_and(|p| normalize(p) == ip)
                    })
                })
            })
        })
    }

    fn check_arbitrary(
        order: &[IpHeader],
        header: IpHeader,
        lines: &[Vec<u8>],
    ) -> Result<(), TestCaseError> {
        let lines: Vec<Vec<u8>> = lines
            .iter()
            .filter(|l| HeaderValue::from_bytes(l).is_ok())
            .cloned()
            .collect();
        let mut headers = HeaderMap::new();
        for l in &lines {
            headers.append(header.name().clone(), HeaderValue::from_bytes(l).unwrap());
        }
        let r = resolver(&["10.0.0.0/8", "2001:db8:ffff::/48"], order);
        let peer = ip(PROXY);
        let got = r.resolve(Some(peer), &headers);
        prop_assert_eq!(got.key, r.key_for(got.ip));
        prop_assert!(!got.peer_missing);
        match got.via {
            None => prop_assert_eq!(got.ip, peer),
            Some(via) => {
                prop_assert_eq!(via, header);
                prop_assert!(got.problem.is_none());
                prop_assert!(appears_in(got.ip, &lines), "{:?} not in header", got.ip);
            }
        }
        if let Some((h, _)) = got.problem {
            prop_assert_eq!(h, header);
        }
        Ok(())
    }

    fn header_strategy() -> impl Strategy<Value = IpHeader> {
        prop_oneof![Just(Forwarded), Just(XForwardedFor), Just(XRealIp)]
    }

    fn piece() -> impl Strategy<Value = Vec<u8>> {
        let fixed: &[&str] = &[
            ",",
            ", ",
            ";",
            "\"",
            "\\",
            "[",
            "]",
            ":",
            "=",
            " ",
            "\t",
            "for=",
            "FOR=",
            "proto=https",
            "by=",
            "unknown",
            "_hidden",
            "10.1.1.1",
            "10.0.0.1",
            "203.0.113.9",
            "198.51.100.7",
            "2001:db8::1",
            "2001:db8:ffff::1",
            "::ffff:203.0.113.9",
            "::ffff:10.2.2.2",
            "4711",
            "1.2.3",
            "0",
            "\u{e9}",
        ];
        prop_oneof![
            3 => proptest::sample::select(fixed).prop_map(|s| s.as_bytes().to_vec()),
            1 => any::<u8>().prop_map(|b| vec![b]),
        ]
    }

    fn structured_line() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(piece(), 0..16).prop_map(|p| p.concat())
    }

    /// Addresses for the well-formed chains: our proxies and clients, IPv4, IPv6 and mapped.
    const POOL: [&str; 6] = [
        "10.1.1.1",
        "203.0.113.9",
        "2001:db8:ffff::7",
        "2001:db8:1::9",
        "::ffff:10.2.2.2",
        "::ffff:198.51.100.7",
    ];

    /// One well-formed hop: `POOL[i]` in spelling `style`, quoted (`Forwarded` only) if `quote`.
    fn render_hop((i, style, quote): (usize, usize, bool), forwarded: bool) -> String {
        let a: IpAddr = POOL[i].parse().unwrap();
        let node = match (a, style) {
            (IpAddr::V4(v4), 1) => format!("{v4}:80"),
            (IpAddr::V6(v6), 1 | 2) => format!("[{v6}]:443"),
            (IpAddr::V6(v6), _) if forwarded => format!("[{v6}]"),
            (a, _) => a.to_string(),
        };
        if forwarded {
            let value = if quote || node.contains(':') {
                format!("\"{node}\"")
            } else {
                node
            };
            match style {
                3 => format!("proto=https;For={value};by=_x"),
                _ => format!("for={value}"),
            }
        } else {
            node
        }
    }

    /// The rightmost hop that is not a trusted proxy, if any.
    fn reference_walk(r: &ClientIpResolver, hops: &[(usize, usize, bool)]) -> Option<IpAddr> {
        hops.iter()
            .rev()
            .map(|&(i, _, _)| normalize(POOL[i].parse().unwrap()))
            .find(|&a| !r.is_trusted_proxy(a))
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_and_only_yield_header_addresses(
            header in header_strategy(),
            lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..4),
        ) {
            check_arbitrary(&[XForwardedFor, Forwarded, XRealIp], header, &lines)?;
        }

        #[test]
        fn structured_garbage_never_panics_and_only_yields_header_addresses(
            header in header_strategy(),
            lines in proptest::collection::vec(structured_line(), 1..4),
        ) {
            check_arbitrary(&[XRealIp, Forwarded, XForwardedFor], header, &lines)?;
        }

        /// Well-formed chains in assorted spellings always resolve like the reference walk.
        #[test]
        fn well_formed_chains_match_reference_walk(
            hops in proptest::collection::vec((0usize..6, 0usize..4, any::<bool>()), 1..12),
            forwarded in any::<bool>(),
            split in 0usize..12,
        ) {
            let rendered: Vec<String> =
                hops.iter().map(|&hop| render_hop(hop, forwarded)).collect();
            let split = split.min(rendered.len());
            let mut lines = vec![rendered[..split].join(", "), rendered[split..].join(" ,")];
            lines.retain(|l| !l.is_empty());

            let header = if forwarded { Forwarded } else { XForwardedFor };
            let r = default_resolver();
            let mut headers = HeaderMap::new();
            for l in &lines {
                headers.append(header.name().clone(), HeaderValue::from_str(l).unwrap());
            }
            let want = reference_walk(&r, &hops)
                .unwrap_or_else(|| normalize(POOL[hops[0].0].parse().unwrap()));
            let got = from_proxy(&r, &headers);
            prop_assert_eq!(got.ip, want, "{:?}", lines);
            prop_assert_eq!(got.via, Some(header));
            prop_assert_eq!(got.problem, None);
        }

        /// Whatever a client puts left of a chain (bad bytes, quotes, escapes, thousands of
        /// elements) never changes the answer once the chain holds a hop that is not ours.
        #[test]
        fn left_junk_never_changes_the_answer(
            hops in proptest::collection::vec((0usize..6, 0usize..4, any::<bool>()), 1..12),
            forwarded in any::<bool>(),
            junk in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..64),
                structured_line(),
                (1usize..2000).prop_map(|n| vec![b','; n]),
            ],
            own_line in any::<bool>(),
        ) {
            let r = default_resolver();
            let want = reference_walk(&r, &hops);
            prop_assume!(want.is_some());
            // Whatever a header value can carry at all: no controls but tab, no DEL.
            let junk: Vec<u8> = junk
                .into_iter()
                .filter(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
                .collect();
            let chain = hops
                .iter()
                .map(|&hop| render_hop(hop, forwarded))
                .collect::<Vec<_>>()
                .join(", ");
            let lines: Vec<Vec<u8>> = if own_line {
                vec![junk, chain.into_bytes()]
            } else {
                vec![[junk.as_slice(), b", ", chain.as_bytes()].concat()]
            };

            let header = if forwarded { Forwarded } else { XForwardedFor };
            let mut headers = HeaderMap::new();
            for l in &lines {
                headers.append(header.name().clone(), HeaderValue::from_bytes(l).unwrap());
            }
            let got = from_proxy(&r, &headers);
            prop_assert_eq!(Some(got.ip), want, "{:?}", lines);
            prop_assert_eq!(got.via, Some(header));
            prop_assert_eq!(got.problem, None);
        }
    }
}
