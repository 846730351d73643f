//! Blacklist and allowlist rules: IPs, networks and users, each with an optional expiry.
//!
//! Rules live in a [`Rules`] handle. Every change compiles a new immutable [`RuleSnapshot`]
//! (a longest-prefix-match table plus a user map) and swaps it in atomically, so the request
//! path reads rules without taking a lock.
//!
//! Precedence: an active `allow` rule that matches the client's address, any network around
//! it, or its user wins over everything (no counting, no ban, no block). Otherwise an active
//! `block` rule blocks. Expired rules never match; they stay listed until removed.
//!
//! ```
//! use std::time::Duration;
//! use actix_bouncer::rules::{NewRule, Rules};
//!
//! # actix_web::rt::System::new().block_on(async {
//! let rules = Rules::new();
//! let rule = rules
//!     .add(NewRule::block("203.0.113.0/24".parse()?).expires_after(Duration::from_secs(3600)))
//!     .await?;
//! assert_eq!(rules.check("203.0.113.9".parse()?, None).block, Some(rule.id));
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use ipnet::IpNet;
use serde::{Serialize, Serializer};

use crate::client_ip::normalize;
use crate::clock::{Clock, SystemClock};
use crate::config::{parse_network, NetworkError};
use crate::prefix_table::PrefixTable;

/// A rule's identifier, unique within its [`Rules`] handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct RuleId(pub u64);

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleAction {
    /// Refuse the client (403, reason `blacklisted`).
    Block,
    /// Let the client through untouched: no counting, no ban, no block.
    Allow,
}

impl RuleAction {
    /// `"block"` or `"allow"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            RuleAction::Block => "block",
            RuleAction::Allow => "allow",
        }
    }
}

impl FromStr for RuleAction {
    type Err = InvalidTarget;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "block" => Ok(RuleAction::Block),
            "allow" => Ok(RuleAction::Allow),
            _ => Err(InvalidTarget("expected \"block\" or \"allow\"")),
        }
    }
}

/// Who a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RuleTarget {
    /// An address (a full-length network) or a network.
    Network(IpNet),
    /// A user id, as returned by the bouncer's user hook.
    User(String),
}

impl RuleTarget {
    /// A single address.
    pub fn ip(ip: IpAddr) -> Self {
        let ip = normalize(ip);
        RuleTarget::Network(IpNet::from(ip))
    }
}

/// Why a rule target or action could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidTarget(&'static str);

impl fmt::Display for InvalidTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for InvalidTarget {}

/// Parses `203.0.113.7`, `203.0.113.0/24`, `2001:db8::/32` or `user:<id>`.
///
/// A network with host bits set (`10.1.2.3/8`) is rejected rather than widened silently.
impl FromStr for RuleTarget {
    type Err = InvalidTarget;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Some(user) = s.strip_prefix("user:") {
            return if user.is_empty() {
                Err(InvalidTarget("`user:` needs an id after the colon"))
            } else {
                Ok(RuleTarget::User(user.to_owned()))
            };
        }
        match parse_network(s) {
            Ok(net) => Ok(RuleTarget::Network(net)),
            Err(NetworkError::HostBits) => Err(InvalidTarget(NetworkError::HOST_BITS)),
            Err(NetworkError::NotANetwork) => Err(InvalidTarget(
                "expected an IP address, a CIDR network such as 203.0.113.0/24, or user:<id>",
            )),
        }
    }
}

impl fmt::Display for RuleTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleTarget::Network(net) if net.prefix_len() == net.max_prefix_len() => {
                write!(f, "{}", net.addr())
            }
            RuleTarget::Network(net) => write!(f, "{net}"),
            RuleTarget::User(user) => write!(f, "user:{user}"),
        }
    }
}

impl Serialize for RuleTarget {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// When a new rule stops matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// At an absolute time.
    At(SystemTime),
    /// This long after the rule is created.
    After(Duration),
}

/// A rule to add; the handle gives it an id and a creation time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRule {
    /// Who the rule applies to.
    pub target: RuleTarget,
    /// What it does.
    pub action: RuleAction,
    /// When it stops matching; `None` (the default) means never.
    pub expires: Option<Expiry>,
    /// Free text for operators; no comment by default.
    pub comment: Option<String>,
}

impl NewRule {
    /// A rule with no expiry and no comment.
    pub fn new(action: RuleAction, target: RuleTarget) -> Self {
        NewRule {
            target,
            action,
            expires: None,
            comment: None,
        }
    }

    /// A block rule for `target`.
    pub fn block(target: RuleTarget) -> Self {
        Self::new(RuleAction::Block, target)
    }

    /// An allow rule for `target`.
    pub fn allow(target: RuleTarget) -> Self {
        Self::new(RuleAction::Allow, target)
    }

    /// Stops matching at `at`.
    pub fn expires_at(mut self, at: SystemTime) -> Self {
        self.expires = Some(Expiry::At(at));
        self
    }

    /// Stops matching `after` its creation.
    pub fn expires_after(mut self, after: Duration) -> Self {
        self.expires = Some(Expiry::After(after));
        self
    }

    /// Attaches a comment.
    pub fn comment(mut self, comment: impl Into<String>) -> Self {
        self.comment = Some(comment.into());
        self
    }
}

/// A rule held by a [`Rules`] handle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// Its identifier.
    pub id: RuleId,
    /// Who it applies to.
    pub target: RuleTarget,
    /// What it does.
    pub action: RuleAction,
    /// When it stops matching (RFC 3339 in JSON); `None` means never.
    #[serde(serialize_with = "ser_opt_time")]
    pub expires: Option<SystemTime>,
    /// Free text for operators.
    pub comment: Option<String>,
    /// When it was added (RFC 3339 in JSON).
    #[serde(serialize_with = "ser_time")]
    pub created: SystemTime,
}

impl Rule {
    /// Whether the rule matches at `now` (it has not expired).
    pub fn is_active_at(&self, now: SystemTime) -> bool {
        self.expires.is_none_or(|at| now < at)
    }
}

fn rfc3339(t: SystemTime) -> String {
    let nanos = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    };
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn ser_time<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*t))
}

fn ser_opt_time<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => ser_time(t, s),
        None => s.serialize_none(),
    }
}

/// Why a rule change was refused.
#[derive(Debug)]
#[non_exhaustive]
pub enum RuleError {
    /// The rule's expiry is already in the past, so it would never match.
    AlreadyExpired,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleError::AlreadyExpired => f.write_str("the rule's expiry is already in the past"),
        }
    }
}

impl std::error::Error for RuleError {}

/// The active rules that match a client, most specific first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuleMatch {
    /// An allow rule that matched; it wins over everything.
    pub allow: Option<RuleId>,
    /// A block rule that matched (the one on the longest prefix, or the user's).
    pub block: Option<RuleId>,
    /// When that block rule expires, if it does.
    pub block_expires: Option<SystemTime>,
}

/// Compiled form of one rule: 24 bytes, so a million rules stay small.
#[derive(Debug, Clone, Copy)]
struct Compiled {
    id: RuleId,
    /// Expiry in nanoseconds since the Unix epoch; `u64::MAX` for never.
    expires: u64,
    action: RuleAction,
}

/// The rules of one target: the common single rule inline (one memory access fewer on the
/// request path), several as a range of `RuleSnapshot::shared`.
#[derive(Debug, Clone, Copy)]
enum Slot {
    One(Compiled),
    Many { start: u32, len: u32 },
}

/// An immutable, compiled view of the rules, read on the request path.
#[derive(Debug, Default)]
pub struct RuleSnapshot {
    networks: PrefixTable<Slot>,
    users: HashMap<Box<str>, Slot, foldhash::fast::RandomState>,
    /// Rules of targets that have more than one.
    shared: Vec<Compiled>,
    len: usize,
}

const NEVER: u64 = u64::MAX;

fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(NEVER - 1))
        .unwrap_or(0)
}

/// Turns `(target, rule)` pairs, sorted by target, into one slot per target.
fn group<'s, T: PartialEq + 's>(
    sorted: Vec<(T, Compiled)>,
    shared: &'s mut Vec<Compiled>,
) -> impl Iterator<Item = (T, Slot)> + 's {
    let mut sorted = sorted.into_iter().peekable();
    std::iter::from_fn(move || {
        let (target, first) = sorted.next()?;
        if sorted.peek().is_none_or(|(next, _)| *next != target) {
            return Some((target, Slot::One(first)));
        }
        let start = shared.len() as u32;
        shared.push(first);
        while let Some((_, c)) = sorted.next_if(|(next, _)| *next == target) {
            shared.push(c);
        }
        let len = shared.len() as u32 - start;
        Some((target, Slot::Many { start, len }))
    })
}

impl RuleSnapshot {
    fn compile<'a>(rules: impl Iterator<Item = &'a Rule>) -> Self {
        let mut nets: Vec<(IpNet, Compiled)> = Vec::new();
        let mut users: Vec<(&'a str, Compiled)> = Vec::new();
        for rule in rules {
            let c = Compiled {
                id: rule.id,
                expires: rule.expires.map_or(NEVER, unix_nanos),
                action: rule.action,
            };
            match &rule.target {
                RuleTarget::Network(net) => nets.push((*net, c)),
                RuleTarget::User(user) => users.push((user, c)),
            }
        }
        // Group rules of one target together; within a target, allow rules first, then the
        // longest-lived, so a lookup finds the answer at the front of the span.
        let order = |c: &Compiled| (c.action == RuleAction::Block, std::cmp::Reverse(c.expires));
        nets.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| order(&a.1).cmp(&order(&b.1))));
        users.sort_unstable_by(|a, b| a.0.cmp(b.0).then_with(|| order(&a.1).cmp(&order(&b.1))));

        let len = nets.len() + users.len();
        let mut shared = Vec::new();
        let networks = PrefixTable::build(group(nets, &mut shared));
        let users = group(users, &mut shared)
            .map(|(user, slot)| (Box::from(user), slot))
            .collect();
        RuleSnapshot {
            networks,
            users,
            shared,
            len,
        }
    }

    /// The active rules matching `ip` (already normalised) and `user` at the time `now` gives.
    /// `now` is called at most once, and only when a candidate rule has an expiry.
    pub(crate) fn check(
        &self,
        ip: IpAddr,
        user: Option<&str>,
        now: impl Fn() -> SystemTime,
    ) -> RuleMatch {
        let mut found = RuleMatch::default();
        if self.len == 0 {
            return found;
        }
        let mut now_nanos: Option<u64> = None;
        let mut active = |c: &Compiled| {
            c.expires == NEVER || *now_nanos.get_or_insert_with(|| unix_nanos(now())) < c.expires
        };
        let user_slot = user.and_then(|u| self.users.get(u));
        let slots = self
            .networks
            .matches(ip)
            .map(|(_, slot)| slot)
            .chain(user_slot);
        for slot in slots {
            let rules = match slot {
                Slot::One(c) => std::slice::from_ref(c),
                Slot::Many { start, len } => &self.shared[*start as usize..(start + len) as usize],
            };
            for c in rules {
                match c.action {
                    RuleAction::Allow if found.allow.is_none() && active(c) => {
                        found.allow = Some(c.id);
                        // Allow wins over everything; nothing else matters.
                        return found;
                    }
                    RuleAction::Block if found.block.is_none() && active(c) => {
                        found.block = Some(c.id);
                        found.block_expires = (c.expires != NEVER)
                            .then(|| UNIX_EPOCH + Duration::from_nanos(c.expires));
                    }
                    _ => {}
                }
            }
        }
        found
    }

    /// Number of compiled rules.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Approximate heap bytes of the compiled snapshot (index, compiled records, user map).
    pub fn heap_bytes(&self) -> usize {
        self.networks.heap_bytes()
            + self.shared.capacity() * std::mem::size_of::<Compiled>()
            + self.users.capacity() * (std::mem::size_of::<(Box<str>, Slot)>() + 1)
            + self.users.keys().map(|k| k.len()).sum::<usize>()
    }
}

/// A shared handle to the rules; cheap to clone.
///
/// Changes are `async` so that a persistent store can sit behind the handle without changing
/// its signature. Each change recompiles the snapshot (about a second for a million rules),
/// so add rules in batches with [`Rules::add_many`].
#[derive(Clone)]
pub struct Rules {
    inner: Arc<RulesInner>,
}

struct RulesInner {
    snapshot: ArcSwap<RuleSnapshot>,
    book: Mutex<Book>,
    clock: Arc<dyn Clock>,
}

#[derive(Default)]
struct Book {
    /// Sorted by id, since ids only grow.
    rules: Vec<Rule>,
    next_id: u64,
}

impl fmt::Debug for Rules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rules")
            .field("len", &self.inner.snapshot.load().len())
            .finish()
    }
}

impl Default for Rules {
    fn default() -> Self {
        Self::new()
    }
}

impl Rules {
    /// An empty set of rules on the system clock.
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock::new()))
    }

    /// An empty set of rules whose expiry is judged by `clock`.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Rules {
            inner: Arc::new(RulesInner {
                snapshot: ArcSwap::from_pointee(RuleSnapshot::default()),
                book: Mutex::new(Book {
                    rules: Vec::new(),
                    next_id: 1,
                }),
                clock,
            }),
        }
    }

    fn book(&self) -> MutexGuard<'_, Book> {
        // A panic while holding the lock cannot leave the book half-edited (edits are pushes and
        // removes), so a poisoned lock is still usable.
        self.inner.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds rules without awaiting; used to seed rules from config at startup.
    pub(crate) fn insert_now(&self, rules: Vec<NewRule>) -> Result<Vec<Rule>, RuleError> {
        let now = self.inner.clock.wall();
        let mut book = self.book();
        let mut added = Vec::with_capacity(rules.len());
        for new in rules {
            let expires = match new.expires {
                None => None,
                Some(Expiry::At(at)) => Some(at),
                Some(Expiry::After(after)) => Some(
                    now.checked_add(after)
                        .unwrap_or(now + Duration::from_secs(u32::MAX.into())),
                ),
            };
            if expires.is_some_and(|at| at <= now) {
                return Err(RuleError::AlreadyExpired);
            }
            let rule = Rule {
                id: RuleId(book.next_id),
                target: new.target,
                action: new.action,
                expires,
                comment: new.comment,
                created: now,
            };
            book.next_id += 1;
            added.push(rule);
        }
        book.rules.extend(added.iter().cloned());
        self.publish(&book);
        Ok(added)
    }

    fn publish(&self, book: &Book) {
        self.inner
            .snapshot
            .store(Arc::new(RuleSnapshot::compile(book.rules.iter())));
    }

    /// Adds one rule and makes it effective immediately.
    pub async fn add(&self, rule: NewRule) -> Result<Rule, RuleError> {
        let mut added = self.insert_now(vec![rule])?;
        Ok(added.remove(0))
    }

    /// Adds several rules with a single recompilation. Nothing is added if one is refused.
    pub async fn add_many(
        &self,
        rules: impl IntoIterator<Item = NewRule>,
    ) -> Result<Vec<Rule>, RuleError> {
        self.insert_now(rules.into_iter().collect())
    }

    /// Removes a rule; returns it, or `None` if there was no such rule.
    pub async fn remove(&self, id: RuleId) -> Result<Option<Rule>, RuleError> {
        let mut book = self.book();
        let Ok(pos) = book.rules.binary_search_by_key(&id, |r| r.id) else {
            return Ok(None);
        };
        let removed = book.rules.remove(pos);
        self.publish(&book);
        Ok(Some(removed))
    }

    /// Every rule, expired ones included, in creation order.
    pub fn list(&self) -> Vec<Rule> {
        self.book().rules.clone()
    }

    /// One rule by id.
    pub fn get(&self, id: RuleId) -> Option<Rule> {
        let book = self.book();
        book.rules
            .binary_search_by_key(&id, |r| r.id)
            .ok()
            .map(|i| book.rules[i].clone())
    }

    /// The active rules matching `ip` and `user` now.
    pub fn check(&self, ip: IpAddr, user: Option<&str>) -> RuleMatch {
        let clock = &self.inner.clock;
        self.inner
            .snapshot
            .load()
            .check(normalize(ip), user, || clock.wall())
    }

    /// The current compiled snapshot.
    pub fn snapshot(&self) -> Arc<RuleSnapshot> {
        self.inner.snapshot.load_full()
    }

    /// Lock-free access for the request path.
    pub(crate) fn load(&self) -> arc_swap::Guard<Arc<RuleSnapshot>> {
        self.inner.snapshot.load()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn t(s: &str) -> RuleTarget {
        s.parse().unwrap()
    }

    #[test]
    fn targets_parse_and_display() {
        assert_eq!(t("203.0.113.7").to_string(), "203.0.113.7");
        assert_eq!(t("203.0.113.0/24").to_string(), "203.0.113.0/24");
        assert_eq!(t("2001:db8::/32").to_string(), "2001:db8::/32");
        assert_eq!(t("::ffff:203.0.113.7").to_string(), "203.0.113.7");
        assert_eq!(t("user:alice").to_string(), "user:alice");
        assert!("10.1.2.3/8".parse::<RuleTarget>().is_err());
        assert!("10.0.0.0/33".parse::<RuleTarget>().is_err());
        assert!("user:".parse::<RuleTarget>().is_err());
        assert!("nonsense".parse::<RuleTarget>().is_err());
    }

    #[actix_web::test]
    async fn longest_prefix_and_allow_precedence() {
        let rules = Rules::new();
        let wide = rules.add(NewRule::block(t("10.0.0.0/8"))).await.unwrap();
        let narrow = rules.add(NewRule::block(t("10.1.0.0/16"))).await.unwrap();
        let ip = "10.1.2.3".parse().unwrap();
        assert_eq!(rules.check(ip, None).block, Some(narrow.id));
        assert_eq!(
            rules.check("10.9.0.1".parse().unwrap(), None).block,
            Some(wide.id)
        );
        let allow = rules.add(NewRule::allow(t("10.0.0.0/8"))).await.unwrap();
        let m = rules.check(ip, None);
        assert_eq!(m.allow, Some(allow.id));
        rules.remove(allow.id).await.unwrap().unwrap();
        assert_eq!(rules.check(ip, None).allow, None);
        assert_eq!(rules.remove(allow.id).await.unwrap(), None);
    }

    #[actix_web::test]
    async fn expired_rules_never_match_and_uncover_wider_ones() {
        let clock = ManualClock::new();
        let rules = Rules::with_clock(Arc::new(clock.clone()));
        let wide = rules.add(NewRule::block(t("192.0.2.0/24"))).await.unwrap();
        let narrow = rules
            .add(NewRule::block(t("192.0.2.7")).expires_after(Duration::from_secs(60)))
            .await
            .unwrap();
        let ip = "192.0.2.7".parse().unwrap();
        assert_eq!(rules.check(ip, None).block, Some(narrow.id));
        clock.advance(Duration::from_secs(60));
        assert_eq!(rules.check(ip, None).block, Some(wide.id));
        assert_eq!(rules.list().len(), 2, "expired rules stay listed");
        let err = rules
            .add(NewRule::block(t("192.0.2.8")).expires_at(clock.wall()))
            .await;
        assert!(matches!(err, Err(RuleError::AlreadyExpired)));
    }

    #[actix_web::test]
    async fn user_rules() {
        let rules = Rules::new();
        let r = rules.add(NewRule::block(t("user:mallory"))).await.unwrap();
        let ip = "198.51.100.1".parse().unwrap();
        assert_eq!(rules.check(ip, Some("mallory")).block, Some(r.id));
        assert_eq!(rules.check(ip, Some("alice")).block, None);
        assert_eq!(rules.check(ip, None).block, None);
        let a = rules.add(NewRule::allow(t("user:mallory"))).await.unwrap();
        assert_eq!(rules.check(ip, Some("mallory")).allow, Some(a.id));
    }

    #[test]
    fn rules_serialize_with_rfc3339_times() {
        let rule = Rule {
            id: RuleId(3),
            target: t("203.0.113.0/24"),
            action: RuleAction::Block,
            expires: Some(UNIX_EPOCH + Duration::from_secs(1_800_000_000)),
            comment: Some("scraper".into()),
            created: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        };
        let json = serde_json::to_value(&rule).unwrap();
        assert_eq!(json["target"], "203.0.113.0/24");
        assert_eq!(json["action"], "block");
        assert_eq!(json["expires"], "2027-01-15T08:00:00Z");
        assert_eq!(json["created"], "2023-11-14T22:13:20Z");
    }
}
