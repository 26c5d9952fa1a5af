//! The daemon's status file (`status.json` in the state directory), written after every change:
//! what `takedown status` and `takedown lookup` report about lists when the daemon is not asked.

use std::{collections::BTreeMap, path::Path};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::{
    manual::{MANUAL, MANUAL_BIT},
    state::write_atomic,
};

pub use crate::clock::{now, utc};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Status {
    pub pid: u32,
    pub started: u64,
    pub updated: u64,
    pub pin_dir: String,
    pub program_id: Option<u32>,
    pub interfaces: Vec<InterfaceStatus>,
    pub lists: Vec<ListStatus>,
    pub manual_entries: usize,
    /// Resolved address -> the domains that resolved to it.
    pub domains: BTreeMap<String, Vec<String>>,
    /// Where the metrics are served, or why they are not (None: not asked for).
    #[serde(default)]
    pub metrics: Option<Result<String, String>>,
    /// What keeps the filter from being the daemon's own (see `pin_watch`).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The connection journal (None: off).
    #[serde(default)]
    pub journal: Option<JournalStatus>,
    /// Inside hosts found to have contacted an address before it was listed.
    #[serde(default)]
    pub exposed_hosts: usize,
}

/// The connection journal as `takedown status` shows it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct JournalStatus {
    pub dir: String,
    pub days: u64,
    /// Bytes on disk, and the hours kept.
    pub bytes: u64,
    pub hours: usize,
    /// New connections the kernel reported since the start, and those with no inside end.
    pub connections: u64,
    pub unsided: u64,
    /// Hours deleted to hold max_bytes since the start.
    pub removed_for_size: usize,
    /// Rows not written because the current hour alone reached max_bytes.
    #[serde(default)]
    pub dropped: u64,
    /// The last write that failed.
    pub error: Option<String>,
    /// The latest hosts found to have contacted an address before it was listed, the newest
    /// first (`takedown watch` shows them).
    #[serde(default)]
    pub found: Vec<ExposureNote>,
}

/// A host found to have contacted an address before it was listed.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExposureNote {
    pub host: String,
    /// Its first contact's remote.
    pub remote: String,
    /// Its other contacts found with it.
    pub more: usize,
    /// When it was found.
    pub at: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct InterfaceStatus {
    pub name: String,
    pub mode: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ListStatus {
    pub name: String,
    /// Its bit number in an entry's lists.
    pub bit: u32,
    pub source: String,
    /// Seconds between refreshes (0: on demand).
    pub refresh: u64,
    /// Networks and domains of the content in force.
    pub entries: usize,
    pub domains: usize,
    pub last_attempt: Option<u64>,
    pub last_success: Option<u64>,
    /// The last refresh succeeded.
    pub ok: bool,
    /// What the last refresh did, or why it failed.
    pub message: String,
}

impl Status {
    /// Reads a status file, if there is one.
    pub fn read(path: &Path) -> Option<Self> {
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    }

    /// Writes it atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        write_atomic(path, &serde_json::to_vec_pretty(self)?)
    }

    /// The name of list bit `bit` (63: manual).
    pub fn list_name(&self, bit: u32) -> String {
        if bit == MANUAL_BIT.trailing_zeros() {
            return MANUAL.into();
        }
        let named = self.lists.iter().find(|l| l.bit == bit);
        named.map_or_else(|| format!("list#{bit}"), |l| l.name.clone())
    }

    /// The bit of the list called `name` ("manual": 63), if there is one.
    pub fn list_bit(&self, name: &str) -> Option<u32> {
        if name == MANUAL {
            return Some(MANUAL_BIT.trailing_zeros());
        }
        self.lists.iter().find(|l| l.name == name).map(|l| l.bit)
    }

    /// The names of every list in a lists bitmask.
    pub fn list_names(&self, lists: u64) -> Vec<String> {
        (0..64).filter(|b| lists & (1u64 << b) != 0).map(|b| self.list_name(b)).collect()
    }
}
