//! One inside host's contacts as `found` gathers them: a list of packed contacts (16 bytes
//! each), the first part sorted with each contact once, the rest as they came; the rest is
//! merged in when it is an eighth of the sorted part. A contact takes 18 bytes or so, where a
//! hash table a host took 21 to 38 (a table doubles as it fills) and a row came at a random
//! place in it, missing the cache.

use super::{
    block::Seen,
    packed::{Packed, Row},
};

/// Contacts that may wait unmerged in any list (a merge for every few would be slow).
const WAITING: usize = 16;

/// Contacts taken out whole (their times or count do not pack).
pub type Apart = Vec<(Row, Seen)>;

/// Room to merge a host's contacts in, one for all (it grows to the most a host has).
#[derive(Default)]
pub struct Merged(Vec<(Row, Packed)>);

/// A host's contacts.
#[derive(Default)]
pub struct Contacts {
    rows: Vec<(Row, Packed)>,
    /// How many of `rows` are sorted (each row once).
    sorted: usize,
}

impl Contacts {
    /// Adds a contact; returns those whose times and count no longer pack once merged with
    /// another, taken out (to be held apart). `merged` is room to merge in, for every host.
    #[must_use]
    pub fn push(&mut self, row: Row, p: Packed, base: u64, merged: &mut Merged) -> Apart {
        if self.rows.len() == self.rows.capacity() {
            self.rows.reserve_exact(room(self.rows.len()) - self.rows.len());
        }
        self.rows.push((row, p));
        match self.rows.len() - self.sorted >= WAITING.max(self.sorted / 8) {
            true => self.merge(base, merged),
            false => Vec::new(),
        }
    }

    /// Merges the contacts that came into the sorted ones (see [`Contacts::push`]): into
    /// `merged`, then back (the list is never made anew: lists made anew as they grew left
    /// holes in the heap, a fifth more).
    #[must_use]
    pub fn merge(&mut self, base: u64, merged: &mut Merged) -> Apart {
        let mut apart = Vec::new();
        let (sorted, came) = self.rows.split_at_mut(self.sorted);
        came.sort_unstable_by_key(|(r, _)| *r);
        let out = &mut merged.0;
        out.clear();
        let (mut a, mut b) = (sorted.iter().peekable(), came.iter().peekable());
        while let Some(&(row, p)) = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if y.0 < x.0 => b.next(),
            (Some(_), _) => a.next(),
            (None, _) => b.next(),
        } {
            let Some(last) = out.last_mut().filter(|(r, _)| *r == row) else {
                out.push((row, p));
                continue;
            };
            let mut seen = last.1.seen(base);
            seen.merge(&p.seen(base));
            match Packed::new(base, &seen) {
                Some(q) => last.1 = q,
                None => {
                    out.pop();
                    apart.push((row, seen));
                }
            }
        }
        self.rows.clear();
        self.rows.extend_from_slice(out);
        self.sorted = self.rows.len();
        apart
    }

    /// The contacts with those held `apart`, each once, sorted; `base` the second they were
    /// packed from.
    pub fn into_seen(mut self, base: u64, mut apart: Apart) -> Apart {
        apart.extend(self.merge(base, &mut Merged::default()));
        apart.extend(self.rows.into_iter().map(|(r, p)| (r, p.seen(base))));
        apart.sort_unstable_by_key(|(r, _)| *r);
        apart.dedup_by(|(r, s), (kept, into)| {
            let same = r == kept;
            if same {
                into.merge(s);
            }
            same
        });
        apart
    }
}

/// The room a full list of `n` contacts grows to: one of four sizes a doubling, so that the
/// room a list lets go fits another list exactly (lists grown by an eighth left holes in the
/// heap, a sixth of it).
fn room(n: usize) -> usize {
    let quarter = (1 << (usize::BITS - 1 - n.max(1).leading_zeros()) >> 2).max(4);
    (n / quarter + 1) * quarter
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::journal::packed::Remote;

    #[test]
    fn contacts_come_once_merged_whenever_they_came() {
        let base = 1_800_000_000;
        let (mut c, mut m) = (Contacts::default(), Merged::default());
        let row = |i: u32| Row::new(Remote::V4(i % 50, 32), 443, 6, false);
        for i in 0..1000u32 {
            let at = base + u64::from(i);
            let s = Seen { first: at, last: at + 1, count: 3 };
            assert!(c.push(row(i), Packed::new(base, &s).unwrap(), base, &mut m).is_empty());
        }
        assert!(c.rows.capacity() < 50 + WAITING * 2, "merged as they came");
        let seen =
            c.into_seen(base, vec![(row(7), Seen { first: base - 5, last: base, count: 1 })]);
        assert_eq!(seen.len(), 50);
        assert!(seen.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(seen[7].1, Seen { first: base - 5, last: base + 958, count: 61 });
    }

    #[test]
    fn lists_grow_through_few_sizes() {
        let mut sizes = vec![0];
        while sizes.len() < 14 {
            sizes.push(room(*sizes.last().unwrap()));
        }
        assert_eq!(sizes, [0, 4, 8, 12, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80]);
        assert!((1..100_000).all(|n| room(n) > n && room(n) <= n + n / 4 + 4));
    }

    #[test]
    fn a_contact_whose_count_no_longer_packs_is_taken_out_whole() {
        let base = 1_800_000_000;
        let (mut c, mut m) = (Contacts::default(), Merged::default());
        let row = Row::new(Remote::V4(1, 32), 53, 17, true);
        let s = Seen { first: base, last: base, count: 10_000 };
        let _ = c.push(row, Packed::new(base, &s).unwrap(), base, &mut m);
        let _ = c.push(row, Packed::new(base, &s).unwrap(), base, &mut m);
        let apart = c.merge(base, &mut m);
        assert_eq!(apart, vec![(row, Seen { first: base, last: base, count: 20_000 })]);
        assert!(c.into_seen(base, Vec::new()).is_empty());
    }
}
