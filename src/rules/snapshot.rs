//! The compiled form of a set of rules: a longest-prefix-match table and a user map, immutable,
//! read on the request path without a lock.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipnet::IpNet;

use super::model::{RuleAction, RuleId, RuleSource, RuleTarget};
use crate::prefix_table::PrefixTable;

/// Expiry of a rule that never expires.
pub(super) const NEVER: u64 = u64::MAX;

/// Nanoseconds since the Unix epoch (0 before it; just under [`NEVER`] past 2554).
pub(super) fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(NEVER - 1))
        .unwrap_or(0)
}

/// Compiled form of one rule: 24 bytes, so a million rules stay small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Compiled {
    pub(super) id: RuleId,
    /// Expiry in nanoseconds since the Unix epoch; [`NEVER`] for never.
    pub(super) expires: u64,
    pub(super) action: RuleAction,
    /// Where the rule came from (a match on an automatic rule is reported as a ban); in the
    /// padding after `action`, so the record stays 24 bytes.
    pub(super) source: RuleSource,
}

const _: () = assert!(std::mem::size_of::<Compiled>() == 24);

impl Compiled {
    pub(super) fn expires_at(&self) -> Option<SystemTime> {
        (self.expires != NEVER).then(|| UNIX_EPOCH + Duration::from_nanos(self.expires))
    }
}

/// A rule as the compiler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entry {
    pub(super) target: RuleTarget,
    pub(super) rule: Compiled,
}

/// The rules of one target in 8 bytes. The common case, a single rule whose id fits in 32 bits,
/// is held here: its id and the position of its expiry, action and source in
/// `RuleSnapshot::metas` (those repeat across rules, so each distinct triple is stored once).
/// Anything else (several rules, a wider id) is a range of `RuleSnapshot::shared`, flagged by
/// `MANY` in `meta`.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// The rule's id; with `MANY`, where the range starts in `shared`.
    id: u32,
    /// The rule's position in `metas`; with `MANY`, the range's length.
    meta: u32,
}

/// Flags a [`Slot`] that is a range of `RuleSnapshot::shared`.
const MANY: u32 = 1 << 31;

/// What a single rule shares with many others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Meta {
    expires: u64,
    action: RuleAction,
    source: RuleSource,
}

/// The rules of one slot, in their order: the single inline one, or a range of `shared`.
type SlotRules<'a> = std::iter::Chain<
    std::option::IntoIter<Compiled>,
    std::iter::Copied<std::slice::Iter<'a, Compiled>>,
>;

/// What matched one lookup, before precedence across snapshots is settled.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Found {
    /// An active allow rule; it wins over everything.
    pub(super) allow: Option<RuleId>,
    /// The winning active block rule and its rank: the prefix length of its network, or -1
    /// for a user rule (a network rule is more specific than the user's).
    pub(super) block: Option<(i16, Compiled)>,
}

impl Found {
    /// Keeps the better of two block matches: the longer prefix, then the longer-lived rule.
    pub(super) fn merge(&mut self, other: Found) {
        if self.allow.is_none() {
            self.allow = other.allow;
        }
        if let Some((rank, rule)) = other.block {
            let better = match self.block {
                None => true,
                Some((r, c)) => (rank, rule.expires) > (r, c.expires),
            };
            if better {
                self.block = Some((rank, rule));
            }
        }
    }
}

/// How many rules there are, by source, by action and by kind of target: counted when the
/// rules are compiled (see [`Rules::counts`](super::Rules::counts)).
///
/// ```
/// use actix_bouncer::rules::{NewRule, RuleAction, RuleSource, Rules};
///
/// # actix_web::rt::System::new().block_on(async {
/// let rules = Rules::new();
/// rules.add(NewRule::block("203.0.113.0/24".parse()?)).await?;
/// rules.add(NewRule::allow("user:alice".parse()?)).await?;
/// let counts = rules.counts();
/// assert_eq!((counts.total, counts.by_action.block, counts.users), (2, 1, 1));
/// assert_eq!(counts.source(RuleSource::Manual), 2);
/// assert_eq!(counts.action(RuleAction::Allow), 1);
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[non_exhaustive]
pub struct RuleCounts {
    /// Every rule.
    pub total: u64,
    /// By where the rules came from.
    pub by_source: SourceCounts,
    /// By what the rules do.
    pub by_action: ActionCounts,
    /// Rules on an address or a network.
    pub networks: u64,
    /// Rules on a user id.
    pub users: u64,
}

/// Rules by [`RuleSource`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[non_exhaustive]
pub struct SourceCounts {
    /// [`RuleSource::Manual`]: added at runtime (an operator, the app).
    pub manual: u64,
    /// [`RuleSource::Config`]: the config's `[[rules]]`.
    pub config: u64,
    /// [`RuleSource::Auto`]: added by the bouncer (bans, extreme reputation scores).
    pub auto: u64,
}

/// Rules by [`RuleAction`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[non_exhaustive]
pub struct ActionCounts {
    /// [`RuleAction::Block`].
    pub block: u64,
    /// [`RuleAction::Allow`].
    pub allow: u64,
}

impl RuleCounts {
    /// The rules from `source`.
    pub fn source(&self, source: RuleSource) -> u64 {
        match source {
            RuleSource::Manual => self.by_source.manual,
            RuleSource::Config => self.by_source.config,
            RuleSource::Auto => self.by_source.auto,
        }
    }

    /// The rules with `action`.
    pub fn action(&self, action: RuleAction) -> u64 {
        match action {
            RuleAction::Block => self.by_action.block,
            RuleAction::Allow => self.by_action.allow,
        }
    }

    /// Counts one more rule (`-1`: one fewer).
    pub(super) fn add(&mut self, target: &RuleTarget, rule: &Compiled, n: i64) {
        let add = |field: &mut u64| *field = field.saturating_add_signed(n);
        add(&mut self.total);
        add(match rule.source {
            RuleSource::Manual => &mut self.by_source.manual,
            RuleSource::Config => &mut self.by_source.config,
            RuleSource::Auto => &mut self.by_source.auto,
        });
        add(match rule.action {
            RuleAction::Block => &mut self.by_action.block,
            RuleAction::Allow => &mut self.by_action.allow,
        });
        add(match target {
            RuleTarget::Network(_) => &mut self.networks,
            RuleTarget::User(_) => &mut self.users,
        });
    }

    /// `self` with `other` added (`sign` 1) or taken away (`sign` -1, never below zero).
    pub(super) fn combine(mut self, other: &RuleCounts, sign: i64) -> RuleCounts {
        let both = [
            (&mut self.total, other.total),
            (&mut self.by_source.manual, other.by_source.manual),
            (&mut self.by_source.config, other.by_source.config),
            (&mut self.by_source.auto, other.by_source.auto),
            (&mut self.by_action.block, other.by_action.block),
            (&mut self.by_action.allow, other.by_action.allow),
            (&mut self.networks, other.networks),
            (&mut self.users, other.users),
        ];
        for (mine, theirs) in both {
            *mine = if sign < 0 {
                mine.saturating_sub(theirs)
            } else {
                mine.saturating_add(theirs)
            };
        }
        self
    }
}

/// An immutable, compiled view of a set of rules.
#[derive(Debug, Default)]
pub struct RuleSnapshot {
    networks: PrefixTable<Slot>,
    users: HashMap<Box<str>, Slot, foldhash::fast::RandomState>,
    /// Rules of targets that have more than one (or a single rule with an id past 32 bits).
    shared: Vec<Compiled>,
    /// The distinct (expiry, action, source) of single rules held in their slot.
    metas: Vec<Meta>,
    len: usize,
    /// The rules by source, action and kind, counted as they were compiled.
    counts: RuleCounts,
    /// The soonest expiry among the rules, for the compiler's clean-up.
    earliest_expiry: u64,
}

/// An iterator known to yield at most `left` more items: its size hint says so, so that what
/// collects it can reserve once.
struct AtMost<I> {
    inner: I,
    left: usize,
}

impl<I: Iterator> Iterator for AtMost<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        let item = self.inner.next()?;
        self.left = self.left.saturating_sub(1);
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.inner.size_hint().0.min(self.left), Some(self.left))
    }
}

/// Where the slots of one compilation put what they do not hold themselves.
#[derive(Default)]
struct Slots {
    shared: Vec<Compiled>,
    metas: Vec<Meta>,
    /// Position of each distinct meta in `metas` (dropped after compiling).
    meta_ids: HashMap<Meta, u32, foldhash::fast::RandomState>,
}

impl Slots {
    /// The slot of a single rule: inline when its id and its meta's position fit.
    fn one(&mut self, c: Compiled) -> Slot {
        let Ok(id) = u32::try_from(c.id.0) else {
            return self.many(&[c]);
        };
        let meta = Meta {
            expires: c.expires,
            action: c.action,
            source: c.source,
        };
        let next = self.metas.len() as u32;
        let at = *self.meta_ids.entry(meta).or_insert(next);
        if at == next {
            self.metas.push(meta);
        }
        if at < MANY {
            Slot { id, meta: at }
        } else {
            self.many(&[c])
        }
    }

    /// The slot of a range of rules, copied to `shared`.
    fn many(&mut self, rules: &[Compiled]) -> Slot {
        let start = self.shared.len() as u32;
        self.shared.extend_from_slice(rules);
        Slot {
            id: start,
            meta: MANY | rules.len() as u32,
        }
    }
}

/// Turns `(target, rule)` pairs, sorted by target, into one slot per target.
fn group<'s, T: PartialEq + 's>(
    sorted: Vec<(T, Compiled)>,
    slots: &'s mut Slots,
) -> impl Iterator<Item = (T, Slot)> + 's {
    let mut sorted = sorted.into_iter().peekable();
    let mut run = Vec::new();
    std::iter::from_fn(move || {
        let (target, first) = sorted.next()?;
        if sorted.peek().is_none_or(|(next, _)| *next != target) {
            return Some((target, slots.one(first)));
        }
        run.clear();
        run.push(first);
        while let Some((_, c)) = sorted.next_if(|(next, _)| *next == target) {
            run.push(c);
        }
        Some((target, slots.many(&run)))
    })
}

impl RuleSnapshot {
    /// Compiles `entries`, leaving out those expired at `now` (ns since the epoch).
    pub(super) fn compile(entries: impl IntoIterator<Item = Entry>, now: u64) -> Self {
        let entries = entries.into_iter();
        // Reserved once (see `PrefixTable::build`); nearly every rule is a network rule.
        let (least, most) = entries.size_hint();
        let mut nets: Vec<(IpNet, Compiled)> = Vec::with_capacity(most.unwrap_or(least));
        let mut users: Vec<(String, Compiled)> = Vec::new();
        let mut earliest_expiry = NEVER;
        let mut counts = RuleCounts::default();
        for Entry { target, rule } in entries {
            if rule.expires <= now {
                continue;
            }
            earliest_expiry = earliest_expiry.min(rule.expires);
            counts.add(&target, &rule, 1);
            match target {
                RuleTarget::Network(net) => nets.push((net, rule)),
                RuleTarget::User(user) => users.push((user, rule)),
            }
        }
        // Group rules of one target together; within a target, allow rules first, then the
        // longest-lived, so a lookup finds the answer at the front of the span.
        let order = |c: &Compiled| (c.action == RuleAction::Block, std::cmp::Reverse(c.expires));
        nets.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| order(&a.1).cmp(&order(&b.1))));
        users.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| order(&a.1).cmp(&order(&b.1))));

        let len = nets.len() + users.len();
        let mut slots = Slots::default();
        let count = nets.len();
        let networks = PrefixTable::build(AtMost {
            inner: group(nets, &mut slots),
            left: count,
        });
        let users = group(users, &mut slots)
            .map(|(user, slot)| (user.into_boxed_str(), slot))
            .collect();
        let Slots {
            mut shared,
            mut metas,
            ..
        } = slots;
        shared.shrink_to_fit();
        metas.shrink_to_fit();
        RuleSnapshot {
            networks,
            users,
            shared,
            metas,
            len,
            counts,
            earliest_expiry,
        }
    }

    /// The rules of `slot`, in their order.
    #[inline]
    fn rules_of(&self, slot: &Slot) -> SlotRules<'_> {
        let (one, many) = if slot.meta & MANY == 0 {
            let one = self.metas.get(slot.meta as usize).map(|m| Compiled {
                id: RuleId(u64::from(slot.id)),
                expires: m.expires,
                action: m.action,
                source: m.source,
            });
            (one, &[][..])
        } else {
            let (start, len) = (slot.id as usize, (slot.meta & !MANY) as usize);
            (
                None,
                self.shared.get(start..start + len).unwrap_or_default(),
            )
        };
        one.into_iter().chain(many.iter().copied())
    }

    /// Every rule, for compiling the next snapshot from this one (its size known, so the
    /// next compilation reserves once).
    pub(super) fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        AtMost {
            inner: self.all_entries(),
            left: self.len,
        }
    }

    fn all_entries(&self) -> impl Iterator<Item = Entry> + '_ {
        let nets = self.networks.iter().flat_map(move |(net, slot)| {
            self.rules_of(slot).map(move |rule| Entry {
                target: RuleTarget::Network(net),
                rule,
            })
        });
        let users = self.users.iter().flat_map(move |(user, slot)| {
            self.rules_of(slot).map(move |rule| Entry {
                target: RuleTarget::User(user.to_string()),
                rule,
            })
        });
        nets.chain(users)
    }

    /// The active rules matching `ip` (already normalised; `None` when the client is unknown)
    /// and `user`, at the time `now` gives (ns since the epoch; called at most once, and only
    /// when a candidate rule has an expiry). Rules for which `skip` is true do not count.
    pub(super) fn find(
        &self,
        ip: Option<IpAddr>,
        user: Option<&str>,
        now: &mut impl FnMut() -> u64,
        skip: impl Fn(RuleId) -> bool,
    ) -> Found {
        let mut found = Found::default();
        if self.len == 0 {
            return found;
        }
        // Networks from the longest prefix out, then the user: the first active block rule
        // met is the most specific; an active allow rule anywhere wins over everything.
        let mut visit = |rank: i16, slot: &Slot| {
            for c in self.rules_of(slot) {
                if (c.expires != NEVER && now() >= c.expires) || skip(c.id) {
                    continue;
                }
                match c.action {
                    RuleAction::Allow => {
                        found.allow = Some(c.id);
                        return true;
                    }
                    RuleAction::Block if found.block.is_none() => found.block = Some((rank, c)),
                    RuleAction::Block => {}
                }
            }
            false
        };
        if let Some(ip) = ip {
            for (len, slot) in self.networks.match_lengths(ip) {
                if visit(i16::from(len), slot) {
                    return found;
                }
            }
        }
        if let Some(slot) = user.and_then(|u| self.users.get(u)) {
            visit(-1, slot);
        }
        found
    }

    /// Whether rule `id` is here, on `target`.
    pub(super) fn contains(&self, target: &RuleTarget, id: RuleId) -> bool {
        self.find_rule(target, id).is_some()
    }

    /// Number of compiled rules.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The compiled rules by source, action and kind of target (counted when compiled: no
    /// cost here).
    pub fn counts(&self) -> RuleCounts {
        self.counts
    }

    /// The rule `id` on `target`, if it is here.
    pub(super) fn find_rule(&self, target: &RuleTarget, id: RuleId) -> Option<Compiled> {
        let slot = match target {
            RuleTarget::Network(net) => self
                .networks
                .matches(net.network())
                .find(|(n, _)| n == net)
                .map(|(_, slot)| slot),
            RuleTarget::User(user) => self.users.get(user.as_str()),
        }?;
        self.rules_of(slot).find(|c| c.id == id)
    }

    /// The soonest expiry among the rules (ns since the epoch); [`NEVER`] when none expires.
    pub(super) fn earliest_expiry(&self) -> u64 {
        self.earliest_expiry
    }

    /// Approximate heap bytes of the compiled snapshot (index, compiled records, user map).
    pub fn heap_bytes(&self) -> usize {
        self.networks.heap_bytes()
            + self.shared.capacity() * std::mem::size_of::<Compiled>()
            + self.metas.capacity() * std::mem::size_of::<Meta>()
            + self.users.capacity() * (std::mem::size_of::<(Box<str>, Slot)>() + 1)
            + self.users.keys().map(|k| k.len()).sum::<usize>()
    }
}
