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

/// Splits entries by family and kind (masking host bits); also returns how many there were.
pub fn split(entries: impl IntoIterator<Item = (IpNet, Meta)>) -> (Family<4>, Family<16>, usize) {
    let (mut v4, mut v6) = (Family::<4>::default(), Family::<16>::default());
    let mut total = 0;
    for (net, meta) in entries {
        total += 1;
        match net.trunc() {
            IpNet::V4(n) if n.prefix_len() == 32 => v4.exact.push((n.addr().octets(), meta)),
            IpNet::V6(n) if n.prefix_len() == 128 => v6.exact.push((n.addr().octets(), meta)),
            net @ IpNet::V4(_) => v4.prefixes.push((net, meta)),
            net @ IpNet::V6(_) => v6.prefixes.push((net, meta)),
        }
    }
    (v4, v6, total)
}

/// Sorts and merges equal keys, OR-ing their metadata.
fn merge_sorted<K: Ord + Copy>(items: &mut Vec<(K, Meta)>) {
    items.sort_unstable_by_key(|(k, _)| *k);
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
        self.exact.retain(|(a, _)| !allowed.contains(&super::net(a, (N * 8) as u8)));
        self.prefixes.retain(|(n, _)| !allowed.contains(n));
        before - self.len()
    }
}

/// The allowlist, for "is this network inside an allowed one?"
pub struct Allowed {
    nets: HashMap<IpNet, ()>,
    lengths: Vec<(bool, u8)>,
}

impl Allowed {
    pub fn new(allow: &[IpNet]) -> Self {
        let mut lengths: Vec<(bool, u8)> =
            allow.iter().map(|n| (matches!(n, IpNet::V4(_)), n.prefix_len())).collect();
        lengths.sort_unstable();
        lengths.dedup();
        Self { nets: allow.iter().map(|n| (*n, ())).collect(), lengths }
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    pub fn contains(&self, net: &IpNet) -> bool {
        let v4 = matches!(net, IpNet::V4(_));
        self.lengths.iter().filter(|(f, l)| *f == v4 && *l <= net.prefix_len()).any(|(_, l)| {
            IpNet::new(net.addr(), *l).is_ok_and(|outer| self.nets.contains_key(&outer.trunc()))
        })
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
