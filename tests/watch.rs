//! `takedown watch` in a real 80x24 terminal (tmux), on a filter with known traffic: the screen
//! shows the rates, the top entry, the infected host and the list, and q quits.

use std::time::{Duration, Instant};

use integration_tests::{
    PinPlace, TempDir, kernel_test,
    process::{Running, run_cli, takedown_bin},
    tmux::Tmux,
};
use td_netns::{Addrs, Topology, udp_count};

#[kernel_test]
fn watch_shows_rates_entries_hosts_and_lists_and_quits_on_q() {
    let place = PinPlace::new("watch");
    let topo = Topology::new("wt").unwrap();
    let dir = TempDir::new("watch");
    let list = dir.file("drop.txt", "203.0.113.7\n");
    let mut args: Vec<String> =
        ["run", "-i", Addrs::GATEWAY_IF, "-l", &list].iter().map(|s| s.to_string()).collect();
    args.extend(place.args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let daemon = Running::start(&topo.gateway, &args).unwrap();
    let sent = udp_count(
        &topo.client,
        Addrs::ip(Addrs::CLIENT_V4),
        &topo.internet,
        Addrs::ip(Addrs::TAKEDOWN_V4),
        20,
        Duration::from_millis(200),
    )
    .unwrap();
    assert_eq!(sent, 0);
    // Wait for the daemon to save its host table.
    let end = Instant::now() + Duration::from_secs(10);
    let mut pa: Vec<String> = vec!["hosts".into()];
    pa.extend(place.args());
    let pa: Vec<&str> = pa.iter().map(String::as_str).collect();
    while !String::from_utf8_lossy(&run_cli(None, &pa).stdout).contains("192.0.2.10")
        && Instant::now() < end
    {
        std::thread::sleep(Duration::from_millis(200));
    }

    let tmux = Tmux::new("watch");
    tmux.start("w", &format!("{} watch {}", takedown_bin().display(), place.args().join(" ")));
    // A steady listed stream while it watches, so that a drop rate shows.
    let stream = td_netns::Stream::start(
        &topo.client,
        Addrs::ip(Addrs::CLIENT_V4),
        &topo.internet,
        Addrs::ip(Addrs::TAKEDOWN_V4),
        Duration::from_millis(5),
        Duration::from_secs(10),
    )
    .unwrap();
    // The screen refreshes every second: read it until the stream's rate shows.
    let capture = || tmux.screen("w");
    let rate_on = |screen: &str| -> f64 {
        let rate = screen.split("dropped ").nth(1).and_then(|r| r.split_whitespace().next());
        rate.and_then(|n| n.parse().ok()).unwrap_or(0.0)
    };
    // The top table's rate for the listed address (its row: "203.0.113.7/32  198/s ...").
    let top_rate = |screen: &str| -> f64 {
        let row = screen.lines().find(|l| l.contains("203.0.113.7/32")).unwrap_or_default();
        let rate = row.split_whitespace().find_map(|w| w.strip_suffix("/s"));
        rate.and_then(|n| n.parse().ok()).unwrap_or(0.0)
    };
    let shown = |screen: &str| {
        rate_on(screen) >= 100.0 && top_rate(screen) >= 100.0 && screen.contains("192.0.2.10")
    };
    let started = Instant::now();
    let end = started + Duration::from_secs(8);
    let mut screen = capture();
    while !shown(&screen) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(200));
        screen = capture();
    }
    eprintln!("takedown watch, 80x24:\n{screen}");
    let (_, through) = stream.stop();
    assert_eq!(through, 0, "the stream is listed");
    let rate = rate_on(&screen);
    let top = top_rate(&screen);
    // The top table keeps up with the rate graph (both read every second on a small filter).
    assert!((100.0..=250.0).contains(&top), "the top table's rate: {top}\n{screen}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?} to show the stream",
        started.elapsed()
    );
    assert!(
        (100.0..=250.0).contains(&rate),
        "the drop rate shows the stream (~200/s): {rate}\n{screen}"
    );
    for want in [
        "takedown watch",
        "dropped",
        "pkts/s",
        "203.0.113.7/32",
        "192.0.2.10",
        "drop.txt",
        "ok",
        "newest infected hosts",
    ] {
        assert!(screen.contains(want), "{want:?} not on the screen:\n{screen}");
    }
    assert!(
        screen.lines().count() <= 24 && screen.lines().all(|l| l.chars().count() <= 80),
        "fits 80x24:\n{screen}"
    );
    tmux.run(&["send-keys", "-t", "w", "q"]);
    let end = Instant::now() + Duration::from_secs(5);
    while tmux.run(&["has-session", "-t", "w"]).status.success() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!tmux.run(&["has-session", "-t", "w"]).status.success(), "watch did not quit on q");
    daemon.stop().unwrap();
}
