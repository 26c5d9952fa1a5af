//! The filter's pinned state on a bpffs: its maps, and one XDP link per interface.
//!
//! ```text
//! <pin dir>/maps/TD_V4_EXACT ...   every map, reused by the next load
//! <pin dir>/links/<interface>      the XDP attachment; while it is pinned, the filter enforces
//! ```
//! Pinned state is the truth: it outlives the daemon, and a new daemon adopts it.

use std::{
    fs,
    os::{
        fd::AsRawFd,
        unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt},
    },
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, bail};
use aya::maps::{Map, MapData};
use filter_common::ALL_MAPS;

use super::Named;

/// Where bpffs is normally mounted.
pub const BPFFS_ROOT: &str = "/sys/fs/bpf";
/// The default pin directory.
pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/takedown";
const BPF_FS_MAGIC: i64 = 0xcafe4a11;

/// A pin directory.
#[derive(Clone, Debug)]
pub struct Pins {
    dir: PathBuf,
}

impl Pins {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Makes sure the directory exists (mode 0700) on a bpffs, mounting bpffs at
    /// /sys/fs/bpf when the directory lives there and nothing is mounted.
    pub fn prepare(&self) -> Result<()> {
        let ancestor = self.dir.ancestors().find(|a| a.exists()).unwrap_or(Path::new("/"));
        if !is_bpffs(ancestor) {
            if self.dir.starts_with(BPFFS_ROOT) && !is_bpffs(Path::new(BPFFS_ROOT)) {
                mount_bpffs(Path::new(BPFFS_ROOT))?;
            } else {
                bail!(
                    "{} is not on a bpf filesystem: mount one there (mount -t bpf bpf DIR) or use a pin directory under {BPFFS_ROOT}",
                    self.dir.display()
                );
            }
        }
        for d in [
            self.dir.clone(),
            self.dir.join("maps"),
            self.dir.join("links"),
            self.dir.join("egress"),
        ] {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&d)
                .with_context(|| format!("cannot create pin directory {}", d.display()))?;
        }
        super::privileges::require_private_dir(&self.dir, "pin directory")?;
        fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))?;
        Ok(())
    }

    /// Where map `name` is pinned.
    pub fn map(&self, name: &str) -> PathBuf {
        self.dir.join("maps").join(name)
    }

    /// Where the link of `iface` is pinned.
    pub fn link(&self, iface: &str) -> PathBuf {
        self.dir.join("links").join(iface)
    }

    /// Where the tc egress link of `iface` is pinned.
    pub fn egress_link(&self, iface: &str) -> PathBuf {
        self.dir.join("egress").join(iface)
    }

    /// The interfaces with a pinned egress link, sorted.
    pub fn egress_interfaces(&self) -> Vec<String> {
        names_in(&self.dir.join("egress"))
    }

    /// Unpins the egress link of `iface`.
    pub fn unpin_egress(&self, iface: &str) -> Result<()> {
        unpin(&self.egress_link(iface))
    }

    /// True when maps are pinned here (a filter was loaded before).
    pub fn has_maps(&self) -> bool {
        self.map(filter_common::MAP_CONFIG).exists()
    }

    /// The interfaces with a pinned link, sorted.
    pub fn linked_interfaces(&self) -> Vec<String> {
        names_in(&self.dir.join("links"))
    }

    /// Unpins the link of `iface` (the attachment goes when nothing else holds it).
    pub fn unpin_link(&self, iface: &str) -> Result<()> {
        unpin(&self.link(iface))
    }

    /// Why what is pinned here would end with this process (None: it outlives it, or that
    /// cannot be told): the directory's bpf filesystem is mounted in no mount namespace but
    /// this process's, not in the host's (PID 1's), and goes with every pin on it when the
    /// process (the last in its namespace) stops.
    pub fn ends_with_process(&self) -> Option<String> {
        let dev = fs::metadata(&self.dir).ok()?.dev();
        let host = fs::read_to_string("/proc/1/mountinfo").ok()?;
        let id = format!("{}:{}", libc::major(dev), libc::minor(dev));
        if host.lines().any(|l| l.split(' ').nth(2) == Some(id.as_str())) {
            return None;
        }
        Some(format!(
            "the bpf filesystem of the pin directory {} is mounted only in this daemon's mount \
             namespace, not on the host (PID 1's namespace): the filter ends when the daemon \
             stops; mount a bpffs there on the host (mount -t bpf bpf DIR) and restart takedown",
            self.dir.display()
        ))
    }

    /// Locks the pin directory for one daemon (the lock dies with the process); fails in one
    /// sentence when another daemon holds it, whatever its state directory.
    pub fn lock(&self) -> Result<fs::File> {
        self.prepare()?;
        let dir = fs::File::open(&self.dir)
            .with_context(|| format!("cannot open {}", self.dir.display()))?;
        // SAFETY: flock on a descriptor we own; released when it closes.
        if unsafe { libc::flock(dir.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            bail!(
                "another takedown daemon uses the pin directory {}: stop it first, or give this one its own --pin-dir",
                self.dir.display()
            );
        }
        Ok(dir)
    }

    /// Opens every pinned map.
    pub fn open_maps(&self) -> Result<Named> {
        if !self.has_maps() {
            bail!("no filter is pinned at {}: start one with `takedown run`", self.dir.display());
        }
        let mut maps = Named::new();
        for name in ALL_MAPS {
            let path = self.map(name);
            let data = MapData::from_pin(&path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            maps.insert(name, Map::from_map_data(data)?);
        }
        Ok(maps)
    }

    /// Unpins every map (the maps go when no program or descriptor holds them).
    pub fn unpin_maps(&self) -> Result<()> {
        if let Ok(maps) = fs::read_dir(self.dir.join("maps")) {
            for m in maps.flatten() {
                fs::remove_file(m.path())
                    .with_context(|| format!("cannot unpin {}", m.path().display()))?;
            }
        }
        Ok(())
    }

    /// Removes every link, then every map, then the directories.
    pub fn remove_all(&self) -> Result<()> {
        for iface in self.linked_interfaces() {
            self.unpin_link(&iface)?;
        }
        for iface in self.egress_interfaces() {
            self.unpin_egress(&iface)?;
        }
        self.unpin_maps()?;
        let dirs = [self.dir.join("maps"), self.dir.join("links"), self.dir.join("egress")];
        for d in dirs.into_iter().chain([self.dir.clone()]) {
            if d.exists() {
                fs::remove_dir(&d).with_context(|| format!("cannot remove {}", d.display()))?;
            }
        }
        Ok(())
    }
}

/// The names in directory `dir` (none when it does not exist), sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

/// Removes the pin at `path`.
fn unpin(path: &Path) -> Result<()> {
    fs::remove_file(path).with_context(|| format!("cannot unpin {}", path.display()))
}

fn is_bpffs(path: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else { return false };
    // SAFETY: statfs writes into a zeroed struct we own.
    unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        libc::statfs(c.as_ptr(), &mut st) == 0 && st.f_type as i64 == BPF_FS_MAGIC
    }
}

/// Mounts a bpf filesystem at `at`.
pub fn mount_bpffs(at: &Path) -> Result<()> {
    fs::create_dir_all(at)?;
    let target = std::ffi::CString::new(at.as_os_str().as_encoded_bytes())?;
    let bpf = c"bpf";
    // SAFETY: all arguments are valid NUL-terminated strings; no data argument.
    if unsafe { libc::mount(bpf.as_ptr(), target.as_ptr(), bpf.as_ptr(), 0, std::ptr::null()) } != 0
    {
        bail!("cannot mount bpffs at {}: {}", at.display(), std::io::Error::last_os_error());
    }
    Ok(())
}
