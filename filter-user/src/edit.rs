//! Single-entry edits of a pinned filter, for `takedown add`/`remove` when no daemon runs (with
//! a daemon, the daemon reconciles instead). Part of the map writers with `sync`: an entry's
//! list bits say who holds it, so removing the manual list's bit deletes the entry only when no
//! other list holds it.

use anyhow::{Result, anyhow};
use aya::maps::{Array, HashMap, LpmTrie, MapData, lpm_trie::Key};
use filter_common::{
    CFG_FLAGS, CFG_V4_PREFIXES, CFG_V6_PREFIXES, EntryValue, MAP_CONFIG, MAP_V4_EXACT,
    MAP_V4_PREFIX, MAP_V6_EXACT, MAP_V6_PREFIX,
};
use ipnet::IpNet;

use crate::{plan::Meta, read::Maps};

/// What an edit did.
#[derive(Debug, PartialEq, Eq)]
pub enum Edit {
    Inserted,
    Updated,
    Deleted,
    Absent,
}

/// Adds `meta` to the entry for `net` (creating it).
pub fn upsert(maps: &mut Maps, net: IpNet, meta: Meta) -> Result<Edit> {
    match net.trunc() {
        IpNet::V4(n) if n.prefix_len() == 32 => {
            exact(maps, MAP_V4_EXACT, n.addr().octets(), |v| Some(join(v, meta)))
        }
        IpNet::V6(n) if n.prefix_len() == 128 => {
            exact(maps, MAP_V6_EXACT, n.addr().octets(), |v| Some(join(v, meta)))
        }
        IpNet::V4(n) => {
            let key = filter_common::v4_trie_key(n.network().octets());
            let e = prefix(maps, MAP_V4_PREFIX, n.prefix_len(), key, |v| Some(join(v, meta)))?;
            enable(maps, CFG_V4_PREFIXES)?;
            Ok(e)
        }
        IpNet::V6(n) => {
            let e = prefix(maps, MAP_V6_PREFIX, n.prefix_len(), n.network().octets(), |v| {
                Some(join(v, meta))
            })?;
            enable(maps, CFG_V6_PREFIXES)?;
            Ok(e)
        }
    }
}

/// Takes the `lists` bits off the entry for `net`; deletes it when no list is left.
pub fn remove_lists(maps: &mut Maps, net: IpNet, lists: u64) -> Result<Edit> {
    let strip = |v: Option<EntryValue>| {
        v.and_then(|mut v| {
            v.lists &= !lists;
            (v.lists != 0).then_some(v)
        })
    };
    match net.trunc() {
        IpNet::V4(n) if n.prefix_len() == 32 => exact(maps, MAP_V4_EXACT, n.addr().octets(), strip),
        IpNet::V6(n) if n.prefix_len() == 128 => {
            exact(maps, MAP_V6_EXACT, n.addr().octets(), strip)
        }
        IpNet::V4(n) => prefix(
            maps,
            MAP_V4_PREFIX,
            n.prefix_len(),
            filter_common::v4_trie_key(n.network().octets()),
            strip,
        ),
        IpNet::V6(n) => prefix(maps, MAP_V6_PREFIX, n.prefix_len(), n.network().octets(), strip),
    }
}

fn join(v: Option<EntryValue>, meta: Meta) -> EntryValue {
    let v = v.unwrap_or_default();
    EntryValue::new(v.flags | meta.flags, v.lists | meta.lists)
}

/// Applies `f` to the exact entry `key` (None: absent; returning None deletes).
fn exact<const N: usize>(
    maps: &mut Maps,
    name: &str,
    key: [u8; N],
    f: impl FnOnce(Option<EntryValue>) -> Option<EntryValue>,
) -> Result<Edit> {
    let mut map: HashMap<&mut MapData, [u8; N], EntryValue> =
        HashMap::try_from(maps.get_mut(name)?)?;
    let old = map.get(&key, 0).ok();
    write(
        old,
        f(old),
        |v| match v {
            Some(v) => map.insert(key, v, 0),
            None => map.remove(&key),
        },
        name,
    )
}

/// Applies `f` to the prefix entry (`len`, `addr`) itself (not a covering one).
fn prefix<const N: usize>(
    maps: &mut Maps,
    name: &str,
    len: u8,
    addr: [u8; N],
    f: impl FnOnce(Option<EntryValue>) -> Option<EntryValue>,
) -> Result<Edit> {
    let mut trie: LpmTrie<&mut MapData, [u8; N], EntryValue> =
        LpmTrie::try_from(maps.get_mut(name)?)?;
    let key = Key::new(u32::from(len), addr);
    // A trie lookup answers the longest match: check that the match is this very prefix.
    let present = trie
        .keys()
        .filter_map(|k| k.ok())
        .any(|k| k.prefix_len() == u32::from(len) && k.data() == addr);
    let old = present.then(|| trie.get(&key, 0).ok()).flatten();
    write(
        old,
        f(old),
        |v| match v {
            Some(v) => trie.insert(&key, v, 0),
            None => trie.remove(&key),
        },
        name,
    )
}

/// Writes `new` (None: deletes) through `put` when it differs from `old`.
fn write<E: std::fmt::Display>(
    old: Option<EntryValue>,
    new: Option<EntryValue>,
    put: impl FnOnce(Option<EntryValue>) -> Result<(), E>,
    name: &str,
) -> Result<Edit> {
    let edit = match (old, new) {
        (None, None) => return Ok(Edit::Absent),
        (Some(_), None) => Edit::Deleted,
        (None, Some(_)) => Edit::Inserted,
        (Some(o), Some(v)) if o == v => return Ok(Edit::Updated),
        (Some(_), Some(_)) => Edit::Updated,
    };
    put(new).map_err(|e| anyhow!("cannot write {name}: {e}"))?;
    Ok(edit)
}

/// Turns a `CFG_*` flag on.
fn enable(maps: &mut Maps, flag: u32) -> Result<()> {
    let mut config: Array<&mut MapData, u32> = Array::try_from(maps.get_mut(MAP_CONFIG)?)?;
    let flags = config.get(&CFG_FLAGS, 0).unwrap_or(0);
    config.set(CFG_FLAGS, flags | flag, 0).map_err(|e| anyhow!("cannot write {MAP_CONFIG}: {e}"))
}
