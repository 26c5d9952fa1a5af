//! Unit tests of the planner.

use super::*;
use filter_common::{FLAG_BOTH, FLAG_DST, FLAG_SRC};

fn n(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn m(flags: u32, lists: u64) -> Meta {
    Meta { flags, lists }
}

#[test]
fn hosts_go_to_exact_maps_and_prefixes_to_tries() {
    let p = Plan::from_entries([
        (n("192.0.2.1/32"), FLAG_BOTH),
        (n("2001:db8::1/128"), FLAG_SRC),
        (n("198.51.100.0/24"), FLAG_DST),
        (n("2001:db8:1::/48"), FLAG_BOTH),
    ]);
    assert_eq!(p.v4_exact, vec![([192, 0, 2, 1], m(FLAG_BOTH, 1))]);
    assert_eq!(p.v6_exact.len(), 1);
    assert_eq!(p.v4_prefix, vec![((24, [198, 51, 100, 0]), m(FLAG_DST, 1))]);
    assert_eq!(p.v6_prefix.len(), 1);
    assert_eq!(p.stats, PlanStats::default());
}

#[test]
fn duplicates_merge_directions_and_lists() {
    let p = Plan::build(
        [
            (n("192.0.2.1/32"), m(FLAG_SRC, 1)),
            (n("192.0.2.1/32"), m(FLAG_DST, 2)),
            (n("192.0.2.1/32"), m(FLAG_SRC, 1)),
        ],
        &[],
    );
    assert_eq!(p.v4_exact, vec![([192, 0, 2, 1], m(FLAG_BOTH, 3))]);
    assert_eq!(p.stats.duplicates, 2);
}

#[test]
fn adjacent_prefixes_aggregate_but_addresses_stay_exact() {
    let p = Plan::from_entries([
        (n("198.51.100.0/25"), FLAG_BOTH),
        (n("198.51.100.128/25"), FLAG_BOTH),
        (n("192.0.2.1/32"), FLAG_BOTH),
        (n("192.0.2.0/32"), FLAG_BOTH),
    ]);
    assert_eq!(p.v4_prefix, vec![((24, [198, 51, 100, 0]), m(FLAG_BOTH, 1))]);
    assert_eq!(p.v4_exact.len(), 2);
    assert_eq!(p.stats.aggregated, 1);
}

#[test]
fn prefixes_with_different_lists_do_not_aggregate() {
    let p = Plan::build(
        [(n("198.51.100.0/25"), m(FLAG_BOTH, 1)), (n("198.51.100.128/25"), m(FLAG_BOTH, 2))],
        &[],
    );
    assert_eq!(p.v4_prefix.len(), 2);
}

#[test]
fn covered_entries_are_kept_once_unless_they_add_something() {
    let p = Plan::build(
        [
            (n("198.51.0.0/16"), m(FLAG_BOTH, 1)),
            (n("198.51.100.0/24"), m(FLAG_BOTH, 1)), // nothing new: dropped
            (n("198.51.100.7/32"), m(FLAG_BOTH, 1)), // nothing new: dropped
            (n("198.51.100.8/32"), m(FLAG_BOTH, 2)), // another list: kept, inherits list 1
            (n("203.0.113.0/24"), m(FLAG_DST, 1)),
            (n("203.0.113.9/32"), m(FLAG_SRC, 1)), // another direction: kept with both
        ],
        &[],
    );
    assert_eq!(
        p.v4_prefix,
        vec![((16, [198, 51, 0, 0]), m(FLAG_BOTH, 1)), ((24, [203, 0, 113, 0]), m(FLAG_DST, 1))]
    );
    assert_eq!(
        p.v4_exact,
        vec![([198, 51, 100, 8], m(FLAG_BOTH, 3)), ([203, 0, 113, 9], m(FLAG_BOTH, 1))]
    );
    // The /24 is inside the /16 with the same metadata: aggregation removes it; the /32 is covered.
    assert_eq!((p.stats.aggregated, p.stats.covered), (1, 1));
}

#[test]
fn nested_prefixes_inherit_covering_flags() {
    let p = Plan::from_entries([
        (n("198.51.0.0/16"), FLAG_SRC),
        (n("198.51.100.0/24"), FLAG_DST),
        (n("203.0.113.0/24"), FLAG_DST),
    ]);
    assert_eq!(
        p.v4_prefix,
        vec![
            ((16, [198, 51, 0, 0]), m(FLAG_SRC, 1)),
            ((24, [198, 51, 100, 0]), m(FLAG_BOTH, 1)),
            ((24, [203, 0, 113, 0]), m(FLAG_DST, 1)),
        ]
    );
}

#[test]
fn allowlisted_entries_are_dropped_and_the_allowlist_is_planned() {
    let p = Plan::build(
        [
            (n("203.0.113.7/32"), m(FLAG_BOTH, 1)),
            (n("203.0.113.0/24"), m(FLAG_BOTH, 1)),
            (n("2001:db8:1::/64"), m(FLAG_BOTH, 1)),
            (n("192.0.2.9/32"), m(FLAG_BOTH, 1)),
        ],
        &[n("203.0.113.7/32"), n("2001:db8::/32"), n("192.0.2.9/32")],
    );
    // The /24 stays (the kernel lets 203.0.113.7 through); what lies inside the allowlist goes.
    assert_eq!(p.v4_prefix, vec![((24, [203, 0, 113, 0]), m(FLAG_BOTH, 1))]);
    assert!(p.v4_exact.is_empty() && p.v6_prefix.is_empty());
    assert_eq!(p.stats.allowlisted, 3);
    assert_eq!(p.v4_allow, vec![(32, [192, 0, 2, 9]), (32, [203, 0, 113, 7])]);
    assert_eq!(p.v6_allow.len(), 1);
}

#[test]
fn mask_clears_host_bits() {
    assert_eq!(keys::mask(&[198, 51, 100, 255], 20), [198, 51, 96, 0]);
    assert_eq!(keys::mask(&[255; 4], 0), [0; 4]);
    assert_eq!(keys::mask(&[255; 4], 32), [255; 4]);
}
