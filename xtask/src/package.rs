//! `cargo xtask package`: the Debian package. The release binary writes its man pages and
//! completions (`takedown generate`), then cargo-deb (installed by `setup`, pinned) packs
//! them with the binary, the systemd unit, the example configuration (a conffile) and the
//! maintainer scripts of `dist/debian/`. Its stdout is the package's path alone, on one line:
//! progress goes to stderr.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result};

use crate::{
    build::{self, root},
    setup::{self, progress},
    tools,
};

pub fn run() -> Result<PathBuf> {
    setup::ensure()?;
    let bin = build::release()?;
    let out = root().join("target/release/generated");
    let _ = std::fs::remove_dir_all(&out);
    progress(Command::new(&bin).arg("generate").arg("--out").arg(&out))?;
    // Man pages are shipped compressed (Debian policy 12.1); -n: no name or time inside, so
    // that a rebuild gives the same bytes.
    let pages = std::fs::read_dir(out.join("man"))?.flatten().map(|e| e.path());
    progress(Command::new("gzip").args(["-9nf"]).args(pages))?;
    let deb = root().join("target/debian");
    let _ = std::fs::remove_dir_all(&deb);
    progress(Command::new(tools::cargo_deb()).current_dir(root()).args([
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
    add_md5sums(&file)?;
    println!("{}", file.display());
    Ok(file)
}

/// Adds the `md5sums` control file (which `debsums` and `dpkg --verify` check; cargo-deb
/// writes none): the package is unpacked, summed and built again with `dpkg-deb`.
fn add_md5sums(deb: &Path) -> Result<()> {
    let tree = deb.with_extension("tree");
    let _ = std::fs::remove_dir_all(&tree);
    progress(Command::new("dpkg-deb").arg("-R").arg(deb).arg(&tree))?;
    let mut sums = String::new();
    for file in files_under(&tree)? {
        let rel = file.strip_prefix(&tree)?;
        if rel.starts_with("DEBIAN") {
            continue;
        }
        let out = Command::new("md5sum").arg(&file).output().context("md5sum")?;
        let sum = String::from_utf8(out.stdout)?;
        let hex = sum.split_whitespace().next().context("md5sum printed nothing")?;
        sums.push_str(&format!("{hex}  {}\n", rel.display()));
    }
    std::fs::write(tree.join("DEBIAN/md5sums"), sums)?;
    progress(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zxz", "--build"])
            .arg(&tree)
            .arg(deb),
    )?;
    std::fs::remove_dir_all(&tree)?;
    Ok(())
}

/// Every regular file under `dir`, sorted.
fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            out.extend(files_under(&path)?);
        } else if path.is_file() {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}
