//! The connection journal's kernel side seen from user space: switching it on and off (a bit
//! of the config flags that no plan sets, kept by every later write of the flags) and the ring
//! buffer its records arrive in.

use anyhow::{Result, bail};
use aya::maps::{MapData, RingBuf};
use filter_common::{CFG_FLAGS, CFG_JOURNAL, MAP_JOURNAL};

use super::FilterMaps;

impl FilterMaps {
    /// Has the kernel report new connections (`on`) or not. The maps must have been created
    /// with the journal's sizes (`Capacities::with_journal`).
    pub fn set_journal(&mut self, on: bool) -> Result<()> {
        if on && !self.capacities()?.journal {
            bail!("the filter's maps were created without room for the connection journal");
        }
        let addr = &mut self.addr;
        addr.extra_flags =
            if on { addr.extra_flags | CFG_JOURNAL } else { addr.extra_flags & !CFG_JOURNAL };
        let flags = addr.settings.get(CFG_FLAGS)?;
        let flags = if on { flags | CFG_JOURNAL } else { flags & !CFG_JOURNAL };
        addr.settings.set(CFG_FLAGS, flags)
    }

    /// The journal's ring buffer, on a descriptor of its own (for the journal's reader).
    pub fn journal_ring(&self) -> Result<RingBuf<MapData>> {
        Ok(RingBuf::try_from(self.map_copy(MAP_JOURNAL)?)?)
    }
}
