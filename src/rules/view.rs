//! What lookups read: the compiled base, a small overlay of recent additions, and the ids of
//! recent removals, swapped in whole.
//!
//! Compiling a million rules takes a third of a second, so a change is not compiled into the
//! base at once: an addition goes into the overlay (a snapshot of at most a few hundred rules,
//! quick to build) and a removal into `removed`, and the worker folds both into a new base a
//! moment later, batching the changes that arrive together.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use super::model::RuleId;
use super::snapshot::{unix_nanos, RuleCounts, RuleSnapshot};
use super::RuleMatch;

/// One published state of the rules.
#[derive(Debug, Default)]
pub(super) struct RuleView {
    pub(super) base: Arc<RuleSnapshot>,
    /// Recent additions, not yet in `base`.
    pub(super) overlay: Option<RuleSnapshot>,
    /// Recent removals, possibly still in `base` (or in `overlay`).
    pub(super) removed: HashSet<RuleId, foldhash::fast::RandomState>,
    /// The rules of `base` and `overlay` by source, action and kind, less the removals whose
    /// rule the worker knew (see [`Rules::counts`](super::Rules::counts)).
    pub(super) counts: RuleCounts,
}

impl RuleView {
    /// The active rules matching `ip` (normalised; `None` for an unknown client) and `user` at
    /// the time `now` gives (read at most once, and only when a candidate rule expires).
    #[inline]
    pub(super) fn check(
        &self,
        ip: Option<IpAddr>,
        user: Option<&str>,
        now: impl Fn() -> SystemTime,
    ) -> RuleMatch {
        if self.base.is_empty() && self.overlay.is_none() {
            return RuleMatch::default();
        }
        let mut cached = None;
        let mut now = || *cached.get_or_insert_with(|| unix_nanos(now()));
        let removed = &self.removed;
        let skip = |id: RuleId| !removed.is_empty() && removed.contains(&id);
        let mut found = self.base.find(ip, user, &mut now, skip);
        if let (None, Some(overlay)) = (found.allow, &self.overlay) {
            found.merge(overlay.find(ip, user, &mut now, skip));
        }
        match found.allow {
            Some(id) => RuleMatch {
                allow: Some(id),
                ..RuleMatch::default()
            },
            None => RuleMatch {
                allow: None,
                block: found.block.map(|(_, c)| c.id),
                block_expires: found.block.and_then(|(_, c)| c.expires_at()),
                block_source: found.block.map(|(_, c)| c.source),
            },
        }
    }
}
