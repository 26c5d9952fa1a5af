//! The kernel's verdict against a reference model (tests/src/reference.rs), on 1,000,000
//! random frames through BPF_PROG_TEST_RUN: IPv4 and IPv6, 0 to 2 VLAN tags, truncated frames,
//! against a plan that mixes exact entries, nested prefixes, every direction, monitor entries
//! and an allowlist; again after a refresh moved the maps to another such plan, and again after
//! a new start adopted the pinned maps and moved them to a third.

use std::net::IpAddr;

use filter_common::{FLAG_BOTH, FLAG_DST, FLAG_MON_DST, FLAG_MON_SRC, FLAG_SRC};
use integration_tests::{
    PinPlace, frames, kernel_test,
    loaded::{Loaded, XDP_DROP, XDP_PASS},
    reference::{Model, Verdict},
};
use ipnet::IpNet;
use takedown::{
    maps::{self, Start, pins::Pins, sync},
    plan::{Meta, Plan},
};

const FLAGS: [u32; 7] = [
    FLAG_SRC,
    FLAG_DST,
    FLAG_BOTH,
    FLAG_MON_SRC,
    FLAG_MON_DST,
    FLAG_MON_SRC | FLAG_MON_DST,
    FLAG_SRC | FLAG_MON_DST,
];

/// A random address of the family of `v4`, in a few crowded regions so that entries nest.
fn address(rng: &mut fastrand::Rng, v4: bool) -> IpAddr {
    if v4 {
        let first = [198u8, 203, 45, 185, 91, 10][rng.usize(..6)];
        IpAddr::from([first, rng.u8(..4), rng.u8(..), rng.u8(..)])
    } else {
        let word = [0x2001u16, 0x2a00, 0x2600][rng.usize(..3)];
        let mut a = [0u8; 16];
        a[..2].copy_from_slice(&word.to_be_bytes());
        a[2] = rng.u8(..4);
        a[3] = rng.u8(..);
        a[4..].iter_mut().for_each(|b| *b = if rng.bool() { rng.u8(..) } else { 0 });
        IpAddr::from(a)
    }
}

/// A random network of the family of `v4`: a host one time in three, else a prefix.
fn network(rng: &mut fastrand::Rng, v4: bool) -> IpNet {
    let a = address(rng, v4);
    let len = match (v4, rng.u8(..3)) {
        (true, 0) => 32,
        (false, 0) => 128,
        (true, _) => rng.u8(8..32),
        (false, _) => [8, 12, 20, 29, 32, 48, 56, 64, 100, 127][rng.usize(..10)],
    };
    IpNet::new(a, len).expect("valid").trunc()
}

fn random_plan(rng: &mut fastrand::Rng) -> (Plan, Vec<IpNet>) {
    let nets: Vec<IpNet> = (0..600).map(|i| network(rng, i % 3 != 0)).collect();
    let entries: Vec<(IpNet, Meta)> = nets
        .iter()
        .map(|n| {
            let meta = Meta { flags: FLAGS[rng.usize(..FLAGS.len())], lists: 1 << rng.u8(..4) };
            (*n, meta)
        })
        .collect();
    let allow: Vec<IpNet> = (0..20)
        .map(|i| {
            let n = network(rng, i % 2 == 0);
            if n.prefix_len() < 24 { IpNet::from(n.addr()) } else { n }
        })
        .collect();
    let plan = Plan::build(entries, &allow);
    (plan, nets)
}

/// An address a frame carries: listed, inside a listed network, or anywhere nearby.
fn carried(rng: &mut fastrand::Rng, nets: &[IpNet], v4: bool) -> IpAddr {
    let family: Vec<&IpNet> = nets.iter().filter(|n| n.addr().is_ipv4() == v4).collect();
    let n = family[rng.usize(..family.len())];
    match rng.u8(..3) {
        0 => n.addr(),
        1 => n.hosts().nth(rng.usize(..64)).unwrap_or(n.addr()),
        _ => address(rng, v4),
    }
}

/// Sends `count` random frames; returns the mismatches (at most 5 shown).
fn compare(
    l: &Loaded,
    model: &Model,
    nets: &[IpNet],
    rng: &mut fastrand::Rng,
    count: u32,
) -> Vec<String> {
    let mut bad = Vec::new();
    let mut mismatches = 0;
    for _ in 0..count {
        let v4 = rng.bool();
        let (src, dst) = (carried(rng, nets, v4), carried(rng, nets, v4));
        let tags = rng.u8(..3);
        let mut frame = frames::tagged(src, dst, tags);
        if rng.u8(..20) == 0 {
            // BPF_PROG_TEST_RUN wants at least an Ethernet header.
            frame.truncate(rng.usize(14..frame.len()));
        }
        // A frame cut short before the end of its IP header passes (fail-open).
        let headers = 14 + 4 * usize::from(tags) + if v4 { 20 } else { 40 };
        let whole = frame.len() >= headers;
        let want = if whole { model.verdict(src, dst) } else { Verdict::Pass };
        let want = if want == Verdict::Drop { XDP_DROP } else { XDP_PASS };
        let got = l.verdict(&frame);
        if got != want {
            mismatches += 1;
            if bad.len() < 5 {
                bad.push(format!(
                    "{src} -> {dst} ({} bytes): kernel {got}, model {want}",
                    frame.len()
                ));
            }
        }
    }
    if mismatches > 0 {
        bad.push(format!("{mismatches} mismatches of {count}"));
    }
    bad
}

#[kernel_test]
fn a_million_random_frames_get_the_reference_verdict_before_and_after_a_refresh_and_adoption() {
    let mut rng = fastrand::Rng::with_seed(0x7a6b_d0e5);
    let place = PinPlace::new("differential");
    let pins = Pins::new(place.pin_dir());
    let (plan, nets) = random_plan(&mut rng);
    let filter = maps::start(Some(&pins), &plan, u32::MAX, false).unwrap().filter;
    let mut l = Loaded { filter };
    let bad = compare(&l, &Model::new(&plan), &nets, &mut rng, 700_000);
    assert!(bad.is_empty(), "{bad:#?}");
    let (next, next_nets) = random_plan(&mut rng);
    sync::apply(&mut l.filter.maps_mut().addr, &plan, &next).unwrap();
    let bad = compare(&l, &Model::new(&next), &next_nets, &mut rng, 150_000);
    assert!(bad.is_empty(), "after the refresh: {bad:#?}");
    // A new start adopts the pinned maps and writes only the move to a third plan.
    drop(l);
    let (third, third_nets) = random_plan(&mut rng);
    let started = maps::start(Some(&pins), &third, u32::MAX, false).unwrap();
    let start = started.start;
    assert!(matches!(start, Start::Adopted { .. }), "{start:?}");
    assert_eq!(started.held.as_ref().map(|p| p.len()), Some(next.len()), "what it adopted");
    let l = Loaded { filter: started.filter };
    let bad = compare(&l, &Model::new(&third), &third_nets, &mut rng, 150_000);
    assert!(bad.is_empty(), "after adoption: {bad:#?}");
}
