//! `X-Forwarded-For` entries and the `X-Real-IP` value: `ip`, `ip:port` or `[v6]:port`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::walk::{ascii_str, check_hop_bytes, is_port, trim_ows, MAX_HOP_BYTES};
use super::HeaderProblem;
use crate::net::normalize;

/// The one `X-Real-IP` line: a single address set by the trusted peer.
pub(super) fn parse_real_ip(value: &[u8]) -> Result<IpAddr, HeaderProblem> {
    if value.len() > MAX_HOP_BYTES {
        return Err(HeaderProblem::TooLong);
    }
    check_hop_bytes(value)?;
    if value.contains(&b',') {
        return Err(HeaderProblem::Syntax);
    }
    parse_hop(value).map(normalize)
}

/// The form almost every hop takes, a plain dotted-quad IPv4 address with optional whitespace
/// around it, read in one pass; `None` for anything else, which then takes the full path
/// ([`check_hop_bytes`] and [`parse_hop_full`]).
///
/// `Some` only for text that the full path reads as the same address: every byte is a digit, a
/// dot, a space or a tab (so the byte check passes), and the trimmed text is exactly what
/// `Ipv4Addr::from_str` accepts: four octets of 1 to 3 digits, no leading zero, at most 255.
#[inline]
pub(super) fn fast_v4(hop: &[u8]) -> Option<IpAddr> {
    let s = trim_ows(hop);
    let mut octets = [0u8; 4];
    let mut i = 0;
    for (k, octet) in octets.iter_mut().enumerate() {
        if k > 0 {
            if s.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let start = i;
        let mut value = 0u32;
        while let Some(digit) = s.get(i).map(|b| b.wrapping_sub(b'0')).filter(|d| *d <= 9) {
            if i - start == 3 {
                return None;
            }
            value = value * 10 + u32::from(digit);
            i += 1;
        }
        if i == start || (i - start > 1 && s.get(start) == Some(&b'0')) {
            return None;
        }
        *octet = u8::try_from(value).ok()?;
    }
    (i == s.len()).then(|| IpAddr::V4(Ipv4Addr::from(octets)))
}

/// One `X-Forwarded-For` / `X-Real-IP` entry: `ip`, `ip:port` or `[v6]:port`, with optional
/// whitespace around it.
pub(super) fn parse_hop(hop: &[u8]) -> Result<IpAddr, HeaderProblem> {
    match fast_v4(hop) {
        Some(ip) => Ok(ip),
        None => parse_hop_full(hop),
    }
}

/// [`parse_hop`] for every form, without the fast path.
pub(super) fn parse_hop_full(hop: &[u8]) -> Result<IpAddr, HeaderProblem> {
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
