//! `cargo xtask package`: the Debian package. The release binary writes its man pages and
//! completions (`takedown generate`), then cargo-deb (installed on first use, pinned) packs
//! them with the binary, the systemd unit, the example configuration (a conffile) and the
//! maintainer scripts of `dist/debian/`.

use std::{path::PathBuf, process::Command};

use anyhow::{Context, Result};

use crate::{
    build::{self, root},
    setup::{self, run_ok},
};

const CARGO_DEB_VERSION: &str = "3.8.0";

pub fn run() -> Result<PathBuf> {
    setup::ensure()?;
    let bin = build::release()?;
    let out = root().join("target/release/generated");
    let _ = std::fs::remove_dir_all(&out);
    run_ok(Command::new(&bin).arg("generate").arg("--out").arg(&out))?;
    ensure_cargo_deb()?;
    let deb = root().join("target/debian");
    let _ = std::fs::remove_dir_all(&deb);
    run_ok(Command::new("cargo").current_dir(root()).args([
        "deb",
        "-p",
        "filter-user",
        "--no-build",
    ]))?;
    let file = std::fs::read_dir(&deb)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .context("cargo deb wrote no .deb")?;
    println!("package: {}", file.display());
    Ok(file)
}

/// Installs cargo-deb when it is missing (a minute or two, once).
fn ensure_cargo_deb() -> Result<()> {
    let has = Command::new("cargo").args(["deb", "--version"]).output();
    if has.is_ok_and(|o| o.status.success()) {
        return Ok(());
    }
    println!("package: installing cargo-deb {CARGO_DEB_VERSION}");
    run_ok(Command::new("cargo").args([
        "install",
        "cargo-deb",
        "--locked",
        "--version",
        CARGO_DEB_VERSION,
    ]))
}
