//! The hits each CPU keeps in its slots of `TD_HITS` (filter-common's `hits`), read on a
//! descriptor of their own: an entry's hit count is its value's `packets` plus what the slots
//! that name its value and generation hold.

use std::{collections::HashMap, os::fd::AsFd};

use anyhow::{Result, anyhow};
use aya::maps::{Map, MapData, PerCpuArray};
use filter_common::{HitSlots, VALUE_WORDS, entry_at};

/// The hit slots of every CPU.
pub struct Hits(Map);

impl Hits {
    /// Reads `map` (`TD_HITS`) on a descriptor of its own.
    pub fn of(map: &Map) -> Result<Self> {
        let Map::PerCpuArray(data) = map else { return Err(anyhow!("TD_HITS is not per CPU")) };
        let fd = data.fd().as_fd().try_clone_to_owned()?;
        Ok(Self(Map::from_map_data(MapData::from_fd(fd)?)?))
    }

    /// What the slots hold now: hits by the `entry_at` and generation they name, summed over
    /// the CPUs.
    pub fn read(&self) -> Result<Pending> {
        let array: PerCpuArray<&MapData, HitSlots> = PerCpuArray::try_from(&self.0)?;
        let mut held: HashMap<(u32, u16), u64> = HashMap::new();
        for cpu in array.get(&0, 0)?.iter() {
            for s in cpu.slots.iter().filter(|s| s.at != 0 && s.packets > 0) {
                *held.entry((s.at, s.generation)).or_default() += s.packets;
            }
        }
        Ok(Pending(held))
    }
}

/// Hits the slots hold, by the `entry_at` and generation they name.
#[derive(Clone, Debug, Default)]
pub struct Pending(HashMap<(u32, u16), u64>);

impl Pending {
    /// The hits held for value `index` of table `table` (an `AT_*`) in generation `generation`.
    pub fn of(&self, table: u32, index: u32, generation: u16) -> u64 {
        let at = entry_at(table, u64::from(index) * u64::from(VALUE_WORDS) * 8);
        self.0.get(&(at, generation)).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use filter_common::{AT_V4_EXACT, AT_V6_PREFIX};

    use super::*;

    #[test]
    fn hits_are_found_by_table_index_and_generation() {
        let at = |t, i: u32| entry_at(t, u64::from(i) * 24);
        let p =
            Pending(HashMap::from([((at(AT_V4_EXACT, 7), 1), 5), ((at(AT_V6_PREFIX, 7), 1), 9)]));
        assert_eq!((p.of(AT_V4_EXACT, 7, 1), p.of(AT_V6_PREFIX, 7, 1)), (5, 9));
        assert_eq!((p.of(AT_V4_EXACT, 8, 1), p.of(AT_V4_EXACT, 7, 2)), (0, 0), "another entry");
    }
}
