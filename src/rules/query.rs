//! What readers and trimmers ask a rule store for: pages of rules by filter, and which expired
//! rules to trim.

use std::time::{Duration, SystemTime};

use super::model::{Rule, RuleAction, RuleId, RuleSource, RuleTarget};

/// Most rules a page holds.
pub const MAX_PAGE: usize = 1000;

/// The most rules of a part of a listing a SQL store examines for one page with a state
/// filter ([`RuleState`]: it depends on the time, so no index answers it), so that a page
/// costs the same however rare the rules it asks for are (some milliseconds on SQLite with a
/// million rules). When the rules passing the other filters (source, action, target) hold no
/// full page of rules in that state among their next `LIST_SCAN_MAX`, the page holds those
/// found, possibly none, and its [`next`](RulePage::next) cursor is where the examination
/// stopped: follow it as usual. Without a state filter every page is full but the last.
pub const LIST_SCAN_MAX: usize = 20_000;

/// Whether a rule matches now, or has expired.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
    strum::VariantNames,
)]
#[cfg_attr(feature = "admin-api", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
#[non_exhaustive]
pub enum RuleState {
    /// It has no expiry, or its expiry is still ahead.
    Active,
    /// Its expiry has passed.
    Expired,
}

/// Which rules a page holds. Every field left at `None` (the default) matches every rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RuleFilter {
    /// Only rules on exactly this target (not the networks around it).
    pub target: Option<RuleTarget>,
    /// Only rules with this action.
    pub action: Option<RuleAction>,
    /// Only rules from this source.
    pub source: Option<RuleSource>,
    /// Only active, or only expired, rules.
    pub state: Option<RuleState>,
}

impl RuleFilter {
    /// Whether `rule` passes the filter at `now`.
    pub fn matches(&self, rule: &Rule, now: SystemTime) -> bool {
        self.target.as_ref().is_none_or(|t| *t == rule.target)
            && self.action.is_none_or(|a| a == rule.action)
            && self.source.is_none_or(|s| s == rule.source)
            && self
                .state
                .is_none_or(|s| (s == RuleState::Active) == rule.is_active_at(now))
    }
}

/// A page request: rules by ascending id, after a cursor, passing a filter.
///
/// ```
/// use actix_bouncer::rules::{ListQuery, RuleSource, RuleState};
///
/// // The first 50 automatic rules still in force.
/// let query = ListQuery::first(50).source(RuleSource::Auto).state(RuleState::Active);
/// assert_eq!(query.limit, 50);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListQuery {
    /// Rules with an id above this one; `None` for the first page.
    pub after: Option<RuleId>,
    /// At most this many (1 to [`MAX_PAGE`]).
    pub limit: usize,
    /// Which rules.
    pub filter: RuleFilter,
}

impl ListQuery {
    /// The first page of `limit` rules (clamped to 1..=[`MAX_PAGE`]), unfiltered.
    pub fn first(limit: usize) -> Self {
        ListQuery {
            after: None,
            limit: limit.clamp(1, MAX_PAGE),
            filter: RuleFilter::default(),
        }
    }

    /// The page after `id`.
    pub fn after(mut self, id: RuleId) -> Self {
        self.after = Some(id);
        self
    }

    /// Only rules on exactly `target`.
    pub fn target(mut self, target: RuleTarget) -> Self {
        self.filter.target = Some(target);
        self
    }

    /// Only rules with `action`.
    pub fn action(mut self, action: RuleAction) -> Self {
        self.filter.action = Some(action);
        self
    }

    /// Only rules from `source`.
    pub fn source(mut self, source: RuleSource) -> Self {
        self.filter.source = Some(source);
        self
    }

    /// Only active, or only expired, rules.
    pub fn state(mut self, state: RuleState) -> Self {
        self.filter.state = Some(state);
        self
    }

    /// The limit, clamped to 1..=[`MAX_PAGE`] (the field is public, so a store must not trust
    /// it).
    pub fn page_size(&self) -> usize {
        self.limit.clamp(1, MAX_PAGE)
    }
}

impl Default for ListQuery {
    /// The first page of 100 rules, unfiltered.
    fn default() -> Self {
        ListQuery::first(100)
    }
}

/// One page of rules. A page may hold fewer rules than asked for, and still have a next one,
/// when a SQL store stopped examining rules for a state filter (see [`LIST_SCAN_MAX`]): the
/// listing ends when `next` is `None`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "admin-api", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct RulePage {
    /// The rules, by ascending id.
    pub rules: Vec<Rule>,
    /// The cursor of the next page, when there may be one.
    pub next: Option<RuleId>,
}

impl RulePage {
    /// A page of `rules` from a store that fetched one more than `limit` to learn whether
    /// another page follows.
    pub fn from_probe(mut rules: Vec<Rule>, limit: usize) -> Self {
        let more = rules.len() > limit;
        rules.truncate(limit);
        let next = more.then(|| rules.last().map(|r| r.id)).flatten();
        RulePage { rules, next }
    }
}

/// Which expired rules to remove: those that expired at least `expired_days` ago and were
/// created at least `created_days` ago (django-blacklist's `trim_blacklist -e/-c`). Rules
/// that never expire, and active ones, are never trimmed.
///
/// ```
/// use actix_bouncer::rules::Trim;
///
/// // Rules that expired more than a week ago.
/// let trim = Trim::default().expired_days(7);
/// assert_eq!(trim.created_days, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[cfg_attr(feature = "admin-api", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Trim {
    /// Least age of creation, in days. Default 0.
    pub created_days: u32,
    /// Least age of expiry, in days. Default 0: every expired rule.
    pub expired_days: u32,
}

impl Trim {
    /// Sets the least age of creation, in days.
    pub fn created_days(mut self, days: u32) -> Self {
        self.created_days = days;
        self
    }

    /// Sets the least age of expiry, in days.
    pub fn expired_days(mut self, days: u32) -> Self {
        self.expired_days = days;
        self
    }

    /// The instants the store compares against at `now`: created at or before the first,
    /// expired at or before the second.
    pub fn cutoffs(self, now: SystemTime) -> (SystemTime, SystemTime) {
        let back = |days: u32| {
            now.checked_sub(Duration::from_secs(u64::from(days) * 86_400))
                .unwrap_or(SystemTime::UNIX_EPOCH)
        };
        (back(self.created_days), back(self.expired_days))
    }
}
