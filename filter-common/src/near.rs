//! The prefilters and the prefix-length sets: which bit or slot an address falls in.

use crate::{V4Key, V6Key};

/// Words of a prefilter map: 2^24 bits (2 MiB).
pub const FILTER_WORDS: u32 = 1 << 18;

/// The prefilter bit of an IPv4 address: its /24.
pub const fn v4_filter_bit(a: &V4Key) -> u32 {
    (a[0] as u32) << 16 | (a[1] as u32) << 8 | a[2] as u32
}

/// The prefilter bit of an IPv6 address: a multiplicative hash of its /32 (a collision only
/// costs a lookup that finds nothing).
pub const fn v6_filter_bit(a: &V6Key) -> u32 {
    v6_filter_bit_of(u32::from_be_bytes([a[0], a[1], a[2], a[3]]))
}

/// The prefilter bit of the IPv6 /32 whose first 32 bits are `top`.
pub const fn v6_filter_bit_of(top: u32) -> u32 {
    top.wrapping_mul(0x9E37_79B1) >> 8
}

/// Prefilter bits one allowlist prefilter bit stands for (`>>` of a prefilter bit): an IPv4
/// /20, or 16 hashes of an IPv6 /32. The allowlist is consulted only for listed addresses, so
/// a coarse bit costs little (a trie lookup for a listed address near an allowed one).
pub const ALLOWED_SHIFT: u32 = 4;

/// Words of an allowlist prefilter map: 2^20 bits (128 KiB).
pub const ALLOWED_WORDS: u32 = FILTER_WORDS >> ALLOWED_SHIFT;

/// Words of [`MAP_V4_EXACTS`](crate::MAP_V4_EXACTS): 2^24 bits (2 MiB).
pub const V4_EXACTS_WORDS: u32 = FILTER_WORDS;

/// The [`MAP_V4_EXACTS`](crate::MAP_V4_EXACTS) word of an IPv4 address and the four bits in it
/// that its exact entry sets (a Bloom filter whose bits for one key share a word: one load):
/// all from one 64-bit multiplicative hash of the address, its top 18 bits the word, the next
/// four 6-bit fields the bits. An unlisted address finds all four set for about 1% of
/// addresses at 1.24M entries (one bit a hash set 7% of them).
pub const fn v4_exacts_of(a: &V4Key) -> (u32, u64) {
    let h = (u32::from_be_bytes(*a) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let bits = 1u64 << ((h >> 40) & 63)
        | 1u64 << ((h >> 34) & 63)
        | 1u64 << ((h >> 28) & 63)
        | 1u64 << ((h >> 22) & 63);
    ((h >> 46) as u32, bits)
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

/// The [`MAP_V6_LENS`](crate::MAP_V6_LENS) slot of an IPv6 address: a hash of its /32.
pub const fn v6_lens_slot(a: &V6Key) -> u32 {
    v6_filter_bit(a) >> 8
}

#[cfg(test)]
mod tests {
    use super::{LenMask, V6Probe};
    use crate::table4::v6_tag;

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
