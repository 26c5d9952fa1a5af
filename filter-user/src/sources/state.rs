//! A source's state between two fetches: a MISP feed's events (in memory), a TAXII
//! collection and CrowdSec decisions (both kept across restarts, in a file of the state
//! directory named after the kind and the list).

use std::path::Path;

use anyhow::Result;

use super::{
    Kind, crowdsec::Decisions, files::load_json, files::save_json, misp_feed::FeedEvents,
    taxii::Collection,
};

pub enum State {
    Nothing,
    Feed(FeedEvents),
    Collection(Collection),
    Decisions(Decisions),
}

impl State {
    /// The state a source of this kind starts from.
    pub fn fresh(kind: &Kind) -> Self {
        match kind {
            Kind::MispFeed(_) => Self::Feed(FeedEvents::new()),
            Kind::Taxii(_) => Self::Collection(Collection::default()),
            Kind::Crowdsec(_) => Self::Decisions(Decisions::default()),
            Kind::File(_) | Kind::Url(_) => Self::Nothing,
        }
    }

    /// The kind's word in its state file's name (`<word>-<list>.json`), if it keeps one.
    pub fn file_word(kind: &Kind) -> Option<&'static str> {
        match kind {
            Kind::Taxii(_) => Some("taxii"),
            Kind::Crowdsec(_) => Some("crowdsec"),
            _ => None,
        }
    }

    /// The state saved at `path` for a source of this kind (fresh when there is none), at
    /// `now`: decisions that ended meanwhile are out.
    pub fn load(kind: &Kind, path: &Path, now: u64) -> Result<Self> {
        Ok(match kind {
            Kind::Taxii(_) => Self::Collection(load_json(path)?),
            Kind::Crowdsec(_) => {
                let mut d: Decisions = load_json(path)?;
                d.expire(now);
                Self::Decisions(d)
            }
            _ => Self::fresh(kind),
        })
    }

    /// Saves it at `path`, if it is kept across restarts.
    pub fn save(&self, path: &Path) -> Result<()> {
        match self {
            Self::Collection(c) => save_json(path, c),
            Self::Decisions(d) => save_json(path, d),
            Self::Nothing | Self::Feed(_) => Ok(()),
        }
    }

    /// A copy for a fetch to work on (a feed's events are moved: they may be large, and come
    /// back with the fetch).
    pub fn take_copy(&mut self) -> Self {
        match self {
            Self::Feed(events) => Self::Feed(std::mem::take(events)),
            Self::Collection(c) => Self::Collection(c.clone()),
            Self::Decisions(d) => Self::Decisions(d.clone()),
            Self::Nothing => Self::Nothing,
        }
    }

    /// Takes out what ended by `now`; true when the content changed.
    pub fn expire(&mut self, now: u64) -> bool {
        match self {
            Self::Decisions(d) => d.expire(now),
            _ => false,
        }
    }

    /// When something of it ends next (Unix seconds).
    pub fn next_end(&self) -> Option<u64> {
        match self {
            Self::Decisions(d) => d.next_expiry(),
            _ => None,
        }
    }

    /// The content it makes, when the state is the content itself (CrowdSec decisions), with
    /// when it was last read from its source (Unix seconds; 0: never).
    pub fn content(&self) -> Option<(Vec<u8>, u64)> {
        match self {
            Self::Decisions(d) => Some((d.text().into_bytes(), d.polled)),
            _ => None,
        }
    }
}
