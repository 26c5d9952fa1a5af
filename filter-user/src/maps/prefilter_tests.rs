//! The prefilter arrays' unit tests: which bits and lengths an entry needs, and the moves.

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
    let bits = bits_of(&tables(&[], &[*key]));
    let b = v4_filter_bit(addr);
    bits.0[(b >> 6) as usize] & (1u64 << (b & 63)) != 0
}

fn count(b: &Dense<u64>) -> u32 {
    b.0.iter().map(|w| w.count_ones()).sum()
}

#[test]
fn ipv4_sets_one_bit_per_slash_24_covered() {
    let t = tables(
        &[[203, 0, 113, 7], [203, 0, 113, 9]],
        &[(16, [198, 51, 0, 0]), (28, [192, 0, 2, 16])],
    );
    let b = bits_of(&t);
    assert_eq!(count(&b), 1 + 256 + 1);
    assert!(covers_v4(&(16, [198, 51, 0, 0]), &[198, 51, 255, 1]));
    assert!(!covers_v4(&(16, [198, 51, 0, 0]), &[198, 52, 0, 1]));
}

#[test]
fn ipv6_hashes_slash_32s_and_sets_every_bit_from_slash_8() {
    let a = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
    assert_eq!(count(&bits_of(&tables(&[a], &[(48, a)]))), 1);
    assert_eq!(count(&bits_of(&tables(&[], &[(24, a)]))), 256, "no collisions among 256");
    assert!(count(&bits_of(&tables(&[], &[(12, a)]))) < FILTER_WORDS * 64 / 8);
    assert_eq!(count(&bits_of(&tables(&[], &[(8, a)]))), FILTER_WORDS * 64);
}

#[test]
fn moves_set_both_plans_bits_first_and_the_new_ones_after() {
    let old = tables(&[[203, 0, 113, 7]], &[]);
    let new = tables(&[[198, 51, 100, 7]], &[]);
    let m = Moves::between(&bits_of(&old), &bits_of(&new));
    let word = |a: [u8; 4]| v4_filter_bit(&a) >> 6;
    assert_eq!(m.during.len(), 1);
    assert_eq!(m.during[0].0, word([198, 51, 100, 7]));
    assert_eq!(m.after.len(), 1);
    assert_eq!(m.after[0], (word([203, 0, 113, 7]), 0));
    assert_eq!(Moves::between(&bits_of(&new), &bits_of(&new)), Moves::default());
}

#[test]
fn ipv4_lengths_mark_every_slash_16_a_prefix_overlaps_and_each_holding_an_address() {
    let exact = [[203, 0, 113, 7], [192, 0, 2, 9]];
    let t = tables(&exact, &[(12, [10, 16, 0, 0]), (24, [192, 0, 2, 0])]);
    let lens = lens_of(&t);
    let slot = |a: [u8; 4]| lens.0[v4_lens_slot(&a) as usize];
    assert_eq!(slot([10, 16, 0, 1]), LenMask::of(12));
    assert_eq!(slot([10, 31, 255, 1]), LenMask::of(12), "the /12's last /16");
    assert_eq!(slot([10, 32, 0, 1]), LenMask::default());
    assert_eq!(slot([192, 0, 2, 1]), LenMask::of(24) | LenMask::of(32));
    assert_eq!(slot([203, 0, 113, 7]), LenMask::of(32), "an exact address: length 32");
    assert_eq!(slot([203, 1, 113, 7]), LenMask::default());
    assert_eq!(lens.slots().count(), 16 + 1 + 1);
    let v6 = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
    assert_eq!(lens_of(&tables(&[v6], &[])).slots().count(), 0, "IPv6: prefixes only");
}

#[test]
fn the_allowlist_prefilter_has_a_bit_per_slash_20() {
    let t = Tables::<4> {
        allow: vec![(24, [192, 0, 2, 0]), (32, [10, 9, 8, 7])],
        ..Default::default()
    };
    let bits = allowed_of(&t);
    assert_eq!(bits.0.len(), ALLOWED_WORDS as usize);
    let set = |a: [u8; 4]| {
        let b = v4_filter_bit(&a) >> ALLOWED_SHIFT;
        bits.0[(b >> 6) as usize] & (1u64 << (b & 63)) != 0
    };
    assert!(set([192, 0, 2, 1]) && set([192, 0, 15, 255]), "the /24's /20");
    assert!(!set([192, 0, 16, 0]), "the next /20");
    assert!(set([10, 9, 0, 1]) && !set([10, 9, 16, 1]));
    assert_eq!(count(&bits), 2);
}
