//! The Prometheus endpoint, scraped over HTTP inside the test's gateway namespace after known
//! traffic: the expected series with their values; a non-loopback address is refused.

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

use integration_tests::{
    PinPlace, TempDir, kernel_test,
    process::{Running, run_cli},
};
use td_netns::{Addrs, NetNs, Topology, in_netns, ping, udp_count};

fn get(ns: &NetNs, path: &str) -> String {
    let path = path.to_string();
    in_netns(ns, move || {
        let mut s = TcpStream::connect("127.0.0.1:9645")?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    })
    .unwrap()
}

/// The value of the series written exactly as `series` (name and labels).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

#[kernel_test]
fn the_metrics_endpoint_reports_traffic_lists_and_hosts() {
    let topo = Topology::new("mx").unwrap();
    let dir = TempDir::new("metrics");
    let list = dir.file("drop.txt", "203.0.113.7\n");
    let run = Running::start(
        &topo.gateway,
        &["run", "-i", Addrs::GATEWAY_IF, "-l", &list, "--interval", "0"],
    )
    .unwrap();
    assert!(run.stdout().contains("metrics on http://127.0.0.1:9645/metrics"), "{}", run.stdout());
    let sent = udp_count(
        &topo.client,
        Addrs::ip(Addrs::CLIENT_V4),
        &topo.internet,
        Addrs::ip(Addrs::TAKEDOWN_V4),
        3,
        Duration::from_millis(300),
    )
    .unwrap();
    assert_eq!(sent, 0);
    assert_eq!(ping(&topo.client, None, Addrs::SERVER_V4, 2).unwrap(), 2);
    std::thread::sleep(Duration::from_millis(200));
    let text = get(&topo.gateway, "/metrics");
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    let want = [
        (r#"takedown_packets_total{interface="td-g",verdict="dropped_dst"}"#, 3.0),
        (r#"takedown_dropped_packets_total{list="drop.txt",direction="dst"}"#, 3.0),
        (r#"takedown_dropped_packets_total{list="drop.txt",direction="src"}"#, 0.0),
        (r#"takedown_entries{map="ipv4"}"#, 1.0),
        (r#"takedown_list_entries{list="drop.txt"}"#, 1.0),
        (r#"takedown_refreshes_total{list="drop.txt",result="success"}"#, 1.0),
        (r#"takedown_refreshes_total{list="drop.txt",result="failure"}"#, 0.0),
        ("takedown_events_total", 3.0),
        ("takedown_events_suppressed_total", 0.0),
        ("takedown_infected_hosts", 1.0),
    ];
    for (series, v) in want {
        assert_eq!(value(&text, series), Some(v), "{series} in:\n{text}");
    }
    let passed =
        value(&text, r#"takedown_packets_total{interface="td-g",verdict="passed"}"#).unwrap();
    assert!(passed >= 2.0, "the echo requests passed: {passed}");
    assert!(
        value(&text, r#"takedown_last_refresh_success_timestamp_seconds{list="drop.txt"}"#)
            .unwrap()
            > 1.7e9
    );
    assert!(get(&topo.gateway, "/").starts_with("HTTP/1.1 404"));
    run.stop().unwrap();

    let out = run_cli(
        Some(&topo.gateway),
        &["run", "-i", Addrs::GATEWAY_IF, "-l", &list, "--metrics", "192.0.2.1:9645"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "refusing to serve metrics on 192.0.2.1:9645, which is not a loopback address"
        ),
        "{err}"
    );
}

#[kernel_test]
fn a_metrics_port_held_by_another_process_is_an_error_in_the_log_and_in_status() {
    let topo = Topology::new("mt").unwrap();
    let dir = TempDir::new("metrics-taken");
    let list = dir.file("drop.txt", "203.0.113.7\n");
    // Another process holds the port in the gateway's namespace.
    let squatter =
        in_netns(&topo.gateway, || Ok(std::net::TcpListener::bind("127.0.0.1:9646")?)).unwrap();
    let place = PinPlace::new("metrics-taken");
    let run = place.start(
        &topo.gateway,
        &["run", "-i", Addrs::GATEWAY_IF, "-l", &list, "--metrics", "127.0.0.1:9646"],
    );
    let why = "cannot serve metrics on 127.0.0.1:9646";
    let err = run.stderr();
    assert!(err.contains(why) && err.contains("in takedown's name"), "{err}");
    let (code, out, _) = place.cli(&topo.gateway, &["status"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(&format!("metrics: FAILED: {why}")), "{out}");
    let (_, json, _) = place.cli(&topo.gateway, &["status", "--json"]);
    assert!(json.contains("\"error\"") && json.contains(why), "{json}");
    run.stop().unwrap();
    drop(squatter);
}
