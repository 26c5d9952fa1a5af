//! Misses over a distribution of address pairs: at least 52 unlisted remote addresses of four
//! kinds (popular services, random ones, the next address after a listed one, an address in a
//! /16 that holds a listed network) times 8 inside hosts, each pair as source and as
//! destination; the mean and 95th percentile ns a packet, on one CPU and on every CPU at once,
//! for takedown on every list mix and for xdp-filter on the same frames. One lucky or unlucky
//! pair decides nothing here.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyhow::Result;
use ipnet::IpNet;
use takedown::plan::Plan;

use crate::{cpus, frame, real, testrun::Case};

/// Packets a frame runs in a sample, and samples a frame gets (the median wins).
const REPEAT: u32 = 20_000;
const ROUNDS: usize = 3;

/// Remote addresses of each kind.
const EACH: usize = 13;

/// Inside hosts: private addresses of every range.
const INSIDE_V4: [&str; 8] = [
    "10.0.0.5",
    "10.77.0.2",
    "10.200.3.4",
    "172.16.1.10",
    "172.20.5.5",
    "192.168.1.10",
    "192.168.0.100",
    "192.168.77.3",
];
const INSIDE_V6: [&str; 8] = [
    "fd00::5",
    "fd00:77::2",
    "fd12:3456::10",
    "fdab::1:2",
    "fd00:1::100",
    "fd99::7",
    "fdcc:1::3",
    "fd00:ffff::9",
];

/// Well-known public resolvers and content networks.
const POPULAR_V4: [&str; EACH] = [
    "8.8.8.8",
    "8.8.4.4",
    "1.1.1.1",
    "1.0.0.1",
    "9.9.9.9",
    "208.67.222.222",
    "142.250.74.46",
    "151.101.1.140",
    "104.16.132.229",
    "13.107.42.14",
    "17.253.144.10",
    "31.13.72.36",
    "52.94.236.248",
];
const POPULAR_V6: [&str; EACH] = [
    "2001:4860:4860::8888",
    "2001:4860:4860::8844",
    "2606:4700:4700::1111",
    "2606:4700:4700::1001",
    "2620:fe::fe",
    "2620:119:35::35",
    "2a00:1450:4001:80b::200e",
    "2a04:4e42::485",
    "2606:4700::6810:84e5",
    "2620:1ec:21::14",
    "2a03:2880:f12f:83:face:b00c:0:25de",
    "2600:1f18:631e:2f00::1",
    "2001:67c:4e8:f004::9",
];

/// The unlisted remote addresses of `plan`, whose entries are `listed`.
pub fn remotes(plan: &Plan, listed: &[IpNet], v4: bool) -> Vec<IpAddr> {
    let uncovered = |a: &IpAddr| !real::covered(plan, *a);
    let popular = if v4 { &POPULAR_V4[..] } else { &POPULAR_V6[..] };
    let mut out: Vec<IpAddr> =
        popular.iter().map(|a| a.parse().unwrap()).filter(uncovered).collect();
    if v4 {
        out.extend(real::unlisted_anywhere(plan, EACH).into_iter().map(IpAddr::V4));
        out.extend(real::unlisted_next_to(plan, listed, EACH).into_iter().map(IpAddr::V4));
    } else {
        let mut rng = fastrand::Rng::with_seed(3);
        let random = std::iter::repeat_with(|| {
            IpAddr::V6(Ipv6Addr::from(0x2000u128 << 112 | rng.u128(..) >> 4))
        });
        out.extend(random.filter(uncovered).take(EACH));
        let after = listed.iter().map(next_after).filter(uncovered);
        out.extend(spread(after.collect(), EACH));
    }
    out.extend(spread(in_a_listed_16(plan, listed), EACH));
    out
}

/// The address after the end of network `n`.
fn next_after(n: &IpNet) -> IpAddr {
    match n {
        IpNet::V4(n) => IpAddr::V4(Ipv4Addr::from(u32::from(n.broadcast()).wrapping_add(1))),
        IpNet::V6(n) => IpAddr::V6(Ipv6Addr::from(u128::from(n.broadcast()).wrapping_add(1))),
    }
}

/// Unlisted addresses in the /16 (IPv6: the /32) of listed networks, one a network.
fn in_a_listed_16(plan: &Plan, listed: &[IpNet]) -> Vec<IpAddr> {
    let step = (listed.len() / (EACH * 4)).max(1);
    let candidates = listed.iter().step_by(step).filter_map(|n| {
        let wide = match n {
            IpNet::V4(n) => IpNet::V4(ipnet::Ipv4Net::new(n.addr(), 16).ok()?.trunc()),
            IpNet::V6(n) => IpNet::V6(ipnet::Ipv6Net::new(n.addr(), 32).ok()?.trunc()),
        };
        let base = wide.network();
        (1..64u32).map(|k| offset(base, k * 1031)).find(|a| !real::covered(plan, *a))
    });
    candidates.collect()
}

fn offset(a: IpAddr, by: u32) -> IpAddr {
    match a {
        IpAddr::V4(v) => IpAddr::V4(Ipv4Addr::from(u32::from(v).wrapping_add(by))),
        IpAddr::V6(v) => {
            IpAddr::V6(Ipv6Addr::from(u128::from(v).wrapping_add(u128::from(by) << 64)))
        }
    }
}

/// `n` of `all`, spread evenly.
fn spread(all: Vec<IpAddr>, n: usize) -> Vec<IpAddr> {
    let step = (all.len() / n.max(1)).max(1);
    all.into_iter().step_by(step).take(n).collect()
}

/// Every frame between an inside host and a remote address, both ways.
pub fn frames(remotes: &[IpAddr], v4: bool) -> Vec<Vec<u8>> {
    let inside = if v4 { &INSIDE_V4[..] } else { &INSIDE_V6[..] };
    let inside: Vec<IpAddr> = inside.iter().map(|a| a.parse().unwrap()).collect();
    let pairs = inside.iter().flat_map(|i| remotes.iter().map(move |r| (*i, *r)));
    pairs.flat_map(|(i, r)| [frame(i, r), frame(r, i)]).collect()
}

/// (mean, 95th percentile) ns a packet of `prog` over `frames`, on one CPU and on every CPU at
/// once.
pub fn measure(prog: std::os::fd::BorrowedFd<'_>, frames: &[Vec<u8>]) -> Result<Spread> {
    for f in frames {
        let (verdict, _) = crate::testrun::run(prog, f, 1)?;
        anyhow::ensure!(verdict == crate::PASS, "a miss frame was dropped: {}", show(f));
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let every: Vec<usize> = (0..cpus).collect();
    let (mut one, mut all) = (Vec::new(), Vec::new());
    for f in frames {
        let case = Case { prog, frame: f.clone(), verdict: crate::PASS };
        let mut o = Vec::with_capacity(ROUNDS);
        let mut a = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            o.push(cpus::on(&[cpus - 1], &case, REPEAT)?);
            a.push(cpus::on(&every, &case, REPEAT)?);
        }
        one.push(crate::median(&mut o));
        all.push(crate::median(&mut a));
    }
    if std::env::var_os("TAKEDOWN_BENCH_SLOWEST").is_some() {
        slowest(frames, &one);
    }
    Ok([stats(one), stats(all)])
}

/// Prints (stderr) the slowest tenth of `frames` by `ns` on one CPU, to see what a tail is
/// made of (`TAKEDOWN_BENCH_SLOWEST=1`).
fn slowest(frames: &[Vec<u8>], ns: &[f64]) {
    let mut order: Vec<usize> = (0..frames.len()).collect();
    order.sort_by(|a, b| ns[*b].total_cmp(&ns[*a]));
    for i in order.into_iter().take(frames.len().div_ceil(10)) {
        eprintln!("{:.1} ns: {}", ns[i], show(&frames[i]));
    }
}

/// A frame's addresses, for a message.
fn show(f: &[u8]) -> String {
    let (src, dst): (IpAddr, IpAddr) = if f[12..14] == [0x08, 0x00] {
        let a = |o: usize| IpAddr::from([f[o], f[o + 1], f[o + 2], f[o + 3]]);
        (a(26), a(30))
    } else {
        let a = |o: usize| IpAddr::from(<[u8; 16]>::try_from(&f[o..o + 16]).unwrap());
        (a(22), a(38))
    };
    format!("{src} -> {dst}")
}

/// The mean and the 95th percentile of `ns`.
fn stats(mut ns: Vec<f64>) -> (f64, f64) {
    ns.sort_by(f64::total_cmp);
    let mean = ns.iter().sum::<f64>() / ns.len() as f64;
    (mean, ns[(ns.len() * 95).div_ceil(100).min(ns.len()) - 1])
}

/// (mean, 95th percentile) on one CPU, then on every CPU at once.
pub type Spread = [(f64, f64); 2];

/// A list mix's row: its name, how many frames, takedown's spread, and a peer's (by name).
pub type Row<'a> = (String, usize, Spread, Option<(&'a str, Spread)>);

/// Prints the table: for each list mix, takedown's and xdp-filter's mean and 95th percentile
/// over the mix's frames, on one CPU and on every CPU at once, and their ratios.
pub fn report(rows: &[Row<'_>]) {
    println!(
        "\n## Misses over many address pairs\n\nFor each list mix: {} inside hosts (private addresses of every range) times at least {} unlisted remote addresses ({} each: popular services, random addresses, the address after a listed one, an address in a /16 that holds a listed network), each pair as source and as destination; BPF_PROG_TEST_RUN, the median of {ROUNDS} samples of {REPEAT} packets a frame; the mean and 95th percentile of the frames, ns a packet. xdp-filter runs the same frames (`-f ipv4` for IPv4, its default for IPv6).\n",
        INSIDE_V4.len(),
        EACH * 4,
        EACH
    );
    println!(
        "| list mix | frames | CPUs | takedown mean | p95 | xdp-filter mean | p95 | mean ratio | p95 ratio |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (name, frames, ours, peer) in rows {
        for (i, cpus) in ["one", "every"].iter().enumerate() {
            let (m, p) = ours[i];
            let (pm, pp, rm, rp) = match peer {
                Some((_, theirs)) => {
                    let (pm, pp) = theirs[i];
                    (
                        format!("{pm:.1}"),
                        format!("{pp:.1}"),
                        format!("{:.2}x", m / pm),
                        format!("{:.2}x", p / pp),
                    )
                }
                None => Default::default(),
            };
            println!(
                "| {name} | {frames} | {cpus} | {m:.1} | {p:.1} | {pm} | {pp} | {rm} | {rp} |"
            );
        }
    }
}
