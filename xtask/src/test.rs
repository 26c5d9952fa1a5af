//! `cargo xtask test`: the whole suite, as CI runs it; `cargo xtask fuzz`: the long fuzzing run.
//!
//! Formatting and clippy first (cheap, and CI must be clean; the eBPF crate is linted for its
//! own target), then the debug `takedown` binary
//! that the CLI and end-to-end tests run, then every test of the workspace. Kernel tests need
//! root; run elsewhere they skip with a loud message. Ends with one line of totals.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
};

use anyhow::{Context, Result, bail};

use crate::{
    build::root,
    setup::{self, run_ok},
};

pub fn run(extra: &[String]) -> Result<()> {
    setup::ensure()?;
    if !td_netns::is_root() {
        eprintln!(
            "\n!!!!!!!! not root: every kernel test will be SKIPPED; CI runs them as root !!!!!!!!\n"
        );
    }
    if td_netns::is_root() {
        for gone in td_netns::clean_stale() {
            println!("removed what a killed test run left: {gone}");
        }
    }
    let cargo = || {
        let mut c = Command::new("cargo");
        c.current_dir(root());
        c
    };
    run_ok(cargo().args(["fmt", "--all", "--check"]))?;
    run_ok(cargo().args([
        "clippy",
        "--workspace",
        "--exclude",
        "filter-ebpf",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The eBPF crate, for its own target (as aya's xtask lints it).
    run_ok(
        setup::ebpf_cargo(&setup::ebpf_toolchain()?)
            .current_dir(root())
            .args(["clippy", "-p", "filter-ebpf", "--release", "--target", "bpfel-unknown-none"])
            .args(["-Z", "build-std=core", "--target-dir", "target/ebpf", "--", "-D", "warnings"]),
    )?;
    run_ok(cargo().args(["build", "-p", "filter-user"]))?;
    let bin = root().join("target/debug/takedown");
    let mut child = cargo()
        .args(["test", "--workspace", "--exclude", "filter-ebpf"])
        .args(extra)
        .env("TAKEDOWN_BIN", &bin)
        .env("TAKEDOWN_TEST_VENV", setup::venv())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run cargo test")?;
    // Skips are announced on stderr (see integration_tests::require_root): counted apart.
    let stderr = child.stderr.take().unwrap();
    let skips = std::thread::spawn(move || {
        let mut skipped = 0u64;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
            skipped += u64::from(line.contains("!!!!!!!! SKIPPED"));
        }
        skipped
    });
    let (mut passed, mut failed) = (0u64, 0u64);
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            passed += count(rest, " passed");
            failed += count(rest, " failed");
        }
    }
    let status = child.wait()?;
    let skipped = skips.join().unwrap_or(0);
    // A skipped test returns early and libtest counts it as passed.
    println!(
        "\ntests: {} passed, {failed} failed, {skipped} skipped",
        passed.saturating_sub(skipped)
    );
    if !status.success() {
        bail!("cargo test failed ({status})");
    }
    Ok(())
}

/// The long fuzzing run: every fuzz target of `filter-user/tests/fuzz.rs` with `cases` inputs,
/// in a release build.
pub fn fuzz(cases: u64) -> Result<()> {
    let mut c = Command::new("cargo");
    c.current_dir(root()).env("TAKEDOWN_FUZZ_CASES", cases.to_string());
    c.args(["test", "--release", "-p", "filter-user", "--test", "fuzz", "--", "--nocapture"]);
    run_ok(&mut c)?;
    println!("fuzz: {cases} inputs per target, no panic, no hang, bounded output");
    Ok(())
}

/// The number before `label` in a libtest summary such as "ok. 12 passed; 0 failed; ...".
fn count(summary: &str, label: &str) -> u64 {
    summary
        .split(';')
        .find_map(|part| {
            part.trim()
                .trim_start_matches("ok.")
                .trim_start_matches("FAILED.")
                .trim()
                .strip_suffix(label.trim())
                .map(str::trim)
        })
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}
