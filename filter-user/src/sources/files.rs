//! Files a source keeps in the state directory: named after their list, one to one, and
//! written atomically, so that a crash leaves the old copy or the new one, never a mix.

use std::{fs::File, io::Write, path::Path};

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
fn cannot_write(path: &Path, e: std::io::Error) -> anyhow::Error {
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
