//! The right-to-left walk over a forwarding header's hops, and the checks every hop shares.
//!
//! The work is bounded by what the walk reads, never by the header's length: at most
//! [`MAX_HOPS`] hops, each split off from the right by a scan of at most [`MAX_HOP_BYTES`]
//! bytes. Whatever lies left of the answer is never scanned, so a client cannot make the header
//! unusable by padding it.

use std::net::{IpAddr, Ipv4Addr};

use super::{HeaderProblem, Trusted};
use crate::net::normalize;

/// Most hops the walk reads: after this many trusted proxies with more hops still to their
/// left, it gives up. The peer itself is not counted; hops left of the answer never are.
pub const MAX_HOPS: usize = 32;

/// Longest hop the walk reads, in bytes (an `X-Forwarded-For` entry or a whole `Forwarded`
/// element with its other parameters). A real one is well under 300 bytes.
pub const MAX_HOP_BYTES: usize = 1024;

/// One hop as split off from the right: its bytes, or [`HeaderProblem::TooLong`] when it is
/// longer than [`MAX_HOP_BYTES`] (the splitter then stops without reading further left).
pub(super) type Hop<'a> = Result<&'a [u8], HeaderProblem>;

/// A hop as the walk receives it: its text, or its address when the splitter already read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Split<'a> {
    /// The hop's bytes, for the byte check and the parser.
    Text(&'a [u8]),
    /// A hop the splitter read in the same pass: one that passes the byte check and that the
    /// parser reads as this (normalised) address.
    Addr(IpAddr),
}

/// Walks hops right to left and returns the first one that is not a trusted proxy, or the
/// leftmost when all are. Hops left of the answer are never looked at, not even for their bytes.
///
/// At most [`MAX_HOPS`] hops are read: 32 trusted proxies with nothing left of them still yield
/// the leftmost, but a 33rd hop (whatever it holds) is [`HeaderProblem::TooManyHops`].
pub(super) fn walk<'a>(
    hops: impl Iterator<Item = Result<Split<'a>, HeaderProblem>>,
    parse: fn(&[u8]) -> Result<IpAddr, HeaderProblem>,
    trusted: &Trusted,
) -> Result<IpAddr, HeaderProblem> {
    let mut leftmost = None;
    for (read, hop) in hops.enumerate() {
        if read == MAX_HOPS {
            return Err(HeaderProblem::TooManyHops);
        }
        let ip = match hop? {
            Split::Addr(ip) => ip,
            Split::Text(hop) => {
                check_hop_bytes(hop)?;
                normalize(parse(hop)?)
            }
        };
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
    /// Whether a plain dotted-quad hop is read in the same backward pass that finds its comma
    /// (always, but for the tests that check it against the plain split).
    quick: bool,
}

impl<'a> ListHops<'a> {
    pub(super) fn new(line: &'a [u8]) -> Self {
        Self {
            line,
            end: Some(line.len()),
            quick: true,
        }
    }

    /// Splits only, leaving every hop to the byte check and the parser.
    #[cfg(test)]
    pub(super) fn plain(line: &'a [u8]) -> Self {
        Self {
            quick: false,
            ..Self::new(line)
        }
    }
}

impl<'a> Iterator for ListHops<'a> {
    type Item = Result<Split<'a>, HeaderProblem>;

    fn next(&mut self) -> Option<Self::Item> {
        let end = self.end?;
        if self.quick {
            if let Some((ip, start)) = dotted_quad_before(self.line, end) {
                // The hop starts the line, or follows the comma at `start - 1`: where the plain
                // split below would put it, as the hop holds no comma and is short enough.
                self.end = start.checked_sub(1);
                return Some(Ok(Split::Addr(ip)));
            }
        }
        // A hop of at most MAX_HOP_BYTES has its comma within the last MAX_HOP_BYTES + 1 bytes.
        let from = end.saturating_sub(MAX_HOP_BYTES + 1);
        let window = self.line.get(from..end)?;
        match window.iter().rposition(|&b| b == b',') {
            Some(i) => {
                let comma = from + i;
                self.end = Some(comma);
                self.line
                    .get(comma + 1..end)
                    .map(|hop| Ok(Split::Text(hop)))
            }
            None => {
                self.end = None;
                Some(if end <= MAX_HOP_BYTES {
                    Ok(Split::Text(window))
                } else {
                    Err(HeaderProblem::TooLong)
                })
            }
        }
    }
}

/// The hop of `line` that ends at `end`, read backwards in one pass when it is a plain dotted
/// quad with optional whitespace around it (the form almost every hop takes): its address and
/// where it starts, right after a comma or at the start of the line. `None` for anything else,
/// which the plain split and the parser then handle.
///
/// `Some` only when the hop, `line[start..end]`, holds no comma, is at most [`MAX_HOP_BYTES`]
/// long, passes [`check_hop_bytes`] (digits, dots, spaces and tabs only) and, trimmed, is exactly
/// what `Ipv4Addr::from_str` accepts: four octets of 1 to 3 digits, no leading zero, at most
/// 255. Reads no byte left of `end - MAX_HOP_BYTES - 1`.
#[inline]
fn dotted_quad_before(line: &[u8], end: usize) -> Option<(IpAddr, usize)> {
    let line = line.get(..end)?;
    // The hop's first byte may not lie left of `floor`; `line[i - 1]` is read only for
    // `i > floor`, and once more at the end for the comma (at `floor - 1` at the furthest).
    let floor = end.saturating_sub(MAX_HOP_BYTES);
    let digit = |i: usize| -> Option<u32> {
        let d = line[i.checked_sub(1).filter(|_| i > floor)?].wrapping_sub(b'0');
        (d <= 9).then_some(u32::from(d))
    };
    let mut i = end;
    while i > floor && matches!(line[i - 1], b' ' | b'\t') {
        i -= 1;
    }
    let mut addr = 0u32;
    for k in 0..4 {
        if k > 0 {
            if i == floor || line[i - 1] != b'.' {
                return None;
            }
            i -= 1;
        }
        // One to three digits, read right to left; the leftmost may be 0 only if alone.
        let mut value = digit(i)?;
        i -= 1;
        if let Some(tens) = digit(i) {
            i -= 1;
            value += 10 * tens;
            let lead = match digit(i) {
                Some(hundreds) => {
                    i -= 1;
                    value += 100 * hundreds;
                    if digit(i).is_some() {
                        return None;
                    }
                    hundreds
                }
                None => tens,
            };
            if lead == 0 || value > 255 {
                return None;
            }
        }
        addr |= value << (8 * k);
    }
    while i > floor && matches!(line[i - 1], b' ' | b'\t') {
        i -= 1;
    }
    let ip = IpAddr::V4(Ipv4Addr::from(addr));
    match i.checked_sub(1) {
        None => Some((ip, 0)),
        Some(comma) if line[comma] == b',' => Some((ip, i)),
        Some(_) => None,
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
