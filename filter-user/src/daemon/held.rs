//! The pinned filter as the last good state of a list: a list that has neither a usable source
//! nor a cached copy at start (a corrupt state file while the CrowdSec Local API is down, a
//! damaged cache while the server is down) keeps the entries the pinned filter holds for it,
//! instead of losing them, until it loads.

use super::{Daemon, status::Status};
use crate::{
    maps::{
        FilterMaps,
        version::{self, Pinned},
    },
    plan::Meta,
};

impl Daemon {
    /// For each list in `failed` (no content at start), the entries the pinned filter holds
    /// for it (its bit of the daemon before, by name, from the status it left); returns the
    /// lists that hold some.
    pub(super) fn hold_pinned_entries(&mut self, failed: &[usize]) -> Vec<usize> {
        let (Some(pins), Some(state)) = (&self.settings.pins, &self.settings.state) else {
            return Vec::new();
        };
        let Some(before) = Status::read(&state.status_file()) else { return Vec::new() };
        if !matches!(version::pinned(pins), Pinned::Current) {
            return Vec::new();
        }
        let Ok(plan) = FilterMaps::open(pins).and_then(|m| m.plan()) else { return Vec::new() };
        let mut holding = Vec::new();
        for &i in failed {
            let slot = &self.slots[i];
            let Some(old) = before.lists.iter().find(|l| l.name == slot.cfg.name) else { continue };
            let (bit, new) = (1u64 << old.bit, 1u64 << slot.bit);
            let held: Vec<_> = plan
                .nets()
                .filter(|(_, m)| m.lists & bit != 0)
                .map(|(net, m)| (net, Meta { flags: m.flags, lists: new }))
                .collect();
            if held.is_empty() {
                continue;
            }
            let name = &slot.cfg.name;
            let what = format!(
                "holding the {} the pinned filter has for it (its last good state) until it loads",
                crate::words::entries(held.len())
            );
            log::warn!("list {name}: no usable source and no cached copy: {what}");
            let slot = &mut self.slots[i];
            slot.status.message = format!("{}; {what}", slot.status.message);
            slot.status.entries = held.len();
            slot.held = held;
            holding.push(i);
        }
        holding
    }
}
