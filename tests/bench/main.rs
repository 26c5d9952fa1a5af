//! `cargo xtask bench [--peers]`: takedown's per-packet cost (BPF_PROG_TEST_RUN), load and
//! refresh times on real lists, and, with `--peers`, the same figures for xdp-filter, `ipset`
//! and `nft` measured in the same run, printed as ratios. Asserts nothing about speed.

mod cpus;
mod dispatcher;
mod flood;
mod flood_tables;
mod journal;
mod load;
mod misses;
mod peers;
mod programs;
mod real;
mod sys;
mod testrun;

use std::{net::IpAddr, os::fd::AsFd};

use anyhow::{Result, bail};
use integration_tests::{TempDir, frames};
use ipnet::IpNet;
use programs::Work;
use takedown::{
    maps::filter::{Capacities, Filter},
    maps::sync,
    plan::Plan,
};
use testrun::Case;

const DROP: u32 = 1;
const PASS: u32 = 2;

/// One takedown configuration and the frames measured on it.
struct Scenario {
    name: String,
    filter: Filter,
    /// Its plan and the networks it was made of (for misses that no entry covers).
    plan: Plan,
    listed: Vec<IpNet>,
    v4: bool,
    /// (column, frame, expected verdict).
    frames: Vec<(&'static str, Vec<u8>, u32)>,
}

fn main() -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the benchmark loads XDP into the kernel: run it as root");
    }
    let peers = std::env::args().any(|a| a == "--peers");
    println!("# takedown benchmark\n\n{}\n", machine());
    // `--journal`: the connection journal's section alone (with `--per-packet`: its
    // per-packet tables alone).
    if std::env::args().any(|a| a == "--journal") {
        return journal::run(!std::env::args().any(|a| a == "--per-packet"));
    }
    // `--floods`: the flood tables alone.
    if std::env::args().any(|a| a == "--floods") {
        return flood_tables::run(peers);
    }
    per_packet(peers)?;
    // `--per-packet`: that section alone (the floods and loads take minutes).
    if !std::env::args().any(|a| a == "--per-packet") {
        // The floods need BPF_PROG_TEST_RUN's live frames, which a kernel can refuse (6.18
        // here once, EPERM): the loads and the journal are measured all the same.
        if let Err(e) = flood_tables::run(peers) {
            println!("\n**The floods could not be measured in this run**: {e:#}\n");
        }
        load::run(peers)?;
        journal::run(true)?;
    }
    Ok(())
}

/// The median of `samples` (sorted in place).
pub fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// The kernel and CPU this run measured.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpu.lines().find_map(|l| l.strip_prefix("model name")?.split_once(':'));
    let model = model.map_or("?", |(_, m)| m.trim());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("Machine: {model}, {cores} cores, kernel {}", kernel.trim())
}

fn frame(src: IpAddr, dst: IpAddr) -> Vec<u8> {
    frames::ip(&src.to_string(), &dst.to_string())
}

/// A filter loaded with `plan` (not attached), with events at the daemon's rate, and with
/// the connection journal on, as asked.
fn loaded(plan: &Plan, events: bool, journal: bool) -> Result<Filter> {
    loaded_built(None, plan, events, journal)
}

/// [`loaded`], of `object` (another build of the program) when given.
fn loaded_built(object: Option<&[u8]>, plan: &Plan, events: bool, journal: bool) -> Result<Filter> {
    let caps = Capacities::for_plan(plan, u32::MAX)?.with_journal(journal);
    let mut filter = match object {
        Some(o) => Filter::load_built(o, &caps)?,
        None => Filter::load(&caps)?,
    };
    sync::fill(&mut filter.maps_mut().addr, plan)?;
    if events {
        filter.maps_mut().set_event_rate(100, 200)?; // the daemon's defaults
    }
    filter.maps_mut().set_journal(journal)?;
    Ok(filter)
}

/// A scenario on `nets`: hits on the given listed addresses, a miss (an address far from any
/// entry), and a miss next to the first listed address (its /24 holds an entry).
fn scenario(
    name: &str,
    nets: &[IpNet],
    hits: &[(&'static str, IpAddr)],
    allow: &[IpNet],
    events: bool,
) -> Result<Option<Scenario>> {
    if !chosen(name) {
        return Ok(None);
    }
    let plan = real::plan(nets, allow);
    let v4 = hits[0].1.is_ipv4();
    let start: IpAddr = if v4 { "11.7.3.9".parse()? } else { "2a0f:7::9".parse()? };
    let inside = real::uncovered(&plan, start).ok_or_else(|| anyhow::anyhow!("no free address"))?;
    let mut frames: Vec<_> = hits.iter().map(|(col, a)| (*col, frame(inside, *a), DROP)).collect();
    let far = real::uncovered(&plan, step_far(start));
    if let Some(far) = far {
        frames.push(("miss", frame(inside, far), PASS));
    }
    if let IpAddr::V4(a) = hits[0].1
        && let Some(near) = real::near(&plan, a)
    {
        frames.push(("miss next to an entry", frame(inside, near), PASS));
    }
    let filter = loaded(&plan, events, false)?;
    Ok(Some(Scenario { name: name.into(), filter, plan, listed: nets.to_vec(), v4, frames }))
}

/// True unless `--only TEXT` was given and `name` does not hold TEXT.
fn chosen(name: &str) -> bool {
    let args: Vec<String> = std::env::args().collect();
    let only = args.iter().position(|a| a == "--only").and_then(|i| args.get(i + 1));
    only.is_none_or(|text| name.contains(text.as_str()))
}

fn step_far(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V4(v) => IpAddr::V4((u32::from(v) ^ 0x5a00_0000).into()),
        IpAddr::V6(v) => IpAddr::V6((u128::from(v) ^ (0x0a5a << 112)).into()),
    }
}

fn scenarios() -> Result<Vec<Scenario>> {
    let ips = real::ips_10k()?;
    let big = real::ips_big()?;
    let cidrs = real::cidrs_v4()?;
    let all = real::cidrs_v4_all()?;
    let v6 = real::cidrs_v6()?;
    let exact = |nets: &[IpNet]| nets[nets.len() / 10].addr();
    let with = |a: &[IpNet], b: &[IpNet]| [a, b].concat();
    let allow: Vec<IpNet> = (1001..=2000).map(|i| IpNet::from(real::inside(&cidrs, i))).collect();
    let mixed = with(&ips, &cidrs);
    let all_mixes = [
        scenario("takedown, 10k IPs (ipsum)", &ips, &[("hit", exact(&ips))], &[], false)?,
        scenario(
            &format!("takedown, {} IPs", big.len()),
            &big,
            &[("hit", exact(&big))],
            &[],
            false,
        )?,
        scenario(
            &format!("takedown, 10k IPs + {} real CIDRs", cidrs.len()),
            &mixed,
            &[("hit", exact(&ips)), ("prefix hit", real::inside(&cidrs, 7))],
            &[],
            false,
        )?,
        scenario(
            "takedown, every feature: the same + 1k allowlist + events at 100/s",
            &mixed,
            &[("hit", exact(&ips)), ("prefix hit", real::inside(&cidrs, 7))],
            &allow,
            true,
        )?,
        scenario(
            &format!("takedown, 10k IPs + {} CIDRs (all country blocks)", all.len()),
            &with(&ips, &all),
            &[("hit", exact(&ips)), ("prefix hit", real::inside(&all, 7))],
            &[],
            false,
        )?,
        scenario(
            &format!("takedown, IPv6: {} real CIDRs", v6.len()),
            &v6,
            &[("prefix hit", real::inside(&v6, 7))],
            &[],
            false,
        )?,
    ];
    Ok(all_mixes.into_iter().flatten().collect())
}

fn per_packet(peers: bool) -> Result<()> {
    let dir = TempDir::new("bench");
    let scenarios = scenarios()?;
    let mut base = Filter::load(&Capacities::for_plan(&Plan::default(), u32::MAX)?)?;
    let base_prog = base.baseline()?.fd()?.as_fd().try_clone_to_owned()?;
    let v4 = |a: &str| -> IpAddr { a.parse().expect("address") };
    let (inside, listed, other) = (v4("11.7.3.9"), v4("203.0.113.7"), v4("198.51.100.7"));
    let ips: Vec<IpAddr> = real::ips_10k()?.iter().map(IpNet::addr).collect();
    let bed = if peers { Some((peers::Bed::new()?, peers::Bed::new()?)) } else { None };
    let xdp = match &bed {
        Some((all, ip4)) => {
            let listed_ips = [ips.clone(), vec![listed]].concat();
            Some((
                peers::xdp_filter(all, None, &listed_ips, &dir.0)?,
                peers::xdp_filter(ip4, Some("ipv4"), &listed_ips, &dir.0)?,
            ))
        }
        None => None,
    };
    let (count, lines) = (programs::COUNT, programs::LINES);
    let counts = programs::floor(PASS as i32, Work::ReadsAndCounts(count))?;
    let loads = programs::floor(PASS as i32, Work::ReadsCountsAndLoads(lines))?;
    let mut cases = vec![
        Case { prog: base_prog.as_fd(), frame: frame(inside, other), verdict: PASS },
        Case { prog: counts.as_fd(), frame: frame(inside, other), verdict: PASS },
        Case { prog: loads.as_fd(), frame: frame(inside, other), verdict: PASS },
    ];
    let counting = format!("reads the source, counts to {count}, XDP_PASS");
    let loading = format!("reads the source, counts to {count}, loads {lines} lines, XDP_PASS");
    let mut rows: Vec<(String, &'static str)> =
        vec![("bare XDP_PASS".into(), "any"), (counting, "any"), (loading, "any")];
    if let Some((all, ip4)) = &xdp {
        for (name, fd) in [("xdp-filter, 10k IPs", all), ("xdp-filter -f ipv4, 10k IPs", ip4)] {
            cases.push(Case { prog: fd.as_fd(), frame: frame(inside, listed), verdict: DROP });
            cases.push(Case { prog: fd.as_fd(), frame: frame(inside, other), verdict: PASS });
            rows.extend([(name.to_string(), "hit"), (name.to_string(), "miss")]);
        }
    }
    for s in &scenarios {
        let prog = s.filter.program().fd()?.as_fd();
        for (col, f, verdict) in &s.frames {
            cases.push(Case { prog, frame: f.clone(), verdict: *verdict });
            rows.push((s.name.clone(), col));
        }
    }
    let ns = testrun::measure(&cases)?;
    report(&rows, &ns, xdp.is_some());
    // Every CPU at once: the cases that hit or miss in a filter (not the floors).
    let filters = rows.iter().position(|(_, col)| *col != "any").unwrap_or(rows.len());
    let at_once = cpus::measure(&cases[filters..])?;
    cpus::report(&rows[filters..], &at_once);
    let peers = xdp.as_ref().map(|(all, ip4)| (all.as_fd(), ip4.as_fd()));
    distributions(&scenarios, peers)
}

/// Misses over many address pairs, for every list mix, beside xdp-filter on the same frames.
fn distributions(
    scenarios: &[Scenario],
    peers: Option<(std::os::fd::BorrowedFd<'_>, std::os::fd::BorrowedFd<'_>)>,
) -> Result<()> {
    let mut rows = Vec::new();
    for s in scenarios {
        let remotes = misses::remotes(&s.plan, &s.listed, s.v4);
        let frames = misses::frames(&remotes, s.v4);
        let ours = misses::measure(s.filter.program().fd()?.as_fd(), &frames)?;
        let peer = match peers {
            Some((_, ip4)) if s.v4 => Some(("xdp-filter -f ipv4", misses::measure(ip4, &frames)?)),
            Some((all, _)) => Some(("xdp-filter", misses::measure(all, &frames)?)),
            None => None,
        };
        rows.push((s.name.clone(), frames.len(), ours, peer));
    }
    misses::report(&rows);
    Ok(())
}

/// Prints each measured case, with its ratio to xdp-filter's when the peers ran.
fn report(rows: &[(String, &str)], ns: &[f64], peers: bool) {
    println!(
        "## Per packet\n\nBPF_PROG_TEST_RUN, 64-byte UDP frames, ns a packet: the median of {} rounds of {} packets, every case once a round (interleaved).\n",
        testrun::ROUNDS,
        testrun::REPEAT
    );
    let find = |name: &str, col: &str| {
        rows.iter().zip(ns).find(|((n, c), _)| n == name && *c == col).map(|(_, v)| *v)
    };
    let (all_hit, ip4_miss) =
        (find("xdp-filter, 10k IPs", "hit"), find("xdp-filter -f ipv4, 10k IPs", "miss"));
    println!("| program and lists | frame | ns | / xdp-filter hit | / xdp-filter -f ipv4 miss |");
    println!("|---|---|---|---|---|");
    for ((name, col), v) in rows.iter().zip(ns) {
        let ratio = |peer: Option<f64>| peer.map_or("".into(), |p| format!("{:.2}x", v / p));
        let (hit, miss) = if col.contains("hit") {
            (ratio(all_hit), String::new())
        } else {
            (String::new(), ratio(ip4_miss))
        };
        println!("| {name} | {col} | {v:.1} | {hit} | {miss} |");
    }
    if !peers {
        println!(
            "\n(xdp-filter not measured: `cargo xtask bench --peers` runs it in the same run.)"
        );
    }
    println!(
        "\nLists: \"10k IPs\": ipsum's first 9,990 addresses (xdp-filter's maps hold 10,000); the \
         big list: ipsum and stopforumspam, then the addresses of spamhaus DROP's /19 to /24 \
         networks; \"real CIDRs\": firehol level 1, spamhaus DROP and every 5th IPv4 country \
         block; IPv6: spamhaus DROPv6 and every 5th IPv6 country block. A hit's source is an \
         address no entry covers; \"miss next to an entry\" has a listed address in its /24.\n"
    );
}
