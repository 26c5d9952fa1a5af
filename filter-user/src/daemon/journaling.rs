//! The daemon's side of the connection journal: its writer started with each filter (a new
//! ring with new maps), and the retroactive exposure check: the entries each change adds are
//! looked up in the journal on a thread of their own, and every inside host that contacted
//! one before it was listed is logged, counted and kept in the status.

use std::{collections::BTreeMap, net::IpAddr, sync::mpsc};

use anyhow::{Context, Result};

use super::{
    Daemon,
    journal::{
        dir_of,
        exposure::{self, Exposed, Wanted},
        sides::Sides,
        store::Store,
        writer::Writer,
    },
    status::utc,
};
use crate::{maps::interface, plan::Plan};

/// What the exposure checks found, by inside host: the contacts, the latest first.
pub type Found = BTreeMap<IpAddr, Exposed>;

/// The journal while it runs.
pub struct Journaling {
    pub writer: Writer,
    pub store: Store,
    pub days: u64,
    /// Results of exposure checks still running.
    found: (mpsc::Sender<Vec<Exposed>>, mpsc::Receiver<Vec<Exposed>>),
    /// What the status file shows of it.
    shown: Option<super::status::JournalStatus>,
}

impl Journaling {
    /// What `takedown status` shows of it.
    pub fn status(&self) -> super::status::JournalStatus {
        let (files, stats) = (self.store.files(), self.writer.stats());
        super::status::JournalStatus {
            dir: self.store.dir().display().to_string(),
            days: self.days,
            bytes: files.iter().map(|f| f.bytes).sum(),
            hours: files.len(),
            connections: stats.connections,
            unsided: stats.unsided,
            removed_for_size: stats.removed.by_size,
            error: stats.error,
        }
    }
}

impl Daemon {
    /// True when the configuration asks for the journal.
    pub fn journal_on(&self) -> bool {
        self.settings.config.journal.is_some()
    }

    /// Switches the kernel's journal on in the loaded filter and starts a writer on its ring
    /// (the one of earlier maps, if any, stops after writing what it holds).
    pub fn start_journal(&mut self) -> Result<()> {
        let Some(cfg) = self.settings.config.journal.clone() else { return Ok(()) };
        let state = self.settings.state.as_ref().context(
            "the connection journal needs a state directory (it is kept there), which this run has not",
        )?;
        let filter = self.filter.as_mut().context("the filter is not loaded")?;
        filter.maps_mut().set_journal(true)?;
        let ring = filter.maps().journal_ring()?;
        let inside = cfg.inside.iter().map(|i| interface::index(i)).collect::<Result<Vec<_>>>()?;
        let store = Store::new(dir_of(state));
        let (days, found) = (cfg.days, mpsc::channel());
        self.journal = None; // the old writer flushes before the new one starts
        let writer = Writer::start(ring, store.clone(), Sides { inside }, cfg);
        self.journal = Some(Journaling { writer, store, days, found, shown: None });
        Ok(())
    }

    /// Looks the entries `new` holds and `old` did not up in the journal, in the background.
    pub fn look_back(&self, old: &Plan, new: &Plan) {
        let Some(j) = &self.journal else { return };
        let added = added(old, new);
        if added.is_empty() {
            return;
        }
        let (store, flusher, tx) = (j.store.clone(), j.writer.flusher(), j.found.0.clone());
        let since = super::now().saturating_sub(j.days * 86_400);
        std::thread::spawn(move || {
            flusher.flush();
            let (found, problems) = exposure::find(&store, since, &added);
            problems.iter().for_each(|p| log::warn!("connection journal: {p}"));
            let _ = tx.send(found);
        });
    }

    /// Takes in what the exposure checks found: each inside host newly found is logged. The
    /// status file is written when the journal or the exposures changed.
    pub fn take_exposures(&mut self) {
        let Some(j) = &mut self.journal else { return };
        let found: Vec<Exposed> = j.found.1.try_iter().flatten().collect();
        let now = j.status();
        let changed = !found.is_empty() || j.shown.as_ref() != Some(&now);
        j.shown = Some(now);
        for e in found {
            let new = !self.exposed.contains_key(&e.host);
            if new && let Some(c) = e.contacts.first() {
                log::warn!(
                    "exposed host {} contacted {} ({}, now listed) before it was listed: {} \
                     connection(s), {}/{}, first {}, last {}",
                    e.host,
                    c.remote,
                    c.entry,
                    c.count,
                    c.proto,
                    c.port,
                    utc(c.first),
                    utc(c.last)
                );
            }
            self.exposed.insert(e.host, e);
        }
        if changed {
            self.write_status();
        }
    }

    /// Inside hosts found to have contacted an address before it was listed.
    pub fn exposed_hosts(&self) -> usize {
        self.exposed.len()
    }
}

/// The networks of `new` that `old` does not hold.
fn added(old: &Plan, new: &Plan) -> Wanted {
    let held: std::collections::HashSet<ipnet::IpNet> = old.nets().map(|(n, _)| n).collect();
    Wanted::new(new.nets().map(|(n, _)| n).filter(|n| !held.contains(n)))
}
