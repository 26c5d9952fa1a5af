//! The tc egress program (`--egress`): the same lookups for what leaves an interface, so that
//! what the gateway itself sends (its resolver, its proxies, malware on it) is filtered too.
//! Attached with a TCX link, pinned under `egress/<iface>` and adopted like the XDP links.

use anyhow::{Context, Result, anyhow};
use aya::{
    Ebpf,
    programs::{
        SchedClassifier, TcAttachType,
        links::{FdLink, PinnedLink},
        tc::SchedClassifierLink,
    },
};
use filter_common::PROGRAM_EGRESS;

use super::filter::Filter;

/// The egress program of the object, loaded on first use (it shares the XDP program's maps;
/// a filter without `--egress` does not pay for its verification).
fn program(ebpf: &mut Ebpf) -> Result<&mut SchedClassifier> {
    let prog =
        ebpf.program_mut(PROGRAM_EGRESS).context("the embedded object has no egress program")?;
    let prog: &mut SchedClassifier = prog.try_into()?;
    if prog.fd().is_err() {
        prog.load().map_err(|e| anyhow!("the kernel rejected the tc egress program: {e}"))?;
    }
    Ok(prog)
}

impl Filter {
    /// The egress program, loaded (for BPF_PROG_TEST_RUN).
    pub fn egress_program(&mut self) -> Result<&SchedClassifier> {
        Ok(program(&mut self.ebpf)?)
    }

    /// Attaches the egress program to `iface`. With pins, a pinned egress link is adopted (its
    /// program replaced atomically) and a new one is pinned.
    pub fn attach_egress(&mut self, iface: &str) -> Result<()> {
        let pin = self.pins.as_ref().map(|p| p.egress_link(iface));
        let prog = program(&mut self.ebpf)?;
        let failed =
            |e: aya::programs::ProgramError| anyhow!("cannot attach tc egress to {iface}: {e}");
        if let Some(path) = pin.as_ref().filter(|p| p.exists()) {
            let link = PinnedLink::from_pin(path)
                .map_err(|e| anyhow!("cannot open the pinned egress link of {iface}: {e}"))?;
            let link = SchedClassifierLink::try_from(FdLink::from(link))
                .map_err(|e| anyhow!("the pinned egress link of {iface} is not a TCX link: {e}"))?;
            prog.attach_to_link(link).map_err(failed)?;
        } else {
            let id = prog.attach(iface, TcAttachType::Egress).map_err(failed)?;
            if let Some(path) = &pin {
                let link = FdLink::try_from(prog.take_link(id)?).map_err(|e| {
                    anyhow!("the egress attachment of {iface} cannot be pinned: {e}")
                })?;
                link.pin(path).map_err(|e| {
                    anyhow!("cannot pin the egress link of {iface} at {}: {e}", path.display())
                })?;
            }
        }
        if let Some(path) = pin {
            self.hold(&format!("{iface} (egress)"), path)?;
        }
        Ok(())
    }
}
