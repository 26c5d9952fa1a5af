//! The sync's order and content, against in-memory maps that log every operation.

use std::{cell::RefCell, collections::BTreeMap, rc::Rc};

use filter_common::{CFG_FLAGS, CFG_V4_ALLOW, CFG_V4_PREFIXES, FLAG_BOTH, FLAG_DST, FLAG_SRC};

use super::*;
use crate::{
    maps::{FamilyMaps, MapInfo, Settings, prefilter},
    plan::PrefixKey,
};

type Log = Rc<RefCell<Vec<String>>>;

struct Memory<K> {
    name: &'static str,
    items: BTreeMap<K, EntryValue>,
    log: Log,
}

impl<K> MapInfo for Memory<K> {
    fn name(&self) -> &'static str {
        self.name
    }
    fn capacity(&self) -> Result<u32> {
        Ok(1 << 20)
    }
    fn pin(&self, _: &crate::maps::pins::Pins) -> Result<()> {
        Ok(())
    }
    fn memory(&self) -> Result<u64> {
        Ok(0)
    }
}

impl<K: Copy + Ord> Table<K> for Memory<K> {
    fn get(&self, key: &K) -> Result<Option<EntryValue>> {
        Ok(self.items.get(key).copied())
    }
    fn holds(&self, key: &K) -> Result<bool> {
        Ok(self.items.contains_key(key))
    }
    fn put(&mut self, items: &[(K, EntryValue)], _: WriteMode) -> Result<()> {
        self.log.borrow_mut().push(format!("put {} {}", self.name, items.len()));
        self.items.extend(items.iter().copied());
        Ok(())
    }
    fn delete(&mut self, keys: &[K]) -> Result<()> {
        self.log.borrow_mut().push(format!("delete {} {}", self.name, keys.len()));
        for k in keys {
            self.items.remove(k);
        }
        Ok(())
    }
    fn entries(&self) -> Result<Vec<(K, EntryValue)>> {
        Ok(self.items.iter().map(|(k, v)| (*k, *v)).collect())
    }
}

struct MemWords<V>(&'static str, BTreeMap<u32, V>, Log);

impl<V> MapInfo for MemWords<V> {
    fn name(&self) -> &'static str {
        self.0
    }
    /// As large as any array map in use (the hints, the largest); the IPv4 exact-address
    /// prefilter as a start makes it for an exact table of 2^14 entries.
    fn capacity(&self) -> Result<u32> {
        Ok(match self.0 {
            "x4e" => filter_common::v4_exacts_words(1 << 14),
            _ => filter_common::HINT_WORDS,
        })
    }
    fn pin(&self, _: &crate::maps::pins::Pins) -> Result<()> {
        Ok(())
    }
    fn memory(&self) -> Result<u64> {
        Ok(0)
    }
}

impl<V: Copy + Default> prefilter::Words<V> for MemWords<V> {
    fn get(&self, word: u32) -> Result<V> {
        Ok(self.1.get(&word).copied().unwrap_or_default())
    }
    fn put(&mut self, words: &[(u32, V)]) -> Result<()> {
        let size = self.capacity()?;
        assert!(words.iter().all(|(i, _)| *i < size), "{}: a slot past its size", self.0);
        self.2.borrow_mut().push(format!("put {} {}", self.0, words.len()));
        self.1.extend(words.iter().copied());
        Ok(())
    }
}

struct MemSettings([u32; filter_common::CFG_COUNT as usize], Log);

impl Settings for MemSettings {
    fn get(&self, index: u32) -> Result<u32> {
        Ok(self.0[index as usize])
    }
    fn set(&mut self, index: u32, value: u32) -> Result<()> {
        if index != filter_common::CFG_WRITER {
            self.1.borrow_mut().push(format!("flags {value}"));
        }
        self.0[index as usize] = value;
        Ok(())
    }
    fn pin(&self, _: &std::path::Path) -> Result<()> {
        Ok(())
    }
}

fn memory_table<K>(name: &'static str, log: &Log) -> Memory<K> {
    Memory { name, items: BTreeMap::new(), log: log.clone() }
}

fn family<const N: usize>(tag: &'static [&'static str; 8], log: &Log) -> FamilyMaps<N> {
    let lens: Box<dyn prefilter::Words<filter_common::LenMask>> =
        Box::new(MemWords(tag[4], BTreeMap::new(), log.clone()));
    FamilyMaps {
        exact: Box::new(memory_table::<[u8; N]>(tag[0], log)),
        prefix: Box::new(memory_table::<PrefixKey<N>>(tag[1], log)),
        allow: Box::new(memory_table::<PrefixKey<N>>(tag[2], log)),
        filter: Box::new(MemWords(tag[3], BTreeMap::new(), log.clone())),
        allowed: Box::new(MemWords(tag[5], BTreeMap::new(), log.clone())),
        prefixed: Box::new(MemWords(tag[6], BTreeMap::new(), log.clone())),
        lens,
        exacts: Box::new(MemWords(tag[7], BTreeMap::new(), log.clone())),
        hints: (N == 4).then(|| {
            Box::new(MemWords("h4", BTreeMap::new(), log.clone()))
                as Box<dyn prefilter::Words<crate::maps::hints::Hints>>
        }),
    }
}

fn memory() -> (AddressMaps, Log) {
    let log = Log::default();
    let maps = AddressMaps {
        v4: family(&["e4", "p4", "a4", "f4", "l4", "w4", "x4", "x4e"], &log),
        v6: family(&["e6", "p6", "a6", "f6", "l6", "w6", "x6", "x6e"], &log),
        settings: Box::new(MemSettings(Default::default(), log.clone())),
        writer: Default::default(),
        extra_flags: 0,
    };
    (maps, log)
}

fn plan(entries: &[(&str, u32, u64)], allow: &[&str]) -> Plan {
    let entries = entries.iter().map(|(n, flags, lists)| {
        (n.parse::<IpNet>().unwrap(), Meta { flags: *flags, lists: *lists })
    });
    let allow: Vec<IpNet> = allow.iter().map(|a| a.parse().unwrap()).collect();
    Plan::build(entries, &allow)
}

#[test]
fn a_move_writes_everything_before_it_deletes_and_ends_at_the_new_plan() {
    let (mut maps, log) = memory();
    let a = plan(&[("192.0.2.1/32", FLAG_BOTH, 1), ("198.51.100.0/24", FLAG_BOTH, 1)], &[]);
    let b = plan(
        &[("192.0.2.2/32", FLAG_SRC, 2), ("2001:db8::1/128", FLAG_BOTH, 2)],
        &["192.0.2.9/32"],
    );
    fill(&mut maps, &a).unwrap();
    assert_eq!(maps.plan().unwrap(), Plan { stats: Default::default(), ..a.clone() });
    log.borrow_mut().clear();
    let ch = apply(&mut maps, &a, &b).unwrap();
    assert_eq!(ch, Changes { written: 3, deleted: 2 });
    assert_eq!(maps.plan().unwrap(), Plan { stats: Default::default(), ..b });
    let ops = log.borrow().clone();
    let during = CFG_V4_PREFIXES | CFG_V4_ALLOW;
    assert_eq!(
        ops,
        [
            format!("flags {during}"),
            "put f6 1".into(),
            "put w4 1".into(),
            "put x4e 1".into(),
            "put x6e 1".into(),
            "put a4 1".into(),
            "put e4 1".into(),
            "put e6 1".into(),
            "delete e4 1".into(),
            "delete p4 1".into(),
            "put f4 1".into(),
            "put l4 1".into(),
            "put x4 1".into(),
            "put x4e 1".into(),
            "put h4 1".into(),
            format!("flags {CFG_V4_ALLOW}"),
        ]
    );
}

#[test]
fn an_unchanged_plan_writes_and_deletes_nothing() {
    let (mut maps, log) = memory();
    let a = plan(&[("192.0.2.1/32", FLAG_BOTH, 1), ("2001:db8::/48", FLAG_DST, 1)], &[]);
    fill(&mut maps, &a).unwrap();
    log.borrow_mut().clear();
    assert_eq!(apply(&mut maps, &a, &a).unwrap(), Changes::default());
    assert!(log.borrow().iter().all(|op| op.starts_with("flags")), "{:?}", log.borrow());
}

#[test]
fn an_entry_whose_lists_change_keeps_its_hits() {
    let (mut maps, _) = memory();
    let a = plan(&[("192.0.2.1/32", FLAG_BOTH, 1)], &[]);
    fill(&mut maps, &a).unwrap();
    let mut hit = maps.v4.exact.get(&[192, 0, 2, 1]).unwrap().unwrap();
    (hit.packets, hit.last_hit) = (7, 42);
    maps.v4.exact.put(&[([192, 0, 2, 1], hit)], WriteMode::Batched).unwrap();
    let b = plan(&[("192.0.2.1/32", FLAG_SRC, 3)], &[]);
    apply(&mut maps, &a, &b).unwrap();
    let v = maps.v4.exact.get(&[192, 0, 2, 1]).unwrap().unwrap();
    assert_eq!((v.flags, v.lists, v.packets, v.last_hit), (FLAG_SRC, 3, 7, 42));
}

#[test]
fn edits_join_lists_and_delete_only_when_no_list_is_left() {
    let (mut maps, _) = memory();
    let net: IpNet = "198.51.100.0/24".parse().unwrap();
    assert_eq!(upsert(&mut maps, net, Meta { flags: FLAG_SRC, lists: 1 }).unwrap(), Edit::Inserted);
    let bit = filter_common::v4_filter_bit(&[198, 51, 100, 0]);
    let word = maps.v4.filter.get(bit >> 6).unwrap();
    assert_ne!(word & (1 << (bit & 63)), 0, "the edit set the entry's prefilter bit");
    let slot = maps.v4.lens.get(filter_common::v4_lens_slot(&[198, 51, 100, 0]));
    assert_eq!(slot.unwrap(), filter_common::LenMask::of(24), "and its length in its /16");
    let word = maps.v4.prefixed.get(bit >> 6).unwrap();
    assert_ne!(word & (1 << (bit & 63)), 0, "and its prefix prefilter bit");
    let (at, shift) = filter_common::v4_hint_at(bit);
    let hint = (maps.v4.hints.as_ref().unwrap().get(at).unwrap().0 >> shift) as u8;
    assert_eq!(hint, filter_common::hint_of_len(24), "and its /24's hint");
    assert_eq!(maps.settings.get(CFG_FLAGS).unwrap() & CFG_V4_PREFIXES, CFG_V4_PREFIXES);
    assert_eq!(upsert(&mut maps, net, Meta { flags: FLAG_DST, lists: 2 }).unwrap(), Edit::Updated);
    let v = maps.v4.prefix.get(&(24, [198, 51, 100, 0])).unwrap().unwrap();
    assert_eq!((v.flags, v.lists), (FLAG_BOTH, 3));
    assert_eq!(remove_lists(&mut maps, net, 1).unwrap(), Edit::Updated);
    assert_eq!(remove_lists(&mut maps, net, 2).unwrap(), Edit::Deleted);
    assert_eq!(remove_lists(&mut maps, net, 2).unwrap(), Edit::Absent);
    assert!(maps.plan().unwrap().is_empty());
}

#[test]
fn an_edited_address_marks_its_slash_16_and_its_hint_as_holding_one_and_sets_no_prefix_bit() {
    let (mut maps, _) = memory();
    let net: IpNet = "203.0.113.7/32".parse().unwrap();
    assert_eq!(
        upsert(&mut maps, net, Meta { flags: FLAG_BOTH, lists: 1 }).unwrap(),
        Edit::Inserted
    );
    let slot = maps.v4.lens.get(filter_common::v4_lens_slot(&[203, 0, 113, 7])).unwrap();
    assert_eq!(slot, filter_common::LenMask::of(32), "length 32: an address lies in this /16");
    let bit = filter_common::v4_filter_bit(&[203, 0, 113, 7]);
    assert_ne!(maps.v4.filter.get(bit >> 6).unwrap() & (1 << (bit & 63)), 0);
    assert_eq!(maps.v4.prefixed.get(bit >> 6).unwrap(), 0, "no prefix here");
    let (at, shift) = filter_common::v4_hint_at(bit);
    let word = maps.v4.hints.as_ref().unwrap().get(at).unwrap().0;
    assert_eq!(word, u64::from(filter_common::HINT_EXACT) << shift, "its /24's hint: an address");
}
