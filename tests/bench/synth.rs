//! Synthetic lists for the benchmark: many distinct addresses and prefixes, deterministic.

use std::{fmt::Write, net::Ipv4Addr};

use filter_common::{FLAG_BOTH, V4Key, V6Key};
use takedown::plan::{Meta, Plan};

const M: Meta = Meta { flags: FLAG_BOTH, lists: 1 };

/// Addresses that no generated entry covers (documentation ranges; generated entries start
/// at 20.0.0.0, 2a00::, 60.0.0.0/24 and 2c00::/48).
pub const MISS4: V4Key = [192, 0, 2, 10];
pub const MISS4_B: V4Key = [198, 51, 100, 7];
pub const MISS6: V6Key = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10];
pub const MISS6_B: V6Key = [0x20, 0x01, 0x0d, 0xb8, 0x90, 0x0d, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];

fn v4(i: u32) -> V4Key {
    (0x1400_0000 + i).to_be_bytes()
}

fn v6(i: u32) -> V6Key {
    let mut k = [0u8; 16];
    k[0] = 0x2a;
    k[12..].copy_from_slice(&i.to_be_bytes());
    k
}

/// A plan with `e4`/`e6` exact entries and `p4` /24 and `p6` /48 prefixes.
pub fn exact(e4: u32, e6: u32, p4: u32, p6: u32) -> Plan {
    let mut plan = Plan::default();
    plan.v4.exact = (0..e4).map(|i| (v4(i), M)).collect();
    plan.v6.exact = (0..e6).map(|i| (v6(i), M)).collect();
    plan.v4.prefix = (0..p4).map(|i| ((24, (0x3c00_0000 + (i << 8)).to_be_bytes()), M)).collect();
    plan.v6.prefix = (0..p6)
        .map(|i| {
            let mut k = [0u8; 16];
            k[0] = 0x2c;
            k[2..6].copy_from_slice(&i.to_be_bytes());
            ((48, k), M)
        })
        .collect();
    plan
}

/// A listed IPv4 address: inside the last prefix when there are prefixes, else the last exact.
pub fn hit4(plan: &Plan) -> V4Key {
    match plan.v4.prefix.last() {
        Some(((_, a), _)) => [a[0], a[1], a[2], 77],
        None => plan.v4.exact.last().expect("entries").0,
    }
}

/// A listed IPv6 address, like [`hit4`].
pub fn hit6(plan: &Plan) -> V6Key {
    match plan.v6.prefix.last() {
        Some(((_, a), _)) => {
            let mut k = *a;
            k[15] = 0x77;
            k
        }
        None => plan.v6.exact.last().expect("entries").0,
    }
}

/// `n` IPv4 addresses, one a line.
pub fn v4_text(n: u32) -> String {
    let mut s = String::with_capacity(n as usize * 14);
    for i in 0..n {
        let _ = writeln!(s, "{}", Ipv4Addr::from(v4(i)));
    }
    s
}

/// `plan` with an allowlist of `n` IPv4 and `n` IPv6 host entries that no hit address matches
/// (so hits still drop, after the kernel has checked the allowlist).
pub fn with_allow(mut plan: Plan, n: u32) -> Plan {
    plan.v4.allow = (0..n).map(|i| (32, (0x0b00_0000 + i).to_be_bytes())).collect();
    plan.v6.allow = (0..n)
        .map(|i| {
            let mut k = [0u8; 16];
            k[0] = 0x2b;
            k[12..].copy_from_slice(&i.to_be_bytes());
            (128, k)
        })
        .collect();
    plan
}
