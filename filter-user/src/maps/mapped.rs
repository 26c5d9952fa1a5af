//! An array map created with `BPF_F_MMAPABLE`, mapped into this process: its values read and
//! written in place with memory loads and stores, no system call an access (the exact IPv4
//! table writes a million entries this way in tens of milliseconds).

use std::{
    marker::PhantomData,
    os::fd::{AsFd, AsRawFd},
    ptr::NonNull,
    sync::atomic::{AtomicU64, Ordering},
};

use anyhow::{Result, anyhow, bail};
use aya::maps::{Map, MapData};

use super::table;

/// The values of an mmapable array map, `T` each, in place.
pub struct Mapped<T> {
    name: &'static str,
    data: MapData,
    base: NonNull<T>,
    len: usize,
    bytes: usize,
    value: PhantomData<T>,
}

// SAFETY: the mapping is plain shared memory owned by this handle; `&self` methods only read
// it (or store atomically), `&mut self` ones write it.
unsafe impl<T: Send> Send for Mapped<T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for Mapped<T> {}

impl<T: Copy> Mapped<T> {
    /// Maps the array `map` (whose values must be `T`s) into this process.
    pub fn new(name: &'static str, map: Map) -> Result<Self> {
        let Map::Array(data) = map else { bail!("{name} is not an array") };
        let info = data.info()?;
        if info.value_size() as usize != size_of::<T>() {
            bail!("{name} holds values of {} bytes, not {}", info.value_size(), size_of::<T>());
        }
        let len = info.max_entries() as usize;
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let bytes = (len * size_of::<T>()).div_ceil(page) * page;
        let fd = data.fd().as_fd().as_raw_fd();
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        // SAFETY: a new shared mapping of the map's descriptor, of the size the kernel gives
        // an mmapable array (its values, rounded up to whole pages); nothing else is touched.
        let at = unsafe { libc::mmap(std::ptr::null_mut(), bytes, prot, libc::MAP_SHARED, fd, 0) };
        if at == libc::MAP_FAILED {
            let e = std::io::Error::last_os_error();
            bail!("cannot map {name} into memory (was it created mmapable?): {e}");
        }
        let base = NonNull::new(at.cast::<T>()).ok_or_else(|| anyhow!("{name}: null mapping"))?;
        Ok(Self { name, data, base, len, bytes, value: PhantomData })
    }

    /// Values in the array.
    pub fn len(&self) -> usize {
        self.len
    }

    fn at(&self, i: usize) -> *mut T {
        assert!(i < self.len, "{}: index {i} out of {}", self.name, self.len);
        // SAFETY: `i` is within the mapping (checked above).
        unsafe { self.base.as_ptr().add(i) }
    }

    /// Value `i`, as it is now.
    pub fn read(&self, i: usize) -> T {
        // SAFETY: `at` is a valid, aligned pointer into the mapping; the kernel may write it
        // concurrently, hence the volatile read.
        unsafe { std::ptr::read_volatile(self.at(i)) }
    }

    /// Writes value `i` (field by field: a reader may see some fields old, some new).
    pub fn write(&mut self, i: usize, v: T) {
        // SAFETY: as in `read`.
        unsafe { std::ptr::write_volatile(self.at(i), v) }
    }

    /// The `word`th `u64` of value `i`, as an atomic (the kernel reads it concurrently).
    pub fn word(&self, i: usize, word: usize) -> &AtomicU64 {
        assert!((word + 1) * 8 <= size_of::<T>() && align_of::<T>() >= 8);
        // SAFETY: the word lies inside value `i`, 8-byte aligned (T is), and lives as long as
        // the mapping, which `&self` borrows.
        unsafe { &*(self.at(i).cast::<u64>().add(word).cast::<AtomicU64>()) }
    }

    /// Loads word `word` of value `i`.
    pub fn load(&self, i: usize, word: usize) -> u64 {
        self.word(i, word).load(Ordering::Acquire)
    }

    /// Stores word `word` of value `i`: everything written before it is seen first.
    pub fn store(&mut self, i: usize, word: usize, v: u64) {
        self.word(i, word).store(v, Ordering::Release)
    }

    /// The map's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Pins the map at `path` (replacing what is pinned there).
    pub fn pin(&self, path: &std::path::Path) -> Result<()> {
        table::pin(self.name, &self.data, path)
    }

    /// Kernel memory the map holds.
    pub fn memory(&self) -> Result<u64> {
        table::memlock(self.name, &self.data)
    }
}

impl<T> Drop for Mapped<T> {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, of that size, unmapped once.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.bytes) };
    }
}
