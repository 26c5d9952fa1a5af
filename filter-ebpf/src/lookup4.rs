//! IPv4 lookups with prefixes loaded. Where the program was loaded with prefix hints (see
//! filter-common's `MAP_V4_HINTS`), the /24's hint byte decides: the exact table is looked up
//! only when an exact address lies in the /24, and the prefix table is probed at the one
//! length the hint names. The lengths present in the /16 (`TD_V4_LENS`) are searched only
//! when a prefix longer than /24 lies in the /24, or when the hinted entry is not written yet
//! (during a move); without hints, as before them: the lengths say whether an exact address
//! lies in the /16, and the prefix prefilter whether a prefix covers the /24 (one code path:
//! those two make a hint that says "search").

use aya_ebpf::{cty::c_void, helpers::bpf_loop, maps::Array};
use filter_common::{
    Bucket, CFG_V4_PREFIX_BUCKETS, EntryValue, HINT_EXACT, HINT_LEN, HINT_LONG, LenMask, V4Key,
    table4::{BUCKET_SLOTS, v4_buckets, v4_prefix_word, v4_slot_index},
    v4_filter_bit, v4_hint_at, v4_lens_slot,
};

use crate::{
    TD_V4_HINTS, TD_V4_LENS, TD_V4_PREFIX, TD_V4_PREFIX_BUCKETS, TD_V4_PREFIXED,
    lookup::{EVERY_LENGTH, Family, NOT_FOUND, V4, bit, wanted},
};

/// The exact entry holding `a` if it has a direction of `want`, else the longest prefix
/// holding `a` if it does.
#[inline(always)]
pub fn listed(a: &V4Key, want: u32, cfg: u32) -> Option<*mut EntryValue> {
    let slot = v4_filter_bit(a);
    let (word, shift) = v4_hint_at(slot);
    let hint = match TD_V4_HINTS.get(word) {
        Some(w) => (*w >> shift) as u8,
        None => unhinted(a, slot),
    };
    if hint & HINT_EXACT != 0
        && let Some(e) = V4::exact(a, cfg).filter(|e| wanted(*e, want))
    {
        return Some(e);
    }
    if hint & (HINT_LEN | HINT_LONG) == 0 {
        return None;
    }
    if hint & HINT_LONG == 0 {
        let word = v4_prefix_word(u32::from(hint & HINT_LEN) - 1, u32::from_be_bytes(*a));
        if let Some(index) = index(&TD_V4_PREFIX_BUCKETS, word, buckets()) {
            return TD_V4_PREFIX.get_ptr_mut(index).filter(|e| wanted(*e, want));
        }
    }
    search(a, &lengths(a)).filter(|e| wanted(*e, want))
}

/// Without hints, a hint made of what the other arrays say: an exact address may lie in the
/// /24 when one lies in its /16, and a prefix may cover it (to be searched: [`HINT_LONG`])
/// when the prefix prefilter says so.
#[inline(always)]
fn unhinted(a: &V4Key, slot: u32) -> u8 {
    let exact = if lengths(a).lo & LenMask::of(32).lo != 0 { HINT_EXACT } else { 0 };
    exact | if bit(&TD_V4_PREFIXED, slot) { HINT_LONG } else { 0 }
}

/// The prefix lengths present in `a`'s /16 (and 32 when an exact address lies there); every
/// length, should the lookup fail.
#[inline(always)]
fn lengths(a: &V4Key) -> LenMask {
    TD_V4_LENS.get(v4_lens_slot(a)).copied().unwrap_or(EVERY_LENGTH)
}

/// The prefix table's bucket count.
#[inline(always)]
fn buckets() -> u32 {
    crate::config(CFG_V4_PREFIX_BUCKETS)
}

/// The longest prefix holding `a`, by length among those `lens` names: the buckets of each
/// length's prefix word scanned as the exact table's are, one length a step of `bpf_loop`
/// (which the verifier checks once: inline, every slot of every length would be a path of its
/// own through the rest of the program).
#[inline(always)]
fn search(a: &V4Key, lens: &LenMask) -> Option<*mut EntryValue> {
    let rest = lens.lo as u32; // lengths 0 to 31 (bit 32: an exact address)
    let mut search =
        V4Search { rest, addr: u32::from_be_bytes(*a), count: buckets(), found: NOT_FOUND };
    let ctx = &mut search as *mut V4Search as *mut c_void;
    // SAFETY: `v4_step` is a callback of the type bpf_loop expects, and `ctx` points at
    // `search`, which outlives the call.
    unsafe { bpf_loop(32, v4_step as *mut c_void, ctx, 0) };
    match search.found {
        NOT_FOUND => None,
        index => TD_V4_PREFIX.get_ptr_mut(index),
    }
}

/// The value index that table `buckets` (of `count` buckets) holds for key word `word`: its
/// two buckets scanned.
#[inline(always)]
pub fn index(buckets: &Array<Bucket>, word: u32, count: u32) -> Option<u32> {
    let [b0, b1] = v4_buckets(word, count);
    in_bucket(buckets, b0, word).or_else(|| in_bucket(buckets, b1, word))
}

/// The value index bucket `b` of `buckets` holds for key word `word`.
#[inline(always)]
pub fn in_bucket(buckets: &Array<Bucket>, b: u32, word: u32) -> Option<u32> {
    let bucket = buckets.get(b)?;
    let mut i = 0;
    while i < BUCKET_SLOTS {
        if let Some(index) = v4_slot_index(bucket.slots[i], word) {
            return Some(index);
        }
        i += 1;
    }
    None
}

/// What `v4_step` searches: the lengths left, the address (host order), the prefix table's
/// bucket count, and the value index found.
#[repr(C)]
struct V4Search {
    rest: u32,
    addr: u32,
    count: u32,
    found: u32,
}

/// One step of the IPv4 prefix search: the longest length left, taken out and probed; the
/// loop ends when it holds the address or no length is left.
extern "C" fn v4_step(_: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: bpf_loop passes back the pointer to the caller's `V4Search`.
    let s = unsafe { &mut *(ctx as *mut V4Search) };
    if s.rest == 0 {
        return 1;
    }
    let len = 31 - s.rest.leading_zeros();
    s.rest &= !(1 << len);
    let word = v4_prefix_word(len, s.addr);
    match index(&TD_V4_PREFIX_BUCKETS, word, s.count) {
        Some(index) => {
            s.found = index;
            1
        }
        None => 0,
    }
}
