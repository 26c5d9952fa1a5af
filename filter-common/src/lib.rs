//! The contract between the takedown XDP program and user space.
//!
//! Map names, key and value layouts, flags and counter indices live here once and are used by
//! both sides (design promise 8). Nothing here has logic beyond layout helpers.
#![no_std]

mod hits;
mod journal;
mod near;
mod record;
pub mod table4;
pub use hits::*;
pub use journal::*;
pub use near::*;
pub use record::Record;
pub use table4::{Bucket, v4_bucket_count};

/// Exact IPv4 addresses' values: array of [`EntryValue`] (mmapable), by the index a slot of
/// [`MAP_V4_BUCKETS`] gives (see [`table4`]).
pub const MAP_V4_EXACT: &str = "TD_V4_EXACT";
/// Exact IPv4 addresses: array of [`Bucket`]s (mmapable), [`v4_bucket_count`] of them.
pub const MAP_V4_BUCKETS: &str = "TD_V4_BUCKETS";
/// Exact IPv6 addresses' values: array of [`EntryValue`] (mmapable), by the index a slot of
/// [`MAP_V6_BUCKETS`] gives (see [`table4`]).
pub const MAP_V6_EXACT: &str = "TD_V6_EXACT";
/// Exact IPv6 addresses: array of [`Bucket`]s (mmapable), by a hash of the address; and
/// the keys, array of [`table4::V6Stored`] (mmapable), beside the values.
pub const MAP_V6_BUCKETS: &str = "TD_V6_BUCKETS";
pub const MAP_V6_KEYS: &str = "TD_V6_KEYS";
/// IPv4 prefixes shorter than /32: their values, array of [`EntryValue`] (mmapable), by the
/// index a slot of [`MAP_V4_PREFIX_BUCKETS`] gives (see [`table4`]).
pub const MAP_V4_PREFIX: &str = "TD_V4_PREFIX";
/// IPv4 prefixes shorter than /32: array of [`Bucket`]s (mmapable), [`v4_bucket_count`] of
/// them, keyed by [`table4::v4_prefix_word`].
pub const MAP_V4_PREFIX_BUCKETS: &str = "TD_V4_PREFIX_BUCKETS";
/// Array of [`LENS_SLOTS`] [`LenMask`], one per /16: the lengths (0..=31) of the prefixes in
/// [`MAP_V4_PREFIX`] that overlap it, and length 32 when [`MAP_V4_EXACT`] holds an address in
/// it (the kernel skips the exact lookup otherwise, when prefixes are loaded).
pub const MAP_V4_LENS: &str = "TD_V4_LENS";
/// IPv6 prefixes shorter than /128: their values, array of [`EntryValue`] (mmapable), by the
/// index a slot of [`MAP_V6_PREFIX_BUCKETS`] gives (see [`table4`]).
pub const MAP_V6_PREFIX: &str = "TD_V6_PREFIX";
/// IPv6 prefixes: array of [`Bucket`]s (mmapable), by a hash of (length, prefix); and the
/// keys, array of [`table4::V6Stored`] (mmapable), beside the values.
pub const MAP_V6_PREFIX_BUCKETS: &str = "TD_V6_PREFIX_BUCKETS";
pub const MAP_V6_PREFIX_KEYS: &str = "TD_V6_PREFIX_KEYS";
/// Array of [`LENS_SLOTS`] [`LenMask`], the lengths of the prefixes in [`MAP_V6_PREFIX`] by
/// tiers ([`V6_TIERS`]): in the slot of each key of its tier that a prefix covers
/// ([`v6_lens_slot`]), its length, longest first ([`LenMask::of_v6`]).
pub const MAP_V6_LENS: &str = "TD_V6_LENS";
/// IPv4 allowlist (never dropped): LPM trie keyed by (prefix length, [`V4Key`]), value `u32` 0.
pub const MAP_V4_ALLOW: &str = "TD_V4_ALLOW";
/// IPv6 allowlist (never dropped): LPM trie keyed by (prefix length, [`V6Key`]), value `u32` 0.
pub const MAP_V6_ALLOW: &str = "TD_V6_ALLOW";
/// Per-CPU array of [`Counter`], indexed by `slot * CNT_COUNT + CNT_*` (see [`counter_index`]).
pub const MAP_COUNTERS: &str = "TD_COUNTERS";
/// Per-CPU array of [`Counter`]: packets and bytes matched per list and direction, indexed
/// by [`list_counter_index`].
pub const MAP_LIST_COUNTERS: &str = "TD_LIST_COUNTERS";
/// Array of `u32` indexed by interface index: the interface's counter slot (0: other).
pub const MAP_IFSLOT: &str = "TD_IFSLOT";
/// Ring buffer of [`Event`]s: packets dropped or monitored because of an entry.
pub const MAP_EVENTS: &str = "TD_EVENTS";
/// Per-CPU array with one [`RateState`]: the event budget.
pub const MAP_RATE: &str = "TD_RATE";
/// Array with one `u32` of `CFG_*` flags, written by the loader.
pub const MAP_CONFIG: &str = "TD_CONFIG";
/// IPv4 prefilter: array of [`FILTER_WORDS`] `u64`s, one bit per /24 ([`v4_filter_bit`]). A
/// clear bit means no entry covers any address of that /24: the lookups are skipped.
pub const MAP_V4_FILTER: &str = "TD_V4_FILTER";
/// IPv6 prefilter: the same, one bit per hash of the /32 ([`v6_filter_bit_of`]).
pub const MAP_V6_FILTER: &str = "TD_V6_FILTER";
/// IPv4 allowlist prefilter: [`ALLOWED_WORDS`] `u64`s, a bit per /20 (a prefilter bit shifted
/// by [`ALLOWED_SHIFT`]), set where an allowlist entry may cover an address. A clear bit: a
/// listed address there is dropped without a trie lookup.
pub const MAP_V4_ALLOWED: &str = "TD_V4_ALLOWED";
/// IPv6 allowlist prefilter: the same, a bit per 16 hashes of a /32.
pub const MAP_V6_ALLOWED: &str = "TD_V6_ALLOWED";
/// IPv4 prefix prefilter: like [`MAP_V4_FILTER`], for the prefixes alone. A clear bit: no
/// prefix covers that /24, and an address there that is not listed itself is a miss without
/// a prefix search.
pub const MAP_V4_PREFIXED: &str = "TD_V4_PREFIXED";
/// IPv4 prefix hints: array of `u64`, [`HINT_WORDS`] of them when IPv4 prefixes were loaded
/// with the program (one word otherwise: no hints). A byte per /24 ([`v4_hint_at`]): the
/// longest prefix of at most /24 that covers it ([`hint_of_len`] in [`HINT_LEN`]; 0: none),
/// [`HINT_LONG`] when a longer prefix lies in it, [`HINT_EXACT`] when an exact address does.
/// The kernel looks the exact table up only under that flag, probes the hinted length alone,
/// and searches the lengths only when a longer prefix lies there or the probe fails (an entry
/// not written yet).
pub const MAP_V4_HINTS: &str = "TD_V4_HINTS";
/// IPv6 prefix prefilter.
pub const MAP_V6_PREFIXED: &str = "TD_V6_PREFIXED";
/// IPv4 exact-address prefilter: [`v4_exacts_words`] of the exact table's capacity `u64`s (the
/// count in the config flags' top bits, [`v4_exacts_in_flags`]), four bits per address in one
/// word ([`v4_exacts_of`]), set for every exact address: an address with any of its four bits
/// clear is not looked up in the exact table (a miss next to a listed address costs one load
/// more than a miss, not a table probe).
pub const MAP_V4_EXACTS: &str = "TD_V4_EXACTS";
/// IPv6 exact-address prefilter: [`V6_EXACTS_WORDS`] `u64`s, a bit per 16 hashes of a /32
/// ([`v6_exacts_bit_of`]): with IPv6 prefixes loaded, no probe of [`MAP_V6_EXACT`] where clear.
pub const MAP_V6_EXACTS: &str = "TD_V6_EXACTS";
/// The XDP program's name in the object file.
pub const PROGRAM_NAME: &str = "takedown";
/// The tc egress program's name in the object file (what the gateway itself sends).
pub const PROGRAM_EGRESS: &str = "takedown_egress";
/// A bare `XDP_PASS` program in the same object: the benchmark's baseline, never attached.
pub const PROGRAM_BASELINE: &str = "takedown_baseline";

/// Every map the program defines, for load-time checks.
pub const ALL_MAPS: [&str; 31] = [
    MAP_HITS,
    MAP_JOURNAL,
    MAP_V4_EXACT,
    MAP_V4_BUCKETS,
    MAP_V6_EXACT,
    MAP_V4_PREFIX,
    MAP_V4_PREFIX_BUCKETS,
    MAP_V6_PREFIX,
    MAP_V4_ALLOW,
    MAP_V6_ALLOW,
    MAP_COUNTERS,
    MAP_CONFIG,
    MAP_LIST_COUNTERS,
    MAP_IFSLOT,
    MAP_EVENTS,
    MAP_RATE,
    MAP_V4_FILTER,
    MAP_V6_FILTER,
    MAP_V4_LENS,
    MAP_V4_ALLOWED,
    MAP_V6_ALLOWED,
    MAP_V6_LENS,
    MAP_V4_PREFIXED,
    MAP_V6_PREFIXED,
    MAP_V4_HINTS,
    MAP_V6_EXACTS,
    MAP_V4_EXACTS,
    MAP_V6_BUCKETS,
    MAP_V6_KEYS,
    MAP_V6_PREFIX_BUCKETS,
    MAP_V6_PREFIX_KEYS,
];

/// An address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

/// What an address map holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapKind {
    /// Whole addresses (a bucketised table of [`table4`]), value [`EntryValue`].
    Exact,
    /// Shorter prefixes (a bucketised table of [`table4`]), value [`EntryValue`].
    Prefix,
    /// Networks never dropped (LPM trie), value `u32` 0.
    Allow,
}

/// One of the address maps: its name in the object, the labels user space shows for it, and
/// what it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressMap {
    pub name: &'static str,
    /// Short label (JSON keys, metric labels).
    pub label: &'static str,
    /// What its entries are, in words.
    pub what: &'static str,
    pub family: Family,
    pub kind: MapKind,
}

const fn address_map(
    name: &'static str,
    label: &'static str,
    what: &'static str,
    family: Family,
    kind: MapKind,
) -> AddressMap {
    AddressMap { name, label, what, family, kind }
}

/// Every address map, in the order user space shows them (status, metrics, `check`).
pub const ADDRESS_MAPS: [AddressMap; 6] = [
    address_map(MAP_V4_EXACT, "ipv4", "exact IPv4 addresses", Family::V4, MapKind::Exact),
    address_map(MAP_V6_EXACT, "ipv6", "exact IPv6 addresses", Family::V6, MapKind::Exact),
    address_map(MAP_V4_PREFIX, "ipv4_prefixes", "IPv4 prefixes", Family::V4, MapKind::Prefix),
    address_map(MAP_V6_PREFIX, "ipv6_prefixes", "IPv6 prefixes", Family::V6, MapKind::Prefix),
    address_map(MAP_V4_ALLOW, "ipv4_allow", "IPv4 allowlist entries", Family::V4, MapKind::Allow),
    address_map(MAP_V6_ALLOW, "ipv6_allow", "IPv6 allowlist entries", Family::V6, MapKind::Allow),
];

/// The layout of this contract (maps, layouts, flags, indices), stored at [`CFG_LAYOUT`] so that
/// a loader of another build tells pins it cannot read. Raised with every change here.
pub const LAYOUT_VERSION: u32 = 25;

/// An IPv4 address as it appears on the wire (network byte order); an IPv6 one.
pub type V4Key = [u8; 4];
pub type V6Key = [u8; 16];

/// The entry blocks packets whose source address matches it.
pub const FLAG_SRC: u32 = 1;
/// The entry blocks packets whose destination address matches it.
pub const FLAG_DST: u32 = 1 << 1;
/// The entry blocks both directions (the default).
pub const FLAG_BOTH: u32 = FLAG_SRC | FLAG_DST;
/// The entry (of a monitor list) counts and reports packets from it, which pass.
pub const FLAG_MON_SRC: u32 = 1 << 2;
/// The entry (of a monitor list) counts and reports packets to it, which pass.
pub const FLAG_MON_DST: u32 = 1 << 3;

/// Most lists one filter can tell apart (bits of [`EntryValue::lists`]).
pub const MAX_LISTS: usize = 64;

/// The value of every address map entry: 24 bytes. Hits are counted in a CPU's [`HitSlot`],
/// added to `packets` once a tick at most; `last_hit` is set when the coarse clock moved on.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EntryValue {
    /// `FLAG_*` bits.
    pub flags: u32,
    /// When it was last hit: `bpf_ktime_get_coarse_ns() >> LAST_HIT_SHIFT`, at least 1 (0:
    /// never). See [`EntryValue::last_hit_ns`].
    pub last_hit: u32,
    /// Bit i set: list i (in the loader's numbering) holds this entry or one that covers it.
    pub lists: u64,
    /// Packets that hit this entry (dropped or monitored).
    pub packets: u64,
}

/// [`EntryValue::last_hit`] counts units of 2^27 ns (134 ms): 32 bits last 18 years of uptime.
pub const LAST_HIT_SHIFT: u32 = 27;

impl EntryValue {
    /// A value with the given direction flags and list bits, and no hits.
    pub const fn new(flags: u32, lists: u64) -> Self {
        Self { flags, last_hit: 0, lists, packets: 0 }
    }

    /// The last hit, in the kernel's monotonic nanoseconds (0: never).
    pub const fn last_hit_ns(&self) -> u64 {
        (self.last_hit as u64) << LAST_HIT_SHIFT
    }

    /// The [`EntryValue::last_hit`] of a hit at monotonic time `now_ns`.
    pub const fn last_hit_of(now_ns: u64) -> u32 {
        let units = (now_ns >> LAST_HIT_SHIFT) as u32;
        if units == 0 { 1 } else { units }
    }
}

/// Interfaces with counters of their own (slot 0 counts the others).
pub const MAX_IFACES: u32 = 15;
/// Largest interface index [`MAP_IFSLOT`] covers.
pub const MAX_IFINDEX: u32 = 4096;

/// The [`MAP_COUNTERS`] index of counter `cnt` for interface slot `slot`.
pub const fn counter_index(slot: u32, cnt: u32) -> u32 {
    slot * CNT_COUNT + cnt
}

/// The [`MAP_LIST_COUNTERS`] index for list bit `bit`, as source (`dst` false) or destination.
pub const fn list_counter_index(bit: u32, dst: bool) -> u32 {
    bit * 2 + dst as u32
}

/// Size of [`MAP_LIST_COUNTERS`].
pub const LIST_COUNTERS: u32 = MAX_LISTS as u32 * 2;

/// The event budget of one CPU, kept as a virtual schedule (GCRA, no division on the hot
/// path): an event may go when `next_ns` is at most `burst - 1` intervals ahead of now, and
/// moves it one interval on. The rate is written by the loader into every CPU's copy, beside
/// the schedule: a hit reads all of it with one lookup.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateState {
    /// When this CPU's schedule stands (never behind the clock when used).
    pub next_ns: u64,
    /// Nanoseconds between two events of a CPU (`1e9 / rate`; 0: no events).
    pub interval_ns: u64,
    /// How far ahead of now the schedule may run: `burst * interval_ns`.
    pub window_ns: u64,
    /// Events this CPU did not send: over its budget, or the ring buffer full (counted here,
    /// beside the budget, rather than in [`MAP_COUNTERS`], whose [`CNT_SUPPRESSED`] slots stay
    /// 0: user space shows this count there).
    pub suppressed: u64,
    /// The jiffies at which this CPU last read the coarse clock, and what it read: the clock
    /// is read again only once jiffies moved (see the kernel's `report::clock`).
    pub clock_jiffies: u64,
    pub clock_ns: u64,
}

/// A packet dropped (or monitored) because of an entry, for the infected-host report.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Event {
    pub ts_ns: u64,
    /// The matched entry's lists.
    pub lists: u64,
    /// The other end: the inside host (IPv4 in the first 4 bytes).
    pub inside: [u8; 16],
    /// The listed address.
    pub remote: [u8; 16],
    pub ifindex: u32,
    /// The listed side's port (TCP/UDP; 0 otherwise).
    pub remote_port: u16,
    /// IP protocol number.
    pub proto: u8,
    /// 4 or 6.
    pub family: u8,
    /// `EV_*`: which side matched, and whether the packet was dropped.
    pub kind: u8,
    pub pad: [u8; 7],
}

/// The listed address was the destination (an inside host talked to it).
pub const EV_DST: u8 = 1;
/// The packet was dropped (else only monitored).
pub const EV_DROPPED: u8 = 2;

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
/// Packets that matched only monitor entries (passed, counted, reported).
pub const CNT_MONITORED: u32 = 5;
/// Events sent to user space (packets counts events; bytes unused).
pub const CNT_EVENTS: u32 = 6;
/// Events suppressed by the rate limit or a full ring buffer.
pub const CNT_SUPPRESSED: u32 = 7;
/// Number of counter slots per interface.
pub const CNT_COUNT: u32 = 8;
/// Counter names in index order, for display.
pub const CNT_NAMES: [&str; CNT_COUNT as usize] = [
    "passed",
    "dropped_src",
    "dropped_dst",
    "non_ip",
    "malformed",
    "monitored",
    "events",
    "events_suppressed",
];

/// Index of the flags word in [`MAP_CONFIG`]: the `CFG_*` flags below in its low 16 bits, the
/// word count of [`MAP_V4_EXACTS`] in its top 16 ([`v4_exacts_in_flags`]).
pub const CFG_FLAGS: u32 = 0;
/// Index of the bucket count of [`MAP_V6_BUCKETS`] in [`MAP_CONFIG`].
pub const CFG_V6_BUCKETS: u32 = 1;
/// Index of the bucket count of [`MAP_V6_PREFIX_BUCKETS`] in [`MAP_CONFIG`].
pub const CFG_V6_PREFIX_BUCKETS: u32 = 2;
/// Index of the contract's [`LAYOUT_VERSION`] in [`MAP_CONFIG`]. This index never moves:
/// every layout can read the version of any other (pins of the first, unversioned layout have
/// no such slot).
pub const CFG_LAYOUT: u32 = 3;
/// Index of the bucket count of [`MAP_V4_BUCKETS`] in [`MAP_CONFIG`] ([`v4_bucket_count`] of
/// the capacity of [`MAP_V4_EXACT`]).
pub const CFG_V4_BUCKETS: u32 = 4;
/// Index of the bucket count of [`MAP_V4_PREFIX_BUCKETS`] in [`MAP_CONFIG`] ([`v4_bucket_count`]
/// of the capacity of [`MAP_V4_PREFIX`]).
pub const CFG_V4_PREFIX_BUCKETS: u32 = 5;
/// Index of the last writer's token in [`MAP_CONFIG`]: every write of the address maps ends
/// by putting a token of its own here, so that a daemon tells when another process wrote its
/// maps. The kernel never reads it.
pub const CFG_WRITER: u32 = 6;
/// Number of slots in [`MAP_CONFIG`].
pub const CFG_COUNT: u32 = 7;
/// The IPv4 prefix table holds entries: search it.
pub const CFG_V4_PREFIXES: u32 = 1;
/// The IPv6 prefix map holds entries: search it.
pub const CFG_V6_PREFIXES: u32 = 1 << 1;
/// The IPv4 allowlist holds entries: check a listed address against it before dropping.
pub const CFG_V4_ALLOW: u32 = 1 << 2;
/// The IPv6 allowlist holds entries: likewise.
pub const CFG_V6_ALLOW: u32 = 1 << 3;

#[cfg(feature = "user")]
mod pod {
    // SAFETY: these are plain `repr(C)` structs of integers without padding: any bit pattern
    // is a valid value.
    unsafe impl aya::Pod for super::EntryValue {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::Bucket {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::table4::V6Stored {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::LenMask {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::Counter {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::RateState {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::HitSlots {}
    // SAFETY: as above (`pad` makes the tail explicit).
    unsafe impl aya::Pod for super::Event {}
}
