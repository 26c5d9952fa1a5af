//! The pinned filter: it outlives its daemon (stop, crash), a new daemon adopts it and replaces
//! the program without a gap, and `detach` removes it. Each test pins into a private bpffs.

use std::time::Duration;

use filter_common::{CFG_LAYOUT, LAYOUT_VERSION};
use integration_tests::{
    PinPlace, TempDir, kernel_test, messages as m,
    process::{Running, run_cli},
    xdp_attached,
};
use takedown::maps::{
    FilterMaps,
    filter::MIN_CAPACITY,
    pins::Pins,
    version::{self, Pinned},
};
use td_netns::{Addrs, Stream, Topology, ping};

/// `takedown run` on the gateway's inside interface. `--block-own` keeps the allowlist empty,
/// so that entry counts do not depend on when the veths' link-local addresses appear.
fn run_args<'a>(list: &'a str, place: &'a [String]) -> Vec<&'a str> {
    let mut a = vec!["run", "-i", Addrs::GATEWAY_IF, "-l", list, "--block-own"];
    a.extend(place.iter().map(String::as_str));
    a
}

fn cli(topo: &Topology, args: &[&str], place: &[String]) -> std::process::Output {
    let mut a: Vec<&str> = args.to_vec();
    a.extend(place.iter().map(String::as_str));
    run_cli(Some(&topo.gateway), &a)
}

fn text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn prog_id(topo: &Topology, iface: &str) -> Option<u32> {
    integration_tests::attached_program(&topo.gateway, iface)
}

/// A steady stream from the listed inside source and one from an ordinary client, every 2 ms.
struct Streams {
    listed: Stream,
    control: Stream,
}

impl Streams {
    fn start(topo: &Topology) -> Self {
        let (every, limit) = (Duration::from_millis(2), Duration::from_secs(60));
        let server = Addrs::ip(Addrs::SERVER_V4);
        let from = |a: &str| {
            Stream::start(&topo.client, Addrs::ip(a), &topo.internet, server, every, limit).unwrap()
        };
        let streams = Self { listed: from(Addrs::LISTED_SRC_V4), control: from(Addrs::CLIENT_V4) };
        std::thread::sleep(Duration::from_millis(300));
        streams
    }

    /// Stops both; asserts that no listed packet got through (`during` what) while ordinary
    /// traffic flowed.
    fn stop(self, during: &str) {
        std::thread::sleep(Duration::from_millis(300));
        let ((sent, got), (csent, cgot)) = (self.listed.stop(), self.control.stop());
        assert!(sent > 200, "the listed stream ran ({sent} sent)");
        assert_eq!(got, 0, "listed packets got through during {during}");
        assert_eq!(cgot, csent, "ordinary traffic flowed, all of it");
    }
}

#[kernel_test]
fn the_pinned_filter_outlives_its_daemon_and_detach_removes_it() {
    let place = PinPlace::new("outlive");
    let pa = place.args();
    let dir = TempDir::new("pin-outlive");
    let list = dir.file("list.txt", "203.0.113.7\n");
    let topo = Topology::new("po").unwrap();
    let run = Running::start(&topo.gateway, &run_args(&list, &pa)).unwrap();
    assert!(run.stdout().contains("filtering (pinned at"), "{}", run.stdout());
    assert_eq!(ping(&topo.client, None, Addrs::TAKEDOWN_V4, 2).unwrap(), 0);
    run.kill(); // a crash
    assert!(xdp_attached(&topo.gateway, Addrs::GATEWAY_IF));
    assert_eq!(ping(&topo.client, None, Addrs::TAKEDOWN_V4, 2).unwrap(), 0, "still enforcing");
    let out = cli(&topo, &["stop"], &pa);
    assert!(text(&out).contains("no takedown daemon is running; "), "{}", text(&out));
    let out = cli(&topo, &["detach"], &pa);
    assert_eq!(out.status.code(), Some(1), "no terminal: detach wants --yes");
    assert!(text(&out).contains(m::CONFIRM), "{}", text(&out));
    assert!(xdp_attached(&topo.gateway, Addrs::GATEWAY_IF));
    let out = cli(&topo, &["detach", "--yes"], &pa);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!xdp_attached(&topo.gateway, Addrs::GATEWAY_IF));
    assert!(!std::path::Path::new(&place.pin_dir()).exists());
    assert_eq!(ping(&topo.client, None, Addrs::TAKEDOWN_V4, 2).unwrap(), 2);
}

#[kernel_test]
fn restart_and_program_replacement_let_no_listed_packet_through() {
    let place = PinPlace::new("restart");
    let pa = place.args();
    let dir = TempDir::new("pin-restart");
    let list = dir.file("list.txt", "192.0.2.66\n");
    let topo = Topology::new("pr").unwrap();
    let run = Running::start(&topo.gateway, &run_args(&list, &pa)).unwrap();
    let before = prog_id(&topo, Addrs::GATEWAY_IF).expect("program attached");
    let streams = Streams::start(&topo);
    let out = cli(&topo, &["stop"], &pa);
    assert!(text(&out).contains("stopped the takedown daemon"), "{}", text(&out));
    let (status, _) = run.wait_exit().unwrap();
    assert!(status.success());
    std::thread::sleep(Duration::from_millis(300));
    let run = Running::start(&topo.gateway, &run_args(&list, &pa)).unwrap();
    let out = run.stdout();
    assert!(out.contains("adopted the pinned filter (1 entry): 0 written, 0 deleted"), "{out}");
    assert!(out.contains("attached to td-g: its pinned attachment adopted"), "{out}");
    let after = prog_id(&topo, Addrs::GATEWAY_IF).expect("program attached");
    assert_ne!(before, after, "the new daemon's program replaced the old one on the same link");
    streams.stop("stop/start/replace");
    run.stop().unwrap();
}

#[kernel_test]
fn a_new_daemon_reconciles_the_pinned_maps_with_changed_lists() {
    let place = PinPlace::new("reconcile");
    let pa = place.args();
    let dir = TempDir::new("pin-reconcile");
    let list = dir.file("list.txt", "203.0.113.7\n192.0.2.66\n");
    let topo = Topology::new("pc").unwrap();
    Running::start(&topo.gateway, &run_args(&list, &pa)).unwrap().stop().unwrap();
    dir.file("list.txt", "198.51.100.7\n192.0.2.66\n");
    let run = Running::start(&topo.gateway, &run_args(&list, &pa)).unwrap();
    assert!(
        run.stdout().contains("adopted the pinned filter (2 entries): 1 written, 1 deleted"),
        "{}",
        run.stdout()
    );
    assert_eq!(ping(&topo.client, None, Addrs::TAKEDOWN_V4, 2).unwrap(), 2, "left the list");
    assert_eq!(ping(&topo.client, None, Addrs::SERVER_V4, 2).unwrap(), 0, "joined the list");
    // A second daemon on the same state is refused.
    let out = cli(&topo, &run_args(&list, &[]), &pa);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains(m::SECOND_DAEMON), "{}", text(&out));
    // Nor is one with a state directory of its own on the same pins: it would adopt them and
    // delete the first daemon's entries.
    let other_state = TempDir::new("pin-reconcile-other");
    let pin_dir = place.pin_dir();
    let mut args = run_args(&list, &[]);
    args.extend(["--pin-dir", pin_dir.as_str(), "--state-dir", other_state.0.to_str().unwrap()]);
    let out = run_cli(Some(&topo.gateway), &args);
    assert_eq!(out.status.code(), Some(1));
    let sentence = format!("{}{}{}", m::SAME_PINS, place.pin_dir(), m::SAME_PINS_FIX);
    assert!(text(&out).contains(&sentence), "{}", text(&out));
    assert_eq!(ping(&topo.client, None, Addrs::SERVER_V4, 2).unwrap(), 0, "still enforced");
    run.stop().unwrap();
}

/// Restarts the daemon on `place` (whose pins `change` alters while no daemon runs) under a
/// steady stream from a listed source and an ordinary one; returns the new daemon's output
/// after checking that no listed packet got through and the program was replaced.
fn restart_under_stream(
    topo: &Topology,
    place: &PinPlace,
    first: &[&str],
    then: &[&str],
    change: impl FnOnce(&Pins),
) -> String {
    Running::start(&topo.gateway, first).unwrap().stop().unwrap();
    change(&Pins::new(place.pin_dir()));
    let before = prog_id(topo, Addrs::GATEWAY_IF).expect("program attached");
    let streams = Streams::start(topo);
    let run = Running::start(&topo.gateway, then).unwrap();
    streams.stop("the move to new maps");
    assert_ne!(prog_id(topo, Addrs::GATEWAY_IF), Some(before), "the program was replaced");
    assert_eq!(version::pinned(&Pins::new(place.pin_dir())), Pinned::Current);
    let out = run.stdout();
    run.stop().unwrap();
    out
}

#[kernel_test]
fn pins_of_another_contract_layout_move_to_new_maps_without_a_gap() {
    let place = PinPlace::new("layout");
    let pa = place.args();
    let dir = TempDir::new("pin-layout");
    // The listed source (192.0.2.66) is inside the prefix; the client (.10) is not.
    let list = dir.file("list.txt", "192.0.2.64/26\n203.0.113.7\n2001:db8::7\n");
    let topo = Topology::new("pl").unwrap();
    let other = LAYOUT_VERSION + 1;
    let out =
        restart_under_stream(&topo, &place, &run_args(&list, &pa), &run_args(&list, &pa), |p| {
            // Stamp the pins as a build of another layout would have left them.
            let mut maps = FilterMaps::open(p).unwrap();
            maps.addr.settings.set(CFG_LAYOUT, other).unwrap();
            assert_eq!(version::pinned(p), Pinned::Other(other));
        });
    let why =
        format!("the pinned maps have contract layout {other}, this build uses {LAYOUT_VERSION}");
    assert!(out.contains(&format!("{why}: moved to new maps (3 entries)")), "{out}");
    assert!(out.contains("attached to td-g: its pinned attachment adopted"), "{out}");
    let out = cli(&topo, &["status", "--json"], &pa);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let e = &status["entries"];
    assert_eq!((&e["ipv4"], &e["ipv6"], &e["ipv4_prefixes"]), (&1.into(), &1.into(), &1.into()));
    assert_eq!(ping(&topo.client, None, Addrs::TAKEDOWN_V4, 2).unwrap(), 0, "still enforcing");
}

#[kernel_test]
fn an_add_with_no_daemon_leaves_pins_of_another_layout_to_the_next_start() {
    let place = PinPlace::new("addlayout");
    let pa = place.args();
    let dir = TempDir::new("pin-addlayout");
    let list = dir.file("list.txt", "203.0.113.7\n");
    let topo = Topology::new("pa").unwrap();
    Running::start(&topo.gateway, &run_args(&list, &pa)).unwrap().stop().unwrap();
    let pins = Pins::new(place.pin_dir());
    let other = LAYOUT_VERSION + 1;
    FilterMaps::open(&pins).unwrap().addr.settings.set(CFG_LAYOUT, other).unwrap();
    // This build's bits in another layout's prefilters could hide the entry from its program.
    let out = cli(&topo, &["add", "203.0.113.9"], &pa);
    let said = format!(
        "the pinned maps have contract layout {other}, this build uses {LAYOUT_VERSION}: the next `takedown run` applies it"
    );
    assert!(out.status.success() && text(&out).contains(&said), "{}", text(&out));
    let held = FilterMaps::open(&pins).unwrap().plan().unwrap();
    assert_eq!(held.v4.exact.len(), 1, "the pinned maps are left as they were");
    // The next start moves to new maps, the added entry in them.
    let run = Running::start(&topo.gateway, &run_args(&list, &pa)).unwrap();
    assert_eq!(FilterMaps::open(&pins).unwrap().plan().unwrap().v4.exact.len(), 2);
    run.stop().unwrap();
}

#[kernel_test]
fn pinned_maps_too_small_for_the_lists_grow_without_a_gap() {
    let place = PinPlace::new("grow");
    let pa = place.args();
    let dir = TempDir::new("pin-grow");
    let small = dir.file("small.txt", "192.0.2.66\n203.0.113.7\n");
    let list = dir.file("list.txt", "192.0.2.66\n203.0.113.7\n203.0.113.8\n");
    let topo = Topology::new("pg").unwrap();
    let mut first = run_args(&small, &pa);
    first.extend(["--max-entries", "2"]);
    let out = restart_under_stream(&topo, &place, &first, &run_args(&list, &pa), |_| {});
    let why =
        "the pinned TD_V4_EXACT map holds at most 2 entries and the move to the lists needs 3";
    assert!(out.contains(&format!("{why}: moved to new maps (3 entries)")), "{out}");
    let maps = FilterMaps::open(&Pins::new(place.pin_dir())).unwrap();
    assert_eq!(maps.capacities().unwrap().tables[0], MIN_CAPACITY, "sized anew for the plan");
    assert_eq!(maps.plan().unwrap().v4.exact.len(), 3);
}

#[kernel_test]
fn a_start_with_the_first_ipv4_prefixes_moves_to_maps_with_prefix_hints_without_a_gap() {
    let place = PinPlace::new("hints");
    let pa = place.args();
    let dir = TempDir::new("pin-hints");
    let hosts = dir.file("hosts.txt", "192.0.2.66\n");
    let nets = dir.file("nets.txt", "192.0.2.66\n203.0.113.0/24\n");
    let topo = Topology::new("ph").unwrap();
    let (first, then) = (run_args(&hosts, &pa), run_args(&nets, &pa));
    let out = restart_under_stream(&topo, &place, &first, &then, |p| {
        let held = FilterMaps::open(p).unwrap().capacities().unwrap();
        assert!(!held.hints, "maps created without IPv4 prefixes have no hints");
    });
    let why = "the pinned maps have no IPv4 prefix hints (they were created without IPv4 prefixes)";
    assert!(out.contains(&format!("{why}: moved to new maps (2 entries)")), "{out}");
    let maps = FilterMaps::open(&Pins::new(place.pin_dir())).unwrap();
    assert!(maps.capacities().unwrap().hints, "the new maps have hints");
    // 203.0.113.7 is in the prefix alone: its hint leads the kernel to it.
    assert_eq!(ping(&topo.client, None, Addrs::TAKEDOWN_V4, 2).unwrap(), 0, "the prefix enforced");
}

#[kernel_test]
fn a_refresh_that_outgrows_the_maps_moves_to_larger_ones_without_a_gap() {
    let place = PinPlace::new("outgrow");
    let pa = place.args();
    let dir = TempDir::new("pin-outgrow");
    let list = dir.file("list.txt", "192.0.2.66\n203.0.113.7\n");
    let topo = Topology::new("pw").unwrap();
    let run = Running::start(&topo.gateway, &run_args(&list, &pa)).unwrap();
    let before = prog_id(&topo, Addrs::GATEWAY_IF).expect("program attached");
    let streams = Streams::start(&topo);
    // More addresses than the maps were sized for (at least MIN_CAPACITY).
    let n = MIN_CAPACITY + 4_000;
    let many: String =
        (0..n).map(|i| format!("{}\n", std::net::Ipv4Addr::from(0x1e00_0000 + i))).collect();
    dir.file("list.txt", &format!("192.0.2.66\n{many}"));
    let out = cli(&topo, &["refresh"], &pa);
    assert!(out.status.success(), "{}", text(&out));
    streams.stop("the move to larger maps");
    // During the move the map holds the old entries and the new ones: 2 + n.
    let why = format!(
        "map holds at most {MIN_CAPACITY} entries and the move to the lists needs {}",
        n + 2
    );
    assert!(run.stderr().contains(&format!("{why}: moved to new maps")), "{}", run.stderr());
    assert_ne!(prog_id(&topo, Addrs::GATEWAY_IF), Some(before), "the program was replaced");
    let maps = FilterMaps::open(&Pins::new(place.pin_dir())).unwrap();
    assert_eq!(maps.plan().unwrap().v4.exact.len(), n as usize + 1);
    // The daemon goes on with the new maps: a change is applied to them.
    dir.file("list.txt", &format!("192.0.2.66\n203.0.113.7\n{many}"));
    let out = cli(&topo, &["refresh"], &pa);
    assert!(out.status.success(), "{}", text(&out));
    assert!(run.stderr().contains("refresh applied: 1 written, 0 deleted"), "{}", run.stderr());
    assert_eq!(ping(&topo.client, None, Addrs::TAKEDOWN_V4, 2).unwrap(), 0, "enforced");
    run.stop().unwrap();
}

#[kernel_test]
fn pins_removed_under_a_running_daemon_are_pinned_again_and_enforcement_never_stops() {
    let place = PinPlace::new("unpinned");
    let pa = place.args();
    let dir = TempDir::new("pin-unpinned");
    let list = dir.file("list.txt", "203.0.113.7\n");
    let topo = Topology::new("pu").unwrap();
    let run = Running::start(&topo.gateway, &run_args(&list, &pa)).unwrap();
    let pins = Pins::new(place.pin_dir());
    // Someone empties the pin directory.
    for sub in ["links", "maps"] {
        for f in std::fs::read_dir(std::path::Path::new(&place.pin_dir()).join(sub)).unwrap() {
            std::fs::remove_file(f.unwrap().path()).unwrap();
        }
    }
    assert!(!pins.has_maps() && pins.linked_interfaces().is_empty());
    // Meanwhile the CLI waits for the daemon to pin them again rather than say none is pinned.
    let out = cli(&topo, &["status"], &pa);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(xdp_attached(&topo.gateway, Addrs::GATEWAY_IF), "the daemon holds the link");
    assert_eq!(ping(&topo.client, None, Addrs::TAKEDOWN_V4, 2).unwrap(), 0, "still enforcing");
    // The daemon notices within seconds and pins everything again.
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while !(pins.has_maps() && pins.linked_interfaces() == [Addrs::GATEWAY_IF]) {
        assert!(std::time::Instant::now() < end, "not pinned again: {}", run.stderr());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(run.stderr().contains("pins removed under the running filter"), "{}", run.stderr());
    // The whole directory removed: pinned again, and the lock held on the new one, so that no
    // second daemon (a state directory of its own) takes the pins over.
    std::fs::remove_dir_all(place.pin_dir()).unwrap();
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while !(pins.has_maps() && pins.linked_interfaces() == [Addrs::GATEWAY_IF]) {
        assert!(std::time::Instant::now() < end, "not pinned again: {}", run.stderr());
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(200));
    let other_state = TempDir::new("pin-unpinned-other");
    let mut args = run_args(&list, &[]);
    let pin_dir = place.pin_dir();
    args.extend(["--pin-dir", pin_dir.as_str(), "--state-dir", other_state.0.to_str().unwrap()]);
    match Running::start(&topo.gateway, &args) {
        Ok(second) => {
            let _ = second.stop();
            panic!("a second daemon took the pins made again over");
        }
        Err(e) => assert!(format!("{e:#}").contains(m::SAME_PINS), "{e:#}"),
    }
    let out = cli(&topo, &["stop"], &pa);
    assert!(text(&out).contains("the filter keeps enforcing on td-g"), "{}", text(&out));
    assert!(xdp_attached(&topo.gateway, Addrs::GATEWAY_IF));
    assert_eq!(ping(&topo.client, None, Addrs::TAKEDOWN_V4, 2).unwrap(), 0, "enforcing after stop");
    // And a new daemon adopts the pins made again.
    let run = Running::start(&topo.gateway, &run_args(&list, &pa)).unwrap();
    assert!(run.stdout().contains("adopted the pinned filter (1 entry)"), "{}", run.stdout());
    run.stop().unwrap();
}

#[kernel_test]
fn the_cli_reaches_an_ephemeral_daemon_which_leaves_nothing_behind() {
    let place = PinPlace::new("ephemeral");
    let pa = place.args();
    let dir = TempDir::new("pin-ephemeral");
    let list = dir.file("list.txt", "203.0.113.7\n");
    let topo = Topology::new("pe").unwrap();
    let mut args = run_args(&list, &pa);
    args.push("--ephemeral");
    let run = Running::start(&topo.gateway, &args).unwrap();
    assert_eq!(ping(&topo.client, None, Addrs::TAKEDOWN_V4, 2).unwrap(), 0);
    // Every command that reads the filter or asks the daemon finds it.
    let ok = |args: &[&str]| {
        let out = cli(&topo, args, &pa);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
        text(&out)
    };
    let status = ok(&["status"]);
    assert!(status.contains(&format!("pid {}", run.pid())), "{status}");
    assert!(status.contains(&format!("interfaces: {} (", Addrs::GATEWAY_IF)), "{status}");
    assert!(ok(&["lookup", Addrs::TAKEDOWN_V4]).contains("blocked"));
    assert!(ok(&["list"]).contains(Addrs::TAKEDOWN_V4));
    assert!(ok(&["stats"]).contains("drop"));
    assert!(ok(&["refresh"]).contains("list.txt"));
    ok(&["add", "198.51.100.9"]);
    assert_eq!(ping(&topo.client, None, "198.51.100.9", 2).unwrap(), 0, "added through it");
    let (status, log) = run.stop().unwrap();
    assert!(status.success(), "{log}");
    // Gone with it: the filter, and the places it was reached at.
    assert!(!xdp_attached(&topo.gateway, Addrs::GATEWAY_IF));
    let beside = |d: &str| {
        let (parent, name) = d.rsplit_once('/').unwrap();
        let prefix = format!("{name}-ephemeral-");
        let left: Vec<_> = std::fs::read_dir(parent).unwrap().flatten().collect();
        left.iter().any(|e| e.file_name().to_string_lossy().starts_with(&prefix))
    };
    assert!(!beside(&place.pin_dir()) && !beside(&place.state_dir()), "places left behind");
    let out = cli(&topo, &["status"], &pa);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}
