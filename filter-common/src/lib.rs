//! The contract between the takedown XDP program and user space.
//!
//! Map names, key and value layouts, flags and counter indices live here once and are used by
//! both sides (design promise 8). Nothing here has logic beyond layout helpers.
#![no_std]

/// Exact IPv4 addresses: key [`V4Key`], value [`EntryValue`] (BPF hash map).
pub const MAP_V4_EXACT: &str = "TD_V4_EXACT";
/// Exact IPv6 addresses: key [`V6Key`], value [`EntryValue`] (BPF hash map).
pub const MAP_V6_EXACT: &str = "TD_V6_EXACT";
/// IPv4 prefixes shorter than /32: LPM trie keyed by (prefix length, [`V4Key`]).
pub const MAP_V4_PREFIX: &str = "TD_V4_PREFIX";
/// IPv6 prefixes shorter than /128: LPM trie keyed by (prefix length, [`V6Key`]).
pub const MAP_V6_PREFIX: &str = "TD_V6_PREFIX";
/// IPv4 allowlist (never dropped): LPM trie keyed by (prefix length, [`V4Key`]), value `u32` 0.
pub const MAP_V4_ALLOW: &str = "TD_V4_ALLOW";
/// IPv6 allowlist (never dropped): LPM trie keyed by (prefix length, [`V6Key`]), value `u32` 0.
pub const MAP_V6_ALLOW: &str = "TD_V6_ALLOW";
/// Per-CPU array of [`Counter`], indexed by the `CNT_*` constants.
pub const MAP_COUNTERS: &str = "TD_COUNTERS";
/// Array with one `u32` of `CFG_*` flags, written by the loader.
pub const MAP_CONFIG: &str = "TD_CONFIG";
/// The XDP program's name in the object file.
pub const PROGRAM_NAME: &str = "takedown";
/// A bare `XDP_PASS` program in the same object: the benchmark's baseline, never attached.
pub const PROGRAM_BASELINE: &str = "takedown_baseline";

/// Every map the program defines, for load-time checks.
pub const ALL_MAPS: [&str; 8] = [
    MAP_V4_EXACT,
    MAP_V6_EXACT,
    MAP_V4_PREFIX,
    MAP_V6_PREFIX,
    MAP_V4_ALLOW,
    MAP_V6_ALLOW,
    MAP_COUNTERS,
    MAP_CONFIG,
];

/// An IPv4 address as it appears on the wire (network byte order).
pub type V4Key = [u8; 4];
/// An IPv6 address as it appears on the wire.
pub type V6Key = [u8; 16];

/// The entry blocks packets whose source address matches it.
pub const FLAG_SRC: u32 = 1;
/// The entry blocks packets whose destination address matches it.
pub const FLAG_DST: u32 = 1 << 1;
/// The entry blocks both directions (the default).
pub const FLAG_BOTH: u32 = FLAG_SRC | FLAG_DST;

/// Most lists one filter can tell apart (bits of [`EntryValue::lists`]).
pub const MAX_LISTS: usize = 64;

/// The value of every address map entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EntryValue {
    /// `FLAG_*` bits.
    pub flags: u32,
    /// Reserved, zero.
    pub reserved: u32,
    /// Bit i set: list i (in the loader's numbering) holds this entry or one that covers it.
    pub lists: u64,
}

impl EntryValue {
    /// A value with the given direction flags and list bits.
    pub const fn new(flags: u32, lists: u64) -> Self {
        Self { flags, reserved: 0, lists }
    }
}

/// Packets and bytes, one slot per CPU in [`MAP_COUNTERS`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counter {
    pub packets: u64,
    pub bytes: u64,
}

/// Packets that passed (no entry matched).
pub const CNT_PASSED: u32 = 0;
/// Packets dropped because the source address is listed.
pub const CNT_DROP_SRC: u32 = 1;
/// Packets dropped because the destination address is listed.
pub const CNT_DROP_DST: u32 = 2;
/// Packets that are neither IPv4 nor IPv6 (passed).
pub const CNT_NON_IP: u32 = 3;
/// Packets whose headers are truncated or malformed (passed: fail-open).
pub const CNT_MALFORMED: u32 = 4;
/// Number of counter slots.
pub const CNT_COUNT: u32 = 5;
/// Counter names in index order, for display.
pub const CNT_NAMES: [&str; CNT_COUNT as usize] =
    ["passed", "dropped_src", "dropped_dst", "non_ip", "malformed"];

/// Index of the flags word in [`MAP_CONFIG`].
pub const CFG_FLAGS: u32 = 0;
/// Number of slots in [`MAP_CONFIG`].
pub const CFG_COUNT: u32 = 1;
/// The IPv4 prefix trie holds entries: look it up.
pub const CFG_V4_PREFIXES: u32 = 1;
/// The IPv6 prefix trie holds entries: look it up.
pub const CFG_V6_PREFIXES: u32 = 1 << 1;
/// The IPv4 allowlist holds entries: check a listed address against it before dropping.
pub const CFG_V4_ALLOW: u32 = 1 << 2;
/// The IPv6 allowlist holds entries: likewise.
pub const CFG_V6_ALLOW: u32 = 1 << 3;

#[cfg(feature = "user")]
mod pod {
    // SAFETY: plain `repr(C)` structs of integers without padding.
    unsafe impl aya::Pod for super::EntryValue {}
    unsafe impl aya::Pod for super::Counter {}
}
