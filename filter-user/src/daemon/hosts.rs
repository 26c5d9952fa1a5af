//! The infected-host table: per inside host, when it was first and last seen talking to
//! takedown infrastructure, which listed addresses, lists, ports and interfaces, and how often.
//! Fed by the kernel's events; kept in the state directory (`hosts.json`, bounded: the hosts
//! seen longest ago are forgotten first), so it survives daemon restarts.
//!
//! A host is infected when it sent to a listed address (it talked to the infrastructure, or
//! answered it). One that listed addresses only reached (a scan of the network, a spoofed
//! source) is kept apart: never called infected, and first to go when the table is full; it
//! never pushes an infected host out.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::IpAddr,
    path::Path,
};

use anyhow::Result;
use filter_common::{EV_DROPPED, EV_DST, Event};
use serde::{Deserialize, Serialize};

use super::{
    journal::exposure::{Contact, Exposed},
    state::write_atomic,
};

/// Most listed addresses remembered per host.
const MAX_CONTACTED: usize = 64;

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Host {
    pub address: String,
    pub first_seen: u64,
    pub last_seen: u64,
    /// Events reported for it (rate-limited in the kernel: a lower bound of its packets).
    pub events: u64,
    /// Of which dropped (the others matched monitor lists only).
    pub dropped: u64,
    /// Of which it sent to a listed address; 0: listed addresses only reached it.
    #[serde(default)]
    pub sent: u64,
    /// Takedown addresses it talked to (or that talked to it).
    pub contacted: BTreeSet<String>,
    pub lists: BTreeSet<String>,
    /// "udp/443", "tcp/8080", "icmp", ...
    pub services: BTreeSet<String>,
    pub interfaces: BTreeSet<String>,
    /// It opened connections to an address before that address was listed (the connection
    /// journal's finding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_listed: Option<BeforeListed>,
}

/// Connections a host opened to addresses before they were listed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BeforeListed {
    pub first: u64,
    pub last: u64,
    pub connections: u64,
    /// Its contacts ("198.51.100.7 tcp/8443") and their connections: found again (a fresh
    /// start looks every entry up), a contact is known, not counted twice.
    #[serde(default)]
    pub contacts: BTreeMap<String, u64>,
}

/// A contact's name in [`BeforeListed::contacts`].
pub fn contact_name(c: &Contact) -> String {
    format!("{} {}/{}", c.remote, c.proto, c.port)
}

impl Host {
    /// It sent to a listed address, or opened connections to one before it was listed.
    pub fn infected(&self) -> bool {
        self.sent > 0 || self.before_listed.is_some()
    }
}

/// Every known host.
#[derive(Clone, Debug)]
pub struct HostTable {
    hosts: HashMap<String, Host>,
    max: usize,
    dirty: bool,
}

/// How to name what an event carries.
pub struct Names<'a> {
    pub lists: &'a dyn Fn(u64) -> Vec<String>,
    pub interface: &'a dyn Fn(u32) -> String,
}

/// The address a kernel record carries in 16 bytes (IPv4 in the first 4, `family` 4).
pub fn addr(family: u8, bytes: &[u8; 16]) -> IpAddr {
    if family == 4 {
        IpAddr::from([bytes[0], bytes[1], bytes[2], bytes[3]])
    } else {
        IpAddr::from(*bytes)
    }
}

/// An IP protocol's name as reports write it.
pub fn protocol(proto: u8) -> &'static str {
    match proto {
        6 => "tcp",
        17 => "udp",
        1 | 58 => "icmp",
        _ => "ip",
    }
}

fn service(proto: u8, port: u16) -> String {
    match protocol(proto) {
        "icmp" => "icmp".into(),
        "ip" => format!("ip/{proto}"),
        name => format!("{name}/{port}"),
    }
}

impl HostTable {
    /// An empty table holding at most `max` hosts.
    pub fn new(max: usize) -> Self {
        Self { hosts: HashMap::new(), max: max.max(1), dirty: false }
    }

    /// The table saved at `path` (empty if none), holding at most `max` hosts. A file that
    /// does not parse is evidence: it is kept aside as `<path>.corrupt` (`.corrupt.2`, ... when
    /// an earlier one is there), and said so.
    pub fn load(path: &Path, max: usize) -> Self {
        let parsed = std::fs::read(path).ok().map(|b| serde_json::from_slice::<Vec<Host>>(&b));
        let hosts = match parsed {
            Some(Ok(hosts)) => hosts,
            Some(Err(e)) => {
                match crate::sources::files::set_aside(path) {
                    Ok(aside) => log::error!(
                        "{} is corrupt ({e}): kept as {}, starting a new table",
                        path.display(),
                        aside.display()
                    ),
                    Err(r) => log::error!(
                        "{} is corrupt ({e}) and cannot be moved aside: {r}",
                        path.display()
                    ),
                }
                Vec::new()
            }
            None => Vec::new(),
        };
        let mut table = Self { hosts: HashMap::new(), max: max.max(1), dirty: false };
        table.hosts = hosts.into_iter().map(|h| (h.address.clone(), h)).collect();
        // A file holding more than the bound keeps the hosts seen last.
        if table.hosts.len() > table.max {
            let keep = table.recent(0).into_iter().take(table.max);
            table.hosts = keep.map(|h| (h.address.clone(), h)).collect();
        }
        table
    }

    /// The table saved at `path` for the CLI (`takedown hosts`, `watch`; the marks `takedown
    /// add` makes when no daemon runs): unbounded (the next daemon bounds it); a corrupt file
    /// is an error, and stays where it is.
    pub fn read(path: &Path) -> Result<Self> {
        let hosts: Vec<Host> = match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| anyhow::anyhow!("{} is corrupt: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
        };
        let hosts = hosts.into_iter().map(|h| (h.address.clone(), h)).collect();
        Ok(Self { hosts, max: usize::MAX, dirty: false })
    }

    /// Saves the table if it changed.
    pub fn save(&mut self, path: &Path) -> Result<()> {
        if self.dirty {
            write_atomic(path, &serde_json::to_vec(&self.recent(0))?)?;
            self.dirty = false;
        }
        Ok(())
    }

    /// Records one event at wall-clock time `now`; returns the host when this event makes it
    /// infected (its first packet to a listed address).
    pub fn record(&mut self, ev: &Event, now: u64, names: &Names<'_>) -> Option<Host> {
        let inside = addr(ev.family, &ev.inside).to_string();
        let sent = ev.kind & EV_DST != 0;
        let known = self.hosts.get(&inside);
        let was_infected = known.is_some_and(Host::infected);
        if known.is_none() && self.hosts.len() >= self.max && !self.make_room(sent) {
            return None;
        }
        let h = self.hosts.entry(inside.clone()).or_insert_with(|| Host {
            address: inside,
            first_seen: now,
            ..Default::default()
        });
        h.last_seen = now;
        h.events += 1;
        if ev.kind & EV_DROPPED != 0 {
            h.dropped += 1;
        }
        if sent {
            h.sent += 1;
        }
        if h.contacted.len() < MAX_CONTACTED {
            h.contacted.insert(addr(ev.family, &ev.remote).to_string());
        }
        h.lists.extend((names.lists)(ev.lists));
        h.services.insert(service(ev.proto, ev.remote_port));
        h.interfaces.insert((names.interface)(ev.ifindex));
        self.dirty = true;
        (!was_infected && h.infected()).then(|| h.clone())
    }

    /// Forgets the host seen longest ago among those listed addresses only reached, or, for
    /// a host that sent (`sent`), among all; false when there is none to forget.
    fn make_room(&mut self, sent: bool) -> bool {
        let candidates = self.hosts.values().filter(|h| sent || !h.infected());
        let Some(oldest) = candidates.min_by_key(|h| (h.infected(), h.last_seen)) else {
            return false;
        };
        let oldest = oldest.address.clone();
        self.hosts.remove(&oldest);
        true
    }

    /// Marks the host of `e` for the connections it opened (none: nothing to mark), each
    /// contact once however often it is found; false when the table had no room for it.
    pub fn mark_exposed(&mut self, e: &Exposed) -> bool {
        let opened: Vec<&Contact> = e.contacts.iter().filter(|c| c.opened_by == "inside").collect();
        let Some(first) = opened.iter().map(|c| c.first).min() else { return true };
        let address = e.host.to_string();
        if !self.hosts.contains_key(&address)
            && self.hosts.len() >= self.max
            && !self.make_room(true)
        {
            return false;
        }
        let h = self.hosts.entry(address.clone()).or_insert_with(|| Host {
            address,
            first_seen: first,
            ..Default::default()
        });
        let b = h.before_listed.get_or_insert(BeforeListed { first, ..Default::default() });
        for c in opened {
            (b.first, b.last) = (b.first.min(c.first), b.last.max(c.last));
            let name = contact_name(c);
            if b.contacts.len() < MAX_CONTACTED || b.contacts.contains_key(&name) {
                let n = b.contacts.entry(name).or_default();
                *n = (*n).max(c.count);
            }
            if h.contacted.len() < MAX_CONTACTED {
                h.contacted.insert(c.remote.to_string());
            }
        }
        // A table written before contacts were kept holds a count of its own.
        b.connections = b.connections.max(b.contacts.values().sum());
        h.last_seen = h.last_seen.max(b.last);
        self.dirty = true;
        true
    }

    /// True when `host`'s contact `c` is already marked (with as many connections).
    pub fn knows(&self, host: &str, c: &Contact) -> bool {
        let b = self.hosts.get(host).and_then(|h| h.before_listed.as_ref());
        b.and_then(|b| b.contacts.get(&contact_name(c))).is_some_and(|n| *n >= c.count)
    }

    /// Hosts in the table found to have opened connections to an address before it was listed.
    pub fn exposed(&self) -> usize {
        self.hosts.values().filter(|h| h.before_listed.is_some()).count()
    }

    /// Infected hosts in the table.
    pub fn infected(&self) -> usize {
        self.hosts.values().filter(|h| h.infected()).count()
    }

    /// Hosts seen at or after `since` (Unix seconds), most recent first.
    pub fn recent(&self, since: u64) -> Vec<Host> {
        let mut out: Vec<Host> =
            self.hosts.values().filter(|h| h.last_seen >= since).cloned().collect();
        out.sort_by(|a, b| b.last_seen.cmp(&a.last_seen).then_with(|| a.address.cmp(&b.address)));
        out
    }

    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }
}

#[cfg(test)]
#[path = "hosts_tests.rs"]
mod tests;
