//! IPv6 table lookups (filter-common's `table4` layout, with the keys beside the values): the
//! key's hash names a word and two buckets; in each bucket, the one slot holding that word (a
//! bucket never holds a word twice) has its key compared, the first bucket's first.

use aya_ebpf::maps::Array;
use filter_common::{
    Bucket, CFG_V6_BUCKETS, CFG_V6_PREFIX_BUCKETS, EntryValue, V6Probe,
    table4::{V6_EXACT_TAG, V6Stored, v6_buckets, v6_hash, v6_word},
};

use crate::{
    TD_V6_BUCKETS, TD_V6_EXACT, TD_V6_KEYS, TD_V6_PREFIX, TD_V6_PREFIX_BUCKETS, TD_V6_PREFIX_KEYS,
    lookup::NOT_FOUND, lookup4::in_bucket,
};

/// The exact entry of the address whose halves are `hi`, `lo`.
#[inline(always)]
pub fn exact(hi: u64, lo: u64) -> Option<*mut EntryValue> {
    match td_v6_exact_index(&V6Stored { hi, lo, tag: V6_EXACT_TAG }) {
        NOT_FOUND => None,
        index => TD_V6_EXACT.get_ptr_mut(index),
    }
}

/// The value index of the prefix of the address whose halves are `hi`, `lo` at the length
/// `p` stands for, or [`NOT_FOUND`].
#[inline(always)]
pub fn prefix_index(p: &V6Probe, hi: u64, lo: u64) -> u32 {
    td_v6_prefix_index(&V6Stored { hi: hi & p.hi_mask, lo: lo & p.lo_mask, tag: p.tag })
}

/// The prefix entry at value index `index` ([`NOT_FOUND`]: none).
#[inline(always)]
pub fn prefix_entry(index: u32) -> Option<*mut EntryValue> {
    match index {
        NOT_FOUND => None,
        index => TD_V6_PREFIX.get_ptr_mut(index),
    }
}

// The two scans are global functions, which the verifier checks once, on their own, rather
// than once for every state a caller reaches them in; and the key is passed in memory, so
// that the callers' lengths need not be tracked exactly (a prefix search's states then differ
// by their lengths alone, and the search's loop never settled: over the million instructions
// the verifier checks, as it was with the scans inlined).

/// The value index of exact address `key`, or [`NOT_FOUND`].
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn td_v6_exact_index(key: *const V6Stored) -> u32 {
    // SAFETY: the callers pass a key on their stack; the verifier has a global function check
    // for null all the same.
    let Some(key) = (unsafe { key.as_ref() }) else { return NOT_FOUND };
    let count = crate::config(CFG_V6_BUCKETS);
    find(&TD_V6_BUCKETS, &TD_V6_KEYS, count, key).unwrap_or(NOT_FOUND)
}

/// The value index of prefix `key`, or [`NOT_FOUND`].
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn td_v6_prefix_index(key: *const V6Stored) -> u32 {
    // SAFETY: as in `td_v6_exact_index`.
    let Some(key) = (unsafe { key.as_ref() }) else { return NOT_FOUND };
    let count = crate::config(CFG_V6_PREFIX_BUCKETS);
    find(&TD_V6_PREFIX_BUCKETS, &TD_V6_PREFIX_KEYS, count, key).unwrap_or(NOT_FOUND)
}

/// The value index of `key` in the table of `buckets` (`count` of them) and `keys`. Written
/// without closures: one that is not inlined becomes a function both tables share, and the
/// verifier then leaves its map lookups to the (slower) helper call.
#[inline(always)]
fn find(
    buckets: &Array<Bucket>,
    keys: &Array<V6Stored>,
    count: u32,
    key: &V6Stored,
) -> Option<u32> {
    let hash = v6_hash(key.hi, key.lo, key.tag);
    let (word, [b0, b1]) = (v6_word(hash), v6_buckets(hash, count));
    if let Some(i) = in_bucket(buckets, b0, word)
        && holds(keys, i, key)
    {
        return Some(i);
    }
    match in_bucket(buckets, b1, word) {
        Some(i) if holds(keys, i, key) => Some(i),
        _ => None,
    }
}

/// True when the key at `i` of `keys` is `key`.
#[inline(always)]
fn holds(keys: &Array<V6Stored>, i: u32, key: &V6Stored) -> bool {
    match keys.get(i) {
        Some(k) => k.hi == key.hi && k.lo == key.lo && k.tag == key.tag,
        None => false,
    }
}
