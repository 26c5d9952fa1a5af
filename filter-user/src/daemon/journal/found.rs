//! What one reader of the journal found for `exposure::find`, held small: a table a host of
//! its contacts, 16 bytes each (`packed`: an IPv4 remote as its bits, an IPv6 one numbered),
//! those whose times or count do not pack held apart in full. (Contacts of 72 bytes, all
//! built at once, took 1.9 GB for 6.5 million; numbered remotes of 24 bytes, 343 MB.)
//! The hosts come out one at a time, each with its contacts.

use std::{
    collections::{HashMap, HashSet},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use foldhash::fast::RandomState;

use super::{
    block::{Key, Seen},
    contacts::{Contacts, Merged},
    exposure::{Contact, Exposed},
    packed::{Packed, Remote, Row},
    wanted::{Wanted, net},
};

/// IPv4 remotes a reader remembers the wanted network of, and IPv6 remotes it remembers are
/// not wanted, at most (all are forgotten past it).
const MEMO: usize = 1 << 16;
/// In the IPv4 memo: no wanted network covers it.
const NOT: u8 = u8::MAX;

/// The remotes a reader met. Remote addresses are chosen by others (a spoofed source reaches
/// the journal): every table here hashes with a random key.
#[derive(Default)]
struct Remotes {
    /// IPv4 remotes met lately, each with the length of the wanted network covering it or NOT.
    v4: HashMap<u32, u8, RandomState>,
    /// Wanted IPv6 remotes, numbered, ...
    v6: HashMap<Ipv6Addr, u32, RandomState>,
    /// ... each with the length of the wanted network covering it.
    v6_items: Vec<(Ipv6Addr, u8)>,
    /// IPv6 remotes met lately that are not wanted.
    v6_not: HashSet<Ipv6Addr, RandomState>,
}

impl Remotes {
    /// Remote `a` as a row holds it, if `wanted` covers it.
    fn get(&mut self, a: IpAddr, wanted: &Wanted) -> Option<Remote> {
        match a {
            IpAddr::V4(a) => {
                let bits = a.to_bits();
                let len = match self.v4.get(&bits) {
                    Some(len) => *len,
                    None => {
                        let len = wanted.covering_len(a.into()).unwrap_or(NOT);
                        if self.v4.len() >= MEMO {
                            self.v4.clear();
                        }
                        self.v4.insert(bits, len);
                        len
                    }
                };
                (len != NOT).then_some(Remote::V4(bits, len))
            }
            IpAddr::V6(a) => self.v6(a, wanted).map(Remote::V6),
        }
    }

    /// The number of IPv6 remote `a`, if `wanted` covers it.
    fn v6(&mut self, a: Ipv6Addr, wanted: &Wanted) -> Option<u32> {
        if let Some(n) = self.v6.get(&a) {
            return Some(*n);
        }
        if self.v6_not.contains(&a) {
            return None;
        }
        let Some(len) = wanted.covering_len(a.into()) else {
            if self.v6_not.len() >= MEMO {
                self.v6_not.clear();
            }
            self.v6_not.insert(a);
            return None;
        };
        let n = u32::try_from(self.v6_items.len()).expect("fewer than 2^32 addresses");
        self.v6_items.push((a, len));
        self.v6.insert(a, n);
        Some(n)
    }

    /// The address of `r` and the length of the wanted network covering it.
    fn address(&self, r: Remote) -> (IpAddr, u8) {
        match r {
            Remote::V4(a, len) => (Ipv4Addr::from_bits(a).into(), len),
            Remote::V6(n) => {
                let (a, len) = self.v6_items[n as usize];
                (a.into(), len)
            }
        }
    }
}

/// The rows one reader found: those of the inside hosts it was given, a list a host (the
/// journal's rows come sorted by host: one list is busy at a time).
pub struct Found {
    /// The second times are packed from.
    base: u64,
    hosts: Vec<(IpAddr, Contacts)>,
    /// Each host's place in `hosts`.
    host_of: HashMap<IpAddr, u32, RandomState>,
    /// The host of the last row and its place.
    last: Option<(IpAddr, u32)>,
    remotes: Remotes,
    /// The contacts whose times or count do not pack, by host and row.
    apart: HashMap<(u32, Row), Seen, RandomState>,
    merged: Merged,
}

impl Found {
    /// Nothing found yet; times pack when they are from `base` to 776 days after it.
    pub fn new(base: u64) -> Self {
        Self {
            base,
            hosts: Vec::new(),
            host_of: HashMap::default(),
            last: None,
            remotes: Remotes::default(),
            apart: HashMap::default(),
            merged: Merged::default(),
        }
    }

    /// Keeps row `k` if `wanted` covers its remote.
    pub fn add(&mut self, k: &Key, s: &Seen, wanted: &Wanted) {
        let Some(remote) = self.remotes.get(k.remote, wanted) else { return };
        let host = self.host(k.inside);
        let row = Row::new(remote, k.port, k.proto, k.inbound);
        let apart = match Packed::new(self.base, s) {
            Some(p) => self.hosts[host as usize].1.push(row, p, self.base, &mut self.merged),
            None => vec![(row, *s)],
        };
        for (row, s) in apart {
            self.apart.entry((host, row)).and_modify(|a| a.merge(&s)).or_insert(s);
        }
    }

    /// The place of host `a` in `hosts`, made if new.
    fn host(&mut self, a: IpAddr) -> u32 {
        match self.last {
            Some((last, n)) if last == a => n,
            _ => {
                let n = *self.host_of.entry(a).or_insert_with(|| {
                    self.hosts.push((a, Contacts::default()));
                    u32::try_from(self.hosts.len() - 1).expect("fewer than 2^32 hosts")
                });
                self.last = Some((a, n));
                n
            }
        }
    }

    /// The hosts found, in the order of their addresses, each with its contacts (those it
    /// opened first, then the latest first); a host's rows are let go as it comes.
    pub fn into_hosts(self) -> impl Iterator<Item = Exposed> {
        let Found { base, hosts, remotes, apart, .. } = self;
        let mut apart_of: HashMap<u32, Vec<(Row, Seen)>> = HashMap::new();
        for ((host, row), s) in apart {
            apart_of.entry(host).or_default().push((row, s));
        }
        let mut hosts: Vec<_> = hosts.into_iter().zip(0u32..).collect();
        hosts.sort_unstable_by_key(|((a, _), _)| *a);
        hosts.into_iter().map(move |((host, contacts), n)| {
            let all = contacts.into_seen(base, apart_of.remove(&n).unwrap_or_default());
            sorted(host, all.iter().filter_map(|(r, s)| contact(r, s, &remotes)).collect())
        })
    }
}

/// Row `r` seen `s` as a contact.
fn contact(r: &Row, s: &Seen, remotes: &Remotes) -> Option<Contact> {
    let (remote, len) = remotes.address(r.remote());
    Some(Contact {
        remote,
        entry: net(remote, len)?,
        proto: crate::daemon::hosts::protocol(r.proto()),
        port: r.port(),
        opened_by: if r.inbound() { "remote" } else { "inside" },
        first: s.first,
        last: s.last,
        count: s.count,
    })
}

/// Host `host` with `contacts`: those it opened first, then the latest first (then by every
/// other field: two protocols whose names are the same are in the same order every time).
fn sorted(host: IpAddr, mut contacts: Vec<Contact>) -> Exposed {
    let key = |c: &Contact| {
        let order = (c.opened_by != "inside", std::cmp::Reverse(c.last), c.remote);
        (order, c.proto, c.port, c.first, c.count)
    };
    contacts.sort_by_key(key);
    Exposed { host, contacts }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_that_do_not_pack_come_out_merged_with_the_others() {
        let base = 1_800_000_000;
        let nets = ["198.51.100.0/24", "2001:db8::/32"].map(|n| n.parse().unwrap());
        let (wanted, mut found) = (Wanted::new(nets), Found::new(base));
        let inside = IpAddr::from([10, 0, 0, 1]);
        let key = |remote: &str, port| Key {
            inside,
            remote: remote.parse().unwrap(),
            proto: 6,
            port,
            inbound: false,
        };
        let seen = |first, count| Seen { first, last: first + 10, count };
        // Packs; a count too large to; a time before the base; packs again.
        for s in [seen(base + 5, 1), seen(base + 100, 20_000), seen(base - 50, 2), seen(base, 3)] {
            found.add(&key("198.51.100.7", 443), &s, &wanted);
        }
        found.add(&key("2001:db8::9", 53), &seen(base, 1), &wanted);
        found.add(&key("192.0.2.1", 443), &seen(base, 1), &wanted);
        let hosts: Vec<_> = found.into_hosts().collect();
        assert_eq!(hosts.len(), 1);
        let c = &hosts[0].contacts;
        assert_eq!(c.len(), 2, "192.0.2.1 is not wanted: {c:?}");
        let v4 = c.iter().find(|c| c.port == 443).unwrap();
        assert_eq!((v4.first, v4.last, v4.count), (base - 50, base + 110, 20_006));
        assert_eq!(v4.entry.to_string(), "198.51.100.0/24");
        let v6 = c.iter().find(|c| c.port == 53).unwrap();
        assert_eq!(
            (v6.remote.to_string(), v6.entry.to_string()),
            ("2001:db8::9".into(), "2001:db8::/32".into())
        );
    }
}
