//! A contact as `found` holds it, in 16 bytes: its key in 8 ([`Row`]: the remote as a number,
//! port, protocol, who opened it) and its times and count in 8 ([`Packed`]: seconds from a
//! base). A contact whose times or count do not fit is held apart, in full (see `found`).

use super::block::Seen;

/// In a row's flags: the remote opened the connections.
const INBOUND: u8 = 1;
/// In a row's flags: the remote is the number of an IPv6 address (else an IPv4 address's bits).
const V6: u8 = 2;
/// A row's flags from this bit on: the length of the wanted network covering an IPv4 remote.
const LEN_SHIFT: u32 = 2;

/// A contact of a host: its remote (an IPv4 address, or the number of an IPv6 one), port,
/// protocol and flags (who opened it, the family, an IPv4 remote's wanted network length:
/// the remote's, so it does not split a contact).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Row {
    remote: u32,
    port: u16,
    proto: u8,
    flags: u8,
}

/// Where a row's remote is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Remote {
    /// An IPv4 address and the length of the wanted network covering it.
    V4(u32, u8),
    /// The number of an IPv6 address.
    V6(u32),
}

impl Row {
    pub fn new(remote: Remote, port: u16, proto: u8, inbound: bool) -> Self {
        let (remote, family) = match remote {
            Remote::V4(a, len) => (a, (len.min(32)) << LEN_SHIFT),
            Remote::V6(n) => (n, V6),
        };
        Self { remote, port, proto, flags: family | if inbound { INBOUND } else { 0 } }
    }

    pub fn remote(&self) -> Remote {
        match self.flags & V6 {
            0 => Remote::V4(self.remote, self.flags >> LEN_SHIFT),
            _ => Remote::V6(self.remote),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn proto(&self) -> u8 {
        self.proto
    }

    pub fn inbound(&self) -> bool {
        self.flags & INBOUND != 0
    }
}

/// Bits of a packed contact's first second after the base (776 days), ...
const FIRST_BITS: u32 = 26;
/// ... of the seconds from its first to its last (194 days), ...
const SPAN_BITS: u32 = 24;
/// ... and of its count (16,383 connections).
const COUNT_BITS: u32 = 14;

/// A contact's times and count: its first second after a base, the seconds to its last, its
/// count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packed(u64);

impl Packed {
    /// `s` from `base`, if it fits.
    pub fn new(base: u64, s: &Seen) -> Option<Self> {
        let first = s.first.checked_sub(base)?;
        let span = s.last.checked_sub(s.first)?;
        let fits = |v: u64, bits: u32| v >> bits == 0;
        (fits(first, FIRST_BITS) && fits(span, SPAN_BITS) && fits(s.count, COUNT_BITS))
            .then_some(Self(first << (SPAN_BITS + COUNT_BITS) | span << COUNT_BITS | s.count))
    }

    /// The times and count again, `base` the one it was packed from.
    pub fn seen(self, base: u64) -> Seen {
        let mask = |bits: u32| (1u64 << bits) - 1;
        let first = base + (self.0 >> (SPAN_BITS + COUNT_BITS));
        let span = self.0 >> COUNT_BITS & mask(SPAN_BITS);
        Seen { first, last: first + span, count: self.0 & mask(COUNT_BITS) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_say_what_they_were_made_of() {
        for (remote, inbound) in [(Remote::V4(0xc633_6407, 24), true), (Remote::V6(7), false)] {
            let r = Row::new(remote, 443, 17, inbound);
            assert_eq!((r.remote(), r.port(), r.proto(), r.inbound()), (remote, 443, 17, inbound));
        }
        assert_eq!(Row::new(Remote::V4(1, 32), 1, 6, true).remote(), Remote::V4(1, 32));
    }

    #[test]
    fn times_that_fit_come_back_whole_and_the_others_do_not_pack() {
        let base = 1_800_000_000;
        let s = |first, last, count| Seen { first, last, count };
        for fits in
            [s(base, base, 1), s(base + (1 << 26) - 1, base + (1 << 26) + (1 << 24) - 2, 16_383)]
        {
            assert_eq!(Packed::new(base, &fits).map(|p| p.seen(base)), Some(fits));
        }
        let too = [
            s(base - 1, base, 1),
            s(base + (1 << 26), base + (1 << 26), 1),
            s(base, base + (1 << 24), 1),
            s(base, base, 16_384),
            s(base + 9, base + 8, 1),
        ];
        for t in too {
            assert_eq!(Packed::new(base, &t), None, "{t:?}");
        }
    }
}
