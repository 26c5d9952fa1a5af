//! Loading the XDP program with maps sized for the plan, and attaching it to interfaces.
//!
//! A [`Filter`] owns the loaded program and its maps. Attachments are BPF links owned by the
//! program: dropping the `Filter` detaches from every interface and frees the maps.

use std::{ffi::CString, fmt};

use anyhow::{Context, Result, anyhow, bail};
use aya::{
    Ebpf, EbpfLoader,
    programs::{Xdp, XdpMode},
};
use filter_common::{
    ALL_MAPS, MAP_V4_ALLOW, MAP_V4_EXACT, MAP_V4_PREFIX, MAP_V6_ALLOW, MAP_V6_EXACT, MAP_V6_PREFIX,
    PROGRAM_BASELINE, PROGRAM_NAME,
};

use crate::plan::Plan;

/// How many entries each address map can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capacities {
    pub v4_exact: u32,
    pub v6_exact: u32,
    pub v4_prefix: u32,
    pub v6_prefix: u32,
    pub v4_allow: u32,
    pub v6_allow: u32,
}

/// Smallest size of any address map, so that small lists can grow without a reload.
pub const MIN_CAPACITY: u32 = 1024;

impl Capacities {
    /// Sizes for `plan` with 25% headroom (at least [`MIN_CAPACITY`]), each at most `max`.
    /// Fails, naming the map, when the plan needs more than `max` entries in one map.
    pub fn for_plan(plan: &Plan, max: u32) -> Result<Self> {
        let size = |name: &str, what: &str, n: usize| -> Result<u32> {
            if n > max as usize {
                bail!(
                    "the lists hold {n} {what}, more than the {name} map can hold ({max}); raise --max-entries"
                );
            }
            let wanted = (n + n / 4).max(MIN_CAPACITY as usize);
            Ok(wanted.min(max as usize) as u32)
        };
        Ok(Self {
            v4_exact: size(MAP_V4_EXACT, "exact IPv4 addresses", plan.v4_exact.len())?,
            v6_exact: size(MAP_V6_EXACT, "exact IPv6 addresses", plan.v6_exact.len())?,
            v4_prefix: size(MAP_V4_PREFIX, "IPv4 prefixes", plan.v4_prefix.len())?,
            v6_prefix: size(MAP_V6_PREFIX, "IPv6 prefixes", plan.v6_prefix.len())?,
            v4_allow: size(MAP_V4_ALLOW, "IPv4 allowlist entries", plan.v4_allow.len())?,
            v6_allow: size(MAP_V6_ALLOW, "IPv6 allowlist entries", plan.v6_allow.len())?,
        })
    }
}

/// Requested attach mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Native (driver) mode, falling back to generic mode where the driver lacks XDP.
    #[default]
    Auto,
    /// Native (driver) mode only.
    Native,
    /// Generic (skb) mode.
    Skb,
}

/// The mode an attachment actually got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attached {
    Native,
    Skb,
}

impl fmt::Display for Attached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Native => "native",
            Self::Skb => "skb (generic)",
        })
    }
}

/// The loaded XDP program and its maps.
pub struct Filter {
    ebpf: Ebpf,
}

impl Filter {
    /// Loads the embedded program with maps of the given sizes (not attached yet).
    pub fn load(caps: &Capacities) -> Result<Self> {
        let mut loader = EbpfLoader::new();
        loader
            .map_max_entries(MAP_V4_EXACT, caps.v4_exact)
            .map_max_entries(MAP_V6_EXACT, caps.v6_exact)
            .map_max_entries(MAP_V4_PREFIX, caps.v4_prefix)
            .map_max_entries(MAP_V6_PREFIX, caps.v6_prefix)
            .map_max_entries(MAP_V4_ALLOW, caps.v4_allow)
            .map_max_entries(MAP_V6_ALLOW, caps.v6_allow);
        let mut ebpf = loader
            .load(crate::EBPF_OBJECT)
            .map_err(|e| anyhow!("cannot create the filter's maps ({caps:?}): {e}"))?;
        for name in ALL_MAPS {
            if ebpf.map(name).is_none() {
                bail!("the embedded XDP program has no map {name}: rebuild takedown");
            }
        }
        let prog: &mut Xdp = ebpf
            .program_mut(PROGRAM_NAME)
            .context("the embedded object has no XDP program named takedown")?
            .try_into()?;
        prog.load().map_err(|e| anyhow!("the kernel rejected the XDP program: {e}"))?;
        Ok(Self { ebpf })
    }

    /// The loaded program (for BPF_PROG_TEST_RUN).
    pub fn program(&self) -> &Xdp {
        self.ebpf.program(PROGRAM_NAME).and_then(|p| p.try_into().ok()).expect("checked at load")
    }

    /// Loads (once) and returns the bare XDP_PASS program, for benchmarks.
    pub fn baseline(&mut self) -> Result<&Xdp> {
        let prog: &mut Xdp = self
            .ebpf
            .program_mut(PROGRAM_BASELINE)
            .context("the embedded object has no baseline program")?
            .try_into()?;
        if prog.fd().is_err() {
            prog.load()?;
        }
        Ok(prog)
    }

    fn program_mut(&mut self) -> &mut Xdp {
        self.ebpf
            .program_mut(PROGRAM_NAME)
            .and_then(|p| p.try_into().ok())
            .expect("checked at load")
    }

    /// The loaded object, for the sync and counter modules.
    pub fn ebpf(&self) -> &Ebpf {
        &self.ebpf
    }

    /// The loaded object, mutably.
    pub fn ebpf_mut(&mut self) -> &mut Ebpf {
        &mut self.ebpf
    }

    /// Attaches to `iface`. In auto mode, native first, then generic with a warning.
    pub fn attach(&mut self, iface: &str, mode: Mode) -> Result<Attached> {
        let prog = self.program_mut();
        let native = |prog: &mut Xdp| prog.attach(iface, XdpMode::Driver);
        match mode {
            Mode::Native => native(prog)
                .map(|_| Attached::Native)
                .map_err(|e| anyhow!("cannot attach in native mode to {iface}: {e}")),
            Mode::Skb => prog
                .attach(iface, XdpMode::Skb)
                .map(|_| Attached::Skb)
                .map_err(|e| anyhow!("cannot attach in skb mode to {iface}: {e}")),
            Mode::Auto => match native(prog) {
                Ok(_) => Ok(Attached::Native),
                Err(native_err) => {
                    log::warn!(
                        "native XDP is not available on {iface} ({native_err}); using generic (skb) mode"
                    );
                    prog.attach(iface, XdpMode::Skb)
                        .map(|_| Attached::Skb)
                        .map_err(|e| anyhow!("cannot attach to {iface}: {e}"))
                }
            },
        }
    }
}

/// Fails with one sentence when `iface` does not exist in this network namespace.
pub fn check_interface(iface: &str) -> Result<()> {
    let name = CString::new(iface).map_err(|_| anyhow!("invalid interface name {iface:?}"))?;
    // SAFETY: `name` is a valid NUL-terminated string.
    if unsafe { libc::if_nametoindex(name.as_ptr()) } == 0 {
        bail!("interface {iface} does not exist");
    }
    Ok(())
}
