//! Reading the per-CPU packet counters and showing their totals.

use std::fmt;

use anyhow::Result;
use aya::maps::{Map, MapData, PerCpuArray};
use filter_common::{
    CNT_COUNT, CNT_EVENTS, CNT_NAMES, CNT_SUPPRESSED, Counter, MAP_COUNTERS, MAP_RATE, MAX_IFACES,
    RateState, counter_index,
};

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

/// Sums the counters of a filter over every CPU.
pub fn read(maps: &super::FilterMaps) -> Result<Totals> {
    read_map(maps.map(MAP_COUNTERS)?, maps.map(MAP_RATE)?)
}

/// Sums the counters of a counters map and the suppressed events of an event budget map
/// (loaded or opened from their pins) over every CPU and interface slot.
pub fn read_map(counters: &Map, rate: &Map) -> Result<Totals> {
    let mut totals = Totals::default();
    for slot in read_slots(counters, rate)? {
        for (t, c) in totals.0.iter_mut().zip(slot.0) {
            t.packets += c.packets;
            t.bytes += c.bytes;
        }
    }
    Ok(totals)
}

/// The counters of each interface slot (index 0: interfaces without a slot, and the events
/// suppressed, which the budgets count), over every CPU.
pub fn read_slots(counters: &Map, rate: &Map) -> Result<Vec<Totals>> {
    let array: PerCpuArray<&MapData, Counter> = PerCpuArray::try_from(counters)?;
    let mut out = vec![Totals::default(); MAX_IFACES as usize + 1];
    for (slot, totals) in out.iter_mut().enumerate() {
        for cnt in 0..CNT_COUNT {
            for c in array.get(&counter_index(slot as u32, cnt), 0)?.iter() {
                totals.0[cnt as usize].packets += c.packets;
                totals.0[cnt as usize].bytes += c.bytes;
            }
        }
    }
    let budgets: PerCpuArray<&MapData, RateState> = PerCpuArray::try_from(rate)?;
    out[0].0[CNT_SUPPRESSED as usize].packets =
        budgets.get(&0, 0)?.iter().map(|b| b.suppressed).sum();
    Ok(out)
}

/// Packets and bytes matched per list bit, as source and as destination, over every CPU.
pub fn read_lists(map: &Map) -> Result<Vec<(u32, Counter, Counter)>> {
    let array: PerCpuArray<&MapData, Counter> = PerCpuArray::try_from(map)?;
    let mut out = Vec::new();
    for bit in 0..filter_common::MAX_LISTS as u32 {
        let sum = |dst: bool| -> Result<Counter> {
            let mut c = Counter::default();
            for v in array.get(&filter_common::list_counter_index(bit, dst), 0)?.iter() {
                c.packets += v.packets;
                c.bytes += v.bytes;
            }
            Ok(c)
        };
        let (s, d) = (sum(false)?, sum(true)?);
        if s.packets + d.packets > 0 {
            out.push((bit, s, d));
        }
    }
    Ok(out)
}

/// True for the counters that count events, not packets (they have no bytes).
pub fn counts_events(cnt: usize) -> bool {
    cnt == CNT_EVENTS as usize || cnt == CNT_SUPPRESSED as usize
}

impl fmt::Display for Totals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, c)) in CNT_NAMES.iter().zip(self.0.iter()).enumerate() {
            if i > 0 {
                f.write_str("  ")?;
            }
            match counts_events(i) {
                true => write!(f, "{name} {}", c.packets)?,
                false => write!(f, "{name} {} pkts/{} B", c.packets, c.bytes)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_counted_as_events_not_packets_of_zero_bytes() {
        let mut t = Totals::default();
        t.0[CNT_EVENTS as usize].packets = 69;
        t.0[0] = Counter { packets: 90, bytes: 6128 };
        let line = t.to_string();
        assert!(line.starts_with("passed 90 pkts/6128 B"), "{line}");
        assert!(line.contains("  events 69  events_suppressed 0"), "{line}");
        assert!(!line.contains("events 69 pkts"), "{line}");
    }
}
