//! Signed lists: a list is used only when its minisign signature (`<list>.minisig`) verifies
//! with the publisher's key: `takedown check` and the daemon refuse a list whose signature is
//! missing or wrong, and the daemon keeps the last good content. Keys are made by the test with
//! the `minisign` tool, as a CERT would make them.

use integration_tests::{
    PinPlace, TempDir,
    http::{Behaviour, HttpServer},
    kernel_test,
    minisign::{keys, sign},
    process::run_cli,
};
use td_netns::{Addrs, Topology};

#[test]
fn check_uses_a_list_only_when_its_signature_verifies() {
    let dir = TempDir::new("signed-check");
    let key = keys(&dir.0);
    let list = dir.file("list.txt", "203.0.113.7\n");
    sign(&dir.0, &list);
    let check = || {
        let out = run_cli(None, &["check", "--minisign-key", &key, &list]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.code(), text + &String::from_utf8_lossy(&out.stderr))
    };
    let (code, out) = check();
    assert_eq!(code, Some(0), "{out}");
    dir.file("list.txt", "203.0.113.7\n198.51.100.7\n");
    let (code, out) = check();
    assert_eq!(code, Some(1), "a changed list: {out}");
    assert!(
        out.contains("signature check of") && out.contains("the signature does not match"),
        "{out}"
    );
    std::fs::remove_file(format!("{list}.minisig")).unwrap();
    let (code, out) = check();
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains(&format!("no signature {list}.minisig")), "{out}");
}

#[kernel_test]
fn the_daemon_enforces_only_signed_content_and_keeps_the_last_good_one() {
    let topo = Topology::new("sg").unwrap();
    let dir = TempDir::new("signed-daemon");
    keys(&dir.0);
    let list = dir.file("list.txt", "203.0.113.7\n");
    sign(&dir.0, &list);
    let config = dir.file(
        "takedown.toml",
        &format!(
            "interfaces = [\"{}\"]\n[[list]]\nname = \"cert\"\nfile = \"{list}\"\nminisign_key_file = \"{}\"\n",
            Addrs::GATEWAY_IF,
            dir.0.join("cert.pub").display()
        ),
    );
    let place = PinPlace::new("signed");
    let daemon = place.start(&topo.gateway, &["run", "--config", &config]);
    let blocked = |a| place.blocked(&topo.gateway, Addrs::GATEWAY_IF, a);
    assert!(blocked(Addrs::TAKEDOWN_V4));
    // Someone changes the list without the CERT's key: refused, the signed content stays.
    dir.file("list.txt", "198.51.100.7\n");
    let (code, out, err) = place.cli(&topo.gateway, &["refresh"]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        out.contains("signature check failed") && out.contains("keeping the previous content"),
        "{out}"
    );
    assert!(blocked(Addrs::TAKEDOWN_V4) && !blocked(Addrs::SERVER_V4));
    // The CERT signs the new content: it loads.
    sign(&dir.0, &list);
    let (code, out, err) = place.cli(&topo.gateway, &["refresh"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(blocked(Addrs::SERVER_V4) && !blocked(Addrs::TAKEDOWN_V4));
    daemon.stop().unwrap();
}

#[kernel_test]
fn a_url_list_is_checked_against_the_signature_beside_it() {
    let topo = Topology::new("su").unwrap();
    let dir = TempDir::new("signed-url");
    let key = keys(&dir.0);
    let list = dir.file("feed.txt", "203.0.113.7\n");
    sign(&dir.0, &list);
    let signature = std::fs::read_to_string(format!("{list}.minisig")).unwrap();
    let serve = |body: &str, sig: &str| {
        Behaviour::Files(vec![
            ("/feed.txt".into(), body.into()),
            ("/feed.txt.minisig".into(), sig.into()),
        ])
    };
    let server = HttpServer::start(&topo.gateway, serve("203.0.113.7\n", &signature)).unwrap();
    let key_line = format!("minisign_key = \"{key}\"\n");
    let config = dir.url_config("feed", &server.url("/feed.txt"), &key_line);
    let place = PinPlace::new("signed-url");
    let daemon = place.start(&topo.gateway, &["run", "--config", &config]);
    let blocked = |a| place.blocked(&topo.gateway, Addrs::GATEWAY_IF, a);
    assert!(blocked(Addrs::TAKEDOWN_V4));
    // A tampered feed (the old signature) and a feed without a signature are refused.
    for (body, sig, why) in [
        ("198.51.100.7\n", signature.as_str(), "the signature does not match"),
        ("198.51.100.7\n", "", "not a minisign signature"),
    ] {
        server.set(serve(body, sig));
        let (code, out, err) = place.cli(&topo.gateway, &["refresh"]);
        assert_eq!(code, Some(1), "{out}{err}");
        assert!(out.contains("signature check failed") && out.contains(why), "{why}: {out}");
        assert!(blocked(Addrs::TAKEDOWN_V4) && !blocked(Addrs::SERVER_V4), "{why}");
    }
    daemon.stop().unwrap();
}
