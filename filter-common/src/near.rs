//! The prefilters and the prefix-length sets: which bit or slot an address falls in.

use crate::V4Key;

/// Words of a prefilter map: 2^24 bits (2 MiB).
pub const FILTER_WORDS: u32 = 1 << 18;

/// The prefilter bit of an IPv4 address: its /24.
pub const fn v4_filter_bit(a: &V4Key) -> u32 {
    (a[0] as u32) << 16 | (a[1] as u32) << 8 | a[2] as u32
}

/// The prefilter bit of the IPv6 /32 whose first 32 bits are `top`: a multiplicative hash of
/// it (a collision only costs a lookup that finds nothing).
pub const fn v6_filter_bit_of(top: u32) -> u32 {
    top.wrapping_mul(0x9E37_79B1) >> 8
}

/// Prefilter bits one allowlist prefilter bit stands for (`>>` of a prefilter bit): an IPv4
/// /20, or 16 hashes of an IPv6 /32. The allowlist is consulted only for listed addresses, so
/// a coarse bit costs little (a trie lookup for a listed address near an allowed one).
pub const ALLOWED_SHIFT: u32 = 4;

/// Words of an allowlist prefilter map: 2^20 bits (128 KiB).
pub const ALLOWED_WORDS: u32 = FILTER_WORDS >> ALLOWED_SHIFT;

/// Bits of [`MAP_V4_EXACTS`](crate::MAP_V4_EXACTS) a slot of the exact-address table's
/// capacity: 14, so that an unlisted address finds its four bits set for well under 1% of
/// addresses when the table is as full as its capacity allows (a plan fills it to 8 in 9).
pub const V4_EXACTS_BITS_PER_ENTRY: u64 = 14;

/// Words of [`MAP_V4_EXACTS`](crate::MAP_V4_EXACTS) for an exact-address table of `capacity`
/// entries: [`V4_EXACTS_BITS_PER_ENTRY`] a slot, in whole units of 1024 words (8 KiB; at
/// least one, at most 0xFFFF), the unit the config flags carry the count in
/// ([`v4_exacts_in_flags`]).
pub const fn v4_exacts_words(capacity: u32) -> u32 {
    let units = (capacity as u64 * V4_EXACTS_BITS_PER_ENTRY).div_ceil(64 * 1024);
    let units = if units < 1 {
        1
    } else if units > 0xFFFF {
        0xFFFF
    } else {
        units
    };
    (units * 1024) as u32
}

/// The config flags' bits that carry the word count `words` (a multiple of 1024) of
/// [`MAP_V4_EXACTS`](crate::MAP_V4_EXACTS): their top 16 bits, the count in units of 1024
/// words. The kernel reads the flags once a packet anyway: the count costs no load of its own.
pub const fn v4_exacts_in_flags(words: u32) -> u32 {
    (words >> 10) << 16
}

/// The word count of [`MAP_V4_EXACTS`](crate::MAP_V4_EXACTS) that config flags `flags` carry
/// (0: none said; the kernel then probes the exact table without the filter).
pub const fn v4_exacts_words_in(flags: u32) -> u32 {
    (flags >> 16) << 10
}

/// The [`MAP_V4_EXACTS`](crate::MAP_V4_EXACTS) word of an IPv4 address in a filter of `words`
/// words, and the four bits in it that its exact entry sets (a Bloom filter whose bits for one
/// key share a word: one load). Two 64-bit multiplicative hashes of the address, each read by
/// its high bits (which every bit of the address reaches): the first's top 32 bits scaled to
/// `words` pick the word, the second's four top 6-bit fields the bits.
pub const fn v4_exacts_of(a: &V4Key, words: u32) -> (u32, u64) {
    let x = u32::from_be_bytes(*a) as u64;
    let word = (((x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) * words as u64) >> 32) as u32;
    let h = x.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    let bits = 1u64 << (h >> 58)
        | 1u64 << ((h >> 52) & 63)
        | 1u64 << ((h >> 46) & 63)
        | 1u64 << ((h >> 40) & 63);
    (word, bits)
}

/// Words of [`MAP_V6_EXACTS`](crate::MAP_V6_EXACTS): 2^20 bits (128 KiB; IPv6 lists hold
/// few exact addresses).
pub const V6_EXACTS_WORDS: u32 = FILTER_WORDS >> 4;

/// The [`MAP_V6_EXACTS`](crate::MAP_V6_EXACTS) bit of the IPv6 /32 whose first 32 bits are
/// `top`: its prefilter bit, shifted into the smaller map.
pub const fn v6_exacts_bit_of(top: u32) -> u32 {
    v6_filter_bit_of(top) >> 4
}

/// A set of prefix lengths: bit L of `lo` is length L (0..=63), bit L of `hi` length 64 + L.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LenMask {
    pub lo: u64,
    pub hi: u64,
}

impl LenMask {
    /// The set holding `len` alone.
    pub const fn of(len: u8) -> Self {
        match len {
            0..64 => Self { lo: 1 << len, hi: 0 },
            _ => Self { lo: 0, hi: 1 << (len - 64) },
        }
    }

    /// The set holding IPv6 length `len` alone, in the order of
    /// [`MAP_V6_LENS`](crate::MAP_V6_LENS): longest first, bit `127 - len` (lengths 127 to 64
    /// in `lo`, 63 to 0 in `hi`). The longest length present is then the lowest bit set,
    /// which the kernel isolates and turns into masks and a tag
    /// ([`LenMask::take_longest_v6`]).
    pub const fn of_v6(len: u8) -> Self {
        Self::of(127 - len)
    }

    /// The longest IPv6 length left in the set (in the order of [`LenMask::of_v6`]: the lowest
    /// bit set), taken out of it: the masks of an address's halves and the key's tag for that
    /// length. Ands, shifts and negations of that bit alone: BPF has no instruction to count
    /// zeros, which a length as a number would take.
    #[inline(always)]
    pub fn take_longest_v6(&mut self) -> Option<V6Probe> {
        if self.lo != 0 {
            // Bit 127 - len: the mask keeps len - 64 bits of the low half (none for /64, whose
            // bit shifts out).
            let bit = self.lo & self.lo.wrapping_neg();
            self.lo ^= bit;
            let above = bit << 1;
            Some(V6Probe {
                hi_mask: u64::MAX,
                lo_mask: above.wrapping_neg(),
                tag: above.wrapping_sub(1),
            })
        } else if self.hi != 0 {
            let bit = self.hi & self.hi.wrapping_neg();
            self.hi ^= bit;
            let mask = (bit << 1).wrapping_neg();
            Some(V6Probe { hi_mask: mask, lo_mask: 0, tag: mask })
        } else {
            None
        }
    }
}

/// One IPv6 prefix length to probe ([`LenMask::take_longest_v6`]): the masks of the
/// address's halves and the tag of the length in the key
/// ([`v6_tag`](crate::table4::v6_tag)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct V6Probe {
    pub hi_mask: u64,
    pub lo_mask: u64,
    pub tag: u64,
}

impl core::ops::BitOr for LenMask {
    type Output = Self;
    fn bitor(self, o: Self) -> Self {
        Self { lo: self.lo | o.lo, hi: self.hi | o.hi }
    }
}

/// Words of [`MAP_V4_HINTS`](crate::MAP_V4_HINTS) when it is in use: one byte per /24, eight
/// a word, from word 1 on (16 MiB). A map of one word has no hints: the kernel searches the
/// lengths instead (word 0 is never read, so that a one-word map yields no hint).
pub const HINT_WORDS: u32 = (1 << 21) + 1;

/// A hint's flag: a prefix longer than /24 lies in the /24 (its length bits say nothing about
/// it: the lengths are searched).
pub const HINT_LONG: u8 = 0x80;

/// A hint's flag: an exact address lies in the /24 (without it, the exact table is not looked
/// up).
pub const HINT_EXACT: u8 = 0x40;

/// A hint's length bits: [`hint_of_len`] of the longest prefix of at most /24 that covers the
/// /24 (0: none does).
pub const HINT_LEN: u8 = 0x3f;

/// The length bits of a /24 that a prefix of length `len` (at most 24) covers, when no longer
/// one does: `len + 1`.
pub const fn hint_of_len(len: u8) -> u8 {
    len + 1
}

/// The [`MAP_V4_HINTS`](crate::MAP_V4_HINTS) word of the /24 numbered `slot` (its prefilter
/// bit), and the shift of its byte in that word.
pub const fn v4_hint_at(slot: u32) -> (u32, u32) {
    (1 + (slot >> 3), (slot & 7) * 8)
}

/// Slots of [`MAP_V4_LENS`](crate::MAP_V4_LENS) and [`MAP_V6_LENS`](crate::MAP_V6_LENS).
pub const LENS_SLOTS: u32 = 1 << 16;

/// The [`MAP_V4_LENS`](crate::MAP_V4_LENS) slot of an IPv4 address: its /16.
pub const fn v4_lens_slot(a: &V4Key) -> u32 {
    (a[0] as u32) << 8 | a[1] as u32
}

/// The key widths of [`MAP_V6_LENS`]'s tiers. A prefix's length is noted in the first tier at
/// least that long (the last, for longer ones), in the slot of every key the prefix covers
/// (its own, when longer): a /30 in the slots of its four /32s, a /36 in its sixteen /40s, a
/// /56 in its /48's; a /29, the registries' usual allocation, in one slot of tier 29. An
/// address then finds, in its five slots, the lengths of the prefixes that may cover it (and
/// those of keys that share a slot), not those of every prefix in its /32: real country
/// blocks put a dozen lengths in some /32s, each a probe for a miss there.
///
/// [`MAP_V6_LENS`]: crate::MAP_V6_LENS
pub const V6_TIERS: [u8; 5] = [24, 29, 32, 40, 48];

/// The tier of IPv6 prefix length `len` in [`V6_TIERS`]: the first at least as long, or the
/// last.
pub const fn v6_tier(len: u8) -> usize {
    let mut t = 0;
    while t + 1 < V6_TIERS.len() && len > V6_TIERS[t] {
        t += 1;
    }
    t
}

/// The [`MAP_V6_LENS`](crate::MAP_V6_LENS) slot of the key of tier `t` (the top
/// `V6_TIERS[t]` bits) of an address whose first 64 bits are `hi`: a multiplicative hash of
/// the key and its width, read by its top 16 bits.
#[inline(always)]
pub const fn v6_lens_slot(hi: u64, t: usize) -> u32 {
    let width = V6_TIERS[t] as u32;
    let key = hi >> (64 - width) | (width as u64) << 56;
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - LENS_SLOTS.trailing_zeros())) as u32
}

/// The lengths tier `t` notes (in [`LenMask::of_v6`]'s order): past the previous tier's width
/// up to its own; the last, every longer one too. The tiers' sets are disjoint, so one slot
/// holds the lengths of every tier whose keys fall in it, and a reader keeps each tier's own.
pub const fn v6_tier_lengths(t: usize) -> LenMask {
    let first = if t == 0 { 0 } else { V6_TIERS[t - 1] + 1 };
    let last = if t + 1 == V6_TIERS.len() { 127 } else { V6_TIERS[t] };
    let mut m = LenMask { lo: 0, hi: 0 };
    let mut len = first;
    while len <= last {
        let one = LenMask::of_v6(len);
        m = LenMask { lo: m.lo | one.lo, hi: m.hi | one.hi };
        len += 1;
    }
    m
}

/// The lengths of tier `t` in `slot`, a [`MAP_V6_LENS`](crate::MAP_V6_LENS) slot's value (which
/// holds the lengths of every tier whose keys fall in it): what a reader keeps of it.
#[inline(always)]
pub const fn v6_tier_lens(slot: LenMask, t: usize) -> LenMask {
    let own = v6_tier_lengths(t);
    LenMask { lo: slot.lo & own.lo, hi: slot.hi & own.hi }
}

#[cfg(test)]
mod tests {
    use super::{LenMask, V6Probe};
    use crate::table4::v6_tag;

    #[test]
    fn the_flags_carry_the_exact_address_filters_size_above_every_flag() {
        use super::{v4_exacts_in_flags, v4_exacts_words, v4_exacts_words_in};
        use crate::{CFG_JOURNAL, CFG_V4_ALLOW, CFG_V4_PREFIXES, CFG_V6_ALLOW, CFG_V6_PREFIXES};
        let flags = CFG_V4_PREFIXES | CFG_V6_PREFIXES | CFG_V4_ALLOW | CFG_V6_ALLOW | CFG_JOURNAL;
        assert!(flags < 1 << 16);
        for capacity in [0, 1 << 14, 1_395_000, 5_625_000, 16 << 20, u32::MAX] {
            let words = v4_exacts_words(capacity);
            assert!(words >= 1024 && words.is_multiple_of(1024), "{capacity}");
            let carried = v4_exacts_in_flags(words) | flags;
            assert_eq!(v4_exacts_words_in(carried), words, "{capacity}");
            assert_eq!(carried & 0xffff, flags);
        }
        assert_eq!(v4_exacts_words(1_395_000), 306_176, "14 bits a slot, in 8 KiB units");
    }

    #[test]
    fn every_ipv6_length_lies_in_the_one_tier_that_notes_it() {
        use super::{V6_TIERS, v6_tier, v6_tier_lens};
        for len in 0..=127u8 {
            let t = v6_tier(len);
            let holds = |u: usize| v6_tier_lens(LenMask::of_v6(len), u) != LenMask::default();
            assert!(holds(t), "/{len}");
            assert_eq!((0..V6_TIERS.len()).filter(|&u| holds(u)).count(), 1, "/{len}");
            assert!(len <= V6_TIERS[t] || t == V6_TIERS.len() - 1, "/{len}");
        }
        assert_eq!(
            (v6_tier(24), v6_tier(25), v6_tier(29), v6_tier(48), v6_tier(64)),
            (0, 1, 1, 4, 4)
        );
    }

    #[test]
    fn ipv6_lengths_lie_longest_first() {
        let bit = |m: LenMask| (m.lo.trailing_zeros(), m.hi.trailing_zeros());
        assert_eq!(bit(LenMask::of_v6(127)), (0, 64), "the longest: lo's lowest bit");
        assert_eq!(bit(LenMask::of_v6(64)), (63, 64));
        assert_eq!(bit(LenMask::of_v6(63)), (64, 0));
        assert_eq!(bit(LenMask::of_v6(0)), (64, 63), "the shortest: hi's highest bit");
    }

    #[test]
    fn ipv6_lengths_are_taken_longest_first_as_masks_and_tags() {
        let mask = |bits: u32| if bits == 0 { 0 } else { u64::MAX << (64 - bits) };
        let mut all = (0..128).fold(LenMask::default(), |m, len| m | LenMask::of_v6(len));
        for len in (0..128u32).rev() {
            let (hi_mask, lo_mask) =
                if len >= 64 { (u64::MAX, mask(len - 64)) } else { (mask(len), 0) };
            let probe = V6Probe { hi_mask, lo_mask, tag: v6_tag(len) };
            assert_eq!(LenMask::of_v6(len as u8).take_longest_v6(), Some(probe), "/{len} alone");
            assert_eq!(all.take_longest_v6(), Some(probe), "/{len} of every length");
        }
        assert_eq!(all.take_longest_v6(), None);
    }
}
