//! What moves the maps from one plan to the next: for each address map, the entries to write
//! (new, or changed, with whether the map already holds the key) and the keys to delete; and the
//! `CFG_*` flags to hold while moving and after. Pure: `maps::sync` applies a diff in the order
//! the design promises (flags of both plans, every write, every delete, flags of the new plan).

use filter_common::{
    AddressMap, CFG_V4_ALLOW, CFG_V4_PREFIXES, CFG_V6_ALLOW, CFG_V6_PREFIXES, Family as Fam,
    MapKind,
};

use super::{Meta, Plan, PrefixKey, Tables, keys::Ordinal};

/// An entry to insert or update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Write<K> {
    pub key: K,
    pub meta: Meta,
    /// The map holds this key already (its counters are carried over).
    pub held: bool,
}

/// One map's part of a diff.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delta<K> {
    pub write: Vec<Write<K>>,
    pub delete: Vec<K>,
}

impl<K> Default for Delta<K> {
    fn default() -> Self {
        Self { write: Vec::new(), delete: Vec::new() }
    }
}

/// One family's part of a diff.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FamilyDiff<const N: usize> {
    pub exact: Delta<[u8; N]>,
    pub prefix: Delta<PrefixKey<N>>,
    pub allow: Delta<PrefixKey<N>>,
}

/// Everything that moves the maps from one plan to another.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diff {
    pub v4: FamilyDiff<4>,
    pub v6: FamilyDiff<16>,
    /// Flags while moving: those of both plans, so that no trie or allowlist is skipped.
    pub flags_during: u32,
    /// Flags of the new plan.
    pub flags_after: u32,
}

impl Diff {
    /// The diff that moves maps holding `old` to `new`.
    pub fn between(old: &Plan, new: &Plan) -> Self {
        Self {
            v4: family(&old.v4, &new.v4),
            v6: family(&old.v6, &new.v6),
            flags_during: config_flags(old) | config_flags(new),
            flags_after: config_flags(new),
        }
    }

    /// Entries written (inserted or updated).
    pub fn writes(&self) -> usize {
        self.v4.writes() + self.v6.writes()
    }

    /// Entries deleted.
    pub fn deletes(&self) -> usize {
        self.v4.deletes() + self.v6.deletes()
    }

    /// New keys (not updates) the move writes into address map `m`.
    pub fn inserts(&self, m: &AddressMap) -> usize {
        match m.family {
            Fam::V4 => self.v4.inserts(m.kind),
            Fam::V6 => self.v6.inserts(m.kind),
        }
    }
}

impl<const N: usize> FamilyDiff<N> {
    /// The networks the move inserts (not those it updates), exact and prefix.
    pub fn added(&self) -> impl Iterator<Item = ipnet::IpNet> + '_ {
        let exact = self.exact.write.iter().filter(|w| !w.held);
        let prefix = self.prefix.write.iter().filter(|w| !w.held);
        let exact = exact.map(|w| super::net(&w.key, (N * 8) as u8));
        exact.chain(prefix.map(|w| super::net(&w.key.1, w.key.0)))
    }

    fn inserts(&self, kind: MapKind) -> usize {
        fn new<K>(d: &Delta<K>) -> usize {
            d.write.iter().filter(|w| !w.held).count()
        }
        match kind {
            MapKind::Exact => new(&self.exact),
            MapKind::Prefix => new(&self.prefix),
            MapKind::Allow => new(&self.allow),
        }
    }

    fn writes(&self) -> usize {
        self.exact.write.len() + self.prefix.write.len() + self.allow.write.len()
    }

    fn deletes(&self) -> usize {
        self.exact.delete.len() + self.prefix.delete.len() + self.allow.delete.len()
    }
}

fn family<const N: usize>(old: &Tables<N>, new: &Tables<N>) -> FamilyDiff<N> {
    FamilyDiff {
        exact: changes(&old.exact, &new.exact),
        prefix: changes(&old.prefix, &new.prefix),
        allow: changes(&allow_entries(&old.allow), &allow_entries(&new.allow)),
    }
}

/// Allowlist networks as entries (their maps store no metadata).
pub fn allow_entries<K: Copy>(keys: &[K]) -> Vec<(K, Meta)> {
    keys.iter().map(|k| (*k, Meta::default())).collect()
}

/// The writes and deletes between two key-sorted entry lists (a merge walk: no hashing, no
/// per-entry allocation; unsorted input is sorted first).
fn changes<K: Ordinal>(old: &[(K, Meta)], new: &[(K, Meta)]) -> Delta<K> {
    let (old, new) = (sorted(old), sorted(new));
    let mut out = Delta::default();
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        let order = match (old.get(i), new.get(j)) {
            (Some(o), Some(n)) => o.0.ordinal().cmp(&n.0.ordinal()),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Less => {
                out.delete.push(old[i].0);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.write.push(Write { key: new[j].0, meta: new[j].1, held: false });
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                if old[i].1 != new[j].1 {
                    out.write.push(Write { key: new[j].0, meta: new[j].1, held: true });
                }
                i += 1;
                j += 1;
            }
        }
    }
    out
}

fn sorted<K: Ordinal>(items: &[(K, Meta)]) -> std::borrow::Cow<'_, [(K, Meta)]> {
    if items.is_sorted_by_key(|(k, _)| k.ordinal()) {
        std::borrow::Cow::Borrowed(items)
    } else {
        let mut v = items.to_vec();
        v.sort_unstable_by_key(|(k, _)| k.ordinal());
        std::borrow::Cow::Owned(v)
    }
}

/// The `CFG_*` flags a plan needs: look up a trie or allowlist only when it holds entries.
pub fn config_flags(plan: &Plan) -> u32 {
    let mut flags = 0;
    for (used, flag) in [
        (!plan.v4.prefix.is_empty(), CFG_V4_PREFIXES),
        (!plan.v6.prefix.is_empty(), CFG_V6_PREFIXES),
        (!plan.v4.allow.is_empty(), CFG_V4_ALLOW),
        (!plan.v6.allow.is_empty(), CFG_V6_ALLOW),
    ] {
        if used {
            flags |= flag;
        }
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(flags: u32, lists: u64) -> Meta {
        Meta { flags, lists }
    }

    #[test]
    fn writes_new_and_changed_deletes_gone_and_skips_unchanged() {
        let old = vec![([1u8, 0, 0, 1], m(3, 1)), ([1, 0, 0, 2], m(3, 1)), ([1, 0, 0, 3], m(3, 1))];
        let new = vec![([1u8, 0, 0, 2], m(1, 1)), ([1, 0, 0, 3], m(3, 1)), ([1, 0, 0, 4], m(3, 2))];
        let c = changes(&old, &new);
        assert_eq!(
            c.write,
            vec![
                Write { key: [1, 0, 0, 2], meta: m(1, 1), held: true },
                Write { key: [1, 0, 0, 4], meta: m(3, 2), held: false },
            ]
        );
        assert_eq!(c.delete, vec![[1, 0, 0, 1]]);
    }

    #[test]
    fn unsorted_input_gives_the_same_changes() {
        let old = vec![([9u8], m(1, 1)), ([1], m(1, 1))];
        let new = vec![([5u8], m(1, 1)), ([9], m(1, 1))];
        let c = changes(&old, &new);
        assert_eq!(c.write, vec![Write { key: [5], meta: m(1, 1), held: false }]);
        assert_eq!(c.delete, vec![[1]]);
    }

    #[test]
    fn flags_cover_both_plans_while_moving() {
        let mut old = Plan::default();
        old.v4.prefix.push(((24, [192, 0, 2, 0]), m(3, 1)));
        let mut new = Plan::default();
        new.v6.allow.push((32, [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
        let d = Diff::between(&old, &new);
        assert_eq!(d.flags_during, CFG_V4_PREFIXES | CFG_V6_ALLOW);
        assert_eq!(d.flags_after, CFG_V6_ALLOW);
        assert_eq!((d.writes(), d.deletes()), (1, 1));
    }

    #[test]
    fn inserts_count_new_keys_only() {
        let mut old = Plan::default();
        old.v4.exact = vec![([192, 0, 2, 1], m(3, 1)), ([192, 0, 2, 2], m(3, 1))];
        let mut new = Plan::default();
        new.v4.exact = vec![([192, 0, 2, 2], m(1, 1)), ([192, 0, 2, 3], m(3, 1))];
        let d = Diff::between(&old, &new);
        let exact = &filter_common::ADDRESS_MAPS[0];
        assert_eq!((d.inserts(exact), d.writes()), (1, 2), "one new key, one update");
    }
}
