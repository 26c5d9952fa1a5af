//! The networks `exposed` looks for, held as numbers: exact addresses in one set, prefixes in a
//! set a length, each family apart (a 1.24M-address list takes some 12 MB; a lookup is a few
//! hashes of a machine word, no SipHash of an enum).

use std::{hash::Hash, net::IpAddr};

use ipnet::IpNet;
use rustc_hash::FxHashSet;

/// An address family's numbers.
trait Word: Copy + Eq + Hash {
    const BITS: u8;
    /// The first `len` bits of `self`, the rest zero.
    fn masked(self, len: u8) -> Self;
}

impl Word for u32 {
    const BITS: u8 = 32;
    fn masked(self, len: u8) -> Self {
        if len == 0 { 0 } else { self & (u32::MAX << (32 - len)) }
    }
}

impl Word for u128 {
    const BITS: u8 = 128;
    fn masked(self, len: u8) -> Self {
        if len == 0 { 0 } else { self & (u128::MAX << (128 - len)) }
    }
}

/// One family's networks.
struct Family<W> {
    exact: FxHashSet<W>,
    /// Prefix sets, the longest prefix first.
    prefixes: Vec<(u8, FxHashSet<W>)>,
}

impl<W: Word> Default for Family<W> {
    fn default() -> Self {
        Self { exact: FxHashSet::default(), prefixes: Vec::new() }
    }
}

impl<W: Word> Family<W> {
    fn insert(&mut self, a: W, len: u8) {
        if len == W::BITS {
            self.exact.insert(a);
            return;
        }
        let at = match self.prefixes.iter().position(|(l, _)| *l <= len) {
            Some(i) if self.prefixes[i].0 == len => i,
            Some(i) => {
                self.prefixes.insert(i, (len, FxHashSet::default()));
                i
            }
            None => {
                self.prefixes.push((len, FxHashSet::default()));
                self.prefixes.len() - 1
            }
        };
        self.prefixes[at].1.insert(a.masked(len));
    }

    fn merge(&mut self, mut other: Self) {
        // The smaller set goes into the larger.
        if self.exact.len() < other.exact.len() {
            std::mem::swap(&mut self.exact, &mut other.exact);
        }
        self.exact.extend(other.exact);
        for (len, set) in other.prefixes {
            set.into_iter().for_each(|a| self.insert(a, len));
        }
    }

    fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.prefixes.is_empty()
    }

    /// The length of the longest wanted network covering `a`.
    fn covering(&self, a: W) -> Option<u8> {
        if self.exact.contains(&a) {
            return Some(W::BITS);
        }
        self.prefixes.iter().find(|(len, set)| set.contains(&a.masked(*len))).map(|(len, _)| *len)
    }
}

/// The networks looked for.
#[derive(Default)]
pub struct Wanted {
    v4: Family<u32>,
    v6: Family<u128>,
}

impl Wanted {
    pub fn new(nets: impl IntoIterator<Item = IpNet>) -> Self {
        let mut w = Self::default();
        for n in nets {
            match n {
                IpNet::V4(n) => w.v4.insert(n.addr().to_bits(), n.prefix_len()),
                IpNet::V6(n) => w.v6.insert(n.addr().to_bits(), n.prefix_len()),
            }
        }
        w
    }

    /// Also looks for what `other` looks for.
    pub fn merge(&mut self, other: Wanted) {
        self.v4.merge(other.v4);
        self.v6.merge(other.v6);
    }

    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// The length of the most specific wanted network covering `a`.
    pub fn covering_len(&self, a: IpAddr) -> Option<u8> {
        match a {
            IpAddr::V4(a) => self.v4.covering(a.to_bits()),
            IpAddr::V6(a) => self.v6.covering(a.to_bits()),
        }
    }
}

/// The network of `len` bits holding `a`.
pub fn net(a: IpAddr, len: u8) -> Option<IpNet> {
    IpNet::new(a, len).ok().map(|n| n.trunc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_specific_network_covers() {
        let nets = ["198.51.100.0/24", "198.51.0.0/16", "198.51.100.7/32", "0.0.0.0/0"];
        let mut w = Wanted::new(nets.iter().map(|n| n.parse().unwrap()));
        w.merge(Wanted::new([
            "2001:db8::/32".parse().unwrap(),
            "2001:db8::1/128".parse().unwrap(),
        ]));
        let at = |a: &str| {
            let a = a.parse().unwrap();
            w.covering_len(a).and_then(|len| net(a, len)).map(|n| n.to_string())
        };
        assert_eq!(at("198.51.100.7").as_deref(), Some("198.51.100.7/32"));
        assert_eq!(at("198.51.100.8").as_deref(), Some("198.51.100.0/24"));
        assert_eq!(at("198.51.7.8").as_deref(), Some("198.51.0.0/16"));
        assert_eq!(at("203.0.113.1").as_deref(), Some("0.0.0.0/0"));
        assert_eq!(at("2001:db8::1").as_deref(), Some("2001:db8::1/128"));
        assert_eq!(at("2001:db8:1::1").as_deref(), Some("2001:db8::/32"));
        assert_eq!(at("2001:db9::1"), None);
    }
}
