//! Fault injection: SIGKILL at random points of starts and refreshes under a stream from an
//! address listed throughout (it never gets through, and the next start converges); corrupt
//! state files (the daemon starts, enforces, and says what it set aside); a full state
//! filesystem (refreshes still apply; the cache is written once there is room again; a first
//! start on it enforces and says what it cannot write).
//! A hostile metrics client during a refresh is in `metrics.rs`.

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use integration_tests::{
    PinPlace, SmallDisk, TempDir, kernel_test,
    process::{KillOnDrop, Running, takedown_bin},
};
use td_netns::{Addrs, Stream, Topology};

/// 60,000 addresses of `a.b.0.0/16`-style blocks starting at `first`.0.0.0 + `from`, plus
/// the listed source, exact (`exact`) or inside 192.0.2.64/28.
fn content(first: u8, from: u32, exact: bool) -> String {
    let base = u32::from(std::net::Ipv4Addr::new(first, 0, 0, 0)) + from;
    let mut s: String =
        (0..60_000).map(|i| format!("{}\n", std::net::Ipv4Addr::from(base + i))).collect();
    s.push_str(if exact { "192.0.2.66\n" } else { "192.0.2.64/28\n" });
    s
}

fn run_args<'a>(place: &'a [String], list: &'a str) -> Vec<&'a str> {
    let mut args = vec!["run", "-i", Addrs::GATEWAY_IF, "-l", list];
    args.extend(place.iter().map(String::as_str));
    args
}

/// `takedown ARGS` in the gateway namespace, not waited for.
fn spawn(topo: &Topology, args: &[&str]) -> KillOnDrop {
    let child = topo
        .gateway
        .command(takedown_bin().to_str().unwrap())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    KillOnDrop(child)
}

fn blocked(topo: &Topology, place: &PinPlace, addr: &str) -> bool {
    place.blocked(&topo.gateway, Addrs::GATEWAY_IF, addr)
}

#[kernel_test]
fn sigkill_at_random_points_never_lets_an_address_listed_throughout_through() {
    let place = PinPlace::new("faults-kill");
    let topo = Topology::new("fk").unwrap();
    let dir = TempDir::new("faults-kill");
    let list = dir.file("feed.txt", &content(20, 0, true));
    let pargs = place.args();
    let args = run_args(&pargs, &list);
    Running::start(&topo.gateway, &args).unwrap().kill();
    let ip = Addrs::ip;
    let (src, dst) = (ip(Addrs::LISTED_SRC_V4), ip(Addrs::SERVER_V4));
    let limit = Duration::from_secs(120);
    let stream =
        Stream::start(&topo.client, src, &topo.internet, dst, Duration::from_micros(300), limit)
            .unwrap();
    let seed = fastrand::u64(..);
    let mut rng = fastrand::Rng::with_seed(seed);
    eprintln!("fault injection: seed {seed}");
    for round in 0..8 {
        // Each round moves half the addresses and moves the listed source between an exact
        // entry and a prefix, then kills a start or a refresh after a random delay.
        let next = content(20 + (round % 2) as u8, 30_000 * (round % 2), round % 2 == 1);
        let delay = Duration::from_millis(rng.u64(0..1500));
        if round % 2 == 0 {
            dir.file("feed.txt", &next);
            let mut start = spawn(&topo, &args);
            std::thread::sleep(delay);
            let _ = start.0.kill();
        } else {
            let daemon = Running::start(&topo.gateway, &args).unwrap();
            dir.file("feed.txt", &next);
            let mut refresh = vec!["refresh"];
            refresh.extend(pargs.iter().map(String::as_str));
            let _client = spawn(&topo, &refresh);
            std::thread::sleep(delay);
            daemon.kill();
        }
        eprintln!("round {round}: killed after {delay:?}");
    }
    // The next start converges to the last content.
    let daemon = Running::start(&topo.gateway, &args).unwrap();
    let (sent, got) = stream.stop();
    eprintln!("fault injection: {sent} datagrams from the listed source, {got} through");
    assert!(sent > 1000, "the stream ran: {sent}");
    assert_eq!(got, 0, "a kill let the listed source through (seed {seed})");
    let (_, status, _) = place.cli(&topo.gateway, &["status"]);
    // The last content: 21.0.117.48 (21.0.0.0 + 30,000) and on, and 192.0.2.66 exact.
    assert!(status.contains("entries: 60001 IPv4, 0 IPv6, 0 IPv4 prefixes"), "{status}");
    assert!(blocked(&topo, &place, "21.1.0.0"));
    assert!(!blocked(&topo, &place, "21.0.117.47"));
    assert!(!blocked(&topo, &place, "20.0.0.1"));
    assert!(blocked(&topo, &place, Addrs::LISTED_SRC_V4));
    daemon.stop().unwrap();
}

#[kernel_test]
fn corrupt_state_files_are_survived_and_named() {
    let place = PinPlace::new("faults-corrupt");
    let topo = Topology::new("fc").unwrap();
    let dir = TempDir::new("faults-corrupt");
    let list = dir.file("feed.txt", "203.0.113.7\n");
    let state = &place.state.0;
    let junk: Vec<u8> = (0..4096).map(|_| fastrand::u8(..)).collect();
    std::fs::create_dir_all(state.join("cache")).unwrap();
    for name in ["takedown.pid", "status.json", "hosts.json", "cache/feed.txt.cache"] {
        std::fs::write(state.join(name), &junk).unwrap();
    }
    let mut manual = junk.clone();
    manual.extend_from_slice(b"\n198.51.100.7\n");
    std::fs::write(state.join("manual.txt"), &manual).unwrap();
    let pargs = place.args();
    let daemon = Running::start(&topo.gateway, &run_args(&pargs, &list)).unwrap();
    assert!(blocked(&topo, &place, Addrs::TAKEDOWN_V4));
    assert!(blocked(&topo, &place, Addrs::SERVER_V4), "manual.txt's good line");
    let err = daemon.stderr();
    assert!(err.contains("hosts.json is corrupt") && err.contains("hosts.json.corrupt"), "{err}");
    assert!(err.contains("manual.txt:") && err.contains("skipped"), "{err}");
    assert_eq!(std::fs::read(state.join("hosts.json.corrupt")).unwrap(), junk, "evidence kept");
    let (code, status, _) = place.cli(&topo.gateway, &["status"]);
    assert_eq!(code, Some(0), "{status}");
    assert!(status.contains("list feed.txt: 1 in the maps; last refresh ok"), "{status}");
    daemon.stop().unwrap();
}

#[kernel_test]
fn a_full_state_filesystem_does_not_stop_refreshes() {
    let place = PinPlace::new("faults-full");
    let topo = Topology::new("ff").unwrap();
    let dir = TempDir::new("faults-full");
    let disk = SmallDisk::new("faults-full");
    let state = disk.0.join("state");
    let list = dir.file("feed.txt", "203.0.113.7\n");
    let pin_dir = place.pin_dir();
    let args = ["run", "-i", Addrs::GATEWAY_IF, "-l", &list, "--pin-dir", &pin_dir];
    let state_arg = ["--state-dir", state.to_str().unwrap()];
    let all: Vec<&str> = args.iter().chain(&state_arg).copied().collect();
    let daemon = Running::start(&topo.gateway, &all).unwrap();
    let cli = |a: &[&str]| {
        let mut v = a.to_vec();
        v.extend(["--pin-dir", &pin_dir]);
        v.extend(state_arg);
        let out = integration_tests::process::run_cli(Some(&topo.gateway), &v);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.code(), text + &String::from_utf8_lossy(&out.stderr))
    };
    disk.fill();
    dir.file("feed.txt", "198.51.100.7\n");
    let (code, out) = cli(&["refresh"]);
    assert_eq!(code, Some(0), "the refresh applies on a full disk: {out}");
    let kernel = |addr| {
        integration_tests::kernel_verdict(
            &topo.gateway,
            Addrs::GATEWAY_IF,
            &integration_tests::frames::ip(Addrs::CLIENT_V4, addr),
        )
    };
    assert_eq!(kernel(Addrs::SERVER_V4), 1, "dropped");
    assert_eq!(kernel(Addrs::TAKEDOWN_V4), 2, "passed");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !daemon.stderr().contains("cannot cache it") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let err = daemon.stderr();
    assert!(err.contains("cannot cache it") && err.contains("No space left"), "{err}");
    // Room again: the same content is accepted again and cached.
    disk.free();
    let (code, out) = cli(&["refresh"]);
    assert_eq!(code, Some(0), "{out}");
    let cached = std::fs::read_to_string(state.join("cache/feed.txt.cache")).unwrap();
    assert!(cached.ends_with("}\n198.51.100.7\n"), "{cached}");
    daemon.stop().unwrap();
    // A first start on a full filesystem (a new state directory): it enforces, and says what
    // it cannot write and how to fix it.
    disk.fill();
    let state2 = disk.0.join("state2");
    let state2_arg = ["--state-dir", state2.to_str().unwrap()];
    let all: Vec<&str> = args.iter().chain(&state2_arg).copied().collect();
    let daemon = Running::start(&topo.gateway, &all).unwrap();
    assert_eq!(kernel(Addrs::SERVER_V4), 1, "enforced on a full state filesystem");
    let err = daemon.stderr();
    assert!(err.contains("cannot write") && err.contains("free space on the filesystem"), "{err}");
    daemon.stop().unwrap();
    disk.free();
}

#[kernel_test]
fn endless_crowdsec_and_taxii_answers_are_cut_at_max_bytes() {
    use integration_tests::http::{Behaviour, HttpServer};
    let topo = Topology::new("fe").unwrap();
    // Chunks without end (bounded here at 2 GB), to each source kind's request.
    let endless = HttpServer::start(&topo.gateway, Behaviour::Chunked(2 << 30)).unwrap();
    let dir = TempDir::new("faults-endless");
    let key = dir.file("bouncer.key", "k\n");
    let file = dir.file("drop.txt", "203.0.113.7\n");
    let base = format!("http://{}/", endless.addr);
    let config = dir.file(
        "takedown.toml",
        &format!(
            "interfaces = [\"{}\"]\n\
             [[list]]\nname = \"local\"\nfile = \"{file}\"\n\
             [[list]]\nname = \"cs\"\nmax_bytes = 1048576\ntimeout = 30\n\
             crowdsec = {{ url = \"{base}\", api_key_file = \"{key}\" }}\n\
             [[list]]\nname = \"tx\"\nmax_bytes = 1048576\ntimeout = 30\ninsecure = true\n\
             taxii = {{ url = \"{base}api1/\", collection = \"91a7b528-80eb-42ed-a74d-c6fbd5a26116\" }}\n",
            Addrs::GATEWAY_IF
        ),
    );
    let place = PinPlace::new("faults-endless");
    let daemon = place.start(&topo.gateway, &["run", "--config", &config]);
    assert!(blocked(&topo, &place, "203.0.113.7"), "the file list is enforced");
    let (_, status, _) = place.cli(&topo.gateway, &["status"]);
    for list in ["cs", "tx"] {
        let line = status.lines().find(|l| l.starts_with(&format!("list {list}:"))).unwrap();
        assert!(line.contains("exceeds the 1048576 byte limit (max_bytes)"), "{status}");
    }
    let rss_mib = daemon.rss_kib() / 1024;
    assert!(rss_mib < 100, "the daemon holds {rss_mib} MiB");
    daemon.stop().unwrap();
}
