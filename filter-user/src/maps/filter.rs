//! Loading the XDP program with maps sized for the plan, and attaching it to interfaces.
//!
//! A [`Filter`] owns the loaded program and its maps. Attachments are BPF links owned by the
//! program: dropping the `Filter` detaches from every interface and frees the maps.

use std::fmt;

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
    ADDRESS_MAPS, ALL_MAPS, Family, HINT_WORDS, MAP_FLOW_TAGS, MAP_JOURNAL, MAP_V4_HINTS,
    PROGRAM_BASELINE, PROGRAM_NAME, RING_BYTES, table4::TABLES, v4_bucket_count,
};

use super::{FilterMaps, pins::Pins, sync::Overflow};
use crate::plan::{Plan, diff::Diff};

/// How many entries each address map can hold, in `ADDRESS_MAPS` order; and whether the IPv4
/// prefix hints are in use (created at full size: when the plan holds IPv4 prefixes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Capacities {
    pub tables: [u32; ADDRESS_MAPS.len()],
    pub hints: bool,
    /// The connection journal's ring is full size.
    pub journal: bool,
}

/// Smallest size of an IPv4 map, and of an IPv6 one (fewer: an IPv6 entry with its key takes
/// 61 bytes, an IPv4 one 37, tables being allocated whole). A plan that outgrows the maps
/// moves to larger ones (see `start::grow`).
pub const MIN_CAPACITY: u32 = 1 << 14;
pub const MIN_CAPACITY_V6: u32 = 1 << 12;

impl Capacities {
    /// Sizes for `plan`: an eighth more than it needs (at least [`MIN_CAPACITY`], or
    /// [`MIN_CAPACITY_V6`]), each at most `max`.
    /// Fails, naming the map, when the plan needs more than `max` entries in one map.
    pub fn for_plan(plan: &Plan, max: u32) -> Result<Self> {
        let mut caps = Self { hints: !plan.v4.prefix.is_empty(), ..Self::default() };
        for (cap, m) in caps.tables.iter_mut().zip(&ADDRESS_MAPS) {
            let n = plan.count(m);
            if n > max as usize {
                bail!(
                    "the lists hold {n} {}, more than the {} map can hold ({max}); raise --max-entries",
                    m.what,
                    m.name
                );
            }
            let min = if m.family == Family::V6 { MIN_CAPACITY_V6 } else { MIN_CAPACITY };
            *cap = (n + n / 8).max(min as usize).min(max as usize) as u32;
        }
        Ok(caps)
    }

    /// The capacity of the address map named `name` (0 for no address map).
    pub fn of(&self, name: &str) -> u32 {
        ADDRESS_MAPS.iter().position(|m| m.name == name).map_or(0, |i| self.tables[i])
    }

    /// The same sizes, with the connection journal's ring full size when `on`.
    pub fn with_journal(self, on: bool) -> Self {
        Self { journal: on, ..self }
    }

    /// True when `plan` holds IPv4 prefixes and the maps have no prefix hints: correct (the
    /// kernel searches the lengths), but slower; a new start moves to maps with hints.
    pub fn lacks_hints(&self, plan: &Plan) -> bool {
        !self.hints && !plan.v4.prefix.is_empty()
    }

    /// The first address map that moving from `old` (what the maps hold) by `diff` overflows
    /// (new entries are written before gone ones are deleted).
    pub fn overflow(&self, old: &Plan, diff: &Diff) -> Option<Overflow> {
        self.tables
            .iter()
            .zip(&ADDRESS_MAPS)
            .map(|(cap, m)| Overflow {
                map: m.name,
                cap: *cap,
                needs: old.count(m) + diff.inserts(m),
            })
            .find(|o| o.needs > o.cap as usize)
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
            Self::Adopted => "adopted",
        })
    }
}

/// The loaded XDP program and its maps.
pub struct Filter {
    pub(super) ebpf: Ebpf,
    maps: FilterMaps,
    pub(super) pins: Option<Pins>,
    /// The pinned links (what they attach, where they are pinned), held open: removing their
    /// pins does not detach them, and they can be pinned again.
    pub(super) links: Vec<(String, std::path::PathBuf, FdLink)>,
}

impl Filter {
    /// Loads the embedded program with new maps of the given sizes (not attached, not pinned).
    pub fn load(caps: &Capacities) -> Result<Self> {
        Self::load_filled(caps, |_| Ok(()))
    }

    /// [`Filter::load`], the maps passed to `fill` while the kernel verifies the program.
    pub fn load_filled(
        caps: &Capacities,
        fill: impl FnOnce(&mut FilterMaps) -> Result<()>,
    ) -> Result<Self> {
        let (ebpf, maps) = load_object(crate::EBPF_OBJECT, caps, None, fill)?;
        Ok(Self { ebpf, maps, pins: None, links: Vec::new() })
    }

    /// [`Filter::load`] of another build of the program (the benchmark's, without a feature).
    pub fn load_built(object: &[u8], caps: &Capacities) -> Result<Self> {
        let (ebpf, maps) = load_object(object, caps, None, |_| Ok(()))?;
        Ok(Self { ebpf, maps, pins: None, links: Vec::new() })
    }

    /// Loads the program on the maps pinned at `pins`, with all their entries (adoption).
    pub fn adopt(caps: &Capacities, pins: &Pins) -> Result<Self> {
        let (ebpf, maps) = load_object(crate::EBPF_OBJECT, caps, Some(pins), |_| Ok(()))?;
        Ok(Self { ebpf, maps, pins: Some(pins.clone()), links: Vec::new() })
    }

    /// Loads the program with new maps, passing them to `fill` (while the kernel verifies the
    /// program) before they are pinned at `pins` (so that pins never show half a list), then
    /// pins them.
    pub fn load_pinned(
        caps: &Capacities,
        pins: &Pins,
        fill: impl FnOnce(&mut FilterMaps) -> Result<()>,
    ) -> Result<Self> {
        let (ebpf, maps) = load_object(crate::EBPF_OBJECT, caps, None, fill)?;
        maps.pin(pins)?;
        Ok(Self { ebpf, maps, pins: Some(pins.clone()), links: Vec::new() })
    }

    /// The filter's maps.
    pub fn maps(&self) -> &FilterMaps {
        &self.maps
    }

    /// The filter's maps, to write them (through `sync`) or set its settings.
    pub fn maps_mut(&mut self) -> &mut FilterMaps {
        &mut self.maps
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

    /// Attaches to `iface`. In auto mode, native first, then generic with a warning. With pins,
    /// an existing pinned attachment is adopted (its program replaced atomically, no gap), and
    /// a new one is pinned so that it outlives this process.
    pub fn attach(&mut self, iface: &str, mode: Mode) -> Result<Attached> {
        let got = self.attach_once(iface, mode)?;
        if let Some(path) = self.pins.as_ref().map(|p| p.link(iface)) {
            self.hold(iface, path)?;
        }
        Ok(got)
    }

    /// Holds the link pinned at `path` (what `what` attaches) open.
    pub(super) fn hold(&mut self, what: &str, path: std::path::PathBuf) -> Result<()> {
        let held = PinnedLink::from_pin(&path)
            .map_err(|e| anyhow!("cannot hold the link of {what}: {e}"))?;
        self.links.retain(|(_, p, _)| *p != path);
        self.links.push((what.to_string(), path, FdLink::from(held)));
        Ok(())
    }

    /// What pins were lost (maps, or the links of the interfaces this filter holds), if any.
    pub fn lost_pins(&self) -> Option<String> {
        let pins = self.pins.as_ref()?;
        let links = self.links.iter().filter(|(_, p, _)| !p.exists());
        let mut lost: Vec<String> = links.map(|(i, _, _)| format!("the link of {i}")).collect();
        if !pins.has_maps() {
            lost.insert(0, "the maps".into());
        }
        (!lost.is_empty()).then(|| format!("{} under {}", lost.join(", "), pins.dir().display()))
    }

    /// Pins the maps and held links again (after their pins were removed).
    pub fn pin_again(&mut self) -> Result<()> {
        let Some(pins) = self.pins.clone() else { return Ok(()) };
        self.maps.pin(&pins)?;
        for (what, path, link) in std::mem::take(&mut self.links) {
            let link = match path.exists() {
                true => link,
                false => FdLink::from(link.pin(&path).map_err(|e| {
                    anyhow!("cannot pin the link of {what} at {}: {e}", path.display())
                })?),
            };
            self.links.push((what, path, link));
        }
        Ok(())
    }

    fn attach_once(&mut self, iface: &str, mode: Mode) -> Result<Attached> {
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
        let failed = |how: &str, e: aya::programs::ProgramError| attach_error(iface, how, &e);
        let (id, got) = match mode {
            Mode::Native => try_mode(prog, XdpMode::Driver)
                .map(|id| (id, Attached::Native))
                .map_err(|e| failed("in native mode ", e))?,
            Mode::Skb => try_mode(prog, XdpMode::Skb)
                .map(|id| (id, Attached::Skb))
                .map_err(|e| failed("in skb mode ", e))?,
            Mode::Auto => match try_mode(prog, XdpMode::Driver) {
                Ok(id) => (id, Attached::Native),
                Err(e) if busy(&e) => return Err(failed("", e)),
                Err(native_err) => {
                    let why = causes(&native_err);
                    log::warn!(
                        "native XDP is not available on {iface} ({why}); using generic (skb) mode"
                    );
                    try_mode(prog, XdpMode::Skb)
                        .map(|id| (id, Attached::Skb))
                        .map_err(|e| failed("", e))?
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
        let index = super::interface::index(iface)?;
        if index == 0 || index >= filter_common::MAX_IFINDEX || slot > filter_common::MAX_IFACES {
            return Ok(()); // counted in slot 0 with the others
        }
        self.maps.set_interface_slot(index, slot)
    }

    /// The kernel's id of the loaded program.
    pub fn program_id(&self) -> Option<u32> {
        self.program().info().ok().map(|i| i.id())
    }
}

/// An error with every cause, in one line (aya's errors keep the errno in their source).
fn causes(e: &dyn std::error::Error) -> String {
    let chain = std::iter::successors(Some(e), |c| c.source());
    chain.map(ToString::to_string).collect::<Vec<_>>().join(": ")
}

/// True when the interface already holds another XDP program (EBUSY, EEXIST).
fn busy(e: &aya::programs::ProgramError) -> bool {
    std::iter::successors(Some(e as &dyn std::error::Error), |c| c.source()).any(|c| {
        let errno = c.downcast_ref::<std::io::Error>().and_then(std::io::Error::raw_os_error);
        matches!(errno, Some(libc::EBUSY | libc::EEXIST))
    })
}

/// One sentence for a failed attachment, naming the cause and, where known, the fix.
fn attach_error(iface: &str, how: &str, e: &aya::programs::ProgramError) -> anyhow::Error {
    if busy(e) {
        return anyhow!(
            "cannot attach {how}to {iface}: another XDP program is attached there; remove it \
             (`ip link set dev {iface} xdp off`) or `takedown detach` the filter that holds it"
        );
    }
    anyhow!("cannot attach {how}to {iface}: {}", causes(e))
}

/// Creates the object's maps (the address maps `caps` sizes; the pinned maps of `reuse`,
/// where given), hands them to `fill` while the kernel verifies the program on another
/// thread, and returns both once both are done.
fn load_object(
    object: &[u8],
    caps: &Capacities,
    reuse: Option<&Pins>,
    fill: impl FnOnce(&mut FilterMaps) -> Result<()>,
) -> Result<(Ebpf, FilterMaps)> {
    let mut ebpf = create(object, caps, reuse)?;
    let mut maps = super::take_all(&mut ebpf)?;
    // The program's zeroed data: the journal's flow tags (none in a build without the journal).
    if let Some(tags) = ebpf.take_map(MAP_FLOW_TAGS) {
        maps.insert(MAP_FLOW_TAGS, tags);
    }
    let mut maps = FilterMaps::new(maps)?;
    maps.set_geometry()?;
    let (verified, filled) = std::thread::scope(|s| {
        let verifier = s.spawn(|| verify(&mut ebpf));
        let filled = fill(&mut maps);
        (verifier.join(), filled)
    });
    verified.map_err(|_| anyhow!("the program load panicked"))??;
    filled?;
    Ok((ebpf, maps))
}

/// The object with its maps created (not its program).
fn create(object: &[u8], caps: &Capacities, reuse: Option<&Pins>) -> Result<Ebpf> {
    let mut loader = EbpfLoader::new();
    if let Some(p) = reuse {
        p.prepare()?;
        for name in ALL_MAPS {
            loader.map_pin_path(name, p.map(name));
        }
    }
    for (cap, m) in caps.tables.iter().zip(&ADDRESS_MAPS) {
        loader.map_max_entries(m.name, *cap);
        if let Some(t) = TABLES.iter().find(|t| t.values == m.name) {
            loader.map_max_entries(t.buckets, v4_bucket_count(*cap));
            t.keys.map(|k| loader.map_max_entries(k, *cap));
        }
    }
    loader.map_max_entries(MAP_V4_HINTS, if caps.hints { HINT_WORDS } else { 1 });
    let exact_v4 = caps.of(filter_common::MAP_V4_EXACT);
    loader.map_max_entries(filter_common::MAP_V4_EXACTS, filter_common::v4_exacts_words(exact_v4));
    // SAFETY: sysconf has no preconditions. A ring is a whole number of pages.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u32;
    loader.map_max_entries(MAP_JOURNAL, if caps.journal { RING_BYTES.max(page) } else { page });
    loader.load(object).map_err(|e| anyhow!("cannot create the filter's maps ({caps:?}): {e}"))
}

/// Loads the XDP program into the kernel, which verifies it.
fn verify(ebpf: &mut Ebpf) -> Result<()> {
    let prog: &mut Xdp = ebpf
        .program_mut(PROGRAM_NAME)
        .context("the embedded object has no XDP program named takedown")?
        .try_into()?;
    prog.load().map_err(|e| anyhow!("the kernel rejected the XDP program: {e}"))
}
