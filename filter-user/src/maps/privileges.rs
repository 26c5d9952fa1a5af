//! Checks, before touching the kernel, that the process may load and attach XDP programs, and
//! that the directories it keeps its state and pins in are its own.

use std::{os::unix::fs::MetadataExt, path::Path};

use anyhow::{Context, Result, bail};

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
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

/// Fails with one sentence unless the process may also load takedown's program: CAP_PERFMON
/// (or CAP_SYS_ADMIN), under which the verifier lets the program tell an entry by its value's
/// place (a difference of pointers), as its per-CPU hit counts do.
pub fn require_program_loader(what: &str) -> Result<()> {
    let caps = effective_caps().unwrap_or(0);
    if caps & (1u64 << CAP_PERFMON | 1u64 << CAP_SYS_ADMIN) == 0 {
        bail!(
            "{what} needs CAP_PERFMON as well to load its program (the systemd unit grants it); run it as root or with sudo"
        );
    }
    Ok(())
}

/// Fails with one sentence unless `dir` (the `what` directory) belongs to this process's user
/// and no one else may write in it: another user could otherwise replace what takedown
/// enforces.
pub fn require_private_dir(dir: &Path, what: &str) -> Result<()> {
    let meta = std::fs::metadata(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        bail!(
            "{what} {} belongs to uid {}, not to uid {me} that runs takedown: refused (chown it or choose another)",
            dir.display(),
            meta.uid()
        );
    }
    if meta.mode() & 0o022 != 0 {
        bail!(
            "{what} {} may be written by other users (mode {:o}): refused (chmod go-w it)",
            dir.display(),
            meta.mode() & 0o7777
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::require_private_dir;

    #[test]
    fn a_directory_others_may_write_or_own_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        let mode = |m| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
        mode(0o755);
        require_private_dir(p, "state directory").unwrap();
        mode(0o777);
        let err = require_private_dir(p, "state directory").unwrap_err().to_string();
        assert!(err.contains("may be written by other users (mode 777)"), "{err}");
        mode(0o700);
        // Another owner can only be set up as root.
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            std::os::unix::fs::chown(p, Some(65534), None).unwrap();
            let err = require_private_dir(p, "state directory").unwrap_err().to_string();
            assert!(err.contains("belongs to uid 65534, not to uid 0"), "{err}");
        } else {
            eprintln!("SKIP: the other-owner case needs root");
        }
    }
}
