//! A bucketised table (filter-common's `table4` layout: exact addresses, or prefixes, of
//! either family) as a [`Table`]: the buckets (and an IPv6 table's keys) mapped into this
//! process and written in place; the values written
//! in place too, a window at a time (a fill's new entries), or with batched system calls
//! (scattered updates), so that a million values are never all mapped into this process at
//! once. A key type ([`Word`]) says how its keys become the table's 32-bit words.
//!
//! Writes keep every listed key visible to a packet at every moment: a new entry's value
//! is written before the slot that points at it (one atomic 8-byte store), an update of a held
//! entry stores its flags and lists in place (never its hit counters, which the kernel keeps
//! raising), a delete clears the slot. A deleted entry's value index rests before it serves
//! again (see `free_values`); where a new entry goes is `placement`'s.

use std::{marker::PhantomData, os::fd::AsFd, sync::Arc, time::Instant};

use anyhow::{Result, anyhow, bail};
use aya::maps::{Map, MapData};
use filter_common::{
    Bucket, EntryValue,
    table4::{BUCKET_SLOTS, TableMaps, V6Stored, v4_slot, v4_slot_entry, v4_slot_index},
    v4_bucket_count,
};

pub use super::table_keys::Word;
use super::{
    free_values::Free,
    hits::Hits,
    mapped::{self, Mapping},
    pins::Pins,
    placement::{Place, Probe, room},
    raw,
    table::{self, MapInfo, Table, WriteMode},
};

/// Entries probed, then written, at a time (values, then slots): few enough that their
/// buckets are still in the CPU's cache when the slots are written.
const CHUNK: usize = 4 * 1024;

/// Values mapped at a time (1.5 MiB at most) to read or update many.
pub(super) const WINDOW: usize = 64 * 1024;

/// Values written at once from which on a mapping of the pages that hold them is cheaper
/// than system calls (when they are dense).
pub(super) const MAPPED_RUN: usize = 256;

/// Where an `EntryValue`'s flags (in `u32`s) and lists (in `u64`s) lie.
const FLAGS_WORD32: usize = std::mem::offset_of!(EntryValue, flags) / 4;
const LISTS_WORD: usize = std::mem::offset_of!(EntryValue, lists) / 8;

/// Buckets probed ahead of the one being read (their cache lines fetched meanwhile).
const AHEAD: usize = 32;

/// A table of a filter, keyed by `K`.
pub struct Table4Maps<K> {
    pub(super) maps: TableMaps,
    buckets: Mapping<Bucket>,
    bucket_data: MapData,
    pub(super) values: MapData,
    /// The keys beside the values (IPv6 tables), mapped.
    keys: Option<(Mapping<V6Stored>, MapData)>,
    capacity: usize,
    /// Found on the first write (a reader never scans).
    free: Option<Free>,
    /// Per bucket, the slots a chunk being written gives out (all clear between writes; made
    /// on the first write, kept: a one-entry update does not allocate it again).
    reserved: Vec<u8>,
    /// The CPUs' hit slots (hits not yet in the values).
    hits: Arc<Hits>,
    key: PhantomData<K>,
}

impl<K: Word> Table4Maps<K> {
    /// Maps the buckets (and keys) of table `maps`, given its values, buckets and keys maps.
    pub fn new(
        maps: TableMaps,
        values: Map,
        buckets: Map,
        keys: Option<Map>,
        hits: Arc<Hits>,
    ) -> Result<Self> {
        let (Map::Array(values), Map::Array(bucket_data)) = (values, buckets) else {
            bail!("{} and {} are not arrays", maps.values, maps.buckets);
        };
        let capacity = mapped::values::<EntryValue>(maps.values, &values)?;
        let buckets = Mapping::all(maps.buckets, &bucket_data)?;
        let want = v4_bucket_count(capacity as u32) as usize;
        if buckets.range().len() != want {
            bail!(
                "{} has {} buckets where {capacity} values need {want}: the maps do not belong together",
                maps.buckets,
                buckets.range().len()
            );
        }
        let keys = match keys {
            Some(Map::Array(data)) => Some((keyed(maps, &data, capacity)?, data)),
            Some(_) => bail!("{:?} is not an array", maps.keys),
            None => None,
        };
        let (free, reserved, key) = (None, Vec::new(), PhantomData);
        Ok(Self { maps, buckets, bucket_data, values, keys, capacity, free, reserved, hits, key })
    }

    /// The two buckets of `a`.
    fn buckets_of(&self, a: &K) -> [usize; 2] {
        a.buckets(self.buckets.range().len() as u32).map(|b| b as usize)
    }

    /// True when the value at `index` is that of a key stored as `stored` (always, in a table
    /// whose words are its keys).
    fn holds_at(&self, index: u32, stored: Option<V6Stored>) -> bool {
        match (&self.keys, stored) {
            (Some((keys, _)), Some(k)) => keys.read(index as usize) == k,
            _ => true,
        }
    }

    fn find(&self, a: &K) -> Option<Place> {
        self.probe(a, self.buckets_of(a)).found
    }

    /// One pass over the buckets of `a`.
    fn probe(&self, a: &K, buckets: [usize; 2]) -> Probe {
        let (word, stored) = (a.word(), a.stored());
        let mut p = Probe { found: None, buckets, empty: [0; 2], clash: [false; 2] };
        for (i, b) in buckets.into_iter().enumerate() {
            for s in 0..BUCKET_SLOTS {
                let slot = self.buckets.load(b, s);
                if let Some(index) = v4_slot_index(slot, word) {
                    if self.holds_at(index, stored) {
                        p.found = Some((b, s, index));
                        return p;
                    }
                    p.clash[i] = true;
                }
                p.empty[i] |= u8::from(slot == 0) << s;
            }
        }
        p
    }

    /// Probes every item, the buckets of later items fetched into the cache meanwhile.
    fn probe_all(&self, items: &[(K, EntryValue)]) -> Vec<Probe> {
        let buckets: Vec<[usize; 2]> = items.iter().map(|(a, _)| self.buckets_of(a)).collect();
        let ahead = |i: usize| buckets.get(i + AHEAD).into_iter().flatten();
        let probe = |(i, (a, _)): (usize, &(K, EntryValue))| {
            ahead(i).for_each(|b| self.buckets.prefetch(*b));
            self.probe(a, buckets[i])
        };
        items.iter().enumerate().map(probe).collect()
    }

    /// Every value index no slot holds.
    fn scan_free(&self) -> Free {
        Free::scan(self.capacity, self.slots().map(|(_, i)| i))
    }

    /// A free value index (see [`Free::take`]), the free ones found on the first write.
    fn take_index(&mut self) -> Option<u32> {
        let capacity = self.capacity as u32;
        match self.free.take() {
            Some(free) => self.free.insert(free),
            None => self.free.insert(self.scan_free()),
        }
        .take(capacity)
    }

    /// Every slot in use: key and value index.
    fn slots(&self) -> impl Iterator<Item = (K, u32)> + '_ {
        let stored = |i: u32| self.keys.as_ref().map(|(keys, _)| keys.read(i as usize));
        self.buckets.range().flat_map(move |b| {
            (0..BUCKET_SLOTS).filter_map(move |s| {
                v4_slot_entry(self.buckets.load(b, s)).map(|(w, i)| (K::of_slot(w, stored(i)), i))
            })
        })
    }

    /// Writes `chunk` (no key twice): values first, then the slots of new entries. `reserved`
    /// marks, per bucket, the slots this chunk gives out (all clear again on return).
    fn put_chunk(&mut self, chunk: &[(K, EntryValue)], reserved: &mut [u8]) -> Result<()> {
        let mut values: Vec<(u32, EntryValue)> = Vec::with_capacity(chunk.len());
        let mut slots: Vec<(usize, usize, u64)> = Vec::new();
        let (mut placed, mut renewed) = (Ok(()), Vec::with_capacity(chunk.len()));
        // Hashed words this chunk places, by bucket (the probes ran before any was placed).
        let mut words = self.keys.as_ref().map(|_| std::collections::HashSet::new());
        for ((a, v), p) in chunk.iter().zip(self.probe_all(chunk)) {
            if let Some((_, _, index)) = p.found {
                values.push((index, *v));
                renewed.push(false);
                continue;
            }
            let word = a.word();
            let Some((b, s)) = room(&p, reserved, words.as_mut(), word) else {
                let why = format!("both buckets of {} are full", a.show());
                placed = Err(anyhow!("{}", self.full(&why)));
                break;
            };
            let Some(index) = self.take_index() else {
                placed = Err(anyhow!("{}", self.full("no value is free")));
                break;
            };
            reserved[b] |= 1 << s;
            if let (Some((keys, _)), Some(k)) = (self.keys.as_mut(), a.stored()) {
                keys.write(index as usize, k);
            }
            values.push((index, *v));
            renewed.push(true);
            slots.push((b, s, v4_slot(word, index)));
        }
        let written =
            self.generations(&mut values, &renewed).and_then(|_| self.write_values(&mut values));
        for &(b, s, slot) in &slots {
            reserved[b] = 0;
            if written.is_ok() {
                self.buckets.store(b, s, slot);
            }
        }
        written.and(placed)
    }

    fn full(&self, why: &str) -> String {
        let (name, capacity) = (self.maps.values, self.capacity);
        format!("the {name} map is full ({why}; it holds {capacity} entries)")
    }
}

/// The keys map of `maps` (as many keys as `capacity` values), mapped.
fn keyed(maps: TableMaps, data: &MapData, capacity: usize) -> Result<Mapping<V6Stored>> {
    let name = maps.keys.unwrap_or(maps.values);
    let keys = Mapping::all(name, data)?;
    if keys.range().len() != capacity {
        bail!("{name} holds {} keys for {capacity} values", keys.range().len());
    }
    Ok(keys)
}

impl<K: Word> MapInfo for Table4Maps<K> {
    fn name(&self) -> &'static str {
        self.maps.values
    }

    fn capacity(&self) -> Result<u32> {
        Ok(self.capacity as u32)
    }

    fn pin(&self, pins: &Pins) -> Result<()> {
        let TableMaps { values, buckets, keys, .. } = self.maps;
        table::pin(buckets, &self.bucket_data, &pins.map(buckets))?;
        if let (Some(name), Some((_, data))) = (keys, &self.keys) {
            table::pin(name, data, &pins.map(name))?;
        }
        table::pin(values, &self.values, &pins.map(values))
    }

    fn memory(&self) -> Result<u64> {
        let keys = match (self.maps.keys, &self.keys) {
            (Some(name), Some((_, data))) => table::memlock(name, data)?,
            _ => 0,
        };
        Ok(table::memlock(self.maps.buckets, &self.bucket_data)?
            + table::memlock(self.maps.values, &self.values)?
            + keys)
    }
}

impl<K: Word> Table<K> for Table4Maps<K> {
    /// Its value, with the hits the CPUs' slots hold for it.
    fn get(&self, key: &K) -> Result<Option<EntryValue>> {
        let Some((_, _, index)) = self.find(key) else { return Ok(None) };
        let value = raw::lookup_one::<u32, EntryValue>(self.values.fd().as_fd(), &index);
        let name = self.maps.values;
        let mut value = value.ok_or_else(|| anyhow!("cannot read value {index} of {name}"))?;
        value.packets += self.hits.read()?.of(self.maps.at, index, value.generation());
        Ok(Some(value))
    }

    fn holds(&self, key: &K) -> Result<bool> {
        Ok(self.find(key).is_some())
    }

    fn put(&mut self, items: &[(K, EntryValue)], _: WriteMode) -> Result<()> {
        // Items in strictly rising order (a plan's) hold no key twice and go a chunk at a
        // time; others one by one.
        let sorted = items.windows(2).all(|w| w[0].0 < w[1].0);
        let mut reserved = std::mem::take(&mut self.reserved);
        reserved.resize(self.buckets.range().len(), 0);
        let mut written = Ok(());
        for (i, chunk) in items.chunks(if sorted { CHUNK } else { 1 }).enumerate() {
            let done = i * if sorted { CHUNK } else { 1 };
            let at = || format!("at entry {} of {}", done + 1, items.len());
            written = self
                .put_chunk(chunk, &mut reserved)
                .map_err(|e| if items.len() > 1 { e.context(at()) } else { e });
            if written.is_err() {
                break;
            }
        }
        self.reserved = reserved;
        written
    }

    /// Held entries' flags and lists are stored in place, through a mapping of their pages
    /// (a word each, atomically): the kernel's hit counters beside them are never rewritten,
    /// so no hit is lost.
    fn update_held(&mut self, items: &[(K, EntryValue)]) -> Result<()> {
        let mut held: Vec<(u32, EntryValue)> = Vec::with_capacity(items.len());
        let mut absent = Vec::new();
        for (key, v) in items {
            match self.find(key) {
                Some((_, _, index)) => held.push((index, *v)),
                None => absent.push((*key, *v)),
            }
        }
        held.sort_unstable_by_key(|(i, _)| *i);
        self.by_window(
            &held,
            |(i, _)| *i,
            |window, run| {
                for (i, v) in run {
                    // The flags' word keeps its generation: the same entry, the same hits.
                    let generation = window.read(*i as usize).generation();
                    window.store(*i as usize, LISTS_WORD, v.lists);
                    window.store32(*i as usize, FLAGS_WORD32, v.with_generation(generation).flags);
                }
            },
        )?;
        if absent.is_empty() { Ok(()) } else { self.put(&absent, WriteMode::Batched) }
    }

    fn delete(&mut self, keys: &[K]) -> Result<()> {
        // The free indexes are found before any is freed: a freed one must rest first.
        let mut free = self.free.take().unwrap_or_else(|| self.scan_free());
        let now = Instant::now();
        for a in keys {
            if let Some((b, s, index)) = self.find(a) {
                self.buckets.store(b, s, 0);
                free.rest(now, index);
            }
        }
        self.free = Some(free);
        Ok(())
    }

    /// Every entry with its value, the hits the CPUs' slots hold added.
    fn entries(&self) -> Result<Vec<(K, EntryValue)>> {
        let mut slots: Vec<(K, u32)> = self.slots().collect();
        slots.sort_unstable_by_key(|(_, i)| *i);
        let mut out = Vec::with_capacity(slots.len());
        let (pending, at) = (self.hits.read()?, self.maps.at);
        self.by_window(
            &slots,
            |(_, i)| *i,
            |window, run| {
                out.extend(run.iter().map(|(a, i)| {
                    let mut v: EntryValue = window.read(*i as usize);
                    v.packets += pending.of(at, *i, v.generation());
                    (*a, v)
                }));
            },
        )?;
        out.sort_unstable_by_key(|(a, _)| *a);
        Ok(out)
    }
}
