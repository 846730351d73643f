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

/// One `X-Forwarded-For` / `X-Real-IP` entry: `ip`, `ip:port` or `[v6]:port`, with optional
/// whitespace around it.
pub(super) fn parse_hop(hop: &[u8]) -> Result<IpAddr, HeaderProblem> {
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
