//! One lookup for both address families. A [`Family`] names its maps and key layout; `matched`
//! is written once: first a prefilter (one array load: no entry near this address, no lookup:
//! a miss costs the same whatever the lists hold; without prefixes loaded, IPv4 uses the
//! exact-address one, four bits of a word by hashes of the address, so that a miss next to a
//! listed address costs no more), then the exact entry if it has one of the wanted directions,
//! else (when the loader says prefixes are loaded) the longest prefix if it does
//! ([`Family::listed`]: for IPv4 see `lookup4`; for IPv6, where the prefix prefilter says a
//! prefix may cover the address, trying only the lengths its slots in `TD_V6_LENS`' five tiers
//! hold); never an allowlisted address (the allowlist is consulted only for a listed address,
//! so misses never pay for it).

use aya_ebpf::maps::lpm_trie::Key;
use aya_ebpf::{cty::c_void, helpers::bpf_loop, maps::Array};
use filter_common::{
    ALLOWED_SHIFT, AT_V4_EXACT, AT_V4_PREFIX, AT_V6_EXACT, AT_V6_PREFIX, CFG_FLAGS, CFG_V4_ALLOW,
    CFG_V4_BUCKETS, CFG_V4_PREFIXES, CFG_V6_ALLOW, CFG_V6_PREFIXES, EntryValue, LenMask, V4Key,
    V6Key, entry_at, table4::v4_word, v4_exacts_of, v4_exacts_words_in, v4_filter_bit,
    v6_exacts_bit_of, v6_filter_bit_of, v6_lens_slot, v6_tier_lens,
};

use crate::{
    TD_V4_ALLOW, TD_V4_ALLOWED, TD_V4_BUCKETS, TD_V4_EXACT, TD_V4_EXACTS, TD_V4_FILTER,
    TD_V4_PREFIX, TD_V6_ALLOW, TD_V6_ALLOWED, TD_V6_EXACT, TD_V6_EXACTS, TD_V6_FILTER, TD_V6_LENS,
    TD_V6_PREFIX, TD_V6_PREFIXED, lookup6, parse::V6Addr,
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
    /// The exact entry holding `a` (the config flags `cfg` say the IPv4 filter's size).
    fn exact(a: &Self::Addr, cfg: u32) -> Option<*mut EntryValue>;
    /// Without prefixes loaded: the exact entry holding `a`, behind the prefilter.
    #[inline(always)]
    fn unprefixed(a: &Self::Addr, cfg: u32) -> Option<*mut EntryValue> {
        if Self::near(a) { Self::exact(a, cfg) } else { None }
    }
    /// With prefixes loaded: the exact entry holding `a` if it has a direction of `want`,
    /// else the longest prefix holding `a` if it does.
    fn listed(a: &Self::Addr, want: u32, cfg: u32) -> Option<*mut EntryValue>;
    fn allowed(a: &Self::Addr) -> bool;
    /// The address in 16 bytes (IPv4 in the first 4), as events carry it.
    fn wide(a: &Self::Addr) -> [u8; 16];
    /// The address in one word (the journal's flow tags).
    fn fold(a: &Self::Addr) -> u64;
    /// Where the matched value `e` lies (filter-common's `entry_at`): 0 when that cannot be
    /// told.
    fn at(e: Entry) -> u32;
}

pub struct V4;
pub struct V6;

/// Bit `n` of a prefilter map.
#[inline(always)]
pub fn bit(filter: &Array<u64>, n: u32) -> bool {
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
    /// The address's two buckets scanned, slot by slot; its value by the index the slot holds.
    #[inline(always)]
    fn exact(a: &V4Key, cfg: u32) -> Option<*mut EntryValue> {
        // The exact-address prefilter (four bits of a word, by hashes of the address) first,
        // of the size the flags carry (none said: the table is probed).
        let words = v4_exacts_words_in(cfg);
        let (word, bits) = v4_exacts_of(a, words);
        if words != 0 && !TD_V4_EXACTS.get(word).is_some_and(|w| w & bits == bits) {
            return None;
        }
        let index =
            crate::lookup4::index(&TD_V4_BUCKETS, v4_word(a), crate::config(CFG_V4_BUCKETS))?;
        TD_V4_EXACT.get_ptr_mut(index)
    }
    /// Without prefixes, the exact-address prefilter in `exact` is the only one: four bits of
    /// a word by hashes of the address, which an address next to a listed one finds not all
    /// set (but for one address in a hundred or more).
    #[inline(always)]
    fn unprefixed(a: &V4Key, cfg: u32) -> Option<*mut EntryValue> {
        V4::exact(a, cfg)
    }
    #[inline(always)]
    fn listed(a: &V4Key, want: u32, cfg: u32) -> Option<*mut EntryValue> {
        crate::lookup4::listed(a, want, cfg)
    }
    #[inline(always)]
    fn allowed(a: &V4Key) -> bool {
        bit(&TD_V4_ALLOWED, v4_filter_bit(a) >> ALLOWED_SHIFT)
            && TD_V4_ALLOW.get(Key::new(32, *a)).is_some()
    }
    #[inline(always)]
    fn at(e: Entry) -> u32 {
        at_in(e, &TD_V4_EXACT, &TD_V4_PREFIX, AT_V4_EXACT, AT_V4_PREFIX)
    }
    #[inline(always)]
    fn wide(a: &V4Key) -> [u8; 16] {
        // Two 8-byte words rather than a 16-byte memset and four byte stores; on this
        // little-endian target the address's bytes come first.
        let words = [u32::from_ne_bytes(*a) as u64, 0];
        // SAFETY: [u64; 2] and [u8; 16] have the same size, and every bit pattern is valid.
        unsafe { core::mem::transmute::<[u64; 2], [u8; 16]>(words) }
    }
    #[inline(always)]
    fn fold(a: &V4Key) -> u64 {
        u32::from_ne_bytes(*a) as u64
    }
}

impl Family for V6 {
    type Addr = V6Addr;
    const VERSION: u8 = 6;
    const PREFIXES: u32 = CFG_V6_PREFIXES;
    const ALLOW: u32 = CFG_V6_ALLOW;
    #[inline(always)]
    fn near(a: &V6Addr) -> bool {
        bit(&TD_V6_FILTER, v6_bit(a))
    }
    #[inline(always)]
    fn exact(a: &V6Addr, _: u32) -> Option<*mut EntryValue> {
        let (hi, lo) = halves(a);
        crate::lookup6::exact(hi, lo)
    }
    /// The exact address looked up only where the exact-address prefilter says one may lie.
    #[inline(always)]
    fn listed(a: &V6Addr, want: u32, cfg: u32) -> Option<*mut EntryValue> {
        // One prefix search, written once: inlined twice, it was a second copy for the
        // verifier to walk.
        let top = top32(a);
        let exact = match bit(&TD_V6_EXACTS, v6_exacts_bit_of(top)) {
            true => V6::exact(a, cfg).filter(|e| wanted(*e, want)),
            false => None,
        };
        exact.or_else(|| V6::prefix(a).filter(|e| wanted(*e, want)))
    }
    #[inline(always)]
    fn allowed(a: &V6Addr) -> bool {
        bit(&TD_V6_ALLOWED, v6_bit(a) >> ALLOWED_SHIFT) && v6_allowlisted(a)
    }
    #[inline(always)]
    fn wide(a: &V6Addr) -> [u8; 16] {
        // SAFETY: [u64; 2] and [u8; 16] have the same size; every bit pattern is valid.
        unsafe { core::mem::transmute::<V6Addr, [u8; 16]>(*a) }
    }
    #[inline(always)]
    fn fold(a: &V6Addr) -> u64 {
        a[0] ^ a[1]
    }
    #[inline(always)]
    fn at(e: Entry) -> u32 {
        at_in(e, &TD_V6_EXACT, &TD_V6_PREFIX, AT_V6_EXACT, AT_V6_PREFIX)
    }
}

impl V6 {
    /// The prefix lengths that may cover the address whose first half is `hi`: each tier's
    /// own lengths from the tier's slot of its key ([`v6_lens_slot`]). The slots always lie
    /// inside the array, whose size is fixed: the lookups cannot fail. (Taking every length
    /// should one fail had the verifier walk a search of 128 lengths known exactly, one step a
    /// length, for every state that reaches it: with the IPv6 table's probe in each step, over
    /// its limit.)
    #[inline(always)]
    fn lens(hi: u64) -> Option<LenMask> {
        let tier = |t: usize| Some(v6_tier_lens(*TD_V6_LENS.get(v6_lens_slot(hi, t))?, t));
        const { assert!(filter_common::V6_TIERS.len() == 5) };
        Some(tier(0)? | tier(1)? | tier(2)? | tier(3)? | tier(4)?)
    }
    /// The longest prefix, by length among those that may cover the address: the longest
    /// length inline, the others (up to 127) in `bpf_loop`, one step a length present, which
    /// the verifier checks once.
    #[inline(always)]
    fn prefix(a: &V6Addr) -> Option<*mut EntryValue> {
        if !bit(&TD_V6_PREFIXED, v6_bit(a)) {
            return None;
        }
        let (hi, lo) = halves(a);
        let mut lens = V6::lens(hi)?;
        // The longest length first, inline: where it holds the address (the usual hit), no
        // helper call and no second lookup.
        let longest = lens.take_longest_v6()?;
        let index = lookup6::prefix_index(&longest, hi, lo);
        if index != NOT_FOUND {
            return lookup6::prefix_entry(index);
        }
        let mut search = V6Search { lens, hi, lo, found: NOT_FOUND };
        let ctx = &mut search as *mut V6Search as *mut c_void;
        let present = lens.hi.count_ones() + lens.lo.count_ones();
        // SAFETY: `v6_step` is a callback of the type bpf_loop expects, and `ctx` points at
        // `search`, which outlives the call.
        unsafe { bpf_loop(present, v6_step as *mut c_void, ctx, 0) };
        lookup6::prefix_entry(search.found)
    }
}

/// Where value `e` lies: in the exact table (`exact`, named `at_exact`) or the prefix table
/// (`prefix`, `at_prefix`) of its family, at its byte offset from the first value. Each table's
/// values are one array: `e` lies in the one it is the least above (the differences of
/// pointers, scalars to a loader with CAP_PERFMON, as takedown's is).
#[inline(always)]
fn at_in(
    e: Entry,
    exact: &Array<EntryValue>,
    prefix: &Array<EntryValue>,
    at_exact: u32,
    at_prefix: u32,
) -> u32 {
    let (Some(x), Some(p)) = (exact.get_ptr_mut(0), prefix.get_ptr_mut(0)) else { return 0 };
    let e = e.as_ptr() as u64;
    let (in_exact, in_prefix) = (e.wrapping_sub(x as u64), e.wrapping_sub(p as u64));
    if in_exact <= in_prefix {
        entry_at(at_exact, in_exact)
    } else {
        entry_at(at_prefix, in_prefix)
    }
}

/// No prefix found (a search's result).
pub const NOT_FOUND: u32 = u32::MAX;

/// Every length: what a failed lengths lookup (never seen) is taken for.
pub const EVERY_LENGTH: LenMask = LenMask { lo: u64::MAX, hi: u64::MAX };

/// What `v6_step` searches: a slot's lengths left, the address, and the value index found.
#[repr(C)]
struct V6Search {
    lens: LenMask,
    hi: u64,
    lo: u64,
    found: u32,
}

/// One step of the search: the longest length left in the set, taken out of it and probed;
/// when that prefix is listed, the loop ends. bpf_loop runs as many steps as the set holds
/// lengths.
extern "C" fn v6_step(_: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: bpf_loop passes back the pointer to the caller's `V6Search`.
    let s = unsafe { &mut *(ctx as *mut V6Search) };
    let Some(probe) = s.lens.take_longest_v6() else { return 1 };
    s.found = lookup6::prefix_index(&probe, s.hi, s.lo);
    i64::from(s.found != NOT_FOUND)
}

/// True when the allowlist trie holds `a`: looked up by a key of length 128, written in 4-byte words,
/// each with a store of its own: the address lies 4 bytes into the key, and 8-byte stores
/// there (which LLVM would merge the words into, the target allowing misaligned access) are
/// misaligned stack stores the verifier refuses.
#[inline(always)]
fn v6_allowlisted(a: &V6Addr) -> bool {
    let (w0, w1) = (a[0], a[1]);
    let mut key = [0u32; 5];
    let words = [128, w0 as u32, (w0 >> 32) as u32, w1 as u32, (w1 >> 32) as u32];
    for (i, w) in words.into_iter().enumerate() {
        // SAFETY: `i` < 5, inside `key`.
        unsafe { core::ptr::write_volatile(key.as_mut_ptr().add(i), w) };
    }
    // SAFETY: `Key<V6Key>` is `repr(C)` { u32, [u8; 16] }: 20 bytes aligned to 4, every bit
    // pattern valid, the layout of [u32; 5] (the words hold the address's bytes in order: the
    // target is little-endian); read in place (a copy would merge the stores).
    let key = unsafe { &*(key.as_ptr() as *const Key<V6Key>) };
    TD_V6_ALLOW.get(key).is_some()
}

/// An IPv6 address in two big-endian halves.
#[inline(always)]
fn halves(a: &V6Addr) -> (u64, u64) {
    (u64::from_be(a[0]), u64::from_be(a[1]))
}

/// The address's first 32 bits, big-endian (its prefilter bits' input).
#[inline(always)]
fn top32(a: &V6Addr) -> u32 {
    u32::from_be(a[0] as u32)
}

/// The address's bit in the IPv6 prefilters (the allowlist's: shifted).
#[inline(always)]
fn v6_bit(a: &V6Addr) -> u32 {
    v6_filter_bit_of(top32(a))
}

/// True when the entry `e` has a direction of `want`.
#[inline(always)]
pub fn wanted(e: *mut EntryValue, want: u32) -> bool {
    // SAFETY: `e` is a map value a lookup just returned; it stays valid for this run.
    unsafe { (*e).flags & want != 0 }
}

/// A matched entry's value in its map. Never null, so that `Option<Entry>` is one register:
/// an `Option<*mut _>` carries a tag beside the pointer, and the pointer of a `None` is an
/// uninitialised stack slot that kernels before 6.5 refuse to let a program read.
pub type Entry = core::ptr::NonNull<EntryValue>;

/// `cfg` before the config flags are read.
pub const UNREAD: u32 = u32::MAX;

/// The entry that matches `addr` for the directions in `want`. The config flags (`cfg`) are
/// read once a packet, by the first lookup.
#[inline(always)]
pub fn matched<F: Family>(addr: &F::Addr, want: u32, cfg: &mut u32) -> Option<Entry> {
    if *cfg == UNREAD {
        *cfg = crate::config(CFG_FLAGS);
    }
    let cfg = *cfg;
    let hit = if cfg & F::PREFIXES == 0 {
        F::unprefixed(addr, cfg).filter(|e| wanted(*e, want))
    } else if F::near(addr) {
        F::listed(addr, want, cfg)
    } else {
        None
    }?;
    if cfg & F::ALLOW != 0 && F::allowed(addr) {
        return None;
    }
    Entry::new(hit)
}
