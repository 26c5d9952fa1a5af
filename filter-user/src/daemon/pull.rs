//! The daemon's side of TAXII pull (`taxii`): each TAXII list's collection is read back from the
//! state directory at start, a refresh pulls what was added since, saves the collection and
//! makes its bundle the list's content. A pull that fails changes nothing.

use super::{
    Daemon,
    slots::Got,
    state::{load_json, save_json},
    status::now,
};
use crate::sources::{
    http::CacheMeta,
    taxii::{Collection, Source},
};

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

    /// One pull of list `i`'s collection; the content is all of it, as a bundle.
    pub(super) async fn pull_taxii(&mut self, i: usize, source: &Source) -> Result<Got, String> {
        let client = self.keyed.clone().ok_or("no HTTP client")?;
        let cfg = &self.slots[i].cfg;
        let (timeout, max) = (std::time::Duration::from_secs(cfg.timeout), cfg.max_bytes);
        let mut c = self.slots[i].collection.take().unwrap_or_default();
        let added = match c.pull(&client, source, timeout, max).await {
            Ok(n) => n,
            Err(e) => {
                // A failed pull changed nothing: the collection stays, and no bundle is made.
                self.slots[i].collection = Some(c);
                return Err(format!("{e:#}"));
            }
        };
        log::info!("list {}: {added} objects pulled", self.slots[i].cfg.name);
        if let Some(path) = self.collection_file(i)
            && let Err(e) = save_json(&path, &c)
        {
            log::warn!("list {}: cannot save the collection: {e:#}", self.slots[i].cfg.name);
        }
        let bundle = c.bundle();
        self.slots[i].collection = Some(c);
        let meta =
            CacheMeta { url: self.slots[i].cfg.source(), fetched: now(), ..Default::default() };
        Ok(Got::Bytes(bundle, meta))
    }

    fn collection_file(&self, i: usize) -> Option<std::path::PathBuf> {
        Some(self.settings.state.as_ref()?.source_file("taxii", &self.slots[i].cfg.name))
    }
}
