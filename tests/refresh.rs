//! Refreshes under traffic: the gap test (100 refreshes, zero listed packets through) and the
//! crash test (SIGKILL in the middle of applying a large diff); a file list that goes bad keeps
//! its content; lists refresh on their interval and on SIGHUP; a source that never answers
//! stalls nothing (the control socket, expiry and SIGTERM go on; the refresh fails at its
//! deadline and what is enforced stays), and a start enforces its cached copy without waiting
//! on it.

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use integration_tests::{
    PinPlace, TempDir,
    http::{Behaviour, HttpServer},
    kernel_test,
    process::{Running, takedown_bin},
};
use td_netns::{Addrs, Stream, Topology, ping};

fn cli(topo: &Topology, place: &PinPlace, args: &[&str]) -> (Option<i32>, String) {
    let (code, out, err) = place.cli(&topo.gateway, args);
    (code, out + &err)
}

fn start(topo: &Topology, place: &PinPlace, list: &str) -> Running {
    place.start(&topo.gateway, &["run", "-i", Addrs::GATEWAY_IF, "-l", list, "--block-own"])
}

#[kernel_test]
fn a_hundred_refreshes_let_no_listed_packet_through() {
    let place = PinPlace::new("gap");
    let topo = Topology::new("rg").unwrap();
    let dir = TempDir::new("refresh-gap");
    // Both contents block the listed source, but it moves: an exact entry in A, covered by a
    // prefix in B (so each refresh rewrites what matches it); each has one address the other
    // lacks.
    let a = "192.0.2.66\n203.0.113.7\n";
    let b = "192.0.2.64/28\n198.51.100.7\n";
    let list = dir.file("feed.txt", a);
    let daemon = start(&topo, &place, &list);
    let ip = Addrs::ip;
    let stream = Stream::start(
        &topo.client,
        ip(Addrs::LISTED_SRC_V4),
        &topo.internet,
        ip(Addrs::SERVER_V4),
        Duration::from_micros(200),
        Duration::from_secs(300),
    )
    .unwrap();
    let started = Instant::now();
    for i in 0..100 {
        let content = if i % 2 == 0 { b } else { a };
        dir.file("feed.txt", content);
        let (code, out) = cli(&topo, &place, &["refresh"]);
        assert_eq!(code, Some(0), "refresh {i}: {out}");
        if i % 25 == 0 || i == 99 {
            let blocked = |addr| place.blocked(&topo.gateway, Addrs::GATEWAY_IF, addr);
            let in_b = content == b;
            assert_eq!(blocked(Addrs::TAKEDOWN_V4), !in_b, "refresh {i}");
            assert_eq!(blocked(Addrs::SERVER_V4), in_b, "refresh {i}");
        }
    }
    let elapsed = started.elapsed();
    let (sent, got) = stream.stop();
    eprintln!(
        "gap test: 100 refreshes in {elapsed:?}; {sent} datagrams sent from the listed source, {got} received"
    );
    assert!(sent > 1000, "the stream ran: {sent}");
    assert_eq!(got, 0, "listed packets got through during refreshes");
    // The last content (A) is in force: 203.0.113.7 blocked, 198.51.100.7 reachable.
    assert_eq!(ping(&topo.client, None, Addrs::TAKEDOWN_V4, 2).unwrap(), 0);
    assert_eq!(ping(&topo.client, None, Addrs::SERVER_V4, 2).unwrap(), 2);
    daemon.stop().unwrap();
}

fn big_list(first_octet: u8, n: u32) -> String {
    addresses(first_octet, 0..n)
}

/// The addresses `first_octet`.0.0.0 + i for i in `range`, then the listed source 192.0.2.66.
fn addresses(first_octet: u8, range: std::ops::Range<u32>) -> String {
    let mut s = String::with_capacity(range.len() * 14);
    let base = u32::from(std::net::Ipv4Addr::new(first_octet, 0, 0, 0));
    for i in range {
        s.push_str(&std::net::Ipv4Addr::from(base + i).to_string());
        s.push('\n');
    }
    s.push_str("192.0.2.66\n");
    s
}

/// Entries in the maps, from `takedown status`.
fn ipv4_entries(topo: &Topology, place: &PinPlace) -> u64 {
    let (_, out) = cli(topo, place, &["status"]);
    let line = out.lines().find(|l| l.starts_with("entries: ")).unwrap_or_else(|| panic!("{out}"));
    line["entries: ".len()..].split_whitespace().next().unwrap().parse().unwrap()
}

#[kernel_test]
fn a_daemon_killed_while_applying_a_large_diff_leaves_a_working_filter() {
    let place = PinPlace::new("crash");
    let topo = Topology::new("rc").unwrap();
    let dir = TempDir::new("refresh-crash");
    let list = dir.file("feed.txt", &big_list(20, 200_000));
    let daemon = start(&topo, &place, &list);
    // 20,000 addresses go, 20,000 come: the maps (sized an eighth above 200,001) hold both
    // for the move, which happens in place.
    let next = addresses(20, 20_000..200_000) + &addresses(30, 0..20_000);
    dir.file("feed.txt", &next);
    // Ask for the refresh without waiting, and kill the daemon while it applies it.
    let mut args: Vec<String> = vec!["refresh".into()];
    args.extend(place.args());
    let mut refresh = topo
        .gateway
        .command(takedown_bin().to_str().unwrap())
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Inserts come first: once the last new address is in, deletions are under way. Kill then.
    let pins = takedown::maps::pins::Pins::new(place.pin_dir());
    let maps = takedown::maps::FilterMaps::open(&pins).unwrap();
    let last_new = [30, 0, 78, 31]; // 30.0.0.0 + 19,999
    let end = Instant::now() + Duration::from_secs(60);
    while maps.addr.v4.exact.get(&last_new).unwrap().is_none() && Instant::now() < end {
        std::thread::sleep(Duration::from_micros(200));
    }
    daemon.kill();
    let _ = refresh.wait();
    let held = ipv4_entries(&topo, &place);
    eprintln!(
        "crash test: the maps held {held} IPv4 entries after the kill (200001 before and after the refresh)"
    );
    assert!(held > 200_001, "the kill did not land in the middle of the apply: {held} entries");
    // The listed source is in both contents: still dropped, with no daemon.
    assert_eq!(ping(&topo.client, Some(Addrs::LISTED_SRC_V4), Addrs::GATEWAY_V4, 2).unwrap(), 0);
    // The next start converges to the list.
    let daemon = start(&topo, &place, &list);
    assert!(daemon.stdout().contains("adopted the pinned filter"), "{}", daemon.stdout());
    assert_eq!(ipv4_entries(&topo, &place), 200_001);
    let blocked = |addr| place.blocked(&topo.gateway, Addrs::GATEWAY_IF, addr);
    assert!(blocked("30.0.1.2"), "new");
    assert!(!blocked("20.0.1.2"), "gone");
    assert!(blocked("20.2.0.0"), "kept");
    daemon.stop().unwrap();
}

#[kernel_test]
fn lists_refresh_on_their_interval_and_on_sighup() {
    let place = PinPlace::new("sched");
    let topo = Topology::new("rs").unwrap();
    let dir = TempDir::new("refresh-sched");
    let a = dir.file("a.txt", "203.0.113.7\n");
    let b = dir.file("b.txt", "203.0.113.8\n");
    let config = dir.file(
        "takedown.toml",
        &format!(
            "interfaces = [\"{}\"]\n[guards]\nblock_own = true\n\
             [[list]]\nname = \"a\"\nfile = \"{a}\"\nrefresh = 1\n\
             [[list]]\nname = \"b\"\nfile = \"{b}\"\n",
            Addrs::GATEWAY_IF
        ),
    );
    let mut args: Vec<String> = vec!["run".into(), "--config".into(), config];
    args.extend(place.args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let daemon = Running::start(&topo.gateway, &args).unwrap();
    let blocked = |addr: &str| place.blocked(&topo.gateway, Addrs::GATEWAY_IF, addr);
    let wait_for = |addr: &str, want: bool| {
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if blocked(addr) == want {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    };
    // List a refreshes by itself every second.
    dir.file("a.txt", "198.51.100.7\n");
    assert!(wait_for("198.51.100.7", true), "list a was not refreshed on its interval");
    assert!(!blocked("203.0.113.7"));
    // List b has no interval: its change waits for SIGHUP.
    dir.file("b.txt", "198.51.100.8\n");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(blocked("203.0.113.8") && !blocked("198.51.100.8"), "b changed without being asked");
    let pid =
        takedown::daemon::state::StateDir::new(place.state_dir()).daemon_pid().expect("daemon pid");
    // SAFETY: signalling the daemon this test started.
    unsafe { libc::kill(pid, libc::SIGHUP) };
    assert!(wait_for("198.51.100.8", true), "SIGHUP did not refresh list b");
    assert!(!blocked("203.0.113.8"));
    daemon.stop().unwrap();
}

#[kernel_test]
fn a_file_list_that_goes_bad_keeps_its_content_in_force() {
    let place = PinPlace::new("bad-file");
    let topo = Topology::new("rb").unwrap();
    let dir = TempDir::new("refresh-bad-file");
    let list = dir.file("feed.txt", "203.0.113.7\n198.51.100.7\n");
    let daemon = start(&topo, &place, &list);
    let path = std::path::PathBuf::from(&list);
    let fifo = |p: &std::path::Path| {
        let out = std::process::Command::new("mkfifo").arg(p).output().unwrap();
        assert!(out.status.success());
    };
    type Make<'a> = &'a dyn Fn(&std::path::Path);
    let cases: [(&str, Make); 4] = [
        ("deleted", &|_| {}),
        ("a directory", &|p| std::fs::create_dir(p).unwrap()),
        ("a FIFO", &fifo),
        ("junk", &|p| std::fs::write(p, "<html>\n<body>gone</body>\n").unwrap()),
    ];
    for (what, make) in cases {
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_dir(&path);
        make(&path);
        let (code, out) = cli(&topo, &place, &["refresh"]);
        assert_eq!(code, Some(1), "{what}: {out}");
        assert!(
            out.contains("FAILED") && out.contains("keeping the previous content"),
            "{what}: {out}"
        );
        assert!(place.blocked(&topo.gateway, Addrs::GATEWAY_IF, Addrs::TAKEDOWN_V4), "{what}");
        assert!(place.blocked(&topo.gateway, Addrs::GATEWAY_IF, Addrs::SERVER_V4), "{what}");
    }
    daemon.stop().unwrap();
}

#[kernel_test]
fn a_source_that_never_answers_stalls_nothing() {
    let topo = Topology::new("rn").unwrap();
    let gw = &topo.gateway;
    let body = format!("{}\n", Addrs::TAKEDOWN_V4);
    let server = HttpServer::start(gw, Behaviour::Serve { body, etag: "\"v1\"".into() }).unwrap();
    let dir = TempDir::new("refresh-stall");
    let extra = "refresh = 1\ntimeout = 60\nattempts = 1\ndeadline = 5\n";
    let config = dir.url_config("feed", &server.url("/list.txt"), extra);
    let place = PinPlace::new("refresh-stall");
    let daemon = place.start(gw, &["run", "--config", &config]);
    // From now on the server answers only after a minute: each refresh waits on it.
    server.set(Behaviour::Slow(Duration::from_secs(60)));
    std::thread::sleep(Duration::from_secs(2));
    let blocked = |a| place.blocked(gw, Addrs::GATEWAY_IF, a);
    // The control socket answers at once, and a manual entry ends on time meanwhile.
    let asked = Instant::now();
    let (code, out) = cli(&topo, &place, &["add", "198.51.100.9", "--for", "2s"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(asked.elapsed() < Duration::from_secs(3), "add took {:?}", asked.elapsed());
    assert!(blocked("198.51.100.9"), "{out}");
    while blocked("198.51.100.9") && asked.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(asked.elapsed() < Duration::from_secs(5), "ended after {:?}", asked.elapsed());
    // A refresh asked by hand (and SIGHUP) waits for its own result, not the loop.
    let by_hand = std::process::Command::new("ip")
        .args(["netns", "exec", gw.name()])
        .arg(takedown_bin())
        .args(["refresh", "feed"])
        .args(place.args())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // SAFETY: signalling the daemon we started.
    unsafe { libc::kill(daemon.pid() as i32, libc::SIGHUP) };
    std::thread::sleep(Duration::from_millis(500));
    let asked = Instant::now();
    let (code, out) = cli(&topo, &place, &["add", "198.51.100.10"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(asked.elapsed() < Duration::from_secs(3), "add took {:?}", asked.elapsed());
    let answer = by_hand.wait_with_output().unwrap();
    let answer = String::from_utf8_lossy(&answer.stdout).into_owned()
        + &String::from_utf8_lossy(&answer.stderr);
    assert!(answer.contains("deadline of 5 s"), "the refresh's own result: {answer}");
    // The refresh fails at its deadline; what is enforced stays.
    let end = Instant::now() + Duration::from_secs(15);
    let mut status = String::new();
    while !status.contains("deadline of 5 s") && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(300));
        status = cli(&topo, &place, &["status"]).1;
    }
    assert!(status.contains("the refresh took longer than its deadline of 5 s"), "{status}");
    assert!(blocked(Addrs::TAKEDOWN_V4));
    // SIGINT is answered at once, a refresh under way or not.
    let asked = Instant::now();
    let (exit, log) = daemon.stop().unwrap();
    assert!(exit.success(), "{log}");
    assert!(asked.elapsed() < Duration::from_secs(3), "stop took {:?}", asked.elapsed());
}

#[kernel_test]
fn a_start_enforces_the_cached_copy_at_once_when_the_source_is_slow() {
    let topo = Topology::new("rc").unwrap();
    let gw = &topo.gateway;
    let body = format!("{}\n", Addrs::TAKEDOWN_V4);
    let server = HttpServer::start(gw, Behaviour::Serve { body, etag: "\"v1\"".into() }).unwrap();
    let dir = TempDir::new("refresh-cache-first");
    // Default timeout and attempts: a dead source would hold a start for a minute and more.
    let config = dir.url_config("feed", &server.url("/list.txt"), "");
    let place = PinPlace::new("refresh-cache-first");
    place.start(gw, &["run", "--config", &config]).stop().unwrap();
    server.set(Behaviour::Slow(Duration::from_secs(120)));
    let asked = Instant::now();
    let daemon = place.start(gw, &["run", "--config", &config]);
    assert!(asked.elapsed() < Duration::from_secs(10), "the start took {:?}", asked.elapsed());
    assert!(place.blocked(gw, Addrs::GATEWAY_IF, Addrs::TAKEDOWN_V4));
    let status = cli(&topo, &place, &["status"]).1;
    assert!(status.contains("using the cached copy of 20"), "{status}");
    assert!(status.contains("until the first refresh, under way"), "{status}");
    let asked = Instant::now();
    daemon.stop().unwrap();
    assert!(asked.elapsed() < Duration::from_secs(3), "stop took {:?}", asked.elapsed());
}

#[kernel_test]
fn a_refresh_asked_while_its_list_is_being_fetched_gets_a_fetch_of_its_own() {
    let topo = Topology::new("rw").unwrap();
    let gw = &topo.gateway;
    let serve = |body: &str, etag: &str| {
        let now = Behaviour::Serve { body: format!("{body}\n"), etag: format!("\"{etag}\"") };
        Behaviour::Delayed(Duration::from_secs(3), Box::new(now))
    };
    let server = HttpServer::start(gw, serve(Addrs::TAKEDOWN_V4, "v1")).unwrap();
    let dir = TempDir::new("refresh-own-fetch");
    let config = dir.url_config("feed", &server.url("/list.txt"), "attempts = 1\n");
    let place = PinPlace::new("refresh-own-fetch");
    let daemon = place.start(gw, &["run", "--config", &config]);
    // A SIGHUP starts a fetch that will bring the old content; the list changes meanwhile.
    // SAFETY: signalling the daemon we started.
    unsafe { libc::kill(daemon.pid() as i32, libc::SIGHUP) };
    std::thread::sleep(Duration::from_secs(1));
    server.set(serve("198.51.100.77", "v2"));
    let (code, out) = cli(&topo, &place, &["refresh", "feed"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(place.blocked(gw, Addrs::GATEWAY_IF, "198.51.100.77"), "the change asked for: {out}");
    daemon.stop().unwrap();
}
