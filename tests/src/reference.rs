//! A reference model of the verdict, from a plan alone: what the XDP program must decide for a
//! packet, written the plain way (the longest match by trying every length, no prefilter, no
//! per-/16 lengths, no trie), for differential tests against the kernel.

use std::{collections::HashMap, net::IpAddr};

use filter_common::{FLAG_DST, FLAG_MON_DST, FLAG_MON_SRC, FLAG_SRC};
use ipnet::IpNet;
use takedown::plan::{Meta, Plan};

/// The verdict the program must give.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Drop,
    Pass,
}

/// The plan's entries and allowlist as networks.
pub struct Model {
    entries: HashMap<IpNet, Meta>,
    allow: Vec<IpNet>,
}

impl Model {
    pub fn new(plan: &Plan) -> Self {
        let allow4 = plan.v4.allow.iter().map(|(l, a)| takedown::plan::net(a, *l));
        let allow6 = plan.v6.allow.iter().map(|(l, a)| takedown::plan::net(a, *l));
        Self { entries: plan.nets().collect(), allow: allow4.chain(allow6).collect() }
    }

    /// The entry for `net` itself.
    fn at(&self, addr: IpAddr, len: u8) -> Option<Meta> {
        let net = IpNet::new(addr, len).expect("valid length").trunc();
        self.entries.get(&net).copied()
    }

    /// The metadata of the entry that matches `addr` for the directions in `want`: the exact
    /// entry if it has one of them, else the longest prefix if it does; none when allowed.
    fn matched(&self, addr: IpAddr, want: u32) -> Option<Meta> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let exact = self.at(addr, max);
        let longest = (0..max).rev().find_map(|len| self.at(addr, len));
        let hit =
            exact.filter(|m| m.flags & want != 0).or(longest.filter(|m| m.flags & want != 0))?;
        (!self.allow.iter().any(|n| n.contains(&addr))).then_some(hit)
    }

    /// The verdict for a packet from `src` to `dst`.
    pub fn verdict(&self, src: IpAddr, dst: IpAddr) -> Verdict {
        let s = self.matched(src, FLAG_SRC | FLAG_MON_SRC);
        let d = self.matched(dst, FLAG_DST | FLAG_MON_DST);
        let blocks = s.is_some_and(|m| m.flags & FLAG_SRC != 0)
            || d.is_some_and(|m| m.flags & FLAG_DST != 0);
        if blocks { Verdict::Drop } else { Verdict::Pass }
    }
}
