//! The layout of the exact IPv4 table: a two-choice bucketised hash table in two array maps
//! that user space writes through `mmap` and the kernel reads with array loads alone.
//!
//! [`MAP_V4_BUCKETS`](crate::MAP_V4_BUCKETS) holds buckets of [`BUCKET_SLOTS`] `u64` slots
//! (one cache line each); a slot holds an address and the index of its [`EntryValue`] in
//! [`MAP_V4_EXACT`](crate::MAP_V4_EXACT) ([`v4_slot`]; 0: empty). An address lives in one of
//! its two buckets ([`v4_buckets`]), the less full one when it was written; entries never
//! move, so a reader that scans both buckets never misses a listed address. The bucket count
//! ([`v4_bucket_count`], in [`CFG_V4_BUCKETS`](crate::CFG_V4_BUCKETS)) keeps at most
//! [`MAX_FILL`] slots in ten in use at full capacity: a bucket then never fills up in practice
//! (simulated on the benchmark's 1.24M real addresses at that fill: one bucket in 258,334 full,
//! no address without room),
//! and a write that finds both full fails as a full map would.
//!
//! [`EntryValue`]: crate::EntryValue

use crate::V4Key;

/// Slots of a bucket: 8 `u64`s, 64 bytes.
pub const BUCKET_SLOTS: usize = 8;

/// A bucket of [`MAP_V4_BUCKETS`](crate::MAP_V4_BUCKETS).
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bucket {
    pub slots: [u64; BUCKET_SLOTS],
}

/// Slots in use, in tenths, when the table holds as many entries as its capacity.
pub const MAX_FILL: u32 = 6;

/// Buckets for a table of `capacity` entries (at least one).
pub const fn v4_bucket_count(capacity: u32) -> u32 {
    let slots = capacity as u64 * 10 / MAX_FILL as u64;
    let buckets = slots.div_ceil(BUCKET_SLOTS as u64);
    if buckets == 0 { 1 } else { buckets as u32 }
}

/// The address as a slot holds it: its 4 bytes in memory order, so that the kernel compares
/// the packet's bytes as loaded.
pub const fn v4_word(a: &V4Key) -> u32 {
    u32::from_ne_bytes(*a)
}

/// The slot of address `a` whose value is at `index` in [`MAP_V4_EXACT`](crate::MAP_V4_EXACT).
pub const fn v4_slot(a: &V4Key, index: u32) -> u64 {
    (index as u64 + 1) << 32 | v4_word(a) as u64
}

/// The value index a slot holds for `word` ([`v4_word`]), if it holds that address.
#[inline(always)]
pub const fn v4_slot_index(slot: u64, word: u32) -> Option<u32> {
    if slot as u32 == word && slot >> 32 != 0 { Some((slot >> 32) as u32 - 1) } else { None }
}

/// The address and value index of a slot in use.
pub const fn v4_slot_entry(slot: u64) -> Option<(V4Key, u32)> {
    match slot >> 32 {
        0 => None,
        i => Some(((slot as u32).to_ne_bytes(), i as u32 - 1)),
    }
}

/// The two buckets (of `count`) where address word `word` ([`v4_word`]) may live: the word's
/// halves folded together (without it, neighbouring addresses crowd), then two multiplicative
/// hashes, scaled to `count` by a multiply (no division on
/// the packet path).
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
