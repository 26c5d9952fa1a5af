//! A client, a gateway and an "internet" namespace, joined by two veth pairs, with
//! documentation addresses.
//!
//! ```text
//!  client ns                  gateway ns (forwards)                   internet ns
//!  td-c 192.0.2.10, .66  <->  td-g 192.0.2.1     td-o 198.51.100.1 <-> td-i 198.51.100.2
//!       2001:db8:1::10,::66        2001:db8:1::1      2001:db8:2::1         2001:db8:2::2
//!  default routes via the gateway                                     lo: 203.0.113.7, 198.51.100.7,
//!                                                                        2001:db8:bad::7, 2001:db8:900d::7
//! ```
//! 203.0.113.7 and 2001:db8:bad::7 play takedown infrastructure, 198.51.100.7 and
//! 2001:db8:900d::7 ordinary servers; 192.0.2.66 and 2001:db8:1::66 play listed inside sources.
//! The filter attaches to td-g (inside) and, where a test wants both directions, td-o (outside).

use std::net::IpAddr;

use anyhow::Result;

use crate::NetNs;

/// The addresses and interface names of a [`Topology`].
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
    /// The gateway's inside interface.
    pub const GATEWAY_IF: &str = "td-g";
    /// The gateway's outside interface.
    pub const OUTSIDE_IF: &str = "td-o";
    /// The veth end in the internet namespace.
    pub const INTERNET_IF: &str = "td-i";

    /// Parses one of the constants.
    pub fn ip(s: &str) -> IpAddr {
        s.parse().expect("constant address")
    }
}

/// Three namespaces and two veth pairs; dropping it deletes the namespaces (and the veths).
pub struct Topology {
    pub client: NetNs,
    pub gateway: NetNs,
    pub internet: NetNs,
}

impl Topology {
    /// Creates namespaces named `td-<prefix>c-<pid>-<n>`, `td-<prefix>g-...` and `td-<prefix>i-...`.
    pub fn new(prefix: &str) -> Result<Self> {
        Self::build(
            NetNs::new(&format!("{prefix}c"))?,
            NetNs::new(&format!("{prefix}g"))?,
            NetNs::new(&format!("{prefix}i"))?,
        )
    }

    /// Creates namespaces with exactly these names (the demo's).
    pub fn named(client: &str, gateway: &str, internet: &str) -> Result<Self> {
        Self::build(NetNs::named(client)?, NetNs::named(gateway)?, NetNs::named(internet)?)
    }

    fn build(client: NetNs, gateway: NetNs, internet: NetNs) -> Result<Self> {
        let topo = Self { client, gateway, internet };
        let (c, g, i) = (&topo.client, &topo.gateway, &topo.internet);
        let veth = |a: &NetNs, a_if: &str, b: &NetNs, b_if: &str| {
            a.ip(&["link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b.name()])
        };
        veth(c, Addrs::CLIENT_IF, g, Addrs::GATEWAY_IF)?;
        veth(i, Addrs::INTERNET_IF, g, Addrs::OUTSIDE_IF)?;
        // IPv6 addresses skip duplicate address detection, so they work at once.
        let addr = |ns: &NetNs, dev: &str, a: &str| {
            if a.contains(':') {
                ns.ip(&["-6", "addr", "add", a, "dev", dev, "nodad"])
            } else {
                ns.ip(&["addr", "add", a, "dev", dev])
            }
        };
        addr(c, Addrs::CLIENT_IF, "192.0.2.10/24")?;
        addr(c, Addrs::CLIENT_IF, "192.0.2.66/24")?;
        addr(c, Addrs::CLIENT_IF, "2001:db8:1::10/64")?;
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
        addr(g, Addrs::GATEWAY_IF, "192.0.2.1/24")?;
        addr(g, Addrs::GATEWAY_IF, "2001:db8:1::1/64")?;
        addr(g, Addrs::OUTSIDE_IF, "198.51.100.1/24")?;
        addr(g, Addrs::OUTSIDE_IF, "2001:db8:2::1/64")?;
        addr(i, Addrs::INTERNET_IF, "198.51.100.2/24")?;
        addr(i, Addrs::INTERNET_IF, "2001:db8:2::2/64")?;
        for a in
            ["203.0.113.7/32", "198.51.100.7/32", "2001:db8:bad::7/128", "2001:db8:900d::7/128"]
        {
            addr(i, "lo", a)?;
        }
        for (ns, dev) in [
            (c, Addrs::CLIENT_IF),
            (g, Addrs::GATEWAY_IF),
            (g, Addrs::OUTSIDE_IF),
            (i, Addrs::INTERNET_IF),
        ] {
            ns.ip(&["link", "set", dev, "up"])?;
        }
        for key in ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"] {
            let out = g.exec("sysctl", &["-qw", key])?;
            anyhow::ensure!(out.status.success(), "sysctl {key} in {}", g.name());
        }
        c.ip(&["route", "add", "default", "via", "192.0.2.1"])?;
        c.ip(&["-6", "route", "add", "default", "via", "2001:db8:1::1"])?;
        g.ip(&["route", "add", "203.0.113.0/24", "via", "198.51.100.2"])?;
        g.ip(&["route", "add", "198.51.100.7/32", "via", "198.51.100.2"])?;
        for r in ["2001:db8:bad::/48", "2001:db8:900d::/48"] {
            g.ip(&["-6", "route", "add", r, "via", "2001:db8:2::2"])?;
        }
        i.ip(&["route", "add", "192.0.2.0/24", "via", "198.51.100.1"])?;
        i.ip(&["-6", "route", "add", "2001:db8:1::/64", "via", "2001:db8:2::1"])?;
        Ok(topo)
    }
}
