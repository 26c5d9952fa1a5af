//! A bucketised table's values (see `table4`), many at a time: read and written a window of
//! pages at a time through a mapping, or with batched system calls; and their generations,
//! raised each time a value index serves a new entry (filter-common's `hits`).

use std::os::fd::AsFd;

use anyhow::Result;
use filter_common::EntryValue;

use super::{
    mapped::Mapping,
    raw,
    table4::{MAPPED_RUN, Table4Maps, WINDOW, Word},
};

impl<K: Word> Table4Maps<K> {
    /// Gives each of `values` the generation of the value it replaces: the same for a held
    /// entry; the next one where the index serves a new entry (`renewed`), so that the hits the
    /// CPUs' slots hold for the entry it served before are never counted for this one.
    pub(super) fn generations(
        &self,
        values: &mut [(u32, EntryValue)],
        renewed: &[bool],
    ) -> Result<()> {
        let mut order: Vec<usize> = (0..values.len()).collect();
        order.sort_unstable_by_key(|&n| values[n].0);
        let mut old = vec![0u16; values.len()];
        self.by_window(
            &order,
            |&n| values[n].0,
            |window, run| {
                for &n in run {
                    old[n] = window.read(values[n].0 as usize).generation();
                }
            },
        )?;
        for ((v, renew), g) in values.iter_mut().zip(renewed).zip(old) {
            v.1 = v.1.with_generation(if *renew { g.wrapping_add(1) } else { g });
        }
        Ok(())
    }

    /// Writes values by index: a dense run of many (a fill's new entries) through a mapping
    /// of the pages that hold it; others in a batched system call.
    pub(super) fn write_values(&self, values: &mut [(u32, EntryValue)]) -> Result<()> {
        values.sort_unstable_by_key(|(i, _)| *i);
        let (Some(lo), Some(hi)) = (values.first(), values.last()) else { return Ok(()) };
        let (first, span) = (lo.0 as usize, (hi.0 - lo.0) as usize + 1);
        if values.len() >= MAPPED_RUN && span <= 2 * values.len() {
            let mut window = Mapping::window(self.maps.values, &self.values, first, span)?;
            values.iter().for_each(|(i, v)| window.write(*i as usize, *v));
            return Ok(());
        }
        let (keys, vals): (Vec<u32>, Vec<EntryValue>) = values.iter().copied().unzip();
        raw::update_array(self.values.fd().as_fd(), self.maps.values, &keys, &vals)
    }

    /// Hands `each` the runs of `sorted` (by value index, `index`) that lie in one [`WINDOW`]
    /// of values, with a mapping of the values the run spans.
    pub(super) fn by_window<T>(
        &self,
        sorted: &[T],
        index: impl Fn(&T) -> u32,
        mut each: impl FnMut(&mut Mapping<EntryValue>, &[T]),
    ) -> Result<()> {
        let at = |t: &T| index(t) as usize;
        for run in sorted.chunk_by(|x, y| at(x) / WINDOW == at(y) / WINDOW) {
            let (first, last) = (at(&run[0]), at(&run[run.len() - 1]));
            let name = self.maps.values;
            each(&mut Mapping::window(name, &self.values, first, last - first + 1)?, run);
        }
        Ok(())
    }
}
