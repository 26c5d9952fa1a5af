//! `takedown stop` (the daemon goes, the filter stays) and `takedown detach` (everything goes).

use std::{
    io::{BufRead, IsTerminal},
    time::{Duration, Instant},
};

use anyhow::{Result, bail};
use clap::Args;
use takedown::daemon::state::StateDir;

use super::places::Places;

#[derive(Args, Debug)]
pub struct StopArgs {
    #[command(flatten)]
    places: Places,
}

#[derive(Args, Debug)]
pub struct DetachArgs {
    #[command(flatten)]
    places: Places,
    /// Do not ask for confirmation.
    #[arg(long, short)]
    yes: bool,
}

/// Sends SIGTERM to the daemon and waits (at most 15 s) for it to exit; returns its pid.
fn stop_daemon(state: &StateDir) -> Result<Option<i32>> {
    let Some(pid) = state.daemon_pid() else { return Ok(None) };
    // SAFETY: kill with a pid read from our own pid file.
    if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
        bail!("cannot signal the daemon (pid {pid}): {}", std::io::Error::last_os_error());
    }
    let end = Instant::now() + Duration::from_secs(15);
    while state.daemon_pid().is_some() {
        if Instant::now() > end {
            bail!("the daemon (pid {pid}) did not exit within 15 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(Some(pid))
}

pub fn stop(args: StopArgs) -> Result<()> {
    takedown::maps::privileges::require_bpf_admin("takedown stop")?;
    let stopped = stop_daemon(&args.places.state())?;
    // What enforces is read after the daemon is gone: never claim a filter that is not there.
    let pins = args.places.pins();
    let ifaces = pins.linked_interfaces();
    let enforcing = match (ifaces.is_empty(), pins.has_maps()) {
        (false, true) => format!("the filter keeps enforcing on {}", ifaces.join(", ")),
        _ => format!("no filter is pinned at {}: nothing enforces", pins.dir().display()),
    };
    match stopped {
        Some(pid) => say!("stopped the takedown daemon (pid {pid}); {enforcing}"),
        None => say!("no takedown daemon is running; {enforcing}"),
    }
    Ok(())
}

pub fn detach(args: DetachArgs) -> Result<()> {
    takedown::maps::privileges::require_bpf_admin("takedown detach")?;
    let pins = args.places.pins();
    if !pins.dir().exists() {
        bail!("no filter is pinned at {}", pins.dir().display());
    }
    let ifaces = pins.linked_interfaces();
    let what = if ifaces.is_empty() { "no interface".to_string() } else { ifaces.join(", ") };
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            bail!("detaching removes the filter from {what}: confirm with --yes");
        }
        eprint!("Remove the takedown filter from {what} and delete its pinned maps? [y/N] ");
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            bail!("not detached");
        }
    }
    if let Some(pid) = stop_daemon(&args.places.state())? {
        say!("stopped the takedown daemon (pid {pid})");
    }
    pins.remove_all()?;
    say!("detached from {what}; removed {}", pins.dir().display());
    Ok(())
}
