//! The connection journal with real traffic: an inside host that talked to an address before
//! it was listed is named (log, status, hosts report, metric, `takedown exposed`) when the
//! address is added, apart from a host a listed address only reached; a flood of one flow is
//! one row, 50,000 distinct connections 50,000 rows; hours older than `days` are deleted; a
//! damaged hour is named and the rest still reads; `journal purge` deletes it.

use std::{
    net::{SocketAddr, TcpListener, TcpStream, UdpSocket},
    time::Duration,
};

use filter_common::{CFG_FLAGS, CFG_JOURNAL};
use integration_tests::{PinPlace, TempDir, kernel_test, process::Running, tmux::Tmux};
use serde_json::Value;
use takedown::maps::{FilterMaps, pins::Pins};
use td_netns::{Addrs, Topology, in_netns, udp_count};

const PORT: u16 = 8443;

fn server() -> SocketAddr {
    SocketAddr::new(Addrs::ip(Addrs::SERVER_V4), PORT)
}

/// `n` TCP connections from the inside client to the server; how many were accepted.
fn connect(topo: &Topology, n: usize) -> usize {
    in_netns(&topo.client, move || {
        Ok((0..n)
            .filter(|_| TcpStream::connect_timeout(&server(), Duration::from_secs(1)).is_ok())
            .count())
    })
    .unwrap()
}

/// Starts the daemon on both gateway interfaces with the journal on for `days` (the inside
/// interface says who is inside).
fn start(place: &PinPlace, topo: &Topology, list: &str, days: &str) -> Running {
    let (inside, outside) = (Addrs::GATEWAY_IF, Addrs::OUTSIDE_IF);
    let args = ["run", "-i", inside, "-i", outside, "-l", list, "--block-own", "--journal", days];
    let mut args = args.to_vec();
    args.extend(["--journal-inside", inside]);
    place.start(&topo.gateway, &args)
}

/// UDP datagrams from `src` (in `ns`) to `dst`, one to each of `ports`.
fn udp_to_ports(
    ns: &td_netns::NetNs,
    src: &str,
    dst: &'static str,
    ports: std::ops::RangeInclusive<u16>,
) {
    let src = Addrs::ip(src);
    in_netns(ns, move || {
        let s = UdpSocket::bind(SocketAddr::new(src, 0))?;
        for p in ports {
            s.send_to(b"x", SocketAddr::new(Addrs::ip(dst), p))?;
            // Paced: a burst could overflow the veth's 256-frame ring before XDP sees it.
            if p % 50 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        Ok(())
    })
    .unwrap();
}

/// The metrics text the daemon serves in `ns`.
fn metrics(ns: &td_netns::NetNs) -> String {
    integration_tests::http::get_in(ns, "127.0.0.1:9645", "/metrics", "")
}

/// Waits (at most 15 s) until the daemon logs `what`.
fn wait_log(run: &Running, what: &str) {
    let said = || run.stderr().contains(what);
    integration_tests::wait_until(&format!("not logged: {what}"), 15, said, || run.stderr());
}

/// `takedown exposed ARGS --json`, parsed.
fn exposed(place: &PinPlace, topo: &Topology, args: &[&str]) -> Value {
    let mut a = vec!["exposed", "--json"];
    a.extend(args);
    let (code, out, err) = place.cli(&topo.gateway, &a);
    assert_eq!(code, Some(0), "{out}{err}");
    serde_json::from_str(&out).unwrap()
}

#[kernel_test]
fn a_host_that_talked_before_the_listing_is_named_when_the_address_is_added() {
    let place = PinPlace::new("journal");
    let dir = TempDir::new("journal");
    let list = dir.file("list.txt", "198.51.100.200\n");
    let topo = Topology::new("jr").unwrap();
    let listener = in_netns(&topo.internet, || Ok(TcpListener::bind(server())?)).unwrap();
    let run = start(&place, &topo, &list, "14");
    assert_eq!(connect(&topo, 3), 3, "the server answers before the listing");
    // 50,000 distinct connections (UDP to as many ports of an address no host has), and a
    // listed-to-be address that only reaches the inside host (its datagrams arrive outside).
    udp_to_ports(&topo.client, Addrs::CLIENT_V4, "198.51.100.8", 1..=50_000);
    udp_to_ports(&topo.internet, Addrs::TAKEDOWN_V4, Addrs::CLIENT_V4, 7000..=7002);
    // A flood of one UDP flow: 100,000 datagrams from one socket.
    let (client, srv) = (Addrs::ip(Addrs::CLIENT_V4), Addrs::ip(Addrs::SERVER_V4));
    let hour = hour_now();
    let got = udp_count(&topo.client, client, &topo.internet, srv, 100_000, Duration::from_secs(3))
        .unwrap();
    assert!(got > 0, "the flood reached the server");
    // The writer empties the flow slots when the hour turns: then the flood may count twice.
    let flood_reports = if hour_now() == hour { 1 } else { 2 };
    // The server by `takedown add`, the scanner by a refresh of the list file: the daemon
    // looks each new entry up in the journal in the background.
    let (code, out, err) = place.cli(&topo.gateway, &["add", Addrs::SERVER_V4]);
    assert_eq!(code, Some(0), "{out}{err}");
    wait_log(&run, &format!("exposed host {} contacted {}", Addrs::CLIENT_V4, Addrs::SERVER_V4));
    std::fs::write(&list, format!("198.51.100.200\n{}\n", Addrs::TAKEDOWN_V4)).unwrap();
    let (code, out, err) = place.cli(&topo.gateway, &["refresh"]);
    assert_eq!(code, Some(0), "{out}{err}");
    wait_log(&run, &format!("host {} was reached by {}", Addrs::CLIENT_V4, Addrs::TAKEDOWN_V4));
    let (code, out, err) = place.cli(&topo.gateway, &["status"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("1 inside host(s) found to have contacted an address before"), "{out}");
    assert!(metrics(&topo.gateway).contains("\ntakedown_exposed_hosts 1\n"));
    let (_, out, _) = place.cli(&topo.gateway, &["hosts"]);
    assert!(out.contains(&format!("{}  ", Addrs::CLIENT_V4)), "{out}");
    assert!(out.contains("; contacted before it was listed: "), "{out}");
    // The scanner only reached the host: said apart, not counted.
    let scan = exposed(&place, &topo, &["--entry", Addrs::TAKEDOWN_V4]);
    assert_eq!(scan["exposed"][0]["contacts"].as_array().unwrap().len(), 3, "{scan}");
    assert_eq!(scan["exposed"][0]["contacts"][0]["opened_by"], "remote", "{scan}");
    // 50,000 distinct connections: 50,000 rows.
    let wide = exposed(&place, &topo, &["--entry", "198.51.100.8"]);
    assert_eq!(wide["exposed"][0]["contacts"].as_array().unwrap().len(), 50_000);
    on_demand(&place, &topo, &dir, flood_reports);
    watch_shows_it(&place);
    // Now listed: the connection is dropped.
    assert_eq!(connect(&topo, 1), 0, "listed now");
    drop(listener);
    run.stop().unwrap();
    // The host table keeps the finding: a new daemon counts the host.
    let run = start(&place, &topo, &list, "14");
    assert!(metrics(&topo.gateway).contains("\ntakedown_exposed_hosts 1\n"), "after a restart");
    run.stop().unwrap();
}

/// The hour of the wall clock (the writer empties the kernel's flow slots when it turns).
fn hour_now() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.expect("a clock after 1970").as_secs() / 3600
}

/// `takedown watch` shows the newest exposure under its title.
fn watch_shows_it(place: &PinPlace) {
    let tmux = Tmux::new("journal-watch");
    let bin = integration_tests::process::takedown_bin();
    tmux.start("w", &format!("{} watch {}", bin.display(), place.args().join(" ")));
    let line = format!("exposed: {} -> {}", Addrs::CLIENT_V4, Addrs::SERVER_V4);
    let shown = || tmux.screen("w").contains(&line);
    integration_tests::wait_until("watch shows the exposure", 10, shown, || tmux.screen("w"));
    assert!(tmux.screen("w").contains("before it was listed ("), "{}", tmux.screen("w"));
}

#[kernel_test]
fn a_damaged_hour_is_named_and_purge_deletes_the_journal() {
    let place = PinPlace::new("journal-damage");
    let dir = TempDir::new("journal-damage");
    let list = dir.file("list.txt", "198.51.100.200\n");
    let topo = Topology::new("jd").unwrap();
    let listener = in_netns(&topo.internet, || Ok(TcpListener::bind(server())?)).unwrap();
    // An hour older than `days` is deleted when the journal starts.
    let journal = std::path::Path::new(&place.state_dir()).join("journal");
    std::fs::create_dir_all(&journal).unwrap();
    std::fs::write(journal.join("2020-01-01T00.tdj"), b"").unwrap();
    let run = start(&place, &topo, &list, "1");
    // The directory was there with the umask's mode: the journal makes it private.
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(journal.metadata().unwrap().permissions().mode() & 0o777, 0o700);
    assert_eq!(connect(&topo, 2), 2);
    // SIGKILL once a block is written: what the writer held is lost (its last seconds at
    // most), not what it wrote.
    let hours = || -> Vec<std::path::PathBuf> {
        let files = std::fs::read_dir(&journal).unwrap().flatten().map(|e| e.path());
        let mut files: Vec<_> = files.filter(|p| p.metadata().unwrap().len() > 0).collect();
        files.sort();
        files
    };
    integration_tests::wait_until("no block written", 15, || !hours().is_empty(), || run.stderr());
    run.kill();
    assert!(!journal.join("2020-01-01T00.tdj").exists(), "the hour older than `days` is gone");
    // No daemon runs: `takedown add` looks the entry up itself.
    let (code, out, err) = place.cli(&topo.gateway, &["add", Addrs::SERVER_V4]);
    assert_eq!(code, Some(0), "{out}{err}");
    let said = format!("exposed host {} contacted {}", Addrs::CLIENT_V4, Addrs::SERVER_V4);
    assert!(out.contains(&said) && out.contains("no daemon runs"), "{out}{err}");
    let (_, out, _) = place.cli(&topo.gateway, &["hosts"]);
    assert!(out.contains("; contacted before it was listed: 2 connection(s)"), "{out}");
    // Found only in the journal: no events, and no empty fields for them.
    assert!(!out.contains(" []") && !out.contains(" via  on"), "{out}");
    // The newest hour gets a block cut short (a crash in the middle of a write) followed by
    // a copy of its good blocks (written after a restart); an old hour is junk.
    let newest = hours().pop().unwrap();
    let good = std::fs::read(&newest).unwrap();
    let mut bytes = good.clone();
    bytes.extend(b"TDJ1\x40\x00\x00\x00");
    bytes.extend(&good);
    std::fs::write(&newest, &bytes).unwrap();
    std::fs::write(journal.join("2026-01-01T00.tdj"), b"junk").unwrap();
    let mut a = vec!["exposed", "--json", "--entry", Addrs::SERVER_V4];
    let (code, out, err) = place.cli(&topo.gateway, &a);
    assert_eq!(code, Some(0), "{out}{err}");
    let found: Value = serde_json::from_str(&out).unwrap();
    // The blocks after the damaged one are read: the 2 connections, twice.
    assert_eq!(found["exposed"][0]["contacts"][0]["count"], 4, "{found}");
    let unreadable = found["unreadable"].to_string();
    let name = newest.file_name().unwrap().to_str().unwrap();
    assert!(unreadable.contains(name) && unreadable.contains("cut short"), "{unreadable}");
    assert!(unreadable.contains("2026-01-01T00.tdj"), "{unreadable}");
    // An hour that cannot be deleted (a directory of its name) stays and is named; the
    // others still go.
    let kept = hours().len();
    let stuck = journal.join("2026-01-02T00.tdj");
    std::fs::create_dir(&stuck).unwrap();
    let (code, out, err) = place.cli(&topo.gateway, &["journal", "purge"]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains(&format!("deleted {kept} hour(s)")), "{out}");
    assert!(err.contains("1 hour file(s) could not be deleted: ") && err.contains("T00.tdj"));
    std::fs::remove_dir(&stuck).unwrap();
    // Nothing left to read: said, not taken for an all-clear.
    a.truncate(4);
    let (code, out, err) = place.cli(&topo.gateway, &a);
    assert_eq!((code, out.as_str()), (Some(1), ""), "{err}");
    assert!(err.contains("the connection journal in ") && err.contains(" holds no hour"), "{err}");
    drop(listener);
}

/// `takedown exposed` on the server: the host, its TCP connections (3, one row) and the flood
/// (one row); every loaded entry; a list file that is not loaded.
fn on_demand(place: &PinPlace, topo: &Topology, dir: &TempDir, flood_reports: u64) {
    let found = exposed(place, topo, &["--entry", Addrs::SERVER_V4]);
    let hosts = found["exposed"].as_array().unwrap();
    assert_eq!(hosts.len(), 1, "{found}");
    assert_eq!(hosts[0]["host"], Addrs::CLIENT_V4);
    let contacts = hosts[0]["contacts"].as_array().unwrap();
    let tcp: Vec<&Value> = contacts.iter().filter(|c| c["proto"] == "tcp").collect();
    assert_eq!(tcp.len(), 1, "{found}");
    assert_eq!((tcp[0]["port"].as_u64(), tcp[0]["count"].as_u64()), (Some(PORT.into()), Some(3)));
    assert!(tcp[0]["first"].as_u64() <= tcp[0]["last"].as_u64());
    let udp: Vec<&Value> = contacts.iter().filter(|c| c["proto"] == "udp").collect();
    assert_eq!(udp.len(), 1, "one row for the flood: {found}");
    assert!(
        udp[0]["count"].as_u64().unwrap() <= flood_reports,
        "a flood of one flow is reported once, whatever CPUs it reached: {found}"
    );
    // The whole loaded list (every entry) finds the same host; a file that is not loaded too.
    assert_eq!(exposed(place, topo, &[])["exposed"].as_array().unwrap().len(), 1);
    let other = dir.file("other.txt", &format!("# not loaded\n{}/24\n", Addrs::SERVER_V4));
    // An entry with host bits set is looked for as its network, and said so.
    let wide = format!("{}/24", Addrs::SERVER_V4);
    let (code, out, err) = place.cli(&topo.gateway, &["exposed", "--json", "--entry", &wide]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(err.contains("has host bits set: looking for 198.51.100.0/24"), "{err}");
    let by_file = exposed(place, topo, &["--file", &other]);
    assert_eq!(by_file["exposed"][0]["contacts"][0]["entry"], "198.51.100.0/24");
    // A bad line is named and the good ones looked for; a file of no address is refused
    // (not taken for every loaded entry).
    let mixed = dir.file("mixed.txt", &format!("{}\nbogus line\n", Addrs::SERVER_V4));
    let (code, out, err) = place.cli(&topo.gateway, &["exposed", "--json", "--file", &mixed]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(err.contains("mixed.txt:2: skipped: "), "{err}");
    let none = dir.file("none.txt", "# comments only\nexample.com\nnot an address\n");
    let (code, out, err) = place.cli(&topo.gateway, &["exposed", "--file", &none]);
    assert_eq!((code, out.as_str()), (Some(1), ""), "{err}");
    assert!(err.contains("none.txt holds no address (1 line(s) skipped, 1 domain(s))"), "{err}");
    // The CSV to mail: a header, then a line a contact.
    let (code, out, err) =
        place.cli(&topo.gateway, &["exposed", "--csv", "--entry", Addrs::SERVER_V4]);
    assert_eq!(code, Some(0), "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "host,remote,entry,protocol,port,opened_by,first,last,connections");
    let tcp = format!("{0},{1},{1}/32,tcp,{PORT},inside,", Addrs::CLIENT_V4, Addrs::SERVER_V4);
    let row = lines.iter().find(|l| l.starts_with(&tcp)).unwrap_or_else(|| panic!("{out}"));
    assert!(row.ends_with(",3"), "{row}");
    assert_eq!(lines.len(), 3, "the TCP contact and the flood's: {out}");
}

#[kernel_test]
fn with_the_journal_off_the_kernel_reports_nothing_and_nothing_is_written() {
    let place = PinPlace::new("journal-off");
    let dir = TempDir::new("journal-off");
    let list = dir.file("list.txt", "198.51.100.200\n");
    let topo = Topology::new("jo").unwrap();
    let listener = in_netns(&topo.internet, || Ok(TcpListener::bind(server())?)).unwrap();
    let run =
        place.start(&topo.gateway, &["run", "-i", Addrs::GATEWAY_IF, "-l", &list, "--block-own"]);
    let maps = FilterMaps::open(&Pins::new(place.pin_dir())).unwrap();
    assert_eq!(maps.addr.settings.get(CFG_FLAGS).unwrap() & CFG_JOURNAL, 0, "no report asked");
    assert_eq!(connect(&topo, 2), 2);
    let (code, out, err) = place.cli(&topo.gateway, &["add", Addrs::SERVER_V4]);
    assert_eq!(code, Some(0), "{out}{err}");
    std::thread::sleep(Duration::from_secs(1));
    let journal = std::path::Path::new(&place.state_dir()).join("journal");
    assert!(!journal.exists(), "no journal is written");
    assert!(!run.stderr().contains("exposed host"), "{}", run.stderr());
    // No journal is no all-clear: `exposed` says there is none.
    let (code, out, err) = place.cli(&topo.gateway, &["exposed", "--entry", Addrs::SERVER_V4]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(err.contains("there is no connection journal in "), "{err}");
    drop(listener);
    run.stop().unwrap();
}

#[kernel_test]
fn a_crowdsec_decision_finds_the_host_that_talked_to_its_address_before() {
    let ban = |value: &str| {
        format!(
            r#"{{"scope":"Ip","value":"{value}","type":"ban","duration":"1h","origin":"crowdsec"}}"#
        )
    };
    let topo = Topology::new("jc").unwrap();
    let key = "journal-bouncer-key";
    let startup = format!(r#"{{"new":[{}],"deleted":null}}"#, ban("198.51.100.200"));
    let lapi = integration_tests::lapi::Lapi::start(&topo.gateway, key, &startup).unwrap();
    let dir = TempDir::new("journal-crowdsec");
    let config = dir.crowdsec_config(&lapi.url(), key);
    let text = std::fs::read_to_string(&config).unwrap();
    let journal = format!("[journal]\ndays = 14\ninside = [\"{}\"]\n", Addrs::GATEWAY_IF);
    let siem = dir.0.join("new-hosts.jsonl");
    let report = format!("[report]\nnew_host_log = \"{}\"\n", siem.display());
    std::fs::write(&config, text + &journal + &report).unwrap();
    let place = PinPlace::new("journal-crowdsec");
    let listener = in_netns(&topo.internet, || Ok(TcpListener::bind(server())?)).unwrap();
    let run = place.start(&topo.gateway, &["run", "--config", &config]);
    assert_eq!(connect(&topo, 2), 2, "the server answers before the decision");
    lapi.push_delta(&format!(r#"{{"new":[{}],"deleted":null}}"#, ban(Addrs::SERVER_V4)));
    wait_log(&run, &format!("exposed host {} contacted {}", Addrs::CLIENT_V4, Addrs::SERVER_V4));
    // The SIEM's line (written after the log line): the host and its contacts.
    let read = || std::fs::read_to_string(&siem).unwrap_or_default();
    let written = || read().contains("takedown_exposed_host");
    integration_tests::wait_until("no SIEM line", 10, written, || run.stderr());
    let lines = read();
    let exposed = lines.lines().find(|l| l.contains("takedown_exposed_host")).unwrap();
    let line: Value = serde_json::from_str(exposed).unwrap();
    assert_eq!(line["event"], "takedown_exposed_host", "{lines}");
    assert_eq!(line["exposed"]["host"], Addrs::CLIENT_V4, "{lines}");
    assert_eq!(line["exposed"]["contacts"][0]["remote"], Addrs::SERVER_V4, "{lines}");
    assert_eq!(line["exposed"]["contacts"][0]["count"], 2, "{lines}");
    assert_eq!(connect(&topo, 1), 0, "banned now");
    drop(listener);
    run.stop().unwrap();
}
