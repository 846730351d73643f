//! A set of a small enum's variants, kept as bits: the one type behind
//! [`Flags`](crate::Flags) and [`FeedKinds`](crate::feeds::FeedKinds).
//!
//! The raw bits are public and `const` so that sets can be written in const generics, as in
//! `DenyFlags<{ Flag::Tor.bit() | Flag::Vpn.bit() }>`.

use std::fmt;
use std::marker::PhantomData;

use serde::ser::{Serialize, SerializeSeq, Serializer};

/// An enum whose variants can live in a [`BitSet`]: at most 32 of them, each with a name.
pub trait Member: Copy + PartialEq + 'static {
    /// Every variant, in declaration order; a variant's position is its bit.
    const ALL: &'static [Self];
    /// Their names as written in configs and JSON, in the same order.
    const NAMES: &'static [&'static str];

    /// The variant's bit: `1 << position`.
    fn bit(self) -> u32;

    /// The variant's name.
    fn name(self) -> &'static str {
        Self::NAMES
            .get(self.bit().trailing_zeros() as usize)
            .copied()
            .unwrap_or_default()
    }

    /// The variant named `name`, exactly.
    fn from_name(name: &str) -> Result<Self, UnknownName> {
        find(Self::ALL, Self::NAMES, name)
    }
}

/// The variant of `all` named `name` in `names` (same order), exactly.
fn find<T: Copy>(all: &[T], names: &'static [&'static str], name: &str) -> Result<T, UnknownName> {
    names
        .iter()
        .position(|&n| n == name)
        .and_then(|i| all.get(i).copied())
        .ok_or(UnknownName { names })
}

/// Parses one of `T`'s names, for enums that are not set members (strum lists variants and
/// names in the same order).
pub(crate) fn parse_name<T>(name: &str) -> Result<T, UnknownName>
where
    T: Copy + strum::VariantArray + strum::VariantNames + 'static,
{
    find(
        <T as strum::VariantArray>::VARIANTS,
        <T as strum::VariantNames>::VARIANTS,
        name,
    )
}

/// A name that is none of a set's members; displays as `expected one of "a", "b"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownName {
    names: &'static [&'static str],
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&expected_one_of(self.names))
    }
}

impl std::error::Error for UnknownName {}

/// A set of `T`'s variants. Serializes as an array of their names, e.g. `["banned"]`.
pub struct BitSet<T> {
    bits: u32,
    _member: PhantomData<fn() -> T>,
}

impl<T: Member> BitSet<T> {
    /// The empty set.
    pub const fn empty() -> Self {
        BitSet {
            bits: 0,
            _member: PhantomData,
        }
    }

    /// The set whose bits are `mask`; bits of no variant are dropped.
    pub const fn from_bits(mask: u32) -> Self {
        let all = if T::ALL.len() >= 32 {
            u32::MAX
        } else {
            (1 << T::ALL.len()) - 1
        };
        BitSet {
            bits: mask & all,
            _member: PhantomData,
        }
    }

    /// The set's bits.
    pub const fn bits(self) -> u32 {
        self.bits
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.bits == 0
    }

    /// Whether any variant is in both sets.
    pub const fn intersects(self, other: Self) -> bool {
        self.bits & other.bits != 0
    }

    /// The variants in either set.
    pub const fn union(self, other: Self) -> Self {
        Self::from_bits(self.bits | other.bits)
    }

    /// Whether `member` is in the set.
    #[inline]
    pub fn contains(self, member: T) -> bool {
        self.bits & member.bit() != 0
    }

    /// Adds `member`.
    #[inline]
    pub fn insert(&mut self, member: T) {
        self.bits |= member.bit();
    }

    /// The variants in the set, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = T> {
        T::ALL.iter().copied().filter(move |&m| self.contains(m))
    }
}

// By hand rather than derived: a derive would ask `T` for the same traits.
impl<T> Clone for BitSet<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for BitSet<T> {}

impl<T> PartialEq for BitSet<T> {
    fn eq(&self, other: &Self) -> bool {
        self.bits == other.bits
    }
}

impl<T> Eq for BitSet<T> {}

impl<T> std::hash::Hash for BitSet<T> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.bits.hash(state);
    }
}

impl<T: Member> Default for BitSet<T> {
    fn default() -> Self {
        Self::empty()
    }
}

impl<T: Member> fmt::Debug for BitSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.iter().map(Member::name))
            .finish()
    }
}

impl<T: Member> From<T> for BitSet<T> {
    fn from(member: T) -> Self {
        let mut set = Self::empty();
        set.insert(member);
        set
    }
}

impl<T: Member> FromIterator<T> for BitSet<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut set = Self::empty();
        iter.into_iter().for_each(|m| set.insert(m));
        set
    }
}

impl<T: Member> Serialize for BitSet<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(None)?;
        for member in self.iter() {
            seq.serialize_element(member.name())?;
        }
        seq.end()
    }
}

/// `expected one of "a", "b", "c"`: the message for a name that is none of `names`.
pub(crate) fn expected_one_of(names: &[&str]) -> String {
    let mut out = String::from("expected one of ");
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push('"');
        out.push_str(name);
        out.push('"');
    }
    out
}
