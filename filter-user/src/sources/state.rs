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

    /// Whether this state, after a fetch, is worth writing over `saved` (the state before): a
    /// poll that changed no decision (every few seconds, on a million decisions) rewrites
    /// nothing but, every ten minutes, the time of the last good poll; a pull that brought
    /// nothing neither.
    pub fn worth_saving(&self, saved: &State) -> bool {
        match (self, saved) {
            (Self::Decisions(d), Self::Decisions(s)) => {
                d.active != s.active || d.polled >= s.polled.saturating_add(600)
            }
            (Self::Collection(c), Self::Collection(s)) => {
                c.added_after != s.added_after || c.objects.len() != s.objects.len()
            }
            _ => true,
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

    /// After a fetch whose answer may have been lost: the next one reads the source from its
    /// start (a decision stream's `startup=true`).
    pub fn resync(&mut self) {
        if let Self::Decisions(d) = self {
            d.started = false;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poll_that_changed_nothing_is_not_written_but_every_ten_minutes() {
        let mut saved = Decisions { polled: 1_000, ..Default::default() };
        saved.active.insert("192.0.2.7".into(), [(1, 9_999)].into());
        let same = |polled| State::Decisions(Decisions { polled, ..saved.clone() });
        let saved = same(1_000);
        assert!(!same(1_010).worth_saving(&saved), "an empty delta");
        assert!(same(1_600).worth_saving(&saved), "the last good poll, ten minutes on");
        let mut changed = Decisions { polled: 1_010, ..Default::default() };
        changed.active.insert("192.0.2.8".into(), [(2, 9_999)].into());
        assert!(State::Decisions(changed).worth_saving(&saved));
    }
}
