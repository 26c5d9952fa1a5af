//! The exact IPv4 table (filter-common's `exact4` layout) as a [`Table`]: buckets of slots and
//! an array of values, both written in place through `mmap`.
//!
//! Writes keep every listed address visible to a packet at every moment: a new entry's value
//! is written before the slot that points at it (one atomic 8-byte store), an update rewrites
//! the value in place (its hit counters stay), a delete clears the slot. A deleted entry's
//! value index is used again only after [`GRACE`], so that no packet still holding it can
//! count a hit on the new entry; another process finds the free indexes by a scan.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use aya::maps::Map;
use filter_common::{
    Bucket, EntryValue, MAP_V4_BUCKETS, MAP_V4_EXACT, V4Key,
    exact4::{BUCKET_SLOTS, v4_buckets, v4_slot, v4_slot_entry, v4_slot_index, v4_word},
    v4_bucket_count,
};

use super::{
    mapped::Mapped,
    pins::Pins,
    table::{MapInfo, Table, WriteMode},
};

/// How long a deleted entry's value index rests before another entry gets it: far longer
/// than any one run of the XDP program.
pub const GRACE: Duration = Duration::from_millis(10);

/// Value indexes not in use.
#[derive(Default)]
struct Free {
    /// Free now (popped from the end).
    ready: Vec<u32>,
    /// Deleted, and when.
    resting: Vec<(Instant, u32)>,
}

/// The exact IPv4 table of a filter.
pub struct Exact4 {
    buckets: Mapped<Bucket>,
    values: Mapped<EntryValue>,
    /// Found on the first insert (a read-only user never scans).
    free: Option<Free>,
}

/// Where an address is: bucket, slot, value index.
type Place = (usize, usize, u32);

/// What a pass over an address's two buckets found.
struct Probe {
    found: Option<Place>,
    /// The empty slot a new entry of that address takes (bucket, slot).
    empty: Option<(usize, usize)>,
    /// Empty slots in each bucket (counted up to the address, where found).
    room: [usize; 2],
}

impl Exact4 {
    /// Maps the values array (`MAP_V4_EXACT`) and the buckets (`MAP_V4_BUCKETS`).
    pub fn new(values: Map, buckets: Map) -> Result<Self> {
        let values = Mapped::new(MAP_V4_EXACT, values)?;
        let buckets = Mapped::new(MAP_V4_BUCKETS, buckets)?;
        let want = v4_bucket_count(values.len() as u32) as usize;
        if buckets.len() != want {
            bail!(
                "{MAP_V4_BUCKETS} has {} buckets where {} values need {want}: the maps do not belong together",
                buckets.len(),
                values.len()
            );
        }
        Ok(Self { buckets, values, free: None })
    }

    /// The two buckets of `a`.
    fn buckets_of(&self, a: &V4Key) -> [usize; 2] {
        v4_buckets(v4_word(a), self.buckets.len() as u32).map(|b| b as usize)
    }

    fn find(&self, a: &V4Key) -> Option<Place> {
        self.probe(a).found
    }

    /// One pass over the two buckets of `a`: where it is, or where it would go.
    fn probe(&self, a: &V4Key) -> Probe {
        let word = v4_word(a);
        let mut p = Probe { found: None, empty: None, room: [0; 2] };
        for (i, b) in self.buckets_of(a).into_iter().enumerate() {
            for s in 0..BUCKET_SLOTS {
                let slot = self.buckets.load(b, s);
                if let Some(index) = v4_slot_index(slot, word) {
                    p.found = Some((b, s, index));
                    return p;
                }
                if slot == 0 {
                    p.room[i] += 1;
                    // The emptier bucket (the first on a tie) gets a new entry.
                    if p.empty.is_none() || (i == 1 && p.room[1] > p.room[0]) {
                        p.empty = Some((b, s));
                    }
                }
            }
        }
        p
    }

    /// Every value index no slot holds, lowest first.
    fn scan_free(&self) -> Free {
        let mut used = vec![false; self.values.len()];
        for (_, index) in self.slots() {
            used[index as usize] = true;
        }
        let ready = (0..used.len() as u32).rev().filter(|&i| !used[i as usize]).collect();
        Free { ready, resting: Vec::new() }
    }

    /// A free value index: a never-used or long-deleted one, else (waiting out the rest of its
    /// grace) a recently deleted one.
    fn take_index(&mut self) -> Option<u32> {
        let free = match self.free.take() {
            Some(free) => self.free.insert(free),
            None => self.free.insert(self.scan_free()),
        };
        if free.ready.is_empty() {
            let oldest = free.resting.first()?.0;
            std::thread::sleep(GRACE.saturating_sub(oldest.elapsed()));
            let (done, resting) = free.resting.drain(..).partition(|(t, _)| t.elapsed() >= GRACE);
            free.resting = resting;
            free.ready.extend(done.into_iter().map(|(_, i): (Instant, u32)| i).rev());
        }
        free.ready.pop()
    }

    /// Every slot in use: address and value index.
    fn slots(&self) -> impl Iterator<Item = (V4Key, u32)> + '_ {
        (0..self.buckets.len()).flat_map(move |b| {
            (0..BUCKET_SLOTS).filter_map(move |s| v4_slot_entry(self.buckets.load(b, s)))
        })
    }

    /// Writes a new entry (`empty` is where it goes): its value, then the slot.
    fn insert(&mut self, a: &V4Key, v: &EntryValue, empty: Option<(usize, usize)>) -> Result<()> {
        let Some((b, s)) = empty else {
            let why = format!("both buckets of {} are full", std::net::Ipv4Addr::from(*a));
            bail!("{}", self.full(&why));
        };
        let Some(index) = self.take_index() else { bail!("{}", self.full("no value is free")) };
        self.values.write(index as usize, *v);
        self.buckets.store(b, s, v4_slot(a, index));
        Ok(())
    }

    fn full(&self, why: &str) -> String {
        format!("the {MAP_V4_EXACT} map is full ({why}; it holds {} entries)", self.values.len())
    }
}

impl MapInfo for Exact4 {
    fn name(&self) -> &'static str {
        MAP_V4_EXACT
    }

    fn capacity(&self) -> Result<u32> {
        Ok(self.values.len() as u32)
    }

    fn pin(&self, pins: &Pins) -> Result<()> {
        self.buckets.pin(&pins.map(self.buckets.name()))?;
        self.values.pin(&pins.map(self.values.name()))
    }

    fn memory(&self) -> Result<u64> {
        Ok(self.buckets.memory()? + self.values.memory()?)
    }
}

impl Table<V4Key> for Exact4 {
    fn get(&self, key: &V4Key) -> Result<Option<EntryValue>> {
        Ok(self.find(key).map(|(_, _, index)| self.values.read(index as usize)))
    }

    fn holds(&self, key: &V4Key) -> Result<bool> {
        Ok(self.find(key).is_some())
    }

    fn put(&mut self, items: &[(V4Key, EntryValue)], _: WriteMode) -> Result<()> {
        for (done, (a, v)) in items.iter().enumerate() {
            let p = self.probe(a);
            match p.found {
                Some((_, _, index)) => self.values.write(index as usize, *v),
                None => self
                    .insert(a, v, p.empty)
                    .map_err(|e| e.context(format!("after {done} of {} entries", items.len())))?,
            }
        }
        Ok(())
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
        let mut out: Vec<(V4Key, EntryValue)> =
            self.slots().map(|(a, index)| (a, self.values.read(index as usize))).collect();
        out.sort_unstable_by_key(|(a, _)| *a);
        Ok(out)
    }
}
