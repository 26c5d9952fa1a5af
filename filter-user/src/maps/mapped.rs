//! Values of an array map created with `BPF_F_MMAPABLE`, mapped into this process: read and
//! written in place with memory loads and stores, no system call an access. A mapping covers
//! a window of the array (all of it, or a run of values read in order); the kernel maps every
//! page of it at once, so it counts in this process's resident memory while it lives.

use std::{
    marker::PhantomData,
    os::fd::{AsFd, AsRawFd},
    ptr::NonNull,
    sync::atomic::{AtomicU32, AtomicU64, Ordering},
};

use anyhow::{Result, bail};
use aya::maps::MapData;

/// Values `first..first + len` of an mmapable array, `T` each, in place.
pub struct Mapping<T> {
    name: &'static str,
    /// Where the mapping starts, and its size (whole pages).
    at: NonNull<u8>,
    bytes: usize,
    /// Bytes from `at` to value `first`.
    skip: usize,
    first: usize,
    len: usize,
    value: PhantomData<T>,
}

// SAFETY: the mapping is plain shared memory owned by this handle; `&self` methods only read
// it (or store atomically), `&mut self` ones write it.
unsafe impl<T: Send> Send for Mapping<T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for Mapping<T> {}

/// Values in the array `data` (checked to be `T`s).
pub fn values<T>(name: &'static str, data: &MapData) -> Result<usize> {
    let info = data.info()?;
    if info.value_size() as usize != size_of::<T>() {
        bail!("{name} holds values of {} bytes, not {}", info.value_size(), size_of::<T>());
    }
    Ok(info.max_entries() as usize)
}

impl<T: Copy> Mapping<T> {
    /// Maps every value of the array `data`.
    pub fn all(name: &'static str, data: &MapData) -> Result<Self> {
        Self::window(name, data, 0, values::<T>(name, data)?)
    }

    /// Maps values `first..first + len` of the array `data` (its values are `T`s).
    pub fn window(name: &'static str, data: &MapData, first: usize, len: usize) -> Result<Self> {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let (start, end) = (first * size_of::<T>(), (first + len) * size_of::<T>());
        let offset = start / page * page;
        let bytes = (end.div_ceil(page) * page - offset).max(page);
        let fd = data.fd().as_fd().as_raw_fd();
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        // SAFETY: a new shared mapping of whole pages of the map's values, which the kernel
        // checks against the array's size; nothing else is touched.
        let at = unsafe {
            libc::mmap(std::ptr::null_mut(), bytes, prot, libc::MAP_SHARED, fd, offset as i64)
        };
        if at == libc::MAP_FAILED {
            let e = std::io::Error::last_os_error();
            bail!("cannot map {name} into memory (was it created mmapable?): {e}");
        }
        let Some(at) = NonNull::new(at.cast::<u8>()) else { bail!("{name}: null mapping") };
        let skip = start - offset;
        Ok(Self { name, at, bytes, skip, first, len, value: PhantomData })
    }

    /// The values it covers.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.first..self.first + self.len
    }

    fn ptr(&self, i: usize) -> *mut T {
        assert!(self.range().contains(&i), "{}: value {i} outside {:?}", self.name, self.range());
        let byte = self.skip + (i - self.first) * size_of::<T>();
        // SAFETY: value `i` lies within the mapping (checked above).
        unsafe { self.at.as_ptr().add(byte).cast::<T>() }
    }

    /// Value `i`, as it is now.
    pub fn read(&self, i: usize) -> T {
        // SAFETY: `ptr` is a valid pointer into the mapping, aligned (value sizes are
        // multiples of their alignment, and pages are aligned further); the kernel may write
        // it concurrently, hence the volatile read.
        unsafe { std::ptr::read_volatile(self.ptr(i)) }
    }

    /// Writes value `i` (field by field: a reader may see some fields old, some new).
    pub fn write(&mut self, i: usize, v: T) {
        // SAFETY: as in `read`.
        unsafe { std::ptr::write_volatile(self.ptr(i), v) }
    }

    /// The `word`th word of value `i` in words of atomic `A` (`AtomicU32`, `AtomicU64`): the
    /// kernel reads and writes values concurrently.
    fn atomic<A>(&self, i: usize, word: usize) -> &A {
        let size = size_of::<A>();
        assert!((word + 1) * size <= size_of::<T>() && align_of::<T>() >= align_of::<A>());
        // SAFETY: the word lies inside value `i`, aligned for `A` (T is at least as aligned,
        // and `A`'s size is its alignment), and lives as long as the mapping, which `&self`
        // borrows.
        unsafe { &*(self.ptr(i).cast::<u8>().add(word * size).cast::<A>()) }
    }

    /// Loads the `word`th `u64` of value `i`.
    pub fn load(&self, i: usize, word: usize) -> u64 {
        self.atomic::<AtomicU64>(i, word).load(Ordering::Acquire)
    }

    /// Stores the `word`th `u64` of value `i`: everything written before it is seen first.
    pub fn store(&mut self, i: usize, word: usize, v: u64) {
        self.atomic::<AtomicU64>(i, word).store(v, Ordering::Release)
    }

    /// Stores the `word`th `u32` of value `i` (alone: the kernel may write its neighbours).
    pub fn store32(&mut self, i: usize, word: usize, v: u32) {
        self.atomic::<AtomicU32>(i, word).store(v, Ordering::Release)
    }

    /// Asks the CPU to fetch value `i` into its cache ahead of a read.
    pub fn prefetch(&self, i: usize) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch never faults, and the pointer lies within the mapping.
        unsafe {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            _mm_prefetch::<_MM_HINT_T0>(self.ptr(i).cast::<i8>());
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = i;
    }
}

impl<T> Drop for Mapping<T> {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `window`, of that size, unmapped once.
        unsafe { libc::munmap(self.at.as_ptr().cast(), self.bytes) };
    }
}
