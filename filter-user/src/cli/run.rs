//! `takedown run`: the daemon. From a configuration file (`--config`, default
//! /etc/takedown/takedown.toml) or, for quick use, from `--iface`/`--list`. Loads (adopting a
//! pinned filter), attaches, then refreshes and re-resolves until SIGTERM/SIGINT; the pinned
//! filter keeps enforcing after it exits (`--ephemeral`: detached at exit).

use std::{path::PathBuf, time::Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use takedown::{
    daemon::{
        self, Daemon, ServeOptions, Settings, Signals,
        config::{self, Config, Dns, Guards, ListConfig},
        ephemeral::Ephemeral,
        journal::JournalConfig,
        state::StateDir,
    },
    maps::{
        Start, counters,
        filter::{Attached, Mode},
        pins::Pins,
        privileges,
    },
};

use takedown::words::entries;

use super::{dns::DnsArgs, places::Places, report, sources::SourceArgs};

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Configuration file (default /etc/takedown/takedown.toml when no --iface/--list is given).
    #[arg(short, long, value_name = "FILE", conflicts_with_all = ["ifaces", "lists"])]
    config: Option<PathBuf>,
    /// Interface to attach to (repeat for several; on a gateway: inside and outside).
    #[arg(short, long = "iface", value_name = "IF", requires = "lists")]
    ifaces: Vec<String>,
    /// Takedown list file (repeat for several).
    #[arg(short, long = "list", value_name = "FILE", requires = "ifaces")]
    lists: Vec<PathBuf>,
    #[command(flatten)]
    sources: SourceArgs,
    #[command(flatten)]
    dns: DnsArgs,
    /// XDP attach mode.
    #[arg(long, value_enum, default_value_t)]
    mode: Mode,
    /// Also filter what leaves the interfaces (a tc egress program): what the gateway itself
    /// sends to listed addresses.
    #[arg(long)]
    egress: bool,
    /// Accept a refresh that loses more than half of a list's entries.
    #[arg(long)]
    accept_shrink: bool,
    /// Monitor only: the lists' entries count and report as if enforced, but packets pass.
    #[arg(long)]
    monitor: bool,
    /// Seconds between counter lines (0: only at exit).
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    interval: u64,
    /// Largest size of any one map (exact IPv4, exact IPv6, IPv4 prefixes, IPv6 prefixes).
    #[arg(long, value_name = "N", default_value_t = 16_777_216)]
    max_entries: u32,
    /// Pin nothing that outlives it: the filter is detached when takedown exits (for trials);
    /// the CLI still reaches it (places of its own, removed at exit).
    #[arg(long)]
    ephemeral: bool,
    /// Serve Prometheus metrics on this address ("" to disable; default 127.0.0.1:9645).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
    /// Allow a metrics address that is not loopback.
    #[arg(long)]
    metrics_allow_remote: bool,
    /// Events (for the infected-host report) each CPU may send a second (0: none).
    #[arg(long, value_name = "N")]
    event_rate: Option<u32>,
    /// Events a CPU may send at once after a quiet time.
    #[arg(long, value_name = "N")]
    event_burst: Option<u32>,
    /// Keep a journal of new connections for this many days (see `takedown exposed`).
    #[arg(long, value_name = "DAYS")]
    journal: Option<u64>,
    /// An inside interface for the journal (repeat; default: the private address is inside).
    #[arg(long = "journal-inside", value_name = "IF", requires = "journal")]
    journal_inside: Vec<String>,
    #[command(flatten)]
    places: Places,
}

/// The configuration: the file, or one built from the quick-use options.
fn configuration(args: &RunArgs) -> Result<Config> {
    if args.ifaces.is_empty() {
        let path = args.config.clone().unwrap_or_else(|| PathBuf::from(config::DEFAULT_CONFIG));
        return Config::load(&path);
    }
    let s = &args.sources;
    let d = &args.dns;
    let config = Config {
        interfaces: args.ifaces.clone(),
        mode: match args.mode {
            Mode::Auto => config::ModeName::Auto,
            Mode::Native => config::ModeName::Native,
            Mode::Skb => config::ModeName::Skb,
        },
        allow: s.allow.clone(),
        guards: Guards {
            force_broad: s.force_broad,
            allow_special: s.allow_special,
            block_own: s.block_own,
            accept_shrink: args.accept_shrink,
        },
        dns: Dns {
            resolvers: d.resolvers.clone(),
            min_ttl: d.dns_min_ttl,
            max_ttl: d.dns_max_ttl,
            concurrency: d.dns_concurrency,
            timeout: d.dns_timeout,
            wait: d.dns_wait,
        },
        lists: args
            .lists
            .iter()
            .map(|p| ListConfig { monitor: args.monitor, ..s.list(p) })
            .collect(),
        ..Default::default()
    };
    let mut names = std::collections::HashSet::new();
    if let Some(dup) = config.lists.iter().find(|l| !names.insert(l.name.clone())) {
        bail!(
            "two lists are named {:?}: give them different file names, or use a configuration file",
            dup.name
        );
    }
    Ok(config)
}

pub fn run(args: RunArgs) -> Result<()> {
    privileges::require_bpf_admin("takedown run")?;
    privileges::require_program_loader("takedown run")?;
    let mut config = configuration(&args)?;
    config.egress |= args.egress;
    if let Some(m) = &args.metrics {
        config.report.metrics = m.clone();
    }
    config.report.metrics_remote |= args.metrics_allow_remote;
    if let Some(r) = args.event_rate {
        config.report.event_rate = r;
    }
    if let Some(b) = args.event_burst {
        config.report.event_burst = b;
    }
    if let Some(days) = args.journal {
        let j = config.journal.take().unwrap_or_default();
        let inside =
            if args.journal_inside.is_empty() { j.inside } else { args.journal_inside.clone() };
        config.journal = Some(JournalConfig { days, inside, ..j });
        config.check()?;
    }
    let metrics =
        takedown::daemon::metrics::address(&config.report.metrics, config.report.metrics_remote)?;
    for iface in &config.interfaces {
        takedown::maps::interface::check(iface)?;
    }
    let pin_dir = config.pin_dir.clone().unwrap_or(args.places.pin_dir.clone());
    let state_dir = config.state_dir.clone().unwrap_or(args.places.state_dir.clone());
    // Ephemeral: places of its own, removed at exit (after the daemon, declared later, ends).
    let ephemeral = args.ephemeral.then(|| Ephemeral::create(&pin_dir, &state_dir));
    let ephemeral = match ephemeral.transpose() {
        Ok(e) => e,
        Err(e) => {
            log::warn!("the CLI cannot reach this ephemeral run: {e:#}");
            None
        }
    };
    let (pins, state, shown) = match (&ephemeral, args.ephemeral) {
        (Some(e), _) => (None, Some(e.state.clone()), Some(e.pins.clone())),
        (None, true) => (None, None, None),
        (None, false) => (Some(Pins::new(pin_dir)), Some(StateDir::new(state_dir)), None),
    };
    let _lock = state.as_ref().map(|s| s.lock_daemon()).transpose()?;
    let settings = Settings { config, pins, shown, state, max_entries: args.max_entries };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    tokio::task::LocalSet::new()
        .block_on(&runtime, start_and_serve(settings, args.interval, metrics))
}

async fn start_and_serve(
    settings: Settings,
    interval: u64,
    metrics: Option<std::net::SocketAddr>,
) -> Result<()> {
    // Watched before anything else: a stop asked for during the load is answered once serving.
    let signals = Signals::watch()?;
    let mut d = Daemon::new(settings).await?;
    report_lists(&d);
    let resolver = d.resolve_first().await?;
    if let Some(r) = &resolver {
        say!("domains: {}", r.summary());
    }
    let plan = d.plan();
    report::print_plan(&plan);
    let started = Instant::now();
    let (start, ch) = d.load(plan)?;
    let secs = started.elapsed().as_secs_f64();
    match start {
        Start::Adopted { held } => say!(
            "adopted the pinned filter ({}): {} written, {} deleted in {secs:.3} s",
            entries(held),
            ch.written,
            ch.deleted
        ),
        Start::Migrated { why } => say!(
            "{why}: moved to new maps ({}) in {secs:.3} s; the program is replaced through the pinned links",
            entries(ch.written)
        ),
        Start::Fresh => say!("loaded {} into the kernel in {secs:.3} s", entries(ch.written)),
    }
    // Filled before attaching: the filter never runs with half a list.
    for (iface, mode) in d.attach()? {
        let egress = if d.settings.config.egress { " and tc egress" } else { "" };
        match mode {
            Attached::Adopted => say!(
                "attached to {iface}: its pinned attachment adopted, the program replaced in place{egress}"
            ),
            mode => say!("attached to {iface} in {mode} mode{egress}"),
        }
    }
    let metrics = bind_metrics(metrics, &mut d).await;
    d.write_status();
    let pinned = d.settings.pins.as_ref().map(|p| p.dir().display().to_string());
    match &pinned {
        Some(dir) => say!(
            "filtering (pinned at {dir}); SIGTERM or `takedown stop` stops takedown, the filter stays"
        ),
        None => say!("filtering; Ctrl-C or SIGTERM detaches and exits"),
    }
    daemon::serve(
        &mut d,
        resolver,
        ServeOptions { signals, interval, say: |l| say!("{l}"), metrics },
    )
    .await?;
    finish(&mut d, pinned.is_some())
}

/// Prints each list's report and the allowlist summary.
fn report_lists(d: &Daemon) {
    for r in d.reports() {
        report::print_list(r, false);
        if r.refused > 0 {
            let path = r.list.path.display();
            log::warn!("{path}: {} refused as too broad (not loaded)", entries(r.refused));
        }
    }
    say!(
        "allowlist: this machine's {} addresses and {} allowlist files",
        d.pipeline().own.len(),
        d.settings.config.allow.len()
    );
}

/// Binds the metrics endpoint; its URL, or why it could not be bound, goes into the status.
async fn bind_metrics(
    addr: Option<std::net::SocketAddr>,
    d: &mut Daemon,
) -> Option<tokio::net::TcpListener> {
    let addr = addr?;
    match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => {
            let url = format!("http://{addr}/metrics");
            say!("metrics on {url}");
            d.metrics = Some(Ok(url));
            Some(l)
        }
        Err(e) => {
            let why = format!(
                "cannot serve metrics on {addr}: {e}; another process may be answering there in takedown's name"
            );
            log::error!("{why}");
            d.metrics = Some(Err(why));
            None
        }
    }
}

/// The final counters, then unload (ephemeral: detach).
fn finish(d: &mut Daemon, pinned: bool) -> Result<()> {
    if let Some(f) = d.filter() {
        say!("final: {}", counters::read(f.maps())?);
    }
    let ifaces = d.settings.config.interfaces.join(", ");
    // Only links still pinned outlive the daemon (a pin directory removed or unmounted, or
    // given up to another daemon, holds none).
    let linked = d.settings.pins.as_ref().map(|p| p.linked_interfaces()).unwrap_or_default();
    let ends = d.ends_with_daemon();
    d.unload();
    if let (true, Some(why)) = (pinned, ends) {
        say!("takedown stopped; {why}: detached from {ifaces}");
        return Ok(());
    }
    match (pinned, linked.is_empty()) {
        (true, false) => say!(
            "takedown stopped; the filter keeps enforcing on {} (`takedown detach` removes it)",
            linked.join(", ")
        ),
        (true, true) => {
            say!("takedown stopped; no link of it is pinned any more: detached from {ifaces}")
        }
        (false, _) => say!("detached from {ifaces}"),
    }
    Ok(())
}
