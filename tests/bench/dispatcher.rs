//! Programs held in the kernel's XDP dispatcher while they are measured, so that a
//! BPF_PROG_TEST_RUN call lasts as long as its packets: a program attached nowhere is put
//! into the dispatcher and taken out again by every call, each change a wait for an RCU grace
//! period (about 12 ms a call on this machine kind, in steps of the 4 ms tick), which made the
//! call's length useless as a clock. Each program is attached (generic mode) to a veth of a
//! namespace made here; no packet is sent; the namespace goes with [`Held`].

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use anyhow::{Context, Result};
use td_netns::{NetNs, in_netns};

use crate::testrun;

/// The dispatcher's room (BPF_DISPATCHER_MAX): programs beyond it are called without it.
const ROOM: usize = 48;

/// Programs attached to the veths of a namespace of their own, while this lives.
pub struct Held {
    // Dropped first: the links, then the namespace (whose deletion would detach them too).
    _links: Vec<OwnedFd>,
    _ns: NetNs,
}

impl Held {
    /// Attaches each of `progs` to a veth of its own.
    pub fn new(progs: &[BorrowedFd<'_>]) -> Result<Self> {
        anyhow::ensure!(
            progs.len() <= ROOM,
            "{} programs: the dispatcher holds {ROOM}",
            progs.len()
        );
        let ns = NetNs::new("tdh")?;
        let mut links = Vec::with_capacity(progs.len());
        for (i, prog) in progs.iter().enumerate() {
            let (a, b) = (format!("tdh{i}a"), format!("tdh{i}b"));
            ns.ip(&["link", "add", &a, "type", "veth", "peer", "name", &b])?;
            ns.ip(&["link", "set", &a, "up"])?;
            let prog = prog.try_clone_to_owned()?;
            let link = in_netns(&ns, move || {
                let name = std::ffi::CString::new(a)?;
                // SAFETY: a NUL-terminated name.
                let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
                anyhow::ensure!(index != 0, "no interface {name:?}");
                testrun::attach(prog.as_fd(), index, testrun::XDP_FLAGS_SKB_MODE)
            })
            .with_context(|| format!("holding program {i} in the dispatcher"))?;
            links.push(link);
        }
        Ok(Self { _links: links, _ns: ns })
    }
}
