//! `takedown lookup`, `list`, `status` and `stats`: read the pinned filter (and the daemon's
//! status file); they work whether or not the daemon runs.

use std::{net::IpAddr, time::Duration};

use anyhow::Result;
use clap::Args;
use filter_common::{CNT_DROP_DST, CNT_DROP_SRC, CNT_NAMES, MAP_COUNTERS};
use ipnet::IpNet;
use serde_json::json;
use takedown::{
    counters, lookup, manual,
    plan::{Meta, Plan},
    read::{self, Maps},
    status::Status,
};

use super::places::Places;

#[derive(Args, Debug)]
pub struct LookupArgs {
    /// The address to look up.
    addr: IpAddr,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    places: Places,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only the entries of this list ("manual" for the manual list).
    #[arg(long = "list", value_name = "NAME")]
    list: Option<String>,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    places: Places,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    places: Places,
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Seconds over which rates are measured.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    interval: f64,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    places: Places,
}

fn status(places: &Places) -> Status {
    Status::read(&places.state().status_file()).unwrap_or_default()
}

fn direction(meta: &Meta) -> &'static str {
    match meta.flags & 3 {
        1 => "src",
        2 => "dst",
        _ => "both",
    }
}

pub fn lookup(args: LookupArgs) -> Result<()> {
    let maps = Maps::open(&args.places.pins())?;
    let st = status(&args.places);
    let found = lookup::lookup(&maps, args.addr)?;
    let tags = st.domains.get(&args.addr.to_string()).cloned().unwrap_or_default();
    let verdict = match (&found.allowed, found.drops_src, found.drops_dst) {
        (Some(a), _, _) if !found.matches.is_empty() => {
            format!("listed but allowed by {a}: never dropped")
        }
        (Some(a), _, _) => format!("allowed by {a} (not listed)"),
        (None, true, true) => "blocked (as source and destination)".into(),
        (None, true, false) => "blocked (as source)".into(),
        (None, false, true) => "blocked (as destination)".into(),
        (None, false, false) => "not listed".into(),
    };
    if args.json {
        let matches: Vec<_> = found
            .matches
            .iter()
            .map(|(n, m)| json!({"entry": n.to_string(), "direction": direction(m), "lists": st.list_names(m.lists)}))
            .collect();
        say!(
            "{}",
            json!({"address": args.addr, "verdict": verdict, "drops_src": found.drops_src, "drops_dst": found.drops_dst,
            "allowed_by": found.allowed.map(|a| a.to_string()), "matches": matches, "resolved_from": tags})
        );
        return Ok(());
    }
    say!("{}: {verdict}", args.addr);
    for (n, m) in &found.matches {
        say!("  {n} ({}): lists {}", direction(m), st.list_names(m.lists).join(", "));
    }
    if !tags.is_empty() {
        say!("  resolved from: {}", tags.join(", "));
    }
    Ok(())
}

/// Every entry of a plan as (network, meta).
fn entries(plan: &Plan) -> Vec<(IpNet, Meta)> {
    let v4 = |a: [u8; 4], l: u8| IpNet::new(IpAddr::from(a), l).expect("valid length");
    let v6 = |a: [u8; 16], l: u8| IpNet::new(IpAddr::from(a), l).expect("valid length");
    let mut out: Vec<(IpNet, Meta)> = Vec::with_capacity(plan.len());
    out.extend(plan.v4_exact.iter().map(|(k, m)| (v4(*k, 32), *m)));
    out.extend(plan.v6_exact.iter().map(|(k, m)| (v6(*k, 128), *m)));
    out.extend(plan.v4_prefix.iter().map(|((l, k), m)| (v4(*k, *l), *m)));
    out.extend(plan.v6_prefix.iter().map(|((l, k), m)| (v6(*k, *l), *m)));
    out
}

pub fn list(args: ListArgs) -> Result<()> {
    let maps = Maps::open(&args.places.pins())?;
    let st = status(&args.places);
    let plan = read::plan(|n| maps.get(n))?;
    let bit = match args.list.as_deref() {
        None => None,
        Some(name) => {
            Some(st.list_bit(name).ok_or_else(|| anyhow::anyhow!("no list named {name:?}"))?)
        }
    };
    let rows: Vec<(IpNet, Meta)> = entries(&plan)
        .into_iter()
        .filter(|(_, m)| bit.is_none_or(|b| m.lists & (1u64 << b) != 0))
        .collect();
    if args.json {
        let rows: Vec<_> = rows
            .iter()
            .map(|(n, m)| json!({"entry": n.to_string(), "direction": direction(m), "lists": st.list_names(m.lists)}))
            .collect();
        say!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        for (n, m) in &rows {
            say!("{n} {} {}", direction(m), st.list_names(m.lists).join(","));
        }
    }
    Ok(())
}

pub fn status_cmd(args: StatusArgs) -> Result<()> {
    let pins = args.places.pins();
    let state = args.places.state();
    let st = status(&args.places);
    let daemon = state.daemon_pid();
    let maps = Maps::open(&pins)?;
    let plan = read::plan(|n| maps.get(n))?;
    let ifaces = pins.linked_interfaces();
    let manual_entries = manual::load(&state.manual())?.len();
    if args.json {
        say!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "daemon": daemon, "pin_dir": pins.dir(), "interfaces": ifaces, "program_id": st.program_id,
                "entries": {"ipv4": plan.v4_exact.len(), "ipv6": plan.v6_exact.len(), "ipv4_prefixes": plan.v4_prefix.len(),
                            "ipv6_prefixes": plan.v6_prefix.len(), "ipv4_allow": plan.v4_allow.len(), "ipv6_allow": plan.v6_allow.len()},
                "manual_entries": manual_entries, "lists": st.lists,
            }))?
        );
        return Ok(());
    }
    match daemon {
        Some(pid) => say!("daemon: running (pid {pid})"),
        None => say!("daemon: not running (the pinned filter enforces on its own)"),
    }
    say!("pinned at: {}", pins.dir().display());
    let modes: Vec<String> = ifaces
        .iter()
        .map(|i| match st.interfaces.iter().find(|s| &s.name == i) {
            Some(s) => format!("{i} ({})", s.mode),
            None => i.clone(),
        })
        .collect();
    say!("interfaces: {}", if modes.is_empty() { "none".into() } else { modes.join(", ") });
    if let Some(id) = st.program_id {
        say!("program id: {id}");
    }
    say!(
        "entries: {} IPv4, {} IPv6, {} IPv4 prefixes, {} IPv6 prefixes; allowlist {} IPv4, {} IPv6",
        plan.v4_exact.len(),
        plan.v6_exact.len(),
        plan.v4_prefix.len(),
        plan.v6_prefix.len(),
        plan.v4_allow.len(),
        plan.v6_allow.len()
    );
    let count =
        |bit: u32| entries(&plan).iter().filter(|(_, m)| m.lists & (1u64 << bit) != 0).count();
    for l in &st.lists {
        let when = l.last_success.map_or("never".to_string(), |t| {
            format!("{}s ago", takedown::status::now().saturating_sub(t))
        });
        let word = if l.ok { "ok" } else { "FAILED" };
        say!(
            "list {}: {} in the maps; last refresh {word} ({}), last success {when}; source {}",
            l.name,
            count(l.bit),
            l.message,
            l.source
        );
    }
    say!("list manual: {manual_entries} entries, {} in the maps", count(63));
    Ok(())
}

pub fn stats(args: StatsArgs) -> Result<()> {
    let maps = Maps::open(&args.places.pins())?;
    let counters_map = maps.get(MAP_COUNTERS)?;
    let first = counters::read_map(counters_map)?;
    std::thread::sleep(Duration::from_secs_f64(args.interval.max(0.1)));
    let second = counters::read_map(counters_map)?;
    let rate = |slot: usize| {
        (second.0[slot].packets - first.0[slot].packets) as f64 / args.interval.max(0.1)
    };
    if args.json {
        let rows: Vec<_> = CNT_NAMES
            .iter()
            .enumerate()
            .map(|(i, n)| json!({"counter": n, "packets": second.0[i].packets, "bytes": second.0[i].bytes, "packets_per_second": rate(i)}))
            .collect();
        say!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    for (i, n) in CNT_NAMES.iter().enumerate() {
        say!(
            "{n:<12} {:>14} pkts {:>16} B {:>12.1} pkts/s",
            second.0[i].packets,
            second.0[i].bytes,
            rate(i)
        );
    }
    let dropped = second.packets(CNT_DROP_SRC) + second.packets(CNT_DROP_DST);
    say!("{:<12} {:>14} pkts", "dropped", dropped);
    Ok(())
}
