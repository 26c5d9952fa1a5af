//! The pinned filter stays its daemon's own: maps another process writes get the daemon's
//! lists back, and pins on a bpf filesystem mounted in the daemon's mount namespace alone are
//! said to end with it (never "the filter keeps enforcing"). Each test pins into a private
//! bpffs.

use std::time::{Duration, Instant};

use filter_common::FLAG_BOTH;
use integration_tests::{
    PinPlace, TempDir, kernel_test,
    process::{Running, takedown_bin},
    xdp_attached,
};
use takedown::{
    maps::{FilterMaps, pins::Pins, sync},
    plan::Meta,
};
use td_netns::{Addrs, Topology, ping};

/// `takedown run` on the gateway's inside interface with `list`.
fn run_args(list: &str) -> [&str; 6] {
    ["run", "-i", Addrs::GATEWAY_IF, "-l", list, "--block-own"]
}

/// Waits (at most 10 s) until `done`, panicking with `what` and the daemon's log.
fn wait_for(run: &Running, what: &str, done: impl FnMut() -> bool) {
    integration_tests::wait_until(what, 10, done, || run.stderr());
}

#[kernel_test]
fn maps_another_process_writes_get_the_daemons_lists_back() {
    let place = PinPlace::new("writer");
    let dir = TempDir::new("pin-writer");
    let list = dir.file("list.txt", &format!("{}\n", Addrs::TAKEDOWN_V4));
    let topo = Topology::new("pw").unwrap();
    let run = place.start(&topo.gateway, &run_args(&list));
    assert!(place.blocked(&topo.gateway, Addrs::GATEWAY_IF, Addrs::TAKEDOWN_V4));
    // Another process (a second writer behind the daemon's back) deletes the listed entry and
    // adds one of its own.
    let mut maps = FilterMaps::open(&Pins::new(place.pin_dir())).unwrap();
    let listed = format!("{}/32", Addrs::TAKEDOWN_V4).parse().unwrap();
    sync::remove_lists(&mut maps.addr, listed, u64::MAX).unwrap();
    let foreign = "198.51.100.99/32".parse().unwrap();
    sync::upsert(&mut maps.addr, foreign, Meta { flags: FLAG_BOTH, lists: 1 << 5 }).unwrap();
    drop(maps);
    wait_for(&run, "the daemon's lists written back", || {
        place.blocked(&topo.gateway, Addrs::GATEWAY_IF, Addrs::TAKEDOWN_V4)
            && !place.blocked(&topo.gateway, Addrs::GATEWAY_IF, "198.51.100.99")
    });
    assert_eq!(ping(&topo.client, None, Addrs::TAKEDOWN_V4, 2).unwrap(), 0, "enforcing again");
    let said = "another process (not this daemon) changed the pinned maps; this daemon wrote \
                its lists back (1 entries written, 1 deleted)";
    assert!(run.stderr().contains(said), "{}", run.stderr());
    let (code, out, err) = place.cli(&topo.gateway, &["status"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("WARNING: at ") && out.contains(said), "{out}");
    run.stop().unwrap();
}

#[kernel_test]
fn pins_mounted_only_in_the_daemons_namespace_are_said_to_end_with_it() {
    let place = PinPlace::new("private-mount");
    let dir = TempDir::new("pin-private-mount");
    let list = dir.file("list.txt", &format!("{}\n", Addrs::TAKEDOWN_V4));
    let topo = Topology::new("pm").unwrap();
    // The daemon in a mount namespace of its own, whose mounts no longer follow the host's.
    let mut cmd = topo.gateway.command("unshare");
    cmd.args(["--mount", "--propagation", "private"]).arg(takedown_bin());
    cmd.args(run_args(&list)).args(place.args());
    let run = Running::spawn(cmd).unwrap();
    assert_eq!(ping(&topo.client, None, Addrs::TAKEDOWN_V4, 2).unwrap(), 0, "enforcing");
    // The host unmounts the bpffs: only the daemon's namespace still holds it, and with it
    // the pins.
    let out = std::process::Command::new("umount").arg(&place.bpffs).output().unwrap();
    assert!(out.status.success(), "umount: {}", String::from_utf8_lossy(&out.stderr));
    let said = "is mounted only in this daemon's mount namespace, not on the host";
    wait_for(&run, "the private mount said", || run.stderr().contains(said));
    let (_, stdout) = run.stop().unwrap();
    assert!(
        stdout.contains("takedown stopped; the bpf filesystem of the pin directory"),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("detached from {}", Addrs::GATEWAY_IF)), "{stdout}");
    assert!(!stdout.contains("keeps enforcing"), "{stdout}");
    // And so it is: the namespace went with the daemon, the bpffs and its pins with it.
    let end = Instant::now() + Duration::from_secs(10);
    while xdp_attached(&topo.gateway, Addrs::GATEWAY_IF) {
        assert!(Instant::now() < end, "still attached after the daemon stopped");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(ping(&topo.client, None, Addrs::TAKEDOWN_V4, 2).unwrap() > 0, "no longer filtered");
}
