//! `takedown run`: resolve, load, fill, attach, print counters until SIGINT/SIGTERM, detach.
//! While it runs, domain entries are re-resolved and address changes applied to the maps.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use clap::Args;
use takedown::{
    counters,
    domains::{self, DnsLookup, Domains},
    filter::{self, Capacities, Filter, Mode},
    plan::Plan,
    prepare::{self, Prepared},
    privileges, read, sync,
};
use tokio::signal::unix::{SignalKind, signal};

use super::{dns::DnsArgs, places::Places, report, sources::SourceArgs};

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Interface to attach to (repeat for several; on a gateway: inside and outside).
    #[arg(short, long = "iface", value_name = "IF", required = true)]
    ifaces: Vec<String>,
    /// Takedown list file (repeat for several).
    #[arg(short, long = "list", value_name = "FILE", required = true)]
    lists: Vec<PathBuf>,
    #[command(flatten)]
    sources: SourceArgs,
    #[command(flatten)]
    dns: DnsArgs,
    /// XDP attach mode.
    #[arg(long, value_enum, default_value_t)]
    mode: Mode,
    /// Seconds between counter lines (0: only at exit).
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    interval: u64,
    /// Largest size of any one map (exact IPv4, exact IPv6, IPv4 prefixes, IPv6 prefixes).
    #[arg(long, value_name = "N", default_value_t = 16_777_216)]
    max_entries: u32,
    /// Do not pin: the filter is detached when takedown exits (for trials).
    #[arg(long)]
    ephemeral: bool,
    #[command(flatten)]
    places: Places,
}

pub fn run(args: RunArgs) -> Result<()> {
    privileges::require_bpf_admin("takedown run")?;
    for iface in &args.ifaces {
        filter::check_interface(iface)?;
    }
    let _lock = match args.ephemeral {
        true => None,
        false => Some(args.places.state().lock_daemon()?),
    };
    let prepared = prepare::prepare(&args.sources.sources(&args.lists))?;
    check_usable(&prepared)?;
    for r in &prepared.lists {
        report::print_list(r, false);
    }
    report::print_allow(&prepared);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    tokio::task::LocalSet::new().block_on(&runtime, serve(args, prepared))
}

async fn serve(args: RunArgs, prepared: Prepared) -> Result<()> {
    let mut domains = Domains::new(prepared.domains(), Instant::now());
    let lookup = match domains.table.is_empty() {
        true => None,
        false => {
            Some(DnsLookup::new(&args.dns.resolvers, Duration::from_secs(args.dns.dns_timeout))?)
        }
    };
    if let Some(lookup) = &lookup {
        let wait = Duration::from_secs(args.dns.dns_wait);
        let round = domains.refresh_due(lookup, args.dns.policy(), Instant::now());
        if tokio::time::timeout(wait, round).await.is_err() {
            log::warn!(
                "domains: not all resolved within {wait:?}; loading what is, the rest follow"
            );
        }
        let resolved = domains.table.values().filter(|s| !s.addrs.is_empty()).count();
        let failed = domains.table.values().filter(|s| s.error.is_some()).count();
        say!(
            "domains: {resolved} of {} resolved to {} addresses, {failed} failed",
            domains.table.len(),
            domains.resolved().len()
        );
    }
    let mut plan = prepared.plan(&domains.resolved());
    report::print_plan(&plan);
    let caps = Capacities::for_plan(&plan, args.max_entries)?;
    let pins = (!args.ephemeral).then(|| args.places.pins());
    let adopting = pins.as_ref().is_some_and(|p| p.has_maps());
    let started = Instant::now();
    let mut filter = Filter::load_pinned(&caps, pins.as_ref())?;
    if adopting {
        // Pinned state is the truth: write only the difference, never clear.
        let get = |n: &str| read::map(filter.ebpf(), n);
        read::capacities(get)?.check_fits(&plan)?;
        let held = read::plan(get)?;
        let ch = sync::apply(filter.ebpf_mut(), &held, &plan)?;
        say!(
            "adopted the pinned filter ({} entries): {} written, {} deleted in {:.3} s",
            held.len(),
            ch.written,
            ch.deleted,
            started.elapsed().as_secs_f64()
        );
    } else {
        sync::fill(filter.ebpf_mut(), &plan)?;
        say!(
            "loaded {} entries into the kernel in {:.3} s",
            plan.len(),
            started.elapsed().as_secs_f64()
        );
    }
    // Filled before attaching: the filter never runs with half a list.
    for iface in &args.ifaces {
        let mode = filter.attach(iface, args.mode)?;
        say!("attached to {iface} in {mode} mode");
    }
    if let Some(p) = &pins {
        for iface in p.linked_interfaces().into_iter().filter(|i| !args.ifaces.contains(i)) {
            p.unpin_link(&iface)?;
            say!("detached from {iface} (no longer requested)");
        }
    }
    match &pins {
        Some(p) => say!(
            "filtering (pinned at {}); SIGTERM or `takedown stop` stops takedown, the filter stays",
            p.dir().display()
        ),
        None => say!("filtering; Ctrl-C or SIGTERM detaches and exits"),
    }
    let mut updates = lookup.map(|l| domains::spawn_local_resolver(domains, l, args.dns.policy()));

    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let period = Duration::from_secs(args.interval.max(1));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = ticker.tick(), if args.interval > 0 => say!("{}", counters::read(filter.ebpf())?),
            changed = async { updates.as_mut().expect("guarded").changed().await }, if updates.is_some() => {
                if changed.is_err() {
                    updates = None;
                    continue;
                }
                let resolved = updates.as_mut().expect("guarded").borrow_and_update().clone();
                plan = apply_domains(&mut filter, &prepared, plan, &resolved);
            }
        }
    }
    say!("final: {}", counters::read(filter.ebpf())?);
    drop(filter);
    match &pins {
        Some(p) => say!(
            "takedown stopped; the filter keeps enforcing on {} (`takedown detach` removes it)",
            p.linked_interfaces().join(", ")
        ),
        None => say!("detached from {}", args.ifaces.join(", ")),
    }
    Ok(())
}

/// Moves the maps to the plan with the new domain addresses; on failure keeps the old plan
/// (the maps then hold at least the old entries: nothing is deleted before all inserts).
fn apply_domains(
    filter: &mut Filter,
    prepared: &Prepared,
    old: Plan,
    resolved: &[prepare::Resolved],
) -> Plan {
    let new = prepared.plan(resolved);
    match sync::apply(filter.ebpf_mut(), &old, &new) {
        Ok(ch) => {
            log::info!("domains: applied {} writes and {} deletions", ch.written, ch.deleted);
            new
        }
        Err(e) => {
            log::error!("domains: cannot apply the new addresses: {e:#}");
            old
        }
    }
}

/// Fails when a list has nothing to load; warns about refused entries.
fn check_usable(prepared: &Prepared) -> Result<()> {
    if let Some(r) = prepared.empty_lists().next() {
        let l = &r.list;
        let first = l
            .skipped
            .first()
            .or(r.guard_notes.first())
            .map(|n| format!(" (first at line {}: {})", n.line, n.reason))
            .unwrap_or_default();
        bail!(
            "list {} has no usable entry: {} lines skipped, {} entries refused or guarded{first}",
            l.path.display(),
            l.skipped.len(),
            r.refused + r.guarded
        );
    }
    for r in prepared.lists.iter().filter(|r| r.refused > 0) {
        log::warn!(
            "{}: {} entries refused as too broad (not loaded)",
            r.list.path.display(),
            r.refused
        );
    }
    Ok(())
}
