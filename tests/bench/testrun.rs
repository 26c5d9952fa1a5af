//! BPF_PROG_TEST_RUN on any XDP program by descriptor (takedown's, or a peer's found by id),
//! and the interleaved measurement: every case runs once a round, rounds repeat, medians win,
//! so that the machine's drift touches every program alike.

use std::{
    mem::size_of,
    os::fd::{AsRawFd, BorrowedFd, OwnedFd},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use integration_tests::test_run::{TestAttr, test_run};

const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
/// Packets a sample runs.
pub const REPEAT: u32 = 1_000_000;
/// Samples a case gets (interleaved with every other case).
pub const ROUNDS: usize = 11;

/// Runs `prog` on `frame` `repeat` times: (verdict, nanoseconds a packet, as the kernel
/// gives it: whole nanoseconds, cut).
pub fn run(prog: BorrowedFd<'_>, frame: &[u8], repeat: u32) -> Result<(u32, f64)> {
    let (verdict, duration, _) = call(prog, frame, repeat)?;
    Ok((verdict, duration))
}

/// [`run`], timed by the call's own length over its packets (a fraction of a nanosecond
/// apart, where the kernel gives whole nanoseconds, cut: a load that costs 35.9 ns read 35 and
/// one of 37.1, 37). Only for a program [`dispatcher::Held`](crate::dispatcher::Held) holds:
/// for another, a call also waits for the kernel to put the program in its XDP dispatcher and
/// take it out (about 12 ms here).
pub fn run_wall(prog: BorrowedFd<'_>, frame: &[u8], repeat: u32) -> Result<(u32, f64)> {
    let (verdict, _, took) = call(prog, frame, repeat)?;
    Ok((verdict, took.as_nanos() as f64 / f64::from(repeat.max(1))))
}

/// One BPF_PROG_TEST_RUN: the verdict, the kernel's nanoseconds a packet, the call's length.
fn call(prog: BorrowedFd<'_>, frame: &[u8], repeat: u32) -> Result<(u32, f64, Duration)> {
    let mut attr = TestAttr {
        prog_fd: prog.as_raw_fd() as u32,
        data_size_in: frame.len() as u32,
        data_in: frame.as_ptr() as u64,
        repeat,
        ..Default::default()
    };
    let started = Instant::now();
    if let Err(e) = test_run(&mut attr) {
        bail!("BPF_PROG_TEST_RUN on fd {} ({} bytes): {e}", prog.as_raw_fd(), frame.len());
    }
    Ok((attr.retval, f64::from(attr.duration), started.elapsed()))
}

/// Pairs of cases (each pair: a program without and with something), measured in `rounds`
/// rounds, the two of a pair back to back in turns (first one, then the other first).
/// Returns, for each pair, the two cases' figures a round, timed by [`run_wall`] (the
/// programs must be held in the dispatcher): for a difference of a few percent, a case's
/// figure is the mean of its middle half of rounds ([`middle_mean`]), not a median.
pub fn paired_samples(pairs: &[[Case<'_>; 2]], rounds: usize) -> Result<Vec<[Vec<f64>; 2]>> {
    for (i, c) in pairs.iter().flatten().enumerate() {
        let (verdict, _) = run(c.prog, &c.frame, 1).with_context(|| format!("case {i}"))?;
        if verdict != c.verdict {
            bail!("case {i}: verdict {verdict}, expected {}", c.verdict);
        }
    }
    let mut samples = vec![[Vec::new(), Vec::new()]; pairs.len()];
    for r in 0..rounds {
        for (pair, s) in pairs.iter().zip(samples.iter_mut()) {
            let order = if r % 2 == 0 { [0, 1] } else { [1, 0] };
            for i in order {
                s[i].push(run_wall(pair[i].prog, &pair[i].frame, REPEAT)?.1);
            }
        }
    }
    Ok(samples)
}

/// The mean of the middle half of `samples`.
pub fn middle_mean(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    let q = samples.len() / 4;
    let middle = &samples[q..samples.len() - q];
    middle.iter().sum::<f64>() / middle.len() as f64
}

/// `BPF_F_TEST_XDP_LIVE_FRAMES`: the frames really go where the program sends them.
const LIVE_FRAMES: u32 = 1 << 1;

/// Runs `prog` on `frame` `repeat` times with live frames, as if received on `ifindex`, in
/// batches of `batch`: what the program returns (XDP_TX) really happens. Returns the wall time.
pub fn run_live(
    prog: BorrowedFd<'_>,
    frame: &[u8],
    ifindex: u32,
    repeat: u32,
    batch: u32,
) -> Result<Duration> {
    // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex.
    let ctx: [u32; 6] = [0, frame.len() as u32, 0, ifindex, 0, 0];
    let mut attr = TestAttr {
        prog_fd: prog.as_raw_fd() as u32,
        data_size_in: frame.len() as u32,
        data_in: frame.as_ptr() as u64,
        repeat,
        ctx_size_in: size_of::<[u32; 6]>() as u32,
        ctx_in: ctx.as_ptr() as u64,
        flags: LIVE_FRAMES,
        batch_size: batch,
        ..Default::default()
    };
    let started = Instant::now();
    test_run(&mut attr).map_err(|e| anyhow::anyhow!("BPF_PROG_TEST_RUN with live frames: {e}"))?;
    Ok(started.elapsed())
}

/// A descriptor of the loaded program with id `id`.
pub fn prog_by_id(id: u32) -> Result<OwnedFd> {
    let mut attr: [u32; 4] = [id, 0, 0, 0];
    crate::sys::bpf_fd(BPF_PROG_GET_FD_BY_ID, &mut attr)
        .map_err(|e| anyhow::anyhow!("no program with id {id}: {e}"))
}

/// One measured case: a program, a frame, the verdict it must give.
pub struct Case<'a> {
    pub prog: BorrowedFd<'a>,
    pub frame: Vec<u8>,
    pub verdict: u32,
}

/// Median nanoseconds a packet for every case, measured interleaved.
pub fn measure(cases: &[Case<'_>]) -> Result<Vec<f64>> {
    for (i, c) in cases.iter().enumerate() {
        let (verdict, _) = run(c.prog, &c.frame, 1).with_context(|| format!("case {i}"))?;
        if verdict != c.verdict {
            bail!("case {i}: verdict {verdict}, expected {}", c.verdict);
        }
    }
    let mut samples = vec![Vec::with_capacity(ROUNDS); cases.len()];
    for _ in 0..ROUNDS {
        for (c, s) in cases.iter().zip(samples.iter_mut()) {
            s.push(run(c.prog, &c.frame, REPEAT)?.1);
        }
    }
    Ok(samples.iter_mut().map(|s| crate::median(s)).collect())
}

/// Attaches XDP program `prog` to interface `ifindex` (of the calling thread's namespace) in
/// native mode through a BPF link (BPF_LINK_CREATE); it stays attached while the returned
/// link lives.
pub fn attach_native(prog: BorrowedFd<'_>, ifindex: u32) -> Result<OwnedFd> {
    attach(prog, ifindex, XDP_FLAGS_DRV_MODE)
}

/// XDP attach modes (linux/if_link.h).
pub const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

/// [`attach_native`] in the mode of `flags`.
pub fn attach(prog: BorrowedFd<'_>, ifindex: u32, flags: u32) -> Result<OwnedFd> {
    const BPF_LINK_CREATE: libc::c_long = 28;
    const BPF_XDP: u32 = 37;
    // link_create: prog_fd, target_ifindex, attach_type, flags; the rest zero.
    let mut attr = [0u32; 16];
    attr[..4].copy_from_slice(&[prog.as_raw_fd() as u32, ifindex, BPF_XDP, flags]);
    crate::sys::bpf_fd(BPF_LINK_CREATE, &mut attr)
        .map_err(|e| anyhow::anyhow!("cannot attach the program: {e}"))
}
