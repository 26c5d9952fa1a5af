//! Bounds-checked packet parsing: Ethernet, up to two VLAN tags, IPv4 and IPv6 addresses, of
//! an XDP frame or a socket buffer (the tc egress program) alike (see [`Frame`]).
//!
//! Every read is preceded by a check against `data_end`; anything short or inconsistent is
//! reported as `Malformed` so that the caller can pass it (fail-open) and count it.

use aya_ebpf::programs::{TcContext, XdpContext};
use filter_common::V4Key;

const ETH_HLEN: usize = 14;
const VLAN_HLEN: usize = 4;
const ETH_P_IPV4: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86DD;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88A8;
const IPV4_MIN_HLEN: usize = 20;
const IPV6_HLEN: usize = 40;

/// What the program needs to know about a packet: its addresses, its IP protocol, and where
/// its transport header starts (read only when an event is reported).
pub enum Addresses {
    V4(Packet<V4Key>),
    V6(Packet<V6Addr>),
    NonIp,
    Malformed,
}

/// An IPv6 address as the packet holds it, in two words (native order: the target is
/// little-endian, so their bytes are the address's in order). Kept as words, not bytes: an
/// address of 16 bytes was taken apart byte by byte and the journal's tag put them back
/// together, 35 instructions for each datagram of an IPv6 flow.
pub type V6Addr = [u64; 2];

/// An IP packet's addresses, protocol, and transport header offset. Word-aligned, offset first:
/// the addresses then sit at aligned offsets of [`Addresses`] and are moved in words (with the
/// default layout, an IPv6 address landed next to the enum's tag and was copied byte by byte).
#[repr(C)]
pub struct Packet<A> {
    /// Where the transport header starts: [`NO_TRANSPORT`] in an IPv4 fragment after the
    /// first, which has none (its ports and flags then read as absent, with no test of their
    /// own on the journal's path).
    pub l4: usize,
    pub src: A,
    pub dst: A,
    pub proto: u8,
}

/// The `l4` of a packet without a transport header: past any that is read.
pub const NO_TRANSPORT: usize = usize::MAX;

/// What the parser reads: the packet's bytes and the interface it is on.
pub trait Frame {
    fn start(&self) -> usize;
    fn end(&self) -> usize;
    /// The interface the packet arrived on (XDP) or leaves by (tc egress).
    fn ifindex(&self) -> u32;
    /// True for a packet leaving (tc egress).
    const EGRESS: bool;
}

impl Frame for XdpContext {
    const EGRESS: bool = false;
    #[inline(always)]
    fn start(&self) -> usize {
        self.data()
    }
    #[inline(always)]
    fn end(&self) -> usize {
        self.data_end()
    }
    #[inline(always)]
    fn ifindex(&self) -> u32 {
        // SAFETY: `self.ctx` is the xdp_md the kernel passed to this program.
        unsafe { (*self.ctx).ingress_ifindex }
    }
}

impl Frame for TcContext {
    const EGRESS: bool = true;
    #[inline(always)]
    fn start(&self) -> usize {
        self.data()
    }
    #[inline(always)]
    fn end(&self) -> usize {
        self.data_end()
    }
    #[inline(always)]
    fn ifindex(&self) -> u32 {
        // SAFETY: `self.skb.skb` is the __sk_buff the kernel passed to this program.
        unsafe { (*self.skb.skb).ifindex }
    }
}

/// A pointer to a `T` at `offset` bytes into the packet, if the whole `T` lies inside it.
#[inline(always)]
fn at<C: Frame, T>(ctx: &C, offset: usize) -> Option<*const T> {
    let start = ctx.start();
    if start + offset + core::mem::size_of::<T>() > ctx.end() {
        return None;
    }
    Some((start + offset) as *const T)
}

/// Reads a big-endian u16 at `offset`.
#[inline(always)]
fn be16<C: Frame>(ctx: &C, offset: usize) -> Option<u16> {
    // SAFETY: `at` checked that both bytes lie inside the packet.
    at::<C, [u8; 2]>(ctx, offset).map(|p| u16::from_be_bytes(unsafe { *p }))
}

/// Parses the frame up to the network header and returns its addresses.
#[inline(always)]
pub fn addresses<C: Frame>(ctx: &C) -> Addresses {
    let Some(mut proto) = be16(ctx, ETH_HLEN - 2) else {
        return Addresses::Malformed;
    };
    let mut l3 = ETH_HLEN;
    // Up to two VLAN tags (802.1Q and 802.1ad, in any order).
    if proto == ETH_P_8021Q || proto == ETH_P_8021AD {
        let Some(inner) = be16(ctx, l3 + 2) else {
            return Addresses::Malformed;
        };
        proto = inner;
        l3 += VLAN_HLEN;
        if proto == ETH_P_8021Q || proto == ETH_P_8021AD {
            let Some(inner) = be16(ctx, l3 + 2) else {
                return Addresses::Malformed;
            };
            proto = inner;
            l3 += VLAN_HLEN;
        }
    }
    match proto {
        ETH_P_IPV4 => ipv4(ctx, l3),
        ETH_P_IPV6 => ipv6(ctx, l3),
        _ => Addresses::NonIp,
    }
}

#[inline(always)]
fn ipv4<C: Frame>(ctx: &C, l3: usize) -> Addresses {
    let Some(hdr) = at::<C, [u8; IPV4_MIN_HLEN]>(ctx, l3) else {
        return Addresses::Malformed;
    };
    // SAFETY: `at` checked that the 20-byte header lies inside the packet.
    let hdr = unsafe { &*hdr };
    let version = hdr[0] >> 4;
    let ihl = (hdr[0] & 0x0f) as usize * 4;
    if version != 4 || ihl < IPV4_MIN_HLEN || ctx.start() + l3 + ihl > ctx.end() {
        return Addresses::Malformed;
    }
    // In one load: a fragment after the first has a fragment offset.
    // SAFETY: `at` checked that the 20-byte header lies inside the packet; read unaligned.
    let flags_and_offset = unsafe { (hdr.as_ptr().add(6) as *const u16).read_unaligned() };
    // The addresses as two 4-byte loads (byte by byte, they took 8 loads and 14 shifts and ors).
    // SAFETY: as above; bytes 12 to 19 are the source and destination, in order.
    let [src, dst] = unsafe { (hdr.as_ptr().add(12) as *const [[u8; 4]; 2]).read_unaligned() };
    Addresses::V4(Packet {
        src,
        dst,
        proto: hdr[9],
        l4: match u16::from_be(flags_and_offset) & 0x1fff {
            0 => l3 + ihl,
            _ => NO_TRANSPORT,
        },
    })
}

#[inline(always)]
fn ipv6<C: Frame>(ctx: &C, l3: usize) -> Addresses {
    let Some(hdr) = at::<C, [u8; IPV6_HLEN]>(ctx, l3) else {
        return Addresses::Malformed;
    };
    // SAFETY: `at` checked that the 40-byte header lies inside the packet.
    let hdr = unsafe { &*hdr };
    if hdr[0] >> 4 != 6 {
        return Addresses::Malformed;
    }
    // The addresses in four word loads (not byte by byte through the stack).
    let words = hdr.as_ptr() as *const [u64; IPV6_HLEN / 8];
    // SAFETY: `at` checked that the 40-byte header lies inside the packet; the target allows
    // misaligned loads.
    let w = unsafe { words.read_unaligned() };
    let (src, dst) = ([w[1], w[2]], [w[3], w[4]]);
    // Fragments carry a fragment header (proto 44): neither TCP nor UDP to the journal.
    Addresses::V6(Packet { src, dst, proto: hdr[6], l4: l3 + IPV6_HLEN })
}

/// The source and destination ports at `l4` for TCP and UDP (0, 0 otherwise or if cut short).
#[inline(always)]
pub fn ports<C: Frame>(ctx: &C, proto: u8, l4: usize) -> (u16, u16) {
    if proto != 6 && proto != 17 {
        return (0, 0);
    }
    // Both ports in one checked read (an `Option` of each could leave an undefined register
    // the verifier refuses).
    // SAFETY: `ports_at` checked that the 4 bytes lie inside the packet; read unaligned.
    let raw = ports_at(ctx, l4).map(|p| unsafe { p.read_unaligned() });
    raw.map_or((0, 0), |[s, d]| (u16::from_be(s), u16::from_be(d)))
}

/// Where the two ports of the TCP or UDP header at `l4` lie (none if cut short, or if there
/// is no such header).
#[inline(always)]
pub fn ports_at<C: Frame>(ctx: &C, l4: usize) -> Option<*const [u16; 2]> {
    if l4 > 128 {
        return None;
    }
    at::<C, [u16; 2]>(ctx, l4)
}

/// The TCP flags byte of the header at `l4` (0 if cut short).
#[inline(always)]
pub fn tcp_flags<C: Frame>(ctx: &C, l4: usize) -> u8 {
    if l4 > 128 {
        return 0;
    }
    // SAFETY: `at` checked that the byte lies inside the packet.
    at::<C, u8>(ctx, l4 + 13).map_or(0, |p| unsafe { *p })
}
