//! `takedown lookup`: what the filter decides for one address, and why (the entries that match
//! it with their lists, or the allowlist entry that protects it). Reads the maps only.

use std::net::IpAddr;

use anyhow::Result;
use filter_common::{FLAG_DST, FLAG_SRC};
use ipnet::IpNet;

use super::{FamilyMaps, FilterMaps, table};
use crate::plan::{Meta, net};

/// The verdict for one address.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Found {
    /// Entries that cover it (the exact one first, then prefixes, longest first).
    pub matches: Vec<(IpNet, Meta)>,
    /// The allowlist entry that protects it.
    pub allowed: Option<IpNet>,
    /// Packets from it are dropped.
    pub drops_src: bool,
    /// Packets to it are dropped.
    pub drops_dst: bool,
}

/// Looks `addr` up in the maps as the kernel would.
pub fn lookup(maps: &FilterMaps, addr: IpAddr) -> Result<Found> {
    let mut found = match addr {
        IpAddr::V4(a) => in_family(&maps.addr.v4, a.octets())?,
        IpAddr::V6(a) => in_family(&maps.addr.v6, a.octets())?,
    };
    found.matches.sort_by_key(|(n, _)| std::cmp::Reverse(n.prefix_len()));
    let flags = found.matches.iter().fold(0, |f, (_, m)| f | m.flags);
    found.drops_src = found.allowed.is_none() && flags & FLAG_SRC != 0;
    found.drops_dst = found.allowed.is_none() && flags & FLAG_DST != 0;
    Ok(found)
}

fn in_family<const N: usize>(maps: &FamilyMaps<N>, addr: [u8; N]) -> Result<Found> {
    let host = net(&addr, (N * 8) as u8);
    let mut found = Found::default();
    if let Some(v) = maps.exact.get(&addr)? {
        found.matches.push((host, table::meta(&v)));
    }
    for ((len, a), v) in maps.prefix.entries()? {
        let n = net(&a, len);
        if n.contains(&host) {
            found.matches.push((n, table::meta(&v)));
        }
    }
    let allow = maps.allow.entries()?.into_iter().map(|((len, a), _)| net(&a, len));
    found.allowed = allow.filter(|n| n.contains(&host)).max_by_key(IpNet::prefix_len);
    Ok(found)
}
