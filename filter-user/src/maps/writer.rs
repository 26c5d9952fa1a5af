//! Who wrote the address maps last: every write through `sync` ends by putting a token of its
//! own at `CFG_WRITER` in the config array. A daemon that finds another token there knows
//! another process (a second daemon, the CLI racing a start, bpftool) changed its maps, and
//! writes its own plan back.

use anyhow::Result;
use filter_common::CFG_WRITER;

use super::{AddressMaps, Settings};

/// This handle's side of the token.
#[derive(Debug, Default)]
pub struct Writer {
    /// The token this handle wrote last (None: it wrote nothing yet).
    stamped: Option<u32>,
    /// Another token was found in place of ours before our last write.
    foreign: bool,
}

impl Writer {
    /// Marks the maps as last written by this handle (noting first whether another wrote them
    /// since our last write, so that our token does not hide it).
    pub fn stamp(&mut self, settings: &mut dyn Settings) -> Result<()> {
        self.foreign |= self.replaced(settings)?;
        let token = fastrand::u32(1..);
        settings.set(CFG_WRITER, token)?;
        self.stamped = Some(token);
        Ok(())
    }

    /// True when another process wrote the maps since this handle's last write (or between
    /// two of them); asking clears it.
    pub fn take_foreign(&mut self, settings: &dyn Settings) -> Result<bool> {
        let replaced = self.replaced(settings)?;
        Ok(std::mem::take(&mut self.foreign) | replaced)
    }

    fn replaced(&self, settings: &dyn Settings) -> Result<bool> {
        Ok(match self.stamped {
            Some(token) => settings.get(CFG_WRITER)? != token,
            None => false,
        })
    }
}

impl AddressMaps {
    /// Marks the maps as written by this handle.
    pub fn stamp(&mut self) -> Result<()> {
        self.writer.stamp(self.settings.as_mut())
    }

    /// True when another process wrote the maps since this handle last did; asking clears it.
    pub fn written_elsewhere(&mut self) -> Result<bool> {
        self.writer.take_foreign(self.settings.as_ref())
    }
}
