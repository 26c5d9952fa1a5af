//! Who already talked to them: the journal's rows whose remote address a set of networks
//! covers, by inside host. Asked by `takedown exposed`, and by the daemon for the entries each
//! change adds.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    net::IpAddr,
};

use ipnet::IpNet;
use serde::Serialize;

use super::{
    block::{Key, Seen},
    store::Store,
};

/// The networks looked for: exact addresses in a set, prefixes in a set a length.
#[derive(Default)]
pub struct Wanted {
    exact: HashSet<IpAddr>,
    prefixes: BTreeMap<(bool, u8), HashSet<IpAddr>>,
}

impl Wanted {
    pub fn new(nets: impl IntoIterator<Item = IpNet>) -> Self {
        let mut w = Self::default();
        for n in nets {
            if n.prefix_len() == n.max_prefix_len() {
                w.exact.insert(n.addr());
            } else {
                let n = n.trunc();
                w.prefixes
                    .entry((n.addr().is_ipv6(), n.prefix_len()))
                    .or_default()
                    .insert(n.addr());
            }
        }
        w
    }

    /// Also looks for what `other` looks for.
    pub fn merge(&mut self, other: Wanted) {
        self.exact.extend(other.exact);
        for (k, set) in other.prefixes {
            self.prefixes.entry(k).or_default().extend(set);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.prefixes.is_empty()
    }

    /// The wanted network covering `a`, the most specific first.
    pub fn covering(&self, a: IpAddr) -> Option<IpNet> {
        if self.exact.contains(&a) {
            return IpNet::new(a, if a.is_ipv4() { 32 } else { 128 }).ok();
        }
        let family = self.prefixes.range((a.is_ipv6(), 0)..=(a.is_ipv6(), 128)).rev();
        family
            .filter_map(|(&(_, len), set)| {
                let net = IpNet::new(a, len).ok()?.trunc();
                set.contains(&net.addr()).then_some(net)
            })
            .next()
    }
}

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

/// Remotes whose lookup is remembered at most (all are forgotten past it).
const MEMO: usize = 1 << 21;

/// The journal's rows since `since` whose remote `wanted` covers, by inside host (sorted);
/// and what could not be read.
pub fn find(store: &Store, since: u64, wanted: &Wanted) -> (Vec<Exposed>, Vec<String>) {
    let mut rows: HashMap<Key, Seen> = HashMap::new();
    // Remotes repeat (popular services): each is looked up once.
    let mut covered: HashMap<IpAddr, Option<IpNet>> = HashMap::new();
    let problems = store.read(since, |k, s| {
        if covered.len() >= MEMO {
            covered.clear();
        }
        let entry = *covered.entry(k.remote).or_insert_with(|| wanted.covering(k.remote));
        if s.last >= since && entry.is_some() {
            rows.entry(k).and_modify(|m| m.merge(&s)).or_insert(s);
        }
    });
    let mut hosts: BTreeMap<IpAddr, Vec<Contact>> = BTreeMap::new();
    for (k, s) in rows {
        let entry = covered.get(&k.remote).copied().unwrap_or_else(|| wanted.covering(k.remote));
        let Some(entry) = entry else { continue };
        let proto = crate::daemon::hosts::protocol(k.proto);
        let c = Contact {
            remote: k.remote,
            entry,
            proto,
            port: k.port,
            opened_by: if k.inbound { "remote" } else { "inside" },
            first: s.first,
            last: s.last,
            count: s.count,
        };
        hosts.entry(k.inside).or_default().push(c);
    }
    let exposed = hosts
        .into_iter()
        .map(|(host, mut contacts)| {
            contacts.sort_by(|a, b| {
                let key =
                    |c: &Contact| (c.opened_by != "inside", std::cmp::Reverse(c.last), c.remote);
                key(a).cmp(&key(b))
            });
            Exposed { host, contacts }
        })
        .collect();
    (exposed, problems)
}
