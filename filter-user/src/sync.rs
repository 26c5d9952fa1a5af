//! The only code that writes the filter's maps: fills them from a [`Plan`], or moves them from
//! one plan to the next.
//!
//! Moving never clears a map. It first turns on the trie and allowlist flags either plan needs,
//! then inserts and updates every entry of the new plan, then deletes what the new plan lacks,
//! then sets the flags of the new plan: an entry present in both plans is never missing, not
//! even for one packet, and an allowlisted address is never unprotected. Writes are batched
//! where the kernel supports it, else made one by one.

use std::{collections::HashMap, hash::Hash, os::fd::AsFd};

use anyhow::{Result, anyhow};
use aya::{
    Ebpf, Pod,
    maps::{Array, Map, MapData, lpm_trie::Key},
};
use filter_common::{
    CFG_FLAGS, CFG_V4_ALLOW, CFG_V4_PREFIXES, CFG_V6_ALLOW, CFG_V6_PREFIXES, EntryValue,
    MAP_CONFIG, MAP_V4_ALLOW, MAP_V4_EXACT, MAP_V4_PREFIX, MAP_V6_ALLOW, MAP_V6_EXACT,
    MAP_V6_PREFIX, v4_trie_key,
};

use crate::{
    batch::{self, BatchError},
    plan::{Meta, Plan},
};

/// How entries reach the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    /// BPF_MAP_UPDATE_BATCH where supported, else one by one.
    Batched,
    /// One BPF_MAP_UPDATE_ELEM per entry (for comparison in the benchmark).
    PerElement,
}

/// What a move changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Entries inserted or updated.
    pub written: usize,
    /// Entries deleted.
    pub deleted: usize,
}

/// Writes every entry of `plan` into empty maps and sets the config flags.
pub fn fill(ebpf: &mut Ebpf, plan: &Plan) -> Result<()> {
    fill_with(ebpf, plan, WriteMode::Batched)
}

/// [`fill`] with a chosen [`WriteMode`].
pub fn fill_with(ebpf: &mut Ebpf, plan: &Plan, mode: WriteMode) -> Result<()> {
    apply_with(ebpf, &Plan::default(), plan, mode).map(|_| ())
}

/// Moves the maps from `old` (what they hold) to `new`, inserting before deleting.
pub fn apply(ebpf: &mut Ebpf, old: &Plan, new: &Plan) -> Result<Changes> {
    apply_with(ebpf, old, new, WriteMode::Batched)
}

fn apply_with(ebpf: &mut Ebpf, old: &Plan, new: &Plan, mode: WriteMode) -> Result<Changes> {
    set_config(ebpf, config_flags(old) | config_flags(new))?;
    let mut ch = Changes::default();
    ch.written += write(
        ebpf,
        MAP_V4_ALLOW,
        &allow_values(&changed(&allow(&old.v4_allow), &allow(&new.v4_allow))),
        mode,
    )?;
    ch.written += write(
        ebpf,
        MAP_V6_ALLOW,
        &allow_values(&changed(&allow(&old.v6_allow), &allow(&new.v6_allow))),
        mode,
    )?;
    // Entries whose lists or direction change keep their hit counters.
    let (keys, mut vals) = with_held(&old.v4_exact, &new.v4_exact);
    keep_counters(ebpf, MAP_V4_EXACT, &keys, &mut vals)?;
    ch.written += write(ebpf, MAP_V4_EXACT, &vals, mode)?;
    let (keys, mut vals) = with_held(&old.v6_exact, &new.v6_exact);
    keep_counters(ebpf, MAP_V6_EXACT, &keys, &mut vals)?;
    ch.written += write(ebpf, MAP_V6_EXACT, &vals, mode)?;
    let (keys, vals) = with_held(&old.v4_prefix, &new.v4_prefix);
    let mut vals = v4_trie(vals.into_iter().map(|(k, v)| (lpm_key(&k), v)).collect());
    let keys: Vec<_> =
        keys.iter().map(|(k, held)| (v4_trie(vec![(lpm_key(k), ())])[0].0, *held)).collect();
    keep_counters(ebpf, MAP_V4_PREFIX, &keys, &mut vals)?;
    ch.written += write(ebpf, MAP_V4_PREFIX, &vals, mode)?;
    let (keys, vals) = with_held(&old.v6_prefix, &new.v6_prefix);
    let mut vals: Vec<_> = vals.into_iter().map(|(k, v)| (lpm_key(&k), v)).collect();
    let keys: Vec<_> = keys.iter().map(|(k, held)| (lpm_key(k), *held)).collect();
    keep_counters(ebpf, MAP_V6_PREFIX, &keys, &mut vals)?;
    ch.written += write(ebpf, MAP_V6_PREFIX, &vals, mode)?;
    ch.deleted += delete(ebpf, MAP_V4_EXACT, &gone(&old.v4_exact, &new.v4_exact))?;
    ch.deleted += delete(ebpf, MAP_V6_EXACT, &gone(&old.v6_exact, &new.v6_exact))?;
    ch.deleted += delete(
        ebpf,
        MAP_V4_PREFIX,
        &v4_trie_keys(lpm_keys(&gone(&old.v4_prefix, &new.v4_prefix))),
    )?;
    ch.deleted += delete(ebpf, MAP_V6_PREFIX, &lpm_keys(&gone(&old.v6_prefix, &new.v6_prefix)))?;
    ch.deleted +=
        delete(ebpf, MAP_V4_ALLOW, &lpm_keys(&gone(&allow(&old.v4_allow), &allow(&new.v4_allow))))?;
    ch.deleted +=
        delete(ebpf, MAP_V6_ALLOW, &lpm_keys(&gone(&allow(&old.v6_allow), &allow(&new.v6_allow))))?;
    set_config(ebpf, config_flags(new))?;
    Ok(ch)
}

/// The `CFG_*` flags a plan needs.
fn config_flags(plan: &Plan) -> u32 {
    let mut flags = 0;
    for (empty, flag) in [
        (plan.v4_prefix.is_empty(), CFG_V4_PREFIXES),
        (plan.v6_prefix.is_empty(), CFG_V6_PREFIXES),
        (plan.v4_allow.is_empty(), CFG_V4_ALLOW),
        (plan.v6_allow.is_empty(), CFG_V6_ALLOW),
    ] {
        if !empty {
            flags |= flag;
        }
    }
    flags
}

fn set_config(ebpf: &mut Ebpf, flags: u32) -> Result<()> {
    let mut config: Array<&mut MapData, u32> = Array::try_from(map(ebpf, MAP_CONFIG)?)?;
    config.set(CFG_FLAGS, flags, 0).map_err(|e| anyhow!("cannot write {MAP_CONFIG}: {e}"))
}

/// Allowlist entries as (key, value 0) pairs.
fn allow<const N: usize>(items: &[(u8, [u8; N])]) -> Vec<((u8, [u8; N]), u32)> {
    items.iter().map(|k| (*k, 0)).collect()
}

/// Entries of `new` that are absent from `old` or differ there.
fn changed<K: Eq + Hash + Copy, V: PartialEq + Copy>(
    old: &[(K, V)],
    new: &[(K, V)],
) -> Vec<(K, V)> {
    let before: HashMap<K, V> = old.iter().copied().collect();
    new.iter().filter(|(k, v)| before.get(k) != Some(v)).copied().collect()
}

/// Keys of `old` that `new` lacks.
fn gone<K: Eq + Hash + Copy, V>(old: &[(K, V)], new: &[(K, V)]) -> Vec<K> {
    let after: std::collections::HashSet<K> = new.iter().map(|(k, _)| *k).collect();
    old.iter().map(|(k, _)| *k).filter(|k| !after.contains(k)).collect()
}

fn allow_values<const N: usize>(items: &[((u8, [u8; N]), u32)]) -> Vec<(Key<[u8; N]>, u32)> {
    items.iter().map(|(k, v)| (lpm_key(k), *v)).collect()
}

fn value(meta: &Meta) -> EntryValue {
    EntryValue::new(meta.flags, meta.lists)
}

fn values<K: Copy>(items: &[(K, Meta)]) -> Vec<(K, EntryValue)> {
    items.iter().map(|(k, m)| (*k, value(m))).collect()
}

/// IPv4 prefix entries with the trie's 8-byte key data (see filter-common's `V4TrieKey`).
fn v4_trie<V>(items: Vec<(Key<[u8; 4]>, V)>) -> Vec<(Key<[u8; 8]>, V)> {
    items.into_iter().map(|(k, v)| (Key::new(k.prefix_len(), v4_trie_key(k.data())), v)).collect()
}

fn v4_trie_keys(keys: Vec<Key<[u8; 4]>>) -> Vec<Key<[u8; 8]>> {
    keys.into_iter().map(|k| Key::new(k.prefix_len(), v4_trie_key(k.data()))).collect()
}

fn lpm_key<const N: usize>((len, addr): &(u8, [u8; N])) -> Key<[u8; N]> {
    Key::new(u32::from(*len), *addr)
}

fn lpm_keys<const N: usize>(keys: &[(u8, [u8; N])]) -> Vec<Key<[u8; N]>> {
    keys.iter().map(lpm_key).collect()
}

fn map<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut Map> {
    ebpf.map_mut(name).ok_or_else(|| anyhow!("the filter has no map {name}"))
}

fn map_data<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a MapData> {
    match map(ebpf, name)? {
        Map::HashMap(d) | Map::LpmTrie(d) => Ok(d),
        _ => Err(anyhow!("{name} is not a hash map or LPM trie")),
    }
}

/// The entries of `new` to write (absent from `old`, or different there) as map values, and
/// for each its key with whether `old` held it.
#[allow(clippy::type_complexity)]
fn with_held<K: Eq + Hash + Copy>(
    old: &[(K, Meta)],
    new: &[(K, Meta)],
) -> (Vec<(K, bool)>, Vec<(K, EntryValue)>) {
    let before: std::collections::HashSet<K> = old.iter().map(|(k, _)| *k).collect();
    let items = changed(old, new);
    let keys = items.iter().map(|(k, _)| (*k, before.contains(k))).collect();
    (keys, values(&items))
}

/// Carries the hit counters of the entries the map already holds (`held`) over to their new
/// values, so that a change of lists or direction does not reset them.
fn keep_counters<K: Pod, M>(
    ebpf: &mut Ebpf,
    name: &str,
    held: &[(K, bool)],
    items: &mut [(M, EntryValue)],
) -> Result<()> {
    let fd = map_data(ebpf, name)?.fd().as_fd();
    for ((k, _), (_, v)) in held.iter().zip(items.iter_mut()).filter(|((_, was), _)| *was) {
        if let Some(old) = batch::lookup_one::<K, EntryValue>(fd, k) {
            v.packets = old.packets;
            v.bytes = old.bytes;
            v.last_hit_ns = old.last_hit_ns;
        }
    }
    Ok(())
}

/// Inserts or updates `items` in map `name`; returns how many.
fn write<K: Pod + Sync, V: Pod + Sync>(
    ebpf: &mut Ebpf,
    name: &str,
    items: &[(K, V)],
    mode: WriteMode,
) -> Result<usize> {
    if items.is_empty() {
        return Ok(0);
    }
    let (keys, vals): (Vec<K>, Vec<V>) = items.iter().copied().unzip();
    let fd = map_data(ebpf, name)?.fd().as_fd();
    let batched = match mode {
        WriteMode::Batched => batch::update(fd, &keys, &vals),
        WriteMode::PerElement => Err(BatchError::Unsupported),
    };
    match batched {
        Ok(()) => {}
        Err(BatchError::Unsupported) => {
            for (k, v) in keys.iter().zip(&vals) {
                batch::update_one(fd, k, v).map_err(|e| write_error(name, e))?;
            }
        }
        Err(BatchError::Failed { done, error }) => {
            return Err(anyhow!(
                "{} after {done} of {} entries",
                write_error(name, error),
                keys.len()
            ));
        }
    }
    Ok(items.len())
}

/// Deletes `keys` from map `name`; returns how many.
fn delete<K: Pod>(ebpf: &mut Ebpf, name: &str, keys: &[K]) -> Result<usize> {
    if keys.is_empty() {
        return Ok(0);
    }
    let fd = map_data(ebpf, name)?.fd().as_fd();
    for k in keys {
        batch::delete_one(fd, k).map_err(|e| anyhow!("cannot delete from {name}: {e}"))?;
    }
    Ok(keys.len())
}

fn write_error(name: &str, e: std::io::Error) -> anyhow::Error {
    if e.raw_os_error() == Some(libc::E2BIG) {
        anyhow!("the {name} map is full")
    } else {
        anyhow!("cannot write to {name}: {e}")
    }
}
