//! `cargo xtask test`: the whole suite, as CI runs it.
//!
//! Formatting and clippy first (cheap, and CI must be clean), then the debug `takedown` binary
//! that the CLI and end-to-end tests run, then every test of the workspace. Kernel tests need
//! root; run elsewhere they skip with a loud message.

use std::process::Command;

use anyhow::Result;

use crate::{build::root, setup::{self, run_ok}};

pub fn run(extra: &[String]) -> Result<()> {
    setup::ensure()?;
    let cargo = || {
        let mut c = Command::new("cargo");
        c.current_dir(root());
        c
    };
    run_ok(cargo().args(["fmt", "--all", "--check"]))?;
    run_ok(cargo().args([
        "clippy", "--workspace", "--exclude", "filter-ebpf", "--all-targets", "--", "-D", "warnings",
    ]))?;
    run_ok(cargo().args(["build", "-p", "filter-user"]))?;
    let bin = root().join("target/debug/takedown");
    run_ok(cargo().args(["test", "--workspace", "--exclude", "filter-ebpf"]).args(extra).env("TAKEDOWN_BIN", &bin))
}
