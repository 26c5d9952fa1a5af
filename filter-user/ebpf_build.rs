//! The eBPF object's build, for `filter-user/build.rs` (the program takedown embeds) and
//! `cargo xtask bench` (builds without a feature, to measure what it costs): filter-ebpf for
//! bpfel-unknown-none with the nightly toolchain when it has rust-src, else the stable one with
//! RUSTC_BOOTSTRAP=1.

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

fn has_rust_src(toolchain: &str) -> bool {
    Command::new("rustc")
        .args([&format!("+{toolchain}"), "--print", "sysroot"])
        .env_remove("RUSTC")
        .env_remove("RUSTUP_TOOLCHAIN")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            let sysroot = String::from_utf8_lossy(&o.stdout).trim().to_string();
            Path::new(&sysroot).join("lib/rustlib/src/rust/library/core").is_dir()
        })
        .unwrap_or(false)
}

/// Builds filter-ebpf with `features` (none: the program takedown embeds) into a target
/// directory of its own; returns the object's path.
pub fn build(root: &Path, features: &[&str]) -> PathBuf {
    let toolchain = if has_rust_src("nightly") {
        "nightly"
    } else if has_rust_src("stable") {
        "stable"
    } else {
        panic!("no Rust toolchain with rust-src for the eBPF build: run `cargo xtask setup`");
    };
    let target_dir = match features {
        [] => root.join("target/ebpf"),
        f => root.join(format!("target/ebpf-{}", f.join("-"))),
    };
    // The target of the binary that embeds it (xtask: this machine).
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| env::consts::ARCH.into());
    let mut cmd = Command::new("cargo");
    cmd.current_dir(root)
        .arg(format!("+{toolchain}"))
        .args(["build", "--package", "filter-ebpf", "--release"])
        .args(features.iter().flat_map(|f| ["--features", f]))
        .args(["--target", "bpfel-unknown-none", "-Z", "build-std=core"])
        .arg("--target-dir")
        .arg(&target_dir)
        // BTF for the loader; packet words read unaligned (x86-64 and arm64 allow it); BPF CPU
        // v3 (32-bit compares and arithmetic, Linux 5.1 and later; the program needs 5.17).
        .env(
            "CARGO_ENCODED_RUSTFLAGS",
            format!(
                "--cfg=bpf_target_arch=\"{arch}\"\x1f-Cdebuginfo=2\x1f-Clink-arg=--btf\x1f-Ctarget-feature=+allows-misaligned-mem-access\x1f-Ctarget-cpu=v3"
            ),
        );
    if toolchain == "stable" {
        cmd.env("RUSTC_BOOTSTRAP", "1");
    }
    for var in [
        "RUSTC",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTUP_TOOLCHAIN",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
    ] {
        cmd.env_remove(var);
    }
    let status =
        cmd.status().unwrap_or_else(|e| panic!("cannot run cargo for the eBPF build: {e}"));
    if !status.success() {
        panic!(
            "building filter-ebpf failed ({status}); if bpf-linker or rust-src is missing, run `cargo xtask setup`"
        );
    }
    target_dir.join("bpfel-unknown-none/release/filter-ebpf")
}
