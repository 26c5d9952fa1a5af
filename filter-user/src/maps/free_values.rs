//! The value indexes of a table that no slot holds: holes below the highest index in use, the
//! never-used tail, and deleted ones, which rest for [`GRACE`] before they serve a new entry
//! (so that no packet still holding one can count a hit on the new entry). Another process
//! finds them by a scan of the slots.

use std::time::{Duration, Instant};

/// How long a deleted entry's value index rests before another entry gets it: far longer
/// than any one run of the XDP program.
pub const GRACE: Duration = Duration::from_millis(10);

/// Value indexes not in use.
pub struct Free {
    /// Indexes below `next` that no slot holds (popped from the end).
    holes: Vec<u32>,
    /// No index from here on was ever used.
    next: u32,
    /// Deleted, and when.
    resting: Vec<(Instant, u32)>,
}

impl Free {
    /// The free indexes of a table of `capacity` values whose slots hold the indexes `used`.
    pub fn scan(capacity: usize, used: impl Iterator<Item = u32>) -> Self {
        let mut bits = vec![0u64; capacity.div_ceil(64)];
        let mut next = 0;
        for i in used {
            bits[i as usize / 64] |= 1 << (i % 64);
            next = next.max(i + 1);
        }
        let holes = (0..next).rev().filter(|&i| bits[i as usize / 64] & (1 << (i % 64)) == 0);
        Self { holes: holes.collect(), next, resting: Vec::new() }
    }

    /// A free index below `capacity`: a never-used or long-deleted one, else (waiting out the
    /// rest of its grace) a recently deleted one; None when every index is in use.
    pub fn take(&mut self, capacity: u32) -> Option<u32> {
        if let Some(i) = self.holes.pop() {
            return Some(i);
        }
        if self.next < capacity {
            self.next += 1;
            return Some(self.next - 1);
        }
        let oldest = self.resting.first()?.0;
        std::thread::sleep(GRACE.saturating_sub(oldest.elapsed()));
        let (done, resting) = self.resting.drain(..).partition(|(t, _)| t.elapsed() >= GRACE);
        self.resting = resting;
        self.holes.extend(done.into_iter().map(|(_, i): (Instant, u32)| i).rev());
        self.holes.pop()
    }

    /// Index `i`, deleted at `now`: it rests before it serves again.
    pub fn rest(&mut self, now: Instant, i: u32) {
        self.resting.push((now, i));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holes_first_then_the_tail_then_deleted_indexes_once_their_grace_is_over() {
        let mut free = Free::scan(4, [0u32, 2].into_iter());
        assert_eq!((free.take(4), free.take(4)), (Some(1), Some(3)));
        let deleted = Instant::now();
        free.rest(deleted, 2);
        assert_eq!(free.take(4), Some(2));
        assert!(deleted.elapsed() >= GRACE, "a deleted index serves only after its grace");
        assert_eq!(free.take(4), None, "every index in use");
    }
}
