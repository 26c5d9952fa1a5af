//! The systemd unit (`dist/takedown.service`): `systemd-analyze security` rates it 3.5 or
//! better, and the daemon loads, pins, filters and refreshes with exactly the capabilities the
//! unit gives it (and nothing else: no new privileges, an empty bounding set otherwise).

use integration_tests::{PinPlace, TempDir, kernel_test, process::takedown_bin};
use td_netns::{Addrs, Topology, ping};

const UNIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../dist/takedown.service");

/// The values of `key=` in the unit.
fn setting(key: &str) -> Vec<String> {
    let unit = std::fs::read_to_string(UNIT).unwrap();
    let prefix = format!("{key}=");
    let lines = unit.lines().filter_map(|l| l.strip_prefix(&prefix));
    lines.flat_map(|v| v.split_whitespace().map(String::from).collect::<Vec<_>>()).collect()
}

#[test]
fn systemd_analyze_rates_the_unit_3_5_or_better() {
    let out = std::process::Command::new("systemd-analyze")
        .args(["security", "--offline=true", UNIT])
        .output()
        .expect("systemd-analyze (package systemd; cargo xtask setup installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no rating: {text}{}", String::from_utf8_lossy(&out.stderr)));
    let figure: f64 =
        line.split(": ").nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap();
    eprintln!("{line}");
    assert!(figure <= 3.5, "{line}");
}

#[kernel_test]
fn the_daemon_runs_with_only_the_units_capabilities() {
    let caps = setting("CapabilityBoundingSet");
    assert_eq!(caps, setting("AmbientCapabilities"), "the unit grants what it bounds");
    assert!(!caps.is_empty() && !caps.iter().any(|c| c == "CAP_SYS_ADMIN"), "{caps:?}");
    // setpriv's spelling: -all,+bpf,+net_admin,...
    let set: String =
        caps.iter().map(|c| format!(",+{}", c.trim_start_matches("CAP_").to_lowercase())).collect();
    let set = format!("-all{set}");
    let place = PinPlace::new("service");
    let topo = Topology::new("sv").unwrap();
    let dir = TempDir::new("service");
    let list = dir.file("feed.txt", "203.0.113.7\n");
    let bin = takedown_bin();
    let mut args = vec!["run", "-i", Addrs::GATEWAY_IF, "-l", &list];
    let places = place.args();
    args.extend(places.iter().map(String::as_str));
    let mut cmd = topo.gateway.command("setpriv");
    cmd.args(["--no-new-privs", &format!("--bounding-set={set}")])
        .args([&format!("--inh-caps={set}"), &format!("--ambient-caps={set}")])
        .arg(&bin)
        .args(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let daemon = integration_tests::process::Running::spawn(cmd).unwrap();
    let pid = daemon.pid();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let eff = status.lines().find(|l| l.starts_with("CapEff:")).unwrap().to_string();
    eprintln!("the daemon's {eff} ({set})");
    assert_eq!(eff.split_whitespace().nth(1), Some(expected_mask(&caps).as_str()), "{eff}");
    assert_eq!(ping(&topo.client, None, Addrs::TAKEDOWN_V4, 2).unwrap(), 0, "it filters");
    assert!(place.blocked(&topo.gateway, Addrs::GATEWAY_IF, Addrs::TAKEDOWN_V4));
    dir.file("feed.txt", "198.51.100.7\n");
    let (code, out, err) = place.cli(&topo.gateway, &["refresh"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(place.blocked(&topo.gateway, Addrs::GATEWAY_IF, Addrs::SERVER_V4), "it refreshed");
    assert!(!place.blocked(&topo.gateway, Addrs::GATEWAY_IF, Addrs::TAKEDOWN_V4));
    assert!(std::path::Path::new(&place.pin_dir()).join("maps").is_dir(), "it pinned");
    daemon.stop().unwrap();
}

/// The CapEff line's hex for these capabilities.
fn expected_mask(caps: &[String]) -> String {
    let bit = |c: &str| match c {
        "CAP_NET_ADMIN" => 12,
        "CAP_PERFMON" => 38,
        "CAP_BPF" => 39,
        other => panic!("add {other}'s number"),
    };
    format!("{:016x}", caps.iter().fold(0u64, |m, c| m | 1 << bit(c)))
}
