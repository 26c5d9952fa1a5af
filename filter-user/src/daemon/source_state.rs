//! Each list's source state in the daemon (a MISP feed's events, a TAXII collection, CrowdSec
//! decisions): read back from the state directory at start, saved after each fetch, and the
//! decisions that end taken out of the maps at that moment.

use super::{Daemon, status::now};
use crate::sources::state::State;

impl Daemon {
    /// Reads each list's saved source state (at start); an unreadable one is said, and the
    /// source is read whole again.
    pub(super) fn load_states(&mut self) {
        for i in 0..self.slots.len() {
            let Some(path) = self.state_file(i) else { continue };
            let kind = self.slots[i].cfg.kind();
            match State::load(&kind, &path, now()) {
                Ok(state) => self.slots[i].state = state,
                Err(e) => {
                    let aside = match crate::sources::files::set_aside(&path) {
                        Ok(p) => format!("kept as {}", p.display()),
                        Err(r) => format!("cannot be moved aside: {r}"),
                    };
                    let name = &self.slots[i].cfg.name;
                    log::error!("list {name}: {e:#} ({aside}): the source is read whole again");
                }
            }
        }
    }

    /// Saves list `i`'s source state, if its kind keeps one.
    pub(super) fn save_state(&self, i: usize) {
        let Some(path) = self.state_file(i) else { return };
        if let Err(e) = self.slots[i].state.save(&path) {
            log::warn!("list {}: cannot save its source's state: {e:#}", self.slots[i].cfg.name);
        }
    }

    /// When something of a source's state ends next (a CrowdSec decision).
    pub(super) fn next_state_end(&self) -> Option<u64> {
        self.slots.iter().filter_map(|s| s.state.next_end()).min()
    }

    /// Takes what ended out of each source's state, and out of its list's content; true when
    /// a list changed.
    pub(super) fn end_state_entries(&mut self) -> bool {
        let mut changed = false;
        for i in 0..self.slots.len() {
            if !self.slots[i].state.expire(now()) {
                continue;
            }
            self.save_state(i);
            let Some((text, _)) = self.slots[i].state.content() else { continue };
            match self.accept(i, &text, None, None) {
                Ok(_) => changed = true,
                Err(e) => log::error!("list {}: {e}", self.slots[i].cfg.name),
            }
        }
        changed
    }

    fn state_file(&self, i: usize) -> Option<std::path::PathBuf> {
        let word = State::file_word(&self.slots[i].cfg.kind())?;
        Some(self.settings.state.as_ref()?.source_file(word, &self.slots[i].cfg.name))
    }
}
