//! The `takedown` command: a thin face over the takedown library.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Cut the machines behind this gateway off from takedown addresses, with XDP.
#[derive(Parser)]
#[command(name = "takedown", version)]
struct Cli {
    /// How log lines on stderr are written.
    #[arg(long, value_enum, global = true, default_value_t)]
    log_format: cli::logging::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load the filter on interfaces, fill it from list files, show counters until stopped.
    #[command(override_usage = "takedown run --iface IF... --list FILE... [OPTIONS]\n       \
                                takedown run [--config FILE] [OPTIONS]")]
    Run(Box<cli::run::RunArgs>),
    /// Parse, guard and plan list files without touching the kernel (no root needed).
    Check(cli::check::CheckArgs),
    /// Stop the daemon; the pinned filter keeps enforcing.
    Stop(cli::lifecycle::StopArgs),
    /// Remove the filter: stop the daemon, detach from every interface, delete the pins.
    Detach(cli::lifecycle::DetachArgs),
    /// Add an address or network to the manual list (kept across refreshes and restarts).
    Add(cli::entries::AddArgs),
    /// Remove an address or network from the manual list.
    Remove(cli::entries::RemoveArgs),
    /// Tell whether an address is blocked, by which entries and lists, or allowed.
    Lookup(cli::inspect::LookupArgs),
    /// List the filter's entries (optionally one list's) with their lists.
    List(cli::inspect::ListArgs),
    /// Show the daemon, interfaces, program, entries per map and list, and the last refreshes.
    Status(cli::status::StatusArgs),
    /// Show counter totals and rates.
    Stats(cli::inspect::StatsArgs),
    /// Ask the daemon to refresh one list or all.
    Refresh(cli::refresh::RefreshArgs),
    /// The inside hosts that contacted takedown infrastructure, most recent first.
    Hosts(cli::observe::HostsArgs),
    /// The most-hit entries with their lists and rates.
    Top(cli::observe::TopArgs),
    /// A live view: rates, top entries, newest infected hosts, list refreshes (q quits).
    Watch(cli::watch::WatchArgs),
    /// Which inside hosts already contacted these addresses (from the connection journal).
    Exposed(cli::exposed::ExposedArgs),
    /// The connection journal: `purge` deletes it.
    Journal(cli::exposed::JournalArgs),
    /// Write the man pages and shell completions (for packaging).
    #[command(hide = true)]
    Generate(cli::generate::GenerateArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::logging::init(cli.log_format);
    let result = match cli.command {
        Command::Run(args) => cli::run::run(*args).map(|()| ExitCode::SUCCESS),
        Command::Check(args) => cli::check::run(args),
        Command::Stop(args) => cli::lifecycle::stop(args).map(|()| ExitCode::SUCCESS),
        Command::Detach(args) => cli::lifecycle::detach(args).map(|()| ExitCode::SUCCESS),
        Command::Add(args) => cli::entries::add(args).map(|()| ExitCode::SUCCESS),
        Command::Remove(args) => cli::entries::remove(args).map(|()| ExitCode::SUCCESS),
        Command::Lookup(args) => cli::inspect::lookup(args).map(|()| ExitCode::SUCCESS),
        Command::List(args) => cli::inspect::list(args).map(|()| ExitCode::SUCCESS),
        Command::Status(args) => cli::status::run(args).map(|()| ExitCode::SUCCESS),
        Command::Stats(args) => cli::inspect::stats(args).map(|()| ExitCode::SUCCESS),
        Command::Refresh(args) => cli::refresh::run(args),
        Command::Hosts(args) => cli::observe::hosts(args).map(|()| ExitCode::SUCCESS),
        Command::Top(args) => cli::observe::top(args).map(|()| ExitCode::SUCCESS),
        Command::Watch(args) => cli::watch::run(args).map(|()| ExitCode::SUCCESS),
        Command::Exposed(args) => cli::exposed::exposed(args).map(|()| ExitCode::SUCCESS),
        Command::Journal(args) => cli::exposed::journal(args).map(|()| ExitCode::SUCCESS),
        Command::Generate(args) => {
            cli::generate::run(args, <Cli as clap::CommandFactory>::command())
                .map(|()| ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("takedown: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
