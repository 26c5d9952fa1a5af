//! What a restart enforces: the shrink guard applies at start too (a crash and a restart never
//! load a list cut by more than half), a list whose file is gone or junk at start enforces its
//! last accepted copy from the state directory, `--accept-shrink` takes the new content, and a
//! list with nothing to load keeps its own pinned entries, even after a start that failed.

use integration_tests::{PinPlace, TempDir, kernel_test, process::Running};
use td_netns::{Addrs, Topology};

/// `n` addresses of 192.0.2.128/25 and 198.51.100.0/24 (never the topology's own).
fn list_of(n: usize) -> String {
    let v4 = (0..128).map(|i| format!("192.0.2.{}", 128 + i));
    let v4 = v4.chain((8..256).map(|i| format!("198.51.100.{i}")));
    v4.take(n).map(|a| a + "\n").collect()
}

struct Ctx {
    topo: Topology,
    place: PinPlace,
    list: String,
}

impl Ctx {
    fn start(&self, extra: &[&str]) -> Running {
        let mut args = vec!["run", "-i", Addrs::GATEWAY_IF, "-l", &self.list];
        args.extend_from_slice(extra);
        self.place.start(&self.topo.gateway, &args)
    }

    fn cli(&self, args: &[&str]) -> (Option<i32>, String) {
        let (code, out, err) = self.place.cli(&self.topo.gateway, args);
        (code, out + &err)
    }

    /// True when `addr` is blocked (lookup and the kernel's verdict agree).
    fn blocked(&self, addr: &str) -> bool {
        self.place.blocked(&self.topo.gateway, Addrs::GATEWAY_IF, addr)
    }

    fn ipv4_entries(&self) -> String {
        let (_, out) = self.cli(&["status"]);
        let line = out.lines().find(|l| l.starts_with("entries:")).unwrap_or_default();
        line.to_string()
    }
}

#[kernel_test]
fn a_restart_applies_the_shrink_guard_and_falls_back_to_the_last_accepted_copy() {
    let dir = TempDir::new("restart-shrink");
    let list = dir.file("feed.txt", &list_of(200));
    let ctx =
        Ctx { topo: Topology::new("rs").unwrap(), place: PinPlace::new("restart-guard"), list };
    let daemon = ctx.start(&[]);
    assert!(ctx.blocked("198.51.100.50"));

    // The feed is cut to 10 lines: the refresh is held.
    dir.file("feed.txt", &list_of(10));
    let (code, out) = ctx.cli(&["refresh"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("less than half"), "{out}");
    // A crash, then a restart: the guard holds the cut content at start too.
    daemon.kill();
    let daemon = ctx.start(&[]);
    assert!(
        daemon.stdout().contains(" written, 0 deleted"),
        "the restart deleted nothing: {}",
        daemon.stdout()
    );
    assert!(ctx.blocked("198.51.100.50"), "the last accepted content stays enforced");
    assert!(ctx.ipv4_entries().starts_with("entries: 200 IPv4"), "{}", ctx.ipv4_entries());
    let (code, status) = ctx.cli(&["status"]);
    assert_eq!(code, Some(0), "{status}");
    assert!(status.contains("list feed.txt: 200 in the maps; last refresh FAILED"), "{status}");
    assert!(status.contains("less than half of the 200"), "{status}");
    assert!(status.contains("using the cached copy of 20"), "{status}");
    // The copy in force was fetched by the daemon before the crash: that is the last success.
    let line = status.lines().find(|l| l.starts_with("list feed.txt:")).unwrap();
    let when = line.split(", last success ").nth(1).unwrap_or_default();
    assert!(when.split('s').next().unwrap().parse::<u64>().is_ok(), "{line}");

    // The file is deleted, then turned into junk: each restart still enforces the cached copy.
    let mut daemon = daemon;
    for junk in [None, Some("<html>not a list</html>\n")] {
        daemon = restart_with(&ctx, &dir, daemon, junk);
    }

    // An operator who wants the cut content says so.
    daemon.stop().unwrap();
    dir.file("feed.txt", &list_of(10));
    let daemon = ctx.start(&["--accept-shrink"]);
    assert!(!ctx.blocked("198.51.100.50"), "--accept-shrink took the cut content");
    assert!(ctx.blocked("192.0.2.130"));
    assert!(ctx.ipv4_entries().starts_with("entries: 10 IPv4"), "{}", ctx.ipv4_entries());
    daemon.stop().unwrap();
}

/// Stops `daemon`, puts `junk` in the list file (or deletes it), starts again and checks that
/// the cached 200 entries are enforced.
fn restart_with(ctx: &Ctx, dir: &TempDir, daemon: Running, junk: Option<&str>) -> Running {
    daemon.stop().unwrap();
    match junk {
        Some(text) => drop(dir.file("feed.txt", text)),
        None => std::fs::remove_file(&ctx.list).unwrap(),
    }
    let daemon = ctx.start(&[]);
    assert!(ctx.blocked("198.51.100.50"), "{junk:?}: the cached copy is enforced");
    let (_, status) = ctx.cli(&["status"]);
    assert!(status.contains("list feed.txt: 200 in the maps; last refresh FAILED"), "{status}");
    assert!(status.contains("using the cached copy"), "{junk:?}: {status}");
    daemon
}

#[kernel_test]
fn a_list_with_nothing_to_load_keeps_its_own_pinned_entries_after_a_failed_start() {
    let topo = Topology::new("rh").unwrap();
    let place = PinPlace::new("restart-held");
    let dir = TempDir::new("restart-held");
    let a = dir.file("a.txt", "198.51.100.201\n");
    let b = dir.file("b.txt", "203.0.113.201\n");
    let gw = &topo.gateway;
    fn run<'a>(lists: [&'a str; 2], extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec!["run", "-i", Addrs::GATEWAY_IF, "-l", lists[0], "-l", lists[1]];
        args.extend_from_slice(extra);
        args
    }
    place.start(gw, &run([&a, &b], &[])).stop().unwrap();
    // The lists swap bits, and that start fails after writing the maps (no native XDP on lo).
    let (code, _, err) = place.cli(gw, &run([&b, &a], &["-i", "lo", "--mode", "native"]));
    assert_eq!(code, Some(1), "{err}");
    // b has nothing to load now (no file, no cached copy): it keeps its own pinned entry.
    std::fs::remove_file(&b).unwrap();
    std::fs::remove_file(place.state.0.join("cache/b.txt.cache")).unwrap();
    let daemon = place.start(gw, &run([&b, &a], &[]));
    let blocked = |addr| place.blocked(gw, Addrs::GATEWAY_IF, addr);
    assert!(blocked("203.0.113.201"), "b's entry, held: {}", daemon.stderr());
    let (_, out, _) = place.cli(gw, &["lookup", "198.51.100.201"]);
    assert!(out.contains("lists a.txt") && !out.contains("b.txt"), "a's entry is a's: {out}");
    daemon.stop().unwrap();
}
