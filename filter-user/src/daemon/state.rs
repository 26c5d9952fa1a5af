//! takedown's state directory: the daemon's pid file and lock, the control socket, the manual
//! list, the cache of fetched lists, and the last status.

use std::{
    fs::{self, File, OpenOptions},
    io::{Read, Seek, Write},
    os::{fd::AsRawFd, unix::fs::DirBuilderExt},
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, bail};

/// The longest path a Unix socket can be bound to (`sun_path` less its terminating NUL).
const SOCKET_PATH_MAX: usize = 107;

pub use crate::sources::files::{load_json, safe_name, save_json, write_atomic};

/// The default state directory.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/takedown";

/// A state directory.
#[derive(Clone, Debug)]
pub struct StateDir {
    dir: PathBuf,
}

/// Held while a daemon runs: the locked pid file.
pub struct DaemonLock {
    _file: File,
}

/// Held while the manual list is read, changed, saved and applied: one writer at a time.
pub struct ManualLock {
    _file: File,
}

/// How long `add` or `remove` waits for another one to finish.
pub const MANUAL_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

impl StateDir {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What is wrong with the directory's path itself: a path so long that the control
    /// socket's cannot be bound (a Unix socket's path holds at most 107 bytes).
    pub fn path_problem(&self) -> Option<String> {
        let len = self.socket().as_os_str().len();
        (len > SOCKET_PATH_MAX).then(|| {
            format!(
                "state directory {} is too long: its control socket's path would be {len} bytes, \
                 at most {SOCKET_PATH_MAX} can be bound; choose a shorter one",
                self.dir.display()
            )
        })
    }

    /// Creates the directory (mode 0700) if needed.
    pub fn prepare(&self) -> Result<()> {
        if let Some(why) = self.path_problem() {
            bail!("{why}");
        }
        for d in [self.dir.clone(), self.cache_dir()] {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&d)
                .with_context(|| format!("cannot create state directory {}", d.display()))?;
        }
        crate::maps::privileges::require_private_dir(&self.dir, "state directory")
    }

    pub fn pid_file(&self) -> PathBuf {
        self.dir.join("takedown.pid")
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("control.sock")
    }

    pub fn manual(&self) -> PathBuf {
        self.dir.join("manual.txt")
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.dir.join("cache")
    }

    pub fn status_file(&self) -> PathBuf {
        self.dir.join("status.json")
    }

    /// What source `kind` (`crowdsec`, `taxii`) keeps for list `list`.
    pub fn source_file(&self, kind: &str, list: &str) -> PathBuf {
        self.dir.join(format!("{kind}-{}.json", safe_name(list)))
    }

    pub fn hosts_file(&self) -> PathBuf {
        self.dir.join("hosts.json")
    }

    /// Locks the pid file for this daemon; fails when another daemon holds it.
    pub fn lock_daemon(&self) -> Result<DaemonLock> {
        self.prepare()?;
        let path = self.pid_file();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| crate::sources::files::cannot_write(&path, e))?;
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            bail!(
                "a takedown daemon is already running (pid {}) with state directory {}",
                pid.trim(),
                self.dir.display()
            );
        }
        // The lock is held: a pid that cannot be written (a full filesystem) is said, and
        // enforcement goes on.
        let written = file.set_len(0).and_then(|()| file.rewind().map(drop)).and_then(|()| {
            writeln!(file, "{}", std::process::id())?;
            file.sync_all()
        });
        if let Err(e) = written {
            log::warn!("{:#}", crate::sources::files::cannot_write(&path, e));
        }
        Ok(DaemonLock { _file: file })
    }

    /// Locks the manual list for a change (`add`, `remove`), waiting up to
    /// [`MANUAL_LOCK_WAIT`] for the change under way.
    pub fn lock_manual(&self) -> Result<ManualLock> {
        let started = std::time::Instant::now();
        loop {
            if let Some(lock) = self.try_lock_manual()? {
                return Ok(lock);
            }
            if started.elapsed() > MANUAL_LOCK_WAIT {
                bail!(
                    "another change of the manual list has held {} for {} s: try again",
                    self.manual_lock().display(),
                    MANUAL_LOCK_WAIT.as_secs()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Locks the manual list when nobody changes it now (the daemon, which must never wait
    /// on a command that waits on it).
    pub fn try_lock_manual(&self) -> Result<Option<ManualLock>> {
        let path = self.manual_lock();
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        // SAFETY: flock on a descriptor we own; released when `file` closes.
        let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        Ok(locked.then_some(ManualLock { _file: file }))
    }

    fn manual_lock(&self) -> PathBuf {
        self.dir.join("manual.lock")
    }

    /// The pid of the running daemon, if one holds the lock.
    pub fn daemon_pid(&self) -> Option<i32> {
        let mut file = File::open(self.pid_file()).ok()?;
        // SAFETY: flock on a descriptor we own; released when `file` closes.
        let free = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        if free {
            return None;
        }
        let mut pid = String::new();
        file.read_to_string(&mut pid).ok()?;
        pid.trim().parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn an_atomic_write_follows_no_planted_link_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "untouched").unwrap();
        // The name the old code wrote through.
        std::os::unix::fs::symlink(&victim, dir.path().join(".manual.txt.tmp")).unwrap();
        let path = dir.path().join("manual.txt");
        write_atomic(&path, b"203.0.113.7/32 both\n").unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "untouched");
        assert_eq!(fs::read_to_string(&path).unwrap(), "203.0.113.7/32 both\n");
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let left: Vec<_> = fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(left.len(), 3, "no temporary file is left: {left:?}");
    }
}
