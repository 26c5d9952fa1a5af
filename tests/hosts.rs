//! The infected-host report end to end: real traffic from inside hosts to listed addresses,
//! an enforce list and a monitor list; `takedown hosts` lists exactly the senders that
//! contacted listed addresses, the SIEM log has one line per new host, `takedown top` ranks the
//! entries, and the table survives a restart. A listed scanner reaching many inside hosts makes
//! none of them infected and pushes no infected host out.

use std::time::{Duration, Instant};

use integration_tests::{PinPlace, TempDir, frames, kernel_test, kernel_verdict, process::Running};
use serde_json::Value;
use td_netns::{Addrs, Topology, ping, udp_count};

fn cli(topo: &Topology, place: &PinPlace, args: &[&str]) -> String {
    let (code, out, err) = place.cli(&topo.gateway, args);
    assert_eq!(code, Some(0), "takedown {args:?}: {err}");
    out
}

#[kernel_test]
fn the_host_report_names_exactly_the_inside_hosts_that_contacted_listed_addresses() {
    let place = PinPlace::new("hosts");
    let topo = Topology::new("hr").unwrap();
    let dir = TempDir::new("hosts");
    let siem = place.state.0.join("new-hosts.jsonl");
    let config = dir.file(
        "takedown.toml",
        &format!(
            "interfaces = [\"{}\"]\n[report]\nnew_host_log = \"{}\"\n\
             [[list]]\nname = \"drop\"\nfile = \"{}\"\n\
             [[list]]\nname = \"watch\"\nfile = \"{}\"\nmonitor = true\n",
            Addrs::GATEWAY_IF,
            siem.display(),
            dir.file("drop.txt", "203.0.113.7\n2001:db8:bad::7\n"),
            dir.file("watch.txt", "198.51.100.7\n"),
        ),
    );
    let mut args: Vec<String> = vec!["run".into(), "--config".into(), config];
    args.extend(place.args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let daemon = Running::start(&topo.gateway, &args).unwrap();

    let c = &topo.client;
    let udp = udp_count(
        c,
        Addrs::ip(Addrs::CLIENT_V4),
        &topo.internet,
        Addrs::ip(Addrs::TAKEDOWN_V4),
        5,
        Duration::from_millis(300),
    )
    .unwrap();
    assert_eq!(udp, 0, "enforced");
    assert_eq!(ping(c, Some(Addrs::LISTED_SRC_V4), Addrs::TAKEDOWN_V4, 2).unwrap(), 0, "enforced");
    assert_eq!(ping(c, None, Addrs::SERVER_V4, 2).unwrap(), 2, "a monitor list lets traffic pass");
    assert_eq!(ping(c, None, Addrs::GATEWAY_V4, 2).unwrap(), 2, "not listed: no report");
    assert_eq!(ping(c, None, Addrs::TAKEDOWN_V6, 2).unwrap(), 0, "enforced for IPv6 too");

    // The daemon saves the table every 2 s: poll until it holds every event.
    let end = Instant::now() + Duration::from_secs(15);
    let hosts: Vec<Value> = loop {
        let doc: Vec<Value> =
            serde_json::from_str(&cli(&topo, &place, &["hosts", "--json"])).unwrap();
        // Every event recorded: 7 for 192.0.2.10, 2 for 192.0.2.66, 2 for 2001:db8:1::10.
        let events: u64 = doc.iter().filter_map(|h| h["events"].as_u64()).sum();
        if events >= 11 || Instant::now() > end {
            break doc;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let addrs: Vec<&str> = hosts.iter().map(|h| h["address"].as_str().unwrap()).collect();
    let mut sorted = addrs.clone();
    sorted.sort();
    assert_eq!(sorted, ["192.0.2.10", "192.0.2.66", Addrs::CLIENT_V6], "{hosts:#?}");
    let h10 = hosts.iter().find(|h| h["address"] == "192.0.2.10").unwrap();
    assert_eq!(h10["contacted"], serde_json::json!(["198.51.100.7", "203.0.113.7"]));
    assert_eq!(h10["lists"], serde_json::json!(["drop", "watch"]));
    assert_eq!(h10["dropped"], 5, "5 UDP datagrams dropped");
    assert_eq!(h10["events"], 7, "and 2 monitored echo requests");
    assert!(
        h10["services"].as_array().unwrap().iter().any(|s| s.as_str().unwrap().starts_with("udp/"))
    );
    assert_eq!(h10["interfaces"], serde_json::json!(["td-g"]));
    let h66 = hosts.iter().find(|h| h["address"] == "192.0.2.66").unwrap();
    assert_eq!(
        (&h66["contacted"], &h66["services"]),
        (&serde_json::json!(["203.0.113.7"]), &serde_json::json!(["icmp"]))
    );
    let h6 = hosts.iter().find(|h| h["address"] == Addrs::CLIENT_V6).unwrap();
    assert_eq!(h6["contacted"], serde_json::json!([Addrs::TAKEDOWN_V6]));
    assert_eq!(
        (&h6["dropped"], &h6["services"]),
        (&serde_json::json!(2), &serde_json::json!(["icmp"]))
    );
    let csv = cli(&topo, &place, &["hosts", "--csv", "--since", "1h"]);
    assert_eq!(csv.lines().count(), 4, "{csv}");

    let log = std::fs::read_to_string(&siem).unwrap();
    assert_eq!(log.lines().count(), 3, "one line per new host: {log}");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&siem).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the new-host log names inside hosts: root's alone");
    assert!(log.lines().all(|l| l.contains("\"event\":\"takedown_infected_host\"")));

    let top: Vec<Value> = serde_json::from_str(&cli(
        &topo,
        &place,
        &["top", "-n", "5", "--json", "--interval", "0.2"],
    ))
    .unwrap();
    assert_eq!(top[0]["entry"], "203.0.113.7/32");
    assert_eq!(top[0]["packets"], 7, "5 UDP + 2 echo requests");
    assert_eq!(top[0]["lists"], serde_json::json!(["drop"]));
    let packets =
        |entry: &str| top.iter().find(|t| t["entry"] == entry).map(|t| t["packets"].clone());
    assert_eq!(packets("198.51.100.7/32"), Some(serde_json::json!(2)));
    assert_eq!(packets("2001:db8:bad::7/128"), Some(serde_json::json!(2)));

    eprintln!("$ takedown hosts\n{}", cli(&topo, &place, &["hosts"]));
    eprintln!("$ takedown top\n{}", cli(&topo, &place, &["top", "--interval", "0.2"]));
    // The table survives a restart.
    daemon.stop().unwrap();
    let daemon = Running::start(&topo.gateway, &args).unwrap();
    let doc: Vec<Value> = serde_json::from_str(&cli(&topo, &place, &["hosts", "--json"])).unwrap();
    assert_eq!(doc.len(), 3);
    daemon.stop().unwrap();
}

#[kernel_test]
fn a_listed_scanner_makes_no_infected_host_and_evicts_none() {
    let place = PinPlace::new("hosts-scan");
    let topo = Topology::new("hs").unwrap();
    let dir = TempDir::new("hosts-scan");
    let config = dir.file(
        "takedown.toml",
        &format!(
            "interfaces = [\"{}\"]\n[report]\nmax_hosts = 50\nevent_rate = 10000\n\
             event_burst = 10000\n[[list]]\nname = \"drop\"\nfile = \"{}\"\n",
            Addrs::GATEWAY_IF,
            dir.file("drop.txt", "203.0.113.7\n"),
        ),
    );
    let daemon = place.start(&topo.gateway, &["run", "--config", &config]);
    let gw = &topo.gateway;
    // One inside host talks to the listed address: infected.
    let out = frames::ip("192.0.2.10", Addrs::TAKEDOWN_V4);
    assert_eq!(kernel_verdict(gw, Addrs::GATEWAY_IF, &out), 1, "XDP_DROP");
    std::thread::sleep(Duration::from_millis(300));
    // Then the listed address reaches 61 other inside hosts (a scan): dropped, not infected.
    for k in 0..61 {
        let scan = frames::ip(Addrs::TAKEDOWN_V4, &format!("192.0.2.{}", 100 + k));
        assert_eq!(kernel_verdict(gw, Addrs::GATEWAY_IF, &scan), 1, "XDP_DROP");
    }
    let end = Instant::now() + Duration::from_secs(15);
    let hosts = loop {
        let doc: Vec<Value> =
            serde_json::from_str(&cli(&topo, &place, &["hosts", "--json"])).unwrap();
        if doc.len() >= 50 || Instant::now() > end {
            break doc;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(hosts.len(), 50, "the table's bound");
    let infected: Vec<&Value> = hosts.iter().filter(|h| h["sent"].as_u64() > Some(0)).collect();
    assert_eq!(infected.len(), 1, "{hosts:#?}");
    assert_eq!(infected[0]["address"], "192.0.2.10", "the real one stays");
    let text = cli(&topo, &place, &["hosts"]);
    assert!(text.starts_with("192.0.2.10  last seen"), "{text}");
    assert!(
        text.contains(
            "reached by listed addresses only (they sent nothing to them: not infected): 192.0.2."
        ),
        "{text}"
    );
    daemon.stop().unwrap();
}
