//! TAXII 2.1 pull against a scripted server in the test's namespace: the first pull reads the
//! whole collection page by page with basic authentication; a refresh asks only for what was
//! added since (`added_after`) and takes in a revocation and a new indicator; with the server
//! down the collection stays in force, also across a restart; a wrong password is refused in
//! one sentence; the password is never shown or stored.

use integration_tests::{
    PinPlace, TempDir, frames, kernel_test, kernel_verdict,
    taxii::{COLLECTION, Taxii},
};
use td_netns::{Addrs, Topology};

const PASSWORD: &str = "s3cret";
/// `Basic ` + base64 of `gw1:s3cret`.
const AUTHORIZATION: &str = "Basic Z3cxOnMzY3JldA==";

fn indicator(id: &str, modified: &str, pattern: &str, extra: &str) -> String {
    format!(
        r#"{{"type":"indicator","spec_version":"2.1","id":"indicator--{id}","created":"2026-11-01T00:00:00Z","modified":"{modified}","pattern":"{pattern}","pattern_type":"stix","valid_from":"2026-11-01T00:00:00Z"{extra}}}"#
    )
}

fn added(n: u32) -> String {
    format!("2026-11-20T00:00:0{n}.000Z")
}

#[kernel_test]
fn a_taxii_collection_is_pulled_in_pages_then_only_what_is_new() {
    let topo = Topology::new("tx").unwrap();
    let server = Taxii::start(&topo.gateway, AUTHORIZATION).unwrap();
    let first = "2026-11-01T00:00:00Z";
    server.add(&added(1), &indicator("a", first, "[ipv4-addr:value = '203.0.113.7']", ""));
    let src = "[network-traffic:src_ref.value = '198.51.100.0/24']";
    server.add(&added(2), &indicator("b", first, src, ""));
    server.add(&added(3), &indicator("c", first, "[ipv6-addr:value = '2001:db8:bad::7']", ""));
    server.add(&added(4), &indicator("d", first, "[ipv4-addr:value = '203.0.113.8']", ""));
    server.add(&added(5), r#"{"type":"ipv4-addr","id":"ipv4-addr--e","value":"203.0.113.9"}"#);
    let dir = TempDir::new("taxii");
    let password = dir.file("taxii.pass", &format!("{PASSWORD}\n"));
    let config = dir.file(
        "takedown.toml",
        &format!(
            "interfaces = [\"{}\"]\n[[list]]\nname = \"cert\"\ntimeout = 2\nattempts = 1\n\
             taxii = {{ url = \"{}\", collection = \"{COLLECTION}\", user = \"gw1\", password_file = \"{password}\", page_size = 2 }}\n",
            Addrs::GATEWAY_IF,
            server.api_root()
        ),
    );
    let place = PinPlace::new("taxii");
    let gw = &topo.gateway;
    let start = || place.start(gw, &["run", "--config", &config]);
    let blocked = |a| place.blocked(gw, Addrs::GATEWAY_IF, a);
    let daemon = start();
    assert!(blocked("203.0.113.7") && blocked("203.0.113.8") && blocked("203.0.113.9"));
    assert!(blocked("2001:db8:bad::7") && !blocked("198.51.100.9"), "src_ref: from, not to");
    let from = frames::ip("198.51.100.9", "192.0.2.10");
    assert_eq!(kernel_verdict(gw, Addrs::GATEWAY_IF, &from), 1, "XDP_DROP");
    let targets = server.take_targets();
    assert_eq!(targets.len(), 3, "5 objects, 2 a page: {targets:?}");
    assert!(targets.iter().all(|t| !t.contains("added_after")), "{targets:?}");
    assert!(targets[1].contains("next=2") && targets[2].contains("next=4"), "{targets:?}");

    // Indicator a revoked (a newer version), and a new one: only what was added is asked for.
    let later = "2026-11-21T00:00:00Z";
    let revoked = r#","revoked":true"#;
    server.add(&added(6), &indicator("a", later, "[ipv4-addr:value = '203.0.113.7']", revoked));
    server.add(&added(7), &indicator("f", later, "[ipv4-addr:value = '203.0.113.20']", ""));
    let (code, out, err) = place.cli(gw, &["refresh"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let targets = server.take_targets();
    assert_eq!(targets.len(), 1, "{targets:?}");
    let after = targets[0].contains("added_after=2026-11-20T00%3A00%3A05.000Z");
    assert!(after, "added_after = the last pull's X-TAXII-Date-Added-Last: {targets:?}");
    assert!(blocked("203.0.113.20") && !blocked("203.0.113.7") && blocked("203.0.113.8"));

    // The server down: the refresh fails in one sentence, the collection stays, also across
    // a restart.
    server.set_down(true);
    let (code, out, _) = place.cli(gw, &["refresh"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("the TAXII server cannot be reached"), "{out}");
    assert!(blocked("203.0.113.20") && blocked("203.0.113.8"));
    let (_, log) = daemon.stop().unwrap();
    let daemon = start();
    assert!(blocked("203.0.113.20") && blocked("2001:db8:bad::7") && !blocked("203.0.113.7"));
    let (_, status, _) = place.cli(gw, &["status"]);
    assert!(status.contains("using the cached copy"), "{status}");

    // A wrong password: refused in one sentence, what is enforced stays.
    server.set_down(false);
    std::fs::write(&password, "wrong\n").unwrap();
    let (code, out, _) = place.cli(gw, &["refresh"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("the TAXII server refused the credentials (HTTP 401"), "{out}");
    assert!(blocked("203.0.113.20"));
    let saved = std::fs::read_to_string(place.state.0.join("taxii-cert.json")).unwrap();
    assert!(saved.contains("indicator--f") && saved.contains("added_after"), "{saved}");
    let (_, log2) = daemon.stop().unwrap();
    for text in [&log, &log2, &status, &saved] {
        assert!(!text.contains(PASSWORD), "the password was shown or stored");
    }
}
