//! The takedown XDP program: drops packets whose source or destination is on the takedown list.
//!
//! Per packet: parse (see `parse`), look the source and destination up in the exact-address hash
//! maps and, only when the loader says they hold entries, the prefix tries; for a listed
//! address, check the allowlist (which always wins); count; return the verdict. No logging, no formatting: the hot path only reads maps and bumps per-CPU counters.
#![no_std]
#![no_main]

mod parse;

use aya_ebpf::{
    bindings::{BPF_F_NO_PREALLOC, xdp_action},
    macros::{map, xdp},
    maps::{Array, HashMap, LpmTrie, PerCpuArray, lpm_trie::Key},
    programs::XdpContext,
};
use filter_common::{
    CFG_COUNT, CFG_FLAGS, CFG_V4_ALLOW, CFG_V4_PREFIXES, CFG_V6_ALLOW, CFG_V6_PREFIXES, CNT_COUNT,
    CNT_DROP_DST, CNT_DROP_SRC, CNT_MALFORMED, CNT_NON_IP, CNT_PASSED, Counter, EntryValue,
    FLAG_DST, FLAG_SRC, V4Key, V6Key,
};
use parse::Addresses;

// Names must match filter_common::MAP_*; sizes are set by the loader before loading.
#[map]
static TD_V4_EXACT: HashMap<V4Key, EntryValue> = HashMap::with_max_entries(1, BPF_F_NO_PREALLOC);
#[map]
static TD_V6_EXACT: HashMap<V6Key, EntryValue> = HashMap::with_max_entries(1, BPF_F_NO_PREALLOC);
#[map]
static TD_V4_PREFIX: LpmTrie<V4Key, EntryValue> = LpmTrie::with_max_entries(1, BPF_F_NO_PREALLOC);
#[map]
static TD_V6_PREFIX: LpmTrie<V6Key, EntryValue> = LpmTrie::with_max_entries(1, BPF_F_NO_PREALLOC);
#[map]
static TD_V4_ALLOW: LpmTrie<V4Key, u32> = LpmTrie::with_max_entries(1, BPF_F_NO_PREALLOC);
#[map]
static TD_V6_ALLOW: LpmTrie<V6Key, u32> = LpmTrie::with_max_entries(1, BPF_F_NO_PREALLOC);
#[map]
static TD_COUNTERS: PerCpuArray<Counter> = PerCpuArray::with_max_entries(CNT_COUNT, 0);
#[map]
static TD_CONFIG: Array<u32> = Array::with_max_entries(CFG_COUNT, 0);

#[xdp]
pub fn takedown(ctx: XdpContext) -> u32 {
    let len = (ctx.data_end() - ctx.data()) as u64;
    let slot = match parse::addresses(&ctx) {
        Addresses::V4 { src, dst } => {
            let cfg = config();
            let tries = cfg & CFG_V4_PREFIXES != 0;
            let allow = cfg & CFG_V4_ALLOW != 0;
            // The allowlist is consulted only for a listed address: misses never pay for it.
            if v4_blocks(&src, FLAG_SRC, tries) && !(allow && v4_allowed(&src)) {
                CNT_DROP_SRC
            } else if v4_blocks(&dst, FLAG_DST, tries) && !(allow && v4_allowed(&dst)) {
                CNT_DROP_DST
            } else {
                CNT_PASSED
            }
        }
        Addresses::V6 { src, dst } => {
            let cfg = config();
            let tries = cfg & CFG_V6_PREFIXES != 0;
            let allow = cfg & CFG_V6_ALLOW != 0;
            if v6_blocks(&src, FLAG_SRC, tries) && !(allow && v6_allowed(&src)) {
                CNT_DROP_SRC
            } else if v6_blocks(&dst, FLAG_DST, tries) && !(allow && v6_allowed(&dst)) {
                CNT_DROP_DST
            } else {
                CNT_PASSED
            }
        }
        Addresses::NonIp => CNT_NON_IP,
        Addresses::Malformed => CNT_MALFORMED,
    };
    count(slot, len);
    if slot == CNT_DROP_SRC || slot == CNT_DROP_DST {
        xdp_action::XDP_DROP
    } else {
        xdp_action::XDP_PASS
    }
}

/// Returns XDP_PASS and nothing else: the cost floor `cargo xtask bench` compares against.
#[xdp]
pub fn takedown_baseline(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

#[inline(always)]
fn config() -> u32 {
    TD_CONFIG.get(CFG_FLAGS).copied().unwrap_or(0)
}

#[inline(always)]
fn v4_blocks(addr: &V4Key, flag: u32, tries: bool) -> bool {
    // SAFETY: the value is only read, and entries are plain integers.
    if let Some(v) = unsafe { TD_V4_EXACT.get(addr) } {
        if v.flags & flag != 0 {
            return true;
        }
    }
    tries && TD_V4_PREFIX.get(Key::new(32, *addr)).is_some_and(|v| v.flags & flag != 0)
}

#[inline(always)]
fn v6_blocks(addr: &V6Key, flag: u32, tries: bool) -> bool {
    // SAFETY: as in `v4_blocks`.
    if let Some(v) = unsafe { TD_V6_EXACT.get(addr) } {
        if v.flags & flag != 0 {
            return true;
        }
    }
    tries && TD_V6_PREFIX.get(Key::new(128, *addr)).is_some_and(|v| v.flags & flag != 0)
}

#[inline(always)]
fn v4_allowed(addr: &V4Key) -> bool {
    TD_V4_ALLOW.get(Key::new(32, *addr)).is_some()
}

#[inline(always)]
fn v6_allowed(addr: &V6Key) -> bool {
    TD_V6_ALLOW.get(Key::new(128, *addr)).is_some()
}

#[inline(always)]
fn count(slot: u32, len: u64) {
    if let Some(c) = TD_COUNTERS.get_ptr_mut(slot) {
        // SAFETY: per-CPU slot; no other context writes it concurrently.
        unsafe {
            (*c).packets += 1;
            (*c).bytes += len;
        }
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
