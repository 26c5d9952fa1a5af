//! Files a source keeps in the state directory: named after their list, one to one, written
//! atomically (a crash leaves the old copy or the new one, never a mix), JSON state files.

use std::{
    fs::{self, File},
    io::Write,
    path::Path,
};

use anyhow::{Context, Result};

/// `list` as a piece of a file name: anything but letters, digits, `-`, `_` and `.` becomes
/// `_`.
pub fn safe_name(list: &str) -> String {
    let keep = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
    list.chars().map(|c| if keep(c) { c } else { '_' }).collect()
}

/// Writes `bytes` to `path` atomically: a temporary file, fsync, rename, fsync of the directory.
/// The temporary file is created new (O_EXCL, a random name, mode 0600) in the same directory:
/// a link planted under a predictable name cannot redirect the write. A failed write leaves no
/// temporary file behind.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().context("a file path has a parent")?;
    let fail = |e: std::io::Error| cannot_write(path, e);
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
    // Through the file itself: tempfile's own errors name the temporary file, which is gone.
    tmp.as_file_mut().write_all(bytes).map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// Why `path` could not be written, with the fix when it is a full disk or quota: the old
/// content is untouched either way.
pub fn cannot_write(path: &Path, e: std::io::Error) -> anyhow::Error {
    use std::io::ErrorKind::{QuotaExceeded, StorageFull};
    let fix = match e.kind() {
        StorageFull | QuotaExceeded => {
            let dir = path.parent().unwrap_or(path).display();
            format!(" (free space on the filesystem of {dir}, then try again)")
        }
        _ => String::new(),
    };
    anyhow::anyhow!("cannot write {}: {e}{fix}; it is unchanged", path.display())
}

/// The JSON file at `path` (the default when there is none yet).
pub fn load_json<T: serde::de::DeserializeOwned + Default>(path: &Path) -> Result<T> {
    match fs::read(path) {
        Ok(b) => {
            serde_json::from_slice(&b).with_context(|| format!("{} is corrupt", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Saves `value` as JSON at `path`, atomically.
pub fn save_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    write_atomic(path, &serde_json::to_vec(value)?)
}

/// Moves a file that does not parse out of the way, as evidence: `<path>.corrupt`, or
/// `<path>.corrupt.2`, `.3`... when an earlier one is there (never over it). Returns where.
pub fn set_aside(path: &Path) -> std::io::Result<std::path::PathBuf> {
    let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
    let free = (1..1000u32)
        .map(|n| match n {
            1 => path.with_file_name(format!("{name}.corrupt")),
            n => path.with_file_name(format!("{name}.corrupt.{n}")),
        })
        .find(|p| !p.exists())
        .ok_or_else(|| std::io::Error::other("a thousand corrupt copies are kept already"))?;
    fs::rename(path, &free)?;
    Ok(free)
}
