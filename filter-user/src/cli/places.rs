//! Where the filter's pinned state and takedown's state directory are: options shared by every
//! command that works on a running filter.

use std::path::PathBuf;

use clap::Args;
use takedown::{daemon::state::StateDir, maps::pins::Pins};

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
    pub fn pins(&self) -> Pins {
        Pins::new(&self.pin_dir)
    }

    pub fn state(&self) -> StateDir {
        StateDir::new(&self.state_dir)
    }
}
