//! An ephemeral daemon's places (`run --ephemeral`), so that the CLI reaches it like any other:
//! its maps shown in a pin directory of its own and a state directory of its own (control
//! socket, status), each beside the usual one and named with its pid
//! (`/sys/fs/bpf/takedown-ephemeral-<pid>`, `/var/lib/takedown-ephemeral-<pid>`). No link is
//! pinned, so the filter still goes with the process; both places are removed at exit, and
//! those a killed run left behind are removed by the next ephemeral run.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::state::StateDir;
use crate::maps::pins::Pins;

/// The places of this process's ephemeral run; removed when dropped.
pub struct Ephemeral {
    pub pins: Pins,
    pub state: StateDir,
}

impl Ephemeral {
    /// The places beside `pin_dir` and `state_dir` for this process, after removing those
    /// of ephemeral runs that are gone.
    pub fn create(pin_dir: &Path, state_dir: &Path) -> Result<Self> {
        for (pid, pins, state) in beside(pin_dir, state_dir).into_iter().filter(|p| !alive(p.0)) {
            log::info!("removing the places of ephemeral run {pid}, which is gone");
            remove(&Pins::new(pins), &state);
        }
        let pid = std::process::id();
        let place = Self {
            pins: Pins::new(named(pin_dir, pid)),
            state: StateDir::new(named(state_dir, pid)),
        };
        place.state.prepare()?;
        Ok(place)
    }
}

impl Drop for Ephemeral {
    fn drop(&mut self) {
        remove(&self.pins, self.state.dir());
    }
}

fn remove(pins: &Pins, state: &Path) {
    if let Err(e) = pins.remove_all() {
        log::warn!("{e:#}");
    }
    if let Err(e) = std::fs::remove_dir_all(state)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        log::warn!("cannot remove {}: {e}", state.display());
    }
}

/// `<place>-ephemeral-<pid>`.
fn named(place: &Path, pid: u32) -> PathBuf {
    PathBuf::from(format!("{}-ephemeral-{pid}", place.display()))
}

/// The ephemeral runs whose places lie beside `pin_dir` and `state_dir`: (pid, pin
/// directory, state directory), by pid, gone or not.
fn beside(pin_dir: &Path, state_dir: &Path) -> Vec<(u32, PathBuf, PathBuf)> {
    let prefix = format!("{}-ephemeral-", state_dir.file_name().unwrap_or_default().display());
    let Ok(dir) = std::fs::read_dir(state_dir.parent().unwrap_or(Path::new("/"))) else {
        return Vec::new();
    };
    let mut runs: Vec<_> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_prefix(&prefix)?.parse::<u32>().ok())
        .map(|pid| (pid, named(pin_dir, pid), named(state_dir, pid)))
        .collect();
    runs.sort();
    runs
}

/// The ephemeral runs beside `pin_dir` and `state_dir` that are still running: a daemon of
/// that pid holds its state directory's lock (a leftover directory, or a pid used again by
/// another process, is no run).
pub fn running(pin_dir: &Path, state_dir: &Path) -> Vec<(u32, PathBuf, PathBuf)> {
    let holds = |r: &(u32, PathBuf, PathBuf)| {
        StateDir::new(&r.2).daemon_pid().is_some_and(|pid| pid as u32 == r.0)
    };
    beside(pin_dir, state_dir).into_iter().filter(holds).collect()
}

fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 sends nothing; it asks whether the process exists.
    let r = unsafe { libc::kill(pid as i32, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}
