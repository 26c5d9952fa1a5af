//! The prefilter arrays' unit tests: which bits and lengths an entry needs, and the moves.

use super::*;
use crate::plan::{Meta, PrefixKey};
use filter_common::{V6_TIERS, v4_exacts_words, v4_lens_slot, v6_lens_slot, v6_tier_lens};

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
    let words = bits.len() as u32;
    let set = probes.iter().filter(|a| {
        let (word, mask) = v4_exacts_of(a, words);
        bits.0[word as usize] & mask == mask
    });
    set.count() as f64 / probes.len() as f64
}

#[test]
fn the_exact_address_prefilter_lets_one_inside_host_in_a_hundred_through_at_1_24m_and_5m() {
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
    // The filter sized as a start sizes it: by the table's capacity, an eighth more than the
    // plan's addresses; and by a table filled to its capacity (`--max-entries` reached).
    for (n, capacity) in [(1_240_000, 1_395_000), (5_000_000, 5_625_000), (5_000_000, 5_000_000)] {
        let listed = listed_addresses(n);
        assert_eq!(listed.len(), n);
        let bits = exacts_of_addrs(listed.iter(), v4_exacts_words(capacity));
        let rate = false_positives(&bits, &probes);
        let mib = bits.len() as f64 * 8.0 / (1 << 20) as f64;
        eprintln!(
            "{n} exact addresses, capacity {capacity}: {mib:.2} MiB, {:.2}% of inside hosts pay a table probe",
            rate * 100.0
        );
        assert!(rate <= 0.01, "{n}: {rate}");
        // Every listed address finds its bits (none is skipped).
        assert_eq!(false_positives(&bits, &listed[..10_000]), 1.0);
    }
}

/// The lengths the kernel tries for IPv6 address `a` (`V6::lens` in `lookup.rs`): each tier's
/// own, from the tier's slot.
fn v6_lens_at(lens: &Dense<LenMask>, a: u128) -> LenMask {
    let hi = (a >> 64) as u64;
    let tier = |t: usize| v6_tier_lens(lens.0[v6_lens_slot(hi, t) as usize], t);
    (0..V6_TIERS.len()).fold(LenMask::default(), |m, t| m | tier(t))
}

#[test]
fn an_ipv6_miss_next_to_real_prefixes_tries_few_lengths_and_a_hit_its_own() {
    // The benchmark's IPv6 prefixes: spamhaus DROPv6 and every 5th country block.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/lists");
    let read = |name: &str| crate::lists::parse_file(&dir.join(name), &Default::default());
    let country = read("country-blocks-v6.txt").unwrap().entries.into_iter().step_by(5);
    let all = read("spamhaus-drop-v6.txt").unwrap().entries.into_iter().chain(country);
    let nets: Vec<ipnet::Ipv6Net> = all
        .filter_map(|e| match e.net {
            ipnet::IpNet::V6(n) => Some(n.trunc()),
            ipnet::IpNet::V4(_) => None,
        })
        .collect();
    let keys: Vec<PrefixKey<16>> =
        nets.iter().map(|n| (n.prefix_len(), n.addr().octets())).collect();
    let lens = lens_of(&tables(&[], &keys));
    let covered = |a: u128| nets.iter().any(|n| n.contains(&std::net::Ipv6Addr::from(a)));
    // Every listed network finds its length, at its first and last address.
    for n in &nets {
        let want = LenMask::of_v6(n.prefix_len());
        for a in [u128::from(n.network()), u128::from(n.broadcast())] {
            let got = v6_lens_at(&lens, a);
            assert_eq!(got | want, got, "{n}: {a:x}");
        }
    }
    // Misses where a search is likely: in the /32 of a listed network, and right after one.
    let near = nets.iter().step_by(nets.len() / 200).flat_map(|n| {
        let top = u128::from(n.network()) >> 96 << 96;
        [top | 0x0407 << 64, u128::from(n.broadcast()).wrapping_add(1)]
    });
    let tried: Vec<u32> = near
        .filter(|a| !covered(*a))
        .map(|a| {
            let m = v6_lens_at(&lens, a);
            m.lo.count_ones() + m.hi.count_ones()
        })
        .collect();
    let mut sorted = tried.clone();
    sorted.sort_unstable();
    let mean = tried.iter().sum::<u32>() as f64 / tried.len() as f64;
    let p95 = sorted[sorted.len() * 95 / 100];
    eprintln!("{} misses: {mean:.2} lengths tried on average, 95th percentile {p95}", tried.len());
    assert!(tried.len() >= 200, "{}", tried.len());
    assert!(mean <= 1.0 && p95 <= 2, "mean {mean}, 95th percentile {p95}");
}
