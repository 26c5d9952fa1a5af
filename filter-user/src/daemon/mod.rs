//! The daemon: a loop over the layers below. It keeps each list's last good content, refreshes
//! lists (on their interval, SIGHUP or `takedown refresh`), plans them with the manual list and
//! the resolved domains through the one pipeline (`plan::pipeline`), and moves the maps to each
//! new plan with the only writer, `maps::sync` (writes before deletes, never a clear). A list
//! that fails to refresh keeps its last good content, and the failure is reported in the status
//! file, the metrics, the logs and the reply.
//!
//! The folder owns the sources (`source`: files and URLs with their cache), the refresh of one
//! list (`slots`), the state directory (`state`, `status`, `manual`, `hosts`), DNS (`domains`,
//! `resolve`), kernel events (`events`), metrics and the control socket. It may use every
//! layer below; nothing below imports it.

pub mod config;
pub mod control;
pub mod ephemeral;
mod events;
pub mod expiry;
mod fetch;
mod held;
pub mod hosts;
mod jobs;
pub mod journal;
mod journaling;
mod list_config;
pub mod manual;
pub mod metrics;
pub mod metrics_format;
pub mod metrics_http;
mod pin_watch;
mod resolve;
mod serve;
mod slots;
mod source_state;
pub mod state;
pub mod status;

use anyhow::{Context, Result};
pub use resolve::Resolver;
pub use serve::{ServeOptions, Signals, serve};
use slots::Slot;

use self::{
    config::{Config, ListConfig},
    manual::ManualEntry,
    state::StateDir,
    status::{InterfaceStatus, Status, now},
};
use crate::{
    maps::{
        self, Start,
        filter::{Attached, Filter},
        pins::Pins,
        sync::{self, Applied, Changes},
    },
    plan::{
        Meta, Plan,
        pipeline::{self, ListReport, Pipeline, Resolved},
    },
};

/// Gives each interface its counter slot and attaches `filter` to it, and its egress program
/// when configured (replacing the program of a pinned link).
fn attach_to(filter: &mut Filter, config: &Config) -> Result<Vec<(String, Attached)>> {
    let mut out = Vec::new();
    for (i, iface) in config.interfaces.iter().enumerate() {
        filter.set_interface_slot(iface, i as u32 + 1)?;
        out.push((iface.clone(), filter.attach(iface, config.mode.into())?));
        if config.egress {
            filter.attach_egress(iface)?;
        }
    }
    Ok(out)
}

/// Where the daemon keeps things, and how big its maps may be.
pub struct Settings {
    pub config: Config,
    /// None: ephemeral (nothing pinned; detached at exit).
    pub pins: Option<Pins>,
    /// Ephemeral: where its maps are shown to the CLI (maps only, no link: see `ephemeral`).
    pub shown: Option<Pins>,
    /// None: no state (no manual list, cache, status or control socket).
    pub state: Option<StateDir>,
    pub max_entries: u32,
}

pub struct Daemon {
    pub settings: Settings,
    slots: Vec<Slot>,
    pipeline: Pipeline,
    manual: Vec<ManualEntry>,
    resolved: Vec<Resolved>,
    filter: Option<Filter>,
    applied: Plan,
    client: Option<reqwest::Client>,
    /// The client of sources that send credentials (same-origin redirects only).
    keyed: Option<reqwest::Client>,
    interfaces: Vec<InterfaceStatus>,
    started: u64,
    hosts: hosts::HostTable,
    /// Bumped each time the filter moves to new maps (its event ring buffer is a new one).
    generation: u64,
    /// The metrics endpoint's URL, or why it could not be served.
    pub metrics: Option<Result<String, String>>,
    /// The lock on the pin directory (taken anew when the daemon pins again a directory
    /// removed under it: no second daemon may take those pins over).
    pin_lock: Option<std::fs::File>,
    /// Standing warnings by kind (see `pin_watch`), shown by `takedown status`.
    warnings: std::collections::BTreeMap<&'static str, String>,
    /// The connection journal, when on, and its exposure worker.
    journal: Option<journaling::Journaling>,
    lookback: Option<journaling::Lookback>,
    /// Inside hosts that contacted an address before it was listed.
    exposed: journaling::Found,
}

impl Daemon {
    /// Reads the allowlist, own addresses, manual list and every list. A list whose source
    /// fails or whose new content is refused starts with its cached copy; one that cannot be
    /// loaded at all (no cached copy either) is reported and retried, and the others start;
    /// only when no list loads does it fail. Touches no map.
    pub async fn new(settings: Settings) -> Result<Self> {
        let pin_lock = settings.pins.as_ref().map(Pins::lock).transpose()?;
        let cfg = &settings.config;
        let specs = cfg.specs()?;
        let pipeline = cfg.pipeline()?;
        let manual = match &settings.state {
            Some(s) => expiry::read_manual(s)?,
            None => vec![],
        };
        cfg.enabled().filter_map(ListConfig::insecure_warning).for_each(|w| log::warn!("{w}"));
        let needs_http = cfg.enabled().any(|l| l.kind().is_remote());
        let client =
            needs_http.then(|| crate::sources::http::client(&Default::default())).transpose()?;
        let keyed = cfg.enabled().any(|l| l.kind().has_credentials());
        let keyed =
            keyed.then(|| crate::sources::http::keyed_client(&Default::default())).transpose()?;
        let hosts = match &settings.state {
            Some(s) => hosts::HostTable::load(&s.hosts_file(), cfg.report.max_hosts),
            None => hosts::HostTable::new(cfg.report.max_hosts),
        };
        let slots = cfg.enabled().zip(specs).enumerate();
        let slots = slots.map(|(i, (l, spec))| Slot::new(l.clone(), spec, i as u32)).collect();
        let mut d = Daemon {
            settings,
            slots,
            pipeline,
            manual,
            resolved: vec![],
            filter: None,
            applied: Plan::default(),
            client,
            keyed,
            interfaces: vec![],
            started: now(),
            hosts,
            generation: 0,
            metrics: None,
            pin_lock,
            warnings: Default::default(),
            journal: None,
            lookback: None,
            exposed: Default::default(),
        };
        d.load_states();
        d.load_lists().await?;
        Ok(d)
    }

    /// Loads every list at start; a list that cannot load (and holds nothing pinned) is said
    /// and retried, unless none loads at all.
    async fn load_lists(&mut self) -> Result<()> {
        let mut failures = Vec::new();
        for i in 0..self.slots.len() {
            if let Err(e) = self.load_slot(i, true).await {
                let s = &self.slots[i];
                let what = format!("list {} ({}): {e}", s.cfg.name, s.cfg.source());
                match s.report {
                    Some(_) => log::error!("{what}"),
                    None => failures.push((i, what)),
                }
            }
        }
        // A list with nothing to load keeps what the pinned filter holds for it.
        let failed: Vec<usize> = failures.iter().map(|f| f.0).collect();
        let holding = self.hold_pinned_entries(&failed);
        let failures: Vec<String> =
            failures.into_iter().filter(|f| !holding.contains(&f.0)).map(|f| f.1).collect();
        if failures.len() == self.slots.len() {
            anyhow::bail!("no list could be loaded: {}", failures.join("; "));
        }
        for f in &failures {
            log::error!(
                "{f}; starting without it, retried until it loads (every minute, or its refresh \
                 interval when shorter)"
            );
        }
        Ok(())
    }

    /// The lists' reports (content in force).
    pub fn reports(&self) -> impl Iterator<Item = &ListReport> + Clone {
        self.slots.iter().filter_map(|s| s.report.as_ref())
    }

    /// The allowlist, own addresses and guards every list is planned with.
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// Every domain named by a list.
    pub fn domain_names(&self) -> Vec<(String, Meta)> {
        pipeline::domains_of(self.reports())
    }

    /// New addresses for the domains (applied at the next reconcile).
    pub fn set_resolved(&mut self, resolved: Vec<Resolved>) {
        self.resolved = resolved;
    }

    /// The plan for the current lists, domains and manual entries.
    pub fn plan(&self) -> Plan {
        let manual = self.manual.iter().map(|e| (e.net, e.meta()));
        let held = self.slots.iter().flat_map(|s| s.held.iter().copied());
        self.pipeline.plan(self.reports(), &self.resolved, manual.chain(held))
    }

    /// Loads the program with maps holding `plan`: new ones, or pinned ones adopted (writing
    /// only the difference) or migrated. Returns how it started and what was written.
    pub fn load(&mut self, plan: Plan) -> Result<(Start, Changes)> {
        // The lists' bits are saved before the maps change: whatever ends this start, the
        // status names the bits the pinned maps were last written with (see `held`).
        self.write_status();
        let pins = self.settings.pins.as_ref();
        let maps::Started { mut filter, start, changes, held, diff } =
            maps::start(pins, &plan, self.settings.max_entries, self.journal_on())?;
        journaling::enable(&mut filter, self.journal_on())?;
        if let Some(shown) = &self.settings.shown
            && let Err(e) = filter.maps().pin(shown)
        {
            let at = shown.dir().display();
            log::warn!("the CLI cannot reach this ephemeral run (no maps shown at {at}): {e:#}");
        }
        let r = &self.settings.config.report;
        filter.maps_mut().set_event_rate(r.event_rate, r.event_burst)?;
        self.filter = Some(filter);
        self.applied = plan;
        self.start_journal()?;
        // What a pinned filter held was listed before: only what this start adds is looked up
        // in the journal.
        match diff {
            Some(diff) => self.look_back_at(&diff),
            None => self.look_back(&held.unwrap_or_default(), &self.applied),
        }
        Ok((start, changes))
    }

    /// Attaches to every configured interface; unpins interfaces no longer configured.
    pub fn attach(&mut self) -> Result<Vec<(String, Attached)>> {
        let cfg = &self.settings.config;
        let filter = self.filter.as_mut().context("the filter is not loaded")?;
        let out = attach_to(filter, cfg)?;
        let egress = if cfg.egress { ", tc egress" } else { "" };
        for (iface, got) in &out {
            let mode = format!("{got}{egress}");
            self.interfaces.push(InterfaceStatus { name: iface.clone(), mode });
        }
        if let Some(p) = &self.settings.pins {
            for iface in p.linked_interfaces().into_iter().filter(|i| !cfg.interfaces.contains(i)) {
                p.unpin_link(&iface)?;
                log::info!("detached from {iface} (no longer configured)");
            }
            let keep = |i: &String| cfg.egress && cfg.interfaces.contains(i);
            for iface in p.egress_interfaces().into_iter().filter(|i| !keep(i)) {
                p.unpin_egress(&iface)?;
                log::info!("tc egress detached from {iface} (no longer configured)");
            }
        }
        Ok(out)
    }

    /// What the maps hold now (the last plan applied).
    pub fn applied(&self) -> &Plan {
        &self.applied
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
    /// (nothing is deleted before every write is done), and what they hold is read back, so
    /// that the next reconcile starts from the truth. A plan the maps cannot hold moves the
    /// filter to larger maps (pinned filters only).
    pub fn reconcile(&mut self) -> Result<Changes> {
        let plan = self.plan();
        let filter = self.filter.as_mut().context("the filter is not loaded")?;
        let caps = filter.maps().capacities()?;
        match sync::apply_within(&mut filter.maps_mut().addr, &self.applied, &plan, &caps) {
            Ok(Applied::Done(ch, diff)) => {
                self.applied = plan;
                self.look_back_at(&diff);
                self.write_status();
                Ok(ch)
            }
            Ok(Applied::Overflow(o)) => self.grow(plan, format!("the {o}")),
            Err(e) => {
                if let Ok(held) = filter.maps().plan() {
                    self.applied = held;
                }
                Err(e)
            }
        }
    }

    /// Moves the filter to new maps holding `plan`, without a gap: filled, pinned over the old
    /// ones, then the program is replaced through each pinned link.
    fn grow(&mut self, plan: Plan, why: String) -> Result<Changes> {
        let Some(pins) = self.settings.pins.clone() else {
            anyhow::bail!("{why}: restart takedown to size the maps anew (it runs --ephemeral)");
        };
        let mut filter = maps::grow(&pins, &plan, self.settings.max_entries, self.journal_on())?;
        let r = &self.settings.config.report;
        filter.maps_mut().set_event_rate(r.event_rate, r.event_burst)?;
        journaling::enable(&mut filter, self.journal_on())?;
        attach_to(&mut filter, &self.settings.config)?;
        log::warn!("{why}: moved to new maps ({})", crate::words::entries(plan.len()));
        self.filter = Some(filter);
        self.generation += 1;
        let written = plan.len();
        let old = std::mem::replace(&mut self.applied, plan);
        self.start_journal()?;
        self.look_back(&old, &self.applied);
        self.write_status();
        Ok(Changes { written, deleted: 0 })
    }

    /// Bumped each time the filter moves to new maps.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Re-reads the manual list from disk and applies it.
    pub fn reload_manual(&mut self) -> Result<Changes> {
        if let Some(s) = &self.settings.state {
            self.manual = expiry::read_manual(s)?;
        }
        self.reconcile()
    }

    /// The daemon's state as `takedown status` and the metrics show it.
    pub fn status(&self) -> Status {
        let pins = self.settings.pins.as_ref().or(self.settings.shown.as_ref());
        Status {
            pid: std::process::id(),
            started: self.started,
            updated: now(),
            pin_dir: pins.map(|p| p.dir().display().to_string()).unwrap_or_default(),
            program_id: self.filter.as_ref().and_then(Filter::program_id),
            interfaces: self.interfaces.clone(),
            lists: self.slots.iter().map(|s| s.status.clone()).collect(),
            manual_entries: self.manual.len(),
            domains: self.resolved.iter().map(|r| (r.addr.to_string(), r.names.clone())).collect(),
            metrics: self.metrics.clone(),
            warnings: self.warnings.values().cloned().collect(),
            journal: self.journal.as_ref().and_then(|j| j.shown.clone()),
            exposed_hosts: self.exposed_hosts(),
        }
    }

    /// Writes the status file (when there is a state directory).
    pub fn write_status(&self) {
        let Some(state) = &self.settings.state else { return };
        if let Err(e) = self.status().write(&state.status_file()) {
            log::warn!("cannot write the status file: {e:#}");
        }
    }
}
