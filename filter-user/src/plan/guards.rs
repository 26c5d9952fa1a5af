//! Safety guards: what takedown refuses or leaves out, whatever a list says.
//!
//! - Prefixes shorter than /8 (IPv4) or /24 (IPv6) are refused unless `force_broad`;
//!   0.0.0.0/0 and ::/0 always.
//! - Ranges a gateway's own networks live in (RFC 1918, loopback, link-local, multicast, ...)
//!   are left out unless `allow_special`; an entry overlapping one is split around it.
//!   Documentation ranges are not guarded.
//! - A list that shrinks by more than half between two loads is held (see [`shrink_check`]).

use std::sync::LazyLock;

use ipnet::IpNet;

/// Which guards are relaxed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuardOptions {
    /// Accept prefixes shorter than /8 (IPv4) and /24 (IPv6), except /0.
    pub force_broad: bool,
    /// Accept entries in the special ranges.
    pub allow_special: bool,
}

/// The special ranges, as strings for messages and parsed once.
pub const SPECIAL: [&str; 14] = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/128",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
];

static SPECIAL_NETS: LazyLock<Vec<IpNet>> =
    LazyLock::new(|| SPECIAL.iter().map(|s| s.parse().expect("valid range")).collect());

/// For each first byte of an address, per family (0: IPv4, 1: IPv6): whether a special range
/// starts with it, so that most entries are cleared with one table look-up.
static SPECIAL_FIRST_BYTES: LazyLock<[[bool; 256]; 2]> = LazyLock::new(|| {
    let mut t = [[false; 256]; 2];
    for n in SPECIAL_NETS.iter() {
        let (family, first, bytes) = match n {
            IpNet::V4(v) => {
                (0, v.network().octets()[0], 1u32 << 8u8.saturating_sub(v.prefix_len()))
            }
            IpNet::V6(v) => {
                (1, v.network().octets()[0], 1u32 << 8u8.saturating_sub(v.prefix_len()))
            }
        };
        (0..bytes).for_each(|i| t[family][usize::from(first) + i as usize] = true);
    }
    t
});

/// The special ranges per family (0: IPv4, 1: IPv6) as first and last address numbers.
static SPECIAL_RANGES: LazyLock<[Vec<(u128, u128)>; 2]> = LazyLock::new(|| {
    let mut ranges: [Vec<(u128, u128)>; 2] = Default::default();
    for n in SPECIAL_NETS.iter() {
        let (family, first, last) = super::keys::range(n);
        ranges[family].push((first, last));
    }
    ranges
});

/// True when `net` overlaps a special range (two networks overlap when their address ranges
/// meet: one then holds the other).
fn overlaps_special(net: &IpNet) -> bool {
    let (family, first, last) = super::keys::range(net);
    SPECIAL_RANGES[family].iter().any(|&(a, b)| first <= b && a <= last)
}

/// True when `net` may overlap a special range (false: it certainly does not).
fn near_special(net: &IpNet) -> bool {
    let (family, first) = match net {
        IpNet::V4(v) => (0, v.network().octets()[0]),
        IpNet::V6(v) => (1, v.network().octets()[0]),
    };
    net.prefix_len() < 8 || SPECIAL_FIRST_BYTES[family][usize::from(first)]
}

/// What the guards make of one entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Loaded as it is.
    Keep,
    /// Too broad: not loaded, and the list counts as having a refused entry.
    Refused(String),
    /// Inside special ranges: not loaded.
    Special(String),
    /// Overlaps special ranges: these pieces are loaded instead.
    Split(Vec<IpNet>, String),
}

/// Applies the guards to one network. An entry wholly inside special ranges is left out
/// (whatever its size); otherwise a too-broad entry is refused; otherwise an entry overlapping
/// special ranges is split around them.
pub fn check(net: IpNet, opts: GuardOptions) -> Verdict {
    let (min, family) = match net {
        IpNet::V4(_) => (8, "IPv4"),
        IpNet::V6(_) => (24, "IPv6"),
    };
    if net.prefix_len() == 0 {
        return Verdict::Refused(format!("{net} covers every {family} address: always refused"));
    }
    // The common case, without an allocation: a long enough prefix that no special range
    // overlaps.
    let special = || near_special(&net) && overlaps_special(&net);
    if (net.prefix_len() >= min || opts.force_broad) && (opts.allow_special || !special()) {
        return Verdict::Keep;
    }
    let hits: Vec<&IpNet> = if opts.allow_special {
        Vec::new()
    } else {
        SPECIAL_NETS.iter().filter(|s| overlaps(s, &net)).collect()
    };
    let names = hits.iter().map(|h| h.to_string()).collect::<Vec<_>>().join(", ");
    let pieces = if hits.is_empty() { vec![net] } else { subtract(net, &hits) };
    if pieces.is_empty() {
        return Verdict::Special(format!(
            "{net} is in special range {names}: left out (--allow-special to load it)"
        ));
    }
    if net.prefix_len() < min && !opts.force_broad {
        return Verdict::Refused(format!(
            "{net} is broader than /{min}: refused (--force-broad to load it)"
        ));
    }
    if hits.is_empty() {
        Verdict::Keep
    } else {
        Verdict::Split(
            pieces.clone(),
            format!(
                "{net} overlaps special range {names}: loaded as {} pieces without it",
                pieces.len()
            ),
        )
    }
}

/// True when one network contains the other.
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(b) || b.contains(a)
}

/// `net` without the `holes`, as the fewest prefixes.
pub fn subtract(net: IpNet, holes: &[&IpNet]) -> Vec<IpNet> {
    if holes.iter().any(|h| h.contains(&net)) {
        return vec![];
    }
    if !holes.iter().any(|h| net.contains(*h)) {
        return vec![net];
    }
    match net.subnets(net.prefix_len() + 1) {
        Ok(halves) => halves.flat_map(|half| subtract(half, holes)).collect(),
        Err(_) => vec![],
    }
}

/// Whether a list that had `previous` entries may be replaced by one with `next` entries:
/// losing more than half is held back unless `accept_shrink`.
pub fn shrink_check(previous: usize, next: usize, accept_shrink: bool) -> Result<(), String> {
    if accept_shrink || previous == 0 || next * 2 >= previous {
        Ok(())
    } else {
        Err(format!(
            "the new content has {next} entries, less than half of the {previous} loaded before \
             (--accept-shrink to take it)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn broad_prefixes_are_refused() {
        let d = GuardOptions::default();
        assert!(matches!(check(n("0.0.0.0/0"), d), Verdict::Refused(_)));
        assert!(matches!(
            check(n("::/0"), GuardOptions { force_broad: true, ..d }),
            Verdict::Refused(_)
        ));
        assert!(matches!(check(n("64.0.0.0/7"), d), Verdict::Refused(_)));
        assert_eq!(check(n("64.0.0.0/7"), GuardOptions { force_broad: true, ..d }), Verdict::Keep);
        assert_eq!(check(n("44.0.0.0/8"), d), Verdict::Keep);
        assert!(matches!(check(n("2a00::/23"), d), Verdict::Refused(_)));
        assert_eq!(check(n("2a00::/24"), d), Verdict::Keep);
    }

    #[test]
    fn special_ranges_are_left_out_or_split() {
        let d = GuardOptions::default();
        for s in [
            "10.1.2.3/32",
            "192.168.0.0/16",
            "127.0.0.1/32",
            "fe80::1/128",
            "255.255.255.255/32",
            "::1/128",
            "fd00::/8",
        ] {
            assert!(matches!(check(n(s), d), Verdict::Special(_)), "{s}");
        }
        // A /3 covering 224/4 and 240/4 is nothing but special ranges.
        assert!(matches!(check(n("224.0.0.0/3"), d), Verdict::Special(_)));
        // 192.0.0.0/8 minus 192.168/16: 8 pieces, none inside 192.168/16.
        match check(n("192.0.0.0/8"), d) {
            Verdict::Split(pieces, _) => {
                assert_eq!(pieces.len(), 8);
                assert!(pieces.iter().all(|p| !overlaps(p, &n("192.168.0.0/16"))));
                let total: u64 = pieces.iter().map(|p| 1u64 << (32 - p.prefix_len())).sum();
                assert_eq!(total, (1 << 24) - (1 << 16));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            check(n("10.0.0.0/8"), GuardOptions { allow_special: true, ..d }),
            Verdict::Keep
        );
    }

    #[test]
    fn the_fast_path_misses_no_special_range() {
        let d = GuardOptions::default();
        let broad = GuardOptions { force_broad: true, ..d };
        // 96.0.0.0/4 holds 100.64.0.0/10 but starts at a first byte (96) no range starts with.
        assert!(matches!(check(n("96.0.0.0/4"), broad), Verdict::Split(..)));
        assert!(matches!(check(n("fe80::1/128"), d), Verdict::Special(_)));
        assert!(matches!(check(n("fc00::/6"), broad), Verdict::Split(..)));
        // Every single-address entry of every special range is left out.
        for s in SPECIAL {
            let net: IpNet = s.parse().unwrap();
            let host = IpNet::from(net.hosts().next().unwrap_or(net.addr()));
            assert!(matches!(check(host, d), Verdict::Special(_)), "{host} in {s}");
        }
    }

    #[test]
    fn documentation_ranges_are_not_guarded() {
        for s in ["192.0.2.0/24", "198.51.100.7/32", "203.0.113.0/24", "2001:db8::/32"] {
            assert_eq!(check(n(s), GuardOptions::default()), Verdict::Keep, "{s}");
        }
    }

    #[test]
    fn shrinking_by_more_than_half_is_held() {
        assert!(shrink_check(1000, 500, false).is_ok());
        assert!(shrink_check(1000, 499, false).is_err());
        assert!(shrink_check(1000, 1, true).is_ok());
        assert!(shrink_check(0, 0, false).is_ok());
    }
}
