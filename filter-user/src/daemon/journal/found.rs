//! What one reader of the journal found for `exposure::find`, held small: a table a host, and
//! each wanted remote numbered once, so that a row is its remote's number, the protocol, the
//! port and its times in 24 bytes (a row with its addresses and times took about 72 in one
//! table, and every host's contacts were then built at once: 1.9 GB for 6.5 million contacts).
//! The hosts come out one at a time, each with its contacts.

use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
};

use foldhash::fast::RandomState;

use super::{
    block::{Key, Seen},
    exposure::{Contact, Exposed},
    wanted::{Wanted, net},
};

/// Remotes found not wanted that a reader remembers at most (all are forgotten past it).
const MEMO: usize = 1 << 17;

/// A contact of a host: the number of its remote, protocol, port, direction.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Row {
    remote: u32,
    port: u16,
    proto: u8,
    inbound: bool,
}

/// A row's times, in seconds since 1970 in 32 bits as the journal's rows hold their first (a
/// last second past 2106-02-07T06:28:15Z, which only a forged row can have, is cut to it), and
/// its count.
#[derive(Clone, Copy)]
struct When {
    first: u32,
    last: u32,
    count: u64,
}

impl When {
    fn of(s: &Seen) -> Self {
        let small = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        Self { first: small(s.first), last: small(s.last), count: s.count }
    }

    fn merge(&mut self, o: &When) {
        self.first = self.first.min(o.first);
        self.last = self.last.max(o.last);
        self.count = self.count.saturating_add(o.count);
    }
}

/// Numbers for addresses. Remote addresses are chosen by others (a spoofed source reaches the
/// journal): every table here hashes with a random key.
struct Numbers<T> {
    of: HashMap<IpAddr, u32, RandomState>,
    items: Vec<T>,
}

impl<T> Default for Numbers<T> {
    fn default() -> Self {
        Self { of: HashMap::default(), items: Vec::new() }
    }
}

impl<T> Numbers<T> {
    fn number(&mut self, a: IpAddr, item: impl FnOnce() -> T) -> u32 {
        *self.of.entry(a).or_insert_with(|| {
            self.items.push(item());
            u32::try_from(self.items.len() - 1).expect("fewer than 2^32 addresses")
        })
    }
}

/// A host's rows.
type Rows = HashMap<Row, When, RandomState>;

/// The rows one reader found: those of the inside hosts it was given, a table a host (the
/// journal's rows come sorted by host: one small table is busy at a time).
#[derive(Default)]
pub struct Found {
    hosts: Numbers<(IpAddr, Rows)>,
    /// The host of the last row and its number.
    last: Option<(IpAddr, u32)>,
    /// Each wanted remote with the length of the network covering it.
    remotes: Numbers<(IpAddr, u8)>,
    unwanted: HashSet<IpAddr, RandomState>,
    hasher: RandomState,
}

impl Found {
    /// Keeps row `k` if `wanted` covers its remote.
    pub fn add(&mut self, k: &Key, s: &Seen, wanted: &Wanted) {
        let remote = match self.remotes.of.get(&k.remote) {
            Some(n) => *n,
            None if self.unwanted.contains(&k.remote) => return,
            None => match wanted.covering_len(k.remote) {
                Some(len) => self.remotes.number(k.remote, || (k.remote, len)),
                None => {
                    if self.unwanted.len() >= MEMO {
                        self.unwanted.clear();
                    }
                    self.unwanted.insert(k.remote);
                    return;
                }
            },
        };
        let host = match self.last {
            Some((a, n)) if a == k.inside => n,
            _ => {
                let hasher = self.hasher.clone();
                let n = self.hosts.number(k.inside, || (k.inside, HashMap::with_hasher(hasher)));
                self.last = Some((k.inside, n));
                n
            }
        };
        let row = Row { remote, port: k.port, proto: k.proto, inbound: k.inbound };
        let when = When::of(s);
        let rows = &mut self.hosts.items[host as usize].1;
        rows.entry(row).and_modify(|w| w.merge(&when)).or_insert(when);
    }

    /// The hosts found, in the order of their addresses, each with its contacts (those it
    /// opened first, then the latest first); a host's rows are let go as it comes.
    pub fn into_hosts(self) -> impl Iterator<Item = Exposed> {
        let Found { hosts, remotes, .. } = self;
        let mut hosts = hosts.items;
        hosts.sort_unstable_by_key(|(a, _)| *a);
        hosts.into_iter().map(move |(host, rows)| {
            let contacts = rows.iter().filter_map(|(r, w)| contact(r, w, &remotes.items));
            sorted(host, contacts.collect())
        })
    }
}

/// Row `r` as a contact.
fn contact(r: &Row, w: &When, remotes: &[(IpAddr, u8)]) -> Option<Contact> {
    let (remote, len) = remotes[r.remote as usize];
    Some(Contact {
        remote,
        entry: net(remote, len)?,
        proto: crate::daemon::hosts::protocol(r.proto),
        port: r.port,
        opened_by: if r.inbound { "remote" } else { "inside" },
        first: w.first.into(),
        last: w.last.into(),
        count: w.count,
    })
}

/// Host `host` with `contacts`: those it opened first, then the latest first.
fn sorted(host: IpAddr, mut contacts: Vec<Contact>) -> Exposed {
    let key = |c: &Contact| {
        (c.opened_by != "inside", std::cmp::Reverse(c.last), c.remote, c.proto, c.port)
    };
    contacts.sort_by_key(key);
    Exposed { host, contacts }
}
