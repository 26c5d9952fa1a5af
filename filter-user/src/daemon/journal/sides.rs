//! Which end of a new connection is the inside host: the interface roles the operator gave
//! (a packet arriving on an inside interface comes from an inside host, one arriving on
//! another goes to one), or else the private address.

use std::net::IpAddr;

use filter_common::Connection;

use super::block::Key;
use crate::daemon::hosts::addr;

/// How the inside end is told.
#[derive(Clone, Debug, Default)]
pub struct Sides {
    /// Interface indexes of the inside interfaces (empty: by address).
    pub inside: Vec<u32>,
}

impl Sides {
    /// The row key of `c`: the inside host, the remote, the protocol, the port connected to
    /// (the remote's when the inside host opened it, the host's when the remote did); None
    /// when neither end can be told inside.
    pub fn key(&self, c: &Connection) -> Option<Key> {
        let (src, dst) = (addr(c.family, &c.src), addr(c.family, &c.dst));
        let src_inside = if self.inside.is_empty() {
            match (private(src), private(dst)) {
                (true, _) => true, // both private: the one that opened it
                (false, true) => false,
                (false, false) => return None,
            }
        } else {
            self.inside.contains(&c.ifindex)
        };
        // The source of a SYN, or of a flow's first datagram, opened the connection.
        let (inside, remote) = if src_inside { (src, dst) } else { (dst, src) };
        Some(Key { inside, remote, proto: c.proto, port: c.dport, inbound: !src_inside })
    }
}

/// Private address space: RFC 1918, shared address space, unique local IPv6.
pub fn private(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(a) => a.is_private() || (a.octets()[0] == 100 && a.octets()[1] & 0xc0 == 64),
        IpAddr::V6(a) => a.segments()[0] & 0xfe00 == 0xfc00,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(src: [u8; 4], dst: [u8; 4], ifindex: u32) -> Connection {
        let wide = |a: [u8; 4]| {
            let mut w = [0; 16];
            w[..4].copy_from_slice(&a);
            w
        };
        let (src, dst) = (wide(src), wide(dst));
        Connection {
            src,
            dst,
            ifindex,
            sport: 40000,
            dport: 443,
            proto: 6,
            family: 4,
            ..Default::default()
        }
    }

    #[test]
    fn the_inside_end_by_interface_or_by_private_address() {
        let by_if = Sides { inside: vec![3] };
        let out = by_if.key(&conn([192, 0, 2, 10], [203, 0, 113, 7], 3)).unwrap();
        assert_eq!(
            (out.inside.to_string(), out.inbound, out.port),
            ("192.0.2.10".into(), false, 443)
        );
        let scan = by_if.key(&conn([203, 0, 113, 7], [192, 0, 2, 10], 4)).unwrap();
        assert_eq!((scan.inside.to_string(), scan.inbound), ("192.0.2.10".into(), true));
        let by_addr = Sides::default();
        assert!(!by_addr.key(&conn([10, 0, 0, 2], [203, 0, 113, 7], 9)).unwrap().inbound);
        assert!(by_addr.key(&conn([203, 0, 113, 7], [100, 64, 0, 2], 9)).unwrap().inbound);
        assert_eq!(by_addr.key(&conn([192, 0, 2, 10], [203, 0, 113, 7], 9)), None);
    }
}
