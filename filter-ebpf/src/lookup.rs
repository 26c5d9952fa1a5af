//! One lookup for both address families. A [`Family`] names its maps and key layout; `matched`
//! is written once: first the prefilter (one array load: no entry near this address, no
//! lookup: a miss costs the same whatever the lists hold), then the exact entry if it has one
//! of the wanted directions, else (when the loader says prefixes are loaded) the longest prefix
//! if it does, found by trying only the lengths present near the address (which, for IPv4,
//! also tell whether an exact address lies in its /16: if not, the exact lookup is skipped),
//! and only when the prefix prefilter says a prefix covers the address's /24 (for IPv4, where
//! the hints say which length covers the /24, that length alone);
//! never an allowlisted address (the allowlist is consulted only for a listed address, so
//! misses never pay for it).

use aya_ebpf::maps::lpm_trie::Key;
use aya_ebpf::{cty::c_void, helpers::bpf_loop, maps::Array};
use filter_common::{
    Bucket, CFG_FLAGS, CFG_V4_ALLOW, CFG_V4_BUCKETS, CFG_V4_PREFIX_BUCKETS, CFG_V4_PREFIXES,
    CFG_V6_ALLOW, CFG_V6_PREFIXES, EntryValue, HINT_LONG, LenMask, V4Key, V6Key, V6PrefixKey,
    table4::{BUCKET_SLOTS, v4_buckets, v4_prefix_word, v4_slot_index, v4_word},
    v4_filter_bit, v4_hint_at, v4_lens_slot, v6_filter_bit, v6_lens_slot,
};

use crate::{
    TD_V4_ALLOW, TD_V4_ALLOWED, TD_V4_BUCKETS, TD_V4_EXACT, TD_V4_FILTER, TD_V4_HINTS, TD_V4_LENS,
    TD_V4_PREFIX, TD_V4_PREFIX_BUCKETS, TD_V4_PREFIXED, TD_V6_ALLOW, TD_V6_ALLOWED, TD_V6_EXACT,
    TD_V6_FILTER, TD_V6_LENS, TD_V6_PREFIX, TD_V6_PREFIXED,
};

/// An address family: its maps, its key layout and its `CFG_*` flags.
pub trait Family {
    type Addr;
    /// 4 or 6, as events carry it.
    const VERSION: u8;
    /// The flag saying its prefix map holds entries.
    const PREFIXES: u32;
    /// The flag saying its allowlist holds entries.
    const ALLOW: u32;
    /// False when no entry can cover `a` (its prefilter bit is clear).
    fn near(a: &Self::Addr) -> bool;
    /// The prefix lengths present near `a` (all of them, should the lookup fail).
    fn lens(a: &Self::Addr) -> LenMask;
    /// False when `lens` says that no exact address lies near `a` (IPv4: in its /16).
    fn may_be_exact(lens: &LenMask) -> bool;
    fn exact(a: &Self::Addr) -> Option<*mut EntryValue>;
    /// The longest prefix holding `a`, among the lengths `lens` names; none without a search
    /// where no prefix can cover `a` (its prefix prefilter bit is clear, or its hint is 0).
    fn prefix(a: &Self::Addr, lens: &LenMask) -> Option<*mut EntryValue>;
    fn allowed(a: &Self::Addr) -> bool;
    /// The address in 16 bytes (IPv4 in the first 4), as events carry it.
    fn wide(a: &Self::Addr) -> [u8; 16];
}

pub struct V4;
pub struct V6;

/// Bit `n` of a prefilter map.
#[inline(always)]
fn bit(filter: &Array<u64>, n: u32) -> bool {
    filter.get(n >> 6).is_some_and(|w| w & (1u64 << (n & 63)) != 0)
}

impl Family for V4 {
    type Addr = V4Key;
    const VERSION: u8 = 4;
    const PREFIXES: u32 = CFG_V4_PREFIXES;
    const ALLOW: u32 = CFG_V4_ALLOW;
    #[inline(always)]
    fn near(a: &V4Key) -> bool {
        bit(&TD_V4_FILTER, v4_filter_bit(a))
    }
    #[inline(always)]
    fn lens(a: &V4Key) -> LenMask {
        TD_V4_LENS.get(v4_lens_slot(a)).copied().unwrap_or(EVERY_LENGTH)
    }
    #[inline(always)]
    fn may_be_exact(lens: &LenMask) -> bool {
        lens.lo & LenMask::of(32).lo != 0
    }
    /// The address's two buckets scanned, slot by slot; its value by the index the slot holds.
    #[inline(always)]
    fn exact(a: &V4Key) -> Option<*mut EntryValue> {
        let index = v4_index(&TD_V4_BUCKETS, v4_word(a), crate::config(CFG_V4_BUCKETS))?;
        TD_V4_EXACT.get_ptr_mut(index)
    }
    /// The longest prefix: where the /24's hint names a length, that length's prefix word
    /// alone; else (a longer prefix lies in the /24, no hints, or the hinted entry is not
    /// written yet) by length among those present in the address's /16: the buckets of each
    /// length's prefix word scanned as the exact table's are, one length a step of `bpf_loop`
    /// (which the verifier checks once: inline, every slot of every length would be a path of
    /// its own through the rest of the program).
    #[inline(always)]
    fn prefix(a: &V4Key, lens: &LenMask) -> Option<*mut EntryValue> {
        let slot = v4_filter_bit(a);
        let count = crate::config(CFG_V4_PREFIX_BUCKETS);
        let (word, shift) = v4_hint_at(slot);
        match TD_V4_HINTS.get(word) {
            Some(w) => {
                let hint = (*w >> shift) as u8;
                if hint == 0 {
                    return None;
                }
                if hint & HINT_LONG == 0 {
                    let word = v4_prefix_word(u32::from(hint) - 1, u32::from_be_bytes(*a));
                    if let Some(index) = v4_index(&TD_V4_PREFIX_BUCKETS, word, count) {
                        return TD_V4_PREFIX.get_ptr_mut(index);
                    }
                }
            }
            None if !bit(&TD_V4_PREFIXED, slot) => return None,
            None => {}
        }
        let rest = lens.lo as u32; // lengths 0 to 31 (bit 32: an exact address)
        let mut search = V4Search { rest, addr: u32::from_be_bytes(*a), count, found: NOT_FOUND };
        let ctx = &mut search as *mut V4Search as *mut c_void;
        // SAFETY: `v4_step` is a callback of the type bpf_loop expects, and `ctx` points at
        // `search`, which outlives the call.
        unsafe { bpf_loop(32, v4_step as *mut c_void, ctx, 0) };
        match search.found {
            NOT_FOUND => None,
            index => TD_V4_PREFIX.get_ptr_mut(index),
        }
    }
    #[inline(always)]
    fn allowed(a: &V4Key) -> bool {
        bit(&TD_V4_ALLOWED, v4_filter_bit(a)) && TD_V4_ALLOW.get(Key::new(32, *a)).is_some()
    }
    #[inline(always)]
    fn wide(a: &V4Key) -> [u8; 16] {
        // Two 8-byte words rather than a 16-byte memset and four byte stores; on this
        // little-endian target the address's bytes come first.
        let words = [u32::from_ne_bytes(*a) as u64, 0];
        // SAFETY: [u64; 2] and [u8; 16] have the same size, and every bit pattern is valid.
        unsafe { core::mem::transmute::<[u64; 2], [u8; 16]>(words) }
    }
}

impl Family for V6 {
    type Addr = V6Key;
    const VERSION: u8 = 6;
    const PREFIXES: u32 = CFG_V6_PREFIXES;
    const ALLOW: u32 = CFG_V6_ALLOW;
    #[inline(always)]
    fn near(a: &V6Key) -> bool {
        bit(&TD_V6_FILTER, v6_filter_bit(a))
    }
    #[inline(always)]
    fn lens(a: &V6Key) -> LenMask {
        TD_V6_LENS.get(v6_lens_slot(a)).copied().unwrap_or(EVERY_LENGTH)
    }
    /// IPv6 slots have no bit to spare for exact addresses: always looked up.
    #[inline(always)]
    fn may_be_exact(_: &LenMask) -> bool {
        true
    }
    #[inline(always)]
    fn exact(a: &V6Key) -> Option<*mut EntryValue> {
        TD_V6_EXACT.get_ptr_mut(a)
    }
    /// The longest prefix, by length among those present in the slot of the address's /32:
    /// the longest length inline, the others (up to 127) in `bpf_loop`, one step a length
    /// present, which the verifier checks once.
    #[inline(always)]
    fn prefix(a: &V6Key, lens: &LenMask) -> Option<*mut EntryValue> {
        if !bit(&TD_V6_PREFIXED, v6_filter_bit(a)) {
            return None;
        }
        let mut lens = *lens;
        let hi = u64::from_be_bytes([a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]]);
        let lo = u64::from_be_bytes([a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15]]);
        // The longest length first, inline: where it holds the address (the usual hit), no
        // helper call and no second lookup.
        let longest = take_longest(&mut lens)?;
        let (h, l) = v6_masked(hi, lo, longest);
        if let Some(v) = v6_entry(longest, h, l) {
            return Some(v);
        }
        let mut search = V6Search { lens, hi, lo, found: NOT_FOUND };
        let ctx = &mut search as *mut V6Search as *mut c_void;
        let present = lens.hi.count_ones() + lens.lo.count_ones();
        // SAFETY: `v6_step` is a callback of the type bpf_loop expects, and `ctx` points at
        // `search`, which outlives the call.
        unsafe { bpf_loop(present, v6_step as *mut c_void, ctx, 0) };
        match search.found {
            NOT_FOUND => None,
            len => {
                let (hi, lo) = v6_masked(hi, lo, len);
                v6_entry(len, hi, lo)
            }
        }
    }
    #[inline(always)]
    fn allowed(a: &V6Key) -> bool {
        bit(&TD_V6_ALLOWED, v6_filter_bit(a)) && TD_V6_ALLOW.get(Key::new(128, *a)).is_some()
    }
    #[inline(always)]
    fn wide(a: &V6Key) -> [u8; 16] {
        *a
    }
}

/// The value index that table `buckets` (of `count` buckets) holds for key word `word`: its
/// two buckets scanned.
#[inline(always)]
fn v4_index(buckets: &Array<Bucket>, word: u32, count: u32) -> Option<u32> {
    let [b0, b1] = v4_buckets(word, count);
    in_bucket(buckets, b0, word).or_else(|| in_bucket(buckets, b1, word))
}

/// The value index bucket `b` of `buckets` holds for key word `word`.
#[inline(always)]
fn in_bucket(buckets: &Array<Bucket>, b: u32, word: u32) -> Option<u32> {
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

const NOT_FOUND: u32 = u32::MAX;

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
    match v4_index(&TD_V4_PREFIX_BUCKETS, word, s.count) {
        Some(index) => {
            s.found = index;
            1
        }
        None => 0,
    }
}

/// Every length: what a failed lengths lookup (never seen) is taken for.
const EVERY_LENGTH: LenMask = LenMask { lo: u64::MAX, hi: u64::MAX };

/// What `v6_step` searches: a slot's lengths, the address, and the longest length present.
#[repr(C)]
struct V6Search {
    lens: LenMask,
    hi: u64,
    lo: u64,
    found: u32,
}

/// The address (`hi`, `lo`) with every bit past `len` cleared.
#[inline(always)]
fn v6_masked(hi: u64, lo: u64, len: u32) -> (u64, u64) {
    let mask = |bits: u32| if bits == 0 { 0 } else { u64::MAX << (64 - bits) };
    match len {
        64.. => (hi, lo & mask(len - 64)),
        _ => (hi & mask(len), 0),
    }
}

/// One step of the search: the longest length left in the set, taken out of it; when that
/// prefix is listed, the loop ends. bpf_loop runs as many steps as the set holds lengths.
extern "C" fn v6_step(_: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: bpf_loop passes back the pointer to the caller's `V6Search`.
    let s = unsafe { &mut *(ctx as *mut V6Search) };
    let Some(len) = take_longest(&mut s.lens) else { return 1 };
    let (hi, lo) = v6_masked(s.hi, s.lo, len);
    if v6_entry(len, hi, lo).is_some() {
        s.found = len;
        return 1;
    }
    0
}

/// The longest length left in `lens`, taken out of it.
#[inline(always)]
fn take_longest(lens: &mut LenMask) -> Option<u32> {
    if lens.hi != 0 {
        let bit = 63 - lens.hi.leading_zeros();
        lens.hi &= !(1u64 << bit);
        Some(64 + bit)
    } else if lens.lo != 0 {
        let bit = 63 - lens.lo.leading_zeros();
        lens.lo &= !(1u64 << bit);
        Some(bit)
    } else {
        None
    }
}

/// The IPv6 prefix entry of length `len` whose address is (`hi`, `lo`), already masked.
#[inline(always)]
fn v6_entry(len: u32, hi: u64, lo: u64) -> Option<*mut EntryValue> {
    // The key is written in 4-byte words, each with a store of its own: the address lies 4
    // bytes into the key, and 8-byte stores there (which LLVM would merge the bytes into, the
    // target allowing misaligned access) are misaligned stack stores the verifier refuses.
    let (h, l) = (hi.to_be_bytes(), lo.to_be_bytes());
    let word = |b: &[u8; 8], i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let mut key = [0u32; 5];
    for (i, w) in [len, word(&h, 0), word(&h, 4), word(&l, 0), word(&l, 4)].into_iter().enumerate()
    {
        // SAFETY: `i` < 5, inside `key`.
        unsafe { core::ptr::write_volatile(key.as_mut_ptr().add(i), w) };
    }
    // SAFETY: `V6PrefixKey` is `repr(C)` { u32, [u8; 16] }: 20 bytes aligned to 4, every bit
    // pattern valid, the layout of [u32; 5]; read in place (a copy would merge the stores).
    let key = unsafe { &*(key.as_ptr() as *const V6PrefixKey) };
    TD_V6_PREFIX.get_ptr_mut(key)
}

/// A matched entry's value in its map. Never null, so that `Option<Entry>` is one register:
/// an `Option<*mut _>` carries a tag beside the pointer, and the pointer of a `None` is an
/// uninitialised stack slot that kernels before 6.5 refuse to let a program read.
pub type Entry = core::ptr::NonNull<EntryValue>;

/// `cfg` before the config flags are read.
pub const UNREAD: u32 = u32::MAX;

/// The entry that matches `addr` for the directions in `want`. The config flags (`cfg`) are
/// read only past the prefilter, once a packet: a miss never reads them.
#[inline(always)]
pub fn matched<F: Family>(addr: &F::Addr, want: u32, cfg: &mut u32) -> Option<Entry> {
    if !F::near(addr) {
        return None;
    }
    if *cfg == UNREAD {
        *cfg = crate::config(CFG_FLAGS);
    }
    let cfg = *cfg;
    // SAFETY: `e` is a map value a lookup just returned; it stays valid for this run.
    let wanted = |e: &*mut EntryValue| unsafe { (**e).flags } & want != 0;
    let hit = if cfg & F::PREFIXES == 0 {
        F::exact(addr).filter(wanted)
    } else {
        // With prefixes loaded, the lengths near the address also say whether an exact
        // address lies there: a prefix hit far from every exact entry skips that lookup.
        let lens = F::lens(addr);
        let exact = if F::may_be_exact(&lens) { F::exact(addr).filter(wanted) } else { None };
        exact.or_else(|| F::prefix(addr, &lens).filter(wanted))
    }?;
    if cfg & F::ALLOW != 0 && F::allowed(addr) {
        return None;
    }
    Entry::new(hit)
}
