//! Addresses and networks as every part of the crate sees them: IPv4-mapped IPv6 folded to
//! IPv4, and one parser for the networks written in rules, feeds and config.

use std::fmt;
use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net};

/// IPv4-mapped IPv6 to IPv4; everything else unchanged.
///
/// ```
/// use actix_bouncer::net::normalize;
/// assert_eq!(normalize("::ffff:10.0.0.1".parse().unwrap()).to_string(), "10.0.0.1");
/// ```
#[inline]
pub fn normalize(ip: IpAddr) -> IpAddr {
    // `to_canonical` maps only `::ffff:a.b.c.d`, not the deprecated IPv4-compatible `::a.b.c.d`.
    ip.to_canonical()
}

/// Host bits cleared, and an IPv4-mapped IPv6 network (`::ffff:10.0.0.0/104`) rewritten as the
/// IPv4 network it means, since every address is normalised to IPv4 before a comparison.
pub fn normalize_net(net: IpNet) -> IpNet {
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

/// Why a network could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NetworkError {
    /// Neither an address nor a CIDR network.
    NotANetwork,
    /// A CIDR network with host bits set (`10.1.2.3/8`): rejected rather than widened silently.
    HostBits,
}

impl fmt::Display for NetworkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NetworkError::NotANetwork => {
                "expected an IP address or a CIDR network such as 10.0.0.0/8"
            }
            NetworkError::HostBits => {
                "the network has host bits set; write the network address (e.g. 10.0.0.0/8)"
            }
        })
    }
}

impl std::error::Error for NetworkError {}

/// A CIDR network or a single address (as a full-length network), IPv4-mapped IPv6 stored as
/// IPv4; host bits must be clear. Surrounding whitespace is ignored.
///
/// ```
/// use actix_bouncer::net::{parse_network, NetworkError};
/// assert_eq!(parse_network("203.0.113.7").unwrap().to_string(), "203.0.113.7/32");
/// assert_eq!(parse_network("::ffff:10.0.0.0/104").unwrap().to_string(), "10.0.0.0/8");
/// assert_eq!(parse_network("10.1.2.3/8"), Err(NetworkError::HostBits));
/// ```
pub fn parse_network(s: &str) -> Result<IpNet, NetworkError> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(normalize_net(IpNet::from(ip)));
    }
    let net: IpNet = s.parse().map_err(|_| NetworkError::NotANetwork)?;
    if net.trunc() != net {
        return Err(NetworkError::HostBits);
    }
    Ok(normalize_net(net))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_parse_normalised() {
        assert_eq!(
            parse_network(" 10.0.0.0/8 ").unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(
            parse_network("2001:db8::/32").unwrap().to_string(),
            "2001:db8::/32"
        );
        assert_eq!(
            parse_network("::ffff:203.0.113.7").unwrap().to_string(),
            "203.0.113.7/32"
        );
        assert_eq!(parse_network("nonsense"), Err(NetworkError::NotANetwork));
        assert_eq!(parse_network("10.0.0.0/33"), Err(NetworkError::NotANetwork));
        assert_eq!(parse_network("10.1.0.0/8"), Err(NetworkError::HostBits));
        // Only IPv4-mapped addresses fold; the deprecated IPv4-compatible form stays IPv6.
        let compatible: IpAddr = "::10.0.0.1".parse().unwrap();
        assert_eq!(normalize(compatible), compatible);
    }
}
