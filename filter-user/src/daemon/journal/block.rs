//! A journal block: the records of a few seconds, sorted, zstd-compressed, behind a header
//! with its length and CRC-32. Blocks are appended to an hour's file; a block cut short by a
//! crash or damaged on disk fails its check and is skipped: the reader looks for the next
//! block's mark after it, so the blocks before and after it still read.
//!
//! ```text
//! block   = "TDJ1" len:u32le crc32:u32le zstd(rows)
//! rows    = row*           (sorted by inside host, remote, protocol, port)
//! row     = family:u8 proto:u8 inside(4|16) remote(4|16) port:u16le first:u32le
//!           span:u16le count:varint      (first: seconds since 1970; last = first + span;
//!                                         family 4 or 6, plus 0x80 when the remote opened it)
//! ```

use std::net::IpAddr;

use anyhow::{Result, bail};

const MAGIC: &[u8; 4] = b"TDJ1";
const HEADER: usize = 12;
/// In a row's family byte: the remote end opened the connection.
const INBOUND: u8 = 0x80;
/// No block holds more, compressed or not (a bound on what a damaged block can make a reader
/// allocate).
pub const MAX_BLOCK: usize = 64 << 20;
/// Rows a block holds at most (40 bytes a row at most: well under [`MAX_BLOCK`]).
pub const MAX_ROWS: usize = 500_000;

/// Who talked to whom: an inside host, a remote address, the protocol and the remote port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub inside: IpAddr,
    pub remote: IpAddr,
    pub proto: u8,
    pub port: u16,
    /// The remote end opened the connection (else the inside host did).
    pub inbound: bool,
}

/// When, and how many new connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    pub first: u64,
    pub last: u64,
    pub count: u64,
}

impl Seen {
    pub fn once(at: u64) -> Self {
        Self { first: at, last: at, count: 1 }
    }

    /// Both together.
    pub fn merge(&mut self, o: &Seen) {
        self.first = self.first.min(o.first);
        self.last = self.last.max(o.last);
        self.count = self.count.saturating_add(o.count);
    }
}

/// Encodes `rows` (sorted here; at most [`MAX_ROWS`]) as one block.
pub fn encode(rows: &mut [(Key, Seen)]) -> Result<Vec<u8>> {
    if rows.len() > MAX_ROWS {
        bail!("{} rows in one block, more than {MAX_ROWS}", rows.len());
    }
    rows.sort_unstable_by_key(|(k, _)| *k);
    let mut raw = Vec::with_capacity(rows.len() * 20);
    for (k, s) in rows.iter() {
        raw.push(if k.inside.is_ipv4() { 4 } else { 6 } | if k.inbound { INBOUND } else { 0 });
        raw.push(k.proto);
        push_addr(&mut raw, k.inside);
        push_addr(&mut raw, k.remote);
        raw.extend(k.port.to_le_bytes());
        raw.extend((s.first as u32).to_le_bytes());
        raw.extend((s.last.saturating_sub(s.first).min(u16::MAX.into()) as u16).to_le_bytes());
        varint(&mut raw, s.count);
    }
    let body = zstd::bulk::compress(&raw, 9)?;
    let mut out = Vec::with_capacity(HEADER + body.len());
    out.extend(MAGIC);
    out.extend((body.len() as u32).to_le_bytes());
    out.extend(crc32fast::hash(&body).to_le_bytes());
    out.extend(body);
    Ok(out)
}

fn push_addr(out: &mut Vec<u8>, a: IpAddr) {
    match a {
        IpAddr::V4(a) => out.extend(a.octets()),
        IpAddr::V6(a) => out.extend(a.octets()),
    }
}

fn varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Reads blocks, keeping its decompression context and buffers from one block to the next (a
/// context costs more to make than a small block to read).
pub struct Reader {
    dctx: zstd::bulk::Decompressor<'static>,
    raw: Vec<u8>,
    rows: Vec<(Key, Seen)>,
}

impl Reader {
    pub fn new() -> Result<Self> {
        Ok(Self { dctx: zstd::bulk::Decompressor::new()?, raw: Vec::new(), rows: Vec::new() })
    }

    /// Every block of a file's bytes, decoded, to `row`; a block that fails its check is
    /// skipped up to the next block's mark. Returns what was skipped, if anything (where, and
    /// why).
    pub fn decode_all(&mut self, bytes: &[u8], mut row: impl FnMut(Key, Seen)) -> Option<String> {
        let (mut at, mut skipped) = (0, Vec::new());
        while at < bytes.len() {
            match self.decode_one(&bytes[at..], &mut row) {
                Ok(used) => at += used,
                Err(e) => {
                    let next = find_mark(&bytes[at + 1..]).map_or(bytes.len(), |i| at + 1 + i);
                    skipped.push(format!("bytes {at}-{next}: {e:#}"));
                    at = next;
                }
            }
        }
        (!skipped.is_empty()).then(|| format!("skipped {}", skipped.join("; ")))
    }

    /// Decodes the block at the start of `b`; returns its length.
    fn decode_one(&mut self, b: &[u8], row: &mut impl FnMut(Key, Seen)) -> Result<usize> {
        if b.len() < HEADER || &b[..4] != MAGIC {
            bail!("not a journal block (cut short, or damaged)");
        }
        let len = u32::from_le_bytes(b[4..8].try_into()?) as usize;
        let crc = u32::from_le_bytes(b[8..12].try_into()?);
        if len > MAX_BLOCK || b.len() < HEADER + len {
            bail!("a block cut short");
        }
        let body = &b[HEADER..HEADER + len];
        if crc32fast::hash(body) != crc {
            bail!("a block fails its checksum");
        }
        // The size the frame declares, bounded, is all the room given: a body that would
        // decompress to more, or to less, fails.
        let size = match zstd::zstd_safe::get_frame_content_size(body) {
            Ok(Some(n)) if n <= MAX_BLOCK as u64 => n as usize,
            _ => bail!("a block whose size is unknown or too large"),
        };
        self.raw.clear();
        self.raw.resize(size, 0);
        if self.dctx.decompress_to_buffer(body, &mut self.raw[..])? != size {
            bail!("a block shorter than it says");
        }
        // Rows decode into a list first: a block is taken whole or not at all.
        self.rows.clear();
        let got = &mut self.rows;
        rows(&self.raw, &mut |k, s| got.push((k, s)))?;
        self.rows.drain(..).for_each(|(k, s)| row(k, s));
        Ok(HEADER + len)
    }
}

/// Where the next block's mark is.
fn find_mark(b: &[u8]) -> Option<usize> {
    b.windows(MAGIC.len()).position(|w| w == MAGIC)
}

fn rows(mut r: &[u8], row: &mut impl FnMut(Key, Seen)) -> Result<()> {
    let mut n = 0;
    while !r.is_empty() {
        n += 1;
        if n > MAX_ROWS {
            bail!("more than {MAX_ROWS} rows in a block");
        }
        let (family, proto) = (take(&mut r, 1)?[0], take(&mut r, 1)?[0]);
        let inbound = family & INBOUND != 0;
        let inside = addr(&mut r, family & !INBOUND)?;
        let remote = addr(&mut r, family & !INBOUND)?;
        let port = u16::from_le_bytes(take(&mut r, 2)?.try_into()?);
        let first = u64::from(u32::from_le_bytes(take(&mut r, 4)?.try_into()?));
        let span = u64::from(u16::from_le_bytes(take(&mut r, 2)?.try_into()?));
        let count = read_varint(&mut r)?;
        row(
            Key { inside, remote, proto, port, inbound },
            Seen { first, last: first + span, count },
        );
    }
    Ok(())
}

fn take<'a>(r: &mut &'a [u8], n: usize) -> Result<&'a [u8]> {
    if r.len() < n {
        bail!("a row cut short");
    }
    let (head, rest) = r.split_at(n);
    *r = rest;
    Ok(head)
}

fn addr(r: &mut &[u8], family: u8) -> Result<IpAddr> {
    Ok(match family {
        4 => IpAddr::from(<[u8; 4]>::try_from(take(r, 4)?)?),
        6 => IpAddr::from(<[u8; 16]>::try_from(take(r, 16)?)?),
        f => bail!("unknown address family {f}"),
    })
}

fn read_varint(r: &mut &[u8]) -> Result<u64> {
    let mut n = 0u64;
    for shift in (0..64).step_by(7) {
        let b = take(r, 1)?[0];
        n |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(n);
        }
    }
    bail!("a count too long")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: &str, r: &str, port: u16) -> Key {
        Key {
            inside: i.parse().unwrap(),
            remote: r.parse().unwrap(),
            proto: 6,
            port,
            inbound: port == 53,
        }
    }

    #[test]
    fn blocks_read_back_and_a_torn_tail_is_skipped() {
        let mut a = vec![
            (
                key("10.0.0.2", "203.0.113.7", 443),
                Seen { first: 1_800_000_000, last: 1_800_000_100, count: 300 },
            ),
            (key("fd00::2", "2001:db8::7", 53), Seen::once(1_800_000_001)),
        ];
        let mut file = encode(&mut a).unwrap();
        let second = encode(&mut [(key("10.0.0.3", "198.51.100.1", 80), Seen::once(5))]).unwrap();
        file.extend(&second[..second.len() - 3]); // a crash in the middle of the second block
        let mut got = vec![];
        let stopped = Reader::new().unwrap().decode_all(&file, |k, s| got.push((k, s)));
        assert_eq!(got, a);
        assert!(stopped.unwrap().contains("cut short"));
        // A damaged block in the middle: the blocks after it still read.
        let third = encode(&mut [(key("10.0.0.4", "198.51.100.4", 80), Seen::once(6))]).unwrap();
        let mut flipped = encode(&mut a).unwrap();
        flipped[HEADER + 2] ^= 0xff;
        flipped.extend(&third);
        let mut after = vec![];
        let skipped = Reader::new().unwrap().decode_all(&flipped, |k, _| after.push(k)).unwrap();
        assert!(skipped.contains("checksum"), "{skipped}");
        assert_eq!(after, [key("10.0.0.4", "198.51.100.4", 80)]);
    }
}
