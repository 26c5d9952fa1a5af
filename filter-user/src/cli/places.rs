//! Where the filter's pinned state and takedown's state directory are: options shared by every
//! command that works on a running filter.

use std::path::{Path, PathBuf};

use clap::Args;
use takedown::{
    daemon::{ephemeral, hosts::HostTable, state::StateDir},
    maps::{
        FilterMaps,
        pins::Pins,
        privileges,
        version::{self, Pinned},
    },
};

#[derive(Args, Debug, Clone)]
pub struct Places {
    /// Where the filter's maps and links are pinned (on a bpf filesystem).
    #[arg(long, value_name = "DIR", env = "TAKEDOWN_PIN_DIR", default_value = takedown::maps::pins::DEFAULT_PIN_DIR)]
    pub pin_dir: PathBuf,
    /// Where takedown keeps its state: manual entries, list cache, status, control socket.
    #[arg(long, value_name = "DIR", env = "TAKEDOWN_STATE_DIR", default_value = takedown::daemon::state::DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
}

impl Places {
    /// The pinned filter's maps, for command `what` (one sentence when it lacks privileges).
    pub fn maps(&self, what: &str) -> anyhow::Result<FilterMaps> {
        privileges::require_bpf_reader(what)?;
        let opened = FilterMaps::open(&self.pins());
        if opened.is_ok() || self.state().daemon_pid().is_none() {
            return opened;
        }
        // A daemon runs: its pins were removed under it, and it pins them again within its
        // two-second housekeeping; wait for that rather than say none is pinned.
        let end = std::time::Instant::now() + std::time::Duration::from_secs(3);
        while std::time::Instant::now() < end {
            std::thread::sleep(std::time::Duration::from_millis(100));
            if let Ok(maps) = FilterMaps::open(&self.pins()) {
                return Ok(maps);
            }
        }
        FilterMaps::open(&self.pins())
    }

    /// The infected-host table (one sentence when the state directory cannot be read).
    pub fn hosts(&self) -> anyhow::Result<HostTable> {
        let path = self.state().hosts_file();
        root_only("takedown hosts", &path, &path, "")?;
        HostTable::read(&path)
    }

    pub fn pins(&self) -> Pins {
        Pins::new(self.in_use().0)
    }

    pub fn state(&self) -> StateDir {
        StateDir::new(self.in_use().1)
    }

    /// The pin and state directories in use: these, or, when they hold no filter and no
    /// daemon, those of the one ephemeral run beside them that is running (`run --ephemeral`).
    fn in_use(&self) -> (PathBuf, PathBuf) {
        let usual = (self.pin_dir.clone(), self.state_dir.clone());
        let pinned = !matches!(version::pinned(&Pins::new(&self.pin_dir)), Pinned::Nothing);
        if pinned || StateDir::new(&self.state_dir).daemon_pid().is_some() {
            return usual;
        }
        match ephemeral::running(&self.pin_dir, &self.state_dir).as_slice() {
            [(_, pins, state)] => (pins.clone(), state.clone()),
            _ => usual,
        }
    }
}

/// Fails with "`what` needs root: `shown` is readable by root only`fix`" when this user may
/// not read `probe` of the state directory (a daemon's state is root's alone).
pub fn root_only(what: &str, probe: &Path, shown: &Path, fix: &str) -> anyhow::Result<()> {
    match std::fs::File::open(probe) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            anyhow::bail!("{what} needs root: {} is readable by root only{fix}", shown.display())
        }
        _ => Ok(()),
    }
}
