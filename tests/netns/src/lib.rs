//! Throwaway network namespaces for takedown's demo and tests.
//!
//! Everything here is created inside namespaces this process made, named with its pid, and is
//! deleted on drop (even when a test fails). Nothing is ever configured in the root namespace.

mod leftovers;
mod topology;
mod traffic;

use std::process::{Command, Output};

use anyhow::{Context, Result, bail};

pub use leftovers::{clean_stale, unique};
pub use topology::{Addrs, Topology};
pub use traffic::{Stream, in_netns, ping, udp_count};

/// True when running as root (uid 0); the kernel tests need it.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Runs a command, failing with its stderr when it exits non-zero.
pub fn sh(program: &str, args: &[&str]) -> Result<Output> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}

/// A network namespace, deleted on drop.
#[derive(Debug)]
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// Creates `td-<prefix>-<pid>-<n>` (the `td-` prefix and the pid let a later run delete it,
    /// should this process be killed).
    pub fn new(prefix: &str) -> Result<Self> {
        Self::named(&unique(&format!("td-{prefix}")))
    }

    /// Creates a namespace with exactly this name, replacing a stale one of the same name.
    pub fn named(name: &str) -> Result<Self> {
        let _ = Command::new("ip").args(["netns", "del", name]).output();
        sh("ip", &["netns", "add", name])?;
        let ns = Self { name: name.to_string() };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n <ns> <args>`.
    pub fn ip(&self, args: &[&str]) -> Result<Output> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        sh("ip", &all)
    }

    /// A `Command` that runs `program` inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    /// Runs `program args` inside the namespace and returns its output (any exit status).
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<Output> {
        self.command(program)
            .args(args)
            .output()
            .with_context(|| format!("cannot run {program} in {}", self.name))
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
    }
}
