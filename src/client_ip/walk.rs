//! The right-to-left walk over a forwarding header's hops, and the checks every hop shares.
//!
//! The work is bounded by what the walk reads, never by the header's length: at most
//! [`MAX_HOPS`] hops, each split off from the right by a scan of at most [`MAX_HOP_BYTES`]
//! bytes. Whatever lies left of the answer is never scanned, so a client cannot make the header
//! unusable by padding it.

use std::net::IpAddr;

use super::HeaderProblem;
use crate::net::normalize;
use crate::prefix_table::PrefixTable;

/// Most hops the walk reads: after this many trusted proxies with more hops still to their
/// left, it gives up. The peer itself is not counted; hops left of the answer never are.
pub const MAX_HOPS: usize = 32;

/// Longest hop the walk reads, in bytes (an `X-Forwarded-For` entry or a whole `Forwarded`
/// element with its other parameters). A real one is well under 300 bytes.
pub const MAX_HOP_BYTES: usize = 1024;

/// One hop as split off from the right: its bytes, or [`HeaderProblem::TooLong`] when it is
/// longer than [`MAX_HOP_BYTES`] (the splitter then stops without reading further left).
pub(super) type Hop<'a> = Result<&'a [u8], HeaderProblem>;

/// Walks hops right to left and returns the first one that is not a trusted proxy, or the
/// leftmost when all are. Hops left of the answer are never looked at, not even for their bytes.
///
/// At most [`MAX_HOPS`] hops are read: 32 trusted proxies with nothing left of them still yield
/// the leftmost, but a 33rd hop (whatever it holds) is [`HeaderProblem::TooManyHops`].
pub(super) fn walk<'a>(
    hops: impl Iterator<Item = Hop<'a>>,
    parse: fn(&[u8]) -> Result<IpAddr, HeaderProblem>,
    trusted: &PrefixTable<()>,
) -> Result<IpAddr, HeaderProblem> {
    let mut leftmost = None;
    for (read, hop) in hops.enumerate() {
        if read == MAX_HOPS {
            return Err(HeaderProblem::TooManyHops);
        }
        let hop = hop?;
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

/// Splits one comma-separated line (`X-Forwarded-For`) into hops from the right.
pub(super) struct ListHops<'a> {
    line: &'a [u8],
    /// Exclusive end of the part not yet returned; `None` once the line is exhausted.
    end: Option<usize>,
}

impl<'a> ListHops<'a> {
    pub(super) fn new(line: &'a [u8]) -> Self {
        Self {
            line,
            end: Some(line.len()),
        }
    }
}

impl<'a> Iterator for ListHops<'a> {
    type Item = Hop<'a>;

    fn next(&mut self) -> Option<Hop<'a>> {
        let end = self.end?;
        // A hop of at most MAX_HOP_BYTES has its comma within the last MAX_HOP_BYTES + 1 bytes.
        let from = end.saturating_sub(MAX_HOP_BYTES + 1);
        let window = self.line.get(from..end)?;
        match window.iter().rposition(|&b| b == b',') {
            Some(i) => {
                let comma = from + i;
                self.end = Some(comma);
                self.line.get(comma + 1..end).map(Ok)
            }
            None => {
                self.end = None;
                Some(if end <= MAX_HOP_BYTES {
                    Ok(window)
                } else {
                    Err(HeaderProblem::TooLong)
                })
            }
        }
    }
}

/// None of these headers has any business outside tab and printable ASCII; checked on each hop
/// the walk reads, this also makes every slice the parsers see valid UTF-8.
pub(super) fn check_hop_bytes(hop: &[u8]) -> Result<(), HeaderProblem> {
    if hop.iter().all(|&b| b == b'\t' || (0x20..0x7f).contains(&b)) {
        Ok(())
    } else {
        Err(HeaderProblem::NotUtf8)
    }
}

/// 1 to 5 digits, at most 65535.
pub(super) fn is_port(s: &str) -> bool {
    (1..=5).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) && s.parse::<u16>().is_ok()
}

/// Optional whitespace (space, tab) trimmed from both ends.
pub(super) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// The bytes as text; the hop was checked to be ASCII already, so this only guards against misuse.
pub(super) fn ascii_str(s: &[u8]) -> Result<&str, HeaderProblem> {
    std::str::from_utf8(s).map_err(|_| HeaderProblem::NotUtf8)
}
