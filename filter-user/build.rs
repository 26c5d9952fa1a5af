//! Builds the XDP program (filter-ebpf) for bpfel-unknown-none and places the object in OUT_DIR,
//! where the library embeds it. Set TAKEDOWN_EBPF_OBJ to use a prebuilt object instead.
//!
//! The eBPF build (`ebpf_build.rs`, shared with `cargo xtask bench`) needs rust-src and
//! bpf-linker (`cargo xtask setup` installs both).

use std::{env, path::PathBuf};

#[path = "ebpf_build.rs"]
mod ebpf_build;

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
        None => ebpf_build::build(&root, &[]),
    };
    std::fs::copy(&object, &out)
        .unwrap_or_else(|e| panic!("cannot copy {} to {}: {e}", object.display(), out.display()));
}
