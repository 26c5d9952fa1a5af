//! The CLI on a running filter, with and without the daemon: add, remove, lookup, list,
//! status, stats and refresh; manual entries survive refreshes and restarts.

use integration_tests::{PinPlace, TempDir, kernel_test, messages as m, process::Running};
use td_netns::{Addrs, Topology, ping};

struct Ctx {
    topo: Topology,
    place: PinPlace,
}

impl Ctx {
    fn cli(&self, args: &[&str]) -> (Option<i32>, String) {
        let (code, out, err) = self.place.cli(&self.topo.gateway, args);
        (code, out + &err)
    }

    fn ok(&self, args: &[&str]) -> String {
        let (code, text) = self.cli(args);
        assert_eq!(code, Some(0), "takedown {args:?}: {text}");
        text
    }

    fn start(&self, list: &str) -> Running {
        self.place.start(&self.topo.gateway, &["run", "-i", Addrs::GATEWAY_IF, "-l", list])
    }

    fn pings(&self, dst: &str) -> u32 {
        ping(&self.topo.client, None, dst, 2).unwrap()
    }
}

#[kernel_test]
fn the_cli_works_on_a_running_filter_with_and_without_the_daemon() {
    let ctx = Ctx { topo: Topology::new("op").unwrap(), place: PinPlace::new("operation") };
    let dir = TempDir::new("operation");
    let list = dir.file("drop.txt", "203.0.113.0/24\n");
    let daemon = ctx.start(&list);

    // With the daemon.
    let out = ctx.ok(&["add", Addrs::SERVER_V4, "--comment", "ticket 42"]);
    assert!(out.contains("applied by the daemon (pid"), "{out}");
    assert_eq!(ctx.pings(Addrs::SERVER_V4), 0, "manual entry enforced");
    let out = ctx.ok(&["lookup", Addrs::SERVER_V4]);
    assert!(out.contains("198.51.100.7: blocked (as source and destination)"), "{out}");
    assert!(out.contains("198.51.100.7/32 (both): lists manual"), "{out}");
    let out = ctx.ok(&["lookup", "203.0.113.9"]);
    assert!(out.contains("203.0.113.0/24 (both): lists drop.txt"), "{out}");
    let out = ctx.ok(&["lookup", Addrs::GATEWAY_V4]);
    assert!(out.contains("allowed by 192.0.2.1/32"), "{out}");
    assert!(ctx.ok(&["lookup", "192.0.2.200"]).contains("not listed"));
    let out = ctx.ok(&["list", "--list", "manual"]);
    assert_eq!(out.trim(), "198.51.100.7/32 both manual");
    let out = ctx.ok(&["status"]);
    assert!(out.contains("daemon: running (pid"), "{out}");
    assert!(out.contains("interfaces: td-g (native)"), "{out}");
    assert!(out.contains("list drop.txt: 1 in the maps; last refresh ok"), "{out}");
    assert!(out.contains("list manual: 1 entry, 1 in the maps"), "{out}");
    let out = ctx.ok(&["stats", "--interval", "0.2"]);
    let dropped: u64 = out
        .lines()
        .find(|l| l.starts_with("dropped "))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(dropped, 2, "the two echo requests to the manual entry: {out}");
    let out = ctx.ok(&["refresh"]);
    assert!(out.contains("drop.txt: ok: content unchanged"), "the same bytes: {out}");
    assert!(!daemon.stderr().contains("refresh applied"), "nothing moved: {}", daemon.stderr());
    dir.file(
        "drop.txt",
        "203.0.113.0/24
192.0.2.99
",
    );
    let out = ctx.ok(&["refresh"]);
    assert!(out.contains("drop.txt: ok: 2 entries"), "{out}");
    assert!(
        daemon.stderr().contains("refresh applied: 1 written, 0 deleted"),
        "{}",
        daemon.stderr()
    );
    assert_eq!(ctx.pings(Addrs::SERVER_V4), 0, "manual entry survives a refresh");
    let (status, _) = daemon.stop().unwrap();
    assert!(status.success());

    // Without the daemon: the pinned maps are edited directly.
    let out = ctx.ok(&["remove", Addrs::SERVER_V4]);
    assert!(out.contains("applied to the pinned filter (no daemon runs)"), "{out}");
    assert_eq!(ctx.pings(Addrs::SERVER_V4), 2);
    ctx.ok(&["add", Addrs::SERVER_V4]);
    assert_eq!(ctx.pings(Addrs::SERVER_V4), 0);
    assert!(ctx.ok(&["status"]).contains("daemon: not running"));
    let (code, out) = ctx.cli(&["refresh"]);
    assert_eq!(code, Some(1));
    assert!(out.contains(m::NO_DAEMON), "{out}");

    // A restart keeps the manual entry.
    let daemon = ctx.start(&list);
    assert_eq!(ctx.pings(Addrs::SERVER_V4), 0, "manual entry survives a restart");
    assert!(ctx.ok(&["lookup", Addrs::SERVER_V4]).contains("lists manual"));

    // This machine's own address is protected, and add says so.
    let out = ctx.ok(&["add", Addrs::GATEWAY_V4]);
    assert!(
        out.contains("note: 192.0.2.1 is this machine's own address: the filter never drops it"),
        "{out}"
    );
    assert!(ctx.ok(&["lookup", Addrs::GATEWAY_V4]).contains("allowed by 192.0.2.1/32"));

    // Refusals.
    let (code, out) = ctx.cli(&["add", "10.0.0.0/8"]);
    assert_eq!(code, Some(1));
    assert!(out.contains("not added: 10.0.0.0/8 is in special range"), "{out}");
    let (code, out) = ctx.cli(&["add", "10.0.0.0/7", "--force-broad"]);
    assert_eq!(code, Some(1));
    assert!(out.contains("not added: 10.0.0.0/7 overlaps special ranges"), "{out}");
    assert!(out.contains("add the network outside them instead (11.0.0.0/8)"), "{out}");
    assert!(!out.contains("loaded as"), "nothing is loaded: {out}");
    let (code, out) = ctx.cli(&["remove", "203.0.113.99"]);
    assert_eq!(code, Some(1));
    assert!(out.contains("is not on the manual list"), "{out}");
    daemon.stop().unwrap();
}

#[kernel_test]
fn an_add_the_pinned_maps_cannot_hold_is_saved_and_enforced_by_the_next_start() {
    let ctx = Ctx { topo: Topology::new("of").unwrap(), place: PinPlace::new("operation-full") };
    let dir = TempDir::new("operation-full");
    let list = dir.file("drop.txt", "192.0.2.99\n198.51.100.99\n203.0.113.99\n");
    // Maps of exactly the list's size (no allowlist of this machine's addresses), then no
    // daemon: `add` edits the pins, which are full.
    let args = ["run", "-i", Addrs::GATEWAY_IF, "-l", &list, "--max-entries", "3", "--block-own"];
    let daemon = ctx.place.start(&ctx.topo.gateway, &args);
    daemon.stop().unwrap();
    let (code, out) = ctx.cli(&["add", Addrs::SERVER_V4]);
    assert_eq!(code, Some(1), "{out}");
    let full = format!("{}the TD_V4_EXACT{}", m::SAVED_NOT_APPLIED, m::MAP_FULL);
    assert!(out.contains(&full), "{out}");
    assert_eq!(ctx.pings(Addrs::SERVER_V4), 2, "not enforced yet");
    let status = ctx.ok(&["status"]);
    assert!(status.contains("list manual: 1 "), "saved in the manual list: {status}");
    // The next start moves the filter to maps that hold it.
    let daemon = ctx.start(&list);
    assert_eq!(ctx.pings(Addrs::SERVER_V4), 0, "the next start enforces it");
    daemon.stop().unwrap();
}
