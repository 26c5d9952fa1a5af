//! The kernel's side of the connection journal, under BPF_PROG_TEST_RUN on a loaded program
//! (its records drained from the ring): a UDP flow's datagrams, either way, are one record,
//! over IPv4 and IPv6; a later fragment is no flow and no SYN.

use std::net::IpAddr;

use filter_common::{Connection, Record};
use integration_tests::{frames, kernel_test};
use takedown::{
    maps::{
        filter::{Capacities, Filter},
        sync,
    },
    plan::Plan,
};

/// A filter with nothing listed and the journal on.
fn journaling() -> Filter {
    let plan = Plan::build(std::iter::empty(), &[]);
    let caps = Capacities::for_plan(&plan, u32::MAX).unwrap().with_journal(true);
    let mut filter = Filter::load(&caps).unwrap();
    sync::fill(&mut filter.maps_mut().addr, &plan).unwrap();
    filter.maps_mut().set_journal(true).unwrap();
    filter
}

/// Runs `filter` on `frame` `times` times (each passed); returns the records it reported.
fn records(filter: &Filter, frame: &[u8], times: u32) -> Vec<Connection> {
    let mut ring = filter.maps().journal_ring().unwrap();
    let opts =
        aya::programs::TestRunOptions { data_in: Some(frame), repeat: times, ..Default::default() };
    let run = aya::programs::TestRun::test_run(filter.program(), opts).unwrap();
    assert_eq!(run.return_value, 2, "passed");
    std::iter::from_fn(|| ring.next().map(|r| Connection::read(&r).expect("a whole record")))
        .collect()
}

/// A UDP datagram `src:sport -> dst:dport` ("192.0.2.80", "2001:db8::80").
fn datagram(src: &str, sport: u16, dst: &str, dport: u16) -> Vec<u8> {
    let eth = etherparse::PacketBuilder::ethernet2([2; 6], [4; 6]);
    let ip = match (src.parse().unwrap(), dst.parse().unwrap()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => eth.ipv4(s.octets(), d.octets(), 64),
        (IpAddr::V6(s), IpAddr::V6(d)) => eth.ipv6(s.octets(), d.octets(), 64),
        _ => panic!("two addresses of one family"),
    };
    let mut out = Vec::new();
    ip.udp(sport, dport).write(&mut out, &[0u8; 22]).unwrap();
    out
}

/// The kernel's flow slots (BPF_PROG_TEST_RUN on a loaded program, its records drained from
/// the ring): a flow's datagrams, either way, are one record; another port is another flow;
/// emptied by the writer's hourly call, the slots report the flow again.
#[kernel_test]
fn a_udp_flow_is_reported_once_either_way_until_the_slots_are_emptied() {
    let filter = journaling();
    let mut slots = filter.maps().flow_slots().unwrap();
    let (inside, remote) = ("10.0.0.2", "192.0.2.80");
    let records = |frame: &[u8], times: u32| records(&filter, frame, times).len();
    let out = datagram(inside, 40000, remote, 443);
    assert_eq!(records(&out, 1000), 1, "a flood of one flow");
    assert_eq!(records(&datagram(remote, 443, inside, 40000), 10), 0, "its replies");
    assert_eq!(records(&datagram(inside, 40001, remote, 443), 10), 1, "another source port");
    slots.clear().unwrap();
    assert_eq!(records(&out, 10), 1, "after the slots were emptied");
    // A fragment after the first has no UDP or TCP header (its payload starts like one here):
    // no flow, no SYN. The first fragment of a new flow has it.
    let fresh = datagram(inside, 40002, remote, 443);
    assert_eq!(records(&frames::later_fragment(fresh.clone()), 10), 0, "later fragments");
    let syn = frames::tcp(inside.parse().unwrap(), remote.parse().unwrap(), true);
    assert_eq!(records(&frames::later_fragment(syn.clone()), 10), 0, "a later fragment like a SYN");
    assert_eq!(records(&syn, 1), 1, "the SYN");
    assert_eq!(records(&frames::first_fragment(fresh), 10), 1, "the first fragment");
}

/// An IPv6 flow too: its datagrams either way are one record, which carries both addresses
/// and ports; remotes that differ only in their last bytes, or in their first, are flows of
/// their own.
#[kernel_test]
fn an_ipv6_udp_flow_is_reported_once_either_way_with_its_addresses() {
    let filter = journaling();
    let (inside, remote) = ("fd00::2", "2001:db8:4860::8888");
    let got = records(&filter, &datagram(inside, 40000, remote, 53), 1000);
    assert_eq!(got.len(), 1, "a flood of one flow");
    let c = got[0];
    assert_eq!((c.family, c.proto), (6, 17));
    let octets = |a: &str| a.parse::<std::net::Ipv6Addr>().unwrap().octets();
    assert_eq!((c.src, c.dst), (octets(inside), octets(remote)), "the addresses, in order");
    assert_eq!((c.sport, c.dport), (40000, 53), "the ports");
    assert_eq!(records(&filter, &datagram(remote, 53, inside, 40000), 10).len(), 0, "its replies");
    for other in ["2001:db8:4860::8844", "2001:db9:4860::8888"] {
        let frame = datagram(inside, 40000, other, 53);
        assert_eq!(records(&filter, &frame, 10).len(), 1, "{other} is a flow of its own");
    }
}
