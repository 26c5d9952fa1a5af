//! `cargo xtask setup`: installs, idempotently, what a fresh machine lacks for building and
//! testing takedown. A second run changes nothing and says so.
//!
//! - rust-src for the toolchain that builds the eBPF object (nightly if installed, else stable,
//!   which then builds with RUSTC_BOOTSTRAP=1);
//! - bpf-linker 0.13, built against that toolchain's own libLLVM 22, which is copied (not
//!   linked: `rustup update` renames it) into a prefix under $CARGO_HOME;
//! - the Debian packages the tests and demo use.

use std::{
    env,
    path::PathBuf,
    process::{Command, Stdio},
};

use anyhow::{Context, Result, bail};

/// Debian packages the demo, tests and benchmark run: ip, ping, sysctl, trafgen, setpriv, tmux,
/// bpftool (tests ask the kernel's verdict of a running filter with `bpftool prog run`),
/// systemd-analyze (the unit's security rating), man (the package test), minisign (signed
/// lists are signed in tests as a CERT signs them), the peers `bench --peers` measures takedown
/// against (xdp-filter, ipset, nft), and what `test --kernels` boots stock kernels with (QEMU,
/// a static busybox, cpio).
const PACKAGES: [&str; 16] = [
    "iproute2",
    "iputils-ping",
    "procps",
    "netsniff-ng",
    "util-linux",
    "tmux",
    "bpftool",
    "systemd",
    "man-db",
    "minisign",
    "xdp-tools",
    "ipset",
    "nftables",
    "qemu-system-x86",
    "busybox-static",
    "cpio",
];
const BPF_LINKER_VERSION: &str = "0.13.0";

/// `cargo xtask setup`.
pub fn run() -> Result<()> {
    let changed = ensure()?;
    if changed.is_empty() {
        println!("setup: nothing to do, everything is installed");
    } else {
        println!("setup: installed {}", changed.join(", "));
    }
    Ok(())
}

/// Installs what is missing; returns what it installed.
pub fn ensure() -> Result<Vec<String>> {
    let mut changed = Vec::new();
    let toolchain = ebpf_toolchain()?;
    // rust-src builds the eBPF object; clippy lints it.
    for component in ["rust-src", "clippy"] {
        if !has_component(&toolchain, component)? {
            println!("setup: adding {component} to the {toolchain} toolchain");
            run_ok(Command::new("rustup").args([
                "component",
                "add",
                component,
                "--toolchain",
                &toolchain,
            ]))?;
            changed.push(format!("{component} ({toolchain})"));
        }
    }
    if !bpf_linker_ok() {
        install_bpf_linker(&toolchain)?;
        changed.push(format!("bpf-linker {BPF_LINKER_VERSION}"));
    }
    let missing: Vec<&str> = PACKAGES.iter().copied().filter(|p| !deb_installed(p)).collect();
    if !missing.is_empty() {
        install_debs(&missing)?;
        changed.extend(missing.iter().map(|p| p.to_string()));
    }
    Ok(changed)
}

/// nightly when rustup has it, else stable.
pub fn ebpf_toolchain() -> Result<String> {
    let out = Command::new("rustup")
        .args(["toolchain", "list"])
        .output()
        .context("rustup is needed to build the eBPF program")?;
    let list = String::from_utf8_lossy(&out.stdout);
    Ok(if list.lines().any(|l| l.starts_with("nightly")) { "nightly" } else { "stable" }.into())
}

fn has_component(toolchain: &str, component: &str) -> Result<bool> {
    let out = Command::new("rustup")
        .args(["component", "list", "--installed", "--toolchain", toolchain])
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout).lines().any(|l| l.starts_with(component)))
}

/// `cargo +TOOLCHAIN` for the eBPF crate, with the environment of an outer cargo removed (and
/// RUSTC_BOOTSTRAP where the toolchain is stable).
pub fn ebpf_cargo(toolchain: &str) -> Command {
    let mut c = Command::new("cargo");
    c.arg(format!("+{toolchain}"));
    for var in ["RUSTC", "RUSTC_WRAPPER", "RUSTUP_TOOLCHAIN", "RUSTFLAGS", "CARGO_TARGET_DIR"] {
        c.env_remove(var);
    }
    if toolchain == "stable" {
        c.env("RUSTC_BOOTSTRAP", "1");
    }
    c
}

fn cargo_home() -> PathBuf {
    env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env::var_os("HOME").unwrap_or_default()).join(".cargo"))
}

fn bpf_linker_ok() -> bool {
    Command::new(cargo_home().join("bin/bpf-linker"))
        .arg("--version")
        .output()
        .map(|o| {
            o.status.success() && String::from_utf8_lossy(&o.stdout).contains(BPF_LINKER_VERSION)
        })
        .unwrap_or(false)
}

fn install_bpf_linker(toolchain: &str) -> Result<()> {
    let sysroot = String::from_utf8(
        Command::new("rustc")
            .args([&format!("+{toolchain}"), "--print", "sysroot"])
            .env_remove("RUSTUP_TOOLCHAIN")
            .output()?
            .stdout,
    )?;
    let libdir = PathBuf::from(sysroot.trim()).join("lib");
    let llvm = std::fs::read_dir(&libdir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("libLLVM.so.22"))
        })
        .with_context(|| {
            format!("no libLLVM.so.22* in {}: the toolchain's LLVM is not 22", libdir.display())
        })?;
    let prefix = cargo_home().join("takedown-llvm");
    let lib = prefix.join("lib");
    std::fs::create_dir_all(&lib)?;
    let name = llvm.file_name().unwrap();
    std::fs::copy(&llvm, lib.join(name))?;
    std::fs::copy(&llvm, lib.join("libLLVM.so"))?;
    println!(
        "setup: building bpf-linker {BPF_LINKER_VERSION} against {} (about a minute)",
        llvm.display()
    );
    run_ok(
        Command::new("cargo")
            .args(["install", "bpf-linker", "--version", BPF_LINKER_VERSION, "--locked", "--force"])
            .args(["--no-default-features", "--features", "llvm-22"])
            .env("LLVM_PREFIX", &prefix)
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("RUSTUP_TOOLCHAIN"),
    )?;
    if !bpf_linker_ok() {
        bail!("bpf-linker was built but does not run; see the output above");
    }
    Ok(())
}

fn deb_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f", "${Status}", package])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

fn install_debs(packages: &[&str]) -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!(
            "missing Debian packages {}: install them as root (apt-get install {})",
            packages.join(", "),
            packages.join(" ")
        );
    }
    println!("setup: installing {}", packages.join(" "));
    run_ok(Command::new("apt-get").args(["update", "-qq"]))?;
    run_ok(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

/// Runs a command with inherited output; fails when it fails.
pub fn run_ok(cmd: &mut Command) -> Result<()> {
    let status =
        cmd.stdin(Stdio::null()).status().with_context(|| format!("cannot run {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed ({status})");
    }
    Ok(())
}
