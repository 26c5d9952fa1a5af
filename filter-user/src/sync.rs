//! The only code that writes the address maps: fills them from a [`Plan`].
//!
//! Exact entries go in first, then prefixes, then the config flags that tell the program to
//! consult the prefix tries (so an empty trie costs nothing per packet).

use anyhow::{Result, anyhow};
use aya::{
    Ebpf, Pod,
    maps::{Array, HashMap, LpmTrie, MapData, MapError, lpm_trie::Key},
};
use filter_common::{
    CFG_FLAGS, CFG_V4_PREFIXES, CFG_V6_PREFIXES, EntryValue, MAP_CONFIG, MAP_V4_EXACT,
    MAP_V4_PREFIX, MAP_V6_EXACT, MAP_V6_PREFIX,
};

use crate::plan::Plan;

/// Writes every entry of `plan` into the maps and enables the tries that hold entries.
pub fn fill(ebpf: &mut Ebpf, plan: &Plan) -> Result<()> {
    insert_exact(ebpf, MAP_V4_EXACT, &plan.v4_exact)?;
    insert_exact(ebpf, MAP_V6_EXACT, &plan.v6_exact)?;
    insert_prefixes(ebpf, MAP_V4_PREFIX, &plan.v4_prefix)?;
    insert_prefixes(ebpf, MAP_V6_PREFIX, &plan.v6_prefix)?;
    let mut flags = 0;
    if !plan.v4_prefix.is_empty() {
        flags |= CFG_V4_PREFIXES;
    }
    if !plan.v6_prefix.is_empty() {
        flags |= CFG_V6_PREFIXES;
    }
    let mut config: Array<&mut MapData, u32> = Array::try_from(map(ebpf, MAP_CONFIG)?)?;
    config
        .set(CFG_FLAGS, flags, 0)
        .map_err(|e| anyhow!("cannot write {MAP_CONFIG}: {e}"))
}

fn map<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut aya::maps::Map> {
    ebpf.map_mut(name)
        .ok_or_else(|| anyhow!("the filter has no map {name}"))
}

fn insert_exact<K: Pod>(ebpf: &mut Ebpf, name: &str, items: &[(K, u32)]) -> Result<()> {
    let mut map: HashMap<&mut MapData, K, EntryValue> = HashMap::try_from(map(ebpf, name)?)?;
    for (key, flags) in items {
        map.insert(key, EntryValue::new(*flags), 0)
            .map_err(|e| insert_error(name, e))?;
    }
    Ok(())
}

fn insert_prefixes<K: Pod>(ebpf: &mut Ebpf, name: &str, items: &[((u8, K), u32)]) -> Result<()> {
    let mut map: LpmTrie<&mut MapData, K, EntryValue> = LpmTrie::try_from(map(ebpf, name)?)?;
    for ((len, addr), flags) in items {
        map.insert(&Key::new(u32::from(*len), *addr), EntryValue::new(*flags), 0)
            .map_err(|e| insert_error(name, e))?;
    }
    Ok(())
}

fn insert_error(name: &str, e: MapError) -> anyhow::Error {
    if let MapError::SyscallError(s) = &e {
        if s.io_error.raw_os_error() == Some(libc::E2BIG) {
            return anyhow!("the {name} map is full");
        }
    }
    anyhow!("cannot insert into {name}: {e}")
}
