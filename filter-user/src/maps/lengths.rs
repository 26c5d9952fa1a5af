//! The prefix lengths near each address (filter-common's `TD_V4_LENS`, `TD_V6_LENS`), so that
//! the kernel tries only those: IPv4, per /16, which lengths its prefixes have (and 32 when it
//! holds an exact address); IPv6, by tiers of keys (`V6_TIERS`), each prefix's length in the
//! slot of every key of its tier that it covers. Their moves and kernel arrays are the
//! prefilters' (`prefilter`).

use filter_common::{LENS_SLOTS, LenMask, V6_TIERS, v4_lens_slot, v6_lens_slot, v6_tier};

use super::prefilter::Dense;
use crate::plan::Tables;

/// The length of a prefix (`len`, `addr`), set in the slot of everything it overlaps: every /16
/// (IPv4; an address, length 32, in its own), or (IPv6) of every key of its tier it covers
/// (`V6_TIERS`; every slot when that is more keys than slots).
pub(super) fn lengths<const N: usize>(lens: &mut Dense<LenMask>, len: u8, addr: &[u8; N]) {
    let bit = if N == 4 { LenMask::of(len) } else { LenMask::of_v6(len) };
    let mut set = |slot: u32| lens.or(slot, bit);
    if N == 4 {
        let first = v4_lens_slot(&[addr[0], addr[1], addr[2], addr[3]]);
        (first..first + (1 << 16u8.saturating_sub(len))).for_each(set);
        return;
    }
    let hi = u64::from_be_bytes(std::array::from_fn(|i| addr[i]));
    let t = v6_tier(len);
    let shift = 64 - u32::from(V6_TIERS[t]);
    let keys = 1u64 << V6_TIERS[t].saturating_sub(len).min(32);
    if keys >= u64::from(LENS_SLOTS) {
        (0..LENS_SLOTS).for_each(set);
    } else {
        (0..keys).for_each(|i| set(v6_lens_slot(hi + (i << shift), t)));
    }
}

/// The prefix lengths near each address, of `tables`' prefixes; for IPv4, length 32 in the
/// slot of every exact address too.
pub fn lens_of<const N: usize>(tables: &Tables<N>) -> Dense<LenMask> {
    let mut lens = Dense::empty(LENS_SLOTS);
    tables.prefix.iter().for_each(|((len, addr), _)| lengths(&mut lens, *len, addr));
    if N == 4 {
        tables.exact.iter().for_each(|(addr, _)| lengths(&mut lens, 32, addr));
    }
    lens
}

/// Entries `lens_of` is made of.
pub(super) fn lens_entries<const N: usize>(tables: &Tables<N>) -> usize {
    tables.prefix.len() + if N == 4 { tables.exact.len() } else { 0 }
}
