//! `takedown run`: load, fill, attach, print counters until SIGINT/SIGTERM, detach.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use clap::Args;
use takedown::{
    counters,
    entry::Direction,
    filter::{self, Capacities, Filter, Mode},
    parse::{self, ParsedList},
    plan::Plan,
    privileges, sync,
};
use tokio::signal::unix::{SignalKind, signal};

use super::report;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Interface to attach to (repeat for several; on a gateway: inside and outside).
    #[arg(short, long = "iface", value_name = "IF", required = true)]
    ifaces: Vec<String>,
    /// Takedown list file (repeat for several).
    #[arg(short, long = "list", value_name = "FILE", required = true)]
    lists: Vec<PathBuf>,
    /// XDP attach mode.
    #[arg(long, value_enum, default_value_t)]
    mode: Mode,
    /// Which packets the entries of these lists block.
    #[arg(long, value_enum, default_value_t)]
    direction: Direction,
    /// Seconds between counter lines (0: only at exit).
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    interval: u64,
    /// Largest size of any one map (exact IPv4, exact IPv6, IPv4 prefixes, IPv6 prefixes).
    #[arg(long, value_name = "N", default_value_t = 16_777_216)]
    max_entries: u32,
}

pub fn run(args: RunArgs) -> Result<()> {
    privileges::require_bpf_admin("takedown run")?;
    for iface in &args.ifaces {
        filter::check_interface(iface)?;
    }
    let lists = read_lists(&args.lists, args.direction)?;
    report::print_lists(&lists);
    let plan = Plan::from_lists(&lists);
    report::print_plan(&plan);
    let caps = Capacities::for_plan(&plan, args.max_entries)?;

    let started = Instant::now();
    let mut filter = Filter::load(&caps)?;
    sync::fill(filter.ebpf_mut(), &plan)?;
    say!(
        "loaded {} entries into the kernel in {:.3} s",
        plan.len(),
        started.elapsed().as_secs_f64()
    );
    // Filled before attaching: the filter never runs with half a list.
    for iface in &args.ifaces {
        let mode = filter.attach(iface, args.mode)?;
        say!("attached to {iface} in {mode} mode");
    }
    say!("filtering; Ctrl-C or SIGTERM detaches and exits");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(print_until_signal(&filter, args.interval))?;
    say!("final: {}", counters::read(filter.ebpf())?);
    drop(filter);
    say!("detached from {}", args.ifaces.join(", "));
    Ok(())
}

fn read_lists(paths: &[PathBuf], direction: Direction) -> Result<Vec<ParsedList>> {
    let mut lists = Vec::with_capacity(paths.len());
    for path in paths {
        let list = parse::parse_file(path, direction)?;
        if list.entries.is_empty() {
            let first = list
                .skipped
                .first()
                .map(|n| format!(" (first skipped line {}: {})", n.line, n.reason))
                .unwrap_or_default();
            bail!(
                "list {} has no usable entry: {} lines skipped{first}",
                path.display(),
                list.skipped.len()
            );
        }
        lists.push(list);
    }
    Ok(lists)
}

async fn print_until_signal(filter: &Filter, interval: u64) -> Result<()> {
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let period = Duration::from_secs(interval.max(1));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        tokio::select! {
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
            _ = ticker.tick(), if interval > 0 => {
                say!("{}", counters::read(filter.ebpf())?);
            }
        }
    }
}
