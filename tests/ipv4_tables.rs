//! The IPv4 tables (buckets and values written through mmap) against the real program: the
//! exact table and the prefix table, each filled to its capacity with real addresses or
//! prefixes, drop every one and pass their neighbours; one more is refused; deleted entries
//! pass and their values serve new entries, while kept entries keep their hit counters.

use std::{collections::HashSet, net::Ipv4Addr, path::PathBuf};

use filter_common::{
    CFG_FLAGS, EntryValue, FLAG_BOTH, MAP_V4_EXACT, MAP_V4_PREFIX, v4_exacts_words,
    v4_exacts_words_in,
};
use integration_tests::{
    frames, kernel_test,
    loaded::{Loaded, XDP_DROP, XDP_PASS, sized},
};
use ipnet::IpNet;
use takedown::{
    lists::{self, ListOptions},
    maps::{
        WriteMode,
        filter::{Capacities, Filter},
        sync,
    },
    plan::{Meta, Plan},
};
use test_case::test_case;

const INSIDE: [u8; 4] = [198, 51, 100, 42];
const META: Meta = Meta { flags: FLAG_BOTH, lists: 1 };

/// The first `n` distinct IPv4 addresses of ipsum and stopforumspam (real feeds).
fn real_addresses(n: usize) -> Vec<[u8; 4]> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/lists");
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for name in ["ipsum.txt", "stopforumspam_180d.ipset"] {
        let list = lists::parse_file(&dir.join(name), &ListOptions::default()).unwrap();
        for e in &list.entries {
            if let IpNet::V4(net) = e.net
                && net.prefix_len() == 32
                && out.len() < n
                && seen.insert(net.addr())
            {
                out.push(net.addr().octets());
            }
        }
    }
    assert_eq!(out.len(), n, "the feeds hold {n} addresses");
    out
}

fn plan_of(addrs: &[[u8; 4]]) -> Plan {
    Plan::build(addrs.iter().map(|a| (IpNet::from(std::net::IpAddr::from(*a)), META)), &[])
}

/// Capacities of exactly `n` exact IPv4 entries.
fn exactly(plan: &Plan, n: u32) -> Capacities {
    sized(plan, MAP_V4_EXACT, n)
}

fn verdict(l: &Loaded, a: [u8; 4]) -> u32 {
    l.verdict(&frames::v4(a, INSIDE))
}

/// The addresses of `addrs` whose verdict is not `want`.
fn wrong(l: &Loaded, addrs: &[[u8; 4]], want: u32) -> Vec<Ipv4Addr> {
    addrs.iter().filter(|a| verdict(l, **a) != want).map(|a| Ipv4Addr::from(*a)).collect()
}

#[kernel_test]
fn a_table_filled_to_capacity_drops_every_address_and_refuses_one_more() {
    const N: usize = 100_000;
    let addrs = real_addresses(N + 1);
    let plan = plan_of(&addrs[..N]);
    let mut filter = Filter::load(&exactly(&plan, N as u32)).unwrap();
    sync::fill(&mut filter.maps_mut().addr, &plan).unwrap();
    // The exact-address filter is sized by the table, and the flags tell the kernel its size.
    let addr = &filter.maps_mut().addr;
    let words = addr.v4.exacts.capacity().unwrap();
    assert_eq!(words, v4_exacts_words(N as u32));
    assert_eq!(v4_exacts_words_in(addr.settings.get(CFG_FLAGS).unwrap()), words);
    let mut l = Loaded { filter };
    let listed: HashSet<[u8; 4]> = addrs[..N].iter().copied().collect();
    let missed = wrong(&l, &addrs[..N], XDP_DROP);
    assert!(missed.is_empty(), "{} listed addresses passed: {:?}", missed.len(), &missed[..5]);
    let next = |a: &[u8; 4]| (u32::from_be_bytes(*a).wrapping_add(1)).to_be_bytes();
    let unlisted: Vec<[u8; 4]> = addrs.iter().map(next).filter(|a| !listed.contains(a)).collect();
    let dropped = wrong(&l, &unlisted, XDP_PASS);
    assert!(dropped.is_empty(), "{} unlisted addresses dropped: {:?}", dropped.len(), dropped);
    let exact = &mut l.filter.maps_mut().addr.v4.exact;
    assert_eq!(exact.entries().unwrap().len(), N);
    let value = EntryValue::new(META.flags, META.lists);
    let err = exact.put(&[(addrs[N], value)], WriteMode::Batched).unwrap_err();
    assert!(format!("{err:#}").contains("the TD_V4_EXACT map is full"), "{err:#}");
    assert_eq!(verdict(&l, addrs[N]), XDP_PASS, "a refused entry is not half written");
}

/// Runs of addresses (a range expanded, one host a /24) hash into structured bucket patterns:
/// the placement must still fill the table to its capacity (preferring the first bucket while
/// it had three empty slots refused a write of consecutive addresses below capacity).
#[kernel_test]
#[test_case(1 ; "consecutive addresses")]
#[test_case(256 ; "one address a slash 24")]
fn runs_of_addresses_fill_a_table_to_its_capacity(stride: u32) {
    const N: u32 = 50_000;
    let base = u32::from_be_bytes([30, 0, 0, 0]);
    let addrs: Vec<[u8; 4]> = (0..N).map(|i| (base + i * stride).to_be_bytes()).collect();
    let plan = plan_of(&addrs);
    assert_eq!(plan.v4.exact.len(), N as usize, "every address an exact entry");
    let mut filter = Filter::load(&exactly(&plan, N)).unwrap();
    sync::fill(&mut filter.maps_mut().addr, &plan).unwrap();
    let l = Loaded { filter };
    let missed = wrong(&l, &addrs, XDP_DROP);
    assert!(missed.is_empty(), "{} listed addresses passed: {:?}", missed.len(), &missed[..5]);
}

#[kernel_test]
fn deleted_entries_pass_and_their_values_serve_new_entries_while_kept_ones_keep_their_hits() {
    let addrs = real_addresses(2_000);
    let (first, kept, later) = (&addrs[..500], &addrs[500..1_000], &addrs[1_000..1_500]);
    let last = &addrs[1_500..];
    let plan = plan_of(&addrs[..1_000]);
    // Room for 1,500: the third plan's new entries need the values the second one freed.
    let mut l = Loaded { filter: Filter::load(&exactly(&plan, 1_500)).unwrap() };
    sync::fill(&mut l.filter.maps_mut().addr, &plan).unwrap();
    // One hit each: the values `first` frees carry hits, which their next entries must not.
    assert!(wrong(&l, &addrs[..1_000], XDP_DROP).is_empty());
    let second = plan_of(&[kept, later].concat());
    sync::apply(&mut l.filter.maps_mut().addr, &plan, &second).unwrap();
    let third = plan_of(&[kept, last].concat());
    sync::apply(&mut l.filter.maps_mut().addr, &second, &third).unwrap();
    assert!(wrong(&l, kept, XDP_DROP).is_empty() && wrong(&l, last, XDP_DROP).is_empty());
    let gone = [first, later].concat();
    assert_eq!(wrong(&l, &gone, XDP_PASS), Vec::<Ipv4Addr>::new(), "deleted entries pass");
    // Every kept entry was hit twice (once before the moves, once after), every new one once.
    let hits = l.filter.maps().hits().unwrap();
    let packets = |a: &[u8; 4]| {
        let net = IpNet::from(std::net::IpAddr::from(*a));
        hits.iter().find(|h| h.net == net).map(|h| h.packets)
    };
    assert!(kept.iter().all(|a| packets(a) == Some(2)), "kept entries keep their hits");
    assert!(last.iter().all(|a| packets(a) == Some(1)), "new entries start from no hits");
    assert!(first.iter().chain(later).all(|a| packets(a).is_none()));
    assert_eq!(hits.len(), 1_000);
}

/// `n` IPv4 prefixes of the country blocks (real RIR allocations, /8 to /31) that a plan
/// cannot merge (those of the plan of them all), of every length.
fn real_prefixes(n: usize) -> Vec<ipnet::Ipv4Net> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/lists");
    let list = lists::parse_file(&dir.join("country-blocks-v4.txt"), &ListOptions::default());
    let plan = Plan::build(list.unwrap().entries.into_iter().map(|e| (e.net, META)), &[]);
    // Spread over the plan's order (by length, then address): every length is in.
    let step = (plan.v4.prefix.len() / n).max(1);
    let nets = plan.v4.prefix.iter().map(|((len, a), _)| ipnet::Ipv4Net::new((*a).into(), *len));
    let out: Vec<_> = nets.step_by(step).take(n).map(Result::unwrap).collect();
    assert_eq!(out.len(), n, "the country blocks hold {n} prefixes");
    out
}

/// True when a prefix of `set` holds `a`.
fn covered(set: &HashSet<ipnet::Ipv4Net>, a: Ipv4Addr) -> bool {
    (0..=32).any(|len| set.contains(&ipnet::Ipv4Net::new(a, len).unwrap().trunc()))
}

#[kernel_test]
fn a_prefix_table_filled_to_capacity_drops_inside_every_prefix_and_refuses_one_more() {
    const N: usize = 9_000;
    let nets = real_prefixes(N + 1);
    let (held, extra) = (&nets[..N], nets[N]);
    assert!(held.iter().any(|n| n.prefix_len() >= 24), "long prefixes are in");
    let plan = Plan::build(held.iter().map(|n| (IpNet::V4(*n), META)), &[]);
    assert_eq!(plan.v4.prefix.len(), N, "the plan keeps every prefix");
    let mut filter = Filter::load(&sized(&plan, MAP_V4_PREFIX, N as u32)).unwrap();
    sync::fill(&mut filter.maps_mut().addr, &plan).unwrap();
    let mut l = Loaded { filter };
    // Each prefix's first and last address drop; the addresses just outside it pass unless
    // another listed prefix holds them.
    let inside: Vec<[u8; 4]> =
        held.iter().flat_map(|n| [n.network(), n.broadcast()]).map(|a| a.octets()).collect();
    let missed = wrong(&l, &inside, XDP_DROP);
    assert!(missed.is_empty(), "{} listed addresses passed: {:?}", missed.len(), &missed[..5]);
    let set: HashSet<_> = held.iter().copied().collect();
    let step = |a: Ipv4Addr, d: i64| Ipv4Addr::from((u32::from(a) as i64 + d) as u32);
    let outside: Vec<[u8; 4]> = held
        .iter()
        .flat_map(|n| [step(n.network(), -1), step(n.broadcast(), 1)])
        .filter(|a| !covered(&set, *a))
        .map(|a| a.octets())
        .collect();
    assert!(outside.len() > N / 4, "too few neighbours to check: {}", outside.len());
    let dropped = wrong(&l, &outside, XDP_PASS);
    assert!(dropped.is_empty(), "{} unlisted addresses dropped: {:?}", dropped.len(), dropped);
    let prefix = &mut l.filter.maps_mut().addr.v4.prefix;
    assert_eq!(prefix.entries().unwrap().len(), N);
    let key = (extra.prefix_len(), extra.network().octets());
    let err = prefix.put(&[(key, EntryValue::new(META.flags, META.lists))], WriteMode::Batched);
    let err = format!("{:#}", err.unwrap_err());
    assert!(err.contains("the TD_V4_PREFIX map is full"), "{err}");
    if !covered(&set, extra.network()) {
        assert_eq!(
            verdict(&l, extra.network().octets()),
            XDP_PASS,
            "a refused entry is not half written"
        );
    }
}
