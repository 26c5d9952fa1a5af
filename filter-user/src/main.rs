//! The `takedown` command: a thin face over the takedown library.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Cut the machines behind this gateway off from takedown addresses, with XDP.
#[derive(Parser)]
#[command(name = "takedown", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load the filter on interfaces, fill it from list files, show counters until stopped.
    Run(cli::run::RunArgs),
    /// Parse, guard and plan list files without touching the kernel (no root needed).
    Check(cli::check::CheckArgs),
    /// Stop the daemon; the pinned filter keeps enforcing.
    Stop(cli::lifecycle::StopArgs),
    /// Remove the filter: stop the daemon, detach from every interface, delete the pins.
    Detach(cli::lifecycle::DetachArgs),
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp(None)
        .format_target(false)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => cli::run::run(args).map(|()| ExitCode::SUCCESS),
        Command::Check(args) => cli::check::run(args),
        Command::Stop(args) => cli::lifecycle::stop(args).map(|()| ExitCode::SUCCESS),
        Command::Detach(args) => cli::lifecycle::detach(args).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("takedown: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
