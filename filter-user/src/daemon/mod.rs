//! The daemon: a loop over the library's stages. It keeps each list's last good content,
//! refreshes lists (on their interval, SIGHUP or `takedown refresh`), and moves the maps to
//! each new plan with the only writer, `sync` (inserts before deletes, never a clear). A list
//! that fails to refresh (unreachable, malformed, too small, shrunk by half) keeps its last good
//! content, and the failure is reported in the status file, the logs and the reply.

mod lists;
mod serve;

use std::{net::IpAddr, path::PathBuf, time::Instant};

use anyhow::{Context, Result, bail};
use filter_common::MAX_LISTS;
use ipnet::IpNet;
pub use serve::{ServeOptions, serve};

use crate::{
    config::{Config, ListConfig},
    control::RefreshResult,
    filter::{Attached, Capacities, Filter},
    guards::GuardOptions,
    lists::{self as listfmt, ListOptions},
    manual::{self, ManualEntry},
    pins::Pins,
    plan::{Meta, Plan},
    prepare::{self, ListReport, Resolved},
    read,
    source::{Cache, CacheMeta},
    state::StateDir,
    status::{InterfaceStatus, ListStatus, Status, now},
    sync::{self, Changes},
};

/// Where the daemon keeps things, and how big its maps may be.
pub struct Settings {
    pub config: Config,
    /// None: ephemeral (nothing pinned; detached at exit).
    pub pins: Option<Pins>,
    /// None: no state (no manual list, cache, status or control socket).
    pub state: Option<StateDir>,
    pub max_entries: u32,
}

/// One configured list and its last good content.
pub struct Slot {
    pub cfg: ListConfig,
    pub bit: u32,
    pub report: Option<ListReport>,
    pub status: ListStatus,
    /// Validators of the cached copy (URL lists).
    pub cached: Option<CacheMeta>,
    /// When its next scheduled refresh is due.
    pub next: Option<Instant>,
    /// Refreshes that succeeded and failed, and how long the last one took.
    pub refreshed_ok: u64,
    pub refreshed_failed: u64,
    pub last_duration: f64,
}

pub struct Daemon {
    pub settings: Settings,
    pub slots: Vec<Slot>,
    allow: Vec<IpNet>,
    pub own: Vec<IpAddr>,
    manual: Vec<ManualEntry>,
    resolved: Vec<Resolved>,
    filter: Option<Filter>,
    applied: Plan,
    client: Option<reqwest::Client>,
    interfaces: Vec<InterfaceStatus>,
    started: u64,
    pub hosts: crate::hosts::HostTable,
}

impl Daemon {
    /// Reads the allowlist, own addresses, manual list and every list (failing on a list that
    /// cannot be loaded at all, with no cached copy either). Touches no map.
    pub async fn new(settings: Settings) -> Result<Self> {
        let cfg = &settings.config;
        let settings_max_hosts = cfg.report.max_hosts;
        let enabled: Vec<ListConfig> = cfg.enabled().cloned().collect();
        if enabled.len() >= MAX_LISTS {
            bail!(
                "at most {} lists can be loaded at once, {} configured",
                MAX_LISTS - 1,
                enabled.len()
            );
        }
        let mut allow = Vec::new();
        for path in &cfg.allow {
            let l = listfmt::parse_file(path, &ListOptions::default())?;
            allow.extend(l.entries.iter().map(|e| e.net));
        }
        let own = if cfg.guards.block_own { vec![] } else { crate::own::addresses()? };
        allow.extend(own.iter().map(|a| IpNet::from(*a)));
        let manual = match &settings.state {
            Some(s) => manual::load(&s.manual())?,
            None => vec![],
        };
        let needs_http = enabled.iter().any(|l| l.url.is_some());
        let client = needs_http.then(|| crate::source::client(&Default::default())).transpose()?;
        let slots = enabled
            .into_iter()
            .enumerate()
            .map(|(i, cfg)| Slot {
                status: ListStatus {
                    name: cfg.name.clone(),
                    bit: i as u32,
                    source: cfg.source(),
                    refresh: cfg.refresh,
                    ..Default::default()
                },
                bit: i as u32,
                cfg,
                report: None,
                cached: None,
                next: None,
                refreshed_ok: 0,
                refreshed_failed: 0,
                last_duration: 0.0,
            })
            .collect();
        let mut d = Daemon {
            settings,
            slots,
            allow,
            own,
            manual,
            resolved: vec![],
            filter: None,
            applied: Plan::default(),
            client,
            interfaces: vec![],
            started: now(),
            hosts: crate::hosts::HostTable::new(settings_max_hosts),
        };
        if let Some(s) = &d.settings.state {
            d.hosts =
                crate::hosts::HostTable::load(&s.hosts_file(), d.settings.config.report.max_hosts);
        }
        for i in 0..d.slots.len() {
            d.load_slot(i, true).await.map_err(|e| {
                let s = &d.slots[i].cfg;
                anyhow::anyhow!("list {} ({}): {e}", s.name, s.source())
            })?;
        }
        Ok(d)
    }

    fn guards(&self) -> GuardOptions {
        let g = self.settings.config.guards;
        GuardOptions { force_broad: g.force_broad, allow_special: g.allow_special }
    }

    fn cache(&self) -> Option<Cache> {
        self.settings.state.as_ref().map(|s| Cache::new(s.cache_dir()))
    }

    /// The lists' reports (content in force).
    pub fn reports(&self) -> impl Iterator<Item = &ListReport> {
        self.slots.iter().filter_map(|s| s.report.as_ref())
    }

    /// Every domain named by a list.
    pub fn domain_names(&self) -> Vec<(String, Meta)> {
        prepare::domains_of(self.reports())
    }

    /// New addresses for the domains (applied at the next reconcile).
    pub fn set_resolved(&mut self, resolved: Vec<Resolved>) {
        self.resolved = resolved;
    }

    /// The plan for the current lists, domains and manual entries.
    pub fn plan(&self) -> Plan {
        let lists = self.reports().flat_map(ListReport::entries);
        let domains = prepare::guard_resolved(&self.resolved, self.guards());
        let manual = self.manual.iter().map(|e| (e.net, e.meta()));
        Plan::build(lists.chain(domains).chain(manual), &self.allow)
    }

    /// Loads the program; adopts pinned maps (writing only the difference) or fills new ones.
    /// Returns the entries held before (None: new maps) and what was written.
    pub fn load(&mut self, plan: Plan) -> Result<(Option<usize>, Changes)> {
        let pins = self.settings.pins.as_ref();
        let adopting = pins.is_some_and(Pins::has_maps);
        let caps = Capacities::for_plan(&plan, self.settings.max_entries)?;
        let mut filter = Filter::load_pinned(&caps, pins)?;
        let (held, changes) = if adopting {
            let get = |n: &str| read::map(filter.ebpf(), n);
            read::capacities(get)?.check_fits(&plan)?;
            let held = read::plan(get)?;
            let ch = sync::apply(filter.ebpf_mut(), &held, &plan)?;
            (Some(held.len()), ch)
        } else {
            sync::fill(filter.ebpf_mut(), &plan)?;
            (None, Changes { written: plan.len(), deleted: 0 })
        };
        let r = &self.settings.config.report;
        filter.set_event_rate(r.event_rate, r.event_burst)?;
        self.filter = Some(filter);
        self.applied = plan;
        Ok((held, changes))
    }

    /// Attaches to every configured interface; unpins interfaces no longer configured.
    pub fn attach(&mut self) -> Result<Vec<(String, Attached)>> {
        let ifaces = self.settings.config.interfaces.clone();
        let mode = self.settings.config.mode.into();
        let filter = self.filter.as_mut().context("the filter is not loaded")?;
        let mut out = Vec::new();
        for (i, iface) in ifaces.iter().enumerate() {
            filter.set_interface_slot(iface, i as u32 + 1)?;
            let got = filter.attach(iface, mode)?;
            self.interfaces.push(InterfaceStatus { name: iface.clone(), mode: got.to_string() });
            out.push((iface.clone(), got));
        }
        if let Some(p) = &self.settings.pins {
            for iface in p.linked_interfaces().into_iter().filter(|i| !ifaces.contains(i)) {
                p.unpin_link(&iface)?;
                log::info!("detached from {iface} (no longer configured)");
            }
        }
        Ok(out)
    }

    /// Takes the event ring buffer out of the loaded filter, for the event reader.
    pub fn take_events(&mut self) -> Option<aya::maps::RingBuf<aya::maps::MapData>> {
        let map = self.filter.as_mut()?.ebpf_mut().take_map(filter_common::MAP_EVENTS)?;
        aya::maps::RingBuf::try_from(map).ok()
    }

    /// What the maps hold now (the last plan applied).
    pub fn applied(&self) -> &Plan {
        &self.applied
    }

    /// The name of list bit `bit`.
    pub fn list_name(&self, bit: u32) -> String {
        if bit == 63 {
            return crate::manual::MANUAL.into();
        }
        self.slots
            .iter()
            .find(|s| s.bit == bit)
            .map_or_else(|| format!("list#{bit}"), |s| s.cfg.name.clone())
    }

    /// Adds kernel events to the host table; logs each new host as one JSON line when asked.
    pub fn record_events(&mut self, events: &[filter_common::Event]) {
        let names: Vec<String> = (0..64).map(|b| self.list_name(b)).collect();
        let lists = |bits: u64| {
            (0..64).filter(|b| bits & (1u64 << b) != 0).map(|b| names[b as usize].clone()).collect()
        };
        let interface = |index: u32| {
            let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
            // SAFETY: `buf` has room for IF_NAMESIZE bytes, as if_indextoname requires.
            let p = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
            if p.is_null() {
                format!("if{index}")
            } else {
                // SAFETY: if_indextoname wrote a NUL-terminated name into `buf`.
                unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned()
            }
        };
        let named = crate::hosts::Names { lists: &lists, interface: &interface };
        let t = now();
        for ev in events {
            if let Some(host) = self.hosts.record(ev, t, &named) {
                log::warn!(
                    "new infected host {} contacted {}",
                    host.address,
                    host.contacted.iter().next().map_or("", |s| s.as_str())
                );
                if let Some(path) = &self.settings.config.report.new_host_log {
                    let line = serde_json::json!({"event": "takedown_infected_host", "time": t, "host": host});
                    let written =
                        std::fs::OpenOptions::new().create(true).append(true).open(path).and_then(
                            |mut f| {
                                std::io::Write::write_all(&mut f, format!("{line}\n").as_bytes())
                            },
                        );
                    if let Err(e) = written {
                        log::warn!("cannot append to {}: {e}", path.display());
                    }
                }
            }
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

    /// The loaded filter.
    pub fn filter(&self) -> Option<&Filter> {
        self.filter.as_ref()
    }

    /// Unloads (ephemeral: detaches from every interface).
    pub fn unload(&mut self) {
        self.filter = None;
    }

    /// Moves the maps to the current plan. On failure the maps keep at least the old entries
    /// (nothing is deleted before every insert is done), and what they hold is read back, so
    /// that the next reconcile starts from the truth.
    pub fn reconcile(&mut self) -> Result<Changes> {
        let plan = self.plan();
        let filter = self.filter.as_mut().context("the filter is not loaded")?;
        read::capacities(|n| read::map(filter.ebpf(), n))?.check_fits(&plan)?;
        match sync::apply(filter.ebpf_mut(), &self.applied, &plan) {
            Ok(ch) => {
                self.applied = plan;
                self.write_status();
                Ok(ch)
            }
            Err(e) => {
                if let Ok(held) = read::plan(|n| read::map(filter.ebpf(), n)) {
                    self.applied = held;
                }
                Err(e)
            }
        }
    }

    /// Refreshes one list (or all) and applies the result; one result a list.
    pub async fn refresh(&mut self, name: Option<&str>) -> Result<Vec<RefreshResult>> {
        let picked: Vec<usize> = (0..self.slots.len())
            .filter(|&i| name.is_none_or(|n| self.slots[i].cfg.name == n))
            .collect();
        if picked.is_empty() {
            bail!("no list named {:?}", name.unwrap_or_default());
        }
        let mut results = Vec::new();
        for i in picked {
            let r = self.load_slot(i, false).await;
            let s = &self.slots[i];
            results.push(RefreshResult {
                list: s.cfg.name.clone(),
                ok: r.is_ok(),
                message: s.status.message.clone(),
            });
        }
        let ch = self.reconcile()?;
        log::info!("refresh applied: {} written, {} deleted", ch.written, ch.deleted);
        Ok(results)
    }

    /// Re-reads the manual list from disk and applies it.
    pub fn reload_manual(&mut self) -> Result<Changes> {
        if let Some(s) = &self.settings.state {
            self.manual = manual::load(&s.manual())?;
        }
        self.reconcile()
    }

    /// Writes the status file (when there is a state directory).
    pub fn write_status(&self) {
        let Some(state) = &self.settings.state else { return };
        let status = Status {
            pid: std::process::id(),
            started: self.started,
            updated: now(),
            pin_dir: self
                .settings
                .pins
                .as_ref()
                .map(|p| p.dir().display().to_string())
                .unwrap_or_default(),
            program_id: self.filter.as_ref().and_then(Filter::program_id),
            interfaces: self.interfaces.clone(),
            lists: self.slots.iter().map(|s| s.status.clone()).collect(),
            manual_entries: self.manual.len(),
            domains: self.resolved.iter().map(|r| (r.addr.to_string(), r.names.clone())).collect(),
        };
        if let Err(e) = status.write(&state.status_file()) {
            log::warn!("cannot write the status file: {e:#}");
        }
    }

    /// The state directory's path, if any.
    pub fn state_dir(&self) -> Option<PathBuf> {
        self.settings.state.as_ref().map(|s| s.dir().to_path_buf())
    }
}
