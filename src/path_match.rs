//! Path prefixes matched the way the router dispatches: decoded and normalised, on segment
//! boundaries. One matcher for every path-based policy (admin paths, reputation critical paths).
//!
//! actix routes on the percent-decoded path, so `/%6Cogin` reaches the `/login` handler: a
//! prefix check on the raw path would let it slip past. Paths are therefore compared after
//! normalisation, so `//admin`, `/admin/../admin`, `/%61dmin`, `/%2561dmin` (double encoding),
//! `/ADMIN`, `/admin;x=1` and `\admin` all count as `/admin`. A prefix matches itself and
//! everything below it on a segment boundary: `/admin` covers `/admin`, `/admin/` and
//! `/admin/users`, not `/administrators`. Matching ignores ASCII case, erring on the side of the
//! policy.
//!
//! A path that cannot be normalised (a broken percent escape, a NUL byte, bytes that are not
//! UTF-8 once decoded) matches nothing by itself; each policy decides what to do with it through
//! its [`Fail`] setting.

use std::borrow::Cow;

/// What a check does when it cannot decide: a path it cannot decode, a reputation wait that
/// ends without an answer.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Default,
    strum::IntoStaticStr,
    strum::Display,
    strum::VariantArray,
    strum::VariantNames,
)]
#[strum(serialize_all = "lowercase")]
pub enum Fail {
    /// Apply the policy (refuse, or treat the path as covered). The default.
    #[default]
    Closed,
    /// Let the request through.
    Open,
}

/// Rounds of percent-decoding: enough to see through double and triple encoding.
const DECODE_ROUNDS: usize = 3;

/// A path that cannot be normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadPath;

/// Whether a request path is under a set of prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathMatch {
    /// Under one of the prefixes.
    Under,
    /// Under none.
    Outside,
    /// The path cannot be normalised.
    Undecodable,
}

/// A set of path prefixes, normalised once.
///
/// ```
/// use actix_bouncer::path_match::{PathMatch, PathPrefixes};
///
/// let login = PathPrefixes::new(["/login"]).unwrap();
/// assert_eq!(login.check("/%6Cogin"), PathMatch::Under);
/// assert_eq!(login.check("/login/2fa"), PathMatch::Under);
/// assert_eq!(login.check("/loginfoo"), PathMatch::Outside);
/// assert_eq!(login.check("/%zz"), PathMatch::Undecodable);
///
/// let assets = PathPrefixes::new(["/static/"]).unwrap();
/// assert_eq!(assets.check("/static/app.css"), PathMatch::Under);
/// assert_eq!(assets.check("/staticfoo"), PathMatch::Outside);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPrefixes {
    /// Normalised, lowercase, without a trailing slash (`""` for `/`).
    prefixes: Vec<String>,
}

impl PathPrefixes {
    /// The prefixes `paths`; each must start with `/` and be valid once decoded.
    pub fn new<I, S>(paths: I) -> Result<Self, BadPath>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut prefixes = Vec::new();
        for path in paths {
            let path = path.as_ref();
            if !path.starts_with('/') {
                return Err(BadPath);
            }
            // Without its trailing slash (`/` becomes `""`): `/static/` covers `/static`,
            // `/static/` and everything below, on a segment boundary.
            let p = normalize_path(path)?;
            prefixes.push(p.trim_end_matches('/').to_owned());
        }
        Ok(PathPrefixes { prefixes })
    }

    /// Whether there are no prefixes.
    pub fn is_empty(&self) -> bool {
        self.prefixes.is_empty()
    }

    /// Where `raw_path` (as received, percent-encoded) stands.
    pub fn check(&self, raw_path: &str) -> PathMatch {
        match normalize_path(raw_path) {
            Ok(path) if self.prefixes.iter().any(|p| under(&path, p)) => PathMatch::Under,
            Ok(_) => PathMatch::Outside,
            Err(BadPath) => PathMatch::Undecodable,
        }
    }

    /// Whether `raw_path` is covered: under a prefix, or undecodable when `fail` is
    /// [`Fail::Closed`].
    pub fn covers(&self, raw_path: &str, fail: Fail) -> bool {
        match self.check(raw_path) {
            PathMatch::Under => true,
            PathMatch::Outside => false,
            PathMatch::Undecodable => fail == Fail::Closed,
        }
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

    fn prefixes(paths: &[&str]) -> PathPrefixes {
        PathPrefixes::new(paths).unwrap()
    }

    #[test]
    fn tricks_do_not_slip_past() {
        let admin = prefixes(&["/admin"]);
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
            assert_eq!(admin.check(path), PathMatch::Under, "{path} slipped past");
        }
        for path in [
            "/",
            "/administrators",
            "/static/admin.css",
            "/ad/min",
            "/api",
        ] {
            assert_eq!(admin.check(path), PathMatch::Outside, "{path}");
        }
    }

    #[test]
    fn broken_paths_follow_the_failure_policy() {
        let admin = prefixes(&["/admin"]);
        for path in ["/%zzadmin", "/admin%", "/%00admin", "/%ff%feadmin"] {
            assert_eq!(admin.check(path), PathMatch::Undecodable, "{path}");
            assert!(admin.covers(path, Fail::Closed), "{path}");
            assert!(!admin.covers(path, Fail::Open), "{path}");
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
        let root = prefixes(&["/"]);
        assert_eq!(root.check("/anything"), PathMatch::Under);
        assert_eq!(root.check("/"), PathMatch::Under);
    }

    #[test]
    fn prefixes_must_be_paths() {
        assert_eq!(PathPrefixes::new(["login"]), Err(BadPath));
        assert_eq!(PathPrefixes::new(["/%zz"]), Err(BadPath));
        assert!(PathPrefixes::new(Vec::<String>::new()).unwrap().is_empty());
    }
}
