//! The flood tables: frames every filter drops (one listed source; then 64k sources, half of
//! them listed, spread over the big list so that caches are not flattered), and frames every
//! filter passes (misses right next to listed addresses) while takedown holds the big list and
//! real prefixes.

use std::{
    net::{IpAddr, Ipv4Addr},
    path::Path,
};

use anyhow::{Context, Result};
use ipnet::IpNet;

use crate::{
    flood::{self, Case, Counted, FRAMES, Frames, ROUNDS},
    load::write_list,
    programs::{COUNT, LINES, SOURCES, Work},
    real,
};

const XDP_DROP: i32 = 1;
const XDP_PASS: i32 = 2;

/// The lists the floods filter, written once.
struct Lists<'a> {
    dir: &'a Path,
    small: std::path::PathBuf,
    big: Vec<IpNet>,
    big_file: std::path::PathBuf,
    /// The 10k list's addresses, for xdp-filter.
    ips: Vec<IpAddr>,
}

/// Prints both flood tables.
pub fn run(peers: bool) -> Result<()> {
    let dir = integration_tests::TempDir::new("bench-flood");
    let small = real::ips_10k()?;
    let lists = Lists {
        dir: &dir.0,
        small: dir.0.join("small.txt"),
        big: real::ips_big()?,
        big_file: dir.0.join("big.txt"),
        ips: small.iter().map(IpNet::addr).collect(),
    };
    write_list(&lists.small, &small)?;
    write_list(&lists.big_file, &lists.big)?;
    dropped(peers, &lists)?;
    passed(peers, &lists)
}

/// xdp-filter's two configurations on the 10k list, flooded with `frames`.
fn xdp_filter_cases<'a>(lists: &'a Lists, frames: &'a Frames) -> Vec<Case<'a>> {
    let all = move || flood::xdp_filter(None, &lists.ips, lists.dir, frames);
    let ipv4 = move || flood::xdp_filter(Some("ipv4"), &lists.ips, lists.dir, frames);
    vec![
        ("xdp-filter, 10k IPs".into(), Box::new(all)),
        ("xdp-filter -f ipv4, 10k IPs".into(), Box::new(ipv4)),
    ]
}

/// takedown filtering `list`, flooded with `frames`; its counters must pass `check`.
fn takedown<'a>(
    name: &str,
    list: &'a Path,
    frames: &'a Frames,
    check: fn(&Counted, u64) -> bool,
) -> Case<'a> {
    let owned = name.to_string();
    let flood = move || flood::checked(&owned, list, frames, check);
    (name.into(), Box::new(flood))
}

fn v4(a: IpAddr) -> Result<Ipv4Addr> {
    match a {
        IpAddr::V4(a) => Ok(a),
        IpAddr::V6(_) => anyhow::bail!("an IPv4 address expected"),
    }
}

/// Frames from listed sources: every filter drops them.
fn dropped(peers: bool, lists: &Lists) -> Result<()> {
    let listed = lists.ips[lists.ips.len() / 2];
    let one =
        Frames { frame: crate::frame(listed, "192.0.2.77".parse()?), sources: vec![v4(listed)?] };
    let plan = real::plan(&lists.big, &[]);
    let mut sources = real::spread(&lists.big, SOURCES / 2);
    sources.extend(real::unlisted_next_to(&plan, &lists.big, SOURCES / 2));
    let to = lists.big[lists.big.len() / 3].addr();
    let varied = Frames { frame: crate::frame(IpAddr::V4(sources[0]), to), sources };
    println!("\n## Flood (veth, XDP live frames): listed sources\n");
    println!(
        "{FRAMES} 64-byte frames a flood, sent by an XDP_TX program with live frames into a veth pair (on CPU 0); the filter on the other end, in native mode, drops them in the receiver's NAPI thread (on CPU 1). Millions of frames the receiver took in a second (the sender outruns every filter; the rest overflow the veth's ring); the median of {ROUNDS} floods a filter, the filters taking turns. The sender writes each frame's source from a table of {SOURCES} slots drawn at random: one listed address, or (\"varied\") {} addresses of the big list and as many unlisted ones right after listed addresses, to a listed destination (takedown drops the first half by source, the second by destination). The second row reads each frame's source address before it drops, as any filter must: the sender has just written it, and the cache line it lies in comes from the sender's CPU. The third then counts to {COUNT} before it drops: about a filter's time a frame (the per-packet table measures it), with no map at all; the fourth also loads a word from each of {LINES} cache lines of an array map, about as many lines as a takedown hit reads.\n",
        SOURCES / 2
    );
    let mut cases: Vec<Case> = vec![
        (
            "a program that drops everything (floor)".into(),
            Box::new(|| flood::floor(XDP_DROP, Work::Nothing, &one)),
        ),
        (
            "a program that reads the source address, then drops".into(),
            Box::new(|| flood::floor(XDP_DROP, Work::Reads, &one)),
        ),
        (
            format!("a program that reads the source address, counts to {COUNT}, then drops"),
            Box::new(|| flood::floor(XDP_DROP, Work::ReadsAndCounts(COUNT), &one)),
        ),
        (
            format!(
                "a program that reads the source address, counts to {COUNT}, loads {LINES} cache lines of a map, then drops"
            ),
            Box::new(|| flood::floor(XDP_DROP, Work::ReadsCountsAndLoads(LINES), &one)),
        ),
    ];
    let xdp_filter_at = cases.len();
    if peers {
        cases.extend(xdp_filter_cases(lists, &one));
    }
    let by_source = |c: &Counted, n: u64| c.dropped_src >= n * 9 / 10;
    let halves = |c: &Counted, n: u64| {
        c.dropped_src + c.dropped_dst >= n * 9 / 10
            && c.dropped_src.min(c.dropped_dst) >= n * 3 / 10
    };
    cases.push(takedown("takedown, 10k IPs", &lists.small, &one, by_source));
    cases.push(takedown("takedown, 1.24M IPs", &lists.big_file, &one, by_source));
    cases.push(takedown("takedown, 1.24M IPs, varied sources", &lists.big_file, &varied, halves));
    let rates = flood::table(&cases, peers.then_some((xdp_filter_at, "xdp-filter")))?;
    let n = rates.len();
    println!(
        "\nThe varied flood runs at {:.2}x the one-source flood on the same 1.24M list.",
        rates[n - 1] / rates[n - 2]
    );
    Ok(())
}

/// Frames from unlisted sources right next to listed addresses, to an unlisted destination:
/// every filter passes them.
fn passed(peers: bool, lists: &Lists) -> Result<()> {
    let cidrs = real::cidrs_v4()?;
    let nets = [&lists.big[..], &cidrs].concat();
    let file = lists.dir.join("big-and-cidrs.txt");
    write_list(&file, &nets)?;
    let plan = real::plan(&nets, &[]);
    let sources = real::unlisted_next_to(&plan, &lists.big, SOURCES);
    let to = real::uncovered(&plan, "11.7.3.9".parse()?).context("no unlisted destination")?;
    let misses = Frames { frame: crate::frame(IpAddr::V4(sources[0]), to), sources };
    let sources = real::unlisted_anywhere(&plan, SOURCES);
    let anywhere = Frames { frame: crate::frame(IpAddr::V4(sources[0]), to), sources };
    println!("\n## Flood (veth, XDP live frames): misses\n");
    println!(
        "The same floods, with frames that every filter passes: {SOURCES} unlisted sources, each right after an address of the big list (their /24 holds entries), to an unlisted destination. The passed frames go on to the receiver's network stack, which discards them at once (they are addressed to another host's MAC). Ratios to xdp-filter -f ipv4 and to a program that passes everything. The last row's {SOURCES} sources are drawn at random from all unlisted, non-special IPv4 space instead.\n"
    );
    let mut cases: Vec<Case> = vec![(
        "a program that passes everything (floor)".into(),
        Box::new(|| flood::floor(XDP_PASS, Work::Nothing, &misses)),
    )];
    // xdp-filter -f ipv4: the second of its cases.
    let ipv4_at = cases.len() + 1;
    if peers {
        cases.extend(xdp_filter_cases(lists, &misses));
    }
    let passes = |c: &Counted, n: u64| c.passed >= n * 9 / 10 && c.dropped_src + c.dropped_dst == 0;
    cases.push(takedown("takedown, 10k IPs", &lists.small, &misses, passes));
    let name = format!("takedown, 1.24M IPs + {} real CIDRs", cidrs.len());
    cases.push(takedown(&name, &file, &misses, passes));
    cases.push(takedown(&format!("{name}, misses anywhere"), &file, &anywhere, passes));
    flood::table(&cases, peers.then_some((ipv4_at, "xdp-filter -f ipv4")))?;
    Ok(())
}
