//! The journal on disk: `<state dir>/journal/<UTC hour>.tdj` (e.g. `2026-12-06T21.tdj`), one
//! file an hour, mode 0600, blocks appended (see `block`). Old hours are deleted by age
//! (`days`) and, past `max_bytes`, oldest first.

use std::{
    fs,
    io::Write as _,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    sync::{Mutex, OnceLock, mpsc},
};

use anyhow::{Context, Result};

use super::{
    block::{self, Key, Seen},
    hours::Hours,
};

const HOUR: u64 = 3600;

/// A journal directory.
#[derive(Clone, Debug)]
pub struct Store {
    dir: PathBuf,
}

/// One hour's file.
#[derive(Clone, Debug)]
pub struct HourFile {
    /// The hour's first second.
    pub hour: u64,
    pub path: PathBuf,
    pub bytes: u64,
}

/// What a cleanup deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Removed {
    pub by_age: usize,
    pub by_size: usize,
    /// The current hour alone is over `max_bytes`.
    pub full: bool,
}

impl Store {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Makes the directory, mode 0700, or makes it so if it was not (it holds who talked to
    /// whom: for root alone).
    pub fn make_private(&self) -> Result<()> {
        self.create_dir()?;
        fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make {} private (mode 0700)", self.dir.display()))
    }

    /// Appends `block` to the file of the hour holding `at` (made, mode 0600, if new).
    pub fn append(&self, at: u64, block: &[u8]) -> Result<()> {
        self.create_dir()?;
        let path = self.dir.join(name(at - at % HOUR));
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        f.write_all(block)
            .and_then(|()| f.sync_data())
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// Makes the directory (mode 0700) if it is not there.
    fn create_dir(&self) -> Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))
    }

    /// The hour files, oldest first.
    pub fn files(&self) -> Vec<HourFile> {
        let Ok(dir) = fs::read_dir(&self.dir) else { return vec![] };
        let mut out: Vec<HourFile> = dir
            .flatten()
            .filter_map(|e| {
                let hour = hour_of(e.file_name().to_str()?)?;
                Some(HourFile { hour, path: e.path(), bytes: e.metadata().ok()?.len() })
            })
            .collect();
        out.sort_by_key(|f| f.hour);
        out
    }

    /// The hour files that end after `since`, oldest first.
    pub fn files_since(&self, since: u64) -> Vec<HourFile> {
        self.files().into_iter().filter(|f| f.hour + HOUR > since).collect()
    }

    /// Every row of `files` (see [`Store::files_since`]), read by up to `readers` readers,
    /// each in a thread of its own (as many as can be made, this one among them) and each
    /// reading every hour (see `hours`), with its own `state` made by `init` from its number
    /// and the number of readers, given to `row` with each row. Returns the states, and what
    /// could not be read, a line a file (naming it and the bytes skipped), oldest first.
    pub fn read_each<S: Send>(
        files: &[HourFile],
        readers: usize,
        init: impl Fn(usize, usize) -> S + Sync,
        row: impl Fn(&mut S, Key, Seen) + Sync,
    ) -> (Vec<S>, Vec<String>) {
        let problems = Mutex::new(Vec::new());
        let hours = OnceLock::new();
        let work = |n: usize, readers: usize| {
            let hours: &Hours = hours.get_or_init(|| Hours::new(files.len(), readers));
            let mut state = init(n, readers);
            let mut reader = block::Reader::new();
            for (i, f) in files.iter().enumerate() {
                let bytes = hours.take(i, &f.path);
                let read = reader.as_mut().map_err(|e| e.to_string()).and_then(|r| {
                    let bytes = bytes.as_deref().map_err(Clone::clone)?;
                    r.decode_all(bytes, |k, s| row(&mut state, k, s)).map_or(Ok(()), Err)
                });
                drop(bytes);
                // Every reader decodes the same bytes and meets the same damage: the first
                // says it.
                if let (Err(why), 0) = (read, n) {
                    let mut p = problems.lock().unwrap_or_else(|e| e.into_inner());
                    p.push((f.hour, format!("{}: {why}", f.path.display())));
                }
            }
            state
        };
        let states = std::thread::scope(|s| {
            // The threads first, each waiting to be told its number and how many read.
            let spawn = |_| {
                let (tell, told) = mpsc::channel::<(usize, usize)>();
                let thread = move || told.recv().ok().map(|(n, all)| work(n, all));
                std::thread::Builder::new().spawn_scoped(s, thread).ok().map(|h| (h, tell))
            };
            let threads: Vec<_> = (1..readers.max(1)).filter_map(spawn).collect();
            let all = threads.len() + 1;
            for (n, (_, tell)) in threads.iter().enumerate() {
                let _ = tell.send((n + 1, all));
            }
            let mut states = vec![work(0, all)];
            let joined = threads.into_iter().map(|(h, _)| h.join());
            let joined = joined.map(|j| j.unwrap_or_else(|e| std::panic::resume_unwind(e)));
            states.extend(joined.flatten());
            states
        });
        let mut problems = problems.into_inner().unwrap_or_else(|e| e.into_inner());
        problems.sort();
        (states, problems.into_iter().map(|(_, p)| p).collect())
    }

    /// Deletes the hours older than `days` before `now`, then the oldest until the journal
    /// holds at most `max_bytes` (the current hour is kept). A file that cannot be deleted is
    /// logged and passed over: the others still go.
    pub fn clean(&self, now: u64, days: u64, max_bytes: u64) -> Removed {
        let mut removed = Removed::default();
        let mut files = self.files();
        let keep_from = now.saturating_sub(days * 24 * HOUR);
        for f in files.iter().filter(|f| f.hour + HOUR <= keep_from) {
            removed.by_age += usize::from(remove_logged(&f.path));
        }
        files.retain(|f| f.hour + HOUR > keep_from);
        let mut total: u64 = files.iter().map(|f| f.bytes).sum();
        for f in files.iter().take(files.len().saturating_sub(1)) {
            if total <= max_bytes {
                break;
            }
            if remove_logged(&f.path) {
                total -= f.bytes;
                removed.by_size += 1;
            }
        }
        removed.full = total > max_bytes;
        removed
    }

    /// Deletes every hour that ends before `before` (all of them: None): how many went, and
    /// why each that could not be deleted stayed (the others still go).
    pub fn purge(&self, before: Option<u64>) -> (usize, Vec<String>) {
        let old = self.files().into_iter().filter(|f| before.is_none_or(|b| f.hour + HOUR <= b));
        let (mut n, mut failed) = (0, Vec::new());
        for f in old {
            match remove(&f.path) {
                Ok(()) => n += 1,
                Err(why) => failed.push(why),
            }
        }
        (n, failed)
    }
}

/// Deletes `path`, or says why it could not (naming it).
fn remove(path: &Path) -> Result<(), String> {
    fs::remove_file(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Deletes `path`; true if it went (else why is logged).
fn remove_logged(path: &Path) -> bool {
    remove(path).map_err(|why| log::warn!("connection journal: cannot delete {why}")).is_ok()
}

/// The file name of the hour starting at `hour`.
fn name(hour: u64) -> String {
    let t = jiff::Timestamp::from_second(hour as i64).unwrap_or_default();
    format!("{}.tdj", t.strftime("%Y-%m-%dT%H"))
}

/// The hour a file name stands for.
fn hour_of(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".tdj")?;
    let t: jiff::Timestamp = format!("{stem}:00:00Z").parse().ok()?;
    u64::try_from(t.as_second()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_are_named_and_cleaned_by_age_then_size() {
        let dir = std::env::temp_dir().join(format!("td-journal-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let store = Store::new(&dir);
        let now = 1_800_000_000 - 1_800_000_000 % HOUR;
        assert_eq!(hour_of(&name(now)), Some(now));
        assert_eq!(name(now), "2027-01-15T08.tdj");
        for h in 0..30 * 24 {
            store.append(now - h * HOUR, &[0u8; 100]).unwrap();
        }
        let removed = store.clean(now, 14, 100 * 24 * 10);
        // The current hour and 14 days before it stay; then the oldest go, down to 10 days.
        let by_size = 14 * 24 + 1 - 240;
        assert_eq!(removed, Removed { by_age: 30 * 24 - 14 * 24 - 1, by_size, full: false });
        assert_eq!(store.files().len(), 24 * 10);
        assert_eq!(store.files().last().unwrap().hour, now);
        assert_eq!(store.purge(Some(now - 3600)), (24 * 10 - 2, vec![]));
        // The current hour alone over max_bytes: it stays, and says so.
        assert!(store.clean(now, 14, 99).full);
        assert_eq!(store.files().len(), 1);
        assert_eq!(store.purge(None), (1, vec![]));
        fs::remove_dir_all(&dir).unwrap();
    }
}
