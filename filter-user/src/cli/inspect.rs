//! `takedown lookup`, `list` and `stats`: read the pinned filter (and the daemon's status file);
//! they work whether or not the daemon runs.

use std::{net::IpAddr, time::Duration};

use anyhow::Result;
use clap::Args;
use filter_common::{CNT_DROP_DST, CNT_DROP_SRC, CNT_NAMES};
use ipnet::IpNet;
use serde_json::json;
use takedown::{
    daemon::{manual, status::Status},
    maps::{counters, lookup},
    plan::Meta,
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
pub struct StatsArgs {
    /// Seconds over which rates are measured.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    interval: f64,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    places: Places,
}

pub fn status(places: &Places) -> Status {
    Status::read(&places.state().status_file()).unwrap_or_default()
}

pub fn lookup(args: LookupArgs) -> Result<()> {
    let maps = args.places.maps("takedown lookup")?;
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
            .map(|(n, m)| json!({"entry": n.to_string(), "direction": m.directions(), "lists": st.list_names(m.lists)}))
            .collect();
        say!(
            "{}",
            json!({"address": args.addr, "verdict": verdict, "drops_src": found.drops_src, "drops_dst": found.drops_dst,
            "allowed_by": found.allowed.map(|a| a.to_string()), "matches": matches, "resolved_from": tags})
        );
        return Ok(());
    }
    say!("{}: {verdict}", args.addr);
    let lifetimes = manual_lifetimes(&args.places);
    for (n, m) in &found.matches {
        let lists = st.list_names(m.lists).join(", ");
        say!("  {n} ({}): lists {lists}{}", m.directions(), lifetime_of(&lifetimes, n, m));
    }
    if !tags.is_empty() {
        say!("  resolved from: {}", tags.join(", "));
    }
    Ok(())
}

pub fn list(args: ListArgs) -> Result<()> {
    let maps = args.places.maps("takedown list")?;
    let st = status(&args.places);
    let plan = maps.plan()?;
    let bit = match args.list.as_deref() {
        None => None,
        Some(name) => {
            Some(st.list_bit(name).ok_or_else(|| anyhow::anyhow!("no list named {name:?}"))?)
        }
    };
    let rows: Vec<(IpNet, Meta)> =
        plan.nets().filter(|(_, m)| bit.is_none_or(|b| m.lists & (1u64 << b) != 0)).collect();
    if args.json {
        let rows: Vec<_> = rows
            .iter()
            .map(|(n, m)| json!({"entry": n.to_string(), "direction": m.directions(), "lists": st.list_names(m.lists)}))
            .collect();
        say!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        let lifetimes = manual_lifetimes(&args.places);
        for (n, m) in &rows {
            let lists = st.list_names(m.lists).join(",");
            say!("{n} {} {lists}{}", m.directions(), lifetime_of(&lifetimes, n, m));
        }
    }
    Ok(())
}

/// When each manual entry that expires leaves the list ("until ... (in ...)").
fn manual_lifetimes(places: &Places) -> Vec<(IpNet, String)> {
    let now = takedown::daemon::status::now();
    let entries = manual::load(&places.state().manual()).unwrap_or_default();
    entries.iter().filter(|e| e.expires.is_some()).map(|e| (e.net, e.lifetime(now))).collect()
}

/// " (manual entry until ...)" for an entry on the manual list that expires, else "".
fn lifetime_of(lifetimes: &[(IpNet, String)], net: &IpNet, m: &Meta) -> String {
    let manual = m.lists & manual::MANUAL_BIT != 0;
    match lifetimes.iter().find(|(n, _)| n == net) {
        Some((_, l)) if manual => format!(" (manual entry {l})"),
        _ => String::new(),
    }
}

pub fn stats(args: StatsArgs) -> Result<()> {
    let maps = args.places.maps("takedown stats")?;
    let first = counters::read(&maps)?;
    std::thread::sleep(Duration::from_secs_f64(args.interval.max(0.1)));
    let second = counters::read(&maps)?;
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
        let (count, bytes, rate) = (second.0[i].packets, second.0[i].bytes, rate(i));
        match counters::counts_events(i) {
            true => say!("{n:<18} {count:>14} events {:>18} {rate:>12.1} events/s", ""),
            false => say!("{n:<18} {count:>14} pkts   {bytes:>16} B {rate:>12.1} pkts/s"),
        }
    }
    let dropped = second.packets(CNT_DROP_SRC) + second.packets(CNT_DROP_DST);
    say!("{:<18} {:>14} pkts", "dropped", dropped);
    Ok(())
}
