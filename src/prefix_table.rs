//! Longest-prefix match over IPv4 and IPv6 networks: an immutable table, built once, read without locks.
//!
//! # Design
//!
//! Each address family is kept apart and normalised to an integer (`u32` for IPv4, `u128` for
//! IPv6). Prefixes are sorted once by (network, length); a prefix's position in that order is its
//! id, and the values live in a `Vec<V>` indexed by id.
//!
//! The whole index of a prefix is one **key** of the address's width: the network shifted left
//! by a few tag bits (8 for IPv4, 9 for IPv6), then a "nested" flag and the prefix length in the
//! tag. Keys sort as (network, length) do, so a lookup binary-searches them directly for the
//! last prefix starting at or before the address: 4 bytes a prefix for IPv4, 16 for IPv6. The
//! network bits the shift drops are those every key of one index bucket shares with the address
//! looked up (the first-level index always spans at least the tag's width in bits), so a key
//! and the address give the whole network back.
//!
//! That last prefix `p` starting at or before the address either contains it, or the longest
//! prefix that does is one of `p`'s enclosing prefixes (prefixes nest or are disjoint, so any
//! prefix containing the address and starting before `p` contains `p`). A lookup therefore
//! checks `p`, and only when `p` misses and its key says it is nested walks its chain of
//! enclosing prefixes: a parent is kept only for nested prefixes (a bitmap with a rank per 64
//! prefixes, read together, then a `u32` per nested prefix), and an ancestor's network is `p`'s network cut to
//! the ancestor's length, so the walk reads one key per level. [`PrefixTable::matches`] walks the
//! same chain.
//!
//! The binary search is narrowed by a first-level index on the bits that follow those shared
//! by every key (for IPv4 normally the top bits; for IPv6 it skips e.g. the `2000::/3` that all
//! global unicast space shares), sized for about eight IPv4 or four IPv6 keys per bucket (half
//! a cache line of keys) within a per-family range: up to 2^18 buckets for IPv4, 2^16 for IPv6.
//! Each bucket entry is the position of its first key and its **carry**: the innermost prefix
//! that starts before the bucket and covers its first address (so covers the whole bucket). A
//! search that finds no key at or before the address in its bucket answers with the carry, so
//! a search never leaves its bucket.
//!
//! Real data is skewed: in a hosting/VPN range list most IPv6 ranges sit in one `/32`, so one
//! first-level bucket would hold ~78k keys. A bucket of more than `LEAF_MAX` keys (about 1 KiB
//! of them) is therefore split: it gets a node of its own, indexed the same way on the bits
//! after those its keys share (about one bucket per two keys, at most 2^16), recursively.
//! Keys stay in one sorted array; nodes only index ranges of it. A lookup follows one index
//! entry per level, usually one or two, and then binary-searches a few keys; a search that is
//! cut short at `MAX_DEPTH` levels just searches a larger bucket. Uniform data rarely splits,
//! and a bucket that is not split costs one flag test; the descent into nodes is kept out of
//! line.
//!
//! IPv4 and IPv6 never match each other. In particular an IPv4-mapped IPv6 address such as
//! `::ffff:10.0.0.1` is an IPv6 address to this table; callers that want it to match IPv4
//! networks must normalise it first (e.g. with [`std::net::Ipv6Addr::to_ipv4_mapped`]).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// Marks "no prefix" in parents and carries.
const NONE: u32 = u32::MAX;

/// An address family's integer form. Private: only `u32` (IPv4) and `u128` (IPv6) implement it.
trait Key: Copy + Ord {
    /// Address width in bits.
    const BITS: u32;
    /// The all-zero address.
    const ZERO: Self;
    /// Low bits of a key that hold the tag: the prefix length, then the "nested" flag. IPv4
    /// lengths (0..=32) leave bit 7 free for the flag; IPv6 lengths (0..=128) need all 8 bits,
    /// so the flag is bit 8.
    const TAG: u32;
    /// Most keys a bucket binary-searches directly; a bigger one gets a node of its own.
    /// About 1 KiB of keys: a search over that costs less than one more level would.
    const LEAF_MAX: usize;
    /// Bits of the first-level index for `n` prefixes, within a per-family range; at least
    /// `TAG`, so that every key of a bucket shares the bits its shift dropped.
    fn index_bits(n: usize) -> u32;
    /// From a `u32`.
    fn from_u32(v: u32) -> Self;
    /// The low 32 bits.
    fn low_u32(self) -> u32;
    /// Clears the host bits of a `len`-bit prefix.
    fn net(self, len: u8) -> Self;
    /// The last address of the `len`-bit prefix starting at `self`.
    fn last(self, len: u8) -> Self;
    /// `self >> shift`, with `shift == BITS` giving zero.
    fn high(self, shift: u32) -> Self;
    /// `self << shift`, with `shift == BITS` giving zero.
    fn shl(self, shift: u32) -> Self;
    /// Bucket number: `(self >> shift) & mask`; `shift == BITS` only with `mask == 0`.
    fn bucket(self, shift: u32, mask: usize) -> usize;
    /// First address of a bucket: the inverse of `high` and `bucket`.
    fn bucket_start(top: Self, top_shift: u32, bucket: usize, shift: u32) -> Self;
    /// Number of leading bits `self` and `other` share.
    fn common_bits(self, other: Self) -> u32;
    /// Back to an `IpNet`.
    fn to_net(self, len: u8) -> IpNet;

    /// The key of the prefix `self`/`len`.
    #[inline]
    fn pack(self, len: u8, nested: bool) -> Self {
        let tag = u32::from(len) | (u32::from(nested) << (Self::TAG - 1));
        Self::from_u32(tag).or(self.shl(Self::TAG))
    }
    /// What a lookup of the address `self` compares keys with: every key of a prefix starting
    /// at or before it is at most this.
    #[inline]
    fn probe(self) -> Self {
        Self::from_u32((1 << Self::TAG) - 1).or(self.shl(Self::TAG))
    }
    /// A key's prefix length.
    #[inline]
    fn len_of(self) -> u8 {
        // The length is the tag's low 8 bits (for IPv4 lengths only 6 of them, and bit 7 is
        // the flag, masked off here).
        (self.low_u32() & if Self::TAG == 8 { 0x7f } else { 0xff }) as u8
    }
    /// Whether a key's prefix lies inside another prefix.
    #[inline]
    fn is_nested(self) -> bool {
        self.low_u32() & (1 << (Self::TAG - 1)) != 0
    }
    /// A key's network, given an address (`like`) that shares its top `TAG` bits.
    #[inline]
    fn net_of(self, like: Self) -> Self {
        let low = self.high(Self::TAG);
        like.high(Self::BITS - Self::TAG)
            .shl(Self::BITS - Self::TAG)
            .or(low)
    }
    /// Bitwise or.
    fn or(self, other: Self) -> Self;
}

/// The [`Key`] methods that read the same for both address widths.
macro_rules! key_arithmetic {
    ($t:ty) => {
        #[inline]
        fn from_u32(v: u32) -> Self {
            v as $t
        }
        #[inline]
        fn low_u32(self) -> u32 {
            self as u32
        }
        #[inline]
        fn or(self, other: Self) -> Self {
            self | other
        }
        #[inline]
        fn net(self, len: u8) -> Self {
            self & <$t>::MAX
                .checked_shl(Self::BITS - u32::from(len))
                .unwrap_or(0)
        }
        #[inline]
        fn last(self, len: u8) -> Self {
            self | <$t>::MAX.checked_shr(u32::from(len)).unwrap_or(0)
        }
        #[inline]
        fn high(self, shift: u32) -> Self {
            self.checked_shr(shift).unwrap_or(0)
        }
        #[inline]
        fn shl(self, shift: u32) -> Self {
            self.checked_shl(shift).unwrap_or(0)
        }
        // `shift` reaches `BITS` only for a node indexed on no bits at all (`mask` 0, bucket 0),
        // where any value of the shift is right: a wrapping shift costs nothing, where a plain
        // one panics in debug builds.
        #[inline]
        fn bucket(self, shift: u32, mask: usize) -> usize {
            self.wrapping_shr(shift) as usize & mask
        }
        fn bucket_start(top: Self, top_shift: u32, bucket: usize, shift: u32) -> Self {
            top.checked_shl(top_shift).unwrap_or(0) | (bucket as $t).wrapping_shl(shift)
        }
        #[inline]
        fn common_bits(self, other: Self) -> u32 {
            (self ^ other).leading_zeros()
        }
    };
}

impl Key for u32 {
    const BITS: u32 = u32::BITS;
    const ZERO: Self = 0;
    const TAG: u32 = 8;
    // Small in unit tests, so that their tables split buckets and nest nodes.
    const LEAF_MAX: usize = if cfg!(test) { 12 } else { 256 };
    fn index_bits(n: usize) -> u32 {
        // About eight keys (32 bytes) a bucket; at most 18 bits, a 2 MiB index.
        (n / 8)
            .next_power_of_two()
            .trailing_zeros()
            .clamp(Self::TAG, 18)
    }
    key_arithmetic!(u32);
    #[inline]
    fn to_net(self, len: u8) -> IpNet {
        // `len` comes from a valid `Ipv4Net`, so this cannot fail.
        IpNet::V4(Ipv4Net::new(Ipv4Addr::from(self), len).expect("prefix length <= 32"))
    }
}

impl Key for u128 {
    const BITS: u32 = u128::BITS;
    const ZERO: Self = 0;
    const TAG: u32 = 9;
    const LEAF_MAX: usize = if cfg!(test) { 6 } else { 64 };
    fn index_bits(n: usize) -> u32 {
        // About four keys (64 bytes) a bucket; at most 16 bits, a 512 KiB index.
        (n / 4)
            .next_power_of_two()
            .trailing_zeros()
            .clamp(Self::TAG, 16)
    }
    key_arithmetic!(u128);
    #[inline]
    fn to_net(self, len: u8) -> IpNet {
        // `len` comes from a valid `Ipv6Net`, so this cannot fail.
        IpNet::V6(Ipv6Net::new(Ipv6Addr::from(self), len).expect("prefix length <= 128"))
    }
}

/// One entry of a bucket table.
#[derive(Clone, Copy)]
struct Bucket {
    /// Position of the bucket's first key (its keys run up to the next entry's), or, with
    /// `SPLIT` set, the node of a split bucket in `Family::nodes`.
    begin: u32,
    /// The innermost prefix that starts before the bucket and covers its first address (and so
    /// the whole bucket), or `NONE`.
    carry: u32,
}

/// 64 prefixes' nested flags and the nested prefixes before them.
#[derive(Clone, Copy)]
struct NestedWord {
    bits: u64,
    rank: u32,
}

/// Flags a bucket's `begin` that names a node of its own; the other bits are that node's
/// position in `Family::nodes`. Key positions stay below it (checked in `build`).
const SPLIT: u32 = 1 << 31;

/// Bits of a sub-node's index for `n` keys: about one bucket per two keys, at most
/// 2^16. Fewer (four keys a bucket, like the root) made skewed data nest deeper and cost
/// more per lookup; more cost memory for little gain.
fn sub_bits(n: usize) -> u32 {
    (n / 2).next_power_of_two().trailing_zeros().clamp(1, 16)
}

/// Most levels of nodes below the root. Each level skips the bits its keys share, so real
/// data needs two or three; the bound only caps lookup steps and memory on adversarial input.
const MAX_DEPTH: u32 = 8;

/// One level of the bucket index: the bits after those shared by every network under it
/// pick a bucket. The root covers a whole family; a sub-node covers one bucket of its parent.
#[derive(Clone)]
struct Node<K> {
    /// High bits shared by every network under the node (`net.high(top_shift)`).
    top: K,
    /// Shift that isolates the shared high bits.
    top_shift: u32,
    /// Shift that brings the bucket bits to the bottom.
    shift: u32,
    /// Mask of the bucket bits after `shift`.
    mask: usize,
    /// The node's buckets are `index[base..=base + mask]`, followed by an end marker.
    base: u32,
    /// Position of the node's first key: where the bucket before a split one ends.
    first: u32,
    /// Position of the node's last key, for addresses above every bucket.
    last: u32,
    /// Network of that last key.
    last_net: K,
}

impl<K: Key> Node<K> {
    /// A node with one empty bucket: every address searches `keys[0..0]` and finds nothing.
    fn empty() -> Self {
        Node {
            top: K::ZERO,
            top_shift: K::BITS,
            shift: 0,
            mask: 0,
            base: 0,
            first: 0,
            last: 0,
            last_net: K::ZERO,
        }
    }
}

/// The index of one address family. Prefix ids are positions in `keys`.
#[derive(Clone)]
struct Family<K: Key> {
    /// One key per prefix (network, nested flag, length), sorted by (network, length).
    keys: Vec<K>,
    /// `tops[t]` is the first position whose network's top `TAG` bits are at least `t`
    /// (`2^TAG + 1` entries; empty when there are no keys): what listing adds to the keys.
    tops: Vec<u32>,
    /// Bit `i % 64` of word `i / 64`: prefix `i` lies inside another (its key's flag, kept
    /// here too so that ranks can be counted), with the number of nested prefixes before
    /// that word: one read for both when walking up.
    nested: Vec<NestedWord>,
    /// Nearest enclosing prefix of each nested prefix, in id order.
    parents: Vec<u32>,
    /// Bucket tables of all nodes, each followed by an end marker (whose `begin` is the
    /// position after the node's last key).
    index: Vec<Bucket>,
    /// The first-level node.
    root: Node<K>,
    /// Nodes of split buckets: those with more than `LEAF_MAX` keys.
    nodes: Vec<Node<K>>,
}

impl<K: Key> Family<K> {
    fn empty() -> Self {
        let end = Bucket {
            begin: 0,
            carry: NONE,
        };
        Family {
            keys: Vec::new(),
            tops: Vec::new(),
            nested: Vec::new(),
            parents: Vec::new(),
            index: vec![end; 2],
            root: Node::empty(),
            nodes: Vec::new(),
        }
    }

    /// Builds from `(network, length, input position, value)` with host bits already clear.
    /// Values of the kept prefixes are appended to `values` in id order.
    fn build<V>(mut items: Vec<(K, u8, u32, V)>, values: &mut Vec<V>) -> Self {
        if items.is_empty() {
            return Self::empty();
        }
        // Among duplicates the input position orders them, so the last one can win. Unstable:
        // a stable sort would allocate half the input again as scratch (15 MB at a million).
        items.sort_unstable_by_key(|item| (item.0, item.1, item.2));

        let mut nets = Vec::with_capacity(items.len());
        let mut lens = Vec::with_capacity(items.len());
        let mut iter = items.into_iter().peekable();
        while let Some((net, len, _, value)) = iter.next() {
            if iter
                .peek()
                .is_some_and(|next| next.0 == net && next.1 == len)
            {
                continue; // A later entry for the same network replaces this one.
            }
            nets.push(net);
            lens.push(len);
            values.push(value);
        }
        // Ids and positions are u32, and positions must stay below `SPLIT`.
        assert!(
            nets.len() < (u32::MAX / 4) as usize,
            "PrefixTable: too many prefixes in one address family"
        );

        let parents = sweep(&nets, &lens);
        let n = nets.len();
        let mut family = Family {
            keys: Vec::with_capacity(n),
            tops: Vec::with_capacity((1 << K::TAG) + 1),
            nested: Vec::with_capacity(n.div_ceil(64)),
            index: Vec::new(),
            ..Self::empty()
        };
        let nested_count = parents.iter().filter(|&&p| p != NONE).count();
        family.parents.reserve_exact(nested_count);
        for (id, &parent) in parents.iter().enumerate() {
            if id % 64 == 0 {
                family.nested.push(NestedWord {
                    bits: 0,
                    rank: family.parents.len() as u32,
                });
            }
            if parent != NONE {
                family.nested[id / 64].bits |= 1 << (id % 64);
                family.parents.push(parent);
            }
            family.keys.push(nets[id].pack(lens[id], parent != NONE));
        }
        let mut at = 0;
        for t in 0..=(1usize << K::TAG) {
            while at < n && nets[at].high(K::BITS - K::TAG).low_u32() < t as u32 {
                at += 1;
            }
            family.tops.push(at as u32);
        }

        let bits = K::index_bits(n);
        family.index.reserve_exact((1 << bits) + 1);
        family.root = family.lay_out(&nets, &lens, &parents, 0, n, bits, 0);
        family.index.shrink_to_fit();
        family.nodes.shrink_to_fit();
        family
    }

    /// Lays out a node over the prefixes `lo..hi` (non-empty, all in one bucket of the
    /// parent), indexed on up to `bits` bits after those every network shares: appends its
    /// bucket table to `index`, depth first through buckets of more than `LEAF_MAX` keys,
    /// which get nodes of their own.
    #[allow(clippy::too_many_arguments)]
    fn lay_out(
        &mut self,
        nets: &[K],
        lens: &[u8],
        parents: &[u32],
        lo: usize,
        hi: usize,
        bits: u32,
        depth: u32,
    ) -> Node<K> {
        let (first, last) = (nets[lo], nets[hi - 1]);
        // Networks are sorted, so the first and last share the fewest leading bits.
        let common = first.common_bits(last);
        let bits = bits.min(K::BITS - common);
        let node = Node {
            top: first.high(K::BITS - common),
            top_shift: K::BITS - common,
            shift: K::BITS - common - bits,
            mask: (1usize << bits) - 1,
            base: self.index.len() as u32,
            first: lo as u32,
            last: (hi - 1) as u32,
            last_net: last,
        };
        let end = Bucket {
            begin: hi as u32,
            carry: NONE,
        };
        self.index.resize(self.index.len() + node.mask + 2, end);

        let mut i = lo; // first prefix of the next bucket
        for bucket in 0..=node.mask {
            let slot = node.base as usize + bucket;
            let start = K::bucket_start(node.top, node.top_shift, bucket, node.shift);
            // Every prefix before `i` starts before the bucket; the innermost of those that
            // covers `start` is on the chain of the last of them.
            let mut carry = if i > 0 { (i - 1) as u32 } else { NONE };
            while carry != NONE && start.net(lens[carry as usize]) != nets[carry as usize] {
                carry = parents[carry as usize];
            }
            let mut end = i;
            while end < hi && nets[end].bucket(node.shift, node.mask) == bucket {
                end += 1;
            }
            // A bucket of one network (with many lengths) cannot be split further.
            if end - i > K::LEAF_MAX && depth < MAX_DEPTH && nets[i] != nets[end - 1] {
                let child = self.lay_out(nets, lens, parents, i, end, sub_bits(end - i), depth + 1);
                self.index[slot] = Bucket {
                    begin: SPLIT | self.nodes.len() as u32,
                    carry,
                };
                self.nodes.push(child);
            } else {
                self.index[slot] = Bucket {
                    begin: i as u32,
                    carry,
                };
            }
            i = end;
        }
        node
    }

    /// Where the keys of the bucket before index entry `slot` end.
    #[inline]
    fn bucket_end(&self, slot: usize) -> usize {
        let entry = self.index[slot].begin;
        if entry & SPLIT == 0 {
            entry as usize
        } else {
            self.nodes[(entry & !SPLIT) as usize].first as usize
        }
    }

    /// The nearest enclosing prefix of prefix `id`.
    #[inline]
    fn parent(&self, id: u32) -> Option<u32> {
        let (word, bit) = ((id / 64) as usize, id % 64);
        let NestedWord { bits, rank } = *self.nested.get(word)?;
        if bits & (1 << bit) == 0 {
            return None;
        }
        let rank = rank + (bits & ((1 << bit) - 1)).count_ones();
        Some(self.parents[rank as usize])
    }

    /// Id and length of the longest prefix containing `ip`.
    #[inline]
    fn find(&self, ip: K) -> Option<(u32, u8)> {
        let (mut id, net) = self.find_in(&self.root, ip, NONE)?;
        let mut key = self.keys[id as usize];
        loop {
            // Every prefix on the chain contains the candidate, so its network is the
            // candidate's cut to its length.
            let len = key.len_of();
            if ip.net(len) == net.net(len) {
                return Some((id, len));
            }
            if !key.is_nested() {
                return None;
            }
            id = self.parent(id)?;
            key = self.keys[id as usize];
        }
    }

    /// The last prefix starting at or before `ip` under `node`, with its network; or a prefix
    /// known to contain `ip` (a carry), with `ip` itself as its network. `carry` is that of
    /// the parent's bucket.
    #[inline(always)]
    fn find_in(&self, node: &Node<K>, ip: K, carry: u32) -> Option<(u32, K)> {
        let high = ip.high(node.top_shift);
        if high == node.top {
            let slot = node.base as usize + ip.bucket(node.shift, node.mask);
            let bucket = self.index[slot];
            if bucket.begin & SPLIT != 0 {
                return self.find_below(bucket, ip);
            }
            let begin = bucket.begin as usize;
            let keys = &self.keys[begin..self.bucket_end(slot + 1)];
            let probe = ip.probe();
            let n = keys.partition_point(|&k| k <= probe);
            match n.checked_sub(1) {
                Some(at) => Some(((begin + at) as u32, keys[at].net_of(ip))),
                None => (bucket.carry != NONE).then_some((bucket.carry, ip)),
            }
        } else if high > node.top {
            Some((node.last, node.last_net))
        } else {
            (carry != NONE).then_some((carry, ip))
        }
    }

    /// [`Family::find_in`] for a split bucket's node. Out of line, so that the common
    /// single-level lookup stays short.
    #[inline(never)]
    fn find_below(&self, bucket: Bucket, ip: K) -> Option<(u32, K)> {
        self.find_in(
            &self.nodes[(bucket.begin & !SPLIT) as usize],
            ip,
            bucket.carry,
        )
    }

    fn len(&self) -> usize {
        self.keys.len()
    }

    /// Every prefix as (network, length), in id order.
    fn prefixes(&self) -> impl Iterator<Item = (K, u8)> + '_ {
        let groups = self.tops.len().saturating_sub(1);
        (0..groups).flat_map(move |t| {
            let like = K::from_u32(t as u32).shl(K::BITS - K::TAG);
            let run = self.tops[t] as usize..self.tops[t + 1] as usize;
            self.keys[run]
                .iter()
                .map(move |&key| (key.net_of(like), key.len_of()))
        })
    }

    fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        self.keys.capacity() * size_of::<K>()
            + self.tops.capacity() * size_of::<u32>()
            + self.nested.capacity() * size_of::<NestedWord>()
            + self.parents.capacity() * size_of::<u32>()
            + self.index.capacity() * size_of::<Bucket>()
            + self.nodes.capacity() * size_of::<Node<K>>()
    }
}

/// One pass over the sorted prefixes: the nearest enclosing prefix of each, or `NONE`.
fn sweep<K: Key>(nets: &[K], lens: &[u8]) -> Vec<u32> {
    let last = |id: u32| nets[id as usize].last(lens[id as usize]);
    let mut parents = Vec::with_capacity(nets.len());
    // Open prefixes, outermost first; depth is at most BITS + 1.
    let mut stack: Vec<u32> = Vec::with_capacity(K::BITS as usize + 1);
    for (id, &net) in nets.iter().enumerate() {
        while stack.last().is_some_and(|&top| last(top) < net) {
            stack.pop();
        }
        // Prefixes are aligned, so whatever is still open contains this whole prefix.
        parents.push(stack.last().copied().unwrap_or(NONE));
        stack.push(id as u32);
    }
    parents
}

/// An immutable longest-prefix-match table from IPv4/IPv6 networks to values.
///
/// Built once with [`PrefixTable::build`], then shared freely (it is `Send + Sync` when `V` is)
/// and read without locks. Lookups are a bucket index plus a short binary search.
///
/// IPv4 addresses only match IPv4 networks and IPv6 addresses only IPv6 networks. An
/// IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is treated as IPv6: normalise it with
/// [`std::net::Ipv6Addr::to_ipv4_mapped`] first if it should match IPv4 networks.
///
/// # Example
///
/// ```
/// use actix_bouncer::prefix_table::PrefixTable;
/// use std::net::IpAddr;
///
/// let table = PrefixTable::build([
///     ("10.0.0.0/8".parse().unwrap(), "private"),
///     ("10.1.2.0/24".parse().unwrap(), "office"),
///     ("2001:db8::/32".parse().unwrap(), "docs"),
/// ]);
///
/// let ip: IpAddr = "10.1.2.3".parse().unwrap();
/// let (net, value) = table.lookup(ip).unwrap();
/// assert_eq!(net.to_string(), "10.1.2.0/24");
/// assert_eq!(*value, "office");
///
/// let chain: Vec<_> = table.matches(ip).map(|(_, v)| *v).collect();
/// assert_eq!(chain, ["office", "private"]);
///
/// assert!(table.contains("2001:db8::1".parse().unwrap()));
/// assert!(!table.contains("192.168.0.1".parse().unwrap()));
/// ```
#[derive(Clone)]
pub struct PrefixTable<V> {
    v4: Family<u32>,
    v6: Family<u128>,
    /// Values by id: the IPv4 prefixes' first, then the IPv6 ones (offset by `v4.len()`).
    values: Vec<V>,
}

impl<V> Default for PrefixTable<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V> PrefixTable<V> {
    /// An empty table.
    pub fn new() -> Self {
        PrefixTable {
            v4: Family::empty(),
            v6: Family::empty(),
            values: Vec::new(),
        }
    }

    /// Builds a table. Host bits of each network are cleared (`10.1.2.3/8` is `10.0.0.0/8`).
    /// When the same network appears more than once, the last entry wins.
    ///
    /// Runs in `O(n log n)` with one sort per address family.
    ///
    /// # Panics
    ///
    /// If one address family has more than about a billion (2^30) distinct networks.
    pub fn build(entries: impl IntoIterator<Item = (IpNet, V)>) -> Self {
        let entries = entries.into_iter();
        // Reserved once at the most there may be: a vector grown by doubling frees a chunk at
        // each step, and freed chunks of a few MiB make glibc keep later ones resident.
        let (least, most) = entries.size_hint();
        let mut v4 = Vec::with_capacity(most.unwrap_or(least));
        let mut v6 = Vec::new();
        for (at, (net, value)) in entries.enumerate() {
            // Positions are u32, like every id here (a family holds under 2^30 prefixes).
            let at = at as u32;
            match net {
                IpNet::V4(n) => {
                    let len = n.prefix_len();
                    v4.push((u32::from(n.addr()).net(len), len, at, value));
                }
                IpNet::V6(n) => {
                    let len = n.prefix_len();
                    v6.push((u128::from(n.addr()).net(len), len, at, value));
                }
            }
        }
        let mut values = Vec::with_capacity(v4.len() + v6.len());
        let v4 = Family::build(v4, &mut values);
        let v6 = Family::build(v6, &mut values);
        values.shrink_to_fit();
        PrefixTable { v4, v6, values }
    }

    /// Number of distinct networks.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the table has no networks.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The longest network containing `ip`, with its value.
    #[inline]
    pub fn lookup(&self, ip: IpAddr) -> Option<(IpNet, &V)> {
        // The network is rebuilt from `ip` and the length, so only the value is read.
        match ip {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                let (id, len) = self.v4.find(a)?;
                Some((a.net(len).to_net(len), &self.values[id as usize]))
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                let (id, len) = self.v6.find(a)?;
                let net = a.net(len).to_net(len);
                Some((net, &self.values[self.v4.len() + id as usize]))
            }
        }
    }

    /// Every network containing `ip`, longest first (the nesting chain).
    pub fn matches(&self, ip: IpAddr) -> impl Iterator<Item = (IpNet, &V)> + '_ {
        // Every network on the chain contains `ip`: it is `ip` cut to the network's length.
        self.match_lengths(ip).map(move |(len, value)| {
            let net = match ip {
                IpAddr::V4(a) => u32::from(a).net(len).to_net(len),
                IpAddr::V6(a) => u128::from(a).net(len).to_net(len),
            };
            (net, value)
        })
    }

    /// Every network containing `ip`, longest first, as its prefix length and value: what
    /// [`matches`](Self::matches) gives without rebuilding each network.
    pub fn match_lengths(&self, ip: IpAddr) -> impl Iterator<Item = (u8, &V)> + '_ {
        let (is_v6, innermost) = match ip {
            IpAddr::V4(a) => (false, self.v4.find(u32::from(a))),
            IpAddr::V6(a) => (true, self.v6.find(u128::from(a))),
        };
        std::iter::successors(innermost, move |&(id, _)| {
            if is_v6 {
                self.v6
                    .parent(id)
                    .map(|p| (p, self.v6.keys[p as usize].len_of()))
            } else {
                self.v4
                    .parent(id)
                    .map(|p| (p, self.v4.keys[p as usize].len_of()))
            }
        })
        .map(move |(id, len)| {
            let offset = if is_v6 { self.v4.len() } else { 0 };
            (len, &self.values[offset + id as usize])
        })
    }

    /// Whether any network contains `ip`.
    #[inline]
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => self.v4.find(u32::from(a)).is_some(),
            IpAddr::V6(a) => self.v6.find(u128::from(a)).is_some(),
        }
    }

    /// All entries, in address order (IPv4 first), for listing/debugging.
    ///
    /// Address order is by network address, then by prefix length (shorter first), so a
    /// network comes just before the networks nested in it.
    pub fn iter(&self) -> impl Iterator<Item = (IpNet, &V)> + '_ {
        let v4 = self.v4.prefixes().map(|(n, l)| n.to_net(l));
        let v6 = self.v6.prefixes().map(|(n, l)| n.to_net(l));
        v4.chain(v6).zip(&self.values)
    }

    /// Approximate heap bytes held by the index itself (not counting heap memory owned by the values).
    ///
    /// Includes the `Vec<V>` that stores the values inline (`len() * size_of::<V>()`).
    pub fn heap_bytes(&self) -> usize {
        self.v4.heap_bytes()
            + self.v6.heap_bytes()
            + self.values.capacity() * std::mem::size_of::<V>()
    }
}

impl<V: fmt::Debug> fmt::Debug for PrefixTable<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A summary: a table of a million entries is no use in a log line.
        f.debug_struct("PrefixTable")
            .field("v4_networks", &self.v4.len())
            .field("v6_networks", &self.v6.len())
            .field("v4_nested", &self.v4.parents.len())
            .field("v6_nested", &self.v6.parents.len())
            .field("v4_buckets", &self.v4.index.len())
            .field("v6_buckets", &self.v6.index.len())
            .field("heap_bytes", &self.heap_bytes())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn table(rules: &[(&str, u32)]) -> PrefixTable<u32> {
        PrefixTable::build(rules.iter().map(|&(n, v)| (net(n), v)))
    }

    fn look(t: &PrefixTable<u32>, a: &str) -> Option<(String, u32)> {
        t.lookup(ip(a)).map(|(n, v)| (n.to_string(), *v))
    }

    fn chain(t: &PrefixTable<u32>, a: &str) -> Vec<u32> {
        t.matches(ip(a)).map(|(_, v)| *v).collect()
    }

    #[test]
    fn send_sync_clone_default() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<PrefixTable<u32>>();
        let t = table(&[("10.0.0.0/8", 1)]);
        let c = t.clone();
        assert_eq!(look(&c, "10.9.9.9"), Some(("10.0.0.0/8".into(), 1)));
        assert!(PrefixTable::<u32>::default().is_empty());
        let dbg = format!("{t:?}");
        assert!(dbg.contains("v4_networks: 1"), "{dbg}");
    }

    #[test]
    fn empty() {
        let t = PrefixTable::<u32>::new();
        assert!(t.is_empty());
        assert_eq!(t.len(), 0);
        for a in [
            "0.0.0.0",
            "1.2.3.4",
            "255.255.255.255",
            "::",
            "2001:db8::1",
            "ffff::",
        ] {
            assert_eq!(t.lookup(ip(a)), None);
            assert!(!t.contains(ip(a)));
            assert_eq!(t.matches(ip(a)).count(), 0);
        }
        assert_eq!(t.iter().count(), 0);
        let built = PrefixTable::<u32>::build([]);
        assert!(built.is_empty());
        assert!(!built.contains(ip("0.0.0.0")));
    }

    #[test]
    fn zero_prefix_matches_whole_family_only() {
        let t = table(&[("0.0.0.0/0", 4)]);
        assert_eq!(look(&t, "0.0.0.0"), Some(("0.0.0.0/0".into(), 4)));
        assert_eq!(look(&t, "255.255.255.255"), Some(("0.0.0.0/0".into(), 4)));
        assert_eq!(look(&t, "::"), None);

        let t = table(&[("::/0", 6), ("0.0.0.0/0", 4), ("10.0.0.0/8", 8)]);
        assert_eq!(look(&t, "::"), Some(("::/0".into(), 6)));
        assert_eq!(
            look(&t, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
                .unwrap()
                .1,
            6
        );
        assert_eq!(chain(&t, "10.1.1.1"), [8, 4]);
        assert_eq!(chain(&t, "11.1.1.1"), [4]);
        assert_eq!(chain(&t, "2001:db8::"), [6]);
    }

    #[test]
    fn nested_chain_longest_first() {
        let t = table(&[
            ("10.1.2.3/32", 32),
            ("10.0.0.0/8", 8),
            ("10.1.0.0/16", 16),
            ("10.1.2.0/24", 24),
            ("10.1.2.0/25", 25),
        ]);
        assert_eq!(t.len(), 5);
        assert_eq!(look(&t, "10.1.2.3"), Some(("10.1.2.3/32".into(), 32)));
        assert_eq!(chain(&t, "10.1.2.3"), [32, 25, 24, 16, 8]);
        assert_eq!(chain(&t, "10.1.2.4"), [25, 24, 16, 8]);
        assert_eq!(chain(&t, "10.1.2.200"), [24, 16, 8]);
        assert_eq!(chain(&t, "10.1.3.0"), [16, 8]);
        assert_eq!(chain(&t, "10.2.0.0"), [8]);
        assert_eq!(chain(&t, "11.0.0.0"), Vec::<u32>::new());
        let nets: Vec<String> = t
            .matches(ip("10.1.2.3"))
            .map(|(n, _)| n.to_string())
            .collect();
        assert_eq!(
            nets,
            [
                "10.1.2.3/32",
                "10.1.2.0/25",
                "10.1.2.0/24",
                "10.1.0.0/16",
                "10.0.0.0/8"
            ]
        );
    }

    #[test]
    fn parent_fully_covered_by_children() {
        // The /24 owns no interval of its own but must still be listed and chained.
        let t = table(&[
            ("10.0.0.0/24", 24),
            ("10.0.0.0/25", 1),
            ("10.0.0.128/25", 2),
        ]);
        assert_eq!(chain(&t, "10.0.0.1"), [1, 24]);
        assert_eq!(chain(&t, "10.0.0.255"), [2, 24]);
        assert_eq!(look(&t, "10.0.1.0"), None);
        assert_eq!(look(&t, "9.255.255.255"), None);
        let listed: Vec<String> = t.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(listed, ["10.0.0.0/24", "10.0.0.0/25", "10.0.0.128/25"]);
    }

    #[test]
    fn duplicates_last_wins() {
        let t = table(&[
            ("192.168.0.0/16", 1),
            ("10.0.0.0/8", 2),
            ("192.168.0.0/16", 3),
            ("192.168.7.7/16", 4), // same network once host bits are cleared
            ("2001:db8::/32", 5),
            ("2001:db8::/32", 6),
        ]);
        assert_eq!(t.len(), 3);
        assert_eq!(look(&t, "192.168.1.1"), Some(("192.168.0.0/16".into(), 4)));
        assert_eq!(look(&t, "2001:db8::1").unwrap().1, 6);
        assert_eq!(chain(&t, "192.168.1.1"), [4]);
    }

    #[test]
    fn host_bits_cleared() {
        let t = table(&[("10.1.2.3/8", 8), ("2001:db8:1:2:3:4:5:6/48", 48)]);
        assert_eq!(look(&t, "10.200.0.0"), Some(("10.0.0.0/8".into(), 8)));
        assert_eq!(
            look(&t, "2001:db8:1:ffff::"),
            Some(("2001:db8:1::/48".into(), 48))
        );
        let listed: Vec<String> = t.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(listed, ["10.0.0.0/8", "2001:db8:1::/48"]);
    }

    #[test]
    fn range_edges_v4() {
        let t = table(&[
            ("10.0.0.0/8", 8),
            ("10.20.30.0/24", 24),
            ("12.0.0.0/31", 31),
        ]);
        assert_eq!(look(&t, "9.255.255.255"), None);
        assert_eq!(look(&t, "10.0.0.0").unwrap().1, 8);
        assert_eq!(look(&t, "10.255.255.255").unwrap().1, 8);
        assert_eq!(look(&t, "11.0.0.0"), None);
        assert_eq!(look(&t, "10.20.29.255").unwrap().1, 8);
        assert_eq!(look(&t, "10.20.30.0").unwrap().1, 24);
        assert_eq!(look(&t, "10.20.30.255").unwrap().1, 24);
        assert_eq!(look(&t, "10.20.31.0").unwrap().1, 8);
        assert_eq!(look(&t, "11.255.255.255"), None);
        assert_eq!(look(&t, "12.0.0.0").unwrap().1, 31);
        assert_eq!(look(&t, "12.0.0.1").unwrap().1, 31);
        assert_eq!(look(&t, "12.0.0.2"), None);
    }

    #[test]
    fn range_edges_v6() {
        let t = table(&[
            ("2001:db8::/32", 32),
            ("2001:db8:5::/48", 48),
            ("2a00::1/128", 128),
        ]);
        assert_eq!(look(&t, "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff"), None);
        assert_eq!(look(&t, "2001:db8::").unwrap().1, 32);
        assert_eq!(
            look(&t, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")
                .unwrap()
                .1,
            32
        );
        assert_eq!(look(&t, "2001:db9::"), None);
        assert_eq!(
            look(&t, "2001:db8:4:ffff:ffff:ffff:ffff:ffff").unwrap().1,
            32
        );
        assert_eq!(look(&t, "2001:db8:5::").unwrap().1, 48);
        assert_eq!(
            look(&t, "2001:db8:5:ffff:ffff:ffff:ffff:ffff").unwrap().1,
            48
        );
        assert_eq!(look(&t, "2001:db8:6::").unwrap().1, 32);
        assert_eq!(look(&t, "2a00::"), None);
        assert_eq!(look(&t, "2a00::1"), Some(("2a00::1/128".into(), 128)));
        assert_eq!(look(&t, "2a00::2"), None);
    }

    #[test]
    fn families_never_cross_match() {
        let t = table(&[("10.0.0.0/8", 4), ("::/96", 6), ("::ffff:0:0/96", 7)]);
        // IPv4-mapped and IPv4-compatible forms of 10.0.0.1 are IPv6 addresses here.
        assert_eq!(look(&t, "::ffff:10.0.0.1").unwrap().1, 7);
        assert_eq!(look(&t, "::10.0.0.1").unwrap().1, 6);
        assert_eq!(look(&t, "10.0.0.1").unwrap().1, 4);
        assert_eq!(look(&t, "0.0.0.1"), None);
        let only6 = table(&[("::/0", 6)]);
        assert!(!only6.contains(ip("1.2.3.4")));
        let only4 = table(&[("0.0.0.0/0", 4)]);
        assert!(!only4.contains(ip("::1")));
        assert!(!only4.contains(ip("::ffff:1.2.3.4")));
    }

    #[test]
    fn max_addresses() {
        let t = table(&[
            ("255.255.255.255/32", 1),
            ("255.255.255.0/24", 2),
            ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", 3),
            ("ffff::/16", 4),
        ]);
        assert_eq!(chain(&t, "255.255.255.255"), [1, 2]);
        assert_eq!(chain(&t, "255.255.255.254"), [2]);
        assert_eq!(look(&t, "255.255.254.255"), None);
        assert_eq!(chain(&t, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), [3, 4]);
        assert_eq!(chain(&t, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"), [4]);
        assert_eq!(look(&t, "fffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), None);
        let single = table(&[("255.255.255.255/32", 9)]);
        assert_eq!(look(&single, "255.255.255.255").unwrap().1, 9);
        assert_eq!(look(&single, "255.255.255.254"), None);
        assert_eq!(look(&single, "0.0.0.0"), None);
    }

    #[test]
    fn single_and_zero_addresses() {
        let t = table(&[("0.0.0.0/32", 1), ("::/128", 2)]);
        assert_eq!(look(&t, "0.0.0.0").unwrap().1, 1);
        assert_eq!(look(&t, "0.0.0.1"), None);
        assert_eq!(look(&t, "::").unwrap().1, 2);
        assert_eq!(look(&t, "::1"), None);
    }

    #[test]
    fn iter_in_address_order_and_heap_bytes() {
        let t = table(&[
            ("2001:db8::/32", 1),
            ("10.0.0.0/8", 2),
            ("1.0.0.0/8", 3),
            ("10.0.0.0/16", 4),
        ]);
        let listed: Vec<(String, u32)> = t.iter().map(|(n, v)| (n.to_string(), *v)).collect();
        assert_eq!(
            listed,
            [
                ("1.0.0.0/8".to_string(), 3),
                ("10.0.0.0/8".to_string(), 2),
                ("10.0.0.0/16".to_string(), 4),
                ("2001:db8::/32".to_string(), 1),
            ]
        );
        assert!(t.heap_bytes() > 0);
    }

    /// A reference model: the rules after host-bit clearing and last-wins dedup, matched
    /// by scanning every rule.
    struct Naive {
        rules: Vec<(IpNet, u32)>,
    }

    impl Naive {
        fn new(input: &[(IpNet, u32)]) -> Self {
            let mut map = BTreeMap::new();
            for &(n, v) in input {
                map.insert(n.trunc(), v);
            }
            Naive {
                rules: map.into_iter().collect(),
            }
        }

        /// Matching rules, longest first.
        fn matches(&self, ip: IpAddr) -> Vec<(IpNet, u32)> {
            let mut hits: Vec<(IpNet, u32)> = self
                .rules
                .iter()
                .copied()
                .filter(|(n, _)| n.contains(&ip))
                .collect();
            hits.sort_by_key(|(n, _)| std::cmp::Reverse(n.prefix_len()));
            hits
        }
    }

    /// Rules are drawn near a few anchors so that they nest, touch and repeat. In some cases
    /// every anchor and offset shares the top `spread` bits, so the whole table sits in a
    /// small corner of the address space (exercising the shared-high-bits path).
    #[derive(Debug, Clone)]
    struct Cluster {
        v4: [u32; 8],
        v6: [u128; 8],
        spread4: u32,
        spread6: u32,
    }

    fn cluster() -> impl Strategy<Value = Cluster> {
        let base4 = prop_oneof![4 => any::<u32>(), 1 => Just(0), 1 => Just(u32::MAX)];
        let base6 = prop_oneof![4 => any::<u128>(), 1 => Just(0), 1 => Just(u128::MAX)];
        (
            (
                base4,
                prop_oneof![0u32..=32, 16u32..=32],
                prop::array::uniform8(any::<u32>()),
            ),
            (
                base6,
                prop_oneof![0u32..=128, 64u32..=128],
                prop::array::uniform8(any::<u128>()),
            ),
        )
            .prop_map(|((b4, spread4, r4), (b6, spread6, r6))| Cluster {
                v4: r4.map(|r| b4 ^ r.checked_shr(spread4).unwrap_or(0)),
                v6: r6.map(|r| b6 ^ r.checked_shr(spread6).unwrap_or(0)),
                spread4,
                spread6,
            })
    }

    #[derive(Debug, Clone)]
    struct RuleSpec {
        anchor: usize,
        v6: bool,
        len4: u8,
        len6: u8,
        jitter: u128,
        shr4: u32,
        shr6: u32,
        value: u32,
    }

    fn rule_spec() -> impl Strategy<Value = RuleSpec> {
        (
            (0usize..8, prop::bool::weighted(0.3)),
            prop_oneof![0u8..=32, 16u8..=32, 24u8..=32],
            prop_oneof![0u8..=128, 32u8..=64, 100u8..=128],
            (any::<u128>(), 0u32..=32, 0u32..=128),
            0u32..64,
        )
            .prop_map(
                |((anchor, v6), len4, len6, (jitter, shr4, shr6), value)| RuleSpec {
                    anchor,
                    v6,
                    len4,
                    len6,
                    jitter,
                    shr4,
                    shr6,
                    value,
                },
            )
    }

    fn make_rule(c: &Cluster, s: &RuleSpec) -> IpNet {
        if s.v6 {
            let offset = s.jitter.checked_shr(s.shr6.max(c.spread6)).unwrap_or(0);
            let a = c.v6[s.anchor] ^ offset;
            IpNet::V6(Ipv6Net::new(Ipv6Addr::from(a), s.len6).unwrap())
        } else {
            let offset = (s.jitter as u32)
                .checked_shr(s.shr4.max(c.spread4))
                .unwrap_or(0);
            let a = c.v4[s.anchor] ^ offset;
            IpNet::V4(Ipv4Net::new(Ipv4Addr::from(a), s.len4).unwrap())
        }
    }

    /// First and last address of `n`, and the neighbours just outside it.
    fn edges(n: IpNet) -> Vec<IpAddr> {
        match n {
            IpNet::V4(n) => {
                let (first, last) = (u32::from(n.network()), u32::from(n.broadcast()));
                let mut v = vec![first, last];
                v.extend(first.checked_sub(1));
                v.extend(last.checked_add(1));
                v.into_iter().map(|a| IpAddr::V4(a.into())).collect()
            }
            IpNet::V6(n) => {
                let (first, last) = (u128::from(n.network()), u128::from(n.broadcast()));
                let mut v = vec![first, last];
                v.extend(first.checked_sub(1));
                v.extend(last.checked_add(1));
                v.into_iter().map(|a| IpAddr::V6(a.into())).collect()
            }
        }
    }

    /// Found by `agrees_with_naive_matcher`: a table of a few prefixes spanning the whole
    /// address space is indexed on no bits, and its shift is the key's width.
    #[test]
    fn a_tiny_table_spanning_the_whole_space() {
        for nets in [
            ["::/0", "::/1"],
            ["0.0.0.0/0", "0.0.0.0/1"],
            ["::/0", "8000::/1"],
        ] {
            let table = PrefixTable::build(
                nets.iter()
                    .enumerate()
                    .map(|(i, n)| (n.parse::<IpNet>().unwrap(), i)),
            );
            for ip in [
                "::",
                "::1",
                "7fff::1",
                "8000::",
                "ffff::1",
                "0.0.0.0",
                "200.0.0.1",
            ] {
                let ip: IpAddr = ip.parse().unwrap();
                let want = nets
                    .iter()
                    .map(|n| n.parse::<IpNet>().unwrap())
                    .filter(|n| n.contains(&ip))
                    .max_by_key(|n| n.prefix_len());
                assert_eq!(table.lookup(ip).map(|(n, _)| n), want, "{nets:?} {ip}");
            }
        }
    }

    proptest! {
        // Inputs are regenerated each run; a failure prints the shrunk case, so no regression
        // files are written next to the source.
        #![proptest_config(ProptestConfig {
            cases: 48,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn agrees_with_naive_matcher(
            cluster in cluster(),
            specs in prop::collection::vec(rule_spec(), 0..1500),
            extra in prop::collection::vec((any::<bool>(), any::<u128>()), 0..200),
        ) {
            let input: Vec<(IpNet, u32)> =
                specs.iter().map(|s| (make_rule(&cluster, s), s.value)).collect();
            let table = PrefixTable::build(input.iter().copied());
            let naive = Naive::new(&input);
            prop_assert_eq!(table.len(), naive.rules.len());
            let listed: Vec<(IpNet, u32)> = table.iter().map(|(n, v)| (n, *v)).collect();
            prop_assert_eq!(&listed, &naive.rules);

            let mut probes: Vec<IpAddr> = naive.rules.iter().flat_map(|&(n, _)| edges(n)).collect();
            for &(v6, a) in &extra {
                let ip = if v6 { IpAddr::V6(a.into()) } else { IpAddr::V4((a as u32).into()) };
                probes.push(ip);
            }
            probes.extend(cluster.v4.iter().map(|&a| IpAddr::V4(a.into())));
            probes.extend(cluster.v6.iter().map(|&a| IpAddr::V6(a.into())));
            for ip in probes {
                let want = naive.matches(ip);
                let got: Vec<(IpNet, u32)> = table.matches(ip).map(|(n, v)| (n, *v)).collect();
                prop_assert_eq!(&got, &want, "matches({})", ip);
                let longest = table.lookup(ip).map(|(n, v)| (n, *v));
                prop_assert_eq!(longest, want.first().copied(), "lookup({})", ip);
                prop_assert_eq!(table.contains(ip), !want.is_empty(), "contains({})", ip);
            }
        }
    }
}
