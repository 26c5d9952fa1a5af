//! Which end of a new connection is the inside host: the interface roles the operator gave
//! (a packet arriving on an inside interface comes from an inside host), or else the private
//! address.

use std::net::IpAddr;

use filter_common::{CONN_EGRESS, Connection};

use super::block::Key;

/// How the inside end is told.
#[derive(Clone, Debug, Default)]
pub struct Sides {
    /// Interface indexes of the inside interfaces (empty: by address).
    pub inside: Vec<u32>,
}

impl Sides {
    /// The row key of `c`: (inside host, remote, protocol, the remote's port); None when
    /// neither end can be told inside.
    pub fn key(&self, c: &Connection) -> Option<Key> {
        let (src, dst) = (addr(&c.src, c.family), addr(&c.dst, c.family));
        let src_inside = if self.inside.is_empty() {
            match (private(src), private(dst)) {
                (true, _) => true, // both private: the one that opened it
                (false, true) => false,
                (false, false) => return None,
            }
        } else {
            let on_inside = self.inside.contains(&c.ifindex);
            // Arriving on an inside interface, or leaving by another: from an inside host.
            on_inside != (c.kind & CONN_EGRESS != 0)
        };
        Some(match src_inside {
            true => Key { inside: src, remote: dst, proto: c.proto, port: c.dport },
            false => Key { inside: dst, remote: src, proto: c.proto, port: c.sport },
        })
    }
}

fn addr(a: &[u8; 16], family: u8) -> IpAddr {
    match family {
        4 => IpAddr::from([a[0], a[1], a[2], a[3]]),
        _ => IpAddr::from(*a),
    }
}

/// Private address space: RFC 1918, shared address space, unique local IPv6.
pub fn private(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(a) => a.is_private() || (a.octets()[0] == 100 && a.octets()[1] & 0xc0 == 64),
        IpAddr::V6(a) => a.segments()[0] & 0xfe00 == 0xfc00,
    }
}
