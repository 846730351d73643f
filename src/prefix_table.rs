//! Longest-prefix match over IPv4 and IPv6 networks: an immutable table, built once, read without locks.
//!
//! # Design
//!
//! Each address family is kept apart and normalised to an integer (`u32` for IPv4, `u128` for
//! IPv6). Prefixes are sorted once by (network, length); a prefix's position in that order is its
//! id, and the values live in a `Vec<V>` indexed by id. A single sweep with a stack then:
//!
//! * records for every prefix its nearest enclosing prefix (`parents`), so [`PrefixTable::matches`]
//!   walks the nesting chain without searching again;
//! * flattens the nested prefixes into sorted, disjoint intervals, each tagged with the innermost
//!   prefix that covers its first address.
//!
//! No interval is stored for the gaps between top-level prefixes. A lookup finds the last interval
//! starting at or before the address and then checks that the address really lies inside that
//! interval's prefix: if it does not, no prefix contains it (the sweep emits a "resume" interval
//! whenever an enclosing prefix continues after a nested one ends). This halves the intervals for
//! the common case of many disjoint `/32`s and `/24`s.
//!
//! Each interval is a small record (its start, the owning prefix's id and length), so a lookup
//! reads the records of one bucket and then only the value: the network it returns is rebuilt
//! from the address and the length.
//!
//! The binary search is narrowed by a first-level index on the bits that follow those shared
//! by every interval start (for IPv4 normally the top bits; for IPv6 it skips e.g. the `2000::/3`
//! that all global unicast space shares), sized for about four records per bucket: 2^16 to 2^18
//! buckets for IPv4, up to 2^16 for IPv6. A bucket whose first address lies inside a prefix
//! begins with a record for it, so a search never leaves its bucket. Within an IPv4 bucket only
//! the low 16 bits of each start differ, so those are all a record keeps (8 bytes a record).
//!
//! Real data is skewed: in a hosting/VPN range list most IPv6 ranges sit in one `/32`, so one
//! first-level bucket would hold ~78k records and a hit would binary-search 2 MB. A bucket of
//! more than `LEAF_MAX` records (about 1 KiB of them) is therefore split: it gets a node of its own, indexed the same
//! way on the bits after those its records share (about one bucket per two records, at most
//! 2^16), recursively, and carrying records into its buckets in the same way. Records stay in
//! one array, laid out depth first. A lookup follows one index entry per level, usually one or
//! two, and then binary-searches a few records; a search that is cut short at `MAX_DEPTH`
//! levels just searches a larger bucket. Uniform data rarely splits, and a bucket that is not
//! split costs one flag test; the descent into nodes is kept out of line.
//!
//! IPv4 and IPv6 never match each other. In particular an IPv4-mapped IPv6 address such as
//! `::ffff:10.0.0.1` is an IPv6 address to this table; callers that want it to match IPv4
//! networks must normalise it first (e.g. with [`std::net::Ipv6Addr::to_ipv4_mapped`]).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// Marks "no prefix" in `parents`.
const NONE: u32 = u32::MAX;

/// An address family's integer form. Private: only `u32` (IPv4) and `u128` (IPv6) implement it.
trait Key: Copy + Ord {
    /// Address width in bits.
    const BITS: u32;
    /// The all-zero address.
    const ZERO: Self;
    /// Most records a bucket binary-searches directly; a bigger one gets a node of its own.
    /// About 1 KiB of records: a search over that costs less than one more level would.
    const LEAF_MAX: usize;
    /// Bits of the first-level index for `n` intervals: about four intervals per bucket, so a
    /// bucket's records usually share one cache line, within a per-family range.
    fn index_bits(n: usize) -> u32;
    /// What an interval record stores of its start. All starts in one index bucket share their
    /// bits above the bucket's, so IPv4 keeps only the low 16; IPv6 keeps the whole address
    /// (as two `u64`s, so a record is 24 bytes rather than a 16-aligned 32).
    type Low: Copy + Ord;
    /// Truncates to [`Key::Low`].
    fn low(self) -> Self::Low;
    /// The start whose low part is `low`, in the same bucket as `self`.
    fn with_low(self, low: Self::Low) -> Self;
    /// Clears the host bits of a `len`-bit prefix.
    fn net(self, len: u8) -> Self;
    /// The last address of the `len`-bit prefix starting at `self`.
    fn last(self, len: u8) -> Self;
    /// `self + 1`, or `None` at the top of the address space.
    fn succ(self) -> Option<Self>;
    /// `self >> shift`, with `shift == BITS` giving zero.
    fn high(self, shift: u32) -> Self;
    /// Bucket number: `(self >> shift) & mask`; `shift == BITS` only with `mask == 0`.
    fn bucket(self, shift: u32, mask: usize) -> usize;
    /// First address of a bucket: the inverse of `high` and `bucket`.
    fn bucket_start(top: Self, top_shift: u32, bucket: usize, shift: u32) -> Self;
    /// Number of leading bits `self` and `other` share.
    fn common_bits(self, other: Self) -> u32;
    /// Back to an `IpNet`.
    fn to_net(self, len: u8) -> IpNet;
}

/// The [`Key`] methods that read the same for both address widths.
macro_rules! key_arithmetic {
    ($t:ty) => {
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
        fn succ(self) -> Option<Self> {
            self.checked_add(1)
        }
        #[inline]
        fn high(self, shift: u32) -> Self {
            self.checked_shr(shift).unwrap_or(0)
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
    type Low = u16;
    const LEAF_MAX: usize = 128;
    fn index_bits(n: usize) -> u32 {
        // At least 16, so that only the low 16 bits differ within a bucket (see `with_low`);
        // at most 18, a 1 MiB index.
        (n / 4).next_power_of_two().trailing_zeros().clamp(16, 18)
    }
    #[inline]
    fn low(self) -> u16 {
        self as u16
    }
    #[inline]
    fn with_low(self, low: u16) -> Self {
        // The bucket shift is at most 16 (`index_bits` >= 16), so bits 16.. identify the bucket.
        (self & 0xffff_0000) | u32::from(low)
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
    type Low = Split128;
    const LEAF_MAX: usize = 48;
    fn index_bits(n: usize) -> u32 {
        // Small IPv6 tables get a small index; at most 16 bits, a 256 KiB index.
        (n / 4).next_power_of_two().trailing_zeros().min(16)
    }
    #[inline]
    fn low(self) -> Split128 {
        Split128([(self >> 64) as u64, self as u64])
    }
    #[inline]
    fn with_low(self, low: Split128) -> Self {
        low.get()
    }
    key_arithmetic!(u128);
    #[inline]
    fn to_net(self, len: u8) -> IpNet {
        // `len` comes from a valid `Ipv6Net`, so this cannot fail.
        IpNet::V6(Ipv6Net::new(Ipv6Addr::from(self), len).expect("prefix length <= 128"))
    }
}

/// A `u128` kept as two `u64`s, so that a record holding one is 8-aligned (24 bytes rather
/// than 32). It compares as the `u128` (a subtraction with borrow) rather than element by
/// element as the derived order of an array would.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Split128([u64; 2]);

impl Split128 {
    #[inline]
    fn get(self) -> u128 {
        (u128::from(self.0[0]) << 64) | u128::from(self.0[1])
    }
}

impl Ord for Split128 {
    #[inline]
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.get().cmp(&other.get())
    }
}

impl PartialOrd for Split128 {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
    #[inline]
    fn le(&self, other: &Self) -> bool {
        self.get() <= other.get()
    }
}

/// One disjoint interval: from its start up to the next record's start, the innermost prefix
/// is `id` (length `len`) where the address lies inside that prefix, and there is none where
/// it does not. Keeping `id` and `len` beside the search key means a lookup touches the
/// records of one bucket and then only the value.
#[derive(Clone, Copy)]
struct Rec<L> {
    low: L,
    id: u32,
    len: u8,
}

/// Flags an `index` entry whose bucket has a node of its own; the other bits are that node's
/// position in `Family::nodes`. Record positions stay below it (checked in `build`).
const SPLIT: u32 = 1 << 31;

/// Bits of a sub-node's index for `n` records: about one bucket per two records, at most
/// 2^16. Fewer (four records a bucket, like the root) made skewed data nest deeper and cost
/// more per lookup; more cost memory for little gain.
fn sub_bits(n: usize) -> u32 {
    (n / 2).next_power_of_two().trailing_zeros().clamp(1, 16)
}

/// Most levels of nodes below the root. Each level skips the bits its records share, so real
/// data needs two or three; the bound only caps lookup steps and memory on adversarial input.
const MAX_DEPTH: u32 = 8;

/// One level of the bucket index: the bits after those shared by every record start under it
/// pick a bucket. The root covers a whole family; a sub-node covers one bucket of its parent.
#[derive(Clone)]
struct Node<K> {
    /// High bits shared by every record start under the node (`start.high(top_shift)`).
    top: K,
    /// Shift that isolates the shared high bits.
    top_shift: u32,
    /// Shift that brings the bucket bits to the bottom.
    shift: u32,
    /// Mask of the bucket bits after `shift`.
    mask: usize,
    /// The node's buckets are `index[base..=base + mask]`, followed by an end marker.
    base: u32,
    /// Position of the node's first record: where the bucket before a split one ends.
    first: u32,
    /// Position of the node's last record, for addresses above every bucket.
    last: u32,
    /// Full start of that last record.
    last_start: K,
}

impl<K: Key> Node<K> {
    /// A node with one empty bucket: every address searches `recs[0..0]` and finds nothing.
    fn empty() -> Self {
        Node {
            top: K::ZERO,
            top_shift: K::BITS,
            shift: 0,
            mask: 0,
            base: 0,
            first: 0,
            last: 0,
            last_start: K::ZERO,
        }
    }
}

/// The index of one address family. Prefix ids are positions in `nets`/`lens`.
#[derive(Clone)]
struct Family<K: Key> {
    /// Network addresses (host bits clear), sorted by (network, length).
    nets: Vec<K>,
    /// Prefix lengths, parallel to `nets`.
    lens: Vec<u8>,
    /// Nearest enclosing prefix of each prefix, or `NONE`.
    parents: Vec<u32>,
    /// Interval records sorted by start, grouped by bucket (depth first through split
    /// buckets). A bucket whose first address lies inside a prefix starts with a record at
    /// that address, so a search never has to look into the previous bucket.
    recs: Vec<Rec<K::Low>>,
    /// Bucket tables of all nodes. Entry `i` of a bucket that is not split is the position of
    /// its first record, and its records run up to where entry `i + 1` starts (a split
    /// bucket's records start at its node's `first`; each table ends with an end marker).
    index: Vec<u32>,
    /// The first-level node.
    root: Node<K>,
    /// Nodes of split buckets: those with more than `LEAF_MAX` records.
    nodes: Vec<Node<K>>,
}

impl<K: Key> Family<K> {
    fn empty() -> Self {
        Family {
            nets: Vec::new(),
            lens: Vec::new(),
            parents: Vec::new(),
            recs: Vec::new(),
            index: vec![0, 0],
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
        nets.shrink_to_fit();
        lens.shrink_to_fit();
        // Ids and record positions are u32 to keep records small, and positions must stay
        // below `SPLIT`: 2n intervals plus the records carried into buckets must fit.
        assert!(
            nets.len() < (u32::MAX / 8) as usize,
            "PrefixTable: too many prefixes in one address family"
        );

        let (parents, starts, owners) = sweep(&nets, &lens);
        let mut family = Family {
            nets,
            lens,
            parents,
            index: Vec::new(),
            ..Self::empty()
        };
        family.recs.reserve_exact(starts.len() + starts.len() / 16);
        family
            .index
            .reserve_exact((1 << K::index_bits(starts.len())) + 1);
        family.root = family.lay_out(&starts, &owners, K::index_bits(starts.len()), 0);
        assert!(
            family.recs.len() < SPLIT as usize,
            "PrefixTable: too many records in one address family"
        );
        family.recs.shrink_to_fit();
        family.index.shrink_to_fit();
        family.nodes.shrink_to_fit();
        family
    }

    /// Lays out a node over the intervals `starts`/`owners` (sorted, non-empty, all in one
    /// bucket of the parent), indexed on up to `bits` bits after those every start shares:
    /// appends its bucket table to `index` and its records to `recs`, depth first through
    /// buckets of more than `LEAF_MAX` records, which get nodes of their own.
    fn lay_out(&mut self, starts: &[K], owners: &[u32], bits: u32, depth: u32) -> Node<K> {
        let (first, last) = (starts[0], starts[starts.len() - 1]);
        // Starts are sorted, so the first and last share the fewest leading bits.
        let common = first.common_bits(last);
        let bits = bits.min(K::BITS - common);
        let mut node = Node {
            top: first.high(K::BITS - common),
            top_shift: K::BITS - common,
            shift: K::BITS - common - bits,
            mask: (1usize << bits) - 1,
            base: self.index.len() as u32,
            first: self.recs.len() as u32,
            last: 0,
            last_start: K::ZERO,
        };
        self.index.resize(self.index.len() + node.mask + 2, 0);

        let mut sub_starts = Vec::new();
        let mut sub_owners = Vec::new();
        let mut i = 0; // next interval to place
        for bucket in 0..=node.mask {
            let slot = node.base as usize + bucket;
            let begin = K::bucket_start(node.top, node.top_shift, bucket, node.shift);
            // The interval that covers the bucket's first address is carried into the bucket,
            // unless that address falls in a gap after it.
            let carry = (i > 0 && starts.get(i) != Some(&begin))
                .then(|| owners[i - 1])
                .filter(|&id| begin.net(self.lens[id as usize]) == self.nets[id as usize]);
            let mut end = i;
            while end < starts.len() && starts[end].bucket(node.shift, node.mask) == bucket {
                end += 1;
            }
            let count = (end - i) + usize::from(carry.is_some());
            if count > K::LEAF_MAX && depth < MAX_DEPTH {
                // Only possible when `shift > 0`: a bucket of one address holds one record.
                sub_starts.clear();
                sub_owners.clear();
                if let Some(id) = carry {
                    sub_starts.push(begin);
                    sub_owners.push(id);
                }
                sub_starts.extend_from_slice(&starts[i..end]);
                sub_owners.extend_from_slice(&owners[i..end]);
                let (s, o) = (
                    std::mem::take(&mut sub_starts),
                    std::mem::take(&mut sub_owners),
                );
                let child = self.lay_out(&s, &o, sub_bits(count), depth + 1);
                (sub_starts, sub_owners) = (s, o);
                (node.last, node.last_start) = (child.last, child.last_start);
                self.index[slot] = SPLIT | self.nodes.len() as u32;
                self.nodes.push(child);
            } else {
                self.index[slot] = self.recs.len() as u32;
                let carried = carry.map(|id| (begin, id));
                let placed = (i..end).map(|j| (starts[j], owners[j]));
                for (at, id) in carried.into_iter().chain(placed) {
                    node.last = self.recs.len() as u32;
                    node.last_start = at;
                    self.recs.push(Rec {
                        low: at.low(),
                        id,
                        len: self.lens[id as usize],
                    });
                }
            }
            i = end;
        }
        // The end marker.
        self.index[node.base as usize + node.mask + 1] = self.recs.len() as u32;
        node
    }

    /// Where the records of the bucket before index entry `slot` end.
    #[inline]
    fn bucket_end(&self, slot: usize) -> usize {
        let entry = self.index[slot];
        if entry & SPLIT == 0 {
            entry as usize
        } else {
            self.nodes[(entry & !SPLIT) as usize].first as usize
        }
    }

    /// Id and length of the longest prefix containing `ip`.
    #[inline]
    fn find(&self, ip: K) -> Option<(u32, u8)> {
        let (rec, start) = self.find_in(&self.root, ip)?;
        // The record's prefix contains its start; the record may run on past the prefix's
        // end into a gap, for which nothing is stored.
        (ip.net(rec.len) == start.net(rec.len)).then_some((rec.id, rec.len))
    }

    /// The last record under `node` starting at or before `ip`, with its full start.
    #[inline(always)]
    fn find_in(&self, node: &Node<K>, ip: K) -> Option<(Rec<K::Low>, K)> {
        let high = ip.high(node.top_shift);
        if high == node.top {
            let slot = node.base as usize + ip.bucket(node.shift, node.mask);
            let begin = self.index[slot];
            if begin & SPLIT != 0 {
                return self.find_below(begin, ip);
            }
            let recs = &self.recs[begin as usize..self.bucket_end(slot + 1)];
            let low = ip.low();
            let n = recs.partition_point(|r| r.low <= low);
            let rec = *recs.get(n.checked_sub(1)?)?;
            Some((rec, ip.with_low(rec.low)))
        } else if high > node.top {
            Some((*self.recs.get(node.last as usize)?, node.last_start))
        } else {
            None
        }
    }

    /// [`Family::find_in`] for a split bucket's node (`entry` is its index entry). Out of
    /// line, so that the common single-level lookup stays as short as it was.
    #[inline(never)]
    fn find_below(&self, entry: u32, ip: K) -> Option<(Rec<K::Low>, K)> {
        self.find_in(&self.nodes[(entry & !SPLIT) as usize], ip)
    }

    fn len(&self) -> usize {
        self.nets.len()
    }

    fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        self.nets.capacity() * size_of::<K>()
            + self.lens.capacity()
            + self.parents.capacity() * size_of::<u32>()
            + self.recs.capacity() * size_of::<Rec<K::Low>>()
            + self.index.capacity() * size_of::<u32>()
            + self.nodes.capacity() * size_of::<Node<K>>()
    }
}

/// Disjoint intervals under construction: `starts[i]..starts[i + 1]` is owned by `owners[i]`.
struct Intervals<K> {
    starts: Vec<K>,
    owners: Vec<u32>,
}

impl<K: Key> Intervals<K> {
    /// Starts arrive in non-decreasing order. A second interval at the same address replaces
    /// the first: it is the more specific prefix, or a prefix starting exactly where a resumed
    /// parent would have continued.
    fn emit(&mut self, at: K, owner: u32) {
        if self.starts.last() == Some(&at) {
            let n = self.owners.len();
            self.owners[n - 1] = owner;
            if n >= 2 && self.owners[n - 2] == owner {
                self.starts.pop();
                self.owners.pop();
            }
        } else if self.owners.last() != Some(&owner) {
            self.starts.push(at);
            self.owners.push(owner);
        }
    }
}

/// One pass over the sorted prefixes: returns (parents, interval starts, interval owners).
fn sweep<K: Key>(nets: &[K], lens: &[u8]) -> (Vec<u32>, Vec<K>, Vec<u32>) {
    let last = |id: u32| nets[id as usize].last(lens[id as usize]);
    // Pops the innermost open prefix; if its parent goes on past it, the parent owns the rest.
    let close = |stack: &mut Vec<u32>, out: &mut Intervals<K>| {
        let Some(done) = stack.pop() else { return };
        let end = last(done);
        if let Some(&parent) = stack.last() {
            if last(parent) > end {
                // `end` < parent's end <= MAX, so `succ` cannot overflow here.
                if let Some(next) = end.succ() {
                    out.emit(next, parent);
                }
            }
        }
    };

    let mut parents = Vec::with_capacity(nets.len());
    let mut out = Intervals {
        starts: Vec::with_capacity(nets.len() + nets.len() / 8),
        owners: Vec::with_capacity(nets.len() + nets.len() / 8),
    };
    // Open prefixes, outermost first; depth is at most BITS + 1.
    let mut stack: Vec<u32> = Vec::with_capacity(K::BITS as usize + 1);
    for (id, &net) in nets.iter().enumerate() {
        while stack.last().is_some_and(|&top| last(top) < net) {
            close(&mut stack, &mut out);
        }
        // Prefixes are aligned, so whatever is still open contains this whole prefix.
        parents.push(stack.last().copied().unwrap_or(NONE));
        out.emit(net, id as u32);
        stack.push(id as u32);
    }
    while !stack.is_empty() {
        close(&mut stack, &mut out);
    }
    out.starts.shrink_to_fit();
    out.owners.shrink_to_fit();
    (parents, out.starts, out.owners)
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
        let (is_v6, innermost) = match ip {
            IpAddr::V4(a) => (false, self.v4.find(u32::from(a)).map(|(id, _)| id)),
            IpAddr::V6(a) => (true, self.v6.find(u128::from(a)).map(|(id, _)| id)),
        };
        std::iter::successors(innermost, move |&id| {
            let parents = if is_v6 {
                &self.v6.parents
            } else {
                &self.v4.parents
            };
            Some(parents[id as usize]).filter(|&p| p != NONE)
        })
        .map(move |id| {
            if is_v6 {
                self.entry6(id)
            } else {
                self.entry4(id)
            }
        })
    }

    /// Every network containing `ip`, longest first, as its prefix length and value: what
    /// [`matches`](Self::matches) gives without rebuilding each network.
    pub fn match_lengths(&self, ip: IpAddr) -> impl Iterator<Item = (u8, &V)> + '_ {
        let (family_lens, parents, offset, innermost) = match ip {
            IpAddr::V4(a) => (
                &self.v4.lens,
                &self.v4.parents,
                0,
                self.v4.find(u32::from(a)).map(|(id, _)| id),
            ),
            IpAddr::V6(a) => (
                &self.v6.lens,
                &self.v6.parents,
                self.v4.len(),
                self.v6.find(u128::from(a)).map(|(id, _)| id),
            ),
        };
        std::iter::successors(innermost, move |&id| {
            Some(parents[id as usize]).filter(|&p| p != NONE)
        })
        .map(move |id| {
            let i = id as usize;
            (family_lens[i], &self.values[offset + i])
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
        let v4 = (self.v4.nets.iter().zip(&self.v4.lens)).map(|(&n, &l)| n.to_net(l));
        let v6 = (self.v6.nets.iter().zip(&self.v6.lens)).map(|(&n, &l)| n.to_net(l));
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

    #[inline]
    fn entry4(&self, id: u32) -> (IpNet, &V) {
        let i = id as usize;
        (self.v4.nets[i].to_net(self.v4.lens[i]), &self.values[i])
    }

    #[inline]
    fn entry6(&self, id: u32) -> (IpNet, &V) {
        let i = id as usize;
        let net = self.v6.nets[i].to_net(self.v6.lens[i]);
        (net, &self.values[self.v4.len() + i])
    }
}

impl<V: fmt::Debug> fmt::Debug for PrefixTable<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A summary: a table of a million entries is no use in a log line.
        f.debug_struct("PrefixTable")
            .field("v4_networks", &self.v4.len())
            .field("v6_networks", &self.v6.len())
            .field("v4_records", &self.v4.recs.len())
            .field("v6_records", &self.v6.recs.len())
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
