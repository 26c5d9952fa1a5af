//! One lookup for both address families. A [`Family`] names its maps and key layout; `matched`
//! is written once: first the prefilter (one array load: no entry near this address, no
//! lookup: a miss costs the same whatever the lists hold), then the exact entry if it has one
//! of the wanted directions, else (when the loader says the trie holds entries) the longest
//! prefix if it does; never an allowlisted address (the allowlist is consulted only for a
//! listed address, so misses never pay for it).

use aya_ebpf::maps::Array;
use aya_ebpf::maps::lpm_trie::Key;
use filter_common::{
    CFG_V4_ALLOW, CFG_V4_PREFIXES, CFG_V6_ALLOW, CFG_V6_PREFIXES, EntryValue, V4Key, V4PrefixKey,
    V6Key, v4_filter_bit, v4_lens_slot, v6_filter_bit,
};

use crate::{
    TD_V4_ALLOW, TD_V4_ALLOWED, TD_V4_EXACT, TD_V4_FILTER, TD_V4_LENS, TD_V4_PREFIX, TD_V6_ALLOW,
    TD_V6_ALLOWED, TD_V6_EXACT, TD_V6_FILTER, TD_V6_PREFIX,
};

/// An address family: its maps, its key layout and its `CFG_*` flags.
pub trait Family {
    type Addr;
    /// 4 or 6, as events carry it.
    const VERSION: u8;
    /// The flag saying its prefix trie holds entries.
    const PREFIXES: u32;
    /// The flag saying its allowlist holds entries.
    const ALLOW: u32;
    /// False when no entry can cover `a` (its prefilter bit is clear).
    fn near(a: &Self::Addr) -> bool;
    fn exact(a: &Self::Addr) -> Option<*mut EntryValue>;
    fn prefix(a: &Self::Addr) -> Option<*mut EntryValue>;
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

/// An IPv6 trie value as the pointer the hit path adds to. The kernel returns a pointer into the
/// map's value memory, which the program may write (the map is not BPF_F_RDONLY_PROG): aya-ebpf
/// only types it as a shared reference. The hit path writes it with atomic adds and one plain
/// store of the last-hit time, exactly as it writes hash map values.
#[inline(always)]
fn writable(v: &EntryValue) -> *mut EntryValue {
    v as *const EntryValue as *mut EntryValue
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
    fn exact(a: &V4Key) -> Option<*mut EntryValue> {
        TD_V4_EXACT.get_ptr_mut(a)
    }
    /// The longest prefix, by length among those present in the address's /16.
    #[inline(always)]
    fn prefix(a: &V4Key) -> Option<*mut EntryValue> {
        let lens = *TD_V4_LENS.get(v4_lens_slot(a))?;
        let addr = u32::from_be_bytes(*a);
        let mut len = 32u32;
        while len > 0 {
            len -= 1;
            if lens & (1 << len) == 0 {
                continue;
            }
            let masked = if len == 0 { 0 } else { addr & (u32::MAX << (32 - len)) };
            let key = V4PrefixKey { len, addr: masked.to_be_bytes() };
            if let Some(v) = TD_V4_PREFIX.get_ptr_mut(key) {
                return Some(v);
            }
        }
        None
    }
    #[inline(always)]
    fn allowed(a: &V4Key) -> bool {
        bit(&TD_V4_ALLOWED, v4_filter_bit(a)) && TD_V4_ALLOW.get(Key::new(32, *a)).is_some()
    }
    #[inline(always)]
    fn wide(a: &V4Key) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[0] = a[0];
        out[1] = a[1];
        out[2] = a[2];
        out[3] = a[3];
        out
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
    fn exact(a: &V6Key) -> Option<*mut EntryValue> {
        TD_V6_EXACT.get_ptr_mut(a)
    }
    #[inline(always)]
    fn prefix(a: &V6Key) -> Option<*mut EntryValue> {
        TD_V6_PREFIX.get(Key::new(128, *a)).map(writable)
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

/// The entry that matches `addr` for the directions in `want`, under config flags `cfg`.
#[inline(always)]
pub fn matched<F: Family>(addr: &F::Addr, want: u32, cfg: u32) -> Option<*mut EntryValue> {
    if !F::near(addr) {
        return None;
    }
    // SAFETY: `e` is a map value a lookup just returned; it stays valid for this run.
    let wanted = |e: &*mut EntryValue| unsafe { (**e).flags } & want != 0;
    let hit = F::exact(addr).filter(wanted).or_else(|| {
        if cfg & F::PREFIXES == 0 {
            return None;
        }
        F::prefix(addr).filter(wanted)
    })?;
    if cfg & F::ALLOW != 0 && F::allowed(addr) {
        return None;
    }
    Some(hit)
}
