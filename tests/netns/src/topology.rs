//! A client and a gateway namespace joined by a veth pair, with documentation addresses.
//!
//! ```text
//!  client ns                                 gateway ns
//!  td-c (veth) 192.0.2.10, 192.0.2.66   <->  td-g (veth) 192.0.2.1     [XDP here]
//!              2001:db8:1::10, ::66                      2001:db8:1::1
//!  routes to 203.0.113.0/24, 198.51.100.0/24,            lo: 203.0.113.7, 198.51.100.7,
//!  2001:db8:bad::/48, 2001:db8:900d::/48 via gateway         2001:db8:bad::7, 2001:db8:900d::7
//! ```
//! 203.0.113.7 and 2001:db8:bad::7 play takedown infrastructure, 198.51.100.7 and
//! 2001:db8:900d::7 ordinary servers; 192.0.2.66 and 2001:db8:1::66 play listed sources.

use std::net::IpAddr;

use anyhow::Result;

use crate::NetNs;

/// The addresses of a [`Topology`].
pub struct Addrs;

impl Addrs {
    pub const CLIENT_V4: &str = "192.0.2.10";
    pub const CLIENT_V6: &str = "2001:db8:1::10";
    pub const LISTED_SRC_V4: &str = "192.0.2.66";
    pub const LISTED_SRC_V6: &str = "2001:db8:1::66";
    pub const GATEWAY_V4: &str = "192.0.2.1";
    pub const GATEWAY_V6: &str = "2001:db8:1::1";
    pub const TAKEDOWN_V4: &str = "203.0.113.7";
    pub const TAKEDOWN_V6: &str = "2001:db8:bad::7";
    pub const SERVER_V4: &str = "198.51.100.7";
    pub const SERVER_V6: &str = "2001:db8:900d::7";
    /// The veth end in the client namespace.
    pub const CLIENT_IF: &str = "td-c";
    /// The veth end in the gateway namespace, where the filter attaches.
    pub const GATEWAY_IF: &str = "td-g";

    /// Parses one of the constants.
    pub fn ip(s: &str) -> IpAddr {
        s.parse().expect("constant address")
    }
}

/// Two namespaces and a veth pair; dropping it deletes both namespaces (and so the veths).
pub struct Topology {
    pub client: NetNs,
    pub gateway: NetNs,
}

impl Topology {
    /// Creates namespaces named `<prefix>c-<pid>-<n>` and `<prefix>g-<pid>-<n>`.
    pub fn new(prefix: &str) -> Result<Self> {
        Self::build(
            NetNs::new(&format!("{prefix}c"))?,
            NetNs::new(&format!("{prefix}g"))?,
        )
    }

    /// Creates namespaces with exactly these names (the demo's).
    pub fn named(client: &str, gateway: &str) -> Result<Self> {
        Self::build(NetNs::named(client)?, NetNs::named(gateway)?)
    }

    fn build(client: NetNs, gateway: NetNs) -> Result<Self> {
        let topo = Self { client, gateway };
        let (c, g) = (&topo.client, &topo.gateway);
        c.ip(&[
            "link",
            "add",
            Addrs::CLIENT_IF,
            "type",
            "veth",
            "peer",
            "name",
            Addrs::GATEWAY_IF,
            "netns",
            g.name(),
        ])?;
        for a in ["192.0.2.10/24", "192.0.2.66/24"] {
            c.ip(&["addr", "add", a, "dev", Addrs::CLIENT_IF])?;
        }
        c.ip(&[
            "-6",
            "addr",
            "add",
            "2001:db8:1::10/64",
            "dev",
            Addrs::CLIENT_IF,
            "nodad",
        ])?;
        // Deprecated (preferred_lft 0): used as a source only when a test binds it explicitly.
        c.ip(&[
            "-6",
            "addr",
            "add",
            "2001:db8:1::66/64",
            "dev",
            Addrs::CLIENT_IF,
            "nodad",
            "preferred_lft",
            "0",
        ])?;
        g.ip(&["addr", "add", "192.0.2.1/24", "dev", Addrs::GATEWAY_IF])?;
        g.ip(&[
            "-6",
            "addr",
            "add",
            "2001:db8:1::1/64",
            "dev",
            Addrs::GATEWAY_IF,
            "nodad",
        ])?;
        for a in ["203.0.113.7/32", "198.51.100.7/32"] {
            g.ip(&["addr", "add", a, "dev", "lo"])?;
        }
        for a in ["2001:db8:bad::7/128", "2001:db8:900d::7/128"] {
            g.ip(&["-6", "addr", "add", a, "dev", "lo"])?;
        }
        c.ip(&["link", "set", Addrs::CLIENT_IF, "up"])?;
        g.ip(&["link", "set", Addrs::GATEWAY_IF, "up"])?;
        for r in ["203.0.113.0/24", "198.51.100.0/24"] {
            c.ip(&["route", "add", r, "via", "192.0.2.1"])?;
        }
        for r in ["2001:db8:bad::/48", "2001:db8:900d::/48"] {
            c.ip(&["-6", "route", "add", r, "via", "2001:db8:1::1"])?;
        }
        Ok(topo)
    }
}
