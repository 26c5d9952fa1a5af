//! Who already talked to them: the journal's rows whose remote address a set of networks
//! covers, by inside host. Asked by `takedown exposed`, and by the daemon for the entries each
//! change adds.

use std::{
    collections::{BTreeMap, HashMap},
    net::IpAddr,
};

use ipnet::IpNet;
use serde::Serialize;

use crate::daemon::status::utc;

pub use super::wanted::Wanted;
use super::{
    block::{Key, Seen},
    store::Store,
};

/// One contact of an inside host with a wanted address.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Contact {
    pub remote: IpAddr,
    /// The wanted network that covers it.
    pub entry: IpNet,
    pub proto: &'static str,
    pub port: u16,
    /// Who opened the connections: "inside" (the host talked to it) or "remote" (the remote
    /// reached the host: a scan, say).
    pub opened_by: &'static str,
    pub first: u64,
    pub last: u64,
    /// New connections.
    pub count: u64,
}

/// An inside host and its contacts, those it opened first, then the latest first.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Exposed {
    pub host: IpAddr,
    pub contacts: Vec<Contact>,
}

impl Exposed {
    /// It opened a connection to a wanted address (else wanted addresses only reached it).
    pub fn talked(&self) -> bool {
        self.contacts.iter().any(|c| c.opened_by == "inside")
    }
}

/// The line that says what was found of a host (its first contact, and how many more): it
/// contacted an address before it was listed, or only listed addresses reached it.
pub fn describe(e: &Exposed) -> String {
    let Some(c) = e.contacts.first() else { return format!("host {}: no contact", e.host) };
    let (first, last) = (utc(c.first), utc(c.last));
    let more = match e.contacts.len() {
        1 => String::new(),
        n => format!(" (and {} more)", n - 1),
    };
    let what = format!(
        "{} ({}, now listed){more} before it was listed: {} connection(s), {}/{}, first {first}, last {last}",
        c.remote, c.entry, c.count, c.proto, c.port
    );
    if e.talked() {
        format!("exposed host {} contacted {what}", e.host)
    } else {
        format!(
            "host {} was reached by {what}; the remote opened every connection (a scan, say): \
             not a sign of infection",
            e.host
        )
    }
}

/// Remotes whose lookup a reader remembers at most (all are forgotten past it).
const MEMO: usize = 1 << 17;

/// What one reader found: the wanted rows with the length of the network covering their
/// remote, and the remotes it looked up (popular ones repeat: each is looked up once). Both
/// are keyed by remote addresses others choose (a spoofed source reaches the journal): their
/// hash has a random key.
#[derive(Default)]
struct Found {
    memo: HashMap<IpAddr, Option<u8>>,
    rows: Rows,
}

type Rows = HashMap<Key, (Seen, u8)>;

/// The journal's rows since `since` whose remote `wanted` covers, by inside host (sorted);
/// and what could not be read. The hours are read by `workers` threads (each holds the hour
/// it reads).
pub fn find(
    store: &Store,
    since: u64,
    wanted: &Wanted,
    workers: usize,
) -> (Vec<Exposed>, Vec<String>) {
    let (found, problems) = store.read_each(since, workers, Found::default, |f, k, s| {
        if s.last < since {
            return;
        }
        if f.memo.len() >= MEMO {
            f.memo.clear();
        }
        let len = *f.memo.entry(k.remote).or_insert_with(|| wanted.covering_len(k.remote));
        if let Some(len) = len {
            add(&mut f.rows, k, s, len);
        }
    });
    let mut rows = Rows::default();
    for f in found {
        if f.rows.len() > rows.len() {
            for (k, (s, len)) in std::mem::replace(&mut rows, f.rows) {
                add(&mut rows, k, s, len);
            }
        } else {
            f.rows.into_iter().for_each(|(k, (s, len))| add(&mut rows, k, s, len));
        }
    }
    (by_host(rows), problems)
}

/// Adds row `k` (its remote covered by a network of `len` bits), merged with what it holds.
fn add(rows: &mut Rows, k: Key, s: Seen, len: u8) {
    rows.entry(k).and_modify(|(m, _)| m.merge(&s)).or_insert((s, len));
}

/// The rows as contacts by inside host: those it opened first, then the latest first.
fn by_host(rows: Rows) -> Vec<Exposed> {
    let mut hosts: BTreeMap<IpAddr, Vec<Contact>> = BTreeMap::new();
    for (k, (s, len)) in rows {
        let Some(entry) = super::wanted::net(k.remote, len) else { continue };
        let c = Contact {
            remote: k.remote,
            entry,
            proto: crate::daemon::hosts::protocol(k.proto),
            port: k.port,
            opened_by: if k.inbound { "remote" } else { "inside" },
            first: s.first,
            last: s.last,
            count: s.count,
        };
        hosts.entry(k.inside).or_default().push(c);
    }
    let key = |c: &Contact| {
        (c.opened_by != "inside", std::cmp::Reverse(c.last), c.remote, c.proto, c.port)
    };
    hosts
        .into_iter()
        .map(|(host, mut contacts)| {
            contacts.sort_by_key(key);
            Exposed { host, contacts }
        })
        .collect()
}
