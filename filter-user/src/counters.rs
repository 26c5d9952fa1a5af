//! Reading the per-CPU packet counters and showing their totals.

use std::fmt;

use anyhow::{Result, anyhow};
use aya::{
    Ebpf,
    maps::{Map, MapData, PerCpuArray},
};
use filter_common::{CNT_COUNT, CNT_NAMES, Counter, MAP_COUNTERS};

/// Counter totals over all CPUs, indexed by the `CNT_*` constants.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals(pub [Counter; CNT_COUNT as usize]);

impl Totals {
    /// Packets counted in `slot`.
    pub fn packets(&self, slot: u32) -> u64 {
        self.0[slot as usize].packets
    }

    /// Bytes counted in `slot`.
    pub fn bytes(&self, slot: u32) -> u64 {
        self.0[slot as usize].bytes
    }
}

/// Sums the counters of a loaded filter over every CPU.
pub fn read(ebpf: &Ebpf) -> Result<Totals> {
    read_map(ebpf.map(MAP_COUNTERS).ok_or_else(|| anyhow!("the filter has no map {MAP_COUNTERS}"))?)
}

/// Sums the counters of a counters map (loaded or opened from its pin) over every CPU.
pub fn read_map(map: &Map) -> Result<Totals> {
    let array: PerCpuArray<&MapData, Counter> = PerCpuArray::try_from(map)?;
    let mut totals = Totals::default();
    for slot in 0..CNT_COUNT {
        let per_cpu = array.get(&slot, 0)?;
        for c in per_cpu.iter() {
            totals.0[slot as usize].packets += c.packets;
            totals.0[slot as usize].bytes += c.bytes;
        }
    }
    Ok(totals)
}

impl fmt::Display for Totals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, c)) in CNT_NAMES.iter().zip(self.0.iter()).enumerate() {
            if i > 0 {
                f.write_str("  ")?;
            }
            write!(f, "{name} {} pkts/{} B", c.packets, c.bytes)?;
        }
        Ok(())
    }
}
