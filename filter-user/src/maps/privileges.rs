//! Checks, before touching the kernel, that the process may load and attach XDP programs.

use anyhow::{Result, bail};

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_BPF: u32 = 39;

/// The effective capability set of this process, from /proc/self/status.
fn effective_caps() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// Fails with one sentence unless the process may read BPF maps: CAP_BPF (or CAP_SYS_ADMIN).
pub fn require_bpf_reader(what: &str) -> Result<()> {
    let caps = effective_caps().unwrap_or(0);
    if caps & (1u64 << CAP_BPF | 1u64 << CAP_SYS_ADMIN) == 0 {
        bail!("{what} needs root (CAP_BPF) to read the filter; run it as root or with sudo");
    }
    Ok(())
}

/// Fails with one sentence unless the process has CAP_NET_ADMIN and CAP_BPF (or CAP_SYS_ADMIN).
pub fn require_bpf_admin(what: &str) -> Result<()> {
    let caps = effective_caps().unwrap_or(0);
    let has = |cap: u32| caps & (1u64 << cap) != 0;
    if !(has(CAP_NET_ADMIN) && (has(CAP_BPF) || has(CAP_SYS_ADMIN))) {
        bail!("{what} needs root (CAP_BPF and CAP_NET_ADMIN); run it as root or with sudo");
    }
    Ok(())
}
