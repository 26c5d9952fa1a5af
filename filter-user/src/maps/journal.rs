//! The connection journal's kernel side seen from user space: switching it on and off (a bit
//! of the config flags that no plan sets, kept by every later write of the flags), the ring
//! buffer its records arrive in, and the flow slots (emptied now and then, so that a
//! long UDP flow is reported again).

use anyhow::{Result, bail};
use aya::maps::{Array, Map, MapData, RingBuf};
use filter_common::{CFG_FLAGS, CFG_JOURNAL, MAP_FLOWS, MAP_JOURNAL};

use super::FilterMaps;

/// The kernel's UDP flow slots, on a descriptor of their own.
pub struct FlowSlots(Array<MapData, u64>);

impl FlowSlots {
    /// Empties every slot.
    pub fn clear(&mut self) -> Result<()> {
        for i in 0..self.0.len() {
            self.0.set(i, 0, 0)?;
        }
        Ok(())
    }
}

impl FilterMaps {
    /// Has the kernel report new connections (`on`) or not. The maps must have been created
    /// with the journal's sizes (`Capacities::with_journal`).
    pub fn set_journal(&mut self, on: bool) -> Result<()> {
        if on && !self.capacities()?.journal {
            bail!("the filter's maps were created without room for the connection journal");
        }
        let addr = &mut self.addr;
        let flag = |f: u32| if on { f | CFG_JOURNAL } else { f & !CFG_JOURNAL };
        addr.extra_flags = flag(addr.extra_flags);
        let flags = addr.settings.get(CFG_FLAGS)?;
        addr.settings.set(CFG_FLAGS, flag(flags))
    }

    /// The journal's ring buffer, on a descriptor of its own (for the journal's writer).
    pub fn journal_ring(&self) -> Result<RingBuf<MapData>> {
        Ok(RingBuf::try_from(self.map_copy(MAP_JOURNAL)?)?)
    }

    /// The kernel's UDP flow slots, on a descriptor of their own.
    pub fn flow_slots(&self) -> Result<FlowSlots> {
        match self.map_copy(MAP_FLOWS)? {
            m @ Map::Array(_) => Ok(FlowSlots(Array::try_from(m)?)),
            _ => bail!("the flow slots are not an array"),
        }
    }
}
