//! The prefilters (filter-common's `TD_V4_FILTER`, `TD_V6_FILTER`): one bit per IPv4 /24, or per
//! hash of an IPv6 /32, set when some entry may cover an address there. The kernel skips every
//! lookup for an address whose bit is clear, so a miss costs one array load whatever the lists
//! hold; the same for the prefixes alone (`TD_V4_PREFIXED`, `TD_V6_PREFIXED`: no prefix near,
//! no prefix search), for the exact addresses (`TD_V4_EXACTS`, `TD_V6_EXACTS`) and for the
//! allowlist (`TD_V4_ALLOWED`, `TD_V6_ALLOWED`), so that a listed address far from every
//! allowlist entry is dropped without a trie lookup. Here: what a plan needs, the writes that
//! move a map (these, the lengths of `lengths` and the hints of `hints`) from one plan's content
//! to another's, and the kernel arrays they go to. `sync` sets bits before the entries that
//! need them are written, and clears them only after those entries are gone.

use std::{ops::BitOr, os::fd::AsFd};

use anyhow::{Result, anyhow};
use aya::{
    Pod,
    maps::{Map, MapData},
};
use filter_common::{
    ALLOWED_SHIFT, ALLOWED_WORDS, FILTER_WORDS, LENS_SLOTS, LenMask, V6_EXACTS_WORDS, v4_exacts_of,
    v4_filter_bit, v6_exacts_bit_of, v6_filter_bit_of,
};

use super::{
    MapInfo,
    hints::{Hints, hints_of, hints_of_entries},
    lengths::{lengths, lens_entries, lens_of},
    mapped::Mapping,
    raw,
};
use crate::plan::{Plan, Tables};

/// An IPv6 prefix this short covers 2^24 /32s or more: every bit is set (a /9 sets 2^23).
const V6_EVERY_BIT: u8 = 8;

/// A dense array map's content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dense<V>(Vec<V>);

impl<V: Copy + Default + PartialEq + BitOr<Output = V>> Dense<V> {
    pub(super) fn empty(len: u32) -> Self {
        Self(vec![V::default(); len as usize])
    }

    pub(super) fn from_vec(words: Vec<V>) -> Self {
        Self(words)
    }

    /// Its slot `i`.
    #[cfg(test)]
    pub(super) fn word(&self, i: u32) -> V {
        self.0[i as usize]
    }

    /// How many slots it has.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    pub(super) fn or(&mut self, i: u32, v: V) {
        self.0[i as usize] = self.0[i as usize] | v;
    }

    /// The slots that are not empty.
    fn slots(&self) -> impl Iterator<Item = (u32, V)> + '_ {
        let set = self.0.iter().enumerate().filter(|(_, v)| **v != V::default());
        set.map(|(i, v)| (i as u32, *v))
    }
}

/// The bits an entry (`len`, `addr`) needs, set in `bits`.
fn cover<const N: usize>(bits: &mut Dense<u64>, len: u8, addr: &[u8; N]) {
    let mut set = |bit: u32| bits.or(bit >> 6, 1u64 << (bit & 63));
    let top = u32::from_be_bytes([addr[0], addr[1], addr[2], addr[3]]);
    if N == 4 {
        let first = v4_filter_bit(&top.to_be_bytes());
        (first..first + (1 << 24u8.saturating_sub(len))).for_each(set);
    } else if len >= 32 {
        set(v6_filter_bit_of(top));
    } else if len > V6_EVERY_BIT {
        (0..1u32 << (32 - len)).for_each(|i| set(v6_filter_bit_of(top + i)));
    } else {
        bits.0.fill(u64::MAX);
    }
}

/// The prefilter bits the entries (not the allowlist) of `tables` need.
pub fn bits_of<const N: usize>(tables: &Tables<N>) -> Dense<u64> {
    let mut bits = Dense::empty(FILTER_WORDS);
    let exact = tables.exact.iter().map(|(a, _)| ((N * 8) as u8, *a));
    for (len, addr) in exact.chain(tables.prefix.iter().map(|(k, _)| *k)) {
        cover(&mut bits, len, &addr);
    }
    bits
}

/// The prefix prefilter bits (`TD_V4_PREFIXED`, `TD_V6_PREFIXED`) of `tables`' prefixes.
pub fn prefixed_of<const N: usize>(tables: &Tables<N>) -> Dense<u64> {
    let mut bits = Dense::empty(FILTER_WORDS);
    tables.prefix.iter().for_each(|((len, addr), _)| cover(&mut bits, *len, addr));
    bits
}

/// The exact-address prefilter bits (`TD_V4_EXACTS`, `TD_V6_EXACTS`) of exact addresses
/// `addrs`, in a filter of `words` words (IPv4: sized by the exact table; IPv6:
/// [`V6_EXACTS_WORDS`]).
fn exacts_of_addrs<'a, const N: usize>(
    addrs: impl Iterator<Item = &'a [u8; N]>,
    words: u32,
) -> Dense<u64> {
    let mut bits = Dense::empty(words);
    for a in addrs {
        let top = [a[0], a[1], a[2], a[3]];
        let (word, set) = if N == 4 {
            v4_exacts_of(&top, words)
        } else {
            let bit = v6_exacts_bit_of(u32::from_be_bytes(top));
            (bit >> 6, 1u64 << (bit & 63))
        };
        bits.or(word, set);
    }
    bits
}

/// The exact-address prefilter bits of `tables`' exact addresses, in a filter of `words` words.
pub fn exacts_of<const N: usize>(tables: &Tables<N>, words: u32) -> Dense<u64> {
    exacts_of_addrs(tables.exact.iter().map(|(a, _)| a), words)
}

/// The allowlist prefilter bits of `tables`' allowlist: its prefilter bits, each
/// [`ALLOWED_SHIFT`] coarser.
pub fn allowed_of<const N: usize>(tables: &Tables<N>) -> Dense<u64> {
    let mut fine = Dense::empty(FILTER_WORDS);
    tables.allow.iter().for_each(|(len, addr)| cover(&mut fine, *len, addr));
    let mut bits = Dense::empty(ALLOWED_WORDS);
    for (word, w) in fine.slots() {
        let mut w = w;
        while w != 0 {
            let bit = (word * 64 + w.trailing_zeros()) >> ALLOWED_SHIFT;
            bits.or(bit >> 6, 1u64 << (bit & 63));
            w &= w - 1;
        }
    }
    bits
}

/// Entries `bits_of` is made of.
fn entries<const N: usize>(tables: &Tables<N>) -> usize {
    tables.exact.len() + tables.prefix.len()
}

/// The writes that move one array from one plan to the next.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Moves<V> {
    /// Before any entry is written: the content of both plans.
    pub during: Vec<(u32, V)>,
    /// After every entry is deleted: the content of the new plan.
    pub after: Vec<(u32, V)>,
}

/// The two steps of a move.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Before any entry is written.
    During,
    /// After every entry is deleted.
    After,
}

impl<V> Moves<V> {
    /// The writes of one step.
    pub fn step(&self, step: Step) -> &[(u32, V)] {
        match step {
            Step::During => &self.during,
            Step::After => &self.after,
        }
    }
}

impl<V: Copy + Default + PartialEq + BitOr<Output = V>> Moves<V> {
    /// The moves of the array computed by `array` from `old`'s tables to `new`'s; nothing to
    /// compute when neither holds anything it is made of (`count`).
    fn of<T>(
        old: &T,
        new: &T,
        count: impl Fn(&T) -> usize,
        array: impl Fn(&T) -> Dense<V>,
    ) -> Self {
        if count(old) == 0 && count(new) == 0 {
            return Self::default();
        }
        Self::between(&array(old), &array(new))
    }

    /// In one pass: to the union of both (`during`), then to `new` (`after`).
    fn between(old: &Dense<V>, new: &Dense<V>) -> Self {
        let mut moves = Self::default();
        for (i, (a, b)) in old.0.iter().zip(&new.0).enumerate() {
            let both = *a | *b;
            if both != *a {
                moves.during.push((i as u32, both));
            }
            if both != *b {
                moves.after.push((i as u32, *b));
            }
        }
        moves
    }
}

/// Every array's moves between two plans: prefilters and allowlist prefilters of both
/// families, lengths, IPv4 hints.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllMoves {
    pub v4: Moves<u64>,
    pub v6: Moves<u64>,
    pub allowed_v4: Moves<u64>,
    pub allowed_v6: Moves<u64>,
    pub lens_v4: Moves<LenMask>,
    pub lens_v6: Moves<LenMask>,
    pub prefixed_v4: Moves<u64>,
    pub prefixed_v6: Moves<u64>,
    pub hints_v4: Moves<Hints>,
    pub exacts_v4: Moves<u64>,
    pub exacts_v6: Moves<u64>,
}

/// What the maps' arrays look like: whether the IPv4 hints are in use (created at full size),
/// and the words of the IPv4 exact-address prefilter (sized by the exact table's capacity).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub hinted: bool,
    pub exact_words: u32,
}

/// The moves from `old` to `new` in arrays of `shape`; the hints' only where they are in use.
pub fn moves(old: &Plan, new: &Plan, shape: Shape) -> AllMoves {
    let words = shape.exact_words;
    let lens = || {
        let v4 = Moves::of(&old.v4, &new.v4, lens_entries, lens_of);
        (v4, Moves::of(&old.v6, &new.v6, lens_entries, lens_of))
    };
    let rest = || AllMoves {
        v4: Moves::of(&old.v4, &new.v4, entries, bits_of),
        v6: Moves::of(&old.v6, &new.v6, entries, bits_of),
        allowed_v4: Moves::of(&old.v4, &new.v4, |t| t.allow.len(), allowed_of),
        allowed_v6: Moves::of(&old.v6, &new.v6, |t| t.allow.len(), allowed_of),
        prefixed_v4: Moves::of(&old.v4, &new.v4, |t| t.prefix.len(), prefixed_of),
        prefixed_v6: Moves::of(&old.v6, &new.v6, |t| t.prefix.len(), prefixed_of),
        exacts_v4: Moves::of(&old.v4, &new.v4, |t| t.exact.len(), |t| exacts_of(t, words)),
        exacts_v6: Moves::of(
            &old.v6,
            &new.v6,
            |t| t.exact.len(),
            |t| exacts_of(t, V6_EXACTS_WORDS),
        ),
        ..Default::default()
    };
    let hints = || match shape.hinted {
        true => Moves::of(&old.v4, &new.v4, entries, hints_of),
        false => Moves::default(),
    };
    // A large plan has its lengths' moves computed on a thread of their own.
    let ((lens_v4, lens_v6), hints_v4, rest) = if old.len().max(new.len()) < crate::parallel::LARGE
    {
        (lens(), hints(), rest())
    } else {
        std::thread::scope(|s| {
            let lens = s.spawn(lens);
            let hints = s.spawn(hints);
            let rest = rest();
            (lens.join().expect("lengths' moves"), hints.join().expect("hints' moves"), rest)
        })
    };
    AllMoves { lens_v4, lens_v6, hints_v4, ..rest }
}

/// An array map of `V` (a prefilter, or the lengths).
pub trait Words<V>: MapInfo {
    fn get(&self, slot: u32) -> Result<V>;
    fn put(&mut self, slots: &[(u32, V)]) -> Result<()>;
}

/// Adds `add` to `map` (each slot OR-ed with what it holds), for a single edit.
fn add<V: Copy + Default + PartialEq + BitOr<Output = V>>(
    map: &mut dyn Words<V>,
    add: &Dense<V>,
) -> Result<()> {
    let mut slots = Vec::new();
    for (i, v) in add.slots() {
        slots.push((i, map.get(i)? | v));
    }
    map.put(&slots)
}

/// The array maps an entry needs bits in: the prefilter, the prefix prefilter, the lengths,
/// the hints (IPv4), the exact-address prefilter.
pub struct EntryArrays<'a> {
    pub filter: &'a mut dyn Words<u64>,
    pub prefixed: &'a mut dyn Words<u64>,
    pub lens: &'a mut dyn Words<LenMask>,
    pub hints: Option<&'a mut dyn Words<Hints>>,
    pub exacts: &'a mut dyn Words<u64>,
}

/// Sets, in the prefilter (and in the prefix prefilter, the lengths and the hints, for a
/// prefix; in the lengths, for an IPv4 address), what the entry (`len`, `addr`) needs.
pub fn cover_entry<const N: usize>(maps: EntryArrays<'_>, len: u8, addr: &[u8; N]) -> Result<()> {
    let mut bits = Dense::empty(FILTER_WORDS);
    cover(&mut bits, len, addr);
    add(maps.filter, &bits)?;
    if usize::from(len) < N * 8 {
        add(maps.prefixed, &bits)?;
    } else {
        let words = maps.exacts.capacity()?;
        add(maps.exacts, &exacts_of_addrs([*addr].iter(), words))?;
    }
    if usize::from(len) < N * 8 || N == 4 {
        let mut l = Dense::empty(LENS_SLOTS);
        lengths(&mut l, len, addr);
        add(maps.lens, &l)?;
    }
    match (maps.hints, <[u8; 4]>::try_from(&addr[..])) {
        (Some(hints), Ok(a)) => add(hints, &hints_of_entries([(len, a)].into_iter())),
        _ => Ok(()),
    }
}

/// An array map in the kernel.
pub struct KernelWords<V> {
    name: &'static str,
    data: MapData,
    value: std::marker::PhantomData<V>,
}

impl<V> KernelWords<V> {
    pub fn new(name: &'static str, map: Map) -> Result<Self> {
        match map {
            Map::Array(data) => Ok(Self { name, data, value: std::marker::PhantomData }),
            _ => Err(anyhow!("{name} is not an array")),
        }
    }
}

impl<V> MapInfo for KernelWords<V> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn capacity(&self) -> Result<u32> {
        Ok(self.data.info()?.max_entries())
    }

    fn pin(&self, pins: &super::pins::Pins) -> Result<()> {
        super::table::pin(self.name, &self.data, &pins.map(self.name))
    }

    fn memory(&self) -> Result<u64> {
        super::table::memlock(self.name, &self.data)
    }
}

impl<V: Pod + Sync> Words<V> for KernelWords<V> {
    fn get(&self, slot: u32) -> Result<V> {
        let found = raw::lookup_one::<u32, V>(self.data.fd().as_fd(), &slot);
        found.ok_or_else(|| anyhow!("cannot read slot {slot} of {}", self.name))
    }

    /// Through a mapping of the array (16 MiB for the hints, the exact-address filter 14 bits a
    /// slot of the exact table, most 2 MiB or less): a store a slot,
    /// no system call (a batched update copies each slot in on its own), each `u64` whole.
    fn put(&mut self, slots: &[(u32, V)]) -> Result<()> {
        let mut m = Mapping::<V>::all(self.name, &self.data)?;
        slots.iter().for_each(|(i, v)| m.write(*i as usize, *v));
        // What follows (entry writes, deletes) is seen after these.
        std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
        Ok(())
    }
}

#[cfg(test)]
#[path = "prefilter_tests.rs"]
mod tests;
