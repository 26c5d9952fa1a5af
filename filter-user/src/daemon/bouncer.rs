//! The daemon's side of CrowdSec bouncer mode (`crowdsec`): a CrowdSec list's refresh polls the
//! decision stream, its decisions are saved in the state directory after each change and read
//! back at start, and a decision leaves the maps when its duration ends.

use super::{
    Daemon,
    state::{load_json, save_json},
    status::now,
};
use crate::sources::crowdsec::{Decisions, Skipped};

impl Daemon {
    /// Reads each CrowdSec list's saved decisions (at start), without those that ended.
    pub(super) fn load_decisions(&mut self) {
        for i in 0..self.slots.len() {
            if self.slots[i].cfg.crowdsec.is_none() {
                continue;
            }
            let mut d = match self.decisions_file(i).map(|p| load_json::<Decisions>(&p)) {
                Some(Ok(d)) => d,
                Some(Err(e)) => {
                    log::error!(
                        "list {}: {e:#}: starting from no decision",
                        self.slots[i].cfg.name
                    );
                    Decisions::default()
                }
                None => Decisions::default(),
            };
            d.expire(now());
            self.slots[i].decisions = Some(d);
        }
    }

    /// Keeps list `i`'s decisions after a poll (saved), and says which were not taken.
    pub(super) fn keep_decisions(&mut self, i: usize, mut decisions: Decisions, skipped: &Skipped) {
        // Decisions that ended while the poll ran stay ended.
        decisions.expire(now());
        self.slots[i].decisions = Some(decisions);
        let name = &self.slots[i].cfg.name;
        if !skipped.is_empty() {
            let n: usize = skipped.values().map(|(n, _)| n).sum();
            let each: Vec<String> = skipped
                .iter()
                .map(|(why, (n, first))| format!("{n} {why} (first {first:?})"))
                .collect();
            log::info!(
                "list {name}: {n} decisions not taken (takedown enforces ban decisions on Ip and \
                 Range): {}",
                each.join(", ")
            );
        }
        self.save_decisions(i);
    }

    /// When the next CrowdSec decision ends.
    pub(super) fn next_decision_end(&self) -> Option<u64> {
        self.slots.iter().filter_map(|s| s.decisions.as_ref()?.next_expiry()).min()
    }

    /// Takes ended decisions out of each CrowdSec list's content; true when one ended.
    pub(super) fn end_decisions(&mut self) -> bool {
        let mut changed = false;
        for i in 0..self.slots.len() {
            let Some(d) = self.slots[i].decisions.as_mut() else { continue };
            if !d.expire(now()) {
                continue;
            }
            let text = d.text();
            self.save_decisions(i);
            match self.accept(i, text.as_bytes(), None, None) {
                Ok(_) => changed = true,
                Err(e) => log::error!("list {}: {e}", self.slots[i].cfg.name),
            }
        }
        changed
    }

    fn decisions_file(&self, i: usize) -> Option<std::path::PathBuf> {
        Some(self.settings.state.as_ref()?.source_file("crowdsec", &self.slots[i].cfg.name))
    }

    fn save_decisions(&self, i: usize) {
        let (Some(path), Some(d)) = (self.decisions_file(i), &self.slots[i].decisions) else {
            return;
        };
        if let Err(e) = save_json(&path, d) {
            log::warn!("list {}: cannot save the decisions: {e:#}", self.slots[i].cfg.name);
        }
    }
}
