//! The layout of the bucketised tables (exact IPv4 addresses, IPv4 prefixes shorter than
//! /32, exact IPv6 addresses, IPv6 prefixes): each a two-choice bucketised hash table in array
//! maps that user space writes through `mmap` and the kernel reads with array loads alone.
//!
//! A table's buckets map ([`TableMaps::buckets`]) holds buckets of [`BUCKET_SLOTS`] `u64` slots
//! (one cache line each); a slot holds a 32-bit key word and the index of its [`EntryValue`]
//! in the table's values map ([`v4_slot`]; 0: empty). The word of an exact address is its 4
//! bytes ([`v4_word`]); that of a prefix, its masked address with a marker bit just past the
//! length ([`v4_prefix_word`]), one word for each (length, prefix). A word lives in one of its
//! two buckets ([`v4_buckets`]), the less full one when it was written; entries never move, so
//! a reader that scans both buckets never misses a listed key. The bucket count
//! ([`v4_bucket_count`], in the table's `CFG_*` slot) keeps at most [`MAX_FILL`] slots in ten
//! in use at full capacity: a bucket then never fills up in practice (simulated on the
//! benchmark's 1.24M real addresses at that fill: one bucket in 258,334 full, no address
//! without room), and a write that finds both full fails as a full map would.
//!
//! An IPv6 key does not fit a word: its table's word is a hash of it ([`v6_hash`]), and the
//! key itself lies beside the value, at the same index of the table's keys map
//! ([`TableMaps::keys`], array of [`V6Stored`]). No bucket holds a word twice, so the kernel
//! compares the key of at most one slot a bucket.
//!
//! [`EntryValue`]: crate::EntryValue

use crate::{
    CFG_V4_BUCKETS, CFG_V4_PREFIX_BUCKETS, CFG_V6_BUCKETS, CFG_V6_PREFIX_BUCKETS, MAP_V4_BUCKETS,
    MAP_V4_EXACT, MAP_V4_PREFIX, MAP_V4_PREFIX_BUCKETS, MAP_V6_BUCKETS, MAP_V6_EXACT, MAP_V6_KEYS,
    MAP_V6_PREFIX, MAP_V6_PREFIX_BUCKETS, MAP_V6_PREFIX_KEYS, V4Key,
};

/// Slots of a bucket: 8 `u64`s, 64 bytes.
pub const BUCKET_SLOTS: usize = 8;

/// A bucket of a table's buckets map.
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bucket {
    pub slots: [u64; BUCKET_SLOTS],
}

/// The maps and config slot of one table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableMaps {
    /// The values: array of `EntryValue` (mmapable); its size is the table's capacity.
    pub values: &'static str,
    /// The buckets: array of [`Bucket`] (mmapable), [`v4_bucket_count`] of the capacity.
    pub buckets: &'static str,
    /// The index of the bucket count in `MAP_CONFIG`.
    pub config: u32,
    /// The keys (IPv6 tables): array of [`V6Stored`] (mmapable), as many as the values.
    pub keys: Option<&'static str>,
    /// How [`entry_at`](crate::entry_at) names it (an `AT_*`).
    pub at: u32,
}

/// Exact IPv4 addresses.
pub const EXACT4: TableMaps = TableMaps {
    values: MAP_V4_EXACT,
    buckets: MAP_V4_BUCKETS,
    config: CFG_V4_BUCKETS,
    keys: None,
    at: crate::AT_V4_EXACT,
};
/// IPv4 prefixes (lengths 0 to 31).
pub const PREFIX4: TableMaps = TableMaps {
    values: MAP_V4_PREFIX,
    buckets: MAP_V4_PREFIX_BUCKETS,
    config: CFG_V4_PREFIX_BUCKETS,
    keys: None,
    at: crate::AT_V4_PREFIX,
};
/// Exact IPv6 addresses.
pub const EXACT6: TableMaps = TableMaps {
    values: MAP_V6_EXACT,
    buckets: MAP_V6_BUCKETS,
    config: CFG_V6_BUCKETS,
    keys: Some(MAP_V6_KEYS),
    at: crate::AT_V6_EXACT,
};
/// IPv6 prefixes (lengths 0 to 127).
pub const PREFIX6: TableMaps = TableMaps {
    values: MAP_V6_PREFIX,
    buckets: MAP_V6_PREFIX_BUCKETS,
    config: CFG_V6_PREFIX_BUCKETS,
    keys: Some(MAP_V6_PREFIX_KEYS),
    at: crate::AT_V6_PREFIX,
};
/// Every table.
pub const TABLES: [TableMaps; 4] = [EXACT4, PREFIX4, EXACT6, PREFIX6];

/// The key of an IPv6 table's entry, beside its value: the address (masked to the length for
/// a prefix) in two big-endian halves, and the length's tag ([`v6_tag`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct V6Stored {
    pub hi: u64,
    pub lo: u64,
    pub tag: u64,
}

/// What stands for IPv6 prefix length `len` in a key: the mask of the half the length ends
/// in, the high half's as is (`len` < 64), the low half's inverted (`len` >= 64), so that no
/// two lengths share a tag. The kernel makes it from a length's bit in a slot's lengths with
/// shifts and negations alone ([`LenMask::take_longest_v6`](crate::LenMask::take_longest_v6)):
/// a number would take a count of zeros, which BPF has no instruction for. 128 (an exact
/// address, in a table of its own): [`V6_EXACT_TAG`].
pub const fn v6_tag(len: u32) -> u64 {
    match len {
        0 => 0,
        1..64 => u64::MAX << (64 - len),
        64..128 => u64::MAX >> (len - 64),
        _ => V6_EXACT_TAG,
    }
}

/// The tag of an exact IPv6 address's key.
pub const V6_EXACT_TAG: u64 = 0;

/// The prefix length (0 to 127) that tag `tag` stands for ([`v6_tag`]).
pub const fn v6_len_of_tag(tag: u64) -> u32 {
    if tag & 1 != 0 { 64 + tag.leading_zeros() } else { tag.count_ones() }
}

/// The hash of an IPv6 key (address halves `hi`, `lo`, already masked, and length tag `tag`):
/// its high half is the slot's word ([`v6_word`]), its lower bits pick the buckets
/// ([`v6_buckets`]). Two multiplies, each followed by a fold of its high bits (which depend on
/// every bit of the factors) onto its low ones (which depend only on the factors' low bits: a
/// prefix's are zeros). Without the first fold, real allocations crowded into some second
/// buckets (31 keys where chance puts 15) and a table of 20,000 of them could not be filled.
#[inline(always)]
pub const fn v6_hash(hi: u64, lo: u64, tag: u64) -> u64 {
    let x = (hi ^ tag).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let x = (x ^ x >> 32 ^ lo).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    x ^ x >> 29
}

/// The slot word of an IPv6 key's hash.
#[inline(always)]
pub const fn v6_word(hash: u64) -> u32 {
    (hash >> 32) as u32
}

/// The two buckets (of `count`) of an IPv6 key's hash: bits 0 to 31 and 12 to 43, scaled.
#[inline(always)]
pub const fn v6_buckets(hash: u64, count: u32) -> [u32; 2] {
    [scaled(hash << 32, count), scaled(hash << 20, count)]
}

/// Slots in use, in tenths, when the table holds as many entries as its capacity.
pub const MAX_FILL: u32 = 6;

/// Buckets for a table of `capacity` entries (at least one).
pub const fn v4_bucket_count(capacity: u32) -> u32 {
    let slots = capacity as u64 * 10 / MAX_FILL as u64;
    let buckets = slots.div_ceil(BUCKET_SLOTS as u64);
    if buckets == 0 { 1 } else { buckets as u32 }
}

/// The word of an exact address: its 4 bytes in memory order, so that the kernel compares the
/// packet's bytes as loaded.
pub const fn v4_word(a: &V4Key) -> u32 {
    u32::from_ne_bytes(*a)
}

/// The word of the prefix of length `len` (0 to 31) holding address `addr` (host order): the
/// address with every bit past the length cleared, and the first of those bits set.
#[inline(always)]
pub const fn v4_prefix_word(len: u32, addr: u32) -> u32 {
    let kept = if len == 0 { 0 } else { addr & (u32::MAX << (32 - len)) };
    kept | 1 << (31 - len)
}

/// The length and masked address (network order) of prefix word `word` ([`v4_prefix_word`]).
pub const fn v4_prefix_of(word: u32) -> (u32, V4Key) {
    let len = 31 - word.trailing_zeros();
    (len, (word & !(1 << (31 - len))).to_be_bytes())
}

/// The slot of key word `word` whose value is at `index`.
pub const fn v4_slot(word: u32, index: u32) -> u64 {
    (index as u64 + 1) << 32 | word as u64
}

/// The value index a slot holds for `word`, if it holds that word.
#[inline(always)]
pub const fn v4_slot_index(slot: u64, word: u32) -> Option<u32> {
    if slot as u32 == word && slot >> 32 != 0 { Some((slot >> 32) as u32 - 1) } else { None }
}

/// The word and value index of a slot in use.
pub const fn v4_slot_entry(slot: u64) -> Option<(u32, u32)> {
    match slot >> 32 {
        0 => None,
        i => Some((slot as u32, i as u32 - 1)),
    }
}

/// The two buckets (of `count`) where key word `word` may live: the word's halves folded
/// together (without it, neighbouring addresses crowd), then two multiplicative hashes,
/// scaled to `count` by a multiply (no division on the packet path).
#[inline(always)]
pub const fn v4_buckets(word: u32, count: u32) -> [u32; 2] {
    let w = (word ^ word >> 16) as u64;
    [
        scaled(w.wrapping_mul(0x9E37_79B9_7F4A_7C15), count),
        scaled(w.wrapping_mul(0xC2B2_AE3D_27D4_EB4F), count),
    ]
}

/// The high half of hash `h` scaled to `0..count`.
#[inline(always)]
const fn scaled(h: u64, count: u32) -> u32 {
    (((h >> 32) * count as u64) >> 32) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_words_are_one_to_one() {
        let addr = u32::from_be_bytes([203, 0, 113, 77]);
        let words: [u32; 32] = core::array::from_fn(|len| v4_prefix_word(len as u32, addr));
        for (len, w) in words.iter().enumerate() {
            let masked = if len == 0 { 0 } else { addr & (u32::MAX << (32 - len)) };
            assert_eq!(v4_prefix_of(*w), (len as u32, masked.to_be_bytes()));
            assert!(words[..len].iter().all(|o| o != w), "length {len} collides");
        }
        assert_eq!(v4_prefix_of(v4_prefix_word(24, addr)), (24, [203, 0, 113, 0]));
    }

    #[test]
    fn ipv6_tags_are_one_to_one() {
        let tags: [u64; 128] = core::array::from_fn(|len| v6_tag(len as u32));
        for (len, tag) in tags.iter().enumerate() {
            assert_eq!(v6_len_of_tag(*tag), len as u32);
            assert!(tags[..len].iter().all(|o| o != tag), "length {len} collides");
        }
    }
}
