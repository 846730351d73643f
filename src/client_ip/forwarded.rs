//! RFC 7239 `Forwarded` elements: split from the right, then read for their `for` node.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::walk::{ascii_str, is_port, trim_ows, Hop, MAX_HOP_BYTES};
use super::HeaderProblem;

/// Room for an unescaped node; a real node is at most ~55 bytes
/// (`[` IPv6-with-embedded-IPv4 `]:` port), so anything longer cannot be an address.
const MAX_NODE_BYTES: usize = 128;

/// Splits one `Forwarded` line into elements from the right, honouring quoted strings (a comma
/// inside quotes does not split). Scanning from the right means a malformed prefix that a client
/// sent cannot change how the elements our proxies appended are read; each element is found by
/// a scan of at most [`MAX_HOP_BYTES`] bytes, so a long prefix is never read either.
pub(super) struct Elements<'a> {
    line: &'a [u8],
    /// Exclusive end of the part not yet returned; `None` once the line is exhausted.
    end: Option<usize>,
}

impl<'a> Elements<'a> {
    pub(super) fn new(line: &'a [u8]) -> Self {
        Self {
            line,
            end: Some(line.len()),
        }
    }

    /// The rest of the line as the last (leftmost) element, if it is short enough to read.
    fn rest(&mut self, end: usize) -> Option<Hop<'a>> {
        self.end = None;
        Some(if end <= MAX_HOP_BYTES {
            self.line.get(..end).ok_or(HeaderProblem::Syntax)
        } else {
            Err(HeaderProblem::TooLong)
        })
    }
}

impl<'a> Iterator for Elements<'a> {
    type Item = Hop<'a>;

    fn next(&mut self) -> Option<Hop<'a>> {
        let end = self.end?;
        let line = self.line;
        // An element of at most MAX_HOP_BYTES has its comma at or after `floor`.
        let floor = end.saturating_sub(MAX_HOP_BYTES + 1);
        let mut i = end;
        while i > floor {
            let at = i - 1;
            match line[at] {
                b',' => {
                    self.end = Some(at);
                    return line.get(at + 1..end).map(Ok);
                }
                b'"' => match opening_quote(line, at, floor) {
                    Some(open) => i = open,
                    // Unterminated: the rest of the line is one (malformed) element.
                    None => return self.rest(end),
                },
                _ => i = at,
            }
        }
        self.rest(end)
    }
}

/// The index of the quote that opens the quoted string closed at `close`, looking no further
/// left than `floor`; `None` when there is none that far. A quote preceded by an odd run of
/// backslashes is escaped: inside a quoted string backslashes pair up from the left, and a run
/// always starts on a pair boundary (a run that reaches `floor` above the line's start cannot be
/// told, and counts as no opening quote).
fn opening_quote(s: &[u8], close: usize, floor: usize) -> Option<usize> {
    let mut j = close;
    while j > floor {
        j -= 1;
        if s[j] == b'"' {
            let run = s[floor..j]
                .iter()
                .rev()
                .take_while(|&&b| b == b'\\')
                .count();
            if floor > 0 && run == j - floor {
                return None;
            }
            if run % 2 == 0 {
                return Some(j);
            }
        }
    }
    None
}

/// One `Forwarded` element: `;`-separated `name=value` pairs; returns the `for` node's address.
pub(super) fn parse_element(element: &[u8]) -> Result<IpAddr, HeaderProblem> {
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

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}
