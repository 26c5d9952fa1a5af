//! Every guard in the kernel: the protected address passes while its neighbour in the same
//! listed prefix drops (BPF_PROG_TEST_RUN on plans made by the real pipeline, and real traffic
//! for the gateway's own addresses).

use integration_tests::{
    TempDir, frames, kernel_test,
    loaded::{Loaded, XDP_DROP, XDP_PASS},
    process::Running,
};
use takedown::{
    lists::ListOptions,
    maps::sync,
    plan::{
        Meta, Plan,
        guards::GuardOptions,
        pipeline::{ListSpec, Pipeline},
    },
};
use td_netns::{Addrs, Topology, ping};

/// A source outside every list used here.
const OTHER: [u8; 4] = [198, 51, 100, 10];

/// Loads a filter planned by the real pipeline from one list (and an allowlist).
fn load(list: &str, allow: Option<&str>, guards: GuardOptions) -> (Loaded, Plan) {
    let dir = TempDir::new("guards");
    let allow: Vec<_> = allow.map(|a| vec![dir.file("allow.txt", a).into()]).unwrap_or_default();
    let pipeline = Pipeline::new(&allow, guards, false).unwrap();
    let spec = ListSpec {
        name: "list".into(),
        origin: dir.file("list.txt", list).into(),
        options: ListOptions::default(),
        monitor: false,
        max_bytes: takedown::lists::DEFAULT_MAX_BYTES,
        minisign_key: None,
    };
    let report = pipeline.list_file(&spec, 0);
    assert_eq!(report.error, None);
    let plan = pipeline.plan([report].iter(), &[], std::iter::empty());
    (Loaded::with_plan(&plan).unwrap(), plan)
}

fn to(l: &Loaded, dst: [u8; 4]) -> u32 {
    l.verdict(&frames::v4(OTHER, dst))
}

#[kernel_test]
fn the_allowlist_wins_over_a_listed_prefix_and_later_additions() {
    let (mut l, plan) = load(
        "203.0.113.0/24\n2001:db8:bad::/48\n",
        Some("203.0.113.7\n2001:db8:bad::7\n"),
        Default::default(),
    );
    assert_eq!(to(&l, [203, 0, 113, 7]), XDP_PASS, "allowed destination");
    assert_eq!(l.verdict(&frames::v4([203, 0, 113, 7], OTHER)), XDP_PASS, "allowed source");
    assert_eq!(to(&l, [203, 0, 113, 8]), XDP_DROP, "its neighbour");
    let v6 = |last: u8| {
        let mut a = [0x20, 0x01, 0x0d, 0xb8, 0x0b, 0xad, 0, 0, 0, 0, 0, 0, 0, 0, 0, last];
        a[15] = last;
        frames::v6([0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10], a)
    };
    assert_eq!(l.verdict(&v6(7)), XDP_PASS);
    assert_eq!(l.verdict(&v6(8)), XDP_DROP);
    // An entry for the allowed address written later (as the CLI will) still does not drop it.
    let mut later = plan.clone();
    later.v4.exact.push(([203, 0, 113, 7], Meta { flags: 3, lists: 1 }));
    sync::apply(&mut l.filter.maps_mut().addr, &plan, &later).unwrap();
    assert_eq!(to(&l, [203, 0, 113, 7]), XDP_PASS, "allowlist beats a later exact entry");
}

#[kernel_test]
fn special_ranges_are_cut_out_of_a_listed_prefix() {
    let (l, plan) = load("192.0.0.0/8\n", None, Default::default());
    assert_eq!(plan.v4.prefix.len(), 8, "192.0.0.0/8 split around 192.168.0.0/16");
    assert_eq!(to(&l, [192, 168, 1, 1]), XDP_PASS, "inside 192.168.0.0/16");
    assert_eq!(to(&l, [192, 169, 0, 1]), XDP_DROP, "its neighbour outside the special range");
    let relaxed = GuardOptions { allow_special: true, ..Default::default() };
    let (l, _) = load("192.0.0.0/8\n", None, relaxed);
    assert_eq!(to(&l, [192, 168, 1, 1]), XDP_DROP, "--allow-special loads it whole");
}

#[kernel_test]
fn too_broad_prefixes_are_refused() {
    let list = "64.0.0.0/7\n64.1.0.0/16\n0.0.0.0/0\n";
    let (l, _) = load(list, None, Default::default());
    assert_eq!(to(&l, [64, 1, 2, 3]), XDP_DROP, "the /16 loads");
    assert_eq!(to(&l, [64, 2, 0, 1]), XDP_PASS, "the /7 around it does not");
    let (l, _) = load(list, None, GuardOptions { force_broad: true, ..Default::default() });
    assert_eq!(to(&l, [64, 2, 0, 1]), XDP_DROP, "--force-broad loads the /7");
    assert_eq!(to(&l, [8, 8, 8, 8]), XDP_PASS, "0.0.0.0/0 is refused even then");
}

#[kernel_test]
fn the_gateways_own_addresses_are_never_blocked() {
    // 198.51.100.1 is the gateway's outside address; 198.51.100.7 a server in the same /24.
    let topo = Topology::new("go").unwrap();
    let dir = TempDir::new("guards-own");
    // 2001:db8:2::1 likewise, beside 2001:db8:2::2 (the internet namespace's end).
    let list = dir.file("list.txt", "198.51.100.0/24\n2001:db8:2::/64\n");
    let run =
        Running::start(&topo.gateway, &["run", "-i", Addrs::GATEWAY_IF, "-l", &list]).unwrap();
    let pings = |dst| ping(&topo.client, None, dst, 2).unwrap();
    assert_eq!(pings("198.51.100.1"), 2, "the gateway's own address");
    assert_eq!(pings(Addrs::SERVER_V4), 0, "its neighbour");
    assert_eq!(pings("2001:db8:2::1"), 2, "the gateway's own IPv6 address");
    assert_eq!(pings("2001:db8:2::2"), 0, "its IPv6 neighbour");
    run.stop().unwrap();
    let args = ["run", "-i", Addrs::GATEWAY_IF, "-l", &list, "--block-own"];
    let run = Running::start(&topo.gateway, &args).unwrap();
    assert_eq!(
        ping(&topo.client, None, "198.51.100.1", 2).unwrap(),
        0,
        "--block-own lifts the guard"
    );
    run.stop().unwrap();
}
