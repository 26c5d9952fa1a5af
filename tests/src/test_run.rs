//! BPF_PROG_TEST_RUN by hand (its attribute in full: live frames, a context, a batch size),
//! and pinning the calling thread to a CPU: what the tests that flood every CPU and the
//! benchmark share.

/// The bpf_attr of BPF_PROG_TEST_RUN.
#[repr(C)]
#[derive(Default)]
pub struct TestAttr {
    pub prog_fd: u32,
    pub retval: u32,
    pub data_size_in: u32,
    pub data_size_out: u32,
    pub data_in: u64,
    pub data_out: u64,
    pub repeat: u32,
    pub duration: u32,
    pub ctx_size_in: u32,
    pub ctx_size_out: u32,
    pub ctx_in: u64,
    pub ctx_out: u64,
    pub flags: u32,
    pub cpu: u32,
    pub batch_size: u32,
    /// Explicit padding: the kernel refuses an attribute whose unused bytes are not zero.
    pub pad: u32,
}

/// BPF_PROG_TEST_RUN with `attr`, whose pointers must outlive the call.
pub fn test_run(attr: &mut TestAttr) -> std::io::Result<()> {
    const BPF_PROG_TEST_RUN: libc::c_long = 10;
    // SAFETY: `attr` is a bpf_attr for BPF_PROG_TEST_RUN, zero where unused, whose pointers
    // outlive the call; the kernel writes only inside it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_TEST_RUN,
            attr as *mut TestAttr,
            size_of::<TestAttr>() as u32,
        )
    };
    if rc < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
}

/// Runs program `fd` on `frame` `repeat` times on this CPU: (verdict, ns a packet).
pub fn run(fd: i32, frame: &[u8], repeat: u32) -> std::io::Result<(u32, u32)> {
    let mut attr = TestAttr {
        prog_fd: fd as u32,
        data_size_in: frame.len() as u32,
        data_in: frame.as_ptr() as u64,
        repeat,
        ..Default::default()
    };
    test_run(&mut attr)?;
    Ok((attr.retval, attr.duration))
}

/// Pins the calling thread to `cpu`.
pub fn pin_to(cpu: usize) -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is empty; CPU_SET and sched_setaffinity write only into it.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set)
    };
    if rc == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}
