//! Prometheus metrics of a running daemon (prometheus-client's text encoding), built afresh at
//! each scrape from the kernel's counters and the daemon's state, and served over plain HTTP on
//! a loopback address by default.

use std::net::SocketAddr;

use anyhow::{Context, Result, bail};
use filter_common::{CNT_EVENTS, CNT_NAMES, CNT_SUPPRESSED, MAP_COUNTERS, MAP_LIST_COUNTERS};
use prometheus_client::{
    encoding::text::encode,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use crate::{counters, daemon::Daemon};

type Labels = Vec<(String, String)>;

/// Every series name this module exports (counters with their `_total` suffix).
pub const SERIES: [&str; 12] = [
    "takedown_packets_total",
    "takedown_bytes_total",
    "takedown_dropped_packets_total",
    "takedown_dropped_bytes_total",
    "takedown_events_total",
    "takedown_events_suppressed_total",
    "takedown_entries",
    "takedown_list_entries",
    "takedown_refreshes_total",
    "takedown_last_refresh_success_timestamp_seconds",
    "takedown_fetch_duration_milliseconds",
    "takedown_infected_hosts",
];

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

fn counter(reg: &mut Registry, name: &str, help: &str) -> Family<Labels, Counter> {
    let f = Family::<Labels, Counter>::default();
    reg.register(name, help, f.clone());
    f
}

fn gauge(reg: &mut Registry, name: &str, help: &str) -> Family<Labels, Gauge> {
    let f = Family::<Labels, Gauge>::default();
    reg.register(name, help, f.clone());
    f
}

fn l(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// The metrics text for the daemon's current state.
pub fn render(d: &Daemon) -> Result<String> {
    let mut reg = Registry::default();
    let packets = counter(&mut reg, "takedown_packets", "Packets seen, by interface and verdict");
    let bytes = counter(&mut reg, "takedown_bytes", "Bytes seen, by interface and verdict");
    let dropped = counter(
        &mut reg,
        "takedown_dropped_packets",
        "Packets dropped (or, for monitor lists, matched) because of a list, by direction",
    );
    let dropped_bytes = counter(
        &mut reg,
        "takedown_dropped_bytes",
        "Bytes dropped (or matched) because of a list, by direction",
    );
    let events = counter(&mut reg, "takedown_events", "Events reported by the kernel");
    let suppressed = counter(
        &mut reg,
        "takedown_events_suppressed",
        "Events suppressed by the rate limit or a full ring buffer",
    );
    let entries = gauge(&mut reg, "takedown_entries", "Entries in each map");
    let list_entries = gauge(
        &mut reg,
        "takedown_list_entries",
        "Entries (networks and domains) of each list's content in force",
    );
    let refreshes = counter(&mut reg, "takedown_refreshes", "List refreshes, by result");
    let last_success = gauge(
        &mut reg,
        "takedown_last_refresh_success_timestamp_seconds",
        "When each list last refreshed successfully",
    );
    let duration = gauge(
        &mut reg,
        "takedown_fetch_duration_milliseconds",
        "How long each list's last refresh took",
    );
    let hosts = gauge(&mut reg, "takedown_infected_hosts", "Inside hosts in the host table");
    let filter = d.filter().context("the filter is not loaded")?;
    let ebpf = filter.ebpf();
    let ifaces = &d.settings.config.interfaces;
    let slots = counters::read_slots(ebpf.map(MAP_COUNTERS).context("no counters")?)?;
    for (slot, totals) in slots.iter().enumerate() {
        let iface =
            if slot == 0 { "other" } else { ifaces.get(slot - 1).map_or("other", String::as_str) };
        for (i, name) in CNT_NAMES.iter().enumerate().take(CNT_EVENTS as usize) {
            let c = totals.0[i];
            if c.packets > 0 || slot > 0 {
                packets
                    .get_or_create(&l(&[("interface", iface), ("verdict", name)]))
                    .inc_by(c.packets);
                bytes.get_or_create(&l(&[("interface", iface), ("verdict", name)])).inc_by(c.bytes);
            }
        }
    }
    let total = counters::read_map(ebpf.map(MAP_COUNTERS).context("no counters")?)?;
    events.get_or_create(&vec![]).inc_by(total.packets(CNT_EVENTS));
    suppressed.get_or_create(&vec![]).inc_by(total.packets(CNT_SUPPRESSED));
    for (bit, src, dst) in
        counters::read_lists(ebpf.map(MAP_LIST_COUNTERS).context("no list counters")?)?
    {
        let name = d.list_name(bit);
        for (dir, c) in [("src", src), ("dst", dst)] {
            dropped.get_or_create(&l(&[("list", &name), ("direction", dir)])).inc_by(c.packets);
            dropped_bytes.get_or_create(&l(&[("list", &name), ("direction", dir)])).inc_by(c.bytes);
        }
    }
    let p = d.applied();
    for (map, n) in [
        ("ipv4", p.v4_exact.len()),
        ("ipv6", p.v6_exact.len()),
        ("ipv4_prefix", p.v4_prefix.len()),
        ("ipv6_prefix", p.v6_prefix.len()),
        ("ipv4_allow", p.v4_allow.len()),
        ("ipv6_allow", p.v6_allow.len()),
    ] {
        entries.get_or_create(&l(&[("map", map)])).set(n as i64);
    }
    for s in &d.slots {
        let list = s.cfg.name.as_str();
        list_entries.get_or_create(&l(&[("list", list)])).set(s.status.entries as i64);
        refreshes
            .get_or_create(&l(&[("list", list), ("result", "success")]))
            .inc_by(s.refreshed_ok);
        refreshes
            .get_or_create(&l(&[("list", list), ("result", "failure")]))
            .inc_by(s.refreshed_failed);
        last_success
            .get_or_create(&l(&[("list", list)]))
            .set(s.status.last_success.unwrap_or(0) as i64);
        duration.get_or_create(&l(&[("list", list)])).set((s.last_duration * 1000.0) as i64);
    }
    hosts.get_or_create(&vec![]).set(d.hosts.len() as i64);
    let mut out = String::new();
    encode(&mut out, &reg)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grafana_dashboard_queries_only_exported_series() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/grafana-dashboard.json");
        let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let exprs: Vec<String> = doc["panels"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|p| {
                p["targets"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t["expr"].as_str().unwrap().to_string())
            })
            .collect();
        assert!(exprs.len() >= 10);
        for e in &exprs {
            let names: Vec<&str> = e
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("takedown_"))
                .collect();
            assert!(!names.is_empty(), "{e}");
            for n in names {
                assert!(SERIES.contains(&n), "{n} (in {e}) is not exported");
            }
        }
    }

    #[test]
    fn metrics_stay_on_loopback_unless_allowed() {
        assert!(address("127.0.0.1:9645", false).unwrap().is_some());
        assert!(address("[::1]:9645", false).unwrap().is_some());
        assert!(address("", false).unwrap().is_none());
        assert!(address("0.0.0.0:9645", false).is_err());
        assert!(address("0.0.0.0:9645", true).unwrap().is_some());
    }
}
