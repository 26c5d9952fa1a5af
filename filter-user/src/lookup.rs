//! `takedown lookup`: what the filter decides for one address, and why (the entries that match
//! it with their lists, or the allowlist entry that protects it). Reads the maps only.

use std::net::IpAddr;

use anyhow::Result;
use aya::maps::{HashMap, MapData};
use filter_common::{
    EntryValue, FLAG_DST, FLAG_SRC, MAP_V4_ALLOW, MAP_V4_EXACT, MAP_V4_PREFIX, MAP_V6_ALLOW,
    MAP_V6_EXACT, MAP_V6_PREFIX,
};
use ipnet::IpNet;

use crate::{plan::Meta, read::Maps};

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
pub fn lookup(maps: &Maps, addr: IpAddr) -> Result<Found> {
    let (exact_map, prefix_map, allow_map) = match addr {
        IpAddr::V4(_) => (MAP_V4_EXACT, MAP_V4_PREFIX, MAP_V4_ALLOW),
        IpAddr::V6(_) => (MAP_V6_EXACT, MAP_V6_PREFIX, MAP_V6_ALLOW),
    };
    let mut found = Found::default();
    let host = IpNet::from(addr);
    let exact = match addr {
        IpAddr::V4(a) => get::<4>(maps, exact_map, a.octets())?,
        IpAddr::V6(a) => get::<16>(maps, exact_map, a.octets())?,
    };
    if let Some(v) = exact {
        found.matches.push((host, Meta { flags: v.flags, lists: v.lists }));
    }
    let mut prefixes: Vec<(IpNet, Meta)> = match addr {
        // The IPv4 trie's key data is 8 bytes (see filter-common's V4TrieKey).
        IpAddr::V4(_) => covering::<8>(maps, prefix_map, addr)?,
        IpAddr::V6(_) => covering::<16>(maps, prefix_map, addr)?,
    };
    prefixes.sort_by_key(|(n, _)| std::cmp::Reverse(n.prefix_len()));
    found.matches.extend(prefixes);
    found.allowed = match addr {
        IpAddr::V4(_) => allowed::<4>(maps, allow_map, addr)?,
        IpAddr::V6(_) => allowed::<16>(maps, allow_map, addr)?,
    };
    let flags = found.matches.iter().fold(0, |f, (_, m)| f | m.flags);
    found.drops_src = found.allowed.is_none() && flags & FLAG_SRC != 0;
    found.drops_dst = found.allowed.is_none() && flags & FLAG_DST != 0;
    Ok(found)
}

fn get<const N: usize>(maps: &Maps, name: &str, key: [u8; N]) -> Result<Option<EntryValue>> {
    let map: HashMap<&MapData, [u8; N], EntryValue> = HashMap::try_from(maps.get(name)?)?;
    Ok(map.get(&key, 0).ok())
}

fn net<const N: usize>(len: u32, data: [u8; N]) -> Option<IpNet> {
    let addr = match N {
        4 | 8 => IpAddr::from(<[u8; 4]>::try_from(&data[..4]).ok()?),
        _ => IpAddr::from(<[u8; 16]>::try_from(&data[..]).ok()?),
    };
    IpNet::new(addr, len as u8).ok()
}

fn covering<const N: usize>(maps: &Maps, name: &str, addr: IpAddr) -> Result<Vec<(IpNet, Meta)>> {
    let trie: aya::maps::LpmTrie<&MapData, [u8; N], EntryValue> =
        aya::maps::LpmTrie::try_from(maps.get(name)?)?;
    let mut out = Vec::new();
    for item in trie.iter() {
        let (k, v) = item?;
        if let Some(n) = net(k.prefix_len(), k.data()).filter(|n| n.contains(&addr)) {
            out.push((n, Meta { flags: v.flags, lists: v.lists }));
        }
    }
    Ok(out)
}

fn allowed<const N: usize>(maps: &Maps, name: &str, addr: IpAddr) -> Result<Option<IpNet>> {
    let trie: aya::maps::LpmTrie<&MapData, [u8; N], u32> =
        aya::maps::LpmTrie::try_from(maps.get(name)?)?;
    for key in trie.keys() {
        let k = key?;
        if let Some(n) = net(k.prefix_len(), k.data()).filter(|n| n.contains(&addr)) {
            return Ok(Some(n));
        }
    }
    Ok(None)
}
