//! `takedown refresh [NAME]`: asks the daemon to refresh one list or all, and reports each
//! list's result; exits 1 when one failed (its previous content stays in force).

use std::{process::ExitCode, time::Duration};

use anyhow::{Result, bail};
use clap::Args;
use takedown::daemon::control::{self, Request};

use super::places::Places;

#[derive(Args, Debug)]
pub struct RefreshArgs {
    /// The list to refresh (default: every list).
    list: Option<String>,
    /// Seconds to wait for the daemon's answer (a list's refresh ends within its deadline,
    /// 300 s unless configured, and a request's timeout).
    #[arg(long, default_value_t = 400)]
    timeout: u64,
    #[command(flatten)]
    places: Places,
}

pub fn run(args: RefreshArgs) -> Result<ExitCode> {
    let state = args.places.state();
    // A daemon's state directory is root's alone: another user cannot even tell one runs.
    let fix = "; run it as root or with sudo";
    super::places::root_only("takedown refresh", &state.pid_file(), state.dir(), fix)?;
    let Some(pid) = state.daemon_pid() else {
        bail!("no takedown daemon is running (start one with `takedown run`)");
    };
    let request = Request::Refresh { list: args.list.clone() };
    let reply = control::call(&state.socket(), &request, Duration::from_secs(args.timeout))?;
    if let Some(e) = reply.error {
        bail!("the daemon (pid {pid}) refused: {e}");
    }
    for r in &reply.results {
        let word = if r.ok { "ok" } else { "FAILED" };
        say!("{}: {word}: {}", r.list, r.message);
    }
    Ok(if reply.ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
