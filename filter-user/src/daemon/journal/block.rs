//! A journal block: the records of a few seconds, sorted, zstd-compressed, behind a header
//! with its length and CRC-32. Blocks are appended to an hour's file; a block cut short by a
//! crash or damaged on disk fails its check and is skipped, the blocks before it still read.
//!
//! ```text
//! block   = "TDJ1" len:u32le crc32:u32le zstd(rows)
//! rows    = row*           (sorted by inside host, remote, protocol, port)
//! row     = family:u8 proto:u8 inside(4|16) remote(4|16) port:u16le first:u32le
//!           span:u16le count:varint      (first: seconds since 1970; last = first + span)
//! ```

use std::net::IpAddr;

use anyhow::{Result, bail};

const MAGIC: &[u8; 4] = b"TDJ1";
const HEADER: usize = 12;
/// No block holds more (a bound on what a damaged length can make a reader allocate).
pub const MAX_BLOCK: usize = 64 << 20;

/// Who talked to whom: an inside host, a remote address, the protocol and the remote port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub inside: IpAddr,
    pub remote: IpAddr,
    pub proto: u8,
    pub port: u16,
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
        self.count += o.count;
    }
}

/// Encodes `rows` (sorted here) as one block.
pub fn encode(rows: &mut [(Key, Seen)]) -> Result<Vec<u8>> {
    rows.sort_unstable_by_key(|(k, _)| *k);
    let mut raw = Vec::with_capacity(rows.len() * 20);
    for (k, s) in rows.iter() {
        raw.push(if k.inside.is_ipv4() { 4 } else { 6 });
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

/// The blocks of a file's bytes, each decoded, until the first that fails its check: the rows
/// read, and why reading stopped early (None: every byte read).
pub fn decode_all(bytes: &[u8], mut row: impl FnMut(Key, Seen)) -> Option<String> {
    let mut at = 0;
    while at < bytes.len() {
        match decode_one(&bytes[at..], &mut row) {
            Ok(used) => at += used,
            Err(e) => return Some(format!("byte {at}: {e:#}")),
        }
    }
    None
}

/// Decodes the block at the start of `b`; returns its length.
fn decode_one(b: &[u8], row: &mut impl FnMut(Key, Seen)) -> Result<usize> {
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
    let raw = zstd::bulk::decompress(body, MAX_BLOCK)?;
    rows(&raw, row)?;
    Ok(HEADER + len)
}

fn rows(mut r: &[u8], row: &mut impl FnMut(Key, Seen)) -> Result<()> {
    while !r.is_empty() {
        let (family, proto) = (take(&mut r, 1)?[0], take(&mut r, 1)?[0]);
        let inside = addr(&mut r, family)?;
        let remote = addr(&mut r, family)?;
        let port = u16::from_le_bytes(take(&mut r, 2)?.try_into()?);
        let first = u64::from(u32::from_le_bytes(take(&mut r, 4)?.try_into()?));
        let span = u64::from(u16::from_le_bytes(take(&mut r, 2)?.try_into()?));
        let count = read_varint(&mut r)?;
        row(Key { inside, remote, proto, port }, Seen { first, last: first + span, count });
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
        Key { inside: i.parse().unwrap(), remote: r.parse().unwrap(), proto: 6, port }
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
        let stopped = decode_all(&file, |k, s| got.push((k, s)));
        assert_eq!(got, a);
        assert!(stopped.unwrap().contains("cut short"));
        let mut flipped = file.clone();
        flipped[HEADER + 2] ^= 0xff;
        assert!(decode_all(&flipped, |_, _| {}).unwrap().contains("checksum"));
    }
}
