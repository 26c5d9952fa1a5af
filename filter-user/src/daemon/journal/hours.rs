//! The hours several readers of the journal read, each reading every one: an hour's file is
//! read from disk once, by the first reader to want it, and its bytes shared, so that every
//! reader decodes the same bytes (an hour deleted by a cleanup, or appended to by the writer,
//! meanwhile included) and the same damage, which the first reader names; they are let go when
//! the last reader is done with them.

use std::{
    fs,
    path::Path,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

/// An hour's bytes, or why they could not be read.
pub type Bytes = Arc<Result<Vec<u8>, String>>;

/// Hours, by their place in the list the readers go through.
pub struct Hours {
    slots: Vec<Slot>,
}

struct Slot {
    bytes: Mutex<Option<Bytes>>,
    /// Readers yet to take it.
    left: AtomicUsize,
}

impl Hours {
    /// `n` hours, none read yet, for `readers` readers.
    pub fn new(n: usize, readers: usize) -> Self {
        let slot = || Slot { bytes: Mutex::new(None), left: AtomicUsize::new(readers) };
        Self { slots: (0..n).map(|_| slot()).collect() }
    }

    /// Hour `i`'s bytes, from `path` if no reader has read it yet. Each reader takes each hour
    /// once: the last one lets the bytes go.
    pub fn take(&self, i: usize, path: &Path) -> Bytes {
        let slot = &self.slots[i];
        let mut held = slot.bytes.lock().unwrap_or_else(|e| e.into_inner());
        let bytes = held
            .get_or_insert_with(|| Arc::new(read_hour(path).map_err(|e| e.to_string())))
            .clone();
        if slot.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            *held = None;
        }
        bytes
    }
}

/// An hour file's bytes; anything else of its name (a FIFO would block the reader for ever, a
/// link could lead outside the journal) is refused.
fn read_hour(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::{io::Read as _, os::unix::fs::OpenOptionsExt as _};
    let flags = libc::O_NONBLOCK | libc::O_NOFOLLOW;
    let mut f = fs::OpenOptions::new().read(true).custom_flags(flags).open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reader_gets_the_bytes_read_once_even_after_the_file_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hour");
        fs::write(&path, b"rows").unwrap();
        let hours = Hours::new(1, 3);
        assert_eq!(hours.take(0, &path).as_deref(), Ok(&b"rows"[..]));
        fs::remove_file(&path).unwrap();
        assert_eq!(hours.take(0, &path).as_deref(), Ok(&b"rows"[..]));
        let last = hours.take(0, &path);
        assert_eq!(last.as_deref(), Ok(&b"rows"[..]));
        assert!(hours.slots[0].bytes.lock().unwrap().is_none(), "let go after the last reader");
    }

    #[test]
    fn a_fifo_or_a_directory_of_an_hours_name_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let hours = Hours::new(2, 1);
        assert_eq!(hours.take(0, &fifo).as_deref(), Err(&"not a regular file".to_string()));
        assert!(hours.take(1, dir.path()).is_err(), "a directory");
    }
}
