//! CrowdSec bouncer mode against CrowdSec's own Local API (Debian's crowdsec package, started
//! by the test in its namespace with a private database; decisions made with `cscli`): bans
//! on an address, a range and an IPv6 address are enforced; a captcha is not taken, and
//! deleting it leaves the ban on the same address in force (the stream names the decision it
//! deletes); a short ban ends by itself; deleting the ban takes the address out; a ban the
//! guards hold back is named.

use std::time::{Duration, Instant};

use integration_tests::{PinPlace, TempDir, crowdsec_lapi::CrowdsecLapi, kernel_test};
use td_netns::{Addrs, Topology};

const KEY: &str = "takedown-bouncer-key-0123456789";

#[kernel_test]
fn decisions_of_crowdsecs_own_local_api_are_enforced_each_on_its_own() {
    let topo = Topology::new("cl").unwrap();
    let gw = &topo.gateway;
    let lapi = CrowdsecLapi::start(gw, KEY).unwrap();
    let cscli = |args: &[&str]| lapi.cscli(args).unwrap();
    cscli(&["decisions", "add", "--ip", Addrs::TAKEDOWN_V4, "--duration", "1h", "--type", "ban"]);
    let captcha = ["decisions", "add", "--ip", Addrs::TAKEDOWN_V4, "--duration", "1h"];
    cscli(&[&captcha[..], &["--type", "captcha"]].concat());
    cscli(&["decisions", "add", "--range", "198.51.100.0/24", "--duration", "2h"]);
    cscli(&["decisions", "add", "--ip", "2001:db8:bad::7", "--duration", "30m"]);
    cscli(&["decisions", "add", "--ip", "192.0.2.99", "--duration", "1h", "--type", "captcha"]);
    // A ban the guards hold back (a private address): named in the status, not only counted.
    cscli(&["decisions", "add", "--ip", "10.1.2.3", "--duration", "1h"]);
    let dir = TempDir::new("crowdsec-own-lapi");
    let config = dir.crowdsec_config(&lapi.url(), KEY);
    let place = PinPlace::new("crowdsec-own-lapi");
    let daemon = place.start(gw, &["run", "--config", &config]);
    let blocked = |a| place.blocked(gw, Addrs::GATEWAY_IF, a);
    let wait = |a, want| {
        let end = Instant::now() + Duration::from_secs(10);
        while blocked(a) != want && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(100));
        }
        blocked(a) == want
    };
    assert!(blocked(Addrs::TAKEDOWN_V4), "{}", daemon.stderr());
    assert!(blocked("198.51.100.9") && blocked("2001:db8:bad::7"));
    assert!(!blocked("192.0.2.99"), "a captcha is no ban");
    let (_, status, _) = place.cli(gw, &["status"]);
    assert!(status.contains("1 refused or guarded (the first: 10.1.2.3"), "{status}");

    // The captcha on the banned address goes: the ban stays (three polls later too).
    cscli(&["decisions", "delete", "--ip", Addrs::TAKEDOWN_V4, "--type", "captcha"]);
    std::thread::sleep(Duration::from_secs(3));
    assert!(blocked(Addrs::TAKEDOWN_V4), "the ban left with the captcha: {}", daemon.stderr());
    let listed = cscli(&["decisions", "list", "-o", "json"]);
    assert!(listed.contains(Addrs::TAKEDOWN_V4), "cscli still lists the ban: {listed}");

    // A ban of 3 s ends by itself; deleting the other ban takes its address out.
    cscli(&["decisions", "add", "--ip", "203.0.113.8", "--duration", "3s"]);
    assert!(wait("203.0.113.8", true), "the short ban came");
    assert!(wait("203.0.113.8", false), "the short ban ended");
    cscli(&["decisions", "delete", "--ip", Addrs::TAKEDOWN_V4, "--type", "ban"]);
    assert!(wait(Addrs::TAKEDOWN_V4, false), "the deleted ban left");
    assert!(blocked("198.51.100.9"), "the range stays");

    let log = daemon.stderr();
    let (status, out) = daemon.stop().unwrap();
    assert!(status.success(), "{log}");
    let log = log + &out;
    assert!(log.contains("decisions not taken") && log.contains("captcha on Ip"), "{log}");
    assert!(!log.contains(KEY), "the key was shown");
}
