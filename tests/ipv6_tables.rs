//! The IPv6 tables (buckets, keys and values written through mmap; a slot holds a hash of its
//! key, the key lies beside the value) against the real program: the exact table and the
//! prefix table, each filled to its capacity with real allocations, drop every entry and pass
//! their neighbours; one more is refused; keys whose hashes share a slot word in a bucket are
//! all found; deleted entries pass; empty tables are small.

use std::{collections::HashSet, net::Ipv6Addr, path::PathBuf};

use filter_common::{
    ADDRESS_MAPS, EntryValue, FLAG_BOTH, Family, MAP_V6_EXACT, MAP_V6_PREFIX, MapKind,
    table4::{V6_EXACT_TAG, v6_buckets, v6_hash, v6_tag, v6_word},
    v4_bucket_count,
};
use integration_tests::{
    frames, kernel_test,
    loaded::{Loaded, XDP_DROP, XDP_PASS, sized},
};
use ipnet::{IpNet, Ipv6Net};
use takedown::{
    lists::{self, ListOptions},
    maps::{
        WriteMode,
        filter::{Capacities, Filter, MIN_CAPACITY_V6},
        sync,
    },
    plan::{Meta, Plan},
};

const INSIDE: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x42];
const META: Meta = Meta { flags: FLAG_BOTH, lists: 1 };

/// The IPv6 country blocks (real RIR allocations), as a plan keeps them (merged, in order).
fn real_prefixes() -> Vec<Ipv6Net> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/lists");
    let list = lists::parse_file(&dir.join("country-blocks-v6.txt"), &ListOptions::default());
    let plan = Plan::build(list.unwrap().entries.into_iter().map(|e| (e.net, META)), &[]);
    let nets = plan.v6.prefix.iter().map(|((len, a), _)| Ipv6Net::new((*a).into(), *len));
    nets.map(Result::unwrap).collect()
}

fn plan_of(nets: impl Iterator<Item = IpNet>) -> Plan {
    Plan::build(nets.map(|n| (n, META)), &[])
}

fn loaded(plan: &Plan, caps: &Capacities) -> Loaded {
    let mut filter = Filter::load(caps).unwrap();
    sync::fill(&mut filter.maps_mut().addr, plan).unwrap();
    Loaded { filter }
}

/// The addresses of `addrs` whose verdict (as source) is not `want`.
fn wrong(l: &Loaded, addrs: &[Ipv6Addr], want: u32) -> Vec<Ipv6Addr> {
    addrs.iter().filter(|a| l.verdict(&frames::v6(a.octets(), INSIDE)) != want).copied().collect()
}

fn step(a: Ipv6Addr, d: i128) -> Ipv6Addr {
    Ipv6Addr::from((u128::from(a) as i128 + d) as u128)
}

#[kernel_test]
fn an_exact_table_filled_to_capacity_drops_every_address_and_refuses_one_more() {
    const N: usize = 20_000;
    // The first address of each allocation after the first: real, and spread.
    let addrs: Vec<Ipv6Addr> = real_prefixes().iter().map(|n| step(n.network(), 1)).collect();
    let (held, extra) = (&addrs[..N], addrs[N]);
    let plan = plan_of(held.iter().map(|a| IpNet::from(std::net::IpAddr::V6(*a))));
    assert_eq!(plan.v6.exact.len(), N, "every address an exact entry");
    let mut l = loaded(&plan, &sized(&plan, MAP_V6_EXACT, N as u32));
    let missed = wrong(&l, held, XDP_DROP);
    assert!(missed.is_empty(), "{} listed addresses passed: {:?}", missed.len(), &missed[..5]);
    let next: Vec<Ipv6Addr> = held.iter().map(|a| step(*a, 1)).collect();
    let dropped = wrong(&l, &next, XDP_PASS);
    assert!(dropped.is_empty(), "{} unlisted addresses dropped: {:?}", dropped.len(), dropped);
    let exact = &mut l.filter.maps_mut().addr.v6.exact;
    assert_eq!(exact.entries().unwrap().len(), N);
    let value = EntryValue::new(META.flags, META.lists);
    let err = exact.put(&[(extra.octets(), value)], WriteMode::Batched).unwrap_err();
    assert!(format!("{err:#}").contains("the TD_V6_EXACT map is full"), "{err:#}");
    assert_eq!(
        wrong(&l, &[extra], XDP_PASS),
        Vec::<Ipv6Addr>::new(),
        "a refused entry is not half written"
    );
}

/// True when a prefix of `set` holds `a`.
fn covered(set: &HashSet<Ipv6Net>, a: Ipv6Addr) -> bool {
    (0..=128).any(|len| set.contains(&Ipv6Net::new(a, len).unwrap().trunc()))
}

#[kernel_test]
fn a_prefix_table_filled_to_capacity_drops_inside_every_prefix_and_refuses_one_more() {
    const N: usize = 9_000;
    let all = real_prefixes();
    // Spread over the plan's order (by length, then address): every length is in.
    let nets: Vec<Ipv6Net> = all.iter().step_by(all.len() / (N + 1)).take(N + 1).copied().collect();
    let (held, extra) = (&nets[..N], nets[N]);
    let plan = plan_of(held.iter().map(|n| IpNet::V6(*n)));
    assert_eq!(plan.v6.prefix.len(), N, "the plan keeps every prefix");
    let mut l = loaded(&plan, &sized(&plan, MAP_V6_PREFIX, N as u32));
    let inside: Vec<Ipv6Addr> = held.iter().flat_map(|n| [n.network(), n.broadcast()]).collect();
    let missed = wrong(&l, &inside, XDP_DROP);
    assert!(missed.is_empty(), "{} listed addresses passed: {:?}", missed.len(), &missed[..5]);
    let set: HashSet<_> = held.iter().copied().collect();
    let outside: Vec<Ipv6Addr> = held
        .iter()
        .flat_map(|n| [step(n.network(), -1), step(n.broadcast(), 1)])
        .filter(|a| !covered(&set, *a))
        .collect();
    assert!(outside.len() > N / 4, "too few neighbours to check: {}", outside.len());
    let dropped = wrong(&l, &outside, XDP_PASS);
    assert!(dropped.is_empty(), "{} unlisted addresses dropped: {:?}", dropped.len(), dropped);
    let prefix = &mut l.filter.maps_mut().addr.v6.prefix;
    assert_eq!(prefix.entries().unwrap().len(), N);
    let key = (extra.prefix_len(), extra.network().octets());
    let err = prefix.put(&[(key, EntryValue::new(META.flags, META.lists))], WriteMode::Batched);
    let err = format!("{:#}", err.unwrap_err());
    assert!(err.contains("the TD_V6_PREFIX map is full"), "{err}");
}

/// Each of a key's two buckets, on its own, spreads the real allocations (all 65,000 merged
/// country blocks, as prefixes and as the address after each) as chance would: 4.8 keys a
/// bucket on average, and at most 18 in one (chance puts more there in under one table in a
/// hundred). A hash that put 31 in one second bucket could not fill a table of 20,000 of them.
#[test]
fn real_allocations_spread_over_each_choice_of_bucket() {
    let nets = real_prefixes();
    let prefixes: Vec<(Ipv6Addr, u64)> =
        nets.iter().map(|n| (n.network(), v6_tag(n.prefix_len().into()))).collect();
    let addresses: Vec<(Ipv6Addr, u64)> =
        nets.iter().map(|n| (step(n.network(), 1), V6_EXACT_TAG)).collect();
    for (what, keys) in [("prefixes", prefixes), ("addresses", addresses)] {
        let count = v4_bucket_count(keys.len() as u32);
        for choice in 0..2 {
            let mut load = vec![0u32; count as usize];
            for (a, tag) in &keys {
                let a = u128::from(*a);
                load[v6_buckets(v6_hash((a >> 64) as u64, a as u64, *tag), count)[choice]
                    as usize] += 1;
            }
            let most = load.iter().max().unwrap();
            assert!(*most <= 18, "{what}: {most} keys in one bucket of choice {choice}");
        }
    }
}

/// Pairs of addresses of 2001:db8::/64 (random interface identifiers) whose hashes give the same slot word and the same
/// first bucket in a table of `count` buckets (each key's two buckets distinct): in an empty
/// table, both would take that bucket (the first, when both are as empty).
fn same_word_pairs(count: u32, pairs: usize) -> Vec<[Ipv6Addr; 2]> {
    let hi = 0x2001_0db8_0000_0000u64;
    // Interface identifiers drawn at random (splitmix64 of a counter): the hash of a run of
    // consecutive ones spreads them evenly, and shares no word at all.
    let random = |i: u64| {
        let z = (i.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i >> 7)
            .wrapping_mul(0xBF58_476D_1CE4_E5B9);
        (z ^ z >> 27).wrapping_mul(0x94D0_49BB_1331_11EB) ^ z >> 31
    };
    let mut words: Vec<(u32, u64)> = (0..2_000_000u64)
        .map(random)
        .map(|lo| (v6_word(v6_hash(hi, lo, V6_EXACT_TAG)), lo))
        .collect();
    words.sort_unstable();
    let buckets = |lo: u64| v6_buckets(v6_hash(hi, lo, V6_EXACT_TAG), count);
    let addr = |lo: u64| Ipv6Addr::from((u128::from(hi) << 64) | u128::from(lo));
    let out: Vec<[Ipv6Addr; 2]> = words
        .windows(2)
        .filter(|w| w[0].0 == w[1].0)
        .filter(|w| buckets(w[0].1)[0] == buckets(w[1].1)[0])
        // Two buckets each (one bucket twice leaves a key of a clashing word no room at all:
        // in a table of thousands of buckets, one time in billions of billions).
        .filter(|w| w.iter().all(|(_, lo)| buckets(*lo)[0] != buckets(*lo)[1]))
        .map(|w| [addr(w[0].1), addr(w[1].1)])
        .take(pairs)
        .collect();
    assert_eq!(out.len(), pairs, "pairs of one word in one bucket");
    out
}

/// A bucket never holds one word twice (the kernel compares the key of the first slot of the
/// word in each bucket): keys of the same word and first bucket go to different buckets,
/// whether written at once (a fill) or after the other (a refresh), and every one is found;
/// deleted ones pass.
#[kernel_test]
fn keys_whose_hashes_share_a_word_and_a_bucket_are_all_found() {
    const CAPACITY: u32 = 64;
    let pairs = same_word_pairs(v4_bucket_count(CAPACITY), 8);
    let plan_of6 =
        |a: &[Ipv6Addr]| plan_of(a.iter().map(|a| IpNet::from(std::net::IpAddr::V6(*a))));
    let (first, second): (Vec<Ipv6Addr>, Vec<Ipv6Addr>) =
        pairs.iter().map(|p| (p[0], p[1])).unzip();
    let (half, second_half) = pairs.split_at(4);
    // The first four pairs written at once; then the other pairs' first keys, and a refresh
    // adds their second keys beside them.
    let at_once: Vec<Ipv6Addr> = half.iter().flatten().chain(&first[4..]).copied().collect();
    let plan = plan_of6(&at_once);
    let mut l = loaded(&plan, &sized(&plan, MAP_V6_EXACT, CAPACITY));
    let all: Vec<Ipv6Addr> = pairs.iter().flatten().copied().collect();
    let full = plan_of6(&all);
    sync::apply(&mut l.filter.maps_mut().addr, &plan, &full).unwrap();
    assert_eq!(wrong(&l, &all, XDP_DROP), Vec::<Ipv6Addr>::new(), "listed addresses passed");
    assert!(second_half.iter().all(|p| all.contains(&p[1])));
    // The first of each pair leaves: the second is still found, the first passes.
    let then = plan_of6(&second);
    sync::apply(&mut l.filter.maps_mut().addr, &full, &then).unwrap();
    assert_eq!(wrong(&l, &second, XDP_DROP), Vec::<Ipv6Addr>::new(), "kept addresses passed");
    assert_eq!(wrong(&l, &first, XDP_PASS), Vec::<Ipv6Addr>::new(), "deleted addresses dropped");
    assert_eq!(l.filter.maps().addr.v6.exact.entries().unwrap().len(), second.len());
}

/// A filter holds both IPv6 tables even when its lists hold no IPv6 entry: empty, they are
/// sized at the IPv6 minimum and take little kernel memory.
#[kernel_test]
fn empty_ipv6_tables_take_little_kernel_memory() {
    let caps = Capacities::for_plan(&Plan::default(), u32::MAX).unwrap();
    let l = loaded(&Plan::default(), &caps);
    let tables = ADDRESS_MAPS.iter().filter(|m| m.family == Family::V6 && m.kind != MapKind::Allow);
    for m in tables {
        let info = l.filter.maps().addr.info(m);
        assert_eq!(info.capacity().unwrap(), MIN_CAPACITY_V6, "{}", m.name);
        let bytes = info.memory().unwrap();
        assert!(bytes < 512 * 1024, "{} takes {bytes} bytes", m.name);
    }
}
