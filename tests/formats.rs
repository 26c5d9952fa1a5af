//! Formats as the field's tools write them: the fixtures under `tests/fixtures/` are the
//! output of misp-stix (MISP's STIX 2.1 exporter), pymisp (`to_json()`, `to_feed()`) and the
//! stix2 library (versions, revocations, validity), made by `tests/fixtures/make.py`. Each is
//! read by `check` and, for the ones that decide what is blocked, enforced by a real filter.

use std::path::PathBuf;

use integration_tests::{PinPlace, TempDir, frames, kernel_test, kernel_verdict, process::run_cli};
use td_netns::{Addrs, Topology};

fn fixture(rel: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(rel);
    assert!(path.exists(), "{} (made by tests/fixtures/make.py)", path.display());
    path.to_str().unwrap().to_string()
}

fn check(args: &[&str]) -> (Option<i32>, String) {
    let out = run_cli(None, &[&["check", "--verbose"], args].concat());
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code(), text + &String::from_utf8_lossy(&out.stderr))
}

#[test]
fn check_reads_what_misp_stix_writes_for_each_ids_attribute() {
    let (code, text) = check(&[&fixture("misp-stix/event.stix21.json")]);
    assert_eq!(code, Some(0), "{text}");
    // ip-dst, ip-src, ip-dst|port, domain|ip (both halves), an ip-port object, a domain-ip
    // object, an IPv6 ip-dst; the to_ids-off ip-dst is observed-data only.
    assert!(text.contains("entries: 6 IPv4, 1 IPv6, 0 IPv4 prefixes, 0 IPv6 prefixes, 4 domains"));
    assert!(text.contains("direction per entry (6 both, 4 dst, 1 src)"), "{text}");
    assert!(text.contains("the pattern compares file:hashes.'SHA-256', not an address"), "{text}");
    assert!(text.contains("12 address objects held by observed-data"), "{text}");
    assert!(!text.contains("dst_ref.type"), "a type test narrows nothing: {text}");
}

#[test]
fn check_reads_pymisp_events_and_feeds_and_names_deleted_objects() {
    for path in [fixture("pymisp/event.json"), fixture("pymisp/feed")] {
        let (code, text) = check(&[&path]);
        assert_eq!(code, Some(0), "{text}");
        assert!(text.contains("format misp"), "to_json() has no \"Event\" wrapper: {text}");
        // hostname|port counts as its host name (gate.example.com).
        assert!(text.contains("6 IPv4, 1 IPv6, 0 IPv4 prefixes, 0 IPv6 prefixes, 4 domains"));
        assert!(text.contains("object 00000029-0000-4000-8000-000000000029: deleted"), "{text}");
        assert!(text.contains("0000000f-0000-4000-8000-00000000000f: to_ids is off"), "{text}");
    }
}

#[test]
fn a_taxii_envelope_saved_to_a_file_reads_as_stix() {
    let dir = TempDir::new("formats-envelope");
    let bundle: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("stix2/versions.json")).unwrap())
            .unwrap();
    let envelope = serde_json::json!({"more": false, "objects": bundle["objects"]});
    let path = dir.file("envelope.json", &envelope.to_string());
    let (code, text) = check(&[&path]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("format stix") && text.contains("entries: 3 IPv4"), "{text}");
}

#[test]
fn a_bundle_whose_indicators_all_ended_is_one_answer_everywhere() {
    let list = fixture("stix2/all-ended.json");
    let (code, text) = check(&[&list]);
    assert_eq!(code, Some(0), "an empty list in force, as run takes it: {text}");
    assert!(text.contains("valid until 2020-02-01T00:00:00Z, passed"), "{text}");
    assert!(!text.contains("not usable"), "{text}");
    let dir = TempDir::new("formats-ended");
    let config = dir.file(
        "takedown.toml",
        &format!("interfaces = [\"eth0\"]\n[[list]]\nname = \"ended\"\nfile = \"{list}\"\n"),
    );
    let (code, text) = check(&["--config", &config]);
    assert_eq!(code, Some(0), "{text}");
    assert!(!text.contains("not usable"), "{text}");
}

#[kernel_test]
fn misp_stix_export_blocks_each_ids_address_on_its_side_and_no_sighting() {
    let topo = Topology::new("fm").unwrap();
    let place = PinPlace::new("formats-misp");
    let list = fixture("misp-stix/event.stix21.json");
    let daemon = place.start(&topo.gateway, &["run", "-i", Addrs::GATEWAY_IF, "-l", &list]);
    let gw = &topo.gateway;
    let blocked = |a| place.blocked(gw, Addrs::GATEWAY_IF, a);
    for a in ["198.51.100.161", "198.51.100.162", "192.0.2.77", "198.51.100.170", "203.0.113.50"] {
        assert!(blocked(a), "{a}: {}", daemon.stderr());
    }
    assert!(blocked("2001:db8:c2::1"));
    assert!(!blocked("192.0.2.200"), "to_ids off: a victim's address, never blocked");
    // ip-src: traffic from it is dropped, traffic to it is not.
    assert!(!blocked("203.0.113.9"));
    let from = frames::ip("203.0.113.9", "192.0.2.10");
    assert_eq!(kernel_verdict(gw, Addrs::GATEWAY_IF, &from), 1, "XDP_DROP");
    let (_, out, _) = place.cli(gw, &["lookup", "198.51.100.161"]);
    assert!(out.contains("(dst)"), "ip-dst blocks what goes to it: {out}");
    daemon.stop().unwrap();
}

#[kernel_test]
fn only_the_newest_version_of_an_indicator_counts_and_revoked_means_gone() {
    let topo = Topology::new("fv").unwrap();
    let place = PinPlace::new("formats-versions");
    let list = fixture("stix2/versions.json");
    let daemon = place.start(&topo.gateway, &["run", "-i", Addrs::GATEWAY_IF, "-l", &list]);
    let blocked = |a| place.blocked(&topo.gateway, Addrs::GATEWAY_IF, a);
    assert!(blocked("198.51.100.11"), "the newest version (modified ...00.500Z)");
    assert!(!blocked("198.51.100.10"), "the older version (modified ...00Z) is history");
    assert!(!blocked("198.51.100.20"), "revoked, with the address object it was based on");
    assert!(!blocked("198.51.100.30"), "valid from 2099");
    assert!(!blocked("198.51.100.40"), "ended in 2020");
    assert!(blocked("198.51.100.50") && blocked("198.51.100.60"), "given alone; in force");
    daemon.stop().unwrap();
}

#[test]
fn a_bundle_of_only_skipped_indicators_is_named_as_a_bundle() {
    let dir = TempDir::new("formats-skipped");
    let bundle = serde_json::json!({"type": "bundle", "id": "bundle--x", "objects": [{
        "type": "indicator", "spec_version": "2.1", "id": "indicator--x",
        "created": "2026-11-20T00:00:00Z", "modified": "2026-11-20T00:00:00Z",
        "pattern": "[url:value = 'http://c2.example/gate.php']", "pattern_type": "stix",
        "valid_from": "2026-11-20T00:00:00Z"
    }]});
    let path = dir.file("urls.json", &bundle.to_string());
    let (code, text) = check(&[&path]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("format stix") && !text.contains("no known format fits"), "{text}");
    assert!(
        text.contains("indicator--x: the pattern compares url:value, not an address"),
        "{text}"
    );
}
