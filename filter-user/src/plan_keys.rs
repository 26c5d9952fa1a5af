//! Key helpers for the planner: per-family entry sets, masking, and covering-prefix lookups.

use std::collections::HashMap;

use ipnet::IpNet;

use super::{Meta, PlanStats};

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

/// Splits merged entries by family and kind, dropping those inside an allowed network.
pub fn split(
    merged: HashMap<IpNet, Meta>,
    allow: &[IpNet],
    stats: &mut PlanStats,
) -> (Family<4>, Family<16>) {
    let allowed = Allowed::new(allow);
    let (mut v4, mut v6) = (Family::<4>::default(), Family::<16>::default());
    for (net, meta) in merged {
        if allowed.contains(&net) {
            stats.allowlisted += 1;
            continue;
        }
        match net {
            IpNet::V4(n) if n.prefix_len() == 32 => v4.exact.push((n.addr().octets(), meta)),
            IpNet::V6(n) if n.prefix_len() == 128 => v6.exact.push((n.addr().octets(), meta)),
            IpNet::V4(_) => v4.prefixes.push((net, meta)),
            IpNet::V6(_) => v6.prefixes.push((net, meta)),
        }
    }
    (v4, v6)
}

/// The allowlist, for "is this network inside an allowed one?"
struct Allowed {
    nets: HashMap<IpNet, ()>,
    lengths: Vec<(bool, u8)>,
}

impl Allowed {
    fn new(allow: &[IpNet]) -> Self {
        let mut lengths: Vec<(bool, u8)> =
            allow.iter().map(|n| (matches!(n, IpNet::V4(_)), n.prefix_len())).collect();
        lengths.sort_unstable();
        lengths.dedup();
        Self { nets: allow.iter().map(|n| (*n, ())).collect(), lengths }
    }

    fn contains(&self, net: &IpNet) -> bool {
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
