//! The daemon's side of the connection journal: its writer, started with each filter (a new
//! ring with new maps), and the retroactive exposure check: the entries each change adds are
//! looked up in the journal by one worker thread (checks asked while it works are merged), and
//! every inside host found is logged, counted and marked in the host table.

use std::{
    collections::{BTreeMap, HashSet, VecDeque},
    net::IpAddr,
    sync::mpsc,
};

use anyhow::{Context, Result};

use super::{
    Daemon,
    journal::{
        dir_of,
        exposure::{self, Contact, Exposed, Wanted},
        sides::Sides,
        store::Store,
        writer::{Flusher, Writer},
    },
    status::{ExposureNote, JournalStatus},
};
use crate::{
    maps::{filter::Filter, interface},
    plan::{Plan, diff::Diff},
};

/// The contacts the exposure checks found, by inside host (what says one apart from another):
/// each is said once.
pub type Found = BTreeMap<IpAddr, HashSet<ContactKey>>;

type ContactKey = (IpAddr, &'static str, u16, &'static str);

fn contact_key(c: &Contact) -> ContactKey {
    (c.remote, c.proto, c.port, c.opened_by)
}

/// The journal while it runs.
pub struct Journaling {
    writer: Writer,
    store: Store,
    days: u64,
    sides: Sides,
    /// What the status shows of it (read anew every two seconds, see `take_exposures`).
    pub shown: Option<JournalStatus>,
    /// The latest exposures found, the newest first.
    found: VecDeque<ExposureNote>,
}

/// Exposures the status keeps.
const NOTES: usize = 5;

/// The exposure worker: the networks to look for go in, what it found comes out.
pub struct Lookback {
    ask: mpsc::Sender<(Wanted, Flusher)>,
    found: mpsc::Receiver<Vec<Exposed>>,
}

impl Journaling {
    /// What `takedown status` shows of it.
    fn status(&self) -> JournalStatus {
        let (files, stats) = (self.store.files(), self.writer.stats());
        JournalStatus {
            dir: self.store.dir().display().to_string(),
            days: self.days,
            bytes: files.iter().map(|f| f.bytes).sum(),
            hours: files.len(),
            connections: stats.connections,
            unsided: stats.unsided,
            removed_for_size: stats.removed.by_size,
            dropped: stats.dropped,
            error: stats.error,
            found: self.found.iter().cloned().collect(),
        }
    }
}

/// Has the kernel report new connections into `filter`'s ring (before it is attached: no
/// connection is missed).
pub fn enable(filter: &mut Filter, on: bool) -> Result<()> {
    if on { filter.maps_mut().set_journal(true) } else { Ok(()) }
}

impl Daemon {
    /// True when the configuration asks for the journal.
    pub fn journal_on(&self) -> bool {
        self.settings.config.journal.is_some()
    }

    /// Starts a writer on the loaded filter's ring (the writer of earlier maps writes what it
    /// holds and stops on its own).
    pub fn start_journal(&mut self) -> Result<()> {
        let Some(cfg) = self.settings.config.journal.clone() else { return Ok(()) };
        let state = self.settings.state.as_ref().context(
            "the connection journal needs a state directory (it is kept there), which this run has not",
        )?;
        let store = Store::new(dir_of(state));
        store.make_private()?;
        let sides = match &self.journal {
            Some(j) => j.sides.clone(),
            None => Sides {
                inside: cfg.inside.iter().map(|i| interface::index(i)).collect::<Result<_>>()?,
            },
        };
        let maps = self.filter.as_ref().context("the filter is not loaded")?.maps();
        let (ring, flows) = (maps.journal_ring()?, maps.flow_slots()?);
        let writer = Writer::start(ring, flows, store.clone(), sides.clone(), cfg.clone());
        let found = self.journal.take().map(|j| j.found).unwrap_or_default();
        let (days, shown) = (cfg.days, None);
        self.journal = Some(Journaling { writer, store: store.clone(), days, sides, shown, found });
        if self.lookback.is_none() {
            self.lookback = Some(lookback(store, cfg.days));
        }
        Ok(())
    }

    /// Stops the journal at the daemon's exit: the kernel reports no more (the pinned filter
    /// runs on with no reader), and the writer writes what it holds.
    pub fn stop_journal(&mut self) {
        if let Some(f) = self.filter.as_mut()
            && let Err(e) = f.maps_mut().set_journal(false)
        {
            log::warn!("cannot switch the kernel's connection journal off: {e:#}");
        }
        if let Some(j) = self.journal.take() {
            j.writer.finish();
        }
    }

    /// Looks the entries `new` holds and `old` did not up in the journal, in the background.
    pub fn look_back(&self, old: &Plan, new: &Plan) {
        if self.journal.is_some() {
            self.look_back_at(&Diff::between(old, new));
        }
    }

    /// Looks the entries `diff` adds up in the journal, in the background.
    pub fn look_back_at(&self, diff: &Diff) {
        let (Some(j), Some(l)) = (&self.journal, &self.lookback) else { return };
        let added = Wanted::new(diff.v4.added().chain(diff.v6.added()));
        if !added.is_empty() && l.ask.send((added, j.writer.flusher())).is_err() {
            log::error!(
                "the connection journal's look-back has stopped: new entries are not looked up"
            );
        }
    }

    /// Takes in what the exposure checks found: each contact newly found is logged, and each
    /// host that opened one marked in the host table, written to the new-host log and shown
    /// by `watch` (a host only reached by listed addresses is said apart). The status file is
    /// written when the journal or the exposures changed.
    pub fn take_exposures(&mut self) {
        if self.journal.is_none() {
            return;
        }
        let found: Vec<Exposed> =
            self.lookback.iter().flat_map(|l| l.found.try_iter()).flatten().collect();
        let any = !found.is_empty();
        for e in found {
            let (host, known) = (e.host.to_string(), self.exposed.entry(e.host).or_default());
            // A contact is the same one whatever its count or times now: said once, and not
            // again when the host table holds it (found before a restart).
            let fresh: Vec<Contact> = e
                .contacts
                .into_iter()
                .filter(|c| known.insert(contact_key(c)) && !self.hosts.knows(&host, c))
                .collect();
            if !fresh.is_empty() {
                self.report_exposed(Exposed { host: e.host, contacts: fresh });
            }
        }
        let Some(j) = &mut self.journal else { return };
        let now = j.status();
        let changed = any || j.shown.as_ref() != Some(&now);
        j.shown = Some(now);
        if changed {
            self.save_hosts();
            self.write_status();
        }
    }

    /// Logs a host's contacts newly found; one that opened any is marked in the host table,
    /// written to the new-host log and noted for `watch`.
    fn report_exposed(&mut self, e: Exposed) {
        log::warn!("{}", exposure::describe(&e));
        if !e.talked() {
            return;
        }
        if !self.hosts.mark_exposed(&e) {
            log::warn!("the host table is full of infected hosts: {} is not kept in it", e.host);
        }
        let t = super::now();
        let line = serde_json::json!({"event": "takedown_exposed_host", "time": t, "exposed": e});
        self.append_new_host(&line);
        let Some(j) = &mut self.journal else { return };
        let c = &e.contacts[0];
        j.found.push_front(ExposureNote {
            host: e.host.to_string(),
            remote: c.remote.to_string(),
            more: e.contacts.len() - 1,
            at: t,
        });
        j.found.truncate(NOTES);
    }

    /// Inside hosts found to have opened connections to an address before it was listed (the
    /// host table's, kept across restarts).
    pub fn exposed_hosts(&self) -> usize {
        self.hosts.exposed()
    }
}

impl Drop for Daemon {
    /// Whatever ends the daemon (an error too), the kernel stops reporting to a ring no one
    /// reads, and the writer writes what it holds.
    fn drop(&mut self) {
        self.stop_journal();
    }
}

/// The worker that looks wanted networks up in the journal, one check at a time (those asked
/// meanwhile merged into the next), each after the writer wrote what it held.
fn lookback(store: Store, days: u64) -> Lookback {
    let (ask, asked) = mpsc::channel::<(Wanted, Flusher)>();
    let (tell, found) = mpsc::channel();
    std::thread::spawn(move || {
        while let Ok((mut wanted, mut flusher)) = asked.recv() {
            for (more, f) in asked.try_iter() {
                wanted.merge(more);
                flusher = f;
            }
            flusher.flush();
            let since = super::now().saturating_sub(days * 86_400);
            // One thread: the check runs beside the packets' softirqs on a gateway.
            let (hosts, problems) = exposure::find(&store, since, &wanted, 1);
            problems.iter().for_each(|p| log::warn!("connection journal: {p}"));
            if tell.send(hosts).is_err() {
                return;
            }
        }
    });
    Lookback { ask, found }
}
