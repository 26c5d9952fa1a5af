//! The exact IPv4 table (filter-common's `exact4` layout) as a [`Table`]: the buckets mapped
//! into this process and written in place; the values written in place too, a window at a
//! time (a fill's new entries), or with batched system calls (scattered updates), so that a
//! million values are never all mapped into this process at once.
//!
//! Writes keep every listed address visible to a packet at every moment: a new entry's value
//! is written before the slot that points at it (one atomic 8-byte store), an update rewrites
//! the value in place (its hit counters stay), a delete clears the slot. A deleted entry's
//! value index is used again only after [`GRACE`], so that no packet still holding it can
//! count a hit on the new entry; another process finds the free indexes by a scan.

use std::{
    os::fd::AsFd,
    time::{Duration, Instant},
};

use anyhow::{Result, anyhow, bail};
use aya::maps::{Map, MapData};
use filter_common::{
    Bucket, EntryValue, MAP_V4_BUCKETS, MAP_V4_EXACT, V4Key,
    exact4::{BUCKET_SLOTS, v4_buckets, v4_slot, v4_slot_entry, v4_slot_index, v4_word},
    v4_bucket_count,
};

use super::{
    mapped::{self, Mapping},
    pins::Pins,
    raw,
    table::{self, MapInfo, Table, WriteMode},
};

/// How long a deleted entry's value index rests before another entry gets it: far longer
/// than any one run of the XDP program.
pub const GRACE: Duration = Duration::from_millis(10);

/// Entries probed, then written, at a time (values, then slots): few enough that their
/// buckets are still in the CPU's cache when the slots are written.
const CHUNK: usize = 4 * 1024;

/// Values mapped at a time (1.5 MiB) to read them all.
const WINDOW: usize = 64 * 1024;

/// Values written at once from which on a mapping of the pages that hold them is cheaper
/// than system calls (when they are dense).
const MAPPED_RUN: usize = 256;

/// Buckets probed ahead of the one being read (their cache lines fetched meanwhile).
const AHEAD: usize = 32;

/// Value indexes not in use.
struct Free {
    /// Indexes below `next` that no slot holds (popped from the end).
    holes: Vec<u32>,
    /// No index from here on was ever used.
    next: u32,
    /// Deleted, and when.
    resting: Vec<(Instant, u32)>,
}

/// The exact IPv4 table of a filter.
pub struct Exact4 {
    buckets: Mapping<Bucket>,
    bucket_data: MapData,
    values: MapData,
    capacity: usize,
    /// Found on the first write (a reader never scans).
    free: Option<Free>,
    /// Per bucket, the slots a chunk being written gives out (all clear between writes; made
    /// on the first write, kept: a one-entry update does not allocate it again).
    reserved: Vec<u8>,
}

/// Where an address is: bucket, slot, value index.
type Place = (usize, usize, u32);

/// What a pass over an address's two buckets found: where it is, or the empty slots of each
/// bucket (bit s: slot s).
struct Probe {
    found: Option<Place>,
    buckets: [usize; 2],
    empty: [u8; 2],
}

impl Exact4 {
    /// Maps the buckets (`MAP_V4_BUCKETS`); the values array is `MAP_V4_EXACT`.
    pub fn new(values: Map, buckets: Map) -> Result<Self> {
        let (Map::Array(values), Map::Array(bucket_data)) = (values, buckets) else {
            bail!("{MAP_V4_EXACT} and {MAP_V4_BUCKETS} are not arrays");
        };
        let capacity = mapped::values::<EntryValue>(MAP_V4_EXACT, &values)?;
        let buckets = Mapping::all(MAP_V4_BUCKETS, &bucket_data)?;
        let want = v4_bucket_count(capacity as u32) as usize;
        if buckets.range().len() != want {
            bail!(
                "{MAP_V4_BUCKETS} has {} buckets where {capacity} values need {want}: the maps do not belong together",
                buckets.range().len()
            );
        }
        Ok(Self { buckets, bucket_data, values, capacity, free: None, reserved: Vec::new() })
    }

    /// The two buckets of `a`.
    fn buckets_of(&self, a: &V4Key) -> [usize; 2] {
        v4_buckets(v4_word(a), self.buckets.range().len() as u32).map(|b| b as usize)
    }

    fn find(&self, a: &V4Key) -> Option<Place> {
        self.probe(a, self.buckets_of(a)).found
    }

    /// One pass over the buckets of `a`.
    fn probe(&self, a: &V4Key, buckets: [usize; 2]) -> Probe {
        let word = v4_word(a);
        let mut p = Probe { found: None, buckets, empty: [0; 2] };
        for (i, b) in buckets.into_iter().enumerate() {
            for s in 0..BUCKET_SLOTS {
                let slot = self.buckets.load(b, s);
                if let Some(index) = v4_slot_index(slot, word) {
                    p.found = Some((b, s, index));
                    return p;
                }
                p.empty[i] |= u8::from(slot == 0) << s;
            }
        }
        p
    }

    /// Probes every item, the buckets of later items fetched into the cache meanwhile.
    fn probe_all(&self, items: &[(V4Key, EntryValue)]) -> Vec<Probe> {
        let buckets: Vec<[usize; 2]> = items.iter().map(|(a, _)| self.buckets_of(a)).collect();
        let ahead = |i: usize| buckets.get(i + AHEAD).into_iter().flatten();
        let probe = |(i, (a, _)): (usize, &(V4Key, EntryValue))| {
            ahead(i).for_each(|b| self.buckets.prefetch(*b));
            self.probe(a, buckets[i])
        };
        items.iter().enumerate().map(probe).collect()
    }

    /// Every value index no slot holds.
    fn scan_free(&self) -> Free {
        let mut used = vec![0u64; self.capacity.div_ceil(64)];
        let mut next = 0;
        for (_, i) in self.slots() {
            used[i as usize / 64] |= 1 << (i % 64);
            next = next.max(i + 1);
        }
        let holes = (0..next).rev().filter(|&i| used[i as usize / 64] & (1 << (i % 64)) == 0);
        Free { holes: holes.collect(), next, resting: Vec::new() }
    }

    /// A free value index: a never-used or long-deleted one, else (waiting out the rest of its
    /// grace) a recently deleted one.
    fn take_index(&mut self) -> Option<u32> {
        let capacity = self.capacity as u32;
        let free = match self.free.take() {
            Some(free) => self.free.insert(free),
            None => self.free.insert(self.scan_free()),
        };
        if let Some(i) = free.holes.pop() {
            return Some(i);
        }
        if free.next < capacity {
            free.next += 1;
            return Some(free.next - 1);
        }
        let oldest = free.resting.first()?.0;
        std::thread::sleep(GRACE.saturating_sub(oldest.elapsed()));
        let (done, resting) = free.resting.drain(..).partition(|(t, _)| t.elapsed() >= GRACE);
        free.resting = resting;
        free.holes.extend(done.into_iter().map(|(_, i): (Instant, u32)| i).rev());
        free.holes.pop()
    }

    /// Every slot in use: address and value index.
    fn slots(&self) -> impl Iterator<Item = (V4Key, u32)> + '_ {
        self.buckets.range().flat_map(move |b| {
            (0..BUCKET_SLOTS).filter_map(move |s| v4_slot_entry(self.buckets.load(b, s)))
        })
    }

    /// Writes `chunk` (no key twice): values first, then the slots of new entries. `reserved`
    /// marks, per bucket, the slots this chunk gives out (all clear again on return).
    fn put_chunk(&mut self, chunk: &[(V4Key, EntryValue)], reserved: &mut [u8]) -> Result<()> {
        let mut values: Vec<(u32, EntryValue)> = Vec::with_capacity(chunk.len());
        let mut slots: Vec<(usize, usize, u64)> = Vec::new();
        let mut placed = Ok(());
        for ((a, v), p) in chunk.iter().zip(self.probe_all(chunk)) {
            if let Some((_, _, index)) = p.found {
                values.push((index, *v));
                continue;
            }
            let Some((b, s)) = room(&p, reserved) else {
                let why = format!("both buckets of {} are full", std::net::Ipv4Addr::from(*a));
                placed = Err(anyhow!("{}", self.full(&why)));
                break;
            };
            let Some(index) = self.take_index() else {
                placed = Err(anyhow!("{}", self.full("no value is free")));
                break;
            };
            reserved[b] |= 1 << s;
            values.push((index, *v));
            slots.push((b, s, v4_slot(a, index)));
        }
        let written = self.write_values(&mut values);
        for &(b, s, slot) in &slots {
            reserved[b] = 0;
            if written.is_ok() {
                self.buckets.store(b, s, slot);
            }
        }
        written.and(placed)
    }

    /// Writes values by index: a dense run of many (a fill's new entries) through a mapping
    /// of the pages that hold it; others in a batched system call.
    fn write_values(&self, values: &mut [(u32, EntryValue)]) -> Result<()> {
        values.sort_unstable_by_key(|(i, _)| *i);
        let (Some(lo), Some(hi)) = (values.first(), values.last()) else { return Ok(()) };
        let (first, span) = (lo.0 as usize, (hi.0 - lo.0) as usize + 1);
        if values.len() >= MAPPED_RUN && span <= 2 * values.len() {
            let mut window = Mapping::window(MAP_V4_EXACT, &self.values, first, span)?;
            values.iter().for_each(|(i, v)| window.write(*i as usize, *v));
            return Ok(());
        }
        let (keys, vals): (Vec<u32>, Vec<EntryValue>) = values.iter().copied().unzip();
        raw::update_array(self.values.fd().as_fd(), MAP_V4_EXACT, &keys, &vals)
    }

    fn full(&self, why: &str) -> String {
        format!("the {MAP_V4_EXACT} map is full ({why}; it holds {} entries)", self.capacity)
    }
}

/// The empty slot a new entry takes: in the emptier of its buckets (the first on a tie),
/// leaving out slots `reserved` for others.
fn room(p: &Probe, reserved: &[u8]) -> Option<(usize, usize)> {
    let [b0, b1] = p.buckets;
    let m0 = p.empty[0] & !reserved[b0];
    let m1 = if b1 == b0 { 0 } else { p.empty[1] & !reserved[b1] };
    let (b, m) = if m1.count_ones() > m0.count_ones() { (b1, m1) } else { (b0, m0) };
    (m != 0).then(|| (b, m.trailing_zeros() as usize))
}

impl MapInfo for Exact4 {
    fn name(&self) -> &'static str {
        MAP_V4_EXACT
    }

    fn capacity(&self) -> Result<u32> {
        Ok(self.capacity as u32)
    }

    fn pin(&self, pins: &Pins) -> Result<()> {
        table::pin(MAP_V4_BUCKETS, &self.bucket_data, &pins.map(MAP_V4_BUCKETS))?;
        table::pin(MAP_V4_EXACT, &self.values, &pins.map(MAP_V4_EXACT))
    }

    fn memory(&self) -> Result<u64> {
        Ok(table::memlock(MAP_V4_BUCKETS, &self.bucket_data)?
            + table::memlock(MAP_V4_EXACT, &self.values)?)
    }
}

impl Table<V4Key> for Exact4 {
    fn get(&self, key: &V4Key) -> Result<Option<EntryValue>> {
        let Some((_, _, index)) = self.find(key) else { return Ok(None) };
        let value = raw::lookup_one::<u32, EntryValue>(self.values.fd().as_fd(), &index);
        value.map(Some).ok_or_else(|| anyhow!("cannot read value {index} of {MAP_V4_EXACT}"))
    }

    fn holds(&self, key: &V4Key) -> Result<bool> {
        Ok(self.find(key).is_some())
    }

    fn put(&mut self, items: &[(V4Key, EntryValue)], _: WriteMode) -> Result<()> {
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

    fn delete(&mut self, keys: &[V4Key]) -> Result<()> {
        // The free indexes are found before any is freed: a freed one must rest first.
        let mut free = self.free.take().unwrap_or_else(|| self.scan_free());
        let now = Instant::now();
        for a in keys {
            if let Some((b, s, index)) = self.find(a) {
                self.buckets.store(b, s, 0);
                free.resting.push((now, index));
            }
        }
        self.free = Some(free);
        Ok(())
    }

    fn entries(&self) -> Result<Vec<(V4Key, EntryValue)>> {
        let mut slots: Vec<(V4Key, u32)> = self.slots().collect();
        slots.sort_unstable_by_key(|(_, i)| *i);
        let mut out = Vec::with_capacity(slots.len());
        for run in slots.chunk_by(|x, y| x.1 as usize / WINDOW == y.1 as usize / WINDOW) {
            let first = run[0].1 as usize / WINDOW * WINDOW;
            let len = WINDOW.min(self.capacity - first);
            let window = Mapping::<EntryValue>::window(MAP_V4_EXACT, &self.values, first, len)?;
            out.extend(run.iter().map(|(a, i)| (*a, window.read(*i as usize))));
        }
        out.sort_unstable_by_key(|(a, _)| *a);
        Ok(out)
    }
}
