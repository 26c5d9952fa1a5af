//! Builds the XDP program (filter-ebpf) for bpfel-unknown-none and places the object in OUT_DIR,
//! where the library embeds it. Set TAKEDOWN_EBPF_OBJ to use a prebuilt object instead.
//!
//! The eBPF build needs rust-src and bpf-linker (`cargo xtask setup` installs both). It uses the
//! nightly toolchain when it has rust-src, else the stable one with RUSTC_BOOTSTRAP=1.

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.parent().unwrap().to_path_buf();
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("takedown.bpf.o");
    println!("cargo:rerun-if-env-changed=TAKEDOWN_EBPF_OBJ");
    for dir in ["filter-ebpf/src", "filter-ebpf/Cargo.toml", "filter-common/src"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    let object = match env::var_os("TAKEDOWN_EBPF_OBJ") {
        Some(path) => PathBuf::from(path),
        None => build_ebpf(&root),
    };
    std::fs::copy(&object, &out)
        .unwrap_or_else(|e| panic!("cannot copy {} to {}: {e}", object.display(), out.display()));
}

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

fn build_ebpf(root: &Path) -> PathBuf {
    let toolchain = if has_rust_src("nightly") {
        "nightly"
    } else if has_rust_src("stable") {
        "stable"
    } else {
        panic!("no Rust toolchain with rust-src for the eBPF build: run `cargo xtask setup`");
    };
    let target_dir = root.join("target/ebpf");
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap();
    let mut cmd = Command::new("cargo");
    cmd.current_dir(root)
        .arg(format!("+{toolchain}"))
        .args(["build", "--package", "filter-ebpf", "--release"])
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
