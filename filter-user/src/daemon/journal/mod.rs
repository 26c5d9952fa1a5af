//! The connection journal (opt-in: `[journal]` in the configuration, `run --journal DAYS`):
//! who inside talked to which remote address, kept a few days, so that when a list arrives
//! the hosts that already contacted its addresses are found (`exposure`).
//!
//! The kernel reports new connections (see filter-common's `journal`); `writer` turns them
//! into rows (inside host, remote address, protocol, remote port: first, last, count), a
//! block every few seconds into the hour's file (`store`, `block`). No payload is ever kept.

pub mod block;
mod contacts;
pub mod exposure;
mod findings;
mod found;
mod hours;
mod packed;
mod recent;
pub mod sides;
pub mod store;
mod wanted;
pub mod writer;

use std::path::PathBuf;

use serde::{Deserialize, Deserializer};

/// `[journal]` in the configuration.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct JournalConfig {
    /// Days kept.
    #[serde(default = "d14")]
    pub days: u64,
    /// Bytes the journal may take on disk ("4G", "500M", or a number); the oldest hours go
    /// first.
    #[serde(default = "g4", deserialize_with = "bytes")]
    pub max_bytes: u64,
    /// The inside interfaces: a packet arriving on one comes from an inside host. Empty: the
    /// inside host is the private address (RFC 1918, shared 100.64/10, unique local fc00::/7).
    #[serde(default)]
    pub inside: Vec<String>,
}

impl Default for JournalConfig {
    fn default() -> Self {
        Self { days: d14(), max_bytes: g4(), inside: vec![] }
    }
}

impl JournalConfig {
    /// What is wrong with it, if anything.
    pub fn problem(&self) -> Option<String> {
        (!(1..=366).contains(&self.days))
            .then(|| format!("journal days = {}: keep 1 to 366 days", self.days))
    }
}

fn d14() -> u64 {
    14
}
fn g4() -> u64 {
    4 << 30
}

/// A size as a number of bytes or a string with K, M, G or T.
fn bytes<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        N(u64),
        S(String),
    }
    match Size::deserialize(d)? {
        Size::N(n) => Ok(n),
        Size::S(s) => parse_size(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("{s:?} is not a size (e.g. \"4G\", \"500M\")"))
        }),
    }
}

/// "4G" -> 4 GiB.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let shift = match unit.trim().to_ascii_uppercase().trim_end_matches(['B', 'I']) {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return None,
    };
    num.parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// Where the journal of a state directory lives.
pub fn dir_of(state: &super::state::StateDir) -> PathBuf {
    state.dir().join("journal")
}

#[cfg(test)]
mod tests {
    use crate::daemon::config::Config;

    fn config(journal: &str) -> anyhow::Result<Config> {
        let lists = "[[list]]\nname = \"a\"\nfile = \"/a\"\n";
        Config::parse(&format!("interfaces = [\"eth1\", \"eth0\"]\n[journal]\n{journal}\n{lists}"))
    }

    #[test]
    fn the_journal_section_is_read_and_checked() {
        let c = config("days = 7\nmax_bytes = \"500M\"\ninside = [\"eth1\"]").unwrap();
        let j = c.journal.unwrap();
        assert_eq!((j.days, j.max_bytes, j.inside), (7, 500 << 20, vec!["eth1".to_string()]));
        assert_eq!(config("").unwrap().journal.unwrap().max_bytes, 4 << 30);
        let err = |j: &str| format!("{:#}", config(j).unwrap_err());
        assert!(err("days = 0").contains("journal days = 0: keep 1 to 366 days"));
        assert!(err("inside = [\"eth9\"]").contains("inside interface eth9 is not one of"));
        assert!(err("max_bytes = \"4X\"").contains("\"4X\" is not a size"));
    }
}
