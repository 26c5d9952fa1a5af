//! The bpf syscall, for what the benchmark does below aya: load its own programs and maps,
//! run a program with BPF_PROG_TEST_RUN, open a peer's program by id, attach through a link.

use std::{
    io,
    os::fd::{FromRawFd, OwnedFd},
};

/// The bpf syscall `cmd` on attribute `attr` (the kernel may write its output fields back):
/// what it returned.
pub fn bpf<A>(cmd: libc::c_long, attr: &mut A) -> io::Result<i32> {
    // SAFETY: every caller passes a bpf_attr for `cmd`, zero where unused, whose pointers
    // outlive the call; the kernel writes only inside it.
    let rc = unsafe {
        libc::syscall(libc::SYS_bpf, cmd, attr as *mut A, std::mem::size_of::<A>() as u32)
    };
    if rc < 0 { Err(io::Error::last_os_error()) } else { Ok(rc as i32) }
}

/// The bpf syscall `cmd` that returns a new descriptor (a map, a program, a link): owned.
pub fn bpf_fd<A>(cmd: libc::c_long, attr: &mut A) -> io::Result<OwnedFd> {
    let fd = bpf(cmd, attr)?;
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
