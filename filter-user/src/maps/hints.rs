//! The IPv4 prefix hints (filter-common's `TD_V4_HINTS`): a byte per /24 naming the longest
//! prefix of at most /24 that covers it, and flagging a /24 in which a longer prefix or an
//! exact address lies; so that a prefix hit probes one length, not every length present in its
//! /16, and the exact table is looked up only where an exact address may be. Here: what a plan
//! needs, how two plans' hints join during a move, and the kernel array (in use only when it
//! was created at full size, that is when the program was loaded with IPv4 prefixes).
//!
//! During a move a byte holds the join of both plans' hints (the longer length, either flag):
//! the length the kernel probes is then written or about to be, and a probe that finds nothing
//! falls back to the search, so a hint never hides an entry; after the deletes, the new plan's.

use std::ops::BitOr;

use anyhow::Result;
use aya::maps::Map;
use filter_common::{
    HINT_EXACT, HINT_LEN, HINT_LONG, HINT_WORDS, MAP_V4_HINTS, hint_of_len, v4_filter_bit,
};

use super::{
    MapInfo,
    prefilter::{Dense, KernelWords, Words},
};
use crate::plan::{PrefixKey, Tables};

/// A word of the hints array: eight /24s' bytes, the first in the lowest byte.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hints(pub u64);

// SAFETY: a transparent wrapper of a u64: plain old data, every bit pattern valid.
unsafe impl aya::Pod for Hints {}

impl BitOr for Hints {
    type Output = Self;
    /// Byte by byte, the join of two hints.
    fn bitor(self, o: Self) -> Self {
        let (a, b) = (self.0.to_le_bytes(), o.0.to_le_bytes());
        Self(u64::from_le_bytes(std::array::from_fn(|i| join(a[i], b[i]))))
    }
}

/// Two hints of one /24 joined: either flag, the longer length.
fn join(a: u8, b: u8) -> u8 {
    ((a | b) & !HINT_LEN) | (a & HINT_LEN).max(b & HINT_LEN)
}

/// The hints the entries `entries` (length and address; 32: an exact address) need.
pub fn hints_of_entries(entries: impl Iterator<Item = PrefixKey<4>>) -> Dense<Hints> {
    let mut bytes = vec![0u8; 1 << 24];
    for (len, addr) in entries {
        let first = v4_filter_bit(&addr) as usize;
        match len {
            32 => bytes[first] |= HINT_EXACT,
            25.. => bytes[first] |= HINT_LONG,
            _ => {
                let hint = hint_of_len(len);
                for b in &mut bytes[first..first + (1 << (24 - len))] {
                    *b = join(*b, hint);
                }
            }
        }
    }
    // Word 0 is never read (see `HINT_WORDS`); the /24s from word 1 on, eight a word.
    let words = bytes.chunks_exact(8).map(|c| Hints(u64::from_le_bytes(c.try_into().unwrap())));
    Dense::from_vec(std::iter::once(Hints(0)).chain(words).collect())
}

/// The hints of `tables`' entries.
pub fn hints_of(tables: &Tables<4>) -> Dense<Hints> {
    let exact = tables.exact.iter().map(|(a, _)| (32, *a));
    hints_of_entries(tables.prefix.iter().map(|(k, _)| *k).chain(exact))
}

/// The kernel's hints array; a one-word array (created without IPv4 prefixes) is not in use:
/// nothing is written to it and it reads as empty.
pub struct KernelHints {
    words: KernelWords<Hints>,
    active: bool,
}

impl KernelHints {
    pub fn new(map: Map) -> Result<Self> {
        let words = KernelWords::new(MAP_V4_HINTS, map)?;
        let active = words.capacity()? >= HINT_WORDS;
        Ok(Self { words, active })
    }
}

impl MapInfo for KernelHints {
    fn name(&self) -> &'static str {
        self.words.name()
    }

    fn capacity(&self) -> Result<u32> {
        self.words.capacity()
    }

    fn pin(&self, pins: &super::pins::Pins) -> Result<()> {
        self.words.pin(pins)
    }

    fn memory(&self) -> Result<u64> {
        self.words.memory()
    }
}

impl Words<Hints> for KernelHints {
    fn get(&self, slot: u32) -> Result<Hints> {
        if self.active { self.words.get(slot) } else { Ok(Hints::default()) }
    }

    fn put(&mut self, slots: &[(u32, Hints)]) -> Result<()> {
        if self.active { self.words.put(slots) } else { Ok(()) }
    }
}

#[cfg(test)]
mod tests {
    use filter_common::v4_hint_at;

    use super::*;

    /// The hint byte of `addr`'s /24, read as the kernel reads it.
    fn hint(h: &Dense<Hints>, addr: [u8; 4]) -> u8 {
        let (word, shift) = v4_hint_at(v4_filter_bit(&addr));
        (h.word(word).0 >> shift) as u8
    }

    #[test]
    fn the_longest_covering_length_and_the_flags_of_longer_prefixes_and_addresses() {
        let p =
            [(8, [10, 0, 0, 0]), (16, [10, 1, 0, 0]), (24, [10, 1, 2, 0]), (28, [10, 9, 9, 16])];
        let h = hints_of_entries(p.into_iter().chain([(32, [10, 1, 3, 9]), (32, [11, 0, 0, 7])]));
        assert_eq!(h.len(), HINT_WORDS as usize);
        assert_eq!(hint(&h, [10, 1, 2, 3]), hint_of_len(24));
        assert_eq!(hint(&h, [10, 1, 3, 3]), hint_of_len(16) | HINT_EXACT);
        assert_eq!(hint(&h, [10, 200, 0, 1]), hint_of_len(8));
        assert_eq!(hint(&h, [10, 9, 9, 1]), hint_of_len(8) | HINT_LONG);
        assert_eq!(hint(&h, [11, 0, 0, 0]), HINT_EXACT);
        assert_eq!(hint(&h, [11, 0, 1, 0]), 0);
        assert_eq!(hint(&h, [9, 255, 255, 255]), 0);
        assert_eq!(h.word(0), Hints(0), "word 0 is never used");
    }

    #[test]
    fn a_join_keeps_the_longer_length_and_either_flag() {
        assert_eq!(join(hint_of_len(16), hint_of_len(8)), hint_of_len(16));
        assert_eq!(join(hint_of_len(8) | HINT_LONG, hint_of_len(20)), hint_of_len(20) | HINT_LONG);
        assert_eq!(join(HINT_EXACT, hint_of_len(24)), hint_of_len(24) | HINT_EXACT);
        assert_eq!(join(0, hint_of_len(0)), hint_of_len(0));
        let w = Hints(u64::from_le_bytes([1, 0, 9, HINT_LONG, 0, 0, 0, 25]));
        let v = Hints(u64::from_le_bytes([3, 2, 1, 4, 0, 0, 0, HINT_EXACT]));
        assert_eq!((w | v).0.to_le_bytes(), [3, 2, 9, HINT_LONG | 4, 0, 0, 0, HINT_EXACT | 25]);
    }
}
