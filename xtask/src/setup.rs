//! `cargo xtask setup`: installs, idempotently, what a fresh machine lacks for building and
//! testing takedown. A second run changes nothing and says so.
//!
//! - rust-src for the toolchain that builds the eBPF object (nightly if installed, else stable,
//!   which then builds with RUSTC_BOOTSTRAP=1);
//! - the cargo tools of [`tools`]: bpf-linker and cargo-deb;
//! - the Debian packages the tests, demo, package checks and benchmark use (crowdsec for its
//!   Local API, its own service disabled);
//! - a Python virtual environment with medallion, the OASIS TAXII 2.1 reference server.
//!
//! Progress goes to stderr, and so does the output of the commands run: a command's stdout
//! holds its result alone (`cargo xtask package` ends with the package's path).

use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::tools;

/// Debian packages the demo, tests and benchmark run: ip, ping, sysctl, trafgen, setpriv, tmux,
/// bpftool (tests ask the kernel's verdict of a running filter with `bpftool prog run`),
/// systemd-analyze (the unit's security rating), man and lintian (the package test), promtool
/// from prometheus and the reference OpenMetrics parser (the metrics test), minisign (signed lists are signed in tests as a CERT
/// signs them), the peers `bench --peers` measures takedown
/// against (xdp-filter, ipset, nft), what `test --kernels` boots stock kernels with (QEMU,
/// a static busybox, cpio), CrowdSec, whose own Local API the CrowdSec tests run, and
/// python3-venv for the virtual environment of [`python_tools`], curl (tests ask a server
/// started in a namespace whether it answers yet), and GNU time (the benchmark's peak RSS of a
/// command, its own).
const PACKAGES: [&str; 23] = [
    "iproute2",
    "iputils-ping",
    "procps",
    "netsniff-ng",
    "util-linux",
    "tmux",
    "bpftool",
    "systemd",
    "man-db",
    "lintian",
    "prometheus",
    "python3-prometheus-client",
    "minisign",
    "xdp-tools",
    "ipset",
    "nftables",
    "qemu-system-x86",
    "busybox-static",
    "cpio",
    "crowdsec",
    "python3-venv",
    "curl",
    "time",
];

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
            eprintln!("setup: adding {component} to the {toolchain} toolchain");
            progress(Command::new("rustup").args([
                "component",
                "add",
                component,
                "--toolchain",
                &toolchain,
            ]))?;
            changed.push(format!("{component} ({toolchain})"));
        }
    }
    changed.extend(tools::ensure(&toolchain)?);
    let missing: Vec<&str> = PACKAGES.iter().copied().filter(|p| !deb_installed(p)).collect();
    if !missing.is_empty() {
        install_debs(&missing)?;
        if missing.contains(&"crowdsec") {
            // Installed for its Local API, which the tests start privately: the package's own
            // service (an agent reading this machine's logs) is not wanted.
            let _ = Command::new("systemctl").args(["disable", "--now", "crowdsec"]).output();
        }
        changed.extend(missing.iter().map(|p| p.to_string()));
    }
    changed.extend(python_tools()?);
    Ok(changed)
}

/// Where the Python tools the tests run are installed (the tests find them there too), unless
/// `TAKEDOWN_TEST_VENV` names another place.
pub const VENV: &str = "/opt/takedown-tests/venv";

/// The virtual environment in use: `TAKEDOWN_TEST_VENV`, else [`VENV`].
pub fn venv() -> std::path::PathBuf {
    std::env::var_os("TAKEDOWN_TEST_VENV").map_or_else(|| VENV.into(), Into::into)
}

/// PyPI packages the tests run, pinned: medallion, the OASIS TAXII 2.1 reference server.
const PYTHON_TOOLS: [(&str, &str); 1] = [("medallion", "3.0.0")];

/// Installs [`PYTHON_TOOLS`] into [`VENV`] unless each is there at its version.
fn python_tools() -> Result<Vec<String>> {
    let venv = venv();
    let pip = venv.join("bin/pip");
    let has = |name: &str, version: &str| {
        let out = Command::new(&pip).args(["show", name]).output();
        out.is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout).contains(&format!("Version: {version}"))
        })
    };
    let missing: Vec<String> =
        PYTHON_TOOLS.iter().filter(|(n, v)| !has(n, v)).map(|(n, v)| format!("{n}=={v}")).collect();
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    if !pip.exists() {
        eprintln!("setup: making the Python environment {}", venv.display());
        progress(Command::new("/usr/bin/python3").args(["-m", "venv"]).arg(&venv))?;
    }
    eprintln!("setup: installing {} into {}", missing.join(" "), venv.display());
    progress(Command::new(&pip).args(["install", "-q"]).args(&missing))?;
    Ok(missing)
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
    if packages.contains(&"crowdsec") {
        crowdsec_offline()?;
    }
    eprintln!("setup: installing {}", packages.join(" "));
    progress(Command::new("apt-get").args(["update", "-qq"]))?;
    progress(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

/// Lets Debian's crowdsec install on a machine that cannot reach CrowdSec's central API: its
/// install script registers with it unless this file exists (the package's README.Debian).
/// The tests start a private Local API of their own; the package's service is not used.
fn crowdsec_offline() -> Result<()> {
    let file = std::path::Path::new("/etc/crowdsec/online_api_credentials.yaml");
    if !file.exists() {
        std::fs::create_dir_all("/etc/crowdsec")?;
        std::fs::write(file, "# no central API: takedown's tests run a private Local API\n")?;
    }
    Ok(())
}

/// Runs a command of setting up or building, its output sent to stderr; fails when it fails.
pub fn progress(cmd: &mut Command) -> Result<()> {
    run_ok(cmd.stdout(std::io::stderr()))
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
