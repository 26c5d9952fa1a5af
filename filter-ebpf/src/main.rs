//! The takedown XDP program: drops packets whose source or destination is on the takedown list;
//! and its tc egress twin, for what the gateway itself sends (same parsing, lookups, counters).
//!
//! Per packet: parse (see `parse`), look the source and destination up (see `lookup`: the
//! exact-address tables and, only when the loader says they hold entries, the prefix tables;
//! for a listed address, the allowlist, which always wins); count; return the verdict. A hit (drop, or
//! a monitor-only match that passes) also updates the entry's and its lists' counters and may
//! report an event (see `report`). No logging, no formatting on the hot path.
#![no_std]
#![no_main]
// The bpfel target has 64-bit atomic adds (BPF_XADD) but no compare-and-swap, so core's
// AtomicU64::fetch_add is not offered: the intrinsic is.
#![allow(internal_features)]
#![feature(core_intrinsics)]

#[cfg_attr(feature = "no-journal", allow(dead_code))]
mod journal;
mod lookup;
mod lookup4;
mod lookup6;
mod parse;
mod report;

use aya_ebpf::{
    bindings::{BPF_F_MMAPABLE, BPF_F_NO_PREALLOC, TC_ACT_SHOT, TC_ACT_UNSPEC, xdp_action},
    macros::{classifier, map, xdp},
    maps::{Array, LpmTrie, PerCpuArray, RingBuf},
    programs::{TcContext, XdpContext},
};
use filter_common::{
    ALLOWED_WORDS, Bucket, CFG_COUNT, CNT_COUNT, CNT_DROP_DST, CNT_DROP_SRC, CNT_MALFORMED,
    CNT_MONITORED, CNT_NON_IP, CNT_PASSED, Counter, EntryValue, FILTER_WORDS, FLAG_DST,
    FLAG_MON_DST, FLAG_MON_SRC, FLAG_SRC, HitSlots, LENS_SLOTS, LIST_COUNTERS, LenMask, MAX_IFACES,
    MAX_IFINDEX, RateState, V4Key, V6_EXACTS_WORDS, V6Key, table4::V6Stored,
};
use lookup::{Entry, Family, V4, V6, matched};
use parse::{Addresses, Frame, Packet};

// Names must match filter_common::MAP_*; sizes are set by the loader before loading. The
// tables and the arrays beside them (prefilters, lengths, hints) are mmapable: the loader
// writes them with memory stores.
#[map]
static TD_V4_EXACT: Array<EntryValue> = Array::with_max_entries(1, BPF_F_MMAPABLE);
#[map]
static TD_V4_BUCKETS: Array<Bucket> = Array::with_max_entries(1, BPF_F_MMAPABLE);
#[map]
static TD_V6_EXACT: Array<EntryValue> = Array::with_max_entries(1, BPF_F_MMAPABLE);
#[map]
static TD_V6_BUCKETS: Array<Bucket> = Array::with_max_entries(1, BPF_F_MMAPABLE);
#[map]
static TD_V6_KEYS: Array<V6Stored> = Array::with_max_entries(1, BPF_F_MMAPABLE);
#[map]
static TD_V4_PREFIX: Array<EntryValue> = Array::with_max_entries(1, BPF_F_MMAPABLE);
#[map]
static TD_V4_PREFIX_BUCKETS: Array<Bucket> = Array::with_max_entries(1, BPF_F_MMAPABLE);
#[map]
static TD_V4_LENS: Array<LenMask> = Array::with_max_entries(LENS_SLOTS, BPF_F_MMAPABLE);
#[map]
static TD_V6_PREFIX: Array<EntryValue> = Array::with_max_entries(1, BPF_F_MMAPABLE);
#[map]
static TD_V6_PREFIX_BUCKETS: Array<Bucket> = Array::with_max_entries(1, BPF_F_MMAPABLE);
#[map]
static TD_V6_PREFIX_KEYS: Array<V6Stored> = Array::with_max_entries(1, BPF_F_MMAPABLE);
#[map]
static TD_V6_LENS: Array<LenMask> = Array::with_max_entries(LENS_SLOTS, BPF_F_MMAPABLE);
#[map]
static TD_V4_ALLOW: LpmTrie<V4Key, u32> = LpmTrie::with_max_entries(1, BPF_F_NO_PREALLOC);
#[map]
static TD_V6_ALLOW: LpmTrie<V6Key, u32> = LpmTrie::with_max_entries(1, BPF_F_NO_PREALLOC);
#[map]
static TD_COUNTERS: PerCpuArray<Counter> =
    PerCpuArray::with_max_entries((MAX_IFACES + 1) * CNT_COUNT, 0);
#[map]
static TD_CONFIG: Array<u32> = Array::with_max_entries(CFG_COUNT, 0);
#[map]
static TD_LIST_COUNTERS: PerCpuArray<Counter> = PerCpuArray::with_max_entries(LIST_COUNTERS, 0);
#[map]
static TD_IFSLOT: Array<u32> = Array::with_max_entries(MAX_IFINDEX, 0);
#[map]
static TD_EVENTS: RingBuf = RingBuf::with_byte_size(256 * 1024, 0);
#[map]
static TD_RATE: PerCpuArray<RateState> = PerCpuArray::with_max_entries(1, 0);
#[map]
static TD_HITS: PerCpuArray<HitSlots> = PerCpuArray::with_max_entries(1, 0);
#[map]
static TD_V4_FILTER: Array<u64> = Array::with_max_entries(FILTER_WORDS, BPF_F_MMAPABLE);
#[map]
static TD_V6_FILTER: Array<u64> = Array::with_max_entries(FILTER_WORDS, BPF_F_MMAPABLE);
#[map]
static TD_V4_ALLOWED: Array<u64> = Array::with_max_entries(ALLOWED_WORDS, BPF_F_MMAPABLE);
#[map]
static TD_V6_ALLOWED: Array<u64> = Array::with_max_entries(ALLOWED_WORDS, BPF_F_MMAPABLE);
#[map]
static TD_V4_PREFIXED: Array<u64> = Array::with_max_entries(FILTER_WORDS, BPF_F_MMAPABLE);
#[map]
static TD_V6_PREFIXED: Array<u64> = Array::with_max_entries(FILTER_WORDS, BPF_F_MMAPABLE);
#[map]
static TD_V4_HINTS: Array<u64> = Array::with_max_entries(1, BPF_F_MMAPABLE);
#[map]
static TD_V6_EXACTS: Array<u64> = Array::with_max_entries(V6_EXACTS_WORDS, BPF_F_MMAPABLE);
#[map]
static TD_V4_EXACTS: Array<u64> =
    Array::with_max_entries(filter_common::v4_exacts_words(0), BPF_F_MMAPABLE);
#[map]
static TD_JOURNAL: RingBuf = RingBuf::with_byte_size(4096, 0);
/// The UDP flows reported lately (filter-common's `MAP_FLOW_TAGS`): in the zeroed data, where
/// the program finds a slot by its address, with no map lookup.
#[unsafe(no_mangle)]
static mut TD_FLOW_TAGS: [u64; filter_common::FLOW_SLOTS as usize] =
    [0; filter_common::FLOW_SLOTS as usize];

/// A matched entry: its value in the map, and whether the match was as source.
pub struct Hit {
    pub entry: Entry,
    pub as_src: bool,
}

#[xdp]
pub fn takedown(ctx: XdpContext) -> u32 {
    let len = (ctx.data_end() - ctx.data()) as u64;
    // SAFETY: `ctx.ctx` is the xdp_md the kernel passed to this program.
    let ifindex = unsafe { (*ctx.ctx).ingress_ifindex };
    let slot = TD_IFSLOT.get(ifindex).copied().unwrap_or(0);
    let cnt = match parse::addresses(&ctx) {
        Addresses::V4(p) => check::<V4, XdpContext>(&ctx, &p, len),
        Addresses::V6(p) => check::<V6, XdpContext>(&ctx, &p, len),
        Addresses::NonIp => CNT_NON_IP,
        Addresses::Malformed => CNT_MALFORMED,
    };
    report::count(slot.min(MAX_IFACES), cnt, len);
    if cnt == CNT_DROP_SRC || cnt == CNT_DROP_DST {
        xdp_action::XDP_DROP
    } else {
        xdp_action::XDP_PASS
    }
}

/// The same verdict for packets leaving by an interface (tc egress): what the gateway itself
/// sends. A pass hands the packet on to the next tc program.
#[classifier]
pub fn takedown_egress(ctx: TcContext) -> i32 {
    let len = ctx.len() as u64;
    // Headers outside the socket buffer's linear part are pulled in (usually a no-op).
    let _ = ctx.pull_data(PULL_LEN);
    if drops(&ctx, len) { TC_ACT_SHOT } else { TC_ACT_UNSPEC }
}

/// Bytes of headers the egress program wants in the linear part: Ethernet, two VLAN tags, an
/// IPv6 header and the ports.
const PULL_LEN: u32 = 14 + 8 + 40 + 4;

/// Parses, looks up, counts in the interface's slot; true when the packet is to be dropped.
#[inline(always)]
fn drops<C: Frame>(ctx: &C, len: u64) -> bool {
    let slot = TD_IFSLOT.get(ctx.ifindex()).copied().unwrap_or(0);
    let cnt = match parse::addresses(ctx) {
        Addresses::V4(p) => check::<V4, C>(ctx, &p, len),
        Addresses::V6(p) => check::<V6, C>(ctx, &p, len),
        Addresses::NonIp => CNT_NON_IP,
        Addresses::Malformed => CNT_MALFORMED,
    };
    report::count(slot.min(MAX_IFACES), cnt, len);
    cnt == CNT_DROP_SRC || cnt == CNT_DROP_DST
}

/// Looks an IP packet's addresses up, reports a hit, and returns the counter of its verdict.
#[inline(always)]
fn check<F: Family, C: Frame>(ctx: &C, p: &Packet<F::Addr>, len: u64) -> u32 {
    // The config flags, read by the first lookup.
    let mut cfg = lookup::UNREAD;
    let s = matched::<F>(&p.src, FLAG_SRC | FLAG_MON_SRC, &mut cfg);
    // A source entry that blocks decides the verdict: the destination is not looked up.
    let d = match s {
        Some(e) if flags(e) & FLAG_SRC != 0 => None,
        _ => matched::<F>(&p.dst, FLAG_DST | FLAG_MON_DST, &mut cfg),
    };
    let (cnt, hit) = decide(s, d);
    if let Some(h) = &hit {
        report::hit::<F, C>(ctx, h, cnt, len, p);
    }
    // What passes (a monitored match too) may open a connection: the journal keeps it.
    #[cfg(not(feature = "no-journal"))]
    if cfg & filter_common::CFG_JOURNAL != 0 && (cnt == CNT_PASSED || cnt == CNT_MONITORED) {
        journal::note::<F, C>(ctx, p);
    }
    cnt
}

/// The verdict from the source and destination matches: an enforcing match drops (source
/// first); otherwise a monitor-only match is counted and passes.
#[inline(always)]
fn decide(s: Option<Entry>, d: Option<Entry>) -> (u32, Option<Hit>) {
    if let Some(e) = s.filter(|&e| flags(e) & FLAG_SRC != 0) {
        return (CNT_DROP_SRC, Some(Hit { entry: e, as_src: true }));
    }
    if let Some(e) = d.filter(|&e| flags(e) & FLAG_DST != 0) {
        return (CNT_DROP_DST, Some(Hit { entry: e, as_src: false }));
    }
    if let Some(e) = s {
        return (CNT_MONITORED, Some(Hit { entry: e, as_src: true }));
    }
    if let Some(e) = d {
        return (CNT_MONITORED, Some(Hit { entry: e, as_src: false }));
    }
    (CNT_PASSED, None)
}

/// The direction flags of a matched entry.
#[inline(always)]
fn flags(e: Entry) -> u32 {
    // SAFETY: `e` is a map value a lookup returned; it stays valid for this run.
    unsafe { (*e.as_ptr()).flags }
}

/// Slot `index` of the loader's config array.
#[inline(always)]
fn config(index: u32) -> u32 {
    TD_CONFIG.get(index).copied().unwrap_or(0)
}

/// Returns XDP_PASS and nothing else: the cost floor `cargo xtask bench` compares against.
#[xdp]
pub fn takedown_baseline(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
