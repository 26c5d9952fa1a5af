//! Key helpers for the planner: per-family entry sets, masking, and covering-prefix lookups.

use rustc_hash::FxHashMap as HashMap;

use ipnet::IpNet;

use super::Meta;

/// The entries of one address family, split into exact addresses and prefixes.
pub struct Family<const N: usize> {
    pub exact: Vec<([u8; N], Meta)>,
    pub prefixes: Vec<(IpNet, Meta)>,
}

impl<const N: usize> Default for Family<N> {
    fn default() -> Self {
        Self { exact: Vec::new(), prefixes: Vec::new() }
    }
}

/// Splits entries by family and kind (masking host bits), with room for `v4_hosts` IPv4
/// addresses; also returns how many there were.
pub fn split(
    entries: impl IntoIterator<Item = (IpNet, Meta)>,
    v4_hosts: usize,
) -> (Family<4>, Family<16>, usize) {
    let (mut v4, mut v6) = (Family::<4>::default(), Family::<16>::default());
    v4.exact.reserve(v4_hosts);
    let mut total = 0;
    for (net, meta) in entries {
        total += 1;
        match net {
            IpNet::V4(n) if n.prefix_len() == 32 => v4.exact.push((n.addr().octets(), meta)),
            IpNet::V6(n) if n.prefix_len() == 128 => v6.exact.push((n.addr().octets(), meta)),
            IpNet::V4(_) => v4.prefixes.push((net.trunc(), meta)),
            IpNet::V6(_) => v6.prefixes.push((net.trunc(), meta)),
        }
    }
    (v4, v6, total)
}

/// A network's place in address order, as numbers: comparing two of these costs a couple of
/// instructions, where byte arrays and `IpNet`s compare field by field (a million entries are
/// sorted and merged on every load).
pub trait Radix: PartialEq + Copy {
    /// (address, prefix length) as numbers.
    fn radix(&self) -> (u128, u8);
}

impl<const N: usize> Radix for [u8; N] {
    fn radix(&self) -> (u128, u8) {
        let mut wide = [0u8; 16];
        wide[16 - N..].copy_from_slice(self);
        (u128::from_be_bytes(wide), (N * 8) as u8)
    }
}

impl Radix for IpNet {
    fn radix(&self) -> (u128, u8) {
        (number(self.addr()), self.prefix_len())
    }
}

/// A plan key's place in the key order, as numbers: comparing these is comparing the keys
/// (byte arrays compare by `memcmp` calls, a million of them per diff).
pub trait Ordinal: Copy {
    fn ordinal(&self) -> (u8, u128);
}

impl<const N: usize> Ordinal for [u8; N] {
    fn ordinal(&self) -> (u8, u128) {
        (0, self.radix().0)
    }
}

impl<const N: usize> Ordinal for (u8, [u8; N]) {
    fn ordinal(&self) -> (u8, u128) {
        (self.0, self.1.radix().0)
    }
}

/// An address as a number (IPv4 below 2^32).
fn number(a: std::net::IpAddr) -> u128 {
    match a {
        std::net::IpAddr::V4(a) => u128::from(a.to_bits()),
        std::net::IpAddr::V6(a) => a.to_bits(),
    }
}

/// Sorts and merges equal keys (of one family), OR-ing their metadata.
fn merge_sorted<K: Radix>(items: &mut Vec<(K, Meta)>) {
    // Stable: the lists' entries arrive in sorted runs (see `pipeline`), which it merges.
    items.sort_by_key(|(k, _)| k.radix());
    items.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            kept.1 = kept.1.union(later.1);
        }
        same
    });
}

impl<const N: usize> Family<N> {
    /// Merges duplicates.
    pub fn merge(&mut self) {
        merge_sorted(&mut self.exact);
        merge_sorted(&mut self.prefixes);
    }

    /// Entries (exact and prefixes).
    pub fn len(&self) -> usize {
        self.exact.len() + self.prefixes.len()
    }

    /// Drops entries inside an allowed network; returns how many.
    pub fn remove_allowed(&mut self, allowed: &Allowed) -> usize {
        if allowed.is_empty() {
            return 0;
        }
        let before = self.len();
        self.exact.retain(|(a, _)| !allowed.holds(a));
        self.prefixes.retain(|(n, _)| !allowed.contains(n));
        before - self.len()
    }
}

/// The allowlist, for "is this network inside an allowed one?": per family, the allowed
/// networks as sorted, disjoint address ranges (a binary search an entry).
pub struct Allowed {
    ranges: [Vec<(u128, u128)>; 2],
}

/// The first and last address of `net`, as numbers, and its family (0: IPv4, 1: IPv6).
pub fn range(net: &IpNet) -> (usize, u128, u128) {
    (usize::from(net.addr().is_ipv6()), number(net.network()), number(net.broadcast()))
}

impl Allowed {
    /// `allow` must be aggregated (disjoint networks).
    pub fn new(allow: &[IpNet]) -> Self {
        let mut ranges: [Vec<(u128, u128)>; 2] = Default::default();
        for net in allow {
            let (family, first, last) = range(net);
            ranges[family].push((first, last));
        }
        ranges.iter_mut().for_each(|r| r.sort_unstable());
        Self { ranges }
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.iter().all(Vec::is_empty)
    }

    pub fn contains(&self, net: &IpNet) -> bool {
        let (family, first, last) = range(net);
        self.inside(family, first, last)
    }

    /// True when address `a` (4 or 16 bytes) is allowed.
    pub fn holds<const N: usize>(&self, a: &[u8; N]) -> bool {
        let (n, _) = a.radix();
        self.inside(usize::from(N == 16), n, n)
    }

    fn inside(&self, family: usize, first: u128, last: u128) -> bool {
        let r = &self.ranges[family];
        let i = r.partition_point(|(start, _)| *start <= first);
        i > 0 && r[i - 1].1 >= last
    }
}

/// (prefix length, masked address bytes) of a network of this family.
pub fn key<const N: usize>(net: &IpNet) -> (u8, [u8; N]) {
    let bytes: Vec<u8> = match net.network() {
        std::net::IpAddr::V4(a) => a.octets().to_vec(),
        std::net::IpAddr::V6(a) => a.octets().to_vec(),
    };
    (net.prefix_len(), bytes.try_into().expect("family matches"))
}

/// `addr` with every bit after the first `len` cleared.
pub fn mask<const N: usize>(addr: &[u8; N], len: u8) -> [u8; N] {
    let mut out = [0u8; N];
    let len = len as usize;
    for (i, byte) in out.iter_mut().enumerate() {
        let bits = len.saturating_sub(i * 8).min(8);
        *byte = if bits == 0 { 0 } else { addr[i] & (0xffu8 << (8 - bits)) };
    }
    out
}

/// The metadata of the longest kept prefix strictly shorter than `len` that covers `addr`.
pub fn nearest<const N: usize>(
    kept: &HashMap<(u8, [u8; N]), Meta>,
    lengths: &[u8],
    len: u8,
    addr: &[u8; N],
) -> Option<Meta> {
    lengths.iter().rev().filter(|&&l| l < len).find_map(|&l| kept.get(&(l, mask(addr, l))).copied())
}
