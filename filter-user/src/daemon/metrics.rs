//! Prometheus metrics of a running daemon (prometheus-client's OpenMetrics encoding), built
//! afresh at each scrape from the kernel's counters and a [`Snapshot`] the daemon publishes.
//! Every series a configured list, interface or map can have exists from the start, at zero
//! (alerts on `rate()` need them). The HTTP server that answers scrapes is `metrics_http`; the
//! format it answers in, `metrics_format`.

use std::{
    net::SocketAddr,
    sync::{Arc, atomic::AtomicU64},
};

use anyhow::{Context, Result, bail};
use filter_common::{
    CNT_EVENTS, CNT_NAMES, CNT_SUPPRESSED, MAP_COUNTERS, MAP_LIST_COUNTERS, MAP_RATE, MAX_LISTS,
};
use prometheus_client::{
    encoding::text::encode,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::{Registry, Unit},
};

use super::{Daemon, manual::MANUAL_BIT};
use crate::maps::{FilterMaps, counters};

/// The filter's counter maps, on descriptors of their own so that a scrape reads them without
/// the daemon.
pub struct CounterMaps {
    counters: aya::maps::Map,
    rate: aya::maps::Map,
    lists: aya::maps::Map,
}

impl CounterMaps {
    /// The counter maps of `maps`.
    pub fn of(maps: &FilterMaps) -> Result<Self> {
        Ok(Self {
            counters: maps.map_copy(MAP_COUNTERS)?,
            rate: maps.map_copy(MAP_RATE)?,
            lists: maps.map_copy(MAP_LIST_COUNTERS)?,
        })
    }
}

/// What a scrape renders: the daemon's last published state and the counter maps of the filter
/// in force (none while no filter is loaded).
#[derive(Clone)]
pub struct Published {
    pub snapshot: Arc<Snapshot>,
    pub maps: Option<Arc<CounterMaps>>,
}

impl Published {
    /// The metrics text.
    pub fn render(&self) -> Result<String> {
        let maps = self.maps.as_deref().context("the filter is not loaded")?;
        render(&self.snapshot, maps)
    }
}

type Labels = Vec<(String, String)>;

/// Where metrics are served: `addr`; refused when not loopback unless `remote` is allowed.
pub fn address(addr: &str, remote: bool) -> Result<Option<SocketAddr>> {
    if addr.is_empty() {
        return Ok(None);
    }
    let a: SocketAddr =
        addr.parse().with_context(|| format!("not an IP:PORT address for metrics: {addr:?}"))?;
    if !a.ip().is_loopback() && !remote {
        bail!(
            "refusing to serve metrics on {a}, which is not a loopback address (allow it with --metrics-allow-remote)"
        );
    }
    Ok(Some(a))
}

/// What the daemon publishes for the metrics: its state at one moment, apart from the kernel's
/// counters (read from the maps at render time).
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// Configured interfaces; interface slot i + 1 is `interfaces[i]`.
    pub interfaces: Vec<String>,
    /// Names of list bits 0..64.
    pub list_names: Vec<String>,
    /// The bits of the lists configured, and of the manual list: their series exist from the
    /// start, at zero.
    pub list_bits: Vec<u32>,
    pub lists: Vec<ListMetrics>,
    /// (map label, entries) of the plan in force.
    pub entries: [(&'static str, usize); filter_common::ADDRESS_MAPS.len()],
    pub hosts: usize,
    /// Inside hosts found to have contacted an address before it was listed.
    pub exposed_hosts: usize,
    /// The connection journal, when on.
    pub journal: Option<super::status::JournalStatus>,
}

/// One list's refresh figures.
#[derive(Clone, Debug, Default)]
pub struct ListMetrics {
    pub name: String,
    pub entries: usize,
    pub refreshed_ok: u64,
    pub refreshed_failed: u64,
    pub last_success: u64,
    /// How long the last refresh took, in seconds.
    pub duration: f64,
}

impl Daemon {
    /// The daemon's state for the metrics.
    pub fn snapshot(&self) -> Snapshot {
        let status = self.status();
        let lists = self.slots.iter().map(|s| ListMetrics {
            name: s.cfg.name.clone(),
            entries: s.status.entries,
            refreshed_ok: s.refreshed_ok,
            refreshed_failed: s.refreshed_failed,
            last_success: s.status.last_success.unwrap_or(0),
            duration: s.last_duration,
        });
        Snapshot {
            interfaces: self.settings.config.interfaces.clone(),
            list_names: (0..MAX_LISTS as u32).map(|b| status.list_name(b)).collect(),
            list_bits: status
                .lists
                .iter()
                .map(|l| l.bit)
                .chain([MANUAL_BIT.trailing_zeros()])
                .collect(),
            lists: lists.collect(),
            entries: self.applied().counts(),
            hosts: self.host_count(),
            exposed_hosts: status.exposed_hosts,
            journal: status.journal.clone(),
        }
    }
}

type Counters = Family<Labels, Counter>;
type Gauges = Family<Labels, Gauge>;

fn counter(reg: &mut Registry, name: &str, help: &str) -> Counters {
    let f = Counters::default();
    reg.register(name, help, f.clone());
    f
}

fn gauge(reg: &mut Registry, name: &str, help: &str) -> Gauges {
    let f = Gauges::default();
    reg.register(name, help, f.clone());
    f
}

fn l(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// The metrics text for a snapshot and the filter's counters.
pub fn render(s: &Snapshot, maps: &CounterMaps) -> Result<String> {
    let mut reg = Registry::default();
    traffic(&mut reg, s, maps)?;
    matched(&mut reg, s, maps)?;
    let entries = gauge(&mut reg, "takedown_entries", "Entries in each map");
    for (map, n) in &s.entries {
        entries.get_or_create(&l(&[("map", map)])).set(*n as i64);
    }
    refreshes(&mut reg, s);
    let hosts =
        gauge(&mut reg, "takedown_infected_hosts", "Inside hosts that sent to a listed address");
    hosts.get_or_create(&vec![]).set(s.hosts as i64);
    journal(&mut reg, s);
    let mut out = String::new();
    encode(&mut out, &reg)?;
    Ok(out)
}

/// Packets and bytes by interface and verdict; events sent and suppressed.
fn traffic(reg: &mut Registry, s: &Snapshot, maps: &CounterMaps) -> Result<()> {
    let packets = counter(reg, "takedown_packets", "Packets seen, by interface and verdict");
    let bytes = counter(reg, "takedown_bytes", "Bytes seen, by interface and verdict");
    let slots = counters::read_slots(&maps.counters, &maps.rate)?;
    for (slot, totals) in slots.iter().enumerate() {
        let name = slot.checked_sub(1).and_then(|i| s.interfaces.get(i));
        let iface = name.map_or("other", String::as_str);
        for (i, verdict) in CNT_NAMES.iter().enumerate().take(CNT_EVENTS as usize) {
            let c = totals.0[i];
            let labels = l(&[("interface", iface), ("verdict", verdict)]);
            packets.get_or_create(&labels).inc_by(c.packets);
            bytes.get_or_create(&labels).inc_by(c.bytes);
        }
    }
    let total = counters::read_map(&maps.counters, &maps.rate)?;
    let events = counter(reg, "takedown_events", "Events reported by the kernel");
    events.get_or_create(&vec![]).inc_by(total.packets(CNT_EVENTS));
    let help = "Events suppressed by the rate limit or a full ring buffer";
    let suppressed = counter(reg, "takedown_events_suppressed", help);
    suppressed.get_or_create(&vec![]).inc_by(total.packets(CNT_SUPPRESSED));
    Ok(())
}

/// Packets and bytes matched per list and direction.
fn matched(reg: &mut Registry, s: &Snapshot, maps: &CounterMaps) -> Result<()> {
    let help = "Packets dropped (or, for monitor lists, matched) because of a list, by direction";
    let dropped = counter(reg, "takedown_dropped_packets", help);
    let help = "Bytes dropped (or matched) because of a list, by direction";
    let dropped_bytes = counter(reg, "takedown_dropped_bytes", help);
    let mut counted = counters::read_lists(&maps.lists)?;
    for &bit in &s.list_bits {
        if !counted.iter().any(|(b, ..)| *b == bit) {
            counted.push((bit, Default::default(), Default::default()));
        }
    }
    for (bit, src, dst) in counted {
        let name = &s.list_names[bit as usize];
        for (dir, c) in [("src", src), ("dst", dst)] {
            dropped.get_or_create(&l(&[("list", name), ("direction", dir)])).inc_by(c.packets);
            dropped_bytes.get_or_create(&l(&[("list", name), ("direction", dir)])).inc_by(c.bytes);
        }
    }
    Ok(())
}

/// Exposed hosts and, when on, the connection journal's size and intake.
fn journal(reg: &mut Registry, s: &Snapshot) {
    let help = "Inside hosts found in the connection journal to have contacted an address before it was listed";
    gauge(reg, "takedown_exposed_hosts", help).get_or_create(&vec![]).set(s.exposed_hosts as i64);
    let Some(j) = &s.journal else { return };
    let bytes = gauge(reg, "takedown_journal_bytes", "Bytes the connection journal takes on disk");
    bytes.get_or_create(&vec![]).set(j.bytes as i64);
    let help = "New connections the kernel reported to the journal since the start";
    let connections = counter(reg, "takedown_journal_connections", help);
    connections.get_or_create(&vec![]).inc_by(j.connections);
    let help = "Hours of the journal deleted to hold max_bytes since the start";
    gauge(reg, "takedown_journal_hours_removed_for_size", help)
        .get_or_create(&vec![])
        .set(j.removed_for_size as i64);
}

/// Each list's entries in force and its refreshes.
fn refreshes(reg: &mut Registry, s: &Snapshot) {
    let help = "Entries (networks and domains) of each list's content in force";
    let list_entries = gauge(reg, "takedown_list_entries", help);
    let refreshes = counter(reg, "takedown_refreshes", "List refreshes, by result");
    let help = "When each list last refreshed successfully";
    let last_success = gauge(reg, "takedown_last_refresh_success_timestamp_seconds", help);
    let help = "How long each list's last refresh took";
    let duration = Family::<Labels, Gauge<f64, AtomicU64>>::default();
    reg.register_with_unit("takedown_fetch_duration", help, Unit::Seconds, duration.clone());
    for x in &s.lists {
        let list = l(&[("list", &x.name)]);
        list_entries.get_or_create(&list).set(x.entries as i64);
        let ok = l(&[("list", &x.name), ("result", "success")]);
        refreshes.get_or_create(&ok).inc_by(x.refreshed_ok);
        let failed = l(&[("list", &x.name), ("result", "failure")]);
        refreshes.get_or_create(&failed).inc_by(x.refreshed_failed);
        last_success.get_or_create(&list).set(x.last_success as i64);
        duration.get_or_create(&list).set(x.duration);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_stay_on_loopback_unless_allowed() {
        assert!(address("127.0.0.1:9645", false).unwrap().is_some());
        assert!(address("[::1]:9645", false).unwrap().is_some());
        assert!(address("", false).unwrap().is_none());
        assert!(address("0.0.0.0:9645", false).is_err());
        assert!(address("0.0.0.0:9645", true).unwrap().is_some());
    }
}
