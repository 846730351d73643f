//! Merging the ranges of every feed into the one table lookups read.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use ipnet::IpNet;

use super::parse::Range;
use super::reload::Source;
use super::{FeedHit, FeedKind, FeedKinds};
use crate::prefix_table::PrefixTable;

/// Interned-provider id meaning "no provider".
const NO_PROVIDER: u32 = u32::MAX;

/// What a network stands for: the union of the kinds of the network and of every network
/// enclosing it, and the most specific provider (an interned id). Few distinct entries cover
/// the many networks, so the table holds each network's entry's position in
/// `Compiled::entries` (4 bytes) rather than the entry.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct Entry {
    kinds: FeedKinds,
    provider: u32,
}

/// The read-only state lookups see; replaced whole on reload.
pub(super) struct Compiled {
    /// Each network's position in `entries`.
    pub(super) table: PrefixTable<u32>,
    /// The distinct entries.
    entries: Vec<Entry>,
    /// Interned provider names by id.
    providers: Vec<Arc<str>>,
    /// Kinds each provider's own lines carry, for `has_provider`.
    pub(super) by_provider: HashMap<Arc<str>, FeedKinds>,
    /// Distinct networks listed with each kind (by their own lines), for the health report.
    pub(super) per_kind: BTreeMap<FeedKind, usize>,
    /// When this table was compiled (the wall clock).
    pub(super) loaded_at: SystemTime,
    pub(super) heap_bytes: usize,
}

impl Compiled {
    #[inline]
    pub(super) fn hit(&self, ip: IpAddr) -> FeedHit {
        match self
            .table
            .lookup(ip)
            .and_then(|(_, &at)| self.entries.get(at as usize))
        {
            Some(entry) => FeedHit {
                kinds: entry.kinds,
                provider: self.providers.get(entry.provider as usize).cloned(),
            },
            None => FeedHit::default(),
        }
    }
}

/// One distinct `Arc<str>` per provider name, so 158k ranges share a few dozen strings. Ids
/// are stable for the life of the `Feeds` (a name no longer used keeps its small slot).
#[derive(Default)]
pub(super) struct Interner {
    ids: HashMap<Arc<str>, u32>,
    names: Vec<Arc<str>>,
}

impl Interner {
    pub(super) fn intern(&mut self, name: &str) -> u32 {
        if name.is_empty() {
            return NO_PROVIDER;
        }
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = u32::try_from(self.names.len())
            .ok()
            .filter(|&id| id != NO_PROVIDER)
            .expect("fewer than 2^32 - 1 distinct provider names");
        let name: Arc<str> = Arc::from(name);
        self.names.push(Arc::clone(&name));
        self.ids.insert(name, id);
        id
    }
}

/// Merges the ranges of every feed into one table.
pub(super) fn compile(feeds: &[Source], interner: &Interner) -> Compiled {
    let mut all: Vec<Range> = Vec::with_capacity(feeds.iter().map(|f| f.ranges.len()).sum());
    for feed in feeds {
        all.extend_from_slice(&feed.ranges);
    }
    // By id first: one pass without hashing, then one map entry per provider in use.
    let mut kinds_by_id = vec![FeedKinds::empty(); interner.names.len()];
    for range in &all {
        if let Some(kinds) = kinds_by_id.get_mut(range.provider as usize) {
            kinds.insert(range.kind);
        }
    }
    let by_provider: HashMap<Arc<str>, FeedKinds> = (interner.names.iter().zip(kinds_by_id))
        .filter(|(_, kinds)| !kinds.is_empty())
        .map(|(name, kinds)| (Arc::clone(name), kinds))
        .collect();
    // `IpNet` orders by family, network, then length, so an enclosing network sorts before
    // the ones inside it. Stable, so identical networks keep feed-then-line order.
    all.sort_by_key(|r| r.net);

    let mut merged: Vec<(IpNet, Entry)> = Vec::with_capacity(all.len());
    for r in &all {
        match merged.last_mut() {
            Some((net, entry)) if *net == r.net => {
                entry.kinds.insert(r.kind);
                if entry.provider == NO_PROVIDER {
                    entry.provider = r.provider;
                }
            }
            _ => merged.push((
                r.net,
                Entry {
                    kinds: r.kind.into(),
                    provider: r.provider,
                },
            )),
        }
    }
    drop(all);
    let mut per_kind = BTreeMap::new();
    for (_, entry) in &merged {
        for kind in entry.kinds.iter() {
            *per_kind.entry(kind).or_insert(0) += 1;
        }
    }

    // Each network inherits from its nearest enclosing one, which has already inherited from
    // its own: so every entry holds the union over its whole nesting chain, and a lookup reads
    // just the innermost entry. The stack is that chain for the current network.
    let mut chain: Vec<(IpNet, Entry)> = Vec::new();
    for item in &mut merged {
        while chain.last().is_some_and(|(net, _)| !net.contains(&item.0)) {
            chain.pop();
        }
        if let Some((_, parent)) = chain.last() {
            item.1.kinds = item.1.kinds.union(parent.kinds);
            if item.1.provider == NO_PROVIDER {
                item.1.provider = parent.provider;
            }
        }
        chain.push(*item);
    }

    let mut entries = Vec::new();
    let mut positions: HashMap<Entry, u32> = HashMap::new();
    let table = PrefixTable::build(merged.into_iter().map(|(net, entry)| {
        let at = *positions.entry(entry).or_insert_with(|| {
            entries.push(entry);
            (entries.len() - 1) as u32
        });
        (net, at)
    }));
    drop(positions);
    entries.shrink_to_fit();
    let providers = interner.names.clone();
    let names: usize = providers.iter().map(|n| n.len()).sum();
    // A hash map slot: key, value and a control byte (values here are at most 4 bytes).
    let slot = std::mem::size_of::<Arc<str>>() + 4 + 1;
    let heap_bytes = table.heap_bytes()
        + entries.capacity() * std::mem::size_of::<Entry>()
        // One leaf node of the per-kind counts (every kind fits in one).
        + std::mem::size_of::<[(FeedKind, usize); 11]>() + 16
        + names
        + providers.capacity() * std::mem::size_of::<Arc<str>>()
        + (by_provider.capacity() + interner.ids.capacity()) * slot
        + feeds
            .iter()
            .map(|f| f.ranges.capacity() * std::mem::size_of::<Range>())
            .sum::<usize>();
    Compiled {
        table,
        entries,
        providers,
        by_provider,
        per_kind,
        loaded_at: SystemTime::now(),
        heap_bytes,
    }
}
