//! Reading the filter's maps (never writing them): their content as a [`Plan`], their sizes,
//! and opening them from a pin directory when no daemon holds them.

use std::collections::BTreeMap;

use anyhow::{Context, Result, anyhow};
use aya::{
    Ebpf, Pod,
    maps::{HashMap, LpmTrie, Map, MapData, lpm_trie::Key},
};
use filter_common::{
    ALL_MAPS, EntryValue, MAP_V4_ALLOW, MAP_V4_EXACT, MAP_V4_PREFIX, MAP_V6_ALLOW, MAP_V6_EXACT,
    MAP_V6_PREFIX,
};

use crate::{
    filter::Capacities,
    pins::Pins,
    plan::{Entries, Meta, Plan, PrefixKey},
};

/// The filter's maps by name: from a loaded filter, or opened from pins.
pub struct Maps {
    maps: BTreeMap<&'static str, Map>,
}

impl Maps {
    /// Opens every pinned map of `pins`.
    pub fn open(pins: &Pins) -> Result<Self> {
        if !pins.has_maps() {
            anyhow::bail!(
                "no filter is pinned at {}: start one with `takedown run`",
                pins.dir().display()
            );
        }
        let mut maps = BTreeMap::new();
        for name in ALL_MAPS {
            let path = pins.map(name);
            let data = MapData::from_pin(&path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            maps.insert(name, Map::from_map_data(data)?);
        }
        Ok(Self { maps })
    }

    /// The map called `name`.
    pub fn get(&self, name: &str) -> Result<&Map> {
        self.maps.get(name).ok_or_else(|| anyhow!("no map {name}"))
    }

    /// The map called `name`, for the sync module.
    pub fn get_mut(&mut self, name: &str) -> Result<&mut Map> {
        self.maps.get_mut(name).ok_or_else(|| anyhow!("no map {name}"))
    }
}

/// The map `name` of a loaded object.
pub fn map<'a>(ebpf: &'a Ebpf, name: &str) -> Result<&'a Map> {
    ebpf.map(name).ok_or_else(|| anyhow!("the filter has no map {name}"))
}

fn data(map: &Map) -> Result<&MapData> {
    match map {
        Map::HashMap(d) | Map::LpmTrie(d) | Map::Array(d) | Map::PerCpuArray(d) => Ok(d),
        _ => Err(anyhow!("unexpected map type")),
    }
}

/// What a set of maps holds, as a plan (the statistics are zero).
pub fn plan<'a>(get: impl Fn(&str) -> Result<&'a Map>) -> Result<Plan> {
    Ok(Plan {
        v4_exact: exact(get(MAP_V4_EXACT)?)?,
        v6_exact: exact(get(MAP_V6_EXACT)?)?,
        v4_prefix: prefixes::<8>(get(MAP_V4_PREFIX)?)?
            .into_iter()
            .map(|((len, k), m)| ((len, filter_common::v4_from_trie(k)), m))
            .collect(),
        v6_prefix: prefixes(get(MAP_V6_PREFIX)?)?,
        v4_allow: allow(get(MAP_V4_ALLOW)?)?,
        v6_allow: allow(get(MAP_V6_ALLOW)?)?,
        stats: Default::default(),
    })
}

/// How many entries each address map may hold.
pub fn capacities<'a>(get: impl Fn(&str) -> Result<&'a Map>) -> Result<Capacities> {
    let cap = |name: &str| -> Result<u32> { Ok(data(get(name)?)?.info()?.max_entries()) };
    Ok(Capacities {
        v4_exact: cap(MAP_V4_EXACT)?,
        v6_exact: cap(MAP_V6_EXACT)?,
        v4_prefix: cap(MAP_V4_PREFIX)?,
        v6_prefix: cap(MAP_V6_PREFIX)?,
        v4_allow: cap(MAP_V4_ALLOW)?,
        v6_allow: cap(MAP_V6_ALLOW)?,
    })
}

fn meta(v: EntryValue) -> Meta {
    Meta { flags: v.flags, lists: v.lists }
}

fn exact<K: Pod + Ord>(m: &Map) -> Result<Vec<(K, Meta)>> {
    let map: HashMap<&MapData, K, EntryValue> = HashMap::try_from(m)?;
    let mut out = Vec::new();
    for item in map.iter() {
        let (k, v) = item?;
        out.push((k, meta(v)));
    }
    out.sort_unstable_by_key(|(k, _)| *k);
    Ok(out)
}

fn prefixes<const N: usize>(m: &Map) -> Result<Entries<PrefixKey<N>>> {
    let trie: LpmTrie<&MapData, [u8; N], EntryValue> = LpmTrie::try_from(m)?;
    let mut out = Vec::new();
    for item in trie.iter() {
        let (k, v): (Key<[u8; N]>, EntryValue) = item?;
        out.push(((k.prefix_len() as u8, k.data()), meta(v)));
    }
    out.sort_unstable_by_key(|(k, _)| *k);
    Ok(out)
}

fn allow<const N: usize>(m: &Map) -> Result<Vec<(u8, [u8; N])>> {
    let trie: LpmTrie<&MapData, [u8; N], u32> = LpmTrie::try_from(m)?;
    let mut out = Vec::new();
    for key in trie.keys() {
        let k = key?;
        out.push((k.prefix_len() as u8, k.data()));
    }
    out.sort_unstable();
    Ok(out)
}

/// An entry with its hit counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryHits {
    pub net: ipnet::IpNet,
    pub meta: Meta,
    pub packets: u64,
    pub bytes: u64,
    /// Kernel monotonic time of the last hit (0: never).
    pub last_hit_ns: u64,
}

/// Every address entry with its counters.
pub fn hits<'a>(get: impl Fn(&str) -> Result<&'a Map>) -> Result<Vec<EntryHits>> {
    let mut out = Vec::new();
    let mut add = |net: ipnet::IpNet, v: EntryValue| {
        out.push(EntryHits {
            net,
            meta: meta(v),
            packets: v.packets,
            bytes: v.bytes,
            last_hit_ns: v.last_hit_ns,
        })
    };
    let ip4 = |a: [u8; 4]| std::net::IpAddr::from(a);
    let ip6 = |a: [u8; 16]| std::net::IpAddr::from(a);
    let m4: HashMap<&MapData, [u8; 4], EntryValue> = HashMap::try_from(get(MAP_V4_EXACT)?)?;
    for item in m4.iter() {
        let (k, v) = item?;
        add(ipnet::IpNet::from(ip4(k)), v);
    }
    let m6: HashMap<&MapData, [u8; 16], EntryValue> = HashMap::try_from(get(MAP_V6_EXACT)?)?;
    for item in m6.iter() {
        let (k, v) = item?;
        add(ipnet::IpNet::from(ip6(k)), v);
    }
    let t4: LpmTrie<&MapData, [u8; 8], EntryValue> = LpmTrie::try_from(get(MAP_V4_PREFIX)?)?;
    for item in t4.iter() {
        let (k, v) = item?;
        add(
            ipnet::IpNet::new(ip4(filter_common::v4_from_trie(k.data())), k.prefix_len() as u8)?,
            v,
        );
    }
    let t6: LpmTrie<&MapData, [u8; 16], EntryValue> = LpmTrie::try_from(get(MAP_V6_PREFIX)?)?;
    for item in t6.iter() {
        let (k, v) = item?;
        add(ipnet::IpNet::new(ip6(k.data()), k.prefix_len() as u8)?, v);
    }
    Ok(out)
}
