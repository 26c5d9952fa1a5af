//! Where lists come from, between the plan and the daemon: each kind of source fetches its
//! bytes (or its state) and says when to ask again; the daemon decides what to enforce.
//!
//! - `http`: files and http(s) URLs (conditional GET, bounded bodies, retries, redirects that
//!   keep credentials within their origin) and the on-disk cache of each list's last good copy;
//! - `taxii`: TAXII 2.1 collections, pulled page by page and kept newest version first;
//! - `crowdsec`: the CrowdSec Local API's decision stream, each decision by its id;
//! - `dns`: the addresses of the lists' domains, resolved and kept fresh;
//! - `misp_feed`: MISP feeds over http(s), only new or changed events fetched;
//! - `fetch`: one fetch of any kind, from the source's `state` before to its state after;
//! - `files`: the files sources keep in the state directory, named one to one after their list
//!   and written atomically.
//!
//! A new kind of source touches this folder and the configuration only. Uses `lists` and
//! `plan`, never `maps` or `daemon`.

pub mod crowdsec;
pub mod dns;
pub mod fetch;
pub mod files;
pub mod http;
pub mod misp_feed;
pub mod state;
pub mod taxii;

use std::path::Path;

/// A list's source, by kind: what the daemon asks to get its content, and how.
#[derive(Clone, Copy, Debug)]
pub enum Kind<'a> {
    /// A local file (or a MISP feed directory).
    File(&'a Path),
    /// An http(s) URL of a list file.
    Url(&'a str),
    /// An http(s) URL of a MISP feed's `manifest.json`: the events it names are fetched.
    MispFeed(&'a str),
    /// A TAXII 2.1 collection.
    Taxii(&'a taxii::Source),
    /// A CrowdSec Local API's decision stream.
    Crowdsec(&'a crowdsec::Source),
}

impl Kind<'_> {
    /// A source whose state lives between refreshes and whose content changes only by what
    /// each pull brings (a collection, a decision stream): it may hold nothing, and the shrink
    /// guard does not apply to it.
    pub fn is_stream(&self) -> bool {
        matches!(self, Self::Taxii(_) | Self::Crowdsec(_))
    }

    /// Fetched over http(s).
    pub fn is_remote(&self) -> bool {
        !matches!(self, Self::File(_))
    }

    /// Sends credentials (a bouncer key, TAXII credentials): its client keeps them within
    /// their origin.
    pub fn has_credentials(&self) -> bool {
        self.is_stream()
    }

    /// Where it comes from, for messages (secrets in URLs redacted).
    pub fn describe(&self) -> String {
        match self {
            Self::File(f) => f.display().to_string(),
            Self::Url(u) | Self::MispFeed(u) => http::redact(u),
            Self::Crowdsec(c) => format!("CrowdSec Local API {}", http::redact(&c.url)),
            Self::Taxii(t) => {
                format!("TAXII collection {} at {}", t.collection, http::redact(&t.url))
            }
        }
    }
}
