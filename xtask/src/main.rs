//! `cargo xtask`: the commands a newcomer runs (setup, build, demo, test, fuzz, package, bench).

mod build;
mod demo;
mod kernels;
mod package;
mod setup;
mod test;
mod tools;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Developer commands for takedown")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install what building and testing need (idempotent): rust-src, bpf-linker, cargo-deb,
    /// Debian packages.
    Setup,
    /// Build the eBPF object and the `takedown` binary (release) that embeds it.
    Build,
    /// Show takedown dropping real traffic between two network namespaces.
    Demo,
    /// Run formatting and lint checks, the whole test suite (kernel tests need root), and the
    /// end-to-end check on Debian 12's stock kernels in QEMU.
    Test {
        /// Only the end-to-end check on the stock kernels (QEMU).
        #[arg(long)]
        kernels: bool,
        /// Extra arguments for `cargo test` (e.g. a test name filter).
        #[arg(trailing_var_arg = true)]
        args: Vec<String>,
    },
    /// Build the Debian package (target/debian/takedown_*.deb) with cargo-deb.
    Package,
    /// Fuzz every parser of outside input for a long run (a short one is part of `test`).
    Fuzz {
        /// Inputs per target.
        #[arg(long, default_value_t = 200_000)]
        cases: u64,
    },
    /// Measure per-packet cost (BPF_PROG_TEST_RUN), load and refresh times on real lists.
    Bench {
        /// Measure xdp-filter, ipset and nft in the same run, and print ratios to them.
        #[arg(long)]
        peers: bool,
        /// Only the per-packet tables (one CPU and every CPU at once): seconds, not minutes.
        #[arg(long)]
        per_packet: bool,
        /// Only the connection journal's section (per packet, into disk, `exposed`; with
        /// `--per-packet`, its per-packet tables alone).
        #[arg(long)]
        journal: bool,
        /// Only the flood tables (one listed source, 64k sources, misses next to listed ones).
        #[arg(long)]
        floods: bool,
        /// Only the list mixes whose name holds TEXT (e.g. `IPv6`), to try a change quickly.
        #[arg(long, value_name = "TEXT")]
        only: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Setup => setup::run(),
        Cmd::Build => setup::ensure().and_then(|_| build::release()).map(|_| ()),
        Cmd::Demo => demo::run(),
        Cmd::Test { kernels: true, .. } => setup::ensure().and_then(|_| kernels::run()),
        Cmd::Test { args, .. } => test::run(&args).and_then(|_| kernels::run()),
        Cmd::Fuzz { cases } => test::fuzz(cases),
        Cmd::Package => package::run().map(|_| ()),
        Cmd::Bench { peers, per_packet, journal, floods, only } => {
            build::bench(&build::Bench { peers, per_packet, journal, floods, only })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
