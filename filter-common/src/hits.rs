//! Hit counts a CPU keeps to itself ([`MAP_HITS`]), so that a flood of one listed address over
//! every receive queue writes no cache line that another CPU writes.
//!
//! Each CPU has [`HIT_SLOTS`] slots. An entry is named by where its value lies ([`entry_at`]:
//! its table and its byte offset in that table's value array, so that the kernel tells it from
//! the value's address alone) and by its value's generation ([`EntryValue::generation`], in the
//! flags' high half: user space raises it each time the value serves a new entry). A hit on the
//! entry a slot names adds one to the slot; a hit on another entry takes the slot when the slot
//! was not hit in this tick of the coarse clock (a [`LAST_HIT_SHIFT`](crate::LAST_HIT_SHIFT)
//! unit, 134 ms), first adding the slot's count to the value it named if that value is still of
//! the same generation (one atomic add, once a tick at most); otherwise it adds one to the
//! entry's value atomically, as every hit did before. An entry's hits are therefore its value's
//! `packets` plus every CPU's slot that names it ([`HitSlot::pending_for`]).

use crate::EntryValue;

/// Per-CPU array with one [`HitSlots`]: this CPU's hit counts.
pub const MAP_HITS: &str = "TD_HITS";

/// Slots a CPU has (a power of two).
pub const HIT_SLOTS: usize = 256;

/// One slot: the entry it counts for, the tick it was last hit in, and the hits it holds.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HitSlot {
    /// [`entry_at`] of the entry; 0: none.
    pub at: u32,
    /// The generation of the entry's value.
    pub generation: u16,
    /// The coarse clock's tick of its last hit (`ns >> LAST_HIT_SHIFT`, truncated).
    pub tick: u16,
    /// Hits not yet added to the entry's value.
    pub packets: u64,
}

/// Where the generation lies in [`EntryValue::flags`]: the `FLAG_*` bits are below it.
pub const GENERATION_SHIFT: u32 = 16;
/// The `FLAG_*` bits of [`EntryValue::flags`].
pub const FLAG_BITS: u32 = (1 << GENERATION_SHIFT) - 1;

impl EntryValue {
    /// Which use of its value index this is (raised each time the index serves a new entry).
    pub const fn generation(&self) -> u16 {
        (self.flags >> GENERATION_SHIFT) as u16
    }

    /// Its `FLAG_*` bits alone.
    pub const fn flag_bits(&self) -> u32 {
        self.flags & FLAG_BITS
    }

    /// The same value, of generation `g`.
    pub const fn with_generation(mut self, g: u16) -> Self {
        self.flags = self.flags & FLAG_BITS | (g as u32) << GENERATION_SHIFT;
        self
    }
}

/// A CPU's slots: the value of [`MAP_HITS`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HitSlots {
    pub slots: [HitSlot; HIT_SLOTS],
}

impl Default for HitSlots {
    fn default() -> Self {
        Self { slots: [HitSlot::default(); HIT_SLOTS] }
    }
}

/// The tables whose values [`entry_at`] names (0 is no table: an empty slot).
pub const AT_V4_EXACT: u32 = 1;
pub const AT_V4_PREFIX: u32 = 2;
pub const AT_V6_EXACT: u32 = 3;
pub const AT_V6_PREFIX: u32 = 4;

/// Bits of [`entry_at`] that hold the offset (in 8-byte words); the table is above them.
pub const AT_OFFSET_BITS: u32 = 29;

/// Words (8 bytes) of one [`EntryValue`](crate::EntryValue).
pub const VALUE_WORDS: u32 = (core::mem::size_of::<crate::EntryValue>() / 8) as u32;

/// Where a value lies: `table` (an `AT_*`) and its byte offset in that table's value array.
pub const fn entry_at(table: u32, offset_bytes: u64) -> u32 {
    table << AT_OFFSET_BITS | (offset_bytes / 8) as u32 & ((1 << AT_OFFSET_BITS) - 1)
}

/// The table (`AT_*`) and value index that [`entry_at`] `at` names.
pub const fn entry_of(at: u32) -> (u32, u32) {
    (at >> AT_OFFSET_BITS, (at & ((1 << AT_OFFSET_BITS) - 1)) / VALUE_WORDS)
}

/// The slot of a CPU that entry `at` uses: a multiplicative hash of `at`.
pub const fn hit_slot(at: u32) -> usize {
    (at.wrapping_mul(0x9E37_79B1) >> (32 - HIT_SLOTS.trailing_zeros())) as usize
}

impl HitSlot {
    /// The hits this slot holds for the entry at `at` of generation `generation`.
    pub const fn pending_for(&self, at: u32, generation: u16) -> u64 {
        if self.at == at && self.generation == generation { self.packets } else { 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_named_by_its_table_and_offset_and_back() {
        for (table, index) in [(AT_V4_EXACT, 0), (AT_V6_PREFIX, 5), (AT_V4_PREFIX, 20_000_000)] {
            let at = entry_at(table, u64::from(index) * 24);
            assert_ne!(at, 0);
            assert_eq!(entry_of(at), (table, index));
            assert!(hit_slot(at) < HIT_SLOTS);
        }
        assert_eq!(VALUE_WORDS, 3);
    }

    #[test]
    fn the_generation_lies_above_the_flags() {
        let v = EntryValue::new(crate::FLAG_BOTH, 1).with_generation(0xbeef);
        assert_eq!((v.generation(), v.flag_bits()), (0xbeef, crate::FLAG_BOTH));
        assert_eq!(v.with_generation(1).generation(), 1);
        let slot = HitSlot { at: 5, generation: 2, tick: 0, packets: 7 };
        assert_eq!((slot.pending_for(5, 2), slot.pending_for(5, 3)), (7, 0));
    }
}
