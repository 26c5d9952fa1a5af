//! The connection journal's kernel side seen from user space: switching it on and off (a bit
//! of the config flags that no plan sets, kept by every later write of the flags), the ring
//! buffer its records arrive in, and the flow slots (emptied now and then, so that a
//! long UDP flow is reported again).

use anyhow::{Result, bail};
use aya::maps::{Array, Map, MapData, RingBuf};
use filter_common::{CFG_FLAGS, CFG_JOURNAL, FLOW_SLOTS, MAP_FLOW_TAGS, MAP_JOURNAL};

use super::FilterMaps;

/// The kernel's UDP flow slots (the program's zeroed data), on a descriptor of their own.
pub struct FlowSlots(Array<MapData, Tags>);

/// Every flow slot.
type Tags = [u64; FLOW_SLOTS as usize];

impl FlowSlots {
    /// Empties every slot.
    #[allow(clippy::needless_borrows_for_generic_args, reason = "not 512 KiB through the stack")]
    pub fn clear(&mut self) -> Result<()> {
        let empty: Box<Tags> = vec![0; FLOW_SLOTS as usize].try_into().expect("FLOW_SLOTS words");
        Ok(self.0.set(0, &*empty, 0)?)
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
        match self.map_copy(MAP_FLOW_TAGS)? {
            m @ Map::Array(_) => Ok(FlowSlots(Array::try_from(m)?)),
            _ => bail!("the flow slots are not an array"),
        }
    }
}
