//! TAXII 2.1 pull against medallion, the OASIS reference server, started by the test in its
//! namespace: the collection holds what misp-stix exported of a MISP event (published with the
//! protocol's own POST) and is read page by page; a newer version of an indicator published
//! while takedown runs (its `modified` 500 ms later, as medallion keeps it) replaces the older
//! one, and a revoked version takes it out; a wrong API root is named as such (not as a
//! missing collection); a collection larger than the list's `max_objects` is refused.

use std::time::{Duration, Instant};

use integration_tests::{
    PinPlace, TempDir, kernel_test,
    medallion::{COLLECTION, Medallion},
};
use serde_json::{Value, json};
use td_netns::{Addrs, NetNs, Topology};

const USER: &str = "gw1";
const PASSWORD: &str = "s3cret-taxii";

fn misp_stix_objects() -> Vec<Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/misp-stix/event.stix21.json");
    let bundle: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    bundle["objects"].as_array().unwrap().clone()
}

/// Indicator `indicator--...20` at version `modified`.
fn version(modified: &str, addr: &str, extra: Value) -> Value {
    let mut v = json!({
        "type": "indicator", "spec_version": "2.1",
        "id": "indicator--00000020-0000-4000-8000-000000000020",
        "created": "2026-11-20T00:00:00Z", "modified": modified,
        "pattern": format!("[ipv4-addr:value = '{addr}']"), "pattern_type": "stix",
        "valid_from": "2026-11-20T00:00:00Z"
    });
    v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    v
}

fn config(dir: &TempDir, url: &str) -> String {
    config_with(dir, url, "")
}

/// With `extra` inside the `taxii = { ... }` table (`, max_objects = 10`).
fn config_with(dir: &TempDir, url: &str, extra: &str) -> String {
    let password = dir.file("taxii.pass", &format!("{PASSWORD}\n"));
    dir.file(
        "takedown.toml",
        &format!(
            "interfaces = [\"{}\"]\n[[list]]\nname = \"cert\"\nrefresh = 1\ntimeout = 5\n\
             taxii = {{ url = \"{url}\", collection = \"{COLLECTION}\", user = \"{USER}\", \
             password_file = \"{password}\", page_size = 7{extra} }}\n",
            Addrs::GATEWAY_IF
        ),
    )
}

fn wait(blocked: impl Fn() -> bool, want: bool) -> bool {
    let end = Instant::now() + Duration::from_secs(10);
    while blocked() != want && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
    }
    blocked() == want
}

#[kernel_test]
fn a_collection_on_medallion_is_enforced_newest_version_first() {
    let topo = Topology::new("tm").unwrap();
    let gw: &NetNs = &topo.gateway;
    let server = Medallion::start(gw, USER, PASSWORD).unwrap();
    let mut objects = misp_stix_objects();
    objects.push(version("2026-11-20T00:00:00Z", "203.0.113.20", json!({})));
    server.add(&objects).unwrap();
    let dir = TempDir::new("taxii-medallion");
    let place = PinPlace::new("taxii-medallion");
    let daemon = place.start(gw, &["run", "--config", &config(&dir, &server.api_root())]);
    let blocked = |a| place.blocked(gw, Addrs::GATEWAY_IF, a);
    for a in ["198.51.100.161", "198.51.100.162", "192.0.2.77", "2001:db8:c2::1", "203.0.113.20"] {
        assert!(blocked(a), "{a}: {}{}", daemon.stderr(), server.log());
    }
    assert!(!blocked("192.0.2.200"), "to_ids off: observed-data only, never blocked");

    // A version 500 ms newer with another address: it replaces the older one.
    server.add(&[version("2026-11-20T00:00:00.500Z", "203.0.113.21", json!({}))]).unwrap();
    assert!(wait(|| blocked("203.0.113.21"), true), "the newer version: {}", daemon.stderr());
    assert!(!blocked("203.0.113.20"), "the older version is history");
    // Its revocation takes it out.
    let revoked = version("2026-11-21T00:00:00Z", "203.0.113.21", json!({"revoked": true}));
    server.add(&[revoked]).unwrap();
    assert!(wait(|| blocked("203.0.113.21"), false), "revoked: {}", daemon.stderr());
    assert!(blocked("198.51.100.161"), "the rest stays");
    daemon.stop().unwrap();
}

#[kernel_test]
fn a_wrong_api_root_is_named_as_such() {
    let topo = Topology::new("tw").unwrap();
    let gw: &NetNs = &topo.gateway;
    let server = Medallion::start(gw, USER, PASSWORD).unwrap();
    let dir = TempDir::new("taxii-medallion-root");
    let wrong = server.api_root().replace("/api1/", "/nope/");
    let place = PinPlace::new("taxii-medallion-root");
    // Nothing else to enforce and no cached copy: the start fails, saying why.
    let (code, _, err) = place.cli(gw, &["run", "--config", &config(&dir, &wrong)]);
    assert_eq!(code, Some(1), "{err}");
    let want = format!("the TAXII server has no API root {wrong} ");
    assert!(err.contains(&want) && err.contains(integration_tests::messages::NO_API_ROOT), "{err}");
}

#[kernel_test]
fn a_collection_larger_than_max_objects_is_refused() {
    let topo = Topology::new("to").unwrap();
    let gw: &NetNs = &topo.gateway;
    let server = Medallion::start(gw, USER, PASSWORD).unwrap();
    server.add(&misp_stix_objects()).unwrap();
    let dir = TempDir::new("taxii-medallion-max");
    let place = PinPlace::new("taxii-medallion-max");
    let config = config_with(&dir, &server.api_root(), ", max_objects = 10");
    let (code, _, err) = place.cli(gw, &["run", "--config", &config]);
    assert_eq!(code, Some(1), "{err}");
    let want =
        "the collection would hold more than 10 objects (raise the list's taxii max_objects)";
    assert!(err.contains(want), "{err}");
}
