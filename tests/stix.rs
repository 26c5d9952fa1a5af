//! STIX 2.1 bundles as lists: indicators with address patterns (single, OR-ed, IN, CIDR) and
//! address objects load; revoked, expired and narrowed (AND) indicators are skipped with a
//! note naming the object; an indicator whose `valid_until` comes while the daemon runs
//! leaves the maps at that moment, and one whose `valid_from` comes enters them then.

use std::time::{Duration, Instant};

use integration_tests::{
    PinPlace, TempDir, frames,
    http::{Behaviour, HttpServer},
    kernel_test, kernel_verdict,
    process::run_cli,
};
use td_netns::{Addrs, Topology};

fn indicator(id: &str, pattern: &str, extra: &str) -> String {
    format!(
        r#"{{"type":"indicator","spec_version":"2.1","id":"indicator--{id}","pattern":"{pattern}","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"{extra}}}"#
    )
}

/// A bundle: 203.0.113.7 and 198.51.100.0/25 and 2001:db8:bad::7 for good, 198.51.100.200 to
/// .211 (as destinations) until `until`, 203.0.113.50 as a source, and three indicators that
/// must be skipped.
fn bundle(until: &str) -> String {
    let objects = [
        indicator("a", "[ipv4-addr:value = '203.0.113.7']", ""),
        indicator(
            "b",
            "[ipv4-addr:value IN ('198.51.100.0/25')] OR [ipv6-addr:value = '2001:db8:bad::7']",
            "",
        ),
        indicator(
            // Most of the list ends at `until`: its re-read is no shrink to hold back.
            "c",
            &format!(
                "[network-traffic:dst_ref.value IN ({})]",
                (200..212).map(|i| format!("'198.51.100.{i}'")).collect::<Vec<_>>().join(", ")
            ),
            &format!(r#","valid_until":"{until}""#),
        ),
        indicator(
            "d",
            "[ipv4-addr:value = '192.0.2.99']",
            r#","valid_until":"2020-01-01T00:00:00Z""#,
        ),
        indicator("e", "[ipv4-addr:value = '192.0.2.98']", r#","revoked":true"#),
        indicator("f", "[ipv4-addr:value = '192.0.2.97'] AND [network-traffic:dst_port = 443]", ""),
        r#"{"type":"ipv4-addr","id":"ipv4-addr--g","value":"198.51.100.201"}"#.to_string(),
        // Traffic from it, not to it.
        indicator("i", "[network-traffic:src_ref.value = '203.0.113.50']", ""),
        r#"{"type":"malware","id":"malware--h","name":"an infostealer","is_family":true}"#
            .to_string(),
    ];
    format!(r#"{{"type":"bundle","id":"bundle--1","objects":[{}]}}"#, objects.join(","))
}

#[test]
fn check_reads_a_stix_bundle_and_names_what_it_skips() {
    let dir = TempDir::new("stix-check");
    let list = dir.file("bundle.json", &bundle("2099-01-01T00:00:00Z"));
    let out = run_cli(None, &["check", "--verbose", &list]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("format stix"), "{text}");
    assert!(text.contains("entries: 15 IPv4, 1 IPv6, 1 IPv4 prefixes"), "{text}");
    assert!(text.contains("direction per entry (4 both, 12 dst, 1 src)"), "{text}");
    for why in [
        "indicator--d: valid until 2020-01-01T00:00:00Z, passed",
        "indicator--e: revoked",
        "indicator--f: the pattern needs two observations at once (AND between [...])",
    ] {
        assert!(text.contains(why), "{why}: {text}");
    }
}

#[kernel_test]
fn an_indicator_leaves_the_maps_when_its_validity_ends() {
    let topo = Topology::new("sx").unwrap();
    let dir = TempDir::new("stix-daemon");
    let until = takedown::daemon::status::utc(takedown::daemon::status::now() + 4);
    let list = dir.file("bundle.json", &bundle(&until));
    let place = PinPlace::new("stix");
    let daemon = place.start(&topo.gateway, &["run", "-i", Addrs::GATEWAY_IF, "-l", &list]);
    let blocked = |a| place.blocked(&topo.gateway, Addrs::GATEWAY_IF, a);
    assert!(blocked("198.51.100.200"), "valid until {until}");
    assert!(blocked(Addrs::TAKEDOWN_V4) && blocked(Addrs::TAKEDOWN_V6) && blocked("198.51.100.7"));
    assert!(!blocked("192.0.2.99") && !blocked("192.0.2.98") && !blocked("192.0.2.97"));
    // Each record's direction: src_ref blocks what comes from it, dst_ref what goes to it.
    assert!(!blocked("203.0.113.50"), "a src_ref entry does not block traffic to it");
    let from = frames::ip("203.0.113.50", "192.0.2.10");
    assert_eq!(kernel_verdict(&topo.gateway, Addrs::GATEWAY_IF, &from), 1, "XDP_DROP");
    let (_, out, _) = place.cli(&topo.gateway, &["lookup", "198.51.100.205"]);
    assert!(out.contains("(dst)"), "{out}");
    let end = Instant::now() + Duration::from_secs(10);
    while blocked("198.51.100.200") && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!blocked("198.51.100.200") && !blocked("198.51.100.211"), "ended at {until}");
    assert!(blocked(Addrs::TAKEDOWN_V4), "the rest stays");
    daemon.stop().unwrap();
}

#[kernel_test]
fn entries_of_a_url_bundle_end_on_time_even_when_the_server_says_unchanged() {
    let topo = Topology::new("su").unwrap();
    let dir = TempDir::new("stix-url");
    let until = takedown::daemon::status::utc(takedown::daemon::status::now() + 3);
    let extra = format!(r#","valid_until":"{until}""#);
    // Every entry of this bundle ends at `until`; the server answers 304 to every refresh.
    let body = format!(
        r#"{{"type":"bundle","id":"bundle--2","objects":[{}]}}"#,
        indicator("a", "[ipv4-addr:value = '203.0.113.7']", &extra)
    );
    let server =
        HttpServer::start(&topo.gateway, Behaviour::Serve { body, etag: "\"v1\"".into() }).unwrap();
    let config = dir.url_config("stix", &server.url("/bundle.json"), "refresh = 1\n");
    let place = PinPlace::new("stix-url");
    let daemon = place.start(&topo.gateway, &["run", "--config", &config]);
    let blocked = |a| place.blocked(&topo.gateway, Addrs::GATEWAY_IF, a);
    assert!(blocked(Addrs::TAKEDOWN_V4), "valid until {until}");
    let end = Instant::now() + Duration::from_secs(10);
    while blocked(Addrs::TAKEDOWN_V4) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!blocked(Addrs::TAKEDOWN_V4), "still enforced after {until}: {}", daemon.stderr());
    let asked = server.requests.lock().unwrap().clone();
    assert!(asked.iter().skip(1).any(|(_, inm)| inm.is_some()), "304s were asked for: {asked:?}");
    let (_, status, _) = place.cli(&topo.gateway, &["status"]);
    assert!(status.contains("list stix: 0 in the maps") && !status.contains("FAILED"), "{status}");
    daemon.stop().unwrap();
}

#[kernel_test]
fn an_indicator_enters_the_maps_when_its_validity_begins() {
    let topo = Topology::new("sf").unwrap();
    let dir = TempDir::new("stix-from");
    let from = takedown::daemon::status::utc(takedown::daemon::status::now() + 3);
    let objects = [
        indicator("a", "[ipv4-addr:value = '203.0.113.7']", ""),
        indicator("b", "[ipv4-addr:value = '198.51.100.7']", "")
            .replace("2026-01-01T00:00:00Z", &from),
    ];
    let text = format!(r#"{{"type":"bundle","id":"bundle--3","objects":[{}]}}"#, objects.join(","));
    let list = dir.file("bundle.json", &text);
    let place = PinPlace::new("stix-from");
    let daemon = place.start(&topo.gateway, &["run", "-i", Addrs::GATEWAY_IF, "-l", &list]);
    let blocked = |a| place.blocked(&topo.gateway, Addrs::GATEWAY_IF, a);
    assert!(blocked(Addrs::TAKEDOWN_V4));
    assert!(!blocked("198.51.100.7"), "valid from {from}: not yet");
    let end = Instant::now() + Duration::from_secs(10);
    while !blocked("198.51.100.7") && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(blocked("198.51.100.7"), "not enforced after {from}: {}", daemon.stderr());
    daemon.stop().unwrap();
}
