//! The bounded, sharded key store every limit of a bouncer shares.
//!
//! At most `max_tracked_keys` keys, split over up to 64 shards (a power of two; fewer for small
//! caps so that every shard holds at least 16 keys). Each shard is a [`Mutex`] around a slab
//! (`Vec` of entries, which allows O(1) random sampling) and an index of slab positions (a
//! [`hashbrown::HashTable<u32>`]: keys are stored once, in the slab, and the index costs 5 bytes
//! a bucket, so it mostly stays in cache). Removal is `swap_remove` plus one index fix-up;
//! eviction reuses the victim's slot in place.
//!
//! *The bound is exact:* shard `i` may hold `floor(max / shards)` keys, plus one for the first
//! `max % shards` shards, so the shard capacities add up to exactly `max_tracked_keys`, and a
//! shard never grows past its own capacity (a full shard evicts before it inserts).
//!
//! Each entry keeps the key's GCRA theoretical arrival time (TAT, in its limit's own frame), the
//! end of its current or last ban, its offence count, and `keep_until`: the instant after which
//! the entry carries no information. Bans and `keep_until` are on the clock's absolute frame,
//! so entries of every limit compare with each other. When a full shard must make room, it
//! samples up to 8 random slots (per-shard xorshift) and evicts the one with the smallest
//! `keep_until`, taking at once any entry already past it. Banned keys and heavy hitters have
//! the latest `keep_until`, so a flood of one-shot keys evicts other one-shot keys and not them.
//!
//! Keys are hashed once per request with a randomly seeded [`foldhash::fast::RandomState`]
//! (bits 32 and up pick the shard; the shard's index uses the low bits and the top 7), so
//! attacker-chosen keys cannot aim at one shard or force collisions.

use std::hash::{BuildHasher, Hash};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use foldhash::fast::RandomState;
use hashbrown::HashTable;

use super::policy::BanPolicy;
use crate::clock::{duration_nanos, Clock};
use crate::sync::lock;

/// Most shards a store uses.
const MAX_SHARDS: usize = 64;
/// Fewest keys a shard should hold before the store uses more shards.
const MIN_SHARD_CAPACITY: usize = 16;
/// Slots sampled to pick an eviction victim.
const EVICTION_SAMPLES: usize = 8;

/// What one limit asks of the store, fixed when the limit is registered.
#[derive(Debug, Clone)]
pub(super) struct Params {
    /// GCRA tolerance, ns.
    pub(super) tau: u64,
    pub(super) ban: Option<BanPolicy>,
    /// How long offences are remembered after a ban ends (ns): `max_ban`.
    pub(super) memory: u64,
    /// Absolute clock reading (ns) just before the limit's GCRA read its own start: TATs are
    /// counted from about here, never from earlier.
    pub(super) origin: u64,
}

/// One tracked key.
#[derive(Debug)]
pub(super) struct Slot<K> {
    pub(super) key: K,
    /// GCRA theoretical arrival time, in the limit's frame; 0 = fresh.
    pub(super) tat: u64,
    /// When the current or last ban ends (absolute; 0 = never banned).
    pub(super) ban_until: u64,
    /// After this instant (absolute) the entry carries no information.
    keep_until: u64,
    /// Bans so far (see the offence memory rule in the module docs).
    pub(super) offences: u32,
}

impl<K> Slot<K> {
    fn fresh(key: K) -> Self {
        Self {
            key,
            tat: 0,
            ban_until: 0,
            keep_until: 0,
            offences: 0,
        }
    }

    /// Recomputes `keep_until` from the TAT, the ban and the offence memory.
    #[inline]
    pub(super) fn refresh(&mut self, params: &Params) {
        let tat = if self.tat == 0 {
            0
        } else {
            self.tat.saturating_add(params.origin)
        };
        let offences_end = if self.offences == 0 {
            self.ban_until
        } else {
            self.ban_until.saturating_add(params.memory)
        };
        self.keep_until = tat.max(offences_end);
    }
}

/// One lock's worth of keys: a slab of entries and an index of slab positions.
#[derive(Debug)]
pub(super) struct Shard<K> {
    index: HashTable<u32>,
    pub(super) slots: Vec<Slot<K>>,
    capacity: usize,
    rng: u64,
    /// Entries evicted to make room, ever (counted under the shard's lock: no extra atomic).
    evictions: u64,
}

impl<K: Hash + Eq + Clone> Shard<K> {
    fn new(capacity: usize, seed: u64) -> Self {
        Self {
            index: HashTable::new(),
            slots: Vec::new(),
            capacity,
            // xorshift must not start at zero.
            rng: seed | 1,
            evictions: 0,
        }
    }

    /// The slot holding `key`, whose hash is `hash`.
    #[inline]
    pub(super) fn find(&self, hash: u64, key: &K) -> Option<usize> {
        let slots = &self.slots;
        self.index
            .find(hash, |&i| {
                slots.get(i as usize).is_some_and(|s| s.key == *key)
            })
            .map(|&i| i as usize)
    }

    /// The slot of `key`, added fresh if absent (a full shard gives it an evicted entry's
    /// slot). `now` is absolute.
    #[inline]
    pub(super) fn find_or_insert(
        &mut self,
        hasher: &RandomState,
        hash: u64,
        key: &K,
        now: u64,
    ) -> usize {
        if let Some(i) = self.find(hash, key) {
            return i;
        }
        let len = self.slots.len();
        let at = if len >= self.capacity && len > 0 {
            let victim = self.pick_victim(now);
            self.unindex(hasher, victim);
            self.slots[victim] = Slot::fresh(key.clone());
            self.evictions += 1;
            victim
        } else {
            if len == self.slots.capacity() {
                // Grow by doubling, but never past this shard's capacity.
                let room = self.capacity.saturating_sub(len).max(1);
                self.slots.reserve_exact(room.min(len.max(4)));
            }
            self.slots.push(Slot::fresh(key.clone()));
            len
        };
        let slots = &self.slots;
        // `capacity` is at most u32::MAX, so positions fit.
        self.index
            .insert_unique(hash, at as u32, |&i| rehash(hasher, slots, i));
        at
    }

    /// Removes slot `i`'s position from the index.
    fn unindex(&mut self, hasher: &RandomState, i: usize) {
        if let Some(slot) = self.slots.get(i) {
            let hash = hasher.hash_one(&slot.key);
            if let Ok(entry) = self.index.find_entry(hash, |&j| j as usize == i) {
                entry.remove();
            }
        }
    }

    /// Removes the entry in slot `i`, moving the last entry into its place.
    pub(super) fn remove_at(&mut self, hasher: &RandomState, i: usize) {
        let Some(last) = self.slots.len().checked_sub(1).filter(|&last| i <= last) else {
            return;
        };
        self.unindex(hasher, i);
        self.slots.swap_remove(i);
        if let Some(moved) = self.slots.get(i) {
            let hash = hasher.hash_one(&moved.key);
            if let Some(at) = self.index.find_mut(hash, |&j| j as usize == last) {
                *at = i as u32;
            }
        }
    }

    /// The slot with the smallest `keep_until` among up to 8 random ones (`len` > 0).
    fn pick_victim(&mut self, now: u64) -> usize {
        let len = self.slots.len();
        let mut victim = self.sample(len);
        let mut oldest = self.slots[victim].keep_until;
        for _ in 1..EVICTION_SAMPLES {
            if oldest <= now {
                break; // already carries no information
            }
            let i = self.sample(len);
            let keep_until = self.slots[i].keep_until;
            if keep_until < oldest {
                victim = i;
                oldest = keep_until;
            }
        }
        victim
    }

    /// A uniform slot index below `len` (xorshift64, multiply-shift reduction).
    fn sample(&mut self, len: usize) -> usize {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        ((u128::from(x) * len as u128) >> 64) as usize
    }

    /// Drops every entry past `keep_until`; returns how many.
    fn sweep(&mut self, hasher: &RandomState, now: u64) -> usize {
        let before = self.slots.len();
        let mut i = 0;
        while i < self.slots.len() {
            if self.slots[i].keep_until <= now {
                self.remove_at(hasher, i); // brings an unchecked entry into slot i
            } else {
                i += 1;
            }
        }
        let len = self.slots.len();
        if len < self.slots.capacity() / 4 {
            self.slots.shrink_to(len.saturating_mul(2));
            let slots = &self.slots;
            self.index
                .shrink_to(len.saturating_mul(2), |&i| rehash(hasher, slots, i));
        }
        before - len
    }
}

/// The hash of the key at slab position `i`, for the index to move its entries.
fn rehash<K: Hash>(hasher: &RandomState, slots: &[Slot<K>], i: u32) -> u64 {
    slots
        .get(i as usize)
        .map_or(0, |slot| hasher.hash_one(&slot.key))
}

/// The bounded key store: every key of every limit that shares it.
pub(super) struct Store<K> {
    shards: Box<[Mutex<Shard<K>>]>,
    shard_mask: usize,
    /// Hashes keys once per request: bits 32.. pick the shard, the whole hash feeds the
    /// shard's index (which uses the low bits and the top 7).
    pub(super) hasher: RandomState,
    clock: Arc<dyn Clock>,
}

/// A banned key, as listed.
pub(super) struct BannedEntry<K> {
    pub(super) key: K,
    pub(super) remaining: Duration,
    pub(super) offences: u32,
}

impl<K: Hash + Eq + Clone> Store<K> {
    pub(super) fn new(max_tracked_keys: NonZeroUsize, clock: Arc<dyn Clock>) -> Self {
        let max = max_tracked_keys.get();
        let shard_count = shard_count(max);
        let (base, extra) = (max / shard_count, max % shard_count);
        let hasher = RandomState::default();
        let shards = (0..shard_count)
            .map(|i| {
                let capacity = (base + usize::from(i < extra)).min(u32::MAX as usize);
                Mutex::new(Shard::new(capacity, hasher.hash_one(i)))
            })
            .collect();
        Self {
            shards,
            shard_mask: shard_count - 1,
            hasher,
            clock,
        }
    }

    /// The clock now, in absolute nanoseconds.
    pub(super) fn now(&self) -> u64 {
        duration_nanos(self.clock.monotonic())
    }

    /// `key`'s hash and its locked shard.
    #[inline]
    pub(super) fn shard(&self, key: &K) -> (u64, MutexGuard<'_, Shard<K>>) {
        let hash = self.hasher.hash_one(key);
        let i = ((hash >> 32) as usize) & self.shard_mask;
        (hash, lock(&self.shards[i]))
    }

    pub(super) fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).slots.len()).sum()
    }

    /// Entries evicted to make room, ever, over every shard.
    pub(super) fn evictions(&self) -> u64 {
        self.shards.iter().map(|s| lock(s).evictions).sum()
    }

    /// Keys banned now (one pass over every shard, no allocation).
    pub(super) fn banned_count(&self) -> usize {
        let now = self.now();
        self.shards
            .iter()
            .map(|s| lock(s).slots.iter().filter(|s| s.ban_until > now).count())
            .sum()
    }

    pub(super) fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Drops every entry that no longer carries information; returns how many.
    pub(super) fn sweep(&self) -> usize {
        let now = self.now();
        self.shards
            .iter()
            .map(|s| lock(s).sweep(&self.hasher, now))
            .sum()
    }

    /// Forgets `key` (its count, ban and offences); whether it was tracked.
    pub(super) fn forget(&self, key: &K) -> bool {
        let (hash, mut shard) = self.shard(key);
        match shard.find(hash, key) {
            Some(i) => {
                shard.remove_at(&self.hasher, i);
                true
            }
            None => false,
        }
    }

    /// Bans `key` for `length` from now (an operator's ban: no offence is counted). A ban
    /// already running longer is kept.
    pub(super) fn ban(&self, key: &K, params: &Params, length: Duration) {
        let now = self.now();
        let (hash, mut shard) = self.shard(key);
        let i = shard.find_or_insert(&self.hasher, hash, key, now);
        let slot = &mut shard.slots[i];
        slot.ban_until = slot
            .ban_until
            .max(now.saturating_add(duration_nanos(length)));
        slot.tat = 0;
        slot.refresh(params);
    }

    /// Every key banned now, with the time left.
    pub(super) fn banned(&self) -> Vec<BannedEntry<K>> {
        let now = self.now();
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            for slot in lock(shard).slots.iter().filter(|s| s.ban_until > now) {
                out.push(BannedEntry {
                    key: slot.key.clone(),
                    remaining: Duration::from_nanos(slot.ban_until - now),
                    offences: slot.offences,
                });
            }
        }
        out
    }
}

/// Shards for a store of `max` keys: a power of two, at most 64, and few enough that each
/// holds at least 16 keys (one shard below that).
pub(super) fn shard_count(max: usize) -> usize {
    let wanted = (max / MIN_SHARD_CAPACITY).clamp(1, MAX_SHARDS);
    // Largest power of two not above `wanted`.
    1 << wanted.ilog2()
}
