//! Who already talked to them: the journal's rows whose remote address a set of networks
//! covers, by inside host. Asked by `takedown exposed`, and by the daemon for the entries each
//! change adds.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

use crate::daemon::status::utc;

pub use super::findings::Findings;
pub use super::wanted::Wanted;
use super::{found::Found, store::Store};

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

/// Readers of the journal at most: each reads every hour and keeps the rows of its share of
/// the inside hosts (no two hold the same row: the rows are held once).
const READERS: usize = 8;

/// The journal's rows since `since` whose remote `wanted` covers, by inside host (sorted);
/// and what could not be read. Up to `workers` threads read the hours.
pub fn find(
    store: &Store,
    since: u64,
    wanted: &Wanted,
    workers: usize,
) -> (Vec<Exposed>, Vec<String>) {
    let (found, problems) = find_each(store, since, wanted, workers);
    (found.all(), problems)
}

/// [`find`], what was found given as [`Findings`] (each host's contacts are made when it
/// comes).
pub fn find_each(
    store: &Store,
    since: u64,
    wanted: &Wanted,
    workers: usize,
) -> (Findings, Vec<String>) {
    // Times are packed from a day before the oldest hour read, its rows being later, or 700
    // days before the newest if that is later (a stray hour from long ago must not leave
    // every other row out of the 776 days that pack). A row from before is held apart in
    // full (see `found`).
    let (files, day) = (store.files_since(since), 24 * 3600);
    let oldest = files.first().map_or(since, |f| f.hour);
    let newest = files.last().map_or(since, |f| f.hour);
    let base = oldest.saturating_sub(day).max(newest.saturating_sub(700 * day));
    let (found, problems) = Store::read_each(
        &files,
        workers.clamp(1, READERS),
        |part, parts| (part, parts, Found::new(base)),
        |(part, parts, found), k, s| {
            if s.last >= since && share(k.inside, *parts) == *part {
                found.add(&k, &s, wanted);
            }
        },
    );
    (Findings(found.into_iter().map(|(_, _, f)| f).collect()), problems)
}

/// The reader whose share inside host `a` is, of `parts`.
fn share(a: IpAddr, parts: usize) -> usize {
    let bits = match a {
        IpAddr::V4(a) => u64::from(a.to_bits()),
        IpAddr::V6(a) => {
            let b = a.to_bits();
            (b >> 64) as u64 ^ b as u64
        }
    };
    ((bits.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) % parts as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::journal::block::{self, Key, Seen};

    /// Rows of 40 hosts (IPv4 and IPv6) over 6 hours, each contact seen every hour, twice.
    fn journal(dir: &std::path::Path) -> Store {
        let store = Store::new(dir);
        let hour = 1_800_000_000 / 3600 * 3600;
        for h in 0..6u64 {
            let mut rows: Vec<(Key, Seen)> = (0..40u8)
                .flat_map(|i| {
                    let v6 = i % 4 == 0;
                    let inside: IpAddr = match v6 {
                        true => format!("2001:db8::{i}").parse().unwrap(),
                        false => IpAddr::from([10, 0, 0, i]),
                    };
                    [(7, 443), (9, 53)].map(|(r, port)| {
                        let remote = match v6 {
                            true => format!("2001:db8:1::{r}").parse().unwrap(),
                            false => IpAddr::from([198, 51, 100, r]),
                        };
                        let key = Key { inside, remote, proto: 6, port, inbound: i % 5 == 0 };
                        (
                            key,
                            Seen {
                                first: hour + h * 3600 + 1,
                                last: hour + h * 3600 + 9,
                                count: 2,
                            },
                        )
                    })
                })
                .collect();
            store.append(hour + h * 3600, &block::encode(&mut rows).unwrap()).unwrap();
        }
        store
    }

    #[test]
    fn many_readers_find_what_one_does_merged_across_hours_hosts_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = journal(dir.path());
        let wanted =
            Wanted::new(["198.51.100.7/32", "2001:db8:1::/120"].map(|n| n.parse().unwrap()));
        let (one, problems) = find(&store, 0, &wanted, 1);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(one.len(), 40);
        assert!(one.windows(2).all(|w| w[0].host < w[1].host), "in the order of addresses");
        let c = &one[1].contacts;
        assert_eq!(c.len(), 1, "198.51.100.9 is not wanted");
        assert_eq!(
            (c[0].count, c[0].port, c[0].entry.to_string()),
            (12, 443, "198.51.100.7/32".into())
        );
        let hour = 1_800_000_000 / 3600 * 3600;
        assert_eq!((c[0].first, c[0].last), (hour + 1, hour + 5 * 3600 + 9));
        for readers in [2, 3, 8, 20] {
            assert_eq!(find(&store, 0, &wanted, readers).0, one, "{readers} readers");
        }
        // The hosts are shared among the readers.
        let shares: std::collections::HashSet<_> = one.iter().map(|e| share(e.host, 3)).collect();
        assert_eq!(shares.len(), 3);
        // Since the fourth hour: three hours' rows.
        let (late, _) = find(&store, hour + 3 * 3600, &wanted, 3);
        assert_eq!(late[0].contacts[0].count, 6);
    }

    #[test]
    fn output_comes_in_order_and_stops_at_the_first_error_of_its_taker() {
        let dir = tempfile::tempdir().unwrap();
        let store = journal(dir.path());
        let wanted = Wanted::new(["198.51.100.0/24".parse().unwrap()]);
        for readers in [1, 2, 4] {
            let (found, _) = find_each(&store, 0, &wanted, readers);
            let mut hosts = Vec::new();
            let stopped = found.each(
                || |e: Exposed| e.host,
                |host| {
                    hosts.push(host);
                    if hosts.len() == 25 { Err("full") } else { Ok(()) }
                },
            );
            assert_eq!((stopped, hosts.len()), (Err("full"), 25), "{readers} readers");
            assert!(hosts.windows(2).all(|w| w[0] < w[1]), "in the order of addresses");
        }
    }

    #[test]
    fn a_damaged_hour_is_named_once_whatever_the_readers() {
        let dir = tempfile::tempdir().unwrap();
        let store = journal(dir.path());
        let damaged = &store.files()[2].path;
        let mut bytes = std::fs::read(damaged).unwrap();
        bytes[20] ^= 0xff;
        std::fs::write(damaged, bytes).unwrap();
        let wanted = Wanted::new(["198.51.100.7/32".parse().unwrap()]);
        let (one, problems) = find(&store, 0, &wanted, 1);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(one[1].contacts[0].count, 10, "the five other hours");
        assert_eq!(find(&store, 0, &wanted, 4), (one, problems));
    }
}
