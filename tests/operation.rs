//! The CLI on a running filter, with and without the daemon: add, remove, lookup, list,
//! status, stats and refresh; manual entries survive refreshes and restarts; idle and endless
//! control clients hold no request up.

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

/// `takedown CMD ADDR` for every address at once, each in a process of its own; every one
/// must succeed.
fn all_at_once(ctx: &Ctx, cmd: &str, addrs: &[String]) {
    std::thread::scope(|s| {
        let runs: Vec<_> = addrs.iter().map(|a| s.spawn(move || ctx.cli(&[cmd, a]))).collect();
        for (run, addr) in runs.into_iter().zip(addrs) {
            let (code, out) = run.join().unwrap();
            assert_eq!(code, Some(0), "takedown {cmd} {addr}: {out}");
        }
    });
}

/// The manual list's entries in the maps (sorted), and the networks saved in manual.txt.
fn manual_now(ctx: &Ctx) -> (Vec<String>, Vec<String>) {
    let out = ctx.ok(&["list", "--list", "manual"]);
    let mut maps: Vec<String> =
        out.lines().filter_map(|l| l.split_whitespace().next()).map(String::from).collect();
    let text = std::fs::read_to_string(format!("{}/manual.txt", ctx.place.state_dir())).unwrap();
    let saved = text.lines().filter(|l| !l.starts_with('#'));
    let mut saved: Vec<String> =
        saved.filter_map(|l| l.split_whitespace().next()).map(String::from).collect();
    maps.sort();
    saved.sort();
    (maps, saved)
}

#[kernel_test]
fn parallel_adds_and_removes_are_all_kept_with_and_without_the_daemon() {
    let ctx = Ctx { topo: Topology::new("oc").unwrap(), place: PinPlace::new("operation-par") };
    let dir = TempDir::new("operation-par");
    let list = dir.file("drop.txt", "203.0.113.0/24\n");
    let net = |i: usize| format!("198.51.100.{i}/32");
    let daemon = ctx.start(&list);
    // 20 adds at once, acknowledged by the daemon: all saved, all in the maps (before the
    // lock, 6 to 10 of 200 were kept).
    let added: Vec<String> = (100..120).map(net).collect();
    all_at_once(&ctx, "add", &added);
    let mut want = added.clone();
    want.sort();
    assert_eq!(manual_now(&ctx), (want.clone(), want.clone()));
    let blocked = |addr: &str| ctx.place.blocked(&ctx.topo.gateway, Addrs::GATEWAY_IF, addr);
    assert!(blocked("198.51.100.105"), "enforced");
    // 12 removes at once: all gone, the other 8 stay.
    all_at_once(&ctx, "remove", &added[..12]);
    let want: Vec<String> = want.into_iter().filter(|n| !added[..12].contains(n)).collect();
    assert_eq!(manual_now(&ctx), (want.clone(), want.clone()));
    assert!(!blocked("198.51.100.105"), "removed: passes again");
    // No daemon: 20 adds at once edit the pins and the file; the next start keeps them all.
    daemon.stop().unwrap();
    let more: Vec<String> = (200..220).map(net).collect();
    all_at_once(&ctx, "add", &more);
    let mut want: Vec<String> = want.into_iter().chain(more).collect();
    want.sort();
    assert_eq!(manual_now(&ctx), (want.clone(), want.clone()));
    let daemon = ctx.start(&list);
    assert_eq!(manual_now(&ctx), (want.clone(), want));
    assert!(blocked("198.51.100.210"), "enforced after the start");
    daemon.stop().unwrap();
}

#[kernel_test]
fn idle_and_endless_control_clients_hold_no_request_up() {
    use std::{
        io::Write,
        os::unix::net::UnixStream,
        time::{Duration, Instant},
    };
    let ctx = Ctx { topo: Topology::new("oi").unwrap(), place: PinPlace::new("operation-idle") };
    let dir = TempDir::new("operation-idle");
    let list = dir.file("drop.txt", "203.0.113.0/24\n");
    let daemon = ctx.start(&list);
    let socket = ctx.place.state.0.join("control.sock");
    // The socket is made as the loop starts, right after "filtering".
    let end = Instant::now() + Duration::from_secs(5);
    while !socket.exists() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    // Ten clients that connect and say nothing, and one that sends 64 MiB with no line end.
    let idle: Vec<UnixStream> = (0..10).map(|_| UnixStream::connect(&socket).unwrap()).collect();
    let mut endless = UnixStream::connect(&socket).unwrap();
    endless.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let chunk = vec![b'a'; 1 << 20];
    let sent = (0..64).take_while(|_| endless.write_all(&chunk).is_ok()).count();
    let asked = Instant::now();
    let out = ctx.ok(&["add", Addrs::SERVER_V4]);
    assert!(out.contains("applied by the daemon"), "{out}");
    assert!(asked.elapsed() < Duration::from_secs(3), "add took {:?}", asked.elapsed());
    assert_eq!(ctx.pings(Addrs::SERVER_V4), 0);
    let rss = daemon.rss_kib();
    assert!(rss < 100 << 10, "{rss} KiB after {sent} MiB of one request line");
    drop((idle, endless));
    daemon.stop().unwrap();
}
