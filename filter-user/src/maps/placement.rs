//! Where a table's new entry goes: a pass over its key's two buckets ([`Probe`]), and the
//! empty slot it takes ([`room`]): in the emptier bucket, never beside another key of the same
//! word (IPv6 tables, whose words are hashes: the kernel compares one key a bucket).

use std::collections::HashSet;

/// Where a key is: bucket, slot, value index.
pub type Place = (usize, usize, u32);

/// What a pass over a key's two buckets found: where it is, or the empty slots of each
/// bucket (bit s: slot s), and whether the bucket holds another key of the same word (an
/// IPv6 hash's: it cannot take this key).
pub struct Probe {
    pub found: Option<Place>,
    pub buckets: [usize; 2],
    pub empty: [u8; 2],
    pub clash: [bool; 2],
}

/// The empty slot a new entry of word `word` takes: in the emptier of its buckets (the first
/// on a tie), leaving out slots `reserved` for others and buckets that hold the word for
/// another key (`words`: the hashed words placed so far, by bucket). (Preferring the first
/// bucket while it had three empty slots made hits scan a third fewer slots, but refused
/// writes below capacity on runs of consecutive addresses: the two choices' balance is what
/// lets the table fill.)
pub fn room(
    p: &Probe,
    reserved: &[u8],
    mut words: Option<&mut HashSet<(usize, u32)>>,
    word: u32,
) -> Option<(usize, usize)> {
    let [b0, b1] = p.buckets;
    let taken = |i: usize, b: usize, w: &Option<&mut HashSet<(usize, u32)>>| {
        p.clash[i] || w.as_ref().is_some_and(|w| w.contains(&(b, word)))
    };
    let m0 = if taken(0, b0, &words) { 0 } else { p.empty[0] & !reserved[b0] };
    let m1 = if b1 == b0 || taken(1, b1, &words) { 0 } else { p.empty[1] & !reserved[b1] };
    let (b, m) = if m1.count_ones() > m0.count_ones() { (b1, m1) } else { (b0, m0) };
    if m != 0
        && let Some(w) = words.as_mut()
    {
        w.insert((b, word));
    }
    (m != 0).then(|| (b, m.trailing_zeros() as usize))
}
