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

/// Real listed addresses, as the benchmark's big list takes them: ipsum's and stopforumspam's,
/// then every address of spamhaus DROP's /19 to /24 networks, up to `n`; past what they hold,
/// pseudo-random public ones.
fn listed_addresses(n: usize) -> Vec<[u8; 4]> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/lists");
    let read = |name: &str| {
        let list = crate::lists::parse_file(&dir.join(name), &Default::default()).unwrap();
        list.entries.into_iter().map(|e| e.net).collect::<Vec<_>>()
    };
    let drop = read("spamhaus-drop.txt");
    let expanded = drop.into_iter().filter(|n| (19..=24).contains(&n.prefix_len()));
    let hosts = [read("ipsum.txt"), read("stopforumspam_180d.ipset")].concat().into_iter();
    let real = hosts
        .filter(|n| n.prefix_len() == 32)
        .chain(expanded.flat_map(|n| n.hosts().map(ipnet::IpNet::from)));
    let mut rng = fastrand::Rng::with_seed(7);
    let random = std::iter::repeat_with(move || {
        ipnet::IpNet::from(std::net::IpAddr::from(std::net::Ipv4Addr::from(
            rng.u32(0x0100_0000..0xdf00_0000),
        )))
    });
    let mut seen = std::collections::HashSet::with_capacity(n);
    let v4 = real.chain(random).filter_map(|n| match n.addr() {
        std::net::IpAddr::V4(a) => Some(a.octets()),
        std::net::IpAddr::V6(_) => None,
    });
    v4.filter(|a| seen.insert(*a)).take(n).collect()
}

/// The share of `probes` whose four bits are all set in `bits` (they would pay a table probe).
fn false_positives(bits: &Dense<u64>, probes: &[[u8; 4]]) -> f64 {
    let set = probes.iter().filter(|a| {
        let (word, mask) = v4_exacts_of(a);
        bits.0[word as usize] & mask == mask
    });
    set.count() as f64 / probes.len() as f64
}

#[test]
fn the_exact_address_prefilter_lets_one_inside_host_in_a_hundred_through_at_1_24m() {
    let probes: Vec<[u8; 4]> = {
        let mut rng = fastrand::Rng::with_seed(11);
        // Inside hosts: private addresses of every range.
        let ranges = [(0x0a00_0000u32, 24), (0xac10_0000, 20), (0xc0a8_0000, 16)];
        (0..200_000)
            .map(|i| {
                let (base, bits) = ranges[i % 3];
                (base | rng.u32(..) >> (32 - bits)).to_be_bytes()
            })
            .collect()
    };
    for (n, most) in [(1_240_000, 0.012), (5_000_000, 0.30)] {
        let listed = listed_addresses(n);
        assert_eq!(listed.len(), n);
        let bits = exacts_of_addrs(listed.iter());
        let rate = false_positives(&bits, &probes);
        eprintln!("{n} exact addresses: {:.2}% of inside hosts pay a table probe", rate * 100.0);
        assert!(rate <= most, "{n}: {rate}");
        // Every listed address finds its bits (none is skipped).
        assert_eq!(false_positives(&bits, &listed[..10_000]), 1.0);
    }
}
