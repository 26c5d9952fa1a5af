//! The daemon's side of TAXII pull (`taxii`): each TAXII list's collection is read back from the
//! state directory at start, a refresh pulls what was added since, saves the collection and
//! makes its bundle the list's content. A pull that fails changes nothing.

use super::{
    Daemon,
    state::{load_json, save_json},
};
use crate::sources::taxii::Collection;

impl Daemon {
    /// Reads each TAXII list's collection as last pulled (at start).
    pub(super) fn load_collections(&mut self) {
        for i in 0..self.slots.len() {
            if self.slots[i].cfg.taxii.is_none() {
                continue;
            }
            let c = match self.collection_file(i).map(|p| load_json::<Collection>(&p)) {
                Some(Ok(c)) => c,
                Some(Err(e)) => {
                    let name = &self.slots[i].cfg.name;
                    log::error!("list {name}: {e:#}: pulling the whole collection again");
                    Collection::default()
                }
                None => Collection::default(),
            };
            self.slots[i].collection = Some(c);
        }
    }

    /// Keeps list `i`'s collection after a pull (saved).
    pub(super) fn keep_collection(&mut self, i: usize, c: Collection) {
        if let Some(path) = self.collection_file(i)
            && let Err(e) = save_json(&path, &c)
        {
            log::warn!("list {}: cannot save the collection: {e:#}", self.slots[i].cfg.name);
        }
        self.slots[i].collection = Some(c);
    }

    fn collection_file(&self, i: usize) -> Option<std::path::PathBuf> {
        Some(self.settings.state.as_ref()?.source_file("taxii", &self.slots[i].cfg.name))
    }
}
