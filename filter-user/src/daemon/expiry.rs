//! Entries that expire: manual entries (read without the ones whose time passed, also while
//! the daemon was down), CrowdSec decisions, and list entries with an end of validity (STIX
//! `valid_until`, MISP decay: the content in force is parsed again, without a fetch), taken
//! out of the maps when their time passes.

use std::time::{Duration, Instant};

use anyhow::Result;

use super::{
    Daemon,
    manual::{self, ManualEntry},
    state::StateDir,
    status::now,
};
use crate::maps::sync::Changes;

/// The daemon schedules no wake-up further than this, so that no sum of times overflows
/// (manual entries have a limit of their own).
pub use crate::clock::FURTHEST;

/// The manual list of `state` without its expired entries (which leave the file too, unless
/// an `add` or `remove` is changing it: it is left to the next read then, which takes them out
/// again).
pub fn read_manual(state: &StateDir) -> Result<Vec<ManualEntry>> {
    let mut entries = manual::load(&state.manual())?;
    let gone = manual::take_expired(&mut entries, now());
    if !gone.is_empty() {
        for e in &gone {
            log::info!(
                "manual entry {} expired ({})",
                e.net,
                super::status::utc(e.expires.unwrap_or(0))
            );
        }
        // Read again under the lock: a change saved since the read above is kept.
        if let Some(_lock) = state.try_lock_manual()? {
            let mut fresh = manual::load(&state.manual())?;
            manual::take_expired(&mut fresh, now());
            manual::save(&state.manual(), &fresh)?;
            return Ok(fresh);
        }
    }
    Ok(entries)
}

impl Daemon {
    /// When the next manual entry, CrowdSec decision or list entry (STIX `valid_until`, MISP
    /// decay) expires.
    pub fn next_expiry(&self) -> Option<Instant> {
        let lists = self.slots.iter().filter_map(|s| s.report.as_ref()?.list.changes_at).min();
        let next = [manual::next_expiry(&self.manual), self.next_state_end(), lists];
        // An end saved by an older build may lie past what an Instant holds: cut it too.
        let secs = next.into_iter().flatten().min()?.min(now().saturating_add(FURTHEST));
        let at = std::time::UNIX_EPOCH + Duration::from_secs(secs);
        Some(Instant::now() + at.duration_since(std::time::SystemTime::now()).unwrap_or_default())
    }

    /// Parses again the content in force of each list with an entry whose validity ended
    /// (no fetch: a server that is down or answers 304 changes nothing); the parse leaves that
    /// entry out. True when a list changed.
    fn end_list_entries(&mut self) -> bool {
        let mut changed = false;
        for i in 0..self.slots.len() {
            let report = self.slots[i].report.as_ref();
            if report.and_then(|r| r.list.changes_at).is_none_or(|t| t > now()) {
                continue;
            }
            let Some(bytes) = self.slots[i].expiring.take() else { continue };
            match self.accept(i, &bytes, None, None) {
                Ok(_) => changed = true,
                Err(e) => log::error!("list {}: {e}", self.slots[i].cfg.name),
            }
        }
        changed
    }

    /// Takes out the manual entries and decisions whose time has passed, if any (re-reading the
    /// manual list, which `takedown add` may have changed since).
    pub fn expire(&mut self) -> Result<Option<Changes>> {
        let mut changed = self.end_state_entries() | self.end_list_entries();
        if manual::next_expiry(&self.manual).is_some_and(|t| t <= now()) {
            match &self.settings.state {
                Some(s) => self.manual = read_manual(s)?,
                None => drop(manual::take_expired(&mut self.manual, now())),
            }
            changed = true;
        }
        if !changed {
            return Ok(None);
        }
        self.reconcile().map(Some)
    }
}
