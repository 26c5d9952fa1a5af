//! The `takedown` command's error cases: one clear sentence, non-zero exit, nothing attached.

use integration_tests::{
    SmallDisk, TempDir, kernel_test, messages as m, process::run_cli, xdp_attached,
};
use td_netns::{Addrs, NetNs, Topology};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn example_list() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/takedown-list.txt").to_string()
}

#[test]
fn usage_errors_exit_2() {
    let out = run_cli(None, &["check"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run_cli(None, &["nosuchcommand"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("nosuchcommand"), "{}", stderr(&out));
    if td_netns::is_root() {
        let ns = NetNs::new("cu").unwrap();
        let out = run_cli(Some(&ns), &["run", "--list", &example_list()]);
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains("--iface"), "{}", stderr(&out));
    }
}

#[kernel_test]
fn run_with_both_interfaces_and_a_configuration_shows_both_real_usages() {
    let ns = NetNs::new("cr").unwrap();
    for args in [
        ["run", "--iface", "eth0", "--config", "x.toml"],
        ["run", "--config", "x.toml", "--iface", "eth0"],
    ] {
        let out = run_cli(Some(&ns), &args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("cannot be used with"), "{err}");
        // The usage shown is one the user can type, never "--iface with --list" after --config.
        assert!(
            err.contains("Usage: takedown run --iface IF... --list FILE... [OPTIONS]"),
            "{err}"
        );
        assert!(err.contains("takedown run [--config FILE] [OPTIONS]"), "{err}");
    }
}

#[test]
fn without_privileges_it_refuses_in_one_sentence() {
    // As root, drop every capability (setpriv clears the bounding set) to act as an
    // unprivileged user; as a normal user, just run it.
    // Inside a test namespace all the same, should the privilege check ever let it through.
    let bin = integration_tests::process::takedown_bin();
    let list = example_list();
    let args = ["run", "-i", "lo", "-l", list.as_str(), "--ephemeral"];
    let out = if td_netns::is_root() {
        let ns = NetNs::new("cp").unwrap();
        ns.command("setpriv")
            .args(["--bounding-set=-all", "--inh-caps=-all"])
            .arg(&bin)
            .args(args)
            .output()
            .expect("setpriv")
    } else {
        std::process::Command::new(&bin).args(args).output().expect("run takedown")
    };
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(&format!("takedown run {}", m::NEEDS_ROOT)), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[kernel_test]
fn without_cap_perfmon_run_says_so_before_loading() {
    // CAP_BPF and CAP_NET_ADMIN alone: the program's per-CPU hit counts need CAP_PERFMON.
    let ns = NetNs::new("cq").unwrap();
    let list = example_list();
    let out = ns
        .command("setpriv")
        .args(["--bounding-set=-all,+bpf,+net_admin", "--inh-caps=-all"])
        .arg(integration_tests::process::takedown_bin())
        .args(["run", "-i", "lo", "-l", list.as_str(), "--ephemeral"])
        .output()
        .expect("setpriv");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("takedown run {}", m::NEEDS_PERFMON)), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[kernel_test]
fn unknown_interface() {
    let ns = NetNs::new("ci").unwrap();
    let out = run_cli(Some(&ns), &["run", "-i", "td-nosuch0", "-l", &example_list()]);
    assert_eq!(out.status.code(), Some(1));
    let want = format!("interface td-nosuch0{}", m::NO_INTERFACE);
    assert!(stderr(&out).contains(&want), "{}", stderr(&out));
}

#[kernel_test]
fn a_layer_3_interface_is_refused_not_attached() {
    let ns = NetNs::new("cl").unwrap();
    let mut links = vec!["td-tun0"];
    ns.exec("ip", &["tuntap", "add", "dev", "td-tun0", "mode", "tun"]).unwrap();
    // WireGuard too, where the kernel has the module.
    let wg = ns.exec("ip", &["link", "add", "td-wg0", "type", "wireguard"]).unwrap();
    if wg.status.success() {
        links.push("td-wg0");
    }
    for link in links {
        ns.exec("ip", &["link", "set", link, "up"]).unwrap();
        let out = run_cli(Some(&ns), &["run", "-i", link, "-l", &example_list()]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let want = format!("interface {link}{}", m::NO_ETHERNET);
        assert!(stderr(&out).contains(&want), "{}", stderr(&out));
        assert!(!integration_tests::xdp_attached(&ns, link), "{link}: something attached");
    }
}

#[kernel_test]
fn unreadable_list_file() {
    let ns = NetNs::new("cr").unwrap();
    let out = run_cli(Some(&ns), &["run", "-i", "lo", "-l", "/nonexistent/takedown.txt"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!(
            "{}takedown.txt (/nonexistent/takedown.txt): {}/nonexistent/takedown.txt",
            m::NO_LIST_LOADS,
            m::UNREADABLE_LIST
        )),
        "{}",
        stderr(&out)
    );
}

#[kernel_test]
fn list_without_usable_entries() {
    let dir = TempDir::new("cli-empty");
    let list = dir.file("junk.txt", "# only junk\n/x.php\nnot-a-name\n10.0.0.0/8\n");
    let ns = NetNs::new("ce").unwrap();
    let out = run_cli(Some(&ns), &["run", "-i", "lo", "-l", &list, "--format", "plain"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let want = "junk.txt): no usable entry (2 lines skipped, 1 refused or guarded; first at line 2";
    assert!(err.contains(want), "{err}");
    assert!(err.contains("/x.php"), "{err}");
    assert!(!xdp_attached(&ns, "lo"));
}

#[kernel_test]
fn more_entries_than_the_map_holds() {
    let topo = Topology::new("cf").unwrap();
    let dir = TempDir::new("cli-full");
    let list = dir.file("three.txt", "203.0.113.21\n203.0.113.22\n203.0.113.23\n");
    let out = run_cli(
        Some(&topo.gateway),
        &["run", "-i", Addrs::GATEWAY_IF, "-l", &list, "--max-entries", "2"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "3 exact IPv4 addresses, more than the TD_V4_EXACT{}2{}",
            m::TOO_MANY,
            m::RAISE_MAX
        )),
        "{err}"
    );
    assert!(!xdp_attached(&topo.gateway, Addrs::GATEWAY_IF));
}

#[kernel_test]
fn failed_attach_leaves_nothing_attached() {
    // The veth attaches natively; loopback has no native XDP, so the second attach fails and
    // the first must be undone.
    let topo = Topology::new("ca").unwrap();
    let out = run_cli(
        Some(&topo.gateway),
        &["run", "-i", Addrs::GATEWAY_IF, "-i", "lo", "-l", &example_list(), "--mode", "native"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    let err = stderr(&out);
    assert!(err.contains(&format!("{}lo", m::ATTACH_FAILED)), "{err}");
    assert!(!xdp_attached(&topo.gateway, Addrs::GATEWAY_IF), "veth still has XDP");
    assert!(!xdp_attached(&topo.gateway, "lo"));
}

#[kernel_test]
fn commands_on_the_running_filter_say_they_need_root() {
    // A real unprivileged user (nobody), on a state directory only root may read.
    let state = TempDir::new("cli-nonroot");
    std::fs::write(state.0.join("hosts.json"), "{}").unwrap();
    std::fs::set_permissions(&state.0, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .unwrap();
    std::fs::set_permissions(
        state.0.join("hosts.json"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let bin = integration_tests::process::takedown_bin();
    let ns = NetNs::new("cn").unwrap();
    let places = ["--state-dir", state.0.to_str().unwrap(), "--pin-dir", "/tmp/td-no-pins"];
    let read = |cmd: &str| format!("takedown {cmd} {}", m::NEEDS_ROOT_TO_READ);
    for (cmd, want) in [
        (vec!["status"], read("status")),
        (vec!["list"], read("list")),
        (vec!["lookup", "192.0.2.1"], read("lookup")),
        (vec!["stats"], read("stats")),
        (vec!["top"], read("top")),
        (vec!["hosts"], m::HOSTS_NEEDS_ROOT.to_string()),
        (vec!["stop"], format!("takedown stop {}", m::NEEDS_ROOT)),
    ] {
        let out = ns
            .command("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .args(["--bounding-set=-all", "--inh-caps=-all"])
            .arg(&bin)
            .args(&cmd)
            .args(places)
            .output()
            .expect("setpriv");
        assert_eq!(out.status.code(), Some(1), "{cmd:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(&want), "{cmd:?}: {}", stderr(&out));
    }
    // A state directory of root's alone (as a daemon makes it): refresh says so, rather than
    // "no daemon is running".
    std::fs::set_permissions(&state.0, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .unwrap();
    let out = ns
        .command("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .args(["--bounding-set=-all", "--inh-caps=-all"])
        .arg(&bin)
        .arg("refresh")
        .args(places)
        .output()
        .expect("setpriv");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("takedown refresh {}", m::REFRESH_NEEDS_ROOT)), "{err}");
}

#[kernel_test]
fn an_interface_that_holds_another_xdp_program_is_named_as_the_cause() {
    let topo = Topology::new("cb").unwrap();
    let list = example_list();
    let args = ["run", "-i", Addrs::GATEWAY_IF, "-l", list.as_str(), "--ephemeral"];
    let first = integration_tests::process::Running::start(&topo.gateway, &args).unwrap();
    for mode in ["auto", "native"] {
        let mut second = args.to_vec();
        second.extend(["--mode", mode]);
        let out = run_cli(Some(&topo.gateway), &second);
        assert_eq!(out.status.code(), Some(1), "{mode}");
        let want = format!("to td-g{}td-g{}", m::OTHER_XDP, m::OTHER_XDP_FIX);
        assert!(stderr(&out).contains(&want), "{mode}: {}", stderr(&out));
    }
    first.stop().unwrap();
}

#[kernel_test]
fn the_log_carries_timestamps_or_json_lines() {
    let topo = Topology::new("cl").unwrap();
    let dir = TempDir::new("cli-log");
    let good = example_list();
    let junk = dir.file("junk.txt", "not a list\n");
    for format in ["text", "json"] {
        let args = [
            "--log-format",
            format,
            "run",
            "-i",
            Addrs::GATEWAY_IF,
            "-l",
            good.as_str(),
            "-l",
            junk.as_str(),
            "--ephemeral",
        ];
        let run = integration_tests::process::Running::start(&topo.gateway, &args).unwrap();
        let err = run.stderr();
        run.stop().unwrap();
        let line = err
            .lines()
            .find(|l| l.contains("starting without it"))
            .unwrap_or_else(|| panic!("{err}"));
        if format == "json" {
            let v: serde_json::Value = serde_json::from_str(line).expect(line);
            assert_eq!(v["level"], "ERROR", "{line}");
            assert!(v["message"].as_str().unwrap().contains("junk.txt"), "{line}");
            assert!(v["time"].as_str().unwrap().starts_with("20"), "{line}");
        } else {
            assert!(line.starts_with("[20") && line.contains("Z ERROR]"), "{line}");
        }
    }
}

#[kernel_test]
fn add_on_a_full_disk_names_the_cause_and_changes_nothing() {
    let ns = NetNs::new("cf").unwrap();
    let disk = SmallDisk::new("full");
    let state = disk.0.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let manual = state.join("manual.txt");
    std::fs::write(&manual, "198.51.100.7/32 both\n").unwrap();
    disk.fill();
    let pins = disk.0.join("no-pins");
    let out = run_cli(
        Some(&ns),
        &[
            "add",
            "203.0.113.50",
            "--state-dir",
            state.to_str().unwrap(),
            "--pin-dir",
            pins.to_str().unwrap(),
        ],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("cannot write {}", manual.display())), "{err}");
    assert!(err.contains("free space on the filesystem of"), "{err}");
    assert_eq!(std::fs::read_to_string(&manual).unwrap(), "198.51.100.7/32 both\n");
    let mut left: Vec<String> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "cache")
        .collect();
    left.sort();
    // The lock file stays (empty: what it holds is the lock); no temporary file is left.
    assert_eq!(left, ["manual.lock", "manual.txt"], "no temporary file is left behind");
}

#[kernel_test]
fn a_state_directory_other_users_may_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let ns = NetNs::new("cw").unwrap();
    let dir = TempDir::new("open-state");
    let state = dir.0.join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    let pins = dir.0.join("no-pins");
    let (state_s, pins_s) = (state.to_str().unwrap(), pins.to_str().unwrap());
    let out =
        run_cli(Some(&ns), &["add", "203.0.113.50", "--state-dir", state_s, "--pin-dir", pins_s]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("state directory {state_s} may be written by other users")),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one sentence: {err}");
    assert!(!state.join("manual.txt").exists(), "nothing written");
}

#[test]
fn the_readme_error_table_quotes_what_the_code_prints() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"));
    let readme = readme.unwrap();
    let table = readme.split("## Errors and exit codes").nth(1).unwrap();
    let table = table.split("\n## ").next().unwrap();
    for fragment in m::ALL {
        assert!(table.contains(fragment), "the README's error table lacks {fragment:?}");
    }
}

#[kernel_test]
fn a_state_directory_too_long_for_its_socket_is_refused_before_loading() {
    let ns = NetNs::new("cs").unwrap();
    let place = integration_tests::PinPlace::new("long-state");
    let long = TempDir::new(&"d".repeat(100));
    let state = long.0.join("state");
    let args = ["run", "-i", "lo", "-l", &example_list(), "--pin-dir", &place.pin_dir()];
    let args = [&args[..], &["--state-dir", state.to_str().unwrap()]].concat();
    // Bounded: a start that reached "filtering" is stopped, and fails the test.
    let err = match integration_tests::process::Running::start(&ns, &args) {
        Ok(run) => {
            run.stop().unwrap();
            panic!("it started filtering")
        }
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("is too long: its control socket's path would be"), "{err}");
    assert!(!integration_tests::xdp_attached(&ns, "lo"), "nothing attached");
}
