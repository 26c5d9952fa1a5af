//! Unit tests of the planner.

use super::*;
use filter_common::{FLAG_BOTH, FLAG_DST, FLAG_SRC};

fn n(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// Plans entries of one list (list bit 0), each with its direction flags, without allowlist.
fn one_list(entries: impl IntoIterator<Item = (IpNet, u32)>) -> Plan {
    Plan::build(entries.into_iter().map(|(n, flags)| (n, Meta { flags, lists: 1 })), &[])
}

/// A plain list's spec, for the pipeline.
fn spec() -> pipeline::ListSpec {
    pipeline::ListSpec {
        name: "l".into(),
        origin: "l.txt".into(),
        options: Default::default(),
        monitor: false,
        max_bytes: crate::lists::DEFAULT_MAX_BYTES,
        minisign_key: None,
    }
}

fn m(flags: u32, lists: u64) -> Meta {
    Meta { flags, lists }
}

#[test]
fn hosts_go_to_exact_maps_and_prefixes_to_tries() {
    let p = one_list([
        (n("192.0.2.1/32"), FLAG_BOTH),
        (n("2001:db8::1/128"), FLAG_SRC),
        (n("198.51.100.0/24"), FLAG_DST),
        (n("2001:db8:1::/48"), FLAG_BOTH),
    ]);
    assert_eq!(p.v4.exact, vec![([192, 0, 2, 1], m(FLAG_BOTH, 1))]);
    assert_eq!(p.v6.exact.len(), 1);
    assert_eq!(p.v4.prefix, vec![((24, [198, 51, 100, 0]), m(FLAG_DST, 1))]);
    assert_eq!(p.v6.prefix.len(), 1);
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
    assert_eq!(p.v4.exact, vec![([192, 0, 2, 1], m(FLAG_BOTH, 3))]);
    assert_eq!(p.stats.duplicates, 2);
}

#[test]
fn adjacent_prefixes_aggregate_but_addresses_stay_exact() {
    let p = one_list([
        (n("198.51.100.0/25"), FLAG_BOTH),
        (n("198.51.100.128/25"), FLAG_BOTH),
        (n("192.0.2.1/32"), FLAG_BOTH),
        (n("192.0.2.0/32"), FLAG_BOTH),
    ]);
    assert_eq!(p.v4.prefix, vec![((24, [198, 51, 100, 0]), m(FLAG_BOTH, 1))]);
    assert_eq!(p.v4.exact.len(), 2);
    assert_eq!(p.stats.aggregated, 1);
}

#[test]
fn prefixes_with_different_lists_do_not_aggregate() {
    let p = Plan::build(
        [(n("198.51.100.0/25"), m(FLAG_BOTH, 1)), (n("198.51.100.128/25"), m(FLAG_BOTH, 2))],
        &[],
    );
    assert_eq!(p.v4.prefix.len(), 2);
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
        p.v4.prefix,
        vec![((16, [198, 51, 0, 0]), m(FLAG_BOTH, 1)), ((24, [203, 0, 113, 0]), m(FLAG_DST, 1))]
    );
    assert_eq!(
        p.v4.exact,
        vec![([198, 51, 100, 8], m(FLAG_BOTH, 3)), ([203, 0, 113, 9], m(FLAG_BOTH, 1))]
    );
    // The /24 is inside the /16 with the same metadata: aggregation removes it; the /32 is covered.
    assert_eq!((p.stats.aggregated, p.stats.covered), (1, 1));
}

#[test]
fn nested_prefixes_inherit_covering_flags() {
    let p = one_list([
        (n("198.51.0.0/16"), FLAG_SRC),
        (n("198.51.100.0/24"), FLAG_DST),
        (n("203.0.113.0/24"), FLAG_DST),
    ]);
    assert_eq!(
        p.v4.prefix,
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
    assert_eq!(p.v4.prefix, vec![((24, [203, 0, 113, 0]), m(FLAG_BOTH, 1))]);
    assert!(p.v4.exact.is_empty() && p.v6.prefix.is_empty());
    assert_eq!(p.stats.allowlisted, 3);
    assert_eq!(p.v4.allow, vec![(32, [192, 0, 2, 9]), (32, [203, 0, 113, 7])]);
    assert_eq!(p.v6.allow.len(), 1);
}

#[test]
fn mask_clears_host_bits() {
    assert_eq!(keys::mask(&[198, 51, 100, 255], 20), [198, 51, 96, 0]);
    assert_eq!(keys::mask(&[255; 4], 0), [0; 4]);
    assert_eq!(keys::mask(&[255; 4], 32), [255; 4]);
}

#[test]
fn directions_name_blocking_and_monitoring_apart() {
    use filter_common::{FLAG_MON_DST, FLAG_MON_SRC};
    assert_eq!(m(FLAG_BOTH, 1).directions(), "both");
    assert_eq!(m(FLAG_SRC, 1).directions(), "src");
    assert_eq!(m(FLAG_MON_DST, 1).directions(), "monitor dst");
    assert_eq!(m(FLAG_MON_SRC | FLAG_MON_DST, 1).directions(), "monitor both");
    assert_eq!(m(FLAG_SRC | FLAG_MON_SRC | FLAG_MON_DST, 1).directions(), "src, monitor dst");
    assert_eq!(m(FLAG_BOTH | FLAG_MON_DST, 1).directions(), "both");
}

#[test]
fn a_domain_named_twice_is_one_entry_and_a_duplicate() {
    let spec = spec();
    let r = pipeline::Pipeline::default()
        .list(&spec, 0, "evil.example\nbad.example\nevil.example\n")
        .unwrap();
    assert_eq!((r.list.domains.len(), r.duplicates, r.usable()), (2, 1, 2));
}

#[test]
fn entries_in_any_order_from_several_lists_plan_sorted_and_merged() {
    let a = ["203.0.113.9", "192.0.2.200", "198.51.100.1", "192.0.2.3"];
    let b = ["192.0.2.200", "192.0.2.4", "203.0.113.9"];
    let host = |s: &&str| n(&format!("{s}/32"));
    let entries = a.iter().map(|s| (host(s), m(FLAG_SRC, 1)));
    let p = Plan::build(entries.chain(b.iter().map(|s| (host(s), m(FLAG_DST, 2)))), &[]);
    let both = m(FLAG_BOTH, 3);
    let expected = vec![
        ([192, 0, 2, 3], m(FLAG_SRC, 1)),
        ([192, 0, 2, 4], m(FLAG_DST, 2)),
        ([192, 0, 2, 200], both),
        ([198, 51, 100, 1], m(FLAG_SRC, 1)),
        ([203, 0, 113, 9], both),
    ];
    assert_eq!(p.v4.exact, expected);
    assert_eq!(p.stats.duplicates, 2);
}

#[test]
fn the_allowlist_removes_what_lies_inside_it_and_nothing_next_to_it() {
    let allow = [n("192.0.2.0/25"), n("198.51.100.7/32"), n("2001:db8:1::/48")];
    let entries = [
        "192.0.2.0/32",
        "192.0.2.127/32",
        "192.0.2.128/32",
        "198.51.100.6/32",
        "198.51.100.7/32",
        "198.51.100.8/32",
        "192.0.2.0/26",
        "192.0.2.0/24",
        "2001:db8:1::5/128",
        "2001:db8:2::5/128",
        "2001:db8:1:8000::/49",
    ];
    // Addresses in another list than prefixes: none is covered by a prefix.
    let list = |s: &&str| if s.contains("/32") || s.contains("/128") { 2 } else { 1 };
    let p = Plan::build(entries.iter().map(|s| (n(s), m(FLAG_BOTH, list(s)))), &allow);
    let kept: Vec<String> = p.nets().map(|(n, _)| n.to_string()).collect();
    let expected = [
        "192.0.2.128/32",
        "198.51.100.6/32",
        "198.51.100.8/32",
        "192.0.2.0/24",
        "2001:db8:2::5/128",
    ];
    assert_eq!(kept, expected);
    assert_eq!(p.stats.allowlisted, 6);
}

#[test]
fn a_report_counts_repeats_among_addresses_and_prefixes_in_any_order() {
    let spec = spec();
    let text = "203.0.113.9\n198.51.100.0/25\n192.0.2.1\n203.0.113.9\n198.51.100.128/25\n\
                2001:db8::1\n198.51.100.0/25\n2001:db8::1\n203.0.113.9\n";
    let r = pipeline::Pipeline::default().list(&spec, 0, text).unwrap();
    assert_eq!((r.duplicates, r.aggregated, r.nets.len()), (4, 1, 9));
    let hosts: Vec<[u8; 4]> = r.nets.hosts.iter().map(|(a, _)| *a).collect();
    assert_eq!(hosts, [[192, 0, 2, 1], [203, 0, 113, 9], [203, 0, 113, 9], [203, 0, 113, 9]]);
}
