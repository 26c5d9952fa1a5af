//! The connection journal's contract: the XDP program reports each new connection that passes
//! (a TCP SYN without ACK, in either direction; the first UDP datagram of a flow, either way,
//! that the filter has not seen lately) into a ring buffer, when the loader set [`CFG_JOURNAL`]
//! in the config flags. Only arriving packets are reported (XDP, not the tc egress program): a
//! forwarded connection arrives once, on the interface it comes in by.

/// Ring buffer of [`Connection`] records (its size set by the loader: [`RING_BYTES`] with the
/// journal on, a page without).
pub const MAP_JOURNAL: &str = "TD_JOURNAL";
/// The program's zeroed data, which holds nothing but `TD_FLOW_TAGS`, [`FLOW_SLOTS`] flow tags:
/// the UDP flows reported lately, direct-mapped by the flow's hash. A flood of one flow
/// reports once. Not a map of its own: the program finds a slot by its address, without a
/// lookup (a map's lookup cost a datagram of a known flow about 1 ns more of a 36 ns miss;
/// a per-CPU map's, 2 ns); one array for every CPU, so a flow whose datagrams reach several
/// CPUs is reported once. Each load of the program has its own, empty; it is never pinned.
pub const MAP_FLOW_TAGS: &str = ".bss";
/// The journal's bit in the config flags word (`CFG_FLAGS`).
pub const CFG_JOURNAL: u32 = 1 << 4;
/// Slots of [`MAP_FLOW_TAGS`] (a power of two).
pub const FLOW_SLOTS: u32 = 1 << 16;
/// Bytes of [`MAP_JOURNAL`] with the journal on (without: a page).
pub const RING_BYTES: u32 = 4 << 20;

/// A new connection the filter let pass.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Connection {
    /// Kernel monotonic time (coarse), nanoseconds.
    pub ts_ns: u64,
    /// IPv4 in the first 4 bytes.
    pub src: [u8; 16],
    pub dst: [u8; 16],
    /// The interface it arrived on.
    pub ifindex: u32,
    pub sport: u16,
    pub dport: u16,
    /// IP protocol number (6 or 17).
    pub proto: u8,
    /// 4 or 6.
    pub family: u8,
    pub pad: [u8; 2],
}

/// The tag of a UDP flow (never 0: an empty slot), from each end's address folded to 64 bits
/// and port: the same for both directions, so that a reply is not a new flow (the ends'
/// product and sum: one multiplication, a few instructions on every datagram).
#[inline(always)]
pub const fn flow_tag(src: u64, dst: u64, sport: u16, dport: u16) -> u64 {
    let (a, b) = (flow_end(src, sport), flow_end(dst, dport));
    (a.wrapping_mul(b) ^ a.wrapping_add(b)) | 1
}

/// One end of a flow: its address and port in one word.
#[inline(always)]
const fn flow_end(addr: u64, port: u16) -> u64 {
    addr ^ ((port as u64) << 32)
}

/// The slot of [`MAP_FLOW_TAGS`] a tag lives in.
#[inline(always)]
pub const fn flow_slot(tag: u64) -> u32 {
    (tag >> 40) as u32 & (FLOW_SLOTS - 1)
}
