//! Stricter rules for admin paths: a lower score ceiling, refused flags, an optional network
//! allowlist, and an event for every access, allowed or refused.
//!
//! Paths are matched as the router dispatches them (see [`path_match`](crate::path_match)):
//! `/%61dmin` and `//ADMIN/` are `/admin`. A path that cannot be normalised is treated as an
//! admin path when the policy fails closed (the default), and as an ordinary path when it fails
//! open.
//!
//! With `counters_fail = "closed"`, admin paths are refused (429, `Retry-After: 1`) while a
//! counter store shared by several instances (Redis) cannot be reached, whatever the store's
//! own policy for other paths: their limits are then enforced only per instance.
//!
//! A client that could not be determined (see [`client_ip`](crate::client_ip)) never passes
//! `allow_only`: its address is unknown, and the proxy in front of it is not the client.

use crate::path_match::{Fail, PathPrefixes};
use crate::prefix_table::PrefixTable;
use crate::verdict::{BlockReason, Flag, Flags, IpVerdict};

/// The compiled admin policy.
#[derive(Debug, Clone)]
pub(crate) struct AdminPolicy {
    pub(crate) paths: PathPrefixes,
    pub(crate) max_score: u8,
    pub(crate) deny: Flags,
    pub(crate) allow_only: Option<PrefixTable<()>>,
    pub(crate) fail: Fail,
    /// While the shared counter store is unreachable: refuse (`Closed`) or count locally.
    pub(crate) counters_fail: Fail,
}

impl AdminPolicy {
    /// Whether `raw_path` (as received, percent-encoded) is an admin path.
    pub(crate) fn covers(&self, raw_path: &str) -> bool {
        self.paths.covers(raw_path, self.fail)
    }

    /// Applies the policy to a request on an admin path; `Some` refuses, with the reason.
    /// Allow rules skip the score and flag checks but not `allow_only`: the network allowlist
    /// is the stricter promise.
    pub(crate) fn refuses(&self, verdict: &IpVerdict) -> Option<BlockReason> {
        if let Some(allowed) = &self.allow_only {
            if !verdict.client_known() || !allowed.contains(verdict.ip()) {
                return Some(BlockReason::Restricted);
            }
        }
        if verdict.has(Flag::Allowlisted) {
            return None;
        }
        (verdict.score() >= self.max_score || verdict.flags().intersects(self.deny))
            .then_some(BlockReason::Risk)
    }
}
