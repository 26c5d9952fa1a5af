//! Raw map commands on a map's descriptor, for any key and value layout: batched updates
//! (BPF_MAP_UPDATE_BATCH, Linux 5.6+, which aya 0.14 does not wrap), and single-element
//! lookup, update, delete and key iteration.
//!
//! One batch call writes thousands of entries, which is what makes loading a million-entry
//! list fast. Callers fall back to per-element updates when the kernel or map type lacks it.

use std::{
    io,
    mem::size_of,
    os::fd::{AsRawFd, BorrowedFd},
};

use aya::Pod;

const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
const BPF_MAP_GET_NEXT_KEY: libc::c_long = 4;
const BPF_MAP_UPDATE_BATCH: libc::c_long = 26;
/// Entries per system call: large enough to amortise the call, small enough to stay responsive.
pub const CHUNK: usize = 16 * 1024;

/// The `batch` member of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// Why a batch update stopped.
#[derive(Debug)]
pub enum BatchError {
    /// The kernel or this map type has no batch update: use per-element updates.
    Unsupported,
    /// The kernel failed after writing `done` entries.
    Failed { done: usize, error: io::Error },
}

/// Writes `keys[i] -> values[i]` for every i, in chunks of [`CHUNK`]; a large write is split
/// across up to four threads.
pub fn update<K: Pod + Sync, V: Pod + Sync>(
    fd: BorrowedFd<'_>,
    keys: &[K],
    values: &[V],
) -> Result<(), BatchError> {
    let threads = crate::parallel::threads(4);
    if threads < 2 || keys.len() < 4 * CHUNK {
        return update_serial(fd, keys, values);
    }
    let part = keys.len().div_ceil(threads);
    let results: Vec<Result<(), BatchError>> = std::thread::scope(|s| {
        let handles: Vec<_> = keys
            .chunks(part)
            .zip(values.chunks(part))
            .map(|(k, v)| s.spawn(move || update_serial(fd, k, v)))
            .collect();
        handles.into_iter().map(|h| h.join().expect("batch thread")).collect()
    });
    results.into_iter().collect()
}

/// [`update`] on the calling thread only.
fn update_serial<K: Pod, V: Pod>(
    fd: BorrowedFd<'_>,
    keys: &[K],
    values: &[V],
) -> Result<(), BatchError> {
    assert_eq!(keys.len(), values.len(), "one value per key");
    let mut done = 0;
    for (k, v) in keys.chunks(CHUNK).zip(values.chunks(CHUNK)) {
        let mut attr = BatchAttr {
            keys: k.as_ptr() as u64,
            values: v.as_ptr() as u64,
            count: k.len() as u32,
            map_fd: fd.as_raw_fd() as u32,
            ..Default::default()
        };
        // SAFETY: `attr` points at `count` keys and values that outlive the call; the kernel
        // only reads them and writes `attr.count`.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_MAP_UPDATE_BATCH,
                &mut attr as *mut BatchAttr,
                size_of::<BatchAttr>() as u32,
            )
        };
        if rc < 0 {
            let error = io::Error::last_os_error();
            let unsupported = matches!(
                error.raw_os_error(),
                Some(libc::EINVAL | libc::EOPNOTSUPP | libc::ENOSYS | 524 /* ENOTSUPP */)
            );
            if done == 0 && attr.count == 0 && unsupported {
                return Err(BatchError::Unsupported);
            }
            return Err(BatchError::Failed { done: done + attr.count as usize, error });
        }
        done += k.len();
    }
    Ok(())
}

/// The element-command member of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct ElemAttr {
    map_fd: u32,
    pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// Writes `values[i]` at index `keys[i]` of array map `name`: in batches where the kernel
/// has them, else one by one.
pub fn update_array<V: Pod + Sync>(
    fd: BorrowedFd<'_>,
    name: &str,
    keys: &[u32],
    values: &[V],
) -> anyhow::Result<()> {
    let failed = |e: io::Error| anyhow::anyhow!("cannot write {name}: {e}");
    match update(fd, keys, values) {
        Ok(()) => Ok(()),
        Err(BatchError::Unsupported) => {
            keys.iter().zip(values).try_for_each(|(k, v)| update_one(fd, k, v).map_err(failed))
        }
        Err(BatchError::Failed { error, .. }) => Err(failed(error)),
    }
}

/// One BPF_MAP_UPDATE_ELEM, for kernels or maps without batch updates.
pub fn update_one<K: Pod, V: Pod>(fd: BorrowedFd<'_>, key: &K, value: &V) -> io::Result<()> {
    elem(BPF_MAP_UPDATE_ELEM, fd, key as *const K as u64, value as *const V as u64)
}

/// One BPF_MAP_LOOKUP_ELEM: the value of `key`, if present (for an LPM trie, of the longest
/// match).
pub fn lookup_one<K: Pod, V: Pod>(fd: BorrowedFd<'_>, key: &K) -> Option<V> {
    let mut value = std::mem::MaybeUninit::<V>::zeroed();
    elem(BPF_MAP_LOOKUP_ELEM, fd, key as *const K as u64, value.as_mut_ptr() as u64).ok()?;
    // SAFETY: the kernel wrote a whole value (V is Pod, and was zeroed first).
    Some(unsafe { value.assume_init() })
}

/// One BPF_MAP_DELETE_ELEM; a key that is already absent is not an error.
pub fn delete_one<K: Pod>(fd: BorrowedFd<'_>, key: &K) -> io::Result<()> {
    match elem(BPF_MAP_DELETE_ELEM, fd, key as *const K as u64, 0) {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        other => other,
    }
}

/// Every key of the map, in the kernel's order (BPF_MAP_GET_NEXT_KEY from no key on). A hash
/// map changed meanwhile may restart the walk: more than `limit` keys is an error, not a loop.
pub fn keys<K: Pod>(fd: BorrowedFd<'_>, limit: usize) -> io::Result<Vec<K>> {
    let mut out: Vec<K> = Vec::new();
    loop {
        if out.len() > limit {
            return Err(io::Error::other("the map changed while it was read; read it again"));
        }
        let mut next = std::mem::MaybeUninit::<K>::zeroed();
        let prev = out.last().map_or(0, |k| k as *const K as u64);
        match elem(BPF_MAP_GET_NEXT_KEY, fd, prev, next.as_mut_ptr() as u64) {
            // SAFETY: the kernel wrote a whole key (K is Pod, and was zeroed first).
            Ok(()) => out.push(unsafe { next.assume_init() }),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(out),
            Err(e) => return Err(e),
        }
    }
}

fn elem(cmd: libc::c_long, fd: BorrowedFd<'_>, key: u64, value: u64) -> io::Result<()> {
    let attr = ElemAttr { map_fd: fd.as_raw_fd() as u32, key, value, ..Default::default() };
    // SAFETY: `attr` points at a key (and value) that outlive the call; the kernel reads them.
    let rc = unsafe {
        libc::syscall(libc::SYS_bpf, cmd, &attr as *const ElemAttr, size_of::<ElemAttr>() as u32)
    };
    if rc < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}
