//! The connection journal's contract: the kernel reports each new connection that passes
//! (a TCP SYN without ACK, in either direction; the first UDP datagram of a flow this CPU has
//! not seen lately) into a ring buffer, when the loader set [`CFG_JOURNAL`] in the config flags.

/// Ring buffer of [`Connection`] records (its size set by the loader: [`RING_BYTES`] with the
/// journal on, a page without).
pub const MAP_JOURNAL: &str = "TD_JOURNAL";
/// Per-CPU array of [`FLOW_SLOTS`] flow tags (one slot without the journal): the UDP flows this
/// CPU reported lately, direct-mapped by the flow's hash. A flood of one flow reports once.
pub const MAP_FLOWS: &str = "TD_FLOWS";
/// The journal's bit in the config flags word (`CFG_FLAGS`).
pub const CFG_JOURNAL: u32 = 1 << 4;
/// Slots of [`MAP_FLOWS`] with the journal on (a power of two).
pub const FLOW_SLOTS: u32 = 8192;
/// Bytes of [`MAP_JOURNAL`] with the journal on.
pub const RING_BYTES: u32 = 4 << 20;

/// A new connection the filter let pass.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Connection {
    /// IPv4 in the first 4 bytes.
    pub src: [u8; 16],
    pub dst: [u8; 16],
    /// The interface it arrived on (XDP) or leaves by (tc egress).
    pub ifindex: u32,
    pub sport: u16,
    pub dport: u16,
    /// IP protocol number (6 or 17).
    pub proto: u8,
    /// 4 or 6.
    pub family: u8,
    /// `CONN_*`.
    pub kind: u8,
    pub pad: u8,
}

/// Seen leaving by an interface (the tc egress program), not arriving.
pub const CONN_EGRESS: u8 = 1;

/// The tag of a UDP flow (never 0: an empty slot), from its addresses folded to 64 bits each
/// and its ports.
#[inline(always)]
pub const fn flow_tag(src: u64, dst: u64, sport: u16, dport: u16) -> u64 {
    let ports = ((sport as u64) << 16) | dport as u64;
    let h = (src ^ dst.rotate_left(29) ^ ports.rotate_left(47)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h | 1
}

/// The slot of [`MAP_FLOWS`] a tag lives in.
#[inline(always)]
pub const fn flow_slot(tag: u64) -> u32 {
    (tag >> 40) as u32 & (FLOW_SLOTS - 1)
}
