//! Reading one feed file: its lines, in the feed's format, into ranges and warnings.

use std::path::Path;

use ipnet::IpNet;

use super::compile::Interner;
use super::{FeedConfig, FeedFormat, FeedKind, FeedWarning};
use crate::net::{parse_network, NetworkError};

/// Malformed lines reported one by one per file read; the rest are counted in one summary, so
/// a file in the wrong format does not flood the log.
pub(super) const MAX_LINE_WARNINGS: usize = 20;

/// One parsed range, as kept per feed between reloads.
#[derive(Clone, Copy)]
pub(super) struct Range {
    pub(super) net: IpNet,
    pub(super) kind: FeedKind,
    /// Interned provider id.
    pub(super) provider: u32,
}

/// The outcome of reading one feed file.
pub(super) struct Parsed {
    pub(super) ranges: Vec<Range>,
    pub(super) malformed: usize,
    /// Valid `tsv` lines skipped because the feed keeps only one kind.
    pub(super) other_kinds: usize,
}

/// Parses a whole file; malformed lines are reported to `notes` and skipped.
pub(super) fn parse_feed(
    bytes: &[u8],
    config: &FeedConfig,
    interner: &mut Interner,
    notes: &mut Vec<FeedWarning>,
) -> Parsed {
    // Lossy: a stray invalid byte spoils one line (reported), not the whole feed.
    let text = String::from_utf8_lossy(bytes);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let path = &config.path;
    let mut parsed = Parsed {
        ranges: Vec::with_capacity(text.len() / 24),
        malformed: 0,
        other_kinds: 0,
    };
    for (n, line) in text.lines().enumerate() {
        let result = match config.format {
            FeedFormat::Netset => parse_plain(line, '#', config.kind),
            FeedFormat::Drop => parse_plain(line, ';', config.kind),
            FeedFormat::Tsv => parse_tsv(line),
        };
        match result {
            Ok(None) => {}
            Ok(Some((net, kind, provider))) => {
                if config.kind.is_some_and(|want| want != kind) {
                    parsed.other_kinds += 1;
                    continue;
                }
                parsed.ranges.push(Range {
                    net,
                    kind,
                    provider: interner.intern(provider),
                });
            }
            Err(message) => {
                parsed.malformed += 1;
                if parsed.malformed <= MAX_LINE_WARNINGS {
                    report(notes, path, n + 1, format!("{message}; line skipped"));
                }
            }
        }
    }
    if parsed.malformed > MAX_LINE_WARNINGS {
        let more = parsed.malformed - MAX_LINE_WARNINGS;
        let message = format!(
            "{more} more malformed lines skipped (only the first {MAX_LINE_WARNINGS} are listed)"
        );
        report(notes, path, 0, message);
    }
    parsed.ranges.shrink_to_fit();
    parsed
}

/// A parsed line: network, kind and provider (empty for none).
type Line<'a> = Option<(IpNet, FeedKind, &'a str)>;

/// A `netset` or `drop` line: one network before the comment character.
fn parse_plain(line: &str, comment: char, kind: Option<FeedKind>) -> Result<Line<'_>, String> {
    let body = line.split(comment).next().unwrap_or("").trim();
    if body.is_empty() {
        return Ok(None);
    }
    if body.contains(char::is_whitespace) {
        return Err(format!("expected one network per line, found {body:?}"));
    }
    // `load` rejects netset/drop feeds without a kind before any line is read.
    let kind = kind.ok_or_else(|| "the feed has no kind".to_owned())?;
    Ok(Some((line_network(body)?, kind, "")))
}

/// A `tsv` line: `cidr<TAB>kind<TAB>provider`, the provider possibly empty or missing.
fn parse_tsv(line: &str) -> Result<Line<'_>, String> {
    let trimmed = line.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Ok(None);
    }
    // Only the line ending goes: a full `trim` would eat the tab before an empty provider.
    let line = line.trim_end_matches('\r');
    let mut fields = line.split('\t');
    let (Some(net), Some(kind), provider, None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        let found = line.split('\t').count();
        return Err(format!(
            "expected `cidr<TAB>kind<TAB>provider`, found {found} tab-separated field{}",
            if found == 1 { "" } else { "s" }
        ));
    };
    let net = line_network(net.trim())?;
    let kind = kind.trim();
    let kind = kind
        .parse::<FeedKind>()
        .map_err(|e| format!("unknown kind {kind:?}: {e}"))?;
    Ok(Some((net, kind, provider.unwrap_or("").trim())))
}

/// A CIDR network or a bare address, with the crate's one set of rules (host bits must be clear,
/// IPv4-mapped IPv6 is stored as IPv4); the error is the message for the line's warning.
fn line_network(s: &str) -> Result<IpNet, String> {
    parse_network(s).map_err(|e| match e {
        NetworkError::NotANetwork => format!("not an IP address or network: {s:?}"),
        NetworkError::HostBits => match s.trim().parse::<IpNet>() {
            Ok(net) => format!(
                "{s:?} has host bits set; write the network address ({})",
                net.trunc()
            ),
            Err(_) => format!("{s:?}: {e}"),
        },
    })
}

/// Logs a warning about `path` (line 0: the whole file) and keeps it in `notes`.
pub(super) fn report(notes: &mut Vec<FeedWarning>, path: &Path, line: usize, message: String) {
    tracing::warn!(target: "actix_bouncer", path = %path.display(), line, "feed: {message}");
    notes.push(FeedWarning {
        path: path.to_owned(),
        line,
        message,
    });
}
