//! The only code that writes the address maps: fills them from a [`Plan`].
//!
//! Exact entries go in first, then prefixes, then the config flags that tell the program to
//! consult the prefix tries (so an empty trie costs nothing per packet). Writes are batched
//! where the kernel supports it, else made one by one.

use std::os::fd::AsFd;

use anyhow::{Result, anyhow};
use aya::{
    Ebpf, Pod,
    maps::{Array, Map, MapData, lpm_trie::Key},
};
use filter_common::{
    CFG_FLAGS, CFG_V4_PREFIXES, CFG_V6_PREFIXES, EntryValue, MAP_CONFIG, MAP_V4_EXACT,
    MAP_V4_PREFIX, MAP_V6_EXACT, MAP_V6_PREFIX,
};

use crate::{
    batch::{self, BatchError},
    plan::Plan,
};

/// How entries reach the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    /// BPF_MAP_UPDATE_BATCH where supported, else one by one.
    Batched,
    /// One BPF_MAP_UPDATE_ELEM per entry (for comparison in the benchmark).
    PerElement,
}

/// Writes every entry of `plan` into the maps and enables the tries that hold entries.
pub fn fill(ebpf: &mut Ebpf, plan: &Plan) -> Result<()> {
    fill_with(ebpf, plan, WriteMode::Batched)
}

/// [`fill`] with a chosen [`WriteMode`].
pub fn fill_with(ebpf: &mut Ebpf, plan: &Plan, mode: WriteMode) -> Result<()> {
    write(ebpf, MAP_V4_EXACT, &plan.v4_exact, |k| *k, mode)?;
    write(ebpf, MAP_V6_EXACT, &plan.v6_exact, |k| *k, mode)?;
    write(ebpf, MAP_V4_PREFIX, &plan.v4_prefix, lpm_key, mode)?;
    write(ebpf, MAP_V6_PREFIX, &plan.v6_prefix, lpm_key, mode)?;
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

/// A plan prefix (length, address) as an LPM trie key.
fn lpm_key<const N: usize>((len, addr): &(u8, [u8; N])) -> Key<[u8; N]> {
    Key::new(u32::from(*len), *addr)
}

fn map<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut Map> {
    ebpf.map_mut(name)
        .ok_or_else(|| anyhow!("the filter has no map {name}"))
}

fn map_data<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a MapData> {
    match map(ebpf, name)? {
        Map::HashMap(d) | Map::LpmTrie(d) => Ok(d),
        _ => Err(anyhow!("{name} is not a hash map or LPM trie")),
    }
}

/// Writes `items` (plan key, flags) into map `name`, converting keys with `key`.
fn write<P, K: Pod>(
    ebpf: &mut Ebpf,
    name: &str,
    items: &[(P, u32)],
    key: impl Fn(&P) -> K,
    mode: WriteMode,
) -> Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    let keys: Vec<K> = items.iter().map(|(p, _)| key(p)).collect();
    let values: Vec<EntryValue> = items.iter().map(|(_, f)| EntryValue::new(*f)).collect();
    let data = map_data(ebpf, name)?;
    let fd = data.fd().as_fd();
    let batched = match mode {
        WriteMode::Batched => batch::update(fd, &keys, &values),
        WriteMode::PerElement => Err(BatchError::Unsupported),
    };
    match batched {
        Ok(()) => Ok(()),
        Err(BatchError::Unsupported) => {
            for (k, v) in keys.iter().zip(&values) {
                batch::update_one(fd, k, v).map_err(|e| insert_error(name, e))?;
            }
            Ok(())
        }
        Err(BatchError::Failed { done, error }) => Err(anyhow!(
            "{} after {done} of {} entries",
            insert_error(name, error),
            keys.len()
        )),
    }
}

fn insert_error(name: &str, e: std::io::Error) -> anyhow::Error {
    if e.raw_os_error() == Some(libc::E2BIG) {
        anyhow!("the {name} map is full")
    } else {
        anyhow!("cannot write to {name}: {e}")
    }
}
