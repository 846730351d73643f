//! Stricter rules for admin paths: a lower score ceiling, refused flags, an optional network
//! allowlist, and an event for every access, allowed or refused.
//!
//! Paths are compared after normalisation, so `//admin`, `/admin/../admin`, `/%61dmin`,
//! `/%2561dmin` (double encoding), `/ADMIN`, `/admin;x=1` and `\admin` all count as `/admin`.
//! A configured prefix matches itself and everything below it on a segment boundary: `/admin`
//! covers `/admin`, `/admin/` and `/admin/users`, not `/administrators`.
//!
//! A path that cannot be normalised (a broken percent escape, a NUL byte, bytes that are not
//! UTF-8 once decoded) is treated as an admin path when the policy fails closed (the default),
//! and as an ordinary path when it fails open.

use std::borrow::Cow;

use crate::prefix_table::PrefixTable;
use crate::verdict::{BlockReason, Flag, Flags, IpVerdict};

/// How an admin policy treats a path it cannot normalise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Fail {
    /// Treat it as an admin path (the default).
    #[default]
    Closed,
    /// Treat it as an ordinary path.
    Open,
}

/// Rounds of percent-decoding: enough to see through double and triple encoding.
const DECODE_ROUNDS: usize = 3;

/// Why a path could not be normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadPath;

/// The compiled admin policy.
#[derive(Debug, Clone)]
pub(crate) struct AdminPolicy {
    /// Normalised, lowercase, without a trailing slash (`""` for `/`).
    prefixes: Vec<String>,
    max_score: u8,
    deny: Flags,
    allow_only: Option<PrefixTable<()>>,
    fail: Fail,
}

/// What the admin policy says about a request on an admin path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AdminCheck {
    /// The client may use it.
    Allowed,
    /// Refused, for this reason.
    Refused(BlockReason),
}

impl AdminPolicy {
    pub(crate) fn new(
        paths: &[String],
        max_score: u8,
        deny: Flags,
        allow_only: Option<PrefixTable<()>>,
        fail: Fail,
    ) -> Result<Self, BadPath> {
        let mut prefixes = Vec::with_capacity(paths.len());
        for path in paths {
            let mut p = normalize_path(path)?.into_owned();
            if p == "/" {
                p.clear();
            }
            prefixes.push(p);
        }
        Ok(AdminPolicy {
            prefixes,
            max_score,
            deny,
            allow_only,
            fail,
        })
    }

    /// Whether `raw_path` (as received, percent-encoded) is under an admin prefix.
    pub(crate) fn covers(&self, raw_path: &str) -> bool {
        match normalize_path(raw_path) {
            Ok(path) => self.prefixes.iter().any(|p| under(&path, p)),
            Err(BadPath) => self.fail == Fail::Closed,
        }
    }

    /// Applies the policy to a request on an admin path. Allow rules skip the score and flag
    /// checks but not `allow_only`: the network allowlist is the stricter promise.
    pub(crate) fn check(&self, verdict: &IpVerdict) -> AdminCheck {
        if let Some(allowed) = &self.allow_only {
            if !allowed.contains(verdict.ip()) {
                return AdminCheck::Refused(BlockReason::Restricted);
            }
        }
        if verdict.has(Flag::Allowlisted) {
            return AdminCheck::Allowed;
        }
        if verdict.score() >= self.max_score || verdict.flags().intersects(self.deny) {
            return AdminCheck::Refused(BlockReason::Risk);
        }
        AdminCheck::Allowed
    }
}

/// `path` equals `prefix` or lies below it (`prefix` normalised, no trailing slash).
fn under(path: &str, prefix: &str) -> bool {
    path.len() >= prefix.len()
        && path.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
        && matches!(path.as_bytes().get(prefix.len()), None | Some(b'/'))
}

/// Normalises a request path for comparison: percent-decoding (up to three rounds),
/// backslashes as slashes, `;parameters` dropped from segments, empty and `.` segments
/// removed, `..` resolved, ASCII lowercase. Clean paths are returned without allocating.
pub(crate) fn normalize_path(raw: &str) -> Result<Cow<'_, str>, BadPath> {
    if is_clean(raw) {
        return Ok(Cow::Borrowed(raw));
    }
    let mut bytes = raw.as_bytes().to_vec();
    for _ in 0..DECODE_ROUNDS {
        if !bytes.contains(&b'%') {
            break;
        }
        bytes = percent_decode(&bytes)?;
    }
    if bytes.contains(&0) {
        return Err(BadPath);
    }
    let decoded = String::from_utf8(bytes).map_err(|_| BadPath)?;
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split(['/', '\\']) {
        let segment = segment.split(';').next().unwrap_or("");
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(decoded.len() + 1);
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if out.is_empty() {
        out.push('/');
    }
    out.make_ascii_lowercase();
    Ok(Cow::Owned(out))
}

/// A path that normalisation would leave unchanged: starts with `/`, no escapes, backslashes,
/// parameters, empty, `.` or `..` segments, and no uppercase.
fn is_clean(raw: &str) -> bool {
    let b = raw.as_bytes();
    if b.first() != Some(&b'/') {
        return false;
    }
    if b.iter()
        .any(|c| matches!(c, b'%' | b'\\' | b';') || c.is_ascii_uppercase())
    {
        return false;
    }
    // Every segment after the leading slash: none empty (except a trailing one), `.` or `..`.
    let mut segments = raw[1..].split('/').peekable();
    while let Some(s) = segments.next() {
        let last = segments.peek().is_none();
        if (s.is_empty() && !last) || s == "." || s == ".." {
            return false;
        }
    }
    true
}

fn percent_decode(input: &[u8]) -> Result<Vec<u8>, BadPath> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%' {
            let hex = input.get(i + 1..i + 3).ok_or(BadPath)?;
            let hi = (hex[0] as char).to_digit(16).ok_or(BadPath)?;
            let lo = (hex[1] as char).to_digit(16).ok_or(BadPath)?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin(paths: &[&str]) -> AdminPolicy {
        let paths: Vec<String> = paths.iter().map(|s| s.to_string()).collect();
        AdminPolicy::new(&paths, 60, Flags::empty(), None, Fail::Closed).unwrap()
    }

    #[test]
    fn tricks_do_not_slip_past() {
        let policy = admin(&["/admin"]);
        for path in [
            "/admin",
            "/admin/",
            "/admin/users",
            "//admin",
            "///admin//users",
            "/admin/../admin",
            "/x/../admin/",
            "/./admin",
            "/%61dmin",
            "/%2561dmin",
            "/%252561dmin",
            "/ADMIN",
            "/Admin/Users",
            "/admin;jsessionid=1/",
            "/admin%2f",
            "/%2e%2e/admin",
            "\\admin",
            "/static/..%2fadmin",
            "/static/..%252fadmin",
        ] {
            assert!(policy.covers(path), "{path} slipped past");
        }
        for path in [
            "/",
            "/administrators",
            "/static/admin.css",
            "/ad/min",
            "/api",
        ] {
            assert!(!policy.covers(path), "{path} is not an admin path");
        }
    }

    #[test]
    fn broken_paths_follow_the_failure_policy() {
        let closed = admin(&["/admin"]);
        let open =
            AdminPolicy::new(&["/admin".into()], 60, Flags::empty(), None, Fail::Open).unwrap();
        for path in ["/%zzadmin", "/admin%", "/%00admin", "/%ff%feadmin"] {
            assert!(closed.covers(path), "{path}");
            assert!(!open.covers(path), "{path}");
        }
    }

    #[test]
    fn clean_paths_do_not_allocate() {
        assert!(matches!(
            normalize_path("/api/v1/items"),
            Ok(Cow::Borrowed(_))
        ));
        assert!(matches!(normalize_path("/"), Ok(Cow::Borrowed(_))));
        assert_eq!(normalize_path("//a/./b/../c;x").unwrap(), "/a/c");
        assert_eq!(normalize_path("/../..").unwrap(), "/");
    }

    #[test]
    fn a_root_prefix_covers_everything() {
        let policy = admin(&["/"]);
        assert!(policy.covers("/anything"));
        assert!(policy.covers("/"));
    }
}
