//! `takedown hosts` (the infected-host report) and `takedown top` (the most-hit entries).

use std::{collections::HashMap, time::Duration};

use anyhow::{Result, bail};
use clap::Args;
use serde_json::json;
use takedown::{
    daemon::{
        hosts::Host,
        status::{Status, now, utc},
    },
    maps::{EntryHits, monotonic_ns},
};

use super::places::Places;

#[derive(Args, Debug)]
pub struct HostsArgs {
    /// Only hosts seen in this last period (e.g. 90s, 30m, 1h, 2d).
    #[arg(long, value_name = "PERIOD", value_parser = parse_period)]
    since: Option<u64>,
    #[command(flatten)]
    format: Format,
    #[command(flatten)]
    places: Places,
}

/// How a report is printed: text, `--json` or `--csv`.
#[derive(Args, Debug)]
pub struct Format {
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    #[arg(long)]
    pub csv: bool,
}

#[derive(Args, Debug)]
pub struct TopArgs {
    /// Only entries of this list.
    #[arg(long = "list", value_name = "NAME")]
    list: Option<String>,
    /// How many entries.
    #[arg(short = 'n', default_value_t = 20)]
    count: usize,
    /// Seconds over which rates are measured.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    interval: f64,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    places: Places,
}

/// "90s", "30m", "1h", "2d" (or plain seconds) to seconds.
pub fn parse_period(s: &str) -> Result<u64, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| format!("not a period: {s:?} (e.g. 30m, 1h, 2d)"))?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("not a period: {s:?} (e.g. 30m, 1h, 2d)")),
    };
    // (A period past u64's seconds would wrap to a short one: `purge` would delete recent hours.)
    n.checked_mul(mult).ok_or_else(|| format!("not a period: {s:?} is too long"))
}

fn set(items: &std::collections::BTreeSet<String>, sep: &str) -> String {
    items.iter().cloned().collect::<Vec<_>>().join(sep)
}

pub fn hosts(args: HostsArgs) -> Result<()> {
    let table = args.places.hosts()?;
    let since = args.since.map_or(0, |p| now().saturating_sub(p));
    let all = table.recent(since);
    if args.format.json {
        say!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(());
    }
    // Infected hosts first; those listed addresses only reached apart.
    let (infected, reached): (Vec<Host>, Vec<Host>) = all.into_iter().partition(Host::infected);
    if args.format.csv {
        hosts_csv(infected.iter().chain(&reached));
        return Ok(());
    }
    if infected.is_empty() {
        let when = if args.since.is_some() { " in that period" } else { "" };
        say!("no inside host has contacted takedown infrastructure{when}");
    }
    for h in &infected {
        say!("{}", host_line(h));
    }
    if !reached.is_empty() {
        let who: Vec<&str> = reached.iter().map(|h| h.address.as_str()).collect();
        say!(
            "reached by listed addresses only (they sent nothing to them: not infected): {}",
            who.join(", ")
        );
    }
    Ok(())
}

/// An infected host's line: its counts, then what is known of it (a host found only in the
/// connection journal has no events: no empty brackets for them).
fn host_line(h: &Host) -> String {
    let ago = now().saturating_sub(h.last_seen);
    let mut line =
        format!("{}  last seen {ago}s ago, {} events ({} dropped)", h.address, h.events, h.dropped);
    let fields = [
        (": ", set(&h.contacted, ", "), ""),
        (" [", set(&h.lists, ", "), "]"),
        (" via ", set(&h.services, " "), ""),
        (" on ", set(&h.interfaces, ", "), ""),
    ];
    for (lead, text, end) in fields.iter().filter(|(_, text, _)| !text.is_empty()) {
        line += &format!("{lead}{text}{end}");
    }
    if let Some(b) = &h.before_listed {
        line += &format!(
            "; contacted before it was listed: {} connection(s), first {}, last {}",
            b.connections,
            utc(b.first),
            utc(b.last)
        );
    }
    line
}

fn hosts_csv<'a>(hosts: impl Iterator<Item = &'a Host>) {
    say!("host,first_seen,last_seen,events,dropped,contacted,lists,services,interfaces,sent");
    for h in hosts {
        say!(
            "{},{},{},{},{},{},{},{},{},{}",
            h.address,
            h.first_seen,
            h.last_seen,
            h.events,
            h.dropped,
            set(&h.contacted, " "),
            set(&h.lists, " "),
            set(&h.services, " "),
            set(&h.interfaces, " "),
            h.sent
        );
    }
}

pub fn top(args: TopArgs) -> Result<()> {
    let maps = args.places.maps("takedown top")?;
    let st = Status::read(&args.places.state().status_file()).unwrap_or_default();
    let bit = match args.list.as_deref() {
        None => None,
        Some(name) => match st.list_bit(name) {
            Some(b) => Some(b),
            None => bail!("no list named {name:?}"),
        },
    };
    let before: HashMap<ipnet::IpNet, u64> =
        maps.hits()?.into_iter().map(|h| (h.net, h.packets)).collect();
    std::thread::sleep(Duration::from_secs_f64(args.interval.max(0.1)));
    let mut rows: Vec<EntryHits> = maps
        .hits()?
        .into_iter()
        .filter(|h| h.packets > 0 && bit.is_none_or(|b| h.meta.lists & (1u64 << b) != 0))
        .collect();
    rows.sort_by(|a, b| b.packets.cmp(&a.packets).then(a.net.cmp(&b.net)));
    rows.truncate(args.count);
    let mono = monotonic_ns();
    let rate = |h: &EntryHits| {
        (h.packets - before.get(&h.net).copied().unwrap_or(0)) as f64 / args.interval.max(0.1)
    };
    if args.json {
        let out: Vec<_> = rows
            .iter()
            .map(|h| json!({"entry": h.net.to_string(), "lists": st.list_names(h.meta.lists), "packets": h.packets,
                "packets_per_second": rate(h), "last_hit_seconds_ago": mono.saturating_sub(h.last_hit_ns) / 1_000_000_000}))
            .collect();
        say!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    say!("{:<24} {:>12} {:>10} {:>9}  lists", "entry", "packets", "pkts/s", "last hit");
    for h in &rows {
        let ago = mono.saturating_sub(h.last_hit_ns) / 1_000_000_000;
        say!(
            "{:<24} {:>12} {:>10.1} {:>8}s  {}",
            h.net.to_string(),
            h.packets,
            rate(h),
            ago,
            st.list_names(h.meta.lists).join(",")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_period;

    #[test]
    fn a_period_too_long_is_refused_not_wrapped() {
        assert_eq!(parse_period("2d"), Ok(172_800));
        // 94368760191893771 days wraps to 128 seconds in u64 arithmetic.
        assert!(parse_period("94368760191893771d").unwrap_err().contains("too long"));
        assert!(parse_period("213503982334602d").is_err());
        assert_eq!(parse_period("213503982334601d"), Ok(213_503_982_334_601 * 86_400));
    }
}
