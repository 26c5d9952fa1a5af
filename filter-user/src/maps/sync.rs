//! The only code that writes the filter's entries: fills the maps from a [`Plan`], moves them
//! from one plan to the next, and makes the single-entry edits of `takedown add`/`remove`.
//!
//! Moving never clears a map. It applies a [`Diff`]: first the trie and allowlist flags and the
//! prefilter bits of both plans, then every write (allowlist first, then exact entries, then
//! prefixes), then every delete, then the prefilter bits and flags of the new plan. An entry present in both plans is never missing, not
//! even for one packet, and an allowlisted address is never unprotected. Entries whose lists or
//! direction change keep their hit counters.

use anyhow::Result;
use filter_common::{CFG_FLAGS, CFG_V4_PREFIXES, CFG_V6_PREFIXES, EntryValue, HINT_WORDS};
use ipnet::IpNet;

use super::{
    AddressMaps, FamilyMaps, Table, WriteMode,
    filter::Capacities,
    prefilter::{self, Step},
    table,
};
use crate::plan::{
    Meta, Plan, Tables,
    diff::{Diff, FamilyDiff, Write, allow_entries, config_flags},
    prefix_key,
};

/// What a move changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Entries inserted or updated.
    pub written: usize,
    /// Entries deleted.
    pub deleted: usize,
}

/// Writes every entry of `plan` into empty maps and sets the config flags.
pub fn fill(maps: &mut AddressMaps, plan: &Plan) -> Result<()> {
    fill_with(maps, plan, WriteMode::Batched)
}

/// [`fill`] with a chosen [`WriteMode`]: the moves from no plan, the entries written
/// straight from the plan (no diff: a million entries are not copied first).
pub fn fill_with(maps: &mut AddressMaps, plan: &Plan, mode: WriteMode) -> Result<()> {
    let arrays = prefilter::moves(&Plan::default(), plan, shape(maps)?);
    set_flags(maps, config_flags(plan))?;
    put_arrays(maps, &arrays, Step::During)?;
    fill_family(&mut maps.v4, &plan.v4, mode)?;
    fill_family(&mut maps.v6, &plan.v6, mode)?;
    put_arrays(maps, &arrays, Step::After)?;
    maps.stamp()
}

fn fill_family<const N: usize>(
    maps: &mut FamilyMaps<N>,
    t: &Tables<N>,
    mode: WriteMode,
) -> Result<()> {
    fill_table(maps.allow.as_mut(), &allow_entries(&t.allow), mode)?;
    fill_table(maps.exact.as_mut(), &t.exact, mode)?;
    fill_table(maps.prefix.as_mut(), &t.prefix, mode)
}

/// Writes `entries` into an empty table, a slab at a time.
fn fill_table<K: Copy>(
    table: &mut dyn Table<K>,
    entries: &[(K, Meta)],
    mode: WriteMode,
) -> Result<()> {
    for (i, slab) in entries.chunks(table::SLAB).enumerate() {
        let items: Vec<(K, EntryValue)> = slab.iter().map(|(k, m)| (*k, table::value(m))).collect();
        let at = i * table::SLAB..i * table::SLAB + slab.len();
        put_new(table, &items, at, entries.len(), mode)?;
    }
    Ok(())
}

/// Writes `items`, the new entries of slab `slab` (entry positions) of a write of `total`
/// (for its messages).
fn put_new<K>(
    table: &mut dyn Table<K>,
    items: &[(K, EntryValue)],
    slab: std::ops::Range<usize>,
    total: usize,
    mode: WriteMode,
) -> Result<()> {
    let at = || format!("writing entries {}-{} of {total}", slab.start + 1, slab.end);
    table.put(items, mode).map_err(|e| e.context(at()))
}

/// Moves the maps from `old` (what they hold) to `new`, writing before deleting.
pub fn apply(maps: &mut AddressMaps, old: &Plan, new: &Plan) -> Result<Changes> {
    match move_with(maps, old, new, WriteMode::Batched, None)? {
        Applied::Done(changes, _) => Ok(changes),
        Applied::Overflow(..) => unreachable!("no capacity was checked"),
    }
}

/// A move a map cannot hold: the map, its capacity, the entries it would hold at the peak of
/// the move. Shown as "{map} map holds at most {cap} entries and the move to the lists needs
/// {needs}".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overflow {
    pub map: &'static str,
    pub cap: u32,
    pub needs: usize,
}

impl std::fmt::Display for Overflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Overflow { map, cap, needs } = self;
        write!(f, "{map} map holds at most {cap} entries and the move to the lists needs {needs}")
    }
}

/// What [`apply_within`] did.
pub enum Applied {
    /// The maps moved: what was written, and the diff applied (what it added: the connection
    /// journal's question).
    Done(Changes, Box<Diff>),
    /// Nothing was written: the move would pass a map's capacity.
    Overflow(Overflow),
}

/// [`apply`] when maps of capacities `caps` hold the move, checked on its diff (computed once)
/// before anything is written.
pub fn apply_within(
    maps: &mut AddressMaps,
    old: &Plan,
    new: &Plan,
    caps: &Capacities,
) -> Result<Applied> {
    move_with(maps, old, new, WriteMode::Batched, Some(caps))
}

/// Applies the diff between `old` and `new`, and the prefilter moves, in the promised order
/// (nothing when the diff passes `caps`).
fn move_with(
    maps: &mut AddressMaps,
    old: &Plan,
    new: &Plan,
    mode: WriteMode,
    caps: Option<&Capacities>,
) -> Result<Applied> {
    let (diff, arrays) = diff_and_moves(old, new, shape(maps)?);
    if let Some(o) = caps.and_then(|c| c.overflow(old, &diff)) {
        return Ok(Applied::Overflow(o));
    }
    set_flags(maps, diff.flags_during)?;
    put_arrays(maps, &arrays, Step::During)?;
    write_family(&mut maps.v4, &diff.v4, mode)?;
    write_family(&mut maps.v6, &diff.v6, mode)?;
    delete_family(&mut maps.v4, &diff.v4)?;
    delete_family(&mut maps.v6, &diff.v6)?;
    put_arrays(maps, &arrays, Step::After)?;
    set_flags(maps, diff.flags_after)?;
    maps.stamp()?;
    Ok(Applied::Done(Changes { written: diff.writes(), deleted: diff.deletes() }, Box::new(diff)))
}

/// Sets the config flags to `flags` and those that come from no plan.
fn set_flags(maps: &mut AddressMaps, flags: u32) -> Result<()> {
    maps.settings.set(CFG_FLAGS, flags | maps.extra_flags)
}

/// The diff between `old` and `new`, and the prefilter moves between them (for large plans,
/// on two threads).
fn diff_and_moves(old: &Plan, new: &Plan, shape: prefilter::Shape) -> (Diff, prefilter::AllMoves) {
    if old.len().max(new.len()) < crate::parallel::LARGE {
        return (Diff::between(old, new), prefilter::moves(old, new, shape));
    }
    std::thread::scope(|s| {
        let moves = s.spawn(|| prefilter::moves(old, new, shape));
        (Diff::between(old, new), moves.join().expect("prefilter moves"))
    })
}

/// The shape of the maps' arrays: whether the IPv4 prefix hints are in use (created at full
/// size), and the words of the IPv4 exact-address prefilter.
fn shape(maps: &AddressMaps) -> Result<prefilter::Shape> {
    let hints = maps.v4.hints.as_deref();
    let hinted = hints.is_some_and(|h| h.capacity().is_ok_and(|c| c >= HINT_WORDS));
    Ok(prefilter::Shape { hinted, exact_words: maps.v4.exacts.capacity()? })
}

/// Writes one step of the prefilters' and lengths' moves.
fn put_arrays(maps: &mut AddressMaps, m: &prefilter::AllMoves, step: Step) -> Result<()> {
    put_slots(maps.v4.filter.as_mut(), m.v4.step(step))?;
    put_slots(maps.v6.filter.as_mut(), m.v6.step(step))?;
    put_slots(maps.v4.allowed.as_mut(), m.allowed_v4.step(step))?;
    put_slots(maps.v6.allowed.as_mut(), m.allowed_v6.step(step))?;
    put_slots(maps.v4.lens.as_mut(), m.lens_v4.step(step))?;
    put_slots(maps.v6.lens.as_mut(), m.lens_v6.step(step))?;
    put_slots(maps.v4.prefixed.as_mut(), m.prefixed_v4.step(step))?;
    put_slots(maps.v6.prefixed.as_mut(), m.prefixed_v6.step(step))?;
    put_slots(maps.v4.exacts.as_mut(), m.exacts_v4.step(step))?;
    put_slots(maps.v6.exacts.as_mut(), m.exacts_v6.step(step))?;
    match maps.v4.hints.as_mut() {
        Some(hints) => put_slots(hints.as_mut(), m.hints_v4.step(step)),
        None => Ok(()),
    }
}

fn put_slots<V: Copy>(map: &mut dyn prefilter::Words<V>, slots: &[(u32, V)]) -> Result<()> {
    if slots.is_empty() { Ok(()) } else { map.put(slots) }
}

fn write_family<const N: usize>(
    maps: &mut FamilyMaps<N>,
    d: &FamilyDiff<N>,
    mode: WriteMode,
) -> Result<()> {
    put(maps.allow.as_mut(), &d.allow.write, mode)?;
    put(maps.exact.as_mut(), &d.exact.write, mode)?;
    put(maps.prefix.as_mut(), &d.prefix.write, mode)
}

fn delete_family<const N: usize>(maps: &mut FamilyMaps<N>, d: &FamilyDiff<N>) -> Result<()> {
    delete(maps.exact.as_mut(), &d.exact.delete)?;
    delete(maps.prefix.as_mut(), &d.prefix.delete)?;
    delete(maps.allow.as_mut(), &d.allow.delete)
}

fn delete<K>(table: &mut dyn Table<K>, keys: &[K]) -> Result<()> {
    if keys.is_empty() { Ok(()) } else { table.delete(keys) }
}

/// Writes `writes`: a held entry gets its new flags and lists and keeps its hit counters
/// (`Table::update_held`), and new entries go in batches, a slab at a time (a million
/// entries' values are never all held at once).
fn put<K: Copy>(table: &mut dyn Table<K>, writes: &[Write<K>], mode: WriteMode) -> Result<()> {
    let total = writes.len();
    for (i, slab) in writes.chunks(table::SLAB).enumerate() {
        let (held, fresh): (Vec<_>, Vec<_>) = slab.iter().partition(|w| w.held);
        let values = |ws: Vec<&Write<K>>| -> Vec<(K, EntryValue)> {
            ws.into_iter().map(|w| (w.key, table::value(&w.meta))).collect()
        };
        if !held.is_empty() {
            table.update_held(&values(held))?;
        }
        if !fresh.is_empty() {
            let range = i * table::SLAB..i * table::SLAB + slab.len();
            put_new(table, &values(fresh), range, total, mode)?;
        }
    }
    Ok(())
}

/// What an edit did.
#[derive(Debug, PartialEq, Eq)]
pub enum Edit {
    Inserted,
    Updated,
    Deleted,
    Absent,
}

/// Adds `meta` to the entry for `net` itself (creating it), for the manual list.
pub fn upsert(maps: &mut AddressMaps, net: IpNet, meta: Meta) -> Result<Edit> {
    let join = |v: Option<EntryValue>| {
        let mut v = v.unwrap_or_default();
        v.flags |= meta.flags;
        v.lists |= meta.lists;
        Some(v)
    };
    let edit = edit(maps, net, join)?;
    if net.prefix_len() < net.max_prefix_len() {
        let flag = if net.addr().is_ipv4() { CFG_V4_PREFIXES } else { CFG_V6_PREFIXES };
        let flags = maps.settings.get(CFG_FLAGS)?;
        maps.settings.set(CFG_FLAGS, flags | flag)?;
    }
    Ok(edit)
}

/// Takes the `lists` bits off the entry for `net`; deletes it when no list is left.
pub fn remove_lists(maps: &mut AddressMaps, net: IpNet, lists: u64) -> Result<Edit> {
    edit(maps, net, |v| {
        v.and_then(|mut v| {
            v.lists &= !lists;
            (v.lists != 0).then_some(v)
        })
    })
}

type Change<'a> = dyn Fn(Option<EntryValue>) -> Option<EntryValue> + 'a;

fn edit(
    maps: &mut AddressMaps,
    net: IpNet,
    f: impl Fn(Option<EntryValue>) -> Option<EntryValue>,
) -> Result<Edit> {
    let net = net.trunc();
    let edit = match net {
        IpNet::V4(_) => edit_family(&mut maps.v4, &net, &f)?,
        IpNet::V6(_) => edit_family(&mut maps.v6, &net, &f)?,
    };
    maps.stamp()?;
    Ok(edit)
}

fn edit_family<const N: usize>(
    maps: &mut FamilyMaps<N>,
    net: &IpNet,
    f: &Change<'_>,
) -> Result<Edit> {
    let (len, addr) = prefix_key::<N>(net);
    // Bits first (a removed entry leaves its bits: a clear bit must never hide an entry).
    let arrays = prefilter::EntryArrays {
        filter: maps.filter.as_mut(),
        prefixed: maps.prefixed.as_mut(),
        lens: maps.lens.as_mut(),
        hints: maps.hints.as_mut().map(|h| h.as_mut() as &mut dyn prefilter::Words<_>),
        exacts: maps.exacts.as_mut(),
    };
    prefilter::cover_entry(arrays, len, &addr)?;
    if usize::from(len) == N * 8 {
        edit_in(maps.exact.as_mut(), addr, f)
    } else {
        edit_in(maps.prefix.as_mut(), (len, addr), f)
    }
}

/// Applies `f` to the entry `key` itself (None: absent; returning None deletes it).
fn edit_in<K: Copy>(table: &mut dyn Table<K>, key: K, f: &Change<'_>) -> Result<Edit> {
    let old = if table.holds(&key)? { table.get(&key)? } else { None };
    let new = f(old);
    let edit = match (old, new) {
        (None, None) => return Ok(Edit::Absent),
        (Some(o), Some(n)) if o == n => return Ok(Edit::Updated),
        (Some(_), None) => Edit::Deleted,
        (None, Some(_)) => Edit::Inserted,
        (Some(_), Some(_)) => Edit::Updated,
    };
    match new {
        Some(v) if edit == Edit::Updated => table.update_held(&[(key, v)])?,
        Some(v) => table.put(&[(key, v)], WriteMode::PerElement)?,
        None => table.delete(&[key])?,
    }
    Ok(edit)
}

#[cfg(test)]
#[path = "sync_tests.rs"]
mod tests;
