//! Kernel events into the infected-host table: each new inside host is logged, and written as
//! one JSON line for a SIEM when `report.new_host_log` is set; the table is saved to the state
//! directory every few seconds when it changed.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;

use super::{Daemon, hosts::Names, status::now};

/// The name of interface `index` (`if<index>` when it has none).
fn interface(index: u32) -> String {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `buf` has room for IF_NAMESIZE bytes, as if_indextoname requires.
    let p = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
    if p.is_null() {
        return format!("if{index}");
    }
    // SAFETY: if_indextoname wrote a NUL-terminated name into `buf`.
    unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned()
}

impl Daemon {
    /// Adds kernel events to the host table; reports each new host.
    pub fn record_events(&mut self, events: &[filter_common::Event]) {
        let status = self.status();
        let lists = |bits: u64| status.list_names(bits);
        let named = Names { lists: &lists, interface: &interface };
        let t = now();
        for ev in events {
            if let Some(host) = self.hosts.record(ev, t, &named) {
                let first = host.contacted.iter().next().map_or("", |s| s.as_str());
                log::warn!("new infected host {} contacted {first}", host.address);
                let line =
                    serde_json::json!({"event": "takedown_infected_host", "time": t, "host": host});
                self.append_new_host(&line);
            }
        }
    }

    pub(super) fn append_new_host(&self, line: &serde_json::Value) {
        let Some(path) = &self.settings.config.report.new_host_log else { return };
        // It names inside hosts that contacted takedown infrastructure: the operator's alone.
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
        if let Err(e) = written {
            log::warn!("cannot append to {}: {e}", path.display());
        }
    }

    /// Saves the host table (when it changed).
    pub fn save_hosts(&mut self) {
        if let Some(s) = &self.settings.state
            && let Err(e) = self.hosts.save(&s.hosts_file())
        {
            log::warn!("cannot save the host table: {e:#}");
        }
    }

    /// Infected inside hosts in the table (those that sent to a listed address).
    pub fn host_count(&self) -> usize {
        self.hosts.infected()
    }

    /// The event ring buffer of the loaded filter, on a descriptor of its own (the filter keeps
    /// the map, to pin it again should its pin be removed).
    pub fn take_events(&mut self) -> Option<aya::maps::RingBuf<aya::maps::MapData>> {
        let map = self.filter.as_ref()?.maps().map_copy(filter_common::MAP_EVENTS).ok()?;
        aya::maps::RingBuf::try_from(map).ok()
    }
}
