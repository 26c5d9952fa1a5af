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

//!
//! The folder is the pure middle layer: `pipeline` (sources' text -> guarded lists -> plan),
//! `guards`, `own` (this machine's addresses), `diff` (what moves the maps from one plan to the
//! next). It may use `lists`; it never imports `maps` or `daemon`, and touches no kernel.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap as HashMap;

use filter_common::{AddressMap, FLAG_BOTH, Family as Fam, MapKind};
use ipnet::IpNet;

pub mod diff;
mod guarded;
pub mod guards;
mod keys;
pub mod own;
pub mod pipeline;
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

    /// The directions it blocks and monitors, as shown to operators: "src", "dst", "both",
    /// "monitor dst", "src, monitor dst"...
    pub fn directions(self) -> String {
        let name = |bits: u32| match bits {
            1 => "src",
            2 => "dst",
            _ => "both",
        };
        let enforce = self.flags & FLAG_BOTH;
        let monitor = (self.flags >> 2) & !enforce & FLAG_BOTH;
        match (enforce, monitor) {
            (0, 0) => "none".into(),
            (e, 0) => name(e).into(),
            (0, m) => format!("monitor {}", name(m)),
            (e, m) => format!("{}, monitor {}", name(e), name(m)),
        }
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

/// What one address family's maps should hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tables<const N: usize> {
    /// Exact addresses, sorted.
    pub exact: Entries<[u8; N]>,
    /// Prefixes (length, masked address), sorted.
    pub prefix: Entries<PrefixKey<N>>,
    /// Allowlist networks (length, masked address), sorted.
    pub allow: Vec<PrefixKey<N>>,
}

impl<const N: usize> Default for Tables<N> {
    fn default() -> Self {
        Self { exact: Vec::new(), prefix: Vec::new(), allow: Vec::new() }
    }
}

impl<const N: usize> Tables<N> {
    /// Entries of the map of this kind.
    pub fn count(&self, kind: MapKind) -> usize {
        match kind {
            MapKind::Exact => self.exact.len(),
            MapKind::Prefix => self.prefix.len(),
            MapKind::Allow => self.allow.len(),
        }
    }

    /// Every address entry (exact, then prefixes) as a network.
    pub fn nets(&self) -> impl Iterator<Item = (IpNet, Meta)> + '_ {
        let exact = self.exact.iter().map(|(a, m)| (net(a, (N * 8) as u8), *m));
        exact.chain(self.prefix.iter().map(|((l, a), m)| (net(a, *l), *m)))
    }
}

/// The network of `len` bits at address bytes `a` (4 or 16 of them).
pub fn net<const N: usize>(a: &[u8; N], len: u8) -> IpNet {
    let addr = match N {
        4 => std::net::IpAddr::from(<[u8; 4]>::try_from(&a[..]).expect("4 bytes")),
        _ => std::net::IpAddr::from(<[u8; 16]>::try_from(&a[..]).expect("16 bytes")),
    };
    IpNet::new(addr, len).expect("plan keys have valid lengths")
}

/// The plan key (length, masked address bytes) of a network of this family.
pub fn prefix_key<const N: usize>(net: &IpNet) -> PrefixKey<N> {
    keys::key(net)
}

/// The desired content of every map.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub v4: Tables<4>,
    pub v6: Tables<16>,
    /// What planning merged or removed.
    pub stats: PlanStats,
}

impl Plan {
    /// Plans from entries with their metadata, and the networks that must never be blocked.
    pub fn build(entries: impl IntoIterator<Item = (IpNet, Meta)>, allow: &[IpNet]) -> Self {
        Self::build_sized(entries, allow, 0)
    }

    /// [`Plan::build`] for entries among which about `v4_hosts` are IPv4 addresses (room is
    /// made for them at once: a million entries are not copied to ever larger buffers).
    pub fn build_sized(
        entries: impl IntoIterator<Item = (IpNet, Meta)>,
        allow: &[IpNet],
        v4_hosts: usize,
    ) -> Self {
        let mut stats = PlanStats::default();
        let allow = IpNet::aggregate(&allow.iter().map(IpNet::trunc).collect());
        let (mut v4, mut v6, total) = split(entries, v4_hosts);
        v4.merge();
        v6.merge();
        stats.duplicates = total - v4.len() - v6.len();
        let allowed = Allowed::new(&allow);
        stats.allowlisted = v4.remove_allowed(&allowed) + v6.remove_allowed(&allowed);
        let mut plan = Plan { stats, ..Default::default() };
        (plan.v4.exact, plan.v4.prefix) = v4.finish(&mut plan.stats);
        (plan.v6.exact, plan.v6.prefix) = v6.finish(&mut plan.stats);
        for net in &allow {
            match net {
                IpNet::V4(n) => plan.v4.allow.push((n.prefix_len(), n.network().octets())),
                IpNet::V6(n) => plan.v6.allow.push((n.prefix_len(), n.network().octets())),
            }
        }
        plan
    }

    /// Entries the plan puts in address map `m`.
    pub fn count(&self, m: &AddressMap) -> usize {
        match m.family {
            Fam::V4 => self.v4.count(m.kind),
            Fam::V6 => self.v6.count(m.kind),
        }
    }

    /// (label, entries) for every address map, in `ADDRESS_MAPS` order.
    pub fn counts(&self) -> [(&'static str, usize); filter_common::ADDRESS_MAPS.len()] {
        filter_common::ADDRESS_MAPS.map(|m| (m.label, self.count(&m)))
    }

    /// Every address entry (not the allowlist) as a network.
    pub fn nets(&self) -> impl Iterator<Item = (IpNet, Meta)> + '_ {
        self.v4.nets().chain(self.v6.nets())
    }

    /// Address entries that list bit `bit` holds.
    pub fn list_count(&self, bit: u32) -> usize {
        self.nets().filter(|(_, m)| m.lists & (1u64 << bit) != 0).count()
    }

    /// Number of address entries (not counting the allowlist).
    pub fn len(&self) -> usize {
        self.v4.exact.len() + self.v6.exact.len() + self.v4.prefix.len() + self.v6.prefix.len()
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
        let mut kept: HashMap<(u8, [u8; N]), Meta> = HashMap::default();
        kept.reserve(prefixes.len());
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
        // In place, keeping the order `merge` sorted them in.
        let mut exact = self.exact;
        exact.retain_mut(|(addr, own)| match keys::nearest(&kept, &lengths, (N * 8) as u8, addr) {
            Some(cover) if own.within(cover) => {
                stats.covered += 1;
                false
            }
            cover => {
                *own = own.union(cover.unwrap_or_default());
                true
            }
        });
        let mut prefixes: Vec<_> = kept.into_iter().collect();
        prefixes.sort_unstable_by_key(|(k, _)| *k);
        (exact, prefixes)
    }
}

#[cfg(test)]
mod tests;
