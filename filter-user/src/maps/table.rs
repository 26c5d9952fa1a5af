//! One address map seen through the plan's keys: the [`Table`] trait, and its implementation
//! for the allowlists' LPM tries with one codec per map layout (the bucketised tables of
//! entries have their own, `table4`). Key and value conversion between the plan
//! (`(length, address)` prefixes, [`Meta`]) and the kernel's tries lives here; for the tables,
//! in `table_keys`.

use std::{marker::PhantomData, os::fd::AsFd, path::Path};

use anyhow::{Result, anyhow};
use aya::{
    Pod,
    maps::{Map, MapData, lpm_trie::Key},
};
use filter_common::EntryValue;

use super::{
    pins::Pins,
    raw::{self, BatchError},
};
use crate::plan::{Meta, PrefixKey};

/// How entries reach the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    /// BPF_MAP_UPDATE_BATCH where supported, else one by one.
    Batched,
    /// One BPF_MAP_UPDATE_ELEM per entry (for comparison in the benchmark).
    PerElement,
}

/// What any address map tells without knowing its key type.
pub trait MapInfo {
    /// The map's name in the object (for messages).
    fn name(&self) -> &'static str;
    /// How many entries it can hold.
    fn capacity(&self) -> Result<u32>;
    /// Pins it in `pins` under its name (replacing what is pinned there).
    fn pin(&self, pins: &Pins) -> Result<()>;
    /// Kernel memory it holds, in bytes (the `memlock` the kernel charges for it).
    fn memory(&self) -> Result<u64>;
}

/// An address map keyed by plan keys `K`, with [`EntryValue`]s (an allowlist map stores none:
/// it answers default values).
pub trait Table<K>: MapInfo {
    /// The value of `key` when the map holds it. A trie answers its longest match, which is
    /// `key` itself whenever the map holds `key`: ask [`Table::holds`] first when unsure.
    fn get(&self, key: &K) -> Result<Option<EntryValue>>;
    /// True when the map holds exactly `key` (for a prefix: not merely a covering one).
    fn holds(&self, key: &K) -> Result<bool>;
    /// Inserts or updates every item.
    fn put(&mut self, items: &[(K, EntryValue)], mode: WriteMode) -> Result<()>;
    /// Gives entries the map holds the flags and lists of `items` (inserting the others),
    /// keeping the hit counters the kernel raises meanwhile. By default each entry's counters
    /// are read just before the entry is written whole: the hits of those microseconds are
    /// lost.
    fn update_held(&mut self, items: &[(K, EntryValue)]) -> Result<()>
    where
        K: Copy,
    {
        for (key, v) in items {
            let mut v = *v;
            if let Some(old) = self.get(key)? {
                (v.packets, v.last_hit) = (old.packets, old.last_hit);
            }
            self.put(&[(*key, v)], WriteMode::PerElement)?;
        }
        Ok(())
    }
    /// Deletes every key (absent keys are not an error).
    fn delete(&mut self, keys: &[K]) -> Result<()>;
    /// Every entry, sorted by key.
    fn entries(&self) -> Result<Vec<(K, EntryValue)>>;
}

/// An LPM trie's layout (a lookup answers the longest match): the plan key as kernel key, and
/// [`EntryValue`] as kernel value.
pub trait Codec {
    type Plan: Copy + Ord;
    type Key: Pod + Sync;
    type Value: Pod + Sync;
    fn key(p: &Self::Plan) -> Self::Key;
    fn plan(k: &Self::Key) -> Self::Plan;
    fn value(v: &EntryValue) -> Self::Value;
    fn entry(v: &Self::Value) -> EntryValue;
}

/// Allowlist networks in an LPM trie: key (length, address), value `u32` 0.
pub struct Allow<const N: usize>;

impl<const N: usize> Codec for Allow<N> {
    type Plan = PrefixKey<N>;
    type Key = Key<[u8; N]>;
    type Value = u32;
    fn key((len, addr): &PrefixKey<N>) -> Key<[u8; N]> {
        Key::new(u32::from(*len), *addr)
    }
    fn plan(k: &Key<[u8; N]>) -> PrefixKey<N> {
        (k.prefix_len() as u8, k.data())
    }
    fn value(_: &EntryValue) -> u32 {
        0
    }
    fn entry(_: &u32) -> EntryValue {
        EntryValue::default()
    }
}

/// Pins map `name` at `path`, replacing what is pinned there.
pub fn pin(name: &str, data: &MapData, path: &Path) -> Result<()> {
    let _ = std::fs::remove_file(path);
    data.pin(path).map_err(|e| anyhow!("cannot pin {name} at {}: {e}", path.display()))
}

/// Kernel memory a map holds, from its descriptor's `memlock` (/proc/self/fdinfo).
pub fn memlock(name: &str, data: &MapData) -> Result<u64> {
    use std::os::fd::AsRawFd;
    let fd = data.fd().as_fd().as_raw_fd();
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}"))?;
    let memlock = info.lines().find_map(|l| l.strip_prefix("memlock:"));
    memlock
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| anyhow!("the kernel does not tell the memory of {name}"))
}

/// An entry value for a plan entry, without hits.
pub fn value(meta: &Meta) -> EntryValue {
    EntryValue::new(meta.flags, meta.lists)
}

/// The plan metadata of an entry value.
pub fn meta(v: &EntryValue) -> Meta {
    Meta { flags: v.flag_bits(), lists: v.lists }
}

/// A kernel map read and written through codec `C`.
pub struct Kernel<C> {
    name: &'static str,
    data: MapData,
    codec: PhantomData<C>,
}

impl<C: Codec> Kernel<C> {
    /// Wraps a loaded or pinned LPM trie.
    pub fn new(name: &'static str, map: Map) -> Result<Self> {
        match map {
            Map::LpmTrie(data) => Ok(Self { name, data, codec: PhantomData }),
            _ => Err(anyhow!("{name} is not an LPM trie")),
        }
    }

    fn write_error(&self, e: std::io::Error) -> anyhow::Error {
        if e.raw_os_error() == Some(libc::E2BIG) {
            anyhow!("the {} map is full", self.name)
        } else {
            anyhow!("cannot write to {}: {e}", self.name)
        }
    }
}

impl<C: Codec> MapInfo for Kernel<C> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn capacity(&self) -> Result<u32> {
        Ok(self.data.info()?.max_entries())
    }

    fn memory(&self) -> Result<u64> {
        memlock(self.name, &self.data)
    }

    fn pin(&self, pins: &Pins) -> Result<()> {
        pin(self.name, &self.data, &pins.map(self.name))
    }
}

/// Entries converted to their kernel layout and written at a time (each write is still split
/// into batches, across threads).
pub const SLAB: usize = 64 * 1024;

impl<C: Codec> Kernel<C> {
    /// Writes one slab; an error says how many of its entries were written.
    fn put_slab(
        &self,
        items: &[(C::Plan, EntryValue)],
        mode: WriteMode,
    ) -> Result<(), (usize, anyhow::Error)> {
        let keys: Vec<C::Key> = items.iter().map(|(k, _)| C::key(k)).collect();
        let values: Vec<C::Value> = items.iter().map(|(_, v)| C::value(v)).collect();
        let fd = self.data.fd().as_fd();
        let batched = match mode {
            WriteMode::Batched => raw::update(fd, &keys, &values),
            WriteMode::PerElement => Err(BatchError::Unsupported),
        };
        match batched {
            Ok(()) => Ok(()),
            Err(BatchError::Unsupported) => {
                for (i, (k, v)) in keys.iter().zip(&values).enumerate() {
                    raw::update_one(fd, k, v).map_err(|e| (i, self.write_error(e)))?;
                }
                Ok(())
            }
            Err(BatchError::Failed { done, error }) => Err((done, self.write_error(error))),
        }
    }
}

impl<C: Codec> Table<C::Plan> for Kernel<C> {
    fn get(&self, key: &C::Plan) -> Result<Option<EntryValue>> {
        let found = raw::lookup_one::<C::Key, C::Value>(self.data.fd().as_fd(), &C::key(key));
        Ok(found.map(|v| C::entry(&v)))
    }

    fn holds(&self, key: &C::Plan) -> Result<bool> {
        Ok(self.get(key)?.is_some() && self.entries()?.iter().any(|(k, _)| k == key))
    }

    fn put(&mut self, items: &[(C::Plan, EntryValue)], mode: WriteMode) -> Result<()> {
        // In slabs: the kernel layouts of a million entries are never all held at once.
        for (i, slab) in items.chunks(SLAB).enumerate() {
            self.put_slab(slab, mode).map_err(|(done, e)| {
                anyhow!("{e:#} after {} of {} entries", i * SLAB + done, items.len())
            })?;
        }
        Ok(())
    }

    fn delete(&mut self, keys: &[C::Plan]) -> Result<()> {
        let fd = self.data.fd().as_fd();
        for k in keys {
            raw::delete_one(fd, &C::key(k))
                .map_err(|e| anyhow!("cannot delete from {}: {e}", self.name))?;
        }
        Ok(())
    }

    fn entries(&self) -> Result<Vec<(C::Plan, EntryValue)>> {
        let fd = self.data.fd().as_fd();
        let limit = self.capacity()? as usize;
        let keys = raw::keys::<C::Key>(fd, limit)
            .map_err(|e| anyhow!("cannot read {}: {e}", self.name))?;
        let mut out: Vec<(C::Plan, EntryValue)> = keys
            .iter()
            .filter_map(|k| {
                let v = raw::lookup_one::<C::Key, C::Value>(fd, k)?;
                Some((C::plan(k), C::entry(&v)))
            })
            .collect();
        out.sort_unstable_by_key(|(k, _)| *k);
        Ok(out)
    }
}
