//! `cargo xtask build` and `bench`: cargo invocations for the release binary and the benchmark.

use std::{path::PathBuf, process::Command};

use anyhow::Result;

use crate::setup::{self, progress, run_ok};

#[path = "../../filter-user/ebpf_build.rs"]
mod ebpf_build;

/// The workspace root (xtask's parent directory), as `cargo run` reports it at run time.
pub fn root() -> PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest.parent().unwrap().to_path_buf()
}

/// Builds the release `takedown` binary (its build script builds the eBPF object) and returns its path.
pub fn release() -> Result<PathBuf> {
    progress(Command::new("cargo").current_dir(root()).args([
        "build",
        "--release",
        "-p",
        "filter-user",
    ]))?;
    let bin = root().join("target/release/takedown");
    eprintln!("built {}", bin.display());
    Ok(bin)
}

/// What `cargo xtask bench` was asked to measure.
pub struct Bench {
    pub peers: bool,
    pub per_packet: bool,
    pub journal: bool,
    pub floods: bool,
    pub only: Option<String>,
}

/// `cargo xtask bench [--peers]`: the benchmark binary of the integration-test crate, in release
/// mode, running the release `takedown` binary.
pub fn bench(&Bench { peers, per_packet, journal, floods, ref only }: &Bench) -> Result<()> {
    setup::ensure()?;
    let bin = release()?;
    let mut cmd = Command::new("cargo");
    cmd.current_dir(root())
        .args(["run", "--release", "-p", "integration-tests", "--bin", "takedown-bench", "--"])
        .env("TAKEDOWN_BIN", bin);
    if !(per_packet || floods) || journal {
        // The journal's section compares the program with the journal off to a build without
        // its code.
        let baseline = ebpf_build::build(&root(), &["no-journal"]);
        cmd.env("TAKEDOWN_BENCH_NO_JOURNAL_OBJ", baseline);
    }
    if peers {
        cmd.arg("--peers");
    }
    if per_packet {
        cmd.arg("--per-packet");
    }
    if journal {
        cmd.arg("--journal");
    }
    if floods {
        cmd.arg("--floods");
    }
    if let Some(only) = only {
        cmd.args(["--only", only]);
    }
    run_ok(&mut cmd)
}
