//! Names that tests make unique (`<name>-<pid>-<n>`), and the cleanup of what killed test runs
//! left behind: namespaces named `td-...`, mounts and directories named `takedown-...` in the
//! temporary directory, whose process is gone. `cargo xtask test` runs it first.

use std::{
    path::Path,
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// `<name>-<pid>-<n>`, unique within this process and among live ones.
pub fn unique(name: &str) -> String {
    format!("{name}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// True when `name` was made by [`unique`] in a process that no longer runs.
fn stale(name: &str) -> bool {
    let mut parts = name.rsplitn(3, '-');
    let (Some(n), Some(pid)) = (parts.next(), parts.next()) else { return false };
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    numeric(n) && numeric(pid) && !Path::new("/proc").join(pid).exists()
}

/// Deletes the namespaces, mounts and directories of test runs that were killed; returns
/// what it removed.
pub fn clean_stale() -> Vec<String> {
    let mut removed = Vec::new();
    let list = Command::new("ip").args(["netns", "list"]).output();
    let names = list.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    for ns in names.lines().filter_map(|l| l.split_whitespace().next()) {
        if ns.starts_with("td-") && stale(ns) {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
            removed.push(format!("namespace {ns}"));
        }
    }
    let tmp = std::env::temp_dir();
    let ours = |p: &Path| {
        p.parent() == Some(tmp.as_path())
            && p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("takedown-") && stale(n))
    };
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    for point in mounts.lines().filter_map(|l| l.split_whitespace().nth(1)).map(Path::new) {
        if ours(point) {
            let _ = Command::new("umount").arg("-l").arg(point).output();
            removed.push(format!("mount {}", point.display()));
        }
    }
    for entry in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
        let path = entry.path();
        if ours(&path) && std::fs::remove_dir_all(&path).is_ok() {
            removed.push(format!("directory {}", path.display()));
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_of_dead_processes_are_stale() {
        assert!(!stale(&unique("td-x")), "this process runs");
        assert!(stale("td-rgc-4194305-0"), "above the largest pid");
        assert!(!stale("td-demo"));
        assert!(!stale("takedown-bpffs-x-abc-1"));
    }
}
