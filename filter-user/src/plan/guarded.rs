//! A list's parsed entries through the guards: the networks kept, sorted (IPv4 addresses apart,
//! five bytes each and radix-sorted), what the guards refused, left out or split (by line),
//! the repeats, and the entries' shape. A large list is guarded in pieces on every CPU and the
//! sorted pieces are merged in order: the result is the one of a single pass.

use ipnet::IpNet;

use super::{
    guards::{self, GuardOptions, Verdict},
    keys::Radix,
};
use crate::lists::{Entry, LineNote, Shape, entry::Direction};

/// What the guards made of a list's entries.
#[derive(Debug, Default, PartialEq)]
pub struct Guarded {
    pub nets: Nets,
    /// What the guards did, by line (in line order).
    pub notes: Vec<LineNote>,
    /// Entries refused as too broad.
    pub refused: usize,
    /// Entries left out or split around special ranges.
    pub guarded: usize,
    /// The entries' kinds and directions, before the guards.
    pub shape: Shape,
}

/// Guards `entries` (in pieces on several threads when there are many); the networks kept
/// are sorted.
pub fn guard(entries: &[Entry], opts: GuardOptions) -> Guarded {
    let threads = crate::parallel::threads(8);
    let mut all = if threads < 2 || entries.len() < crate::parallel::LARGE {
        guard_piece(entries, opts)
    } else {
        let size = entries.len().div_ceil(threads);
        let pieces: Vec<Guarded> = std::thread::scope(|s| {
            let handles: Vec<_> =
                entries.chunks(size).map(|c| s.spawn(move || guard_piece(c, opts))).collect();
            handles.into_iter().map(|h| h.join().expect("guard thread")).collect()
        });
        join(pieces)
    };
    all.nets.sort_other();
    all
}

/// One piece: the guards, then its IPv4 addresses sorted.
fn guard_piece(entries: &[Entry], opts: GuardOptions) -> Guarded {
    let mut g = Guarded { nets: Nets::with_capacity(entries.len()), ..Default::default() };
    for e in entries {
        g.shape.count(e);
        match guards::check(e.net, opts) {
            Verdict::Keep => g.nets.push(e.net, e.direction),
            Verdict::Refused(reason) => {
                g.refused += 1;
                g.notes.push(LineNote { line: e.line, reason });
            }
            Verdict::Special(reason) => {
                g.guarded += 1;
                g.notes.push(LineNote { line: e.line, reason });
            }
            Verdict::Split(pieces, reason) => {
                g.guarded += 1;
                pieces.into_iter().for_each(|p| g.nets.push(p, e.direction));
                g.notes.push(LineNote { line: e.line, reason });
            }
        }
    }
    radsort::sort_by_key(&mut g.nets.hosts, |(a, _)| u32::from_be_bytes(*a));
    g
}

/// The pieces in order as one: sorted address runs merged (stably), the rest appended.
fn join(pieces: Vec<Guarded>) -> Guarded {
    let mut all = Guarded::default();
    let mut runs = Vec::with_capacity(pieces.len());
    for p in pieces {
        runs.push(p.nets.hosts);
        all.nets.other.extend(p.nets.other);
        all.notes.extend(p.notes);
        (all.refused, all.guarded) = (all.refused + p.refused, all.guarded + p.guarded);
        all.shape = all.shape.plus(&p.shape);
    }
    while runs.len() > 1 {
        let mut next = Vec::with_capacity(runs.len().div_ceil(2));
        let mut it = runs.into_iter();
        while let Some(a) = it.next() {
            next.push(match it.next() {
                Some(b) => merge(&a, &b),
                None => a,
            });
        }
        runs = next;
    }
    all.nets.hosts = runs.pop().unwrap_or_default();
    all
}

type Host = ([u8; 4], Direction);

/// Two sorted runs as one; on equal addresses, `a`'s first (as a stable sort would).
fn merge(a: &[Host], b: &[Host]) -> Vec<Host> {
    let key = |h: &Host| u32::from_be_bytes(h.0);
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if key(&b[j]) < key(&a[i]) {
            out.push(b[j]);
            j += 1;
        } else {
            out.push(a[i]);
            i += 1;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

/// A list's guarded networks, sorted: IPv4 addresses (most of the largest lists) apart, five
/// bytes each and radix-sorted, so that a million entries cost a few passes over memory.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Nets {
    pub hosts: Vec<Host>,
    /// Prefixes and IPv6 addresses.
    pub other: Vec<(IpNet, Direction)>,
}

impl Nets {
    fn with_capacity(n: usize) -> Self {
        Self { hosts: Vec::with_capacity(n), other: Vec::new() }
    }

    fn push(&mut self, net: IpNet, d: Direction) {
        match net {
            IpNet::V4(n) if n.prefix_len() == 32 => self.hosts.push((n.addr().octets(), d)),
            _ => self.other.push((net, d)),
        }
    }

    pub fn len(&self) -> usize {
        self.hosts.len() + self.other.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sorts the prefixes and IPv6 addresses (the IPv4 addresses are sorted by piece).
    fn sort_other(&mut self) {
        // Stable: the pieces' order among equal networks is the list's.
        self.other.sort_by_key(|(n, _)| (n.addr().is_ipv6(), n.radix()));
    }

    /// Once sorted: how many repeat the one before, and the distinct prefixes.
    pub fn repeats(&self) -> (usize, Vec<IpNet>) {
        let mut duplicates = self.hosts.windows(2).filter(|w| w[0].0 == w[1].0).count();
        let mut prefixes = Vec::new();
        for (i, (net, _)) in self.other.iter().enumerate() {
            if i > 0 && self.other[i - 1].0 == *net {
                duplicates += 1;
            } else if net.prefix_len() < net.max_prefix_len() {
                prefixes.push(*net);
            }
        }
        (duplicates, prefixes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_list_guarded_in_pieces_gives_what_one_pass_gives() {
        // Addresses from a small space (many repeats, in both directions), special ranges
        // (left out or split), broad prefixes (refused), IPv6: across every piece boundary.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let dirs = [Direction::Both, Direction::Src, Direction::Dst];
        let entries: Vec<Entry> = (0..crate::parallel::LARGE * 4)
            .map(|i| {
                let r = next();
                let a = std::net::Ipv4Addr::from(
                    (r as u32) & 0xc0ff_03ff | (0x0a00_0000 * (r >> 40 & 1) as u32),
                );
                let net: IpNet = match r >> 32 & 15 {
                    0 => format!("{}/24", a).parse::<IpNet>().unwrap().trunc(),
                    1 => "0.0.0.0/5".parse().unwrap(),
                    2 => IpNet::from(
                        format!("2001:db8::{:x}", r & 0xff).parse::<std::net::IpAddr>().unwrap(),
                    ),
                    _ => IpNet::from(std::net::IpAddr::V4(a)),
                };
                Entry { net, line: i + 1, direction: dirs[(r >> 50) as usize % 3] }
            })
            .collect();
        let opts = GuardOptions::default();
        let mut one = guard_piece(&entries, opts);
        one.nets.sort_other();
        let pieces = guard(&entries, opts);
        assert!(one.nets.repeats().0 > 1000 && one.refused > 1000 && one.guarded > 1000);
        assert_eq!(pieces, one);
    }
}
