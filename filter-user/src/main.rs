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
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("takedown: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
