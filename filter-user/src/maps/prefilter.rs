//! The prefilters (filter-common's `TD_V4_FILTER`, `TD_V6_FILTER`): one bit per IPv4 /24, or per
//! hash of an IPv6 /32, set when some entry may cover an address there. The kernel skips every
//! lookup for an address whose bit is clear, so a miss costs one array load whatever the lists
//! hold. Here: the bits a plan needs, the words that move a map from one plan's bits to
//! another's, and the kernel array they are written to. `sync` sets bits before the entries
//! that need them are written, and clears them only after those entries are gone.

use std::os::fd::AsFd;

use anyhow::{Result, anyhow};
use aya::maps::{Map, MapData};
use filter_common::{FILTER_WORDS, v4_filter_bit, v6_filter_bit_of};

use super::{MapInfo, raw};
use crate::plan::{Plan, Tables};

/// An IPv6 prefix this short covers 2^24 /32s or more: every bit is set (a /9 sets 2^23).
const V6_EVERY_BIT: u8 = 8;

/// A dense prefilter bitmap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bits(Vec<u64>);

impl Bits {
    fn empty() -> Self {
        Self(vec![0; FILTER_WORDS as usize])
    }

    fn set(&mut self, bit: u32) {
        self.0[(bit >> 6) as usize] |= 1u64 << (bit & 63);
    }

    fn set_range(&mut self, first: u32, count: u32) {
        (first..first + count).for_each(|b| self.set(b));
    }

    /// The bits the entries (not the allowlist) of `tables` need.
    pub fn of<const N: usize>(tables: &Tables<N>) -> Self {
        let mut bits = Self::empty();
        let exact = tables.exact.iter().map(|(a, _)| ((N * 8) as u8, *a));
        for (len, addr) in exact.chain(tables.prefix.iter().map(|(k, _)| *k)) {
            bits.cover(len, &addr);
        }
        bits
    }

    /// Sets the bits of every address of the prefix (`len`, `addr`).
    fn cover<const N: usize>(&mut self, len: u8, addr: &[u8; N]) {
        let top = u32::from_be_bytes([addr[0], addr[1], addr[2], addr[3]]);
        if N == 4 {
            let first = v4_filter_bit(&top.to_be_bytes());
            self.set_range(first, 1 << 24u8.saturating_sub(len));
        } else if len >= 32 {
            self.set(v6_filter_bit_of(top));
        } else if len > V6_EVERY_BIT {
            (0..1u32 << (32 - len)).for_each(|i| self.set(v6_filter_bit_of(top + i)));
        } else {
            self.0.fill(u64::MAX);
        }
    }

    /// The bits of either.
    fn union(&self, other: &Bits) -> Bits {
        Bits(self.0.iter().zip(&other.0).map(|(a, b)| a | b).collect())
    }

    /// The words to write so that a map holding `self` holds `to`.
    fn moves(&self, to: &Bits) -> Vec<(u32, u64)> {
        let words = self.0.iter().zip(&to.0).enumerate();
        words.filter(|(_, (a, b))| a != b).map(|(i, (_, b))| (i as u32, *b)).collect()
    }
}

/// The word writes that move one family's prefilter from one plan to the next.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Moves {
    /// Before any entry is written: the bits of both plans.
    pub during: Vec<(u32, u64)>,
    /// After every entry is deleted: the bits of the new plan.
    pub after: Vec<(u32, u64)>,
}

impl Moves {
    fn between<const N: usize>(old: &Tables<N>, new: &Tables<N>) -> Self {
        let (old, new) = (Bits::of(old), Bits::of(new));
        let both = old.union(&new);
        Self { during: old.moves(&both), after: both.moves(&new) }
    }
}

/// Both families' prefilter moves.
pub fn moves(old: &Plan, new: &Plan) -> (Moves, Moves) {
    (Moves::between(&old.v4, &new.v4), Moves::between(&old.v6, &new.v6))
}

/// A prefilter map: word index -> 64 bits.
pub trait Words: MapInfo {
    fn get(&self, word: u32) -> Result<u64>;
    fn put(&mut self, words: &[(u32, u64)]) -> Result<()>;
}

/// Sets, in `filter`, the bits that the entry (`len`, `addr`) needs (for a single edit).
pub fn cover<const N: usize>(filter: &mut dyn Words, len: u8, addr: &[u8; N]) -> Result<()> {
    let mut bits = Bits::empty();
    bits.cover(len, addr);
    let mut words = Vec::new();
    for (i, w) in bits.0.iter().enumerate().filter(|(_, w)| **w != 0) {
        let word = i as u32;
        words.push((word, filter.get(word)? | w));
    }
    filter.put(&words)
}

/// A prefilter map in the kernel.
pub struct KernelWords {
    name: &'static str,
    data: MapData,
}

impl KernelWords {
    pub fn new(name: &'static str, map: Map) -> Result<Self> {
        match map {
            Map::Array(data) => Ok(Self { name, data }),
            _ => Err(anyhow!("{name} is not an array")),
        }
    }
}

impl MapInfo for KernelWords {
    fn name(&self) -> &'static str {
        self.name
    }

    fn capacity(&self) -> Result<u32> {
        Ok(self.data.info()?.max_entries())
    }

    fn pin(&self, path: &std::path::Path) -> Result<()> {
        let _ = std::fs::remove_file(path);
        let name = self.name;
        self.data.pin(path).map_err(|e| anyhow!("cannot pin {name} at {}: {e}", path.display()))
    }

    fn memory(&self) -> Result<u64> {
        super::table::memlock(self.name, &self.data)
    }
}

impl Words for KernelWords {
    fn get(&self, word: u32) -> Result<u64> {
        let found = raw::lookup_one::<u32, u64>(self.data.fd().as_fd(), &word);
        found.ok_or_else(|| anyhow!("cannot read word {word} of {}", self.name))
    }

    fn put(&mut self, words: &[(u32, u64)]) -> Result<()> {
        let (keys, values): (Vec<u32>, Vec<u64>) = words.iter().copied().unzip();
        let fd = self.data.fd().as_fd();
        let failed = |e: std::io::Error| anyhow!("cannot write {}: {e}", self.name);
        match raw::update(fd, &keys, &values) {
            Ok(()) => Ok(()),
            Err(raw::BatchError::Unsupported) => keys
                .iter()
                .zip(&values)
                .try_for_each(|(k, v)| raw::update_one(fd, k, v).map_err(failed)),
            Err(raw::BatchError::Failed { error, .. }) => Err(failed(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Meta, PrefixKey};

    fn tables<const N: usize>(exact: &[[u8; N]], prefix: &[PrefixKey<N>]) -> Tables<N> {
        let m = Meta::default();
        Tables {
            exact: exact.iter().map(|a| (*a, m)).collect(),
            prefix: prefix.iter().map(|k| (*k, m)).collect(),
            allow: vec![],
        }
    }

    /// True when the prefix `key` sets the bit of `addr`.
    fn covers_v4(key: &PrefixKey<4>, addr: &[u8; 4]) -> bool {
        let bits = Bits::of(&tables(&[], &[*key]));
        let b = v4_filter_bit(addr);
        bits.0[(b >> 6) as usize] & (1u64 << (b & 63)) != 0
    }

    fn count(b: &Bits) -> u32 {
        b.0.iter().map(|w| w.count_ones()).sum()
    }

    #[test]
    fn ipv4_sets_one_bit_per_slash_24_covered() {
        let t = tables(
            &[[203, 0, 113, 7], [203, 0, 113, 9]],
            &[(16, [198, 51, 0, 0]), (28, [192, 0, 2, 16])],
        );
        let b = Bits::of(&t);
        assert_eq!(count(&b), 1 + 256 + 1);
        assert!(covers_v4(&(16, [198, 51, 0, 0]), &[198, 51, 255, 1]));
        assert!(!covers_v4(&(16, [198, 51, 0, 0]), &[198, 52, 0, 1]));
    }

    #[test]
    fn ipv6_hashes_slash_32s_and_sets_every_bit_from_slash_8() {
        let a = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
        assert_eq!(count(&Bits::of(&tables(&[a], &[(48, a)]))), 1);
        assert_eq!(count(&Bits::of(&tables(&[], &[(24, a)]))), 256, "no collisions among 256");
        assert!(count(&Bits::of(&tables(&[], &[(12, a)]))) < FILTER_WORDS * 64 / 8);
        assert_eq!(count(&Bits::of(&tables(&[], &[(8, a)]))), FILTER_WORDS * 64);
    }

    #[test]
    fn moves_set_both_plans_bits_first_and_the_new_ones_after() {
        let old = tables(&[[203, 0, 113, 7]], &[]);
        let new = tables(&[[198, 51, 100, 7]], &[]);
        let m = Moves::between(&old, &new);
        let word = |a: [u8; 4]| v4_filter_bit(&a) >> 6;
        assert_eq!(m.during.len(), 1);
        assert_eq!(m.during[0].0, word([198, 51, 100, 7]));
        assert_eq!(m.after.len(), 1);
        assert_eq!(m.after[0], (word([203, 0, 113, 7]), 0));
        assert_eq!(Moves::between(&new, &new), Moves::default());
    }
}
