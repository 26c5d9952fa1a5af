//! Manual entries that expire (`takedown add --for` / `--until`): enforced until their time,
//! shown with the time left, taken out of the maps when it passes, and at the next start when
//! the daemon was down then.

use std::time::{Duration, Instant};

use integration_tests::{PinPlace, TempDir, kernel_test};
use td_netns::{Addrs, Topology};

#[kernel_test]
fn manual_entries_leave_the_maps_when_their_time_passes() {
    let place = PinPlace::new("expiry");
    let topo = Topology::new("xp").unwrap();
    let dir = TempDir::new("expiry");
    let list = dir.file("feed.txt", "203.0.113.7\n");
    let run = ["run", "-i", Addrs::GATEWAY_IF, "-l", &list];
    let daemon = place.start(&topo.gateway, &run);
    let cli = |args: &[&str]| {
        let (code, out, err) = place.cli(&topo.gateway, args);
        (code, out + &err)
    };
    let blocked = |addr| place.blocked(&topo.gateway, Addrs::GATEWAY_IF, addr);

    let (code, out) = cli(&["add", Addrs::SERVER_V4, "--for", "3s"]);
    let added = Instant::now();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("to the manual list until 20") && out.contains("(in 3s)"), "{out}");
    assert!(blocked(Addrs::SERVER_V4));
    let (_, listed) = cli(&["list", "--list", "manual"]);
    assert!(listed.contains("198.51.100.7/32 both manual (manual entry until 20"), "{listed}");
    let (_, looked) = cli(&["lookup", Addrs::SERVER_V4]);
    assert!(looked.contains("(manual entry until 20") && looked.contains("(in "), "{looked}");

    // It leaves the maps when its time passes, and the file with it.
    let end = Instant::now() + Duration::from_secs(10);
    while blocked(Addrs::SERVER_V4) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
    }
    let took = added.elapsed();
    assert!(!blocked(Addrs::SERVER_V4), "still enforced {took:?} after a 3 s entry");
    assert!(took >= Duration::from_millis(2500), "removed too early: {took:?}");
    let manual = std::fs::read_to_string(place.state.0.join("manual.txt")).unwrap();
    assert!(!manual.contains("198.51.100.7"), "{manual}");
    assert!(
        daemon.stderr().contains("manual entry 198.51.100.7/32 expired"),
        "{}",
        daemon.stderr()
    );
    assert!(blocked(Addrs::TAKEDOWN_V4), "the list stays");

    let (code, out) = cli(&["add", Addrs::SERVER_V4, "--until", "2020-01-01T00:00Z"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("that time has already passed"), "{out}");

    // Expired while no daemon ran: the next start takes it out.
    let (code, out) = cli(&["add", Addrs::SERVER_V4, "--for", "2s"]);
    assert_eq!(code, Some(0), "{out}");
    daemon.stop().unwrap();
    let (code, out) = cli(&["add", "198.51.100.9", "--until", "2099-01-01T00:00Z"]);
    assert!(out.contains("no daemon runs: the entry leaves the maps when"), "{out}");
    assert_eq!(code, Some(0), "{out}");
    std::thread::sleep(Duration::from_secs(3));
    assert!(blocked(Addrs::SERVER_V4), "no daemon: still in the pinned maps");
    let daemon = place.start(&topo.gateway, &run);
    assert!(!blocked(Addrs::SERVER_V4), "the start took the expired entry out");
    assert!(blocked("198.51.100.9"), "the other one stays until 2099");
    daemon.stop().unwrap();
}
