//! The Prometheus endpoint, scraped over HTTP inside the test's gateway namespace after known
//! traffic: the expected series with their values, every series the Grafana dashboard queries;
//! a non-loopback address is refused; a hostile client never delays the daemon.

use std::{
    io::{Read, Write},
    net::TcpStream,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use integration_tests::{
    PinPlace, TempDir, kernel_test,
    process::{Running, run_cli},
};
use td_netns::{Addrs, NetNs, Topology, in_netns, ping, udp_count};

fn get(ns: &NetNs, path: &str) -> String {
    get_from(ns, "127.0.0.1:9645", path)
}

fn get_from(ns: &NetNs, addr: &str, path: &str) -> String {
    get_with(ns, addr, path, "")
}

use integration_tests::http::get_in as get_with;

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
    // The host table fills when the daemon reads the events: poll until it has.
    let series = "takedown_infected_hosts";
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = get(&topo.gateway, "/metrics");
        if value(&text, series) == Some(1.0) || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    dashboard_queries_only(&text);
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

/// Runs `program` with `input` on its stdin; its exit code and output.
fn checker(program: &str, args: &[&str], input: &str) -> (Option<i32>, String) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} (cargo xtask setup installs it): {e}"));
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code(), text + &String::from_utf8_lossy(&out.stderr))
}

/// The official Python client's OpenMetrics parser (strict: `# EOF`, HELP and TYPE of each
/// family, `_total` suffixes, units).
const OPENMETRICS_CHECK: &str = "import sys\n\
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse\n\
families = list(parse(sys.stdin.read()))\n\
print(len(families), 'families')\n";

#[kernel_test]
fn both_formats_pass_the_reference_checkers_and_the_readme_names_every_series() {
    let topo = Topology::new("mf").unwrap();
    let dir = TempDir::new("metrics-formats");
    let list = dir.file("drop.txt", "203.0.113.7\n");
    let place = PinPlace::new("metrics-formats");
    let args = ["run", "-i", Addrs::GATEWAY_IF, "-l", &list, "--metrics", "127.0.0.1:9648"];
    let run = place.start(&topo.gateway, &args);
    let scrape = |headers: &str| get_with(&topo.gateway, "127.0.0.1:9648", "/metrics", headers);
    // As promtool and curl ask: the Prometheus text format, promtool-clean.
    let text = scrape("Accept: text/plain;version=0.0.4\r\n");
    assert!(text.contains("content-type: text/plain; version=0.0.4"), "{text}");
    let body = text.split_once("\r\n\r\n").unwrap().1;
    let (code, out) = checker("promtool", &["check", "metrics"], body);
    assert_eq!((code, out.as_str()), (Some(0), ""), "promtool on:\n{body}");
    // Before any hit, each list's (and the manual list's) drop series are there, at zero.
    for list in ["drop.txt", "manual"] {
        for dir in ["src", "dst"] {
            let series =
                format!("takedown_dropped_packets_total{{list=\"{list}\",direction=\"{dir}\"}}");
            assert_eq!(value(body, &series), Some(0.0), "{series} in:\n{body}");
        }
    }
    readme_table_matches(body);
    // As Prometheus asks: OpenMetrics, which the reference parser reads whole.
    let accept =
        "Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\n";
    let om = scrape(accept);
    assert!(om.contains("content-type: application/openmetrics-text; version=1.0.0"), "{om}");
    let body = om.split_once("\r\n\r\n").unwrap().1;
    assert!(body.ends_with("# EOF\n"), "{body}");
    let (code, out) = checker("/usr/bin/python3", &["-c", OPENMETRICS_CHECK], body);
    assert_eq!(code, Some(0), "the OpenMetrics parser: {out}\non:\n{body}");
    run.stop().unwrap();
}

/// The README's metrics table names exactly the series of a scrape in the text format, and
/// the `map` label's values.
fn readme_table_matches(scrape: &str) {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"));
    let readme = readme.unwrap();
    let rows: Vec<&str> = readme.lines().filter(|l| l.starts_with("| `takedown_")).collect();
    let mut documented: Vec<&str> = rows
        .iter()
        .flat_map(|r| r.split('|').nth(1).unwrap().split('`'))
        .filter(|w| w.starts_with("takedown_"))
        .collect();
    let mut served: Vec<&str> =
        scrape.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next()).collect();
    documented.sort();
    served.sort();
    assert_eq!(documented, served, "the README's metrics table and a scrape");
    let maps = rows.iter().find(|r| r.starts_with("| `takedown_entries`")).unwrap();
    for line in scrape.lines().filter_map(|l| l.strip_prefix("takedown_entries{map=\"")) {
        let map = line.split('"').next().unwrap();
        assert!(
            maps.contains(&format!(" {map},")) || maps.contains(&format!(" {map} ")),
            "{map} is not in the README's row: {maps}"
        );
    }
}

/// Every series the shipped Grafana dashboard queries is in a real scrape.
fn dashboard_queries_only(scrape: &str) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../dist/grafana-dashboard.json");
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let panels = doc["panels"].as_array().unwrap();
    let targets = panels.iter().flat_map(|p| p["targets"].as_array().unwrap());
    let exprs: Vec<&str> = targets.map(|t| t["expr"].as_str().unwrap()).collect();
    assert!(exprs.len() >= 10);
    let exported: Vec<&str> = scrape.lines().filter_map(|l| l.split(['{', ' ']).next()).collect();
    for e in exprs {
        let names = e.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
        let names: Vec<&str> = names.filter(|w| w.starts_with("takedown_")).collect();
        assert!(!names.is_empty(), "{e}");
        for n in names {
            assert!(exported.contains(&n), "{n} (in {e}) is not in a scrape:\n{scrape}");
        }
    }
}

#[kernel_test]
fn a_hostile_metrics_client_never_delays_refreshes_scrapes_or_memory() {
    const ADDR: &str = "127.0.0.1:9647";
    let topo = Topology::new("mh").unwrap();
    let dir = TempDir::new("metrics-hostile");
    let list = dir.file("drop.txt", "203.0.113.7\n");
    let place = PinPlace::new("metrics-hostile");
    let run = place
        .start(&topo.gateway, &["run", "-i", Addrs::GATEWAY_IF, "-l", &list, "--metrics", ADDR]);
    let rss_before = run.rss_kib();
    // Forty connections that never send a byte (more than the server keeps open at once), and
    // one that sends an endless request line.
    let open = |n: usize| {
        in_netns(&topo.gateway, move || {
            Ok((0..n).map(|_| TcpStream::connect(ADDR)).collect::<Result<_, _>>()?)
        })
    };
    let mut idle: Vec<TcpStream> = open(40).unwrap();
    let mut flood = open(1).unwrap().pop().unwrap();
    let flooder = std::thread::spawn(move || {
        let chunk = vec![b'a'; 64 * 1024];
        let _ = flood.write_all(b"GET /metrics?");
        let mut sent = 0usize;
        while sent < 256 << 20 && flood.write_all(&chunk).is_ok() {
            sent += chunk.len();
        }
        sent
    });
    let t = Instant::now();
    let (code, out, err) = place.cli(&topo.gateway, &["refresh"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(t.elapsed() < Duration::from_secs(3), "the refresh waited {:?}", t.elapsed());
    let t = Instant::now();
    assert!(get_from(&topo.gateway, ADDR, "/metrics").starts_with("HTTP/1.1 200 OK"));
    assert!(t.elapsed() < Duration::from_secs(3), "the scrape waited {:?}", t.elapsed());
    let sent = flooder.join().unwrap();
    assert!(sent < 64 << 20, "the server read {sent} bytes of one request line");
    let grown = run.rss_kib().saturating_sub(rss_before);
    assert!(grown < 32 * 1024, "the daemon grew by {grown} KiB");
    // Idle connections are closed by the server after its header timeout.
    let t = Instant::now();
    let first = &mut idle[0];
    first.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut buf = Vec::new();
    let _ = first.read_to_end(&mut buf);
    assert!(t.elapsed() < Duration::from_secs(10), "an idle connection stayed {:?}", t.elapsed());
    run.stop().unwrap();
}
