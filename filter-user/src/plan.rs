//! Planning: what the maps should hold, computed from parsed lists without touching the kernel.
//!
//! Host entries (/32, /128) go to the exact-address hash maps, shorter prefixes to the LPM tries.
//! Duplicates merge by OR-ing their direction flags. Because an LPM lookup returns only the
//! longest match, a prefix nested in a shorter one inherits the shorter one's flags, so the
//! kernel's answer is the union of every entry that covers an address.

use std::collections::HashMap;

use filter_common::{V4Key, V6Key};
use ipnet::IpNet;

use crate::parse::ParsedList;

/// The desired content of every address map.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Exact IPv4 addresses and their flags, sorted by key.
    pub v4_exact: Vec<(V4Key, u32)>,
    /// Exact IPv6 addresses and their flags, sorted by key.
    pub v6_exact: Vec<(V6Key, u32)>,
    /// IPv4 prefixes (length, masked address) and their flags, sorted.
    pub v4_prefix: Vec<((u8, V4Key), u32)>,
    /// IPv6 prefixes (length, masked address) and their flags, sorted.
    pub v6_prefix: Vec<((u8, V6Key), u32)>,
    /// Entries that were already present (same network) and merged.
    pub duplicates: usize,
}

impl Plan {
    /// Plans from any number of parsed lists.
    pub fn from_lists<'a>(lists: impl IntoIterator<Item = &'a ParsedList>) -> Self {
        Self::from_entries(
            lists
                .into_iter()
                .flat_map(|l| l.entries.iter().map(|e| (e.net, e.direction.flags()))),
        )
    }

    /// Plans from (network, flags) pairs.
    pub fn from_entries(entries: impl IntoIterator<Item = (IpNet, u32)>) -> Self {
        let mut plan = Plan::default();
        let mut total = 0usize;
        for (net, flags) in entries {
            total += 1;
            match net.trunc() {
                IpNet::V4(n) if n.prefix_len() == 32 => {
                    plan.v4_exact.push((n.addr().octets(), flags))
                }
                IpNet::V6(n) if n.prefix_len() == 128 => {
                    plan.v6_exact.push((n.addr().octets(), flags))
                }
                IpNet::V4(n) => plan
                    .v4_prefix
                    .push(((n.prefix_len(), n.addr().octets()), flags)),
                IpNet::V6(n) => plan
                    .v6_prefix
                    .push(((n.prefix_len(), n.addr().octets()), flags)),
            }
        }
        merge(&mut plan.v4_exact);
        merge(&mut plan.v6_exact);
        merge(&mut plan.v4_prefix);
        merge(&mut plan.v6_prefix);
        inherit_covering_flags(&mut plan.v4_prefix);
        inherit_covering_flags(&mut plan.v6_prefix);
        plan.duplicates = total - plan.len();
        plan
    }

    /// Number of distinct entries.
    pub fn len(&self) -> usize {
        self.v4_exact.len() + self.v6_exact.len() + self.v4_prefix.len() + self.v6_prefix.len()
    }

    /// True when the plan holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Sorts and merges equal keys, OR-ing their flags.
fn merge<K: Ord + Copy>(items: &mut Vec<(K, u32)>) {
    items.sort_unstable_by_key(|(k, _)| *k);
    items.dedup_by(|later, kept| {
        if later.0 == kept.0 {
            kept.1 |= later.1;
            true
        } else {
            false
        }
    });
}

/// Gives each prefix the flags of every shorter prefix that contains it.
fn inherit_covering_flags<const N: usize>(prefixes: &mut [((u8, [u8; N]), u32)]) {
    if prefixes.len() < 2 {
        return;
    }
    let flags: HashMap<(u8, [u8; N]), u32> = prefixes.iter().copied().collect();
    let lengths: Vec<u8> = {
        let mut l: Vec<u8> = prefixes.iter().map(|((len, _), _)| *len).collect();
        l.sort_unstable();
        l.dedup();
        l
    };
    for ((len, addr), f) in prefixes.iter_mut() {
        for &shorter in lengths.iter().take_while(|&&l| l < *len) {
            if let Some(outer) = flags.get(&(shorter, mask(addr, shorter))) {
                *f |= outer;
            }
        }
    }
}

/// `addr` with every bit after the first `len` cleared.
fn mask<const N: usize>(addr: &[u8; N], len: u8) -> [u8; N] {
    let mut out = [0u8; N];
    let len = len as usize;
    for (i, byte) in out.iter_mut().enumerate() {
        let bits = len.saturating_sub(i * 8).min(8);
        *byte = if bits == 0 {
            0
        } else {
            addr[i] & (0xffu8 << (8 - bits))
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use filter_common::{FLAG_BOTH, FLAG_DST, FLAG_SRC};

    fn e(s: &str, f: u32) -> (IpNet, u32) {
        (s.parse().unwrap(), f)
    }

    #[test]
    fn hosts_go_to_exact_maps_and_prefixes_to_tries() {
        let p = Plan::from_entries([
            e("192.0.2.1/32", FLAG_BOTH),
            e("2001:db8::1/128", FLAG_SRC),
            e("198.51.100.0/24", FLAG_DST),
            e("2001:db8:1::/48", FLAG_BOTH),
        ]);
        assert_eq!(p.v4_exact, vec![([192, 0, 2, 1], FLAG_BOTH)]);
        assert_eq!(p.v6_exact.len(), 1);
        assert_eq!(p.v4_prefix, vec![((24, [198, 51, 100, 0]), FLAG_DST)]);
        assert_eq!(p.v6_prefix.len(), 1);
        assert_eq!(p.duplicates, 0);
    }

    #[test]
    fn duplicates_merge_their_directions() {
        let p = Plan::from_entries([
            e("192.0.2.1/32", FLAG_SRC),
            e("192.0.2.1/32", FLAG_DST),
            e("192.0.2.1/32", FLAG_SRC),
        ]);
        assert_eq!(p.v4_exact, vec![([192, 0, 2, 1], FLAG_BOTH)]);
        assert_eq!(p.duplicates, 2);
    }

    #[test]
    fn nested_prefixes_inherit_covering_flags() {
        let p = Plan::from_entries([
            e("198.51.0.0/16", FLAG_SRC),
            e("198.51.100.0/24", FLAG_DST),
            e("203.0.113.0/24", FLAG_DST),
        ]);
        assert_eq!(
            p.v4_prefix,
            vec![
                ((16, [198, 51, 0, 0]), FLAG_SRC),
                ((24, [198, 51, 100, 0]), FLAG_BOTH),
                ((24, [203, 0, 113, 0]), FLAG_DST),
            ]
        );
    }

    #[test]
    fn mask_clears_host_bits() {
        assert_eq!(mask(&[198, 51, 100, 255], 20), [198, 51, 96, 0]);
        assert_eq!(mask(&[255; 4], 0), [0; 4]);
        assert_eq!(mask(&[255; 4], 32), [255; 4]);
    }
}
