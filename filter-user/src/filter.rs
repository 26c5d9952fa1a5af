//! Loading the XDP program with maps sized for the plan, and attaching it to interfaces.
//!
//! A [`Filter`] owns the loaded program and its maps. Attachments are BPF links owned by the
//! program: dropping the `Filter` detaches from every interface and frees the maps.

use std::{ffi::CString, fmt};

use anyhow::{Context, Result, anyhow, bail};
use aya::{
    Ebpf, EbpfLoader,
    programs::{
        Xdp, XdpMode,
        links::{FdLink, PinnedLink},
        xdp::XdpLink,
    },
};
use filter_common::{
    ALL_MAPS, MAP_V4_ALLOW, MAP_V4_EXACT, MAP_V4_PREFIX, MAP_V6_ALLOW, MAP_V6_EXACT, MAP_V6_PREFIX,
    PROGRAM_BASELINE, PROGRAM_NAME,
};

use crate::{pins::Pins, plan::Plan};

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

/// Smallest size of any address map. Maps are not preallocated, so headroom costs no memory:
/// it lets a running filter grow through refreshes without being rebuilt.
pub const MIN_CAPACITY: u32 = 1 << 20;

impl Capacities {
    /// Sizes for `plan`: twice what it needs (at least [`MIN_CAPACITY`]), each at most `max`.
    /// Fails, naming the map, when the plan needs more than `max` entries in one map.
    pub fn for_plan(plan: &Plan, max: u32) -> Result<Self> {
        let size = |name: &str, what: &str, n: usize| -> Result<u32> {
            if n > max as usize {
                bail!(
                    "the lists hold {n} {what}, more than the {name} map can hold ({max}); raise --max-entries"
                );
            }
            let wanted = (2 * n).max(MIN_CAPACITY as usize);
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

impl Capacities {
    /// Fails, naming the map, when `plan` does not fit these (pinned) sizes.
    pub fn check_fits(&self, plan: &Plan) -> Result<()> {
        for (name, cap, n) in [
            (MAP_V4_EXACT, self.v4_exact, plan.v4_exact.len()),
            (MAP_V6_EXACT, self.v6_exact, plan.v6_exact.len()),
            (MAP_V4_PREFIX, self.v4_prefix, plan.v4_prefix.len()),
            (MAP_V6_PREFIX, self.v6_prefix, plan.v6_prefix.len()),
            (MAP_V4_ALLOW, self.v4_allow, plan.v4_allow.len()),
            (MAP_V6_ALLOW, self.v6_allow, plan.v6_allow.len()),
        ] {
            if n > cap as usize {
                bail!(
                    "the pinned {name} map holds at most {cap} entries and the lists need {n}: \
                     `takedown detach` and start again to size the maps anew"
                );
            }
        }
        Ok(())
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
    /// A pinned attachment was found and its program replaced in place (atomically).
    Adopted,
}

impl fmt::Display for Attached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Native => "native",
            Self::Skb => "skb (generic)",
            Self::Adopted => "its existing (adopted)",
        })
    }
}

/// The loaded XDP program and its maps.
pub struct Filter {
    ebpf: Ebpf,
    pins: Option<Pins>,
}

impl Filter {
    /// Loads the embedded program with maps of the given sizes (not attached yet).
    pub fn load(caps: &Capacities) -> Result<Self> {
        Self::load_pinned(caps, None)
    }

    /// Loads the program; with `pins`, its maps are the pinned ones when they exist (with all
    /// their entries: adoption), else new ones that get pinned.
    pub fn load_pinned(caps: &Capacities, pins: Option<&Pins>) -> Result<Self> {
        let mut loader = EbpfLoader::new();
        if let Some(p) = pins {
            p.prepare()?;
            for name in ALL_MAPS {
                loader.map_pin_path(name, p.map(name));
            }
        }
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
        Ok(Self { ebpf, pins: pins.cloned() })
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

    /// Attaches to `iface`. In auto mode, native first, then generic with a warning. With pins,
    /// an existing pinned attachment is adopted (its program replaced atomically, no gap), and
    /// a new one is pinned so that it outlives this process.
    pub fn attach(&mut self, iface: &str, mode: Mode) -> Result<Attached> {
        let pin = self.pins.as_ref().map(|p| p.link(iface));
        let prog = self.program_mut();
        if let Some(path) = pin.as_ref().filter(|p| p.exists()) {
            let link = PinnedLink::from_pin(path)
                .map_err(|e| anyhow!("cannot open the pinned link of {iface}: {e}"))?;
            let link = XdpLink::try_from(FdLink::from(link))
                .map_err(|e| anyhow!("the pinned link of {iface} is not an XDP link: {e}"))?;
            prog.attach_to_link(link)
                .map_err(|e| anyhow!("cannot replace the program on {iface}: {e}"))?;
            return Ok(Attached::Adopted);
        }
        let try_mode = |prog: &mut Xdp, m: XdpMode| prog.attach(iface, m);
        let (id, got) = match mode {
            Mode::Native => try_mode(prog, XdpMode::Driver)
                .map(|id| (id, Attached::Native))
                .map_err(|e| anyhow!("cannot attach in native mode to {iface}: {e}"))?,
            Mode::Skb => try_mode(prog, XdpMode::Skb)
                .map(|id| (id, Attached::Skb))
                .map_err(|e| anyhow!("cannot attach in skb mode to {iface}: {e}"))?,
            Mode::Auto => match try_mode(prog, XdpMode::Driver) {
                Ok(id) => (id, Attached::Native),
                Err(native_err) => {
                    log::warn!(
                        "native XDP is not available on {iface} ({native_err}); using generic (skb) mode"
                    );
                    try_mode(prog, XdpMode::Skb)
                        .map(|id| (id, Attached::Skb))
                        .map_err(|e| anyhow!("cannot attach to {iface}: {e}"))?
                }
            },
        };
        if let Some(path) = pin {
            let link = prog.take_link(id)?;
            let fd_link = FdLink::try_from(link).map_err(|e| {
                anyhow!(
                    "the kernel attached {iface} without a BPF link, which cannot be pinned: {e}"
                )
            })?;
            fd_link.pin(&path).map_err(|e| {
                anyhow!("cannot pin the link of {iface} at {}: {e}", path.display())
            })?;
        }
        Ok(got)
    }

    /// Gives `iface` its own counter slot (1..=MAX_IFACES; 0 counts the rest).
    pub fn set_interface_slot(&mut self, iface: &str, slot: u32) -> Result<()> {
        let name = CString::new(iface).map_err(|_| anyhow!("invalid interface name {iface:?}"))?;
        // SAFETY: `name` is a valid NUL-terminated string.
        let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if index == 0 || index >= filter_common::MAX_IFINDEX || slot > filter_common::MAX_IFACES {
            return Ok(()); // counted in slot 0 with the others
        }
        let map = self.ebpf.map_mut(filter_common::MAP_IFSLOT).context("no interface slot map")?;
        let mut slots: aya::maps::Array<&mut aya::maps::MapData, u32> =
            aya::maps::Array::try_from(map)?;
        slots
            .set(index, slot, 0)
            .map_err(|e| anyhow!("cannot write {}: {e}", filter_common::MAP_IFSLOT))
    }

    /// Sets the event rate limit: `rate` events a second per CPU (0: none), bursts of `burst`.
    pub fn set_event_rate(&mut self, rate: u32, burst: u32) -> Result<()> {
        let map = self.ebpf.map_mut(filter_common::MAP_CONFIG).context("no config map")?;
        let mut config: aya::maps::Array<&mut aya::maps::MapData, u32> =
            aya::maps::Array::try_from(map)?;
        config.set(filter_common::CFG_EVENT_RATE, rate, 0)?;
        config.set(filter_common::CFG_EVENT_BURST, burst, 0)?;
        Ok(())
    }

    /// The kernel's id of the loaded program.
    pub fn program_id(&self) -> Option<u32> {
        self.program().info().ok().map(|i| i.id())
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
