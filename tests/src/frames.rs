//! Ethernet frames for BPF_PROG_TEST_RUN, built with etherparse (64 bytes unless stated).

use etherparse::{
    EtherType, Ethernet2Header, IpHeaders, IpNumber, Ipv4Header, Ipv4Options, PacketBuilder, VlanId,
};

const SRC_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const DST_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
/// Size of every ordinary test frame.
pub const FRAME_LEN: usize = 64;

/// A UDP/IPv4 frame of 64 bytes.
pub fn v4(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(SRC_MAC, DST_MAC).ipv4(src, dst, 64).udp(40000, 53);
    let payload = vec![0u8; FRAME_LEN - 14 - 20 - 8];
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, &payload).unwrap();
    out
}

/// A UDP/IPv6 frame of 64 bytes.
pub fn v6(src: [u8; 16], dst: [u8; 16]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(SRC_MAC, DST_MAC).ipv6(src, dst, 64).udp(40000, 53);
    let payload = vec![0u8; FRAME_LEN - 14 - 40 - 8];
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, &payload).unwrap();
    out
}

/// A TCP frame from port 40000 to 443 (64 bytes over IPv4, 74 over IPv6): a SYN when `syn`,
/// else an ACK.
pub fn tcp(src: std::net::IpAddr, dst: std::net::IpAddr, syn: bool) -> Vec<u8> {
    use std::net::IpAddr::{V4, V6};
    let eth = PacketBuilder::ethernet2(SRC_MAC, DST_MAC);
    let ip = match (src, dst) {
        (V4(s), V4(d)) => eth.ipv4(s.octets(), d.octets(), 64),
        (V6(s), V6(d)) => eth.ipv6(s.octets(), d.octets(), 64),
        _ => panic!("two addresses of one family"),
    };
    let b = ip.tcp(40000, 443, 1, 64240);
    let b = if syn { b.syn() } else { b.ack(1) };
    let payload = vec![0u8; FRAME_LEN.saturating_sub(b.size(0))];
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, &payload).unwrap();
    out
}

/// `frame` (an untagged IPv4 one) made a fragment after the first (at offset 128): its
/// payload starts with what was its transport header, which a later fragment does not have.
pub fn later_fragment(mut frame: Vec<u8>) -> Vec<u8> {
    frame[14 + 6..14 + 8].copy_from_slice(&16u16.to_be_bytes());
    frame
}

/// `frame` (an untagged IPv4 one) made the first fragment of several (more to come).
pub fn first_fragment(mut frame: Vec<u8>) -> Vec<u8> {
    frame[14 + 6..14 + 8].copy_from_slice(&0x2000u16.to_be_bytes());
    frame
}

/// A 64-byte UDP frame between two addresses of one family ("203.0.113.7", "2001:db8::7").
pub fn ip(src: &str, dst: &str) -> Vec<u8> {
    use std::net::IpAddr;
    match (src.parse().expect("source address"), dst.parse().expect("destination address")) {
        (IpAddr::V4(s), IpAddr::V4(d)) => v4(s.octets(), d.octets()),
        (IpAddr::V6(s), IpAddr::V6(d)) => v6(s.octets(), d.octets()),
        _ => panic!("{src} and {dst} are of different families"),
    }
}

/// A UDP frame between `src` and `dst` (one family) behind `tags` VLAN tags (0, 1: 802.1Q,
/// 2: 802.1ad outer and 802.1Q inner).
pub fn tagged(src: std::net::IpAddr, dst: std::net::IpAddr, tags: u8) -> Vec<u8> {
    use std::net::IpAddr::{V4, V6};
    let eth = PacketBuilder::ethernet2(SRC_MAC, DST_MAC);
    let (a, b) = (VlanId::try_new(10).unwrap(), VlanId::try_new(20).unwrap());
    let mut out = Vec::new();
    let payload = [0u8; 8];
    let written = match (src, dst, tags) {
        (V4(s), V4(d), 0) => {
            eth.ipv4(s.octets(), d.octets(), 64).udp(1, 53).write(&mut out, &payload)
        }
        (V4(s), V4(d), 1) => {
            eth.single_vlan(a).ipv4(s.octets(), d.octets(), 64).udp(1, 53).write(&mut out, &payload)
        }
        (V4(s), V4(d), _) => eth
            .double_vlan(a, b)
            .ipv4(s.octets(), d.octets(), 64)
            .udp(1, 53)
            .write(&mut out, &payload),
        (V6(s), V6(d), 0) => {
            eth.ipv6(s.octets(), d.octets(), 64).udp(1, 53).write(&mut out, &payload)
        }
        (V6(s), V6(d), 1) => {
            eth.single_vlan(a).ipv6(s.octets(), d.octets(), 64).udp(1, 53).write(&mut out, &payload)
        }
        (V6(s), V6(d), _) => eth
            .double_vlan(a, b)
            .ipv6(s.octets(), d.octets(), 64)
            .udp(1, 53)
            .write(&mut out, &payload),
        _ => panic!("{src} and {dst} are of different families"),
    };
    written.expect("frame");
    out
}

/// A UDP/IPv4 frame with one 802.1Q tag.
pub fn v4_vlan(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(SRC_MAC, DST_MAC)
        .single_vlan(VlanId::try_new(100).unwrap())
        .ipv4(src, dst, 64)
        .udp(40000, 53);
    let mut out = Vec::new();
    b.write(&mut out, &[0u8; 18]).unwrap();
    out
}

/// A UDP/IPv6 frame with two tags (802.1ad outer, 802.1Q inner).
pub fn v6_double_vlan(src: [u8; 16], dst: [u8; 16]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(SRC_MAC, DST_MAC)
        .double_vlan(VlanId::try_new(10).unwrap(), VlanId::try_new(20).unwrap())
        .ipv6(src, dst, 64)
        .udp(40000, 53);
    let mut out = Vec::new();
    b.write(&mut out, &[0u8; 8]).unwrap();
    out
}

/// An IPv4 frame whose header carries 8 bytes of options (IHL 7).
pub fn v4_with_options(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    let mut ip = Ipv4Header::new(8, 64, IpNumber::UDP, src, dst).unwrap();
    // Two NOPs, then a 4-byte router-alert option, padded with end-of-list.
    ip.options = Ipv4Options::from([1, 1, 148, 4, 0, 0, 0, 0]);
    let b = PacketBuilder::ethernet2(SRC_MAC, DST_MAC)
        .ip(IpHeaders::Ipv4(ip, Default::default()))
        .udp(40000, 53);
    let mut out = Vec::new();
    b.write(&mut out, &[0u8; 14]).unwrap();
    assert_eq!(out[14] & 0x0f, 7, "IHL must be 7");
    out
}

/// An ARP-typed frame (non-IP).
pub fn arp() -> Vec<u8> {
    let mut out =
        Ethernet2Header { source: SRC_MAC, destination: DST_MAC, ether_type: EtherType::ARP }
            .to_bytes()
            .to_vec();
    out.resize(FRAME_LEN, 0);
    out
}
