//! Kernel events into the infected-host table: each new inside host is logged, and written as
//! one JSON line for a SIEM when `report.new_host_log` is set; the table is saved to the state
//! directory every few seconds when it changed.

use std::io::Write as _;
use std::os::unix::fs::MetadataExt;
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

    fn append_new_host(&self, line: &serde_json::Value) {
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

    /// Pins again what was removed from the pin directory under the running filter, saying so
    /// loudly (its links are held, so the filter kept enforcing). The directory's lock comes
    /// first: when another daemon took it meanwhile, this one pins nothing there any more.
    pub fn check_pins(&mut self) {
        let Some(pins) = self.settings.pins.clone() else { return };
        let Some(lost) = self.filter.as_ref().and_then(|f| f.lost_pins()) else { return };
        if !self.holds_lock_on(&pins) {
            match pins.lock() {
                Ok(lock) => self.pin_lock = Some(lock),
                Err(e) => {
                    log::error!(
                        "pins removed under the running filter ({lost}), and {e:#}: this daemon \
                         pins nothing there any more (its filter stays attached while it runs)"
                    );
                    self.settings.pins = None;
                    return;
                }
            }
        }
        let Some(filter) = self.filter.as_mut() else { return };
        match filter.pin_again() {
            Ok(()) => log::error!("pins removed under the running filter ({lost}): pinned again"),
            Err(e) => log::error!("pins removed under the running filter ({lost}): {e:#}"),
        }
    }

    /// True when the lock held is on the pin directory there now (not on one removed).
    fn holds_lock_on(&self, pins: &crate::maps::pins::Pins) -> bool {
        let held = self.pin_lock.as_ref().and_then(|f| f.metadata().ok());
        let there = std::fs::metadata(pins.dir()).ok();
        held.zip(there).is_some_and(|(a, b)| (a.dev(), a.ino()) == (b.dev(), b.ino()))
    }
}
