//! The cargo tools `cargo xtask setup` installs, each pinned and checked by running it:
//!
//! - bpf-linker 0.13, built against the eBPF toolchain's own libLLVM 22, which is copied (not
//!   linked: `rustup update` renames it) into a prefix under $CARGO_HOME, and installed there;
//! - cargo-deb, for `cargo xtask package`, installed under `install_root()`
//!   ($CARGO_INSTALL_ROOT, else $CARGO_HOME) and run from there by path, so a test can give it
//!   an empty root and see the first install as a fresh machine does. Its build is kept in
//!   `$CARGO_HOME/takedown-tools-build`, so such a reinstall takes seconds.

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

use crate::setup::progress;

const BPF_LINKER_VERSION: &str = "0.13.0";
const CARGO_DEB_VERSION: &str = "3.8.0";

/// Installs the missing tools; returns what it installed.
pub fn ensure(toolchain: &str) -> Result<Vec<String>> {
    let mut changed = Vec::new();
    if !runs(&cargo_home().join("bin/bpf-linker"), BPF_LINKER_VERSION) {
        install_bpf_linker(toolchain)?;
        changed.push(format!("bpf-linker {BPF_LINKER_VERSION}"));
    }
    if !runs(&cargo_deb(), CARGO_DEB_VERSION) {
        install_cargo_deb()?;
        changed.push(format!("cargo-deb {CARGO_DEB_VERSION}"));
    }
    Ok(changed)
}

/// The cargo-deb that [`ensure`] installs.
pub fn cargo_deb() -> PathBuf {
    install_root().join("bin/cargo-deb")
}

fn cargo_home() -> PathBuf {
    env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env::var_os("HOME").unwrap_or_default()).join(".cargo"))
}

fn install_root() -> PathBuf {
    env::var_os("CARGO_INSTALL_ROOT").map(PathBuf::from).unwrap_or_else(cargo_home)
}

/// Whether `tool --version` runs and names `version`.
fn runs(tool: &Path, version: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains(version))
}

/// `cargo install NAME --version VERSION --locked --root ROOT`, its output on stderr.
fn cargo_install(name: &str, version: &str, root: &Path) -> Command {
    let mut c = Command::new("cargo");
    c.args(["install", name, "--version", version, "--locked", "--force", "--root"])
        .arg(root)
        .env_remove("RUSTUP_TOOLCHAIN");
    c
}

fn install_cargo_deb() -> Result<()> {
    eprintln!("setup: installing cargo-deb {CARGO_DEB_VERSION} (a minute or two, once)");
    progress(
        cargo_install("cargo-deb", CARGO_DEB_VERSION, &install_root())
            .env("CARGO_TARGET_DIR", cargo_home().join("takedown-tools-build")),
    )?;
    if !runs(&cargo_deb(), CARGO_DEB_VERSION) {
        bail!("cargo-deb was installed but {} does not run", cargo_deb().display());
    }
    Ok(())
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
    eprintln!(
        "setup: building bpf-linker {BPF_LINKER_VERSION} against {} (about a minute)",
        llvm.display()
    );
    progress(
        cargo_install("bpf-linker", BPF_LINKER_VERSION, &cargo_home())
            .args(["--no-default-features", "--features", "llvm-22"])
            .env("LLVM_PREFIX", &prefix)
            .env_remove("CARGO_TARGET_DIR"),
    )?;
    if !runs(&cargo_home().join("bin/bpf-linker"), BPF_LINKER_VERSION) {
        bail!("bpf-linker was built but does not run; see the output above");
    }
    Ok(())
}
