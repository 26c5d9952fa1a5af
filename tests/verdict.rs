//! Verdicts of the real XDP program, and of its tc egress twin, on crafted frames, through
//! BPF_PROG_TEST_RUN, with the counters checked after each case.

use filter_common::{CNT_DROP_DST, CNT_DROP_SRC, CNT_MALFORMED, CNT_NON_IP, CNT_PASSED};
use integration_tests::{
    frames, kernel_test,
    loaded::{Loaded, TC_ACT_SHOT, TC_ACT_UNSPEC, XDP_DROP, XDP_PASS},
};
use takedown::{
    lists::entry::Direction::{Both, Dst, Src},
    plan::{Meta, Plan},
};
use test_case::test_case;

const LISTED4: [u8; 4] = [203, 0, 113, 7];
const OTHER4: [u8; 4] = [192, 0, 2, 10];
const INSIDE4: [u8; 4] = [198, 51, 100, 42];
const LISTED6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x07];
const OTHER6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10];
const IN_PREFIX6: [u8; 16] =
    [0x20, 0x01, 0x0d, 0xb8, 0x0b, 0xad, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34];

/// Packets in each counter slot: [passed, dropped_src, dropped_dst, non_ip, malformed].
fn slots(l: &Loaded) -> [u64; 5] {
    let p = l.packets();
    [p[0], p[1], p[2], p[3], p[4]]
}

fn one(slot: u32) -> [u64; 5] {
    let mut s = [0; 5];
    s[slot as usize] = 1;
    s
}

/// One family's addresses for the cases every family shares.
struct Family {
    listed: &'static str,
    other: &'static str,
    prefix: &'static str,
    in_prefix: &'static str,
    /// The address right after the prefix.
    past_prefix: &'static str,
}

const V4: Family = Family {
    listed: "203.0.113.7",
    other: "192.0.2.10",
    prefix: "198.51.100.0/24",
    in_prefix: "198.51.100.255",
    past_prefix: "198.51.101.0",
};

const V6: Family = Family {
    listed: "2001:db8::7",
    other: "2001:db8:1::10",
    prefix: "2001:db8:bad::/48",
    in_prefix: "2001:db8:bad::1234",
    past_prefix: "2001:db8:bae::",
};

#[kernel_test]
#[test_case(V4 ; "ipv4")]
#[test_case(V6 ; "ipv6")]
fn exact_source_and_destination_hits_drop(f: Family) {
    let l = Loaded::with(&[(f.listed, Both)]).unwrap();
    let frame = frames::ip(f.listed, f.other);
    assert_eq!(l.verdict(&frame), XDP_DROP);
    assert_eq!(slots(&l), one(CNT_DROP_SRC));
    assert_eq!(l.counters().bytes(CNT_DROP_SRC), frame.len() as u64);
    assert_eq!(l.verdict(&frames::ip(f.other, f.listed)), XDP_DROP);
    assert_eq!(slots(&l), [0, 1, 1, 0, 0]);
}

#[kernel_test]
#[test_case(V4 ; "ipv4")]
#[test_case(V6 ; "ipv6")]
fn a_miss_passes(f: Family) {
    let l = Loaded::with(&[(f.listed, Both), (f.prefix, Both)]).unwrap();
    assert_eq!(l.verdict(&frames::ip(f.other, f.past_prefix)), XDP_PASS);
    assert_eq!(slots(&l), one(CNT_PASSED));
    assert_eq!(l.counters().bytes(CNT_PASSED), 64);
}

#[kernel_test]
#[test_case(V4 ; "ipv4")]
#[test_case(V6 ; "ipv6")]
fn source_only_entries_ignore_destinations(f: Family) {
    let l = Loaded::with(&[(f.listed, Src), (f.prefix, Src)]).unwrap();
    assert_eq!(l.verdict(&frames::ip(f.other, f.listed)), XDP_PASS);
    assert_eq!(l.verdict(&frames::ip(f.listed, f.other)), XDP_DROP);
    assert_eq!(l.verdict(&frames::ip(f.other, f.in_prefix)), XDP_PASS);
    assert_eq!(l.verdict(&frames::ip(f.in_prefix, f.other)), XDP_DROP);
    assert_eq!(slots(&l), [2, 2, 0, 0, 0]);
}

#[kernel_test]
#[test_case(V4 ; "ipv4")]
#[test_case(V6 ; "ipv6")]
fn destination_only_entries_ignore_sources(f: Family) {
    let l = Loaded::with(&[(f.listed, Dst), (f.prefix, Dst)]).unwrap();
    assert_eq!(l.verdict(&frames::ip(f.listed, f.other)), XDP_PASS);
    assert_eq!(l.verdict(&frames::ip(f.other, f.listed)), XDP_DROP);
    assert_eq!(l.verdict(&frames::ip(f.in_prefix, f.other)), XDP_PASS);
    assert_eq!(l.verdict(&frames::ip(f.other, f.in_prefix)), XDP_DROP);
    assert_eq!(slots(&l), [2, 0, 2, 0, 0]);
}

#[kernel_test]
#[test_case(V4 ; "ipv4")]
#[test_case(V6 ; "ipv6")]
fn prefix_hits_drop_both_ways_and_end_at_the_prefix(f: Family) {
    let l = Loaded::with(&[(f.prefix, Both)]).unwrap();
    assert_eq!(l.verdict(&frames::ip(f.in_prefix, f.other)), XDP_DROP);
    assert_eq!(l.verdict(&frames::ip(f.other, f.in_prefix)), XDP_DROP);
    assert_eq!(l.verdict(&frames::ip(f.other, f.past_prefix)), XDP_PASS);
    assert_eq!(slots(&l), [1, 1, 1, 0, 0]);
}

/// Nested prefixes, each on a list of its own (so that planning keeps every level): an
/// address is matched at whichever of the lengths near it holds it (IPv6 searches up to two
/// lengths inline, more in a loop).
#[kernel_test]
#[test_case(&["2001:db8::/32", "2001:db8:1::/48"], "2001:db8:2::1" ; "ipv6 two lengths, the shorter")]
#[test_case(&["2001:db8::/32", "2001:db8:1::/48"], "2001:db8:1::1" ; "ipv6 two lengths, the longer")]
#[test_case(&["2001:db8::/32", "2001:db8:1::/48", "2001:db8:1:1::/64"], "2001:db8:2::1" ; "ipv6 three lengths, the shortest")]
#[test_case(&["2001:db8::/32", "2001:db8:1::/48", "2001:db8:1:1::/64"], "2001:db8:1:2::1" ; "ipv6 three lengths, the middle")]
#[test_case(&["198.51.0.0/16", "198.51.100.0/24", "198.51.100.128/25"], "198.51.7.1" ; "ipv4 three lengths, the shortest")]
fn nested_prefixes_match_at_every_length(nets: &[&str], addr: &str) {
    let entries = nets.iter().enumerate().map(|(i, n)| {
        (n.parse::<ipnet::IpNet>().unwrap(), Meta { flags: Dst.flags(), lists: 1 << i })
    });
    let plan = Plan::build(entries, &[]);
    assert_eq!(plan.len(), nets.len(), "every level planned");
    let l = Loaded::with_plan(&plan).unwrap();
    let other = if addr.contains(':') { "2001:db8:1::10" } else { "192.0.2.10" };
    assert_eq!(l.verdict(&frames::ip(other, addr)), XDP_DROP, "to {addr}");
    assert_eq!(slots(&l), one(CNT_DROP_DST));
}

#[kernel_test]
fn exact_and_prefix_directions_combine() {
    // The exact entry blocks only sources, the covering prefix only destinations: an address
    // on both is blocked both ways.
    let l =
        Loaded::with(&[("198.51.100.42", Src), ("198.51.100.0/24", Dst), ("198.51.0.0/16", Src)])
            .unwrap();
    assert_eq!(l.verdict(&frames::v4(INSIDE4, OTHER4)), XDP_DROP);
    assert_eq!(l.verdict(&frames::v4(OTHER4, INSIDE4)), XDP_DROP);
    // 198.51.100.7 is covered by the /24 (dst) inside the /16 (src): both directions drop.
    assert_eq!(l.verdict(&frames::v4([198, 51, 100, 7], OTHER4)), XDP_DROP);
    // 198.51.7.7 only by the /16 (src).
    assert_eq!(l.verdict(&frames::v4(OTHER4, [198, 51, 7, 7])), XDP_PASS);
    assert_eq!(slots(&l), [1, 2, 1, 0, 0]);
}

#[kernel_test]
fn one_and_two_vlan_tags() {
    let l = Loaded::with(&[("203.0.113.7", Both), ("2001:db8::7", Both)]).unwrap();
    let single = frames::v4_vlan(OTHER4, LISTED4);
    assert_eq!(u16::from_be_bytes([single[12], single[13]]), 0x8100);
    assert_eq!(l.verdict(&single), XDP_DROP);
    assert_eq!(l.verdict(&frames::v4_vlan(OTHER4, INSIDE4)), XDP_PASS);
    let double = frames::v6_double_vlan(LISTED6, OTHER6);
    assert_eq!(u16::from_be_bytes([double[12], double[13]]), 0x88A8);
    assert_eq!(u16::from_be_bytes([double[16], double[17]]), 0x8100);
    assert_eq!(l.verdict(&double), XDP_DROP);
    // Two 802.1Q tags (QinQ without 802.1ad) parse as well.
    let mut qinq = double.clone();
    qinq[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
    assert_eq!(l.verdict(&qinq), XDP_DROP);
    assert_eq!(l.verdict(&frames::v6_double_vlan(OTHER6, IN_PREFIX6)), XDP_PASS);
    assert_eq!(slots(&l), [2, 2, 1, 0, 0]);
}

#[kernel_test]
fn non_ip_passes_and_is_counted() {
    let l = Loaded::with(&[("203.0.113.7", Both)]).unwrap();
    assert_eq!(l.verdict(&frames::arp()), XDP_PASS);
    assert_eq!(slots(&l), one(CNT_NON_IP));
}

#[kernel_test]
fn ipv4_with_options_is_parsed() {
    let l = Loaded::with(&[("203.0.113.7", Dst)]).unwrap();
    assert_eq!(l.verdict(&frames::v4_with_options(OTHER4, LISTED4)), XDP_DROP);
    assert_eq!(l.verdict(&frames::v4_with_options(OTHER4, INSIDE4)), XDP_PASS);
    assert_eq!(slots(&l), [1, 0, 1, 0, 0]);
}

#[kernel_test]
fn truncated_and_malformed_headers_pass_and_are_counted() {
    // Every frame below carries a listed address where a parser that over-read would find it.
    let l = Loaded::with(&[("203.0.113.7", Both), ("2001:db8::7", Both)]).unwrap();
    let v4 = frames::v4(OTHER4, LISTED4);
    let v6 = frames::v6(OTHER6, LISTED6);
    let vlan = frames::v4_vlan(OTHER4, LISTED4);
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("IPv4 header cut at 19 bytes", v4[..14 + 19].to_vec()),
        ("IPv6 header cut at 39 bytes", v6[..14 + 39].to_vec()),
        ("VLAN tag cut in half", vlan[..16].to_vec()),
        ("IPv4 after VLAN cut at 10 bytes", vlan[..18 + 10].to_vec()),
    ];
    let mut bad_ihl = v4.clone();
    bad_ihl[14] = 0x44; // IHL 4 (< 5)
    cases.push(("IPv4 IHL below 5", bad_ihl));
    let mut long_ihl = v4[..14 + 24].to_vec();
    long_ihl[14] = 0x4f; // IHL 15: 60 bytes claimed, 24 present
    cases.push(("IPv4 IHL beyond the frame", long_ihl));
    let mut wrong_version = v4.clone();
    wrong_version[14] = 0x65; // version 6 in an IPv4 ethertype
    cases.push(("IPv4 ethertype with version 6", wrong_version));
    let mut v6_wrong = v6.clone();
    v6_wrong[14] = 0x40; // version 4 in an IPv6 ethertype
    cases.push(("IPv6 ethertype with version 4", v6_wrong));
    for (i, (what, frame)) in cases.iter().enumerate() {
        assert_eq!(l.verdict(frame), XDP_PASS, "{what}");
        assert_eq!(
            l.packets()[CNT_MALFORMED as usize],
            i as u64 + 1,
            "{what} counted as malformed"
        );
    }
    assert_eq!(slots(&l), [0, 0, 0, 0, cases.len() as u64]);
}

#[kernel_test]
fn truncated_ethernet_header_passes() {
    // The kernel refuses BPF_PROG_TEST_RUN input shorter than an Ethernet header, so the
    // shortest frame the program can see is 14 bytes: an IPv4 ethertype and nothing after it.
    let l = Loaded::with(&[("203.0.113.7", Both)]).unwrap();
    let frame = frames::v4(OTHER4, LISTED4)[..14].to_vec();
    assert_eq!(l.verdict(&frame), XDP_PASS);
    assert_eq!(slots(&l), one(CNT_MALFORMED));
}

#[kernel_test]
#[test_case("10.16.0.0/12", "10.31.255.255", "10.32.0.0" ; "ipv4 /12")]
#[test_case("100.64.0.0/10", "100.127.255.1", "100.128.0.1" ; "ipv4 /10")]
#[test_case("2001:db8::/29", "2001:dbf:ffff::1", "2001:dc0::1" ; "ipv6 /29")]
#[test_case("2001:db8::/20", "2001:fff:ffff::1", "2001:1000::1" ; "ipv6 /20")]
#[test_case("2000::/12", "200f:ffff::1", "2010::1" ; "ipv6 /12, every prefilter bit")]
fn the_prefilter_covers_a_broad_prefix_to_its_last_address(prefix: &str, last: &str, past: &str) {
    let l = Loaded::with(&[(prefix, Dst)]).unwrap();
    let other = if last.contains(':') { V6.other } else { V4.other };
    assert_eq!(l.verdict(&frames::ip(other, last)), XDP_DROP, "{last} in {prefix}");
    assert_eq!(l.verdict(&frames::ip(other, past)), XDP_PASS, "{past} past {prefix}");
}

#[kernel_test]
#[test_case(V4 ; "ipv4")]
#[test_case(V6 ; "ipv6")]
fn the_egress_program_gives_the_same_verdicts(f: Family) {
    let mut l = Loaded::with(&[(f.listed, Both), (f.prefix, Dst)]).unwrap();
    let mut verdict = |src: &str, dst: &str| l.egress_verdict(&frames::ip(src, dst));
    assert_eq!(verdict(f.other, f.listed), TC_ACT_SHOT, "to a listed address");
    assert_eq!(verdict(f.listed, f.other), TC_ACT_SHOT, "from a listed address");
    assert_eq!(verdict(f.other, f.in_prefix), TC_ACT_SHOT, "into a listed prefix");
    assert_eq!(verdict(f.in_prefix, f.other), TC_ACT_UNSPEC, "a dst-only prefix as source");
    assert_eq!(verdict(f.other, f.past_prefix), TC_ACT_UNSPEC, "a miss goes on");
    let p = l.packets();
    assert_eq!(
        [p[CNT_DROP_SRC as usize], p[CNT_DROP_DST as usize], p[CNT_PASSED as usize]],
        [1, 2, 2]
    );
}

#[kernel_test]
fn the_egress_program_parses_vlan_tags_and_passes_what_it_cannot_read() {
    let mut l = Loaded::with(&[(V4.listed, Both)]).unwrap();
    let ip = |s: &str| s.parse().unwrap();
    for tags in 0..3 {
        let frame = frames::tagged(ip(V4.other), ip(V4.listed), tags);
        assert_eq!(l.egress_verdict(&frame), TC_ACT_SHOT, "{tags} tags");
    }
    assert_eq!(l.egress_verdict(&frames::arp()), TC_ACT_UNSPEC, "not IP");
    // (A socket buffer cut short inside its IP header cannot be made by BPF_PROG_TEST_RUN;
    // a header that is not IPv4 stands for what cannot be read.)
    let mut bad = frames::v4(OTHER4, LISTED4);
    bad[14] = 0x55;
    assert_eq!(l.egress_verdict(&bad), TC_ACT_UNSPEC, "not a valid IPv4 header");
    assert_eq!(slots(&l)[3..], [1, 1], "counted as non-IP and malformed");
}

/// Half the verifier's limit of a million instructions: a lookup that makes the verifier walk
/// more (inline loops whose every exit is a path of its own through the rest of the program)
/// would load slowly here and fail on the kernels operators run first.
const MAX_VERIFIED: u32 = 500_000;

#[kernel_test]
fn the_program_verifies_well_within_the_kernels_limit() {
    let l = Loaded::with_plan(&Plan::default()).unwrap();
    let info = l.filter.program().info().unwrap();
    let walked = info.verified_instruction_count().expect("the kernel reports it (5.16+)");
    assert!(walked < MAX_VERIFIED, "the verifier walked {walked} instructions");
}
