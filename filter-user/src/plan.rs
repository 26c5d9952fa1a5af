//! Planning: what the maps should hold, computed from guarded entries without touching the kernel.
//!
//! - Duplicates merge: their direction flags and list bits are OR-ed (an entry keeps every list
//!   that holds it).
//! - Entries inside an allowlisted network are dropped (they could never match); the allowlist
//!   itself goes to the kernel, which checks it before dropping, so it also wins over prefixes
//!   that contain an allowed address and over entries added later.
//! - Prefixes with the same flags and lists are aggregated (ipnet) so the tries hold the fewest.
//! - An LPM lookup returns only the longest match, so every entry inherits the flags and lists
//!   of the prefixes that cover it; an entry that adds nothing to its covering prefix is dropped
//!   ("covered"). Exact addresses stay exact: they are never merged into prefixes.

use std::collections::{BTreeMap, HashMap};

use filter_common::{V4Key, V6Key};
use ipnet::IpNet;

#[path = "plan_keys.rs"]
mod keys;
use keys::{Allowed, Family, split};

/// Direction flags and list bits of an entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Meta {
    /// `FLAG_*` bits.
    pub flags: u32,
    /// Bit i: list i holds it.
    pub lists: u64,
}

impl Meta {
    /// Both fields OR-ed.
    pub fn union(self, other: Meta) -> Meta {
        Meta { flags: self.flags | other.flags, lists: self.lists | other.lists }
    }

    /// True when `self` adds nothing to `other`.
    pub fn within(self, other: Meta) -> bool {
        self.flags & !other.flags == 0 && self.lists & !other.lists == 0
    }
}

/// A prefix key: (prefix length, masked address bytes).
pub type PrefixKey<const N: usize> = (u8, [u8; N]);
/// Map entries with their metadata.
pub type Entries<K> = Vec<(K, Meta)>;

/// What planning merged or removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PlanStats {
    /// Entries that were already present (same network) and merged.
    pub duplicates: usize,
    /// Prefixes saved by aggregating adjacent or nested prefixes.
    pub aggregated: usize,
    /// Entries dropped because a covering prefix already blocks them the same way.
    pub covered: usize,
    /// Entries dropped because the allowlist contains them.
    pub allowlisted: usize,
}

/// The desired content of every map.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Exact IPv4 addresses, sorted.
    pub v4_exact: Vec<(V4Key, Meta)>,
    /// Exact IPv6 addresses, sorted.
    pub v6_exact: Vec<(V6Key, Meta)>,
    /// IPv4 prefixes (length, masked address), sorted.
    pub v4_prefix: Vec<((u8, V4Key), Meta)>,
    /// IPv6 prefixes (length, masked address), sorted.
    pub v6_prefix: Vec<((u8, V6Key), Meta)>,
    /// IPv4 allowlist (length, masked address).
    pub v4_allow: Vec<(u8, V4Key)>,
    /// IPv6 allowlist (length, masked address).
    pub v6_allow: Vec<(u8, V6Key)>,
    /// What planning merged or removed.
    pub stats: PlanStats,
}

impl Plan {
    /// Plans from entries with their metadata, and the networks that must never be blocked.
    pub fn build(entries: impl IntoIterator<Item = (IpNet, Meta)>, allow: &[IpNet]) -> Self {
        let mut stats = PlanStats::default();
        let allow = IpNet::aggregate(&allow.iter().map(IpNet::trunc).collect());
        let (mut v4, mut v6, total) = split(entries);
        v4.merge();
        v6.merge();
        stats.duplicates = total - v4.len() - v6.len();
        let allowed = Allowed::new(&allow);
        stats.allowlisted = v4.remove_allowed(&allowed) + v6.remove_allowed(&allowed);
        let mut plan = Plan { stats, ..Default::default() };
        (plan.v4_exact, plan.v4_prefix) = v4.finish(&mut plan.stats);
        (plan.v6_exact, plan.v6_prefix) = v6.finish(&mut plan.stats);
        for net in &allow {
            match net {
                IpNet::V4(n) => plan.v4_allow.push((n.prefix_len(), n.network().octets())),
                IpNet::V6(n) => plan.v6_allow.push((n.prefix_len(), n.network().octets())),
            }
        }
        plan
    }

    /// Plans entries of one list (list bit 0), each with its direction flags, without allowlist.
    pub fn from_entries(entries: impl IntoIterator<Item = (IpNet, u32)>) -> Self {
        Self::build(entries.into_iter().map(|(n, flags)| (n, Meta { flags, lists: 1 })), &[])
    }

    /// Number of address entries (not counting the allowlist).
    pub fn len(&self) -> usize {
        self.v4_exact.len() + self.v6_exact.len() + self.v4_prefix.len() + self.v6_prefix.len()
    }

    /// True when the plan holds no address entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Groups prefixes by metadata and aggregates each group.
fn aggregate_prefixes(prefixes: Vec<(IpNet, Meta)>) -> Vec<(IpNet, Meta)> {
    let mut groups: BTreeMap<Meta, Vec<IpNet>> = BTreeMap::new();
    for (net, meta) in prefixes {
        groups.entry(meta).or_default().push(net);
    }
    let mut out = Vec::new();
    for (meta, nets) in groups {
        out.extend(IpNet::aggregate(&nets).into_iter().map(|n| (n, meta)));
    }
    out
}

impl<const N: usize> Family<N> {
    /// Aggregates, applies inheritance, drops covered entries; returns (exact, prefixes), sorted.
    fn finish(self, stats: &mut PlanStats) -> (Entries<[u8; N]>, Entries<PrefixKey<N>>) {
        let before = self.prefixes.len();
        let mut prefixes = aggregate_prefixes(self.prefixes);
        stats.aggregated += before - prefixes.len();
        // Shortest first, so that every coverer is final before what it covers.
        prefixes.sort_by_key(|(n, _)| (n.prefix_len(), n.network()));
        let mut kept: HashMap<(u8, [u8; N]), Meta> = HashMap::with_capacity(prefixes.len());
        let mut lengths: Vec<u8> = Vec::new();
        for (net, own) in prefixes {
            let (len, addr) = keys::key::<N>(&net);
            match keys::nearest(&kept, &lengths, len, &addr) {
                Some(cover) if own.within(cover) => stats.covered += 1,
                cover => {
                    kept.insert((len, addr), own.union(cover.unwrap_or_default()));
                    if lengths.last() != Some(&len) {
                        lengths.push(len);
                    }
                }
            }
        }
        let mut exact = Vec::with_capacity(self.exact.len());
        for (addr, own) in self.exact {
            match keys::nearest(&kept, &lengths, (N * 8) as u8, &addr) {
                Some(cover) if own.within(cover) => stats.covered += 1,
                cover => exact.push((addr, own.union(cover.unwrap_or_default()))),
            }
        }
        exact.sort_unstable_by_key(|(k, _)| *k);
        let mut prefixes: Vec<_> = kept.into_iter().collect();
        prefixes.sort_unstable_by_key(|(k, _)| *k);
        (exact, prefixes)
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
