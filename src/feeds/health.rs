//! A summary of the feeds' state for a dashboard or a health check: [`FeedHealth`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use super::{FeedKind, FeedWarning};

/// What [`Feeds::health`](super::Feeds::health) reports: how much each kind of feed holds,
/// when the table was last (re)loaded, and what went wrong.
///
/// Worked out when the feeds are loaded and after each reload pass, so reading it costs a
/// few small copies (the warnings are shared, not copied). Serialises to JSON as
/// `{"ranges": {"hosting": 62403, …}, "loaded_at": "2026-…Z", "checked_at": "…",
/// "warnings": [{"path": "…", "line": 3, "message": "…"}], "reload_failures": 0}`, with
/// times in RFC 3339 (UTC).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct FeedHealth {
    /// Distinct networks listed with each kind, by the lines of every feed together (a network
    /// listed as both `vpn` and `hosting` counts once under each; one nested in a range of
    /// another kind counts only under its own). Kinds with no network are left out.
    pub ranges: BTreeMap<FeedKind, usize>,
    /// When the table in force was built: the first load, or the last reload that took new
    /// ranges. The wall clock (`SystemTime::now`) at that moment.
    #[serde(serialize_with = "rfc3339")]
    pub loaded_at: SystemTime,
    /// When the files were last checked for changes (the last reload pass, whether or not a
    /// file had changed); `loaded_at` until the first pass.
    #[serde(serialize_with = "rfc3339")]
    pub checked_at: SystemTime,
    /// Problems seen so far while loading and reloading (the latest 1000), oldest first: what
    /// [`Feeds::warnings`](super::Feeds::warnings) lists.
    pub warnings: Arc<[FeedWarning]>,
    /// Reloads of a feed that failed so far (the file could not be read, or had no usable
    /// line any more; the feed kept its previous ranges each time).
    pub reload_failures: u64,
}

impl FeedHealth {
    /// The state of a table built now, before any reload pass.
    pub(super) fn new(ranges: BTreeMap<FeedKind, usize>, now: SystemTime) -> Self {
        FeedHealth {
            ranges,
            loaded_at: now,
            checked_at: now,
            warnings: Arc::from([]),
            reload_failures: 0,
        }
    }
}

impl Serialize for FeedWarning {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("FeedWarning", 3)?;
        // Lossy rather than an error for a path that is not UTF-8.
        s.serialize_field("path", &self.path.to_string_lossy())?;
        s.serialize_field("line", &self.line)?;
        s.serialize_field("message", &self.message)?;
        s.end()
    }
}

/// A `SystemTime` as RFC 3339 text in UTC, to the nanosecond.
fn rfc3339<S: Serializer>(t: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&crate::clock::rfc3339(*t, false))
}
