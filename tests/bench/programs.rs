//! The benchmark's own XDP programs, assembled by hand: the floors (a program that only
//! returns a verdict) and the floods' sender, which writes a source address drawn at random
//! from a table into each frame and sends it out (XDP_TX).

use std::{
    net::Ipv4Addr,
    os::fd::{AsRawFd, OwnedFd},
};

use anyhow::{Context, Result, anyhow, bail};

use crate::sys::{bpf, bpf_fd};

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_PROG_LOAD: libc::c_long = 5;
const XDP_TX: i32 = 3;
/// Addresses the sender's table holds (the random index is masked to it).
pub const SOURCES: usize = 1 << 16;
/// Where a frame's IPv4 source address lies: after the 14-byte Ethernet header, 12 bytes in.
const SRC_AT: i16 = 14 + 12;

/// One BPF instruction: opcode, destination and source registers, offset, immediate.
const fn insn(op: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
    op as u64
        | ((dst | src << 4) as u64) << 8
        | (off as u16 as u64) << 16
        | (imm as u32 as u64) << 32
}

/// What a floor program does before it returns its verdict.
#[derive(Clone, Copy)]
pub enum Work {
    /// Nothing: the cheapest program there is.
    Nothing,
    /// Reads the frame's IPv4 source address, which any filter must: in the floods, the cache
    /// line the sender's CPU has just written it to.
    Reads,
    /// Reads the source address, then counts down from this number (two instructions a step,
    /// no memory): about what a filter's lookups cost, without their maps.
    ReadsAndCounts(i32),
    /// Reads the source address, counts to [`COUNT`], then loads a word from each of this
    /// many cache lines of an array map: a filter's time and memory, without its lookups.
    ReadsCountsAndLoads(i32),
}

/// Steps of the [`Work::ReadsAndCounts`] floor: about as many nanoseconds a packet as a
/// takedown hit (the per-packet table measures it).
pub const COUNT: i32 = 48;

/// Cache lines of the [`Work::ReadsCountsAndLoads`] floor: about as many as a takedown hit
/// reads (interface slot, flags, prefilter, bucket, entry, three per-CPU counters).
pub const LINES: i32 = 8;

/// A program that does `work`, then returns `action` whatever it read (XDP_DROP: the drop
/// floor, XDP_PASS: the pass floor).
pub fn floor(action: i32, work: Work) -> Result<OwnedFd> {
    let reads = [
        insn(0x61, 2, 1, 0, 0),                     // r2 = ctx->data
        insn(0x61, 3, 1, 4, 0),                     // r3 = ctx->data_end
        insn(0xbf, 4, 2, 0, 0),                     // r4 = r2
        insn(0x07, 4, 0, 0, i32::from(SRC_AT) + 4), // r4 += end of the source field
        insn(0x2d, 4, 3, 1, 0),                     // if r4 > r3 goto out (past the next one)
        insn(0x61, 5, 2, SRC_AT, 0),                // r5 = *(u32 *)(data + SRC_AT): the source
    ];
    let counts = |n: i32| {
        [
            insn(0xb7, 6, 0, 0, n),  // out: r6 = n
            insn(0x17, 6, 0, 0, 1),  // loop: r6 -= 1
            insn(0x55, 6, 0, -2, 0), // if r6 != 0 goto loop
        ]
    };
    // The map the loads read, open until the program holds it.
    let mut map = None;
    let mut prog = match work {
        Work::Nothing => vec![],
        Work::Reads => reads.to_vec(),
        Work::ReadsAndCounts(n) => [&reads[..], &counts(n)].concat(),
        Work::ReadsCountsAndLoads(lines) => {
            let (loads, m) = loads(lines)?;
            map = Some(m);
            [&reads[..], &counts(COUNT), &loads].concat()
        }
    };
    prog.extend([insn(0xb7, 0, 0, 0, action), insn(0x95, 0, 0, 0, 0)]); // r0 = action; exit
    let prog = load(&prog);
    drop(map);
    prog
}

/// Instructions that load a word from each of `lines` cache lines of a new array map (values
/// two 64-byte values apart: a value need not start a line), and the map.
fn loads(lines: i32) -> Result<(Vec<u64>, OwnedFd)> {
    let map = array_map(64, lines as u32 * 2)?;
    let fd = map.as_raw_fd();
    let mut prog = vec![];
    for i in 0..lines {
        prog.push(insn(0xb7, 7, 0, 0, i * 2)); // r7 = 2i
        prog.extend(lookup(fd, 7));
        prog.extend([
            insn(0x15, 0, 0, 1, 0), // if r0 == 0 goto next
            insn(0x79, 8, 0, 0, 0), // r8 = *(u64 *)r0
        ]);
    }
    Ok((prog, map))
}

/// Instructions that look up, in map `fd`, the `u32` key in register `key`: r0 = the value's
/// address, or 0 (r1 to r5 clobbered).
fn lookup(fd: i32, key: u8) -> [u64; 6] {
    [
        insn(0x63, 10, key, -4, 0), // *(u32 *)(fp - 4) = key
        insn(0x18, 1, 1, 0, fd),    // r1 = the map (BPF_PSEUDO_MAP_FD)
        0,
        insn(0xbf, 2, 10, 0, 0), // r2 = fp
        insn(0x07, 2, 0, 0, -4), // r2 -= 4
        insn(0x85, 0, 0, 0, 1),  // r0 = bpf_map_lookup_elem(map, &key)
    ]
}

/// A new array map of `entries` values of `value_size` bytes, keyed by `u32`.
fn array_map(value_size: u32, entries: u32) -> Result<OwnedFd> {
    // bpf_attr for BPF_MAP_CREATE: map_type (BPF_MAP_TYPE_ARRAY), key_size, value_size,
    // max_entries; the rest zero.
    let mut attr = [0u32; 32];
    attr[..4].copy_from_slice(&[2, 4, value_size, entries]);
    bpf_fd(BPF_MAP_CREATE, &mut attr).map_err(|e| anyhow!("cannot create an array map: {e}"))
}

/// The floods' sender and its table: every frame leaves (XDP_TX) with its IPv4 source replaced
/// by one of `sources` (repeated to fill [`SOURCES`] slots), drawn with the kernel's prandom.
/// One address makes a one-source flood that costs the sender exactly what a varied one does.
pub fn sender(sources: &[Ipv4Addr]) -> Result<(OwnedFd, OwnedFd)> {
    let table = source_table(sources)?;
    let fd = table.as_raw_fd();
    let head = [
        insn(0xbf, 6, 1, 0, 0),                  // r6 = ctx
        insn(0x85, 0, 0, 0, 7),                  // r0 = bpf_get_prandom_u32()
        insn(0x57, 0, 0, 0, SOURCES as i32 - 1), // r0 &= SOURCES - 1
    ];
    let tail = [
        insn(0x15, 0, 0, 7, 0),                     // if r0 == 0 goto send
        insn(0x61, 1, 0, 0, 0),                     // r1 = *(u32 *)r0: the source
        insn(0x61, 2, 6, 0, 0),                     // r2 = ctx->data
        insn(0x61, 3, 6, 4, 0),                     // r3 = ctx->data_end
        insn(0xbf, 4, 2, 0, 0),                     // r4 = r2
        insn(0x07, 4, 0, 0, i32::from(SRC_AT) + 4), // r4 += end of the source field
        insn(0x2d, 4, 3, 1, 0),                     // if r4 > r3 goto send
        insn(0x63, 2, 1, SRC_AT, 0),                // *(u32 *)(data + SRC_AT) = r1
        insn(0xb7, 0, 0, 0, XDP_TX),                // send: r0 = XDP_TX
        insn(0x95, 0, 0, 0, 0),                     // exit
    ];
    // r0 = the table's slot at that index.
    let prog = [&head[..], &lookup(fd, 0), &tail].concat();
    Ok((load(&prog)?, table))
}

/// An array map of [`SOURCES`] IPv4 addresses (network order) cycling through `sources`.
fn source_table(sources: &[Ipv4Addr]) -> Result<OwnedFd> {
    if sources.is_empty() {
        bail!("the flood's sender needs at least one source address");
    }
    let table = array_map(4, SOURCES as u32).context("cannot create the sender's table")?;
    for (i, a) in (0..SOURCES as u32).zip(sources.iter().cycle()) {
        let value = u32::from_ne_bytes(a.octets());
        // map_fd, pad, key, value, flags.
        let mut attr = [0u64; 16];
        attr[0] = table.as_raw_fd() as u64;
        attr[1] = (&raw const i) as u64;
        attr[2] = (&raw const value) as u64;
        bpf(BPF_MAP_UPDATE_ELEM, &mut attr)
            .map_err(|e| anyhow!("cannot fill the sender's table: {e}"))?;
    }
    Ok(table)
}

/// Loads XDP program `insns` (GPL).
fn load(insns: &[u64]) -> Result<OwnedFd> {
    let license = c"GPL";
    // bpf_attr for BPF_PROG_LOAD: prog_type (BPF_PROG_TYPE_XDP), insn_cnt, insns, license;
    // the rest zero.
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&6u32.to_ne_bytes());
    attr[4..8].copy_from_slice(&(insns.len() as u32).to_ne_bytes());
    attr[8..16].copy_from_slice(&(insns.as_ptr() as u64).to_ne_bytes());
    attr[16..24].copy_from_slice(&(license.as_ptr() as u64).to_ne_bytes());
    bpf_fd(BPF_PROG_LOAD, &mut attr)
        .map_err(|e| anyhow!("cannot load the benchmark's XDP program: {e}"))
}
