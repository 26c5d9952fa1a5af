//! The kernel side seen from user space: load the program, pin and adopt it, write its maps
//! (`sync`, the only writer of entries) and read them (plans, hits, counters, lookups).
//!
//! [`FilterMaps`] is the one handle on a filter's maps, loaded or opened from pins. Its address
//! maps are typed per family ([`FamilyMaps`]): each map is a [`Table`] keyed by the plan's keys,
//! and the key and value conversion lives in `table` (and, for the bucketised tables, `table_keys`). The
//! set of maps is filter-common's `ALL_MAPS` / `ADDRESS_MAPS`; adding a map touches the
//! contract, the kernel program and the family constructors below.
//!
//! May use `plan` and `lists`; never imports `daemon`.

pub mod counters;
mod egress;
pub mod filter;
mod free_values;
pub mod hints;
pub mod hits;
pub mod interface;
pub mod journal;
mod lengths;
pub mod lookup;
mod mapped;
pub mod pins;
mod placement;
pub mod prefilter;
pub mod privileges;
mod raw;
mod start;
pub mod sync;
pub mod table;
mod table4;
mod table4_values;
mod table_keys;
pub mod version;
mod writer;

use std::{collections::BTreeMap, sync::Arc};

use anyhow::{Context, Result, anyhow};
use aya::maps::{Array, Map, MapData, PerCpuArray, PerCpuValues};
use filter_common::{
    ALL_MAPS, AddressMap, Family, LenMask, MAP_CONFIG, MAP_HITS, MAP_RATE, MAP_V4_ALLOW,
    MAP_V4_ALLOWED, MAP_V4_EXACTS, MAP_V4_FILTER, MAP_V4_HINTS, MAP_V4_LENS, MAP_V4_PREFIXED,
    MAP_V6_ALLOW, MAP_V6_ALLOWED, MAP_V6_EXACTS, MAP_V6_FILTER, MAP_V6_LENS, MAP_V6_PREFIXED,
    MapKind, RateState,
    table4::{EXACT4, EXACT6, PREFIX4, PREFIX6, TABLES, TableMaps},
};
use ipnet::IpNet;

use self::{
    hits::Hits,
    table::{Allow, Kernel},
};
pub use self::{
    start::{Start, Started, grow, start},
    table::{MapInfo, Table, WriteMode},
};
use crate::plan::{Meta, Plan, PrefixKey, Tables, net};

/// Maps by name, as taken out of a loaded object or opened from pins.
pub type Named = BTreeMap<&'static str, Map>;

/// The config array (`MAP_CONFIG`): flags, event rate, layout version.
pub trait Settings {
    fn get(&self, index: u32) -> Result<u32>;
    fn set(&mut self, index: u32, value: u32) -> Result<()>;
    /// Pins the array at `path` (replacing what is pinned there).
    fn pin(&self, path: &std::path::Path) -> Result<()>;
}

/// Pins `map` at `path`, replacing what is pinned there.
fn pin_map(name: &str, map: &Map, path: &std::path::Path) -> Result<()> {
    let _ = std::fs::remove_file(path);
    map.pin(path).map_err(|e| anyhow!("cannot pin {name} at {}: {e}", path.display()))
}

struct KernelSettings(Map);

impl Settings for KernelSettings {
    fn get(&self, index: u32) -> Result<u32> {
        let a: Array<&MapData, u32> = Array::try_from(&self.0)?;
        Ok(a.get(&index, 0)?)
    }

    fn set(&mut self, index: u32, value: u32) -> Result<()> {
        let mut a: Array<&mut MapData, u32> = Array::try_from(&mut self.0)?;
        a.set(index, value, 0).map_err(|e| anyhow!("cannot write {MAP_CONFIG}: {e}"))
    }

    fn pin(&self, path: &std::path::Path) -> Result<()> {
        pin_map(MAP_CONFIG, &self.0, path)
    }
}

/// One address family's maps.
pub struct FamilyMaps<const N: usize> {
    pub exact: Box<dyn Table<[u8; N]>>,
    pub prefix: Box<dyn Table<PrefixKey<N>>>,
    pub allow: Box<dyn Table<PrefixKey<N>>>,
    /// The prefilter: which addresses may have an entry.
    pub filter: Box<dyn prefilter::Words<u64>>,
    /// The allowlist's prefilter: which addresses may be allowlisted.
    pub allowed: Box<dyn prefilter::Words<u64>>,
    /// The prefixes' prefilter: which addresses a prefix may cover.
    pub prefixed: Box<dyn prefilter::Words<u64>>,
    /// The prefix lengths present near each address (IPv4: per /16; IPv6: per key of each of
    /// its tiers, `V6_TIERS`).
    pub lens: Box<dyn prefilter::Words<LenMask>>,
    /// The prefix length that covers each /24 (IPv4 only).
    pub hints: Option<Box<dyn prefilter::Words<hints::Hints>>>,
    /// The exact addresses' prefilter.
    pub exacts: Box<dyn prefilter::Words<u64>>,
}

impl<const N: usize> FamilyMaps<N> {
    /// The map of this kind.
    pub fn info(&self, kind: MapKind) -> &dyn MapInfo {
        match kind {
            MapKind::Exact => self.exact.as_ref(),
            MapKind::Prefix => self.prefix.as_ref(),
            MapKind::Allow => self.allow.as_ref(),
        }
    }

    /// Its array maps: prefilters, lengths, hints.
    fn arrays(&self) -> Vec<&dyn MapInfo> {
        let words = [&self.filter, &self.allowed, &self.prefixed, &self.exacts]
            .map(|w| w.as_ref() as &dyn MapInfo);
        let lens = self.lens.as_ref() as &dyn MapInfo;
        let hints = self.hints.as_ref().map(|h| h.as_ref() as &dyn MapInfo);
        words.into_iter().chain([lens]).chain(hints).collect()
    }

    /// What the maps hold, as a plan's tables.
    pub fn tables(&self) -> Result<Tables<N>> {
        Ok(Tables {
            exact: metas(self.exact.entries()?),
            prefix: metas(self.prefix.entries()?),
            allow: self.allow.entries()?.into_iter().map(|(k, _)| k).collect(),
        })
    }

    /// Every address entry with its hit counters.
    pub fn hits(&self) -> Result<Vec<EntryHits>> {
        let exact = self.exact.entries()?.into_iter().map(|(a, v)| (net(&a, (N * 8) as u8), v));
        let prefix = self.prefix.entries()?.into_iter().map(|((l, a), v)| (net(&a, l), v));
        Ok(exact.chain(prefix).map(|(net, v)| EntryHits::new(net, &v)).collect())
    }
}

/// The address maps and the config array: everything `sync` writes.
pub struct AddressMaps {
    pub v4: FamilyMaps<4>,
    pub v6: FamilyMaps<16>,
    pub settings: Box<dyn Settings>,
    pub writer: writer::Writer,
    /// Config flags that come from no plan (the journal's, the exact-address filter's size),
    /// kept by every write of the flags.
    pub extra_flags: u32,
}

impl AddressMaps {
    /// The address map `m`.
    pub fn info(&self, m: &AddressMap) -> &dyn MapInfo {
        match m.family {
            Family::V4 => self.v4.info(m.kind),
            Family::V6 => self.v6.info(m.kind),
        }
    }

    /// What the maps hold, as a plan (its statistics are zero).
    pub fn plan(&self) -> Result<Plan> {
        Ok(Plan { v4: self.v4.tables()?, v6: self.v6.tables()?, stats: Default::default() })
    }
}

/// Entries with their plan metadata.
fn metas<K>(v: Vec<(K, filter_common::EntryValue)>) -> Vec<(K, Meta)> {
    v.into_iter().map(|(k, e)| (k, table::meta(&e))).collect()
}

/// CLOCK_MONOTONIC now, in nanoseconds: the clock of the kernel's last-hit stamps
/// ([`EntryHits::last_hit_ns`]).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into `ts`.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// An entry with its hit counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryHits {
    pub net: IpNet,
    pub meta: Meta,
    pub packets: u64,
    /// Kernel monotonic time of the last hit, to 134 ms (0: never).
    pub last_hit_ns: u64,
}

impl EntryHits {
    fn new(net: IpNet, v: &filter_common::EntryValue) -> Self {
        Self { net, meta: table::meta(v), packets: v.packets, last_hit_ns: v.last_hit_ns() }
    }
}

fn take(maps: &mut Named, name: &'static str) -> Result<Map> {
    maps.remove(name).ok_or_else(|| anyhow!("the filter has no map {name}"))
}

fn kernel<C: table::Codec + 'static>(
    maps: &mut Named,
    name: &'static str,
) -> Result<Box<Kernel<C>>> {
    Ok(Box::new(Kernel::<C>::new(name, take(maps, name)?)?))
}

/// The table `t` (keyed by `K`), its maps taken from `maps`.
fn table4<K: table4::Word + 'static>(
    maps: &mut Named,
    t: TableMaps,
    hits: &Arc<Hits>,
) -> Result<Box<table4::Table4Maps<K>>> {
    let keys = t.keys.map(|k| take(maps, k)).transpose()?;
    let (values, buckets) = (take(maps, t.values)?, take(maps, t.buckets)?);
    Ok(Box::new(table4::Table4Maps::new(t, values, buckets, keys, hits.clone())?))
}

fn words<V: aya::Pod + Sync>(
    maps: &mut Named,
    name: &'static str,
) -> Result<Box<prefilter::KernelWords<V>>> {
    Ok(Box::new(prefilter::KernelWords::new(name, take(maps, name)?)?))
}

fn v4(maps: &mut Named, hits: &Arc<Hits>) -> Result<FamilyMaps<4>> {
    Ok(FamilyMaps {
        exact: table4(maps, EXACT4, hits)?,
        prefix: table4(maps, PREFIX4, hits)?,
        allow: kernel::<Allow<4>>(maps, MAP_V4_ALLOW)?,
        filter: words(maps, MAP_V4_FILTER)?,
        allowed: words(maps, MAP_V4_ALLOWED)?,
        prefixed: words(maps, MAP_V4_PREFIXED)?,
        lens: words(maps, MAP_V4_LENS)?,
        hints: Some(Box::new(hints::KernelHints::new(take(maps, MAP_V4_HINTS)?)?)),
        exacts: words(maps, MAP_V4_EXACTS)?,
    })
}

fn v6(maps: &mut Named, hits: &Arc<Hits>) -> Result<FamilyMaps<16>> {
    Ok(FamilyMaps {
        exact: table4(maps, EXACT6, hits)?,
        prefix: table4(maps, PREFIX6, hits)?,
        allow: kernel::<Allow<16>>(maps, MAP_V6_ALLOW)?,
        filter: words(maps, MAP_V6_FILTER)?,
        allowed: words(maps, MAP_V6_ALLOWED)?,
        prefixed: words(maps, MAP_V6_PREFIXED)?,
        lens: words(maps, MAP_V6_LENS)?,
        hints: None,
        exacts: words(maps, MAP_V6_EXACTS)?,
    })
}

/// Every map of a filter: the typed address maps, and the others by name.
pub struct FilterMaps {
    pub addr: AddressMaps,
    others: Named,
}

impl FilterMaps {
    /// Wraps every map of `ALL_MAPS`, taken from a loaded object or opened from pins.
    pub fn new(mut maps: Named) -> Result<Self> {
        let hits =
            Arc::new(Hits::of(maps.get(MAP_HITS).context("the filter has no map TD_HITS")?)?);
        let v4 = v4(&mut maps, &hits)?;
        // The size of the IPv4 exact-address filter rides in the flags every write sets.
        let extra_flags = filter_common::v4_exacts_in_flags(v4.exacts.capacity()?);
        let addr = AddressMaps {
            v4,
            v6: v6(&mut maps, &hits)?,
            settings: Box::new(KernelSettings(take(&mut maps, MAP_CONFIG)?)),
            writer: Default::default(),
            extra_flags,
        };
        Ok(Self { addr, others: maps })
    }

    /// Opens every pinned map of `pins` (fails in one sentence when none are pinned there).
    pub fn open(pins: &pins::Pins) -> Result<Self> {
        Self::new(pins.open_maps()?)
    }

    /// Pins every map at `pins` (replacing what is pinned under their names).
    pub fn pin(&self, pins: &pins::Pins) -> Result<()> {
        pins.prepare()?;
        // Not the program's own data (the flow tags): each load has its own.
        for (name, map) in self.others.iter().filter(|(n, _)| **n != filter_common::MAP_FLOW_TAGS) {
            pin_map(name, map, &pins.map(name))?;
        }
        for m in &filter_common::ADDRESS_MAPS {
            self.addr.info(m).pin(pins)?;
        }
        for f in self.addr.v4.arrays().into_iter().chain(self.addr.v6.arrays()) {
            f.pin(pins)?;
        }
        // Last: the layout version it holds marks the pin set complete (see `version`).
        self.addr.settings.pin(&pins.map(MAP_CONFIG))
    }

    /// A map that is not an address map (counters, events, ...), by name.
    pub fn map(&self, name: &str) -> Result<&Map> {
        self.others.get(name).ok_or_else(|| anyhow!("the filter has no map {name}"))
    }

    /// A map that is not an address map on a descriptor of its own, for a reader that runs
    /// apart from this handle (the event reader, the metrics server).
    pub fn map_copy(&self, name: &str) -> Result<Map> {
        use std::os::fd::AsFd;
        let data = match self.map(name)? {
            Map::RingBuf(d) | Map::PerCpuArray(d) | Map::Array(d) => d,
            _ => anyhow::bail!("map {name} cannot be opened twice"),
        };
        let fd = data.fd().as_fd().try_clone_to_owned()?;
        Ok(Map::from_map_data(MapData::from_fd(fd)?)?)
    }

    /// A map that is not an address map, to read it mutably (the event ring buffer).
    pub fn map_mut(&mut self, name: &str) -> Result<&mut Map> {
        self.others.get_mut(name).ok_or_else(|| anyhow!("the filter has no map {name}"))
    }

    /// What the address maps hold, as a plan.
    pub fn plan(&self) -> Result<Plan> {
        self.addr.plan()
    }

    /// How many entries each address map can hold.
    pub fn capacities(&self) -> Result<filter::Capacities> {
        let mut caps = filter::Capacities::default();
        for (cap, m) in caps.tables.iter_mut().zip(&filter_common::ADDRESS_MAPS) {
            *cap = self.addr.info(m).capacity()?;
        }
        if let Some(h) = &self.addr.v4.hints {
            caps.hints = h.capacity()? >= filter_common::HINT_WORDS;
        }
        let Map::RingBuf(ring) = self.map(filter_common::MAP_JOURNAL)? else {
            anyhow::bail!("the journal's ring is not a ring buffer");
        };
        caps.journal = ring.info()?.max_entries() >= filter_common::RING_BYTES;
        Ok(caps)
    }

    /// Every address entry with its hit counters.
    pub fn hits(&self) -> Result<Vec<EntryHits>> {
        let mut out = self.addr.v4.hits()?;
        out.extend(self.addr.v6.hits()?);
        Ok(out)
    }

    /// Sets the event rate limit: `rate` events a second per CPU (0: none), bursts of `burst`,
    /// in every CPU's budget (its schedule and its count of suppressed events kept, short of
    /// what the kernel adds between this read and write).
    pub fn set_event_rate(&mut self, rate: u32, burst: u32) -> Result<()> {
        // The kernel's unit: nanoseconds between two events of a CPU (0: none).
        let interval = 1_000_000_000u64.checked_div(rate.into()).map_or(0, |ns| ns.max(1));
        let window = interval * u64::from(burst.max(1));
        let mut budgets: PerCpuArray<&mut MapData, RateState> =
            PerCpuArray::try_from(self.map_mut(MAP_RATE)?)?;
        let held = budgets.get(&0, 0)?;
        let set = |b: &RateState| RateState { interval_ns: interval, window_ns: window, ..*b };
        let values = PerCpuValues::try_from(held.iter().map(set).collect::<Vec<_>>())?;
        budgets.set(0, values, 0).map_err(|e| anyhow!("cannot write {MAP_RATE}: {e}"))
    }

    /// Stamps the maps with this build's contract layout.
    pub fn set_layout(&mut self) -> Result<()> {
        self.addr.settings.set(filter_common::CFG_LAYOUT, filter_common::LAYOUT_VERSION)
    }

    /// Tells the kernel the geometry of the tables (the same for pinned maps).
    pub(super) fn set_geometry(&mut self) -> Result<()> {
        for table in TABLES {
            let m = filter_common::ADDRESS_MAPS
                .iter()
                .find(|m| m.name == table.values)
                .expect("a table's map");
            let buckets = filter_common::v4_bucket_count(self.addr.info(m).capacity()?);
            self.addr.settings.set(table.config, buckets)?;
        }
        Ok(())
    }

    /// Gives interface index `index` its own counter slot (1..=MAX_IFACES; 0 counts the rest).
    pub fn set_interface_slot(&mut self, index: u32, slot: u32) -> Result<()> {
        let map =
            self.others.get_mut(filter_common::MAP_IFSLOT).ok_or_else(|| anyhow!("no slots"))?;
        let mut slots: Array<&mut MapData, u32> = Array::try_from(map)?;
        slots
            .set(index, slot, 0)
            .map_err(|e| anyhow!("cannot write {}: {e}", filter_common::MAP_IFSLOT))
    }
}

/// Takes every map of `ALL_MAPS` out of a loaded object.
pub fn take_all(ebpf: &mut aya::Ebpf) -> Result<Named> {
    ALL_MAPS
        .iter()
        .map(|&name| {
            let map = ebpf.take_map(name).ok_or_else(|| {
                anyhow!("the embedded XDP program has no map {name}: rebuild takedown")
            })?;
            Ok((name, map))
        })
        .collect()
}
