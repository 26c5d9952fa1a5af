//! The benchmark's lists, all made of the real feeds in ../shared/lists (synthetic lists flatter
//! the lookups), and the addresses its frames carry: listed ones, and ones no entry covers.

use std::{
    collections::HashSet,
    net::{IpAddr, Ipv4Addr},
    path::PathBuf,
};

use anyhow::{Context, Result};
use filter_common::FLAG_BOTH;
use ipnet::{IpNet, Ipv4Net};
use takedown::plan::guards;
use takedown::{
    lists::{self, ListOptions},
    plan::{Meta, Plan},
};

/// Every benchmark entry: both directions, list 0.
pub const ONE_LIST: Meta = Meta { flags: FLAG_BOTH, lists: 1 };
/// Exact addresses of the big list.
pub const BIG: usize = 1_240_000;

/// The networks of a shared feed, in file order.
pub fn feed(name: &str) -> Result<Vec<IpNet>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/lists").join(name);
    let list = lists::parse_file(&path, &ListOptions::default())
        .with_context(|| format!("the benchmark reads the real feeds: {}", path.display()))?;
    Ok(list.entries.iter().map(|e| e.net).collect())
}

fn v4_hosts(nets: &[IpNet]) -> impl Iterator<Item = IpNet> + '_ {
    nets.iter().filter(|n| n.prefix_len() == 32 && n.addr().is_ipv4()).copied()
}

/// "10k IPs": ipsum's first 9,990 addresses (xdp-filter's maps hold 10,000 entries in all).
pub fn ips_10k() -> Result<Vec<IpNet>> {
    Ok(v4_hosts(&feed("ipsum.txt")?).take(9_990).collect())
}

/// The first `n` distinct IPv4 addresses of ipsum and stopforumspam, then of every address of
/// spamhaus DROP's /19 to /24 networks in file order (1.66M in all).
pub fn ips(n: usize) -> Result<Vec<IpNet>> {
    let mut seen = HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    let real = [feed("ipsum.txt")?, feed("stopforumspam_180d.ipset")?].concat();
    let drop = feed("spamhaus-drop.txt")?;
    let expanded =
        drop.iter().filter(|n| (19..=24).contains(&n.prefix_len())).flat_map(|n| n.hosts());
    for a in v4_hosts(&real).chain(expanded.map(IpNet::from)) {
        if out.len() == n {
            break;
        }
        if seen.insert(a) {
            out.push(a);
        }
    }
    Ok(out)
}

/// The big list: [`BIG`] addresses of [`ips`].
pub fn ips_big() -> Result<Vec<IpNet>> {
    ips(BIG)
}

/// Every `nth` line's network of a feed.
fn every(nets: Vec<IpNet>, nth: usize) -> Vec<IpNet> {
    nets.into_iter().step_by(nth).collect()
}

/// IPv4 prefixes with misses: firehol level 1, spamhaus DROP, and every 5th country block.
pub fn cidrs_v4() -> Result<Vec<IpNet>> {
    let mut out = feed("firehol_level1.netset")?;
    out.extend(feed("spamhaus-drop.txt")?);
    out.extend(every(feed("country-blocks-v4.txt")?, 5));
    Ok(out.into_iter().filter(|n| n.prefix_len() < 32).collect())
}

/// Every IPv4 country block (nearly all allocated space), firehol and spamhaus: the worst case.
pub fn cidrs_v4_all() -> Result<Vec<IpNet>> {
    let mut out = feed("country-blocks-v4.txt")?;
    out.extend(feed("firehol_level1.netset")?);
    out.extend(feed("spamhaus-drop.txt")?);
    Ok(out)
}

/// IPv6 prefixes: spamhaus DROPv6 and every 5th IPv6 country block.
pub fn cidrs_v6() -> Result<Vec<IpNet>> {
    let mut out = feed("spamhaus-drop-v6.txt")?;
    out.extend(every(feed("country-blocks-v6.txt")?, 5));
    Ok(out)
}

/// A plan of `nets` (one list, both directions), with `allow` never dropped, held to the
/// guards as `takedown run --force-broad` holds a list: what lies in special ranges (private,
/// loopback, ...: firehol level 1 lists 10.0.0.0/8) is left out or split around them, so that
/// inside hosts stay unlisted.
pub fn plan(nets: &[IpNet], allow: &[IpNet]) -> Plan {
    let opts = guards::GuardOptions { force_broad: true, allow_special: false };
    let guarded = nets.iter().flat_map(|n| match guards::check(*n, opts) {
        guards::Verdict::Keep => vec![*n],
        guards::Verdict::Split(pieces, _) => pieces,
        _ => vec![],
    });
    Plan::build(guarded.map(|n| (n, ONE_LIST)), allow)
}

/// True when an entry of `plan` covers `addr` (binary searches in the sorted tables).
pub fn covered(plan: &Plan, addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => covers(&plan.v4, a.octets()),
        IpAddr::V6(a) => covers(&plan.v6, a.octets()),
    }
}

fn covers<const N: usize>(t: &takedown::plan::Tables<N>, a: [u8; N]) -> bool {
    if t.exact.binary_search_by_key(&a, |(k, _)| *k).is_ok() {
        return true;
    }
    (0..=(N * 8) as u8).any(|len| {
        let key = takedown::plan::prefix_key::<N>(&takedown::plan::net(&a, len).trunc());
        t.prefix.binary_search_by_key(&key, |(k, _)| *k).is_ok()
    })
}

/// An address that no entry covers, searched from `start` in steps that cross many /8s
/// (skipping special ranges); None after 100,000 steps.
pub fn uncovered(plan: &Plan, start: IpAddr) -> Option<IpAddr> {
    let special: Vec<IpNet> =
        takedown::plan::guards::SPECIAL.iter().filter_map(|s| s.parse().ok()).collect();
    let mut a = start;
    for _ in 0..100_000 {
        if !special.iter().any(|n| n.contains(&a)) && !covered(plan, a) {
            return Some(a);
        }
        a = step(a);
    }
    None
}

fn step(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V4(v) => IpAddr::V4(Ipv4Addr::from(u32::from(v).wrapping_add(0x0101_0301))),
        IpAddr::V6(v) => IpAddr::V6((u128::from(v).wrapping_add(0x0001_0003 << 96)).into()),
    }
}

/// An address right next to listed address `listed` (same /24) that no entry covers.
pub fn near(plan: &Plan, listed: Ipv4Addr) -> Option<IpAddr> {
    let net = Ipv4Net::new(listed, 24).expect("/24").trunc();
    net.hosts().map(IpAddr::V4).find(|a| !covered(plan, *a))
}

/// An address inside the `i`th prefix of `nets` (its network address + 1).
pub fn inside(nets: &[IpNet], i: usize) -> IpAddr {
    let n = nets.iter().filter(|n| n.prefix_len() < n.max_prefix_len()).nth(i).expect("a prefix");
    n.hosts().next().expect("a host")
}

/// `n` IPv4 addresses of `listed`, spread evenly over it.
pub fn spread(listed: &[IpNet], n: usize) -> Vec<Ipv4Addr> {
    v4_addrs(listed).step_by((listed.len() / n).max(1)).take(n).collect()
}

/// `n` distinct IPv4 addresses that no entry of `plan` covers, each the one after an address
/// of `listed`, spread over it: misses whose /24 holds an entry (the prefilter lets them
/// through to the lookups).
pub fn unlisted_next_to(plan: &Plan, listed: &[IpNet], n: usize) -> Vec<Ipv4Addr> {
    let mut seen = HashSet::with_capacity(n);
    let spread = spread(listed, n);
    let next = spread
        .into_iter()
        .chain(v4_addrs(listed))
        .map(|a| Ipv4Addr::from(u32::from(a).wrapping_add(1)));
    next.filter(|a| !covered(plan, IpAddr::V4(*a)) && seen.insert(*a)).take(n).collect()
}

/// `n` distinct IPv4 addresses drawn at random (a fixed seed) from everything that no entry of
/// `plan` covers and that is not a special range: misses anywhere.
pub fn unlisted_anywhere(plan: &Plan, n: usize) -> Vec<Ipv4Addr> {
    let special: Vec<IpNet> =
        takedown::plan::guards::SPECIAL.iter().filter_map(|s| s.parse().ok()).collect();
    let mut rng = fastrand::Rng::with_seed(9);
    let mut seen = HashSet::with_capacity(n);
    std::iter::repeat_with(|| IpAddr::V4(Ipv4Addr::from(rng.u32(..))))
        .filter(|a| !special.iter().any(|s| s.contains(a)) && !covered(plan, *a))
        .filter_map(|a| match a {
            IpAddr::V4(v) if seen.insert(v) => Some(v),
            _ => None,
        })
        .take(n)
        .collect()
}

/// The IPv4 addresses of `nets`, in order.
fn v4_addrs(nets: &[IpNet]) -> impl Iterator<Item = Ipv4Addr> + '_ {
    nets.iter().filter_map(|n| match n.addr() {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(_) => None,
    })
}
