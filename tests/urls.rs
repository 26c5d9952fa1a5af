//! URL lists against a scripted HTTP server on loopback inside the test's gateway namespace:
//! conditional GET, failures that keep the last good content (500, timeout, oversized and
//! truncated bodies, a list shrunk by half), and the cache used when the server is down; an
//! HTTPS server whose CA the machine does not trust is refused with the way to trust it.

use std::time::Duration;

use integration_tests::{
    PinPlace, TempDir,
    http::{Behaviour, HttpServer},
    https::HttpsFiles,
    kernel_test,
    process::{Running, run_cli},
};
use td_netns::{Addrs, Topology};

const V1: &str = "203.0.113.7\n203.0.113.8\n203.0.113.9\n203.0.113.10\n";
const V2: &str = "198.51.100.7\n198.51.100.8\n198.51.100.9\n198.51.100.10\n";

struct Ctx {
    topo: Topology,
    place: PinPlace,
    config: String,
}

impl Ctx {
    fn cli(&self, args: &[&str]) -> (Option<i32>, String) {
        let (code, out, err) = self.place.cli(&self.topo.gateway, args);
        (code, out + &err)
    }

    fn start(&self) -> Running {
        self.place.start(&self.topo.gateway, &["run", "--config", &self.config])
    }

    fn blocked(&self, addr: &str) -> bool {
        self.place.blocked(&self.topo.gateway, Addrs::GATEWAY_IF, addr)
    }

    /// Refreshes; returns (exit status, output).
    fn refresh(&self) -> (Option<i32>, String) {
        self.cli(&["refresh", "feed"])
    }
}

#[kernel_test]
fn url_lists_refresh_conditionally_keep_good_content_and_fall_back_to_the_cache() {
    let topo = Topology::new("uh").unwrap();
    let server = HttpServer::start(
        &topo.gateway,
        Behaviour::Serve { body: V1.into(), etag: "\"v1\"".into() },
    )
    .unwrap();
    let dir = TempDir::new("urls");
    let config = dir.file(
        "takedown.toml",
        &format!(
            "interfaces = [\"{}\"]\n[guards]\nblock_own = true\n[[list]]\nname = \"feed\"\nurl = \"{}\"\ntimeout = 1\nattempts = 1\nmax_bytes = 4096\n",
            Addrs::GATEWAY_IF,
            server.url("/feed.txt")
        ),
    );
    let ctx = Ctx { topo, place: PinPlace::new("urls"), config };
    let daemon = ctx.start();
    assert!(ctx.blocked("203.0.113.8"));

    // Unchanged upstream: a conditional GET answered 304.
    let (code, out) = ctx.refresh();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("feed: ok: not modified (304)"), "{out}");
    assert_eq!(server.requests.lock().unwrap().last().unwrap().1.as_deref(), Some("\"v1\""));

    // A new version replaces the content.
    server.set(Behaviour::Serve { body: V2.into(), etag: "\"v2\"".into() });
    let (code, out) = ctx.refresh();
    assert_eq!(code, Some(0), "{out}");
    assert!(ctx.blocked("198.51.100.8") && !ctx.blocked("203.0.113.8"));

    // Every failure keeps V2 in force and says why.
    let failures = [
        (Behaviour::Fail, "HTTP 500"),
        (Behaviour::Slow(Duration::from_secs(3)), "timed out"),
        (Behaviour::Oversized(8192), "exceeds the 4096 byte limit"),
        (Behaviour::Truncated, "cut short"),
        (Behaviour::Chunked(8192), "body exceeds the 4096 byte limit"),
        (
            Behaviour::Serve {
                body: "<!DOCTYPE html>\n<html><body>Moved</body></html>\n".into(),
                etag: "\"html\"".into(),
            },
            "no known format fits",
        ),
        (
            Behaviour::Serve { body: "198.51.100.7\n".into(), etag: "\"v3\"".into() },
            "less than half",
        ),
    ];
    for (behaviour, why) in failures {
        server.set(behaviour);
        let (code, out) = ctx.refresh();
        assert_eq!(code, Some(1), "{why}: {out}");
        assert!(out.contains("feed: FAILED") && out.contains(why), "{why}: {out}");
        assert!(out.contains("keeping the previous content"), "{out}");
        assert!(ctx.blocked("198.51.100.9"), "{why}: the previous content stays enforced");
    }
    let (_, status) = ctx.cli(&["status"]);
    assert!(status.contains("list feed: 4 in the maps; last refresh FAILED"), "{status}");

    // The cache holds the last good copy, and a start without the server uses it.
    let cached = std::fs::read_to_string(ctx.place.state.0.join("cache/feed.cache")).unwrap();
    assert!(cached.ends_with(&format!("}}\n{V2}")), "header line, then the body: {cached}");
    daemon.stop().unwrap();
    drop(server);
    std::thread::sleep(Duration::from_millis(100));
    let daemon = ctx.start();
    let (_, status) = ctx.cli(&["status"]);
    assert!(status.contains("using the cached copy"), "{status}");
    assert!(ctx.blocked("198.51.100.9"));
    daemon.stop().unwrap();
}

#[kernel_test]
fn failed_downloads_are_retried_and_https_certificates_are_verified() {
    let topo = Topology::new("ur").unwrap();
    let server = HttpServer::start(
        &topo.gateway,
        Behaviour::Serve { body: V1.into(), etag: "\"v1\"".into() },
    )
    .unwrap();
    let https = integration_tests::http::start_untrusted_https(&topo.gateway).unwrap();
    let dir = TempDir::new("urls-retry");
    let config = dir.file(
        "takedown.toml",
        &format!(
            "interfaces = [\"{}\"]\n[guards]\nblock_own = true\n\
             [[list]]\nname = \"feed\"\nurl = \"{}\"\ntimeout = 2\nattempts = 3\n\
             [[list]]\nname = \"tls\"\nfile = \"{}\"\n",
            Addrs::GATEWAY_IF,
            server.url("/feed.txt"),
            dir.file("seed.txt", "198.51.100.99\n"),
        ),
    );
    let ctx = Ctx { topo, place: PinPlace::new("retry"), config };
    let daemon = ctx.start();
    // Two 500s, then the new version: the third try (after 1 s and 2 s) succeeds.
    server.set(Behaviour::FailFirst(
        2,
        Box::new(Behaviour::Serve { body: V2.into(), etag: "\"v2\"".into() }),
    ));
    let before = server.requests.lock().unwrap().len();
    let (code, out) = ctx.refresh();
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(server.requests.lock().unwrap().len() - before, 3, "one try and two retries");
    assert!(ctx.blocked("198.51.100.9"));
    daemon.stop().unwrap();

    // A list served over HTTPS with a certificate nobody trusts is refused at start.
    let bad = ctx.place.state.0.join("bad.toml");
    std::fs::write(
        &bad,
        format!(
            "interfaces = [\"{}\"]\n[[list]]\nname = \"tls\"\nurl = \"https://127.0.0.1:{https}/feed.txt\"\ntimeout = 2\nattempts = 1\n",
            Addrs::GATEWAY_IF
        ),
    )
    .unwrap();
    let mut a: Vec<String> =
        vec!["run".into(), "--config".into(), bad.to_str().unwrap().into(), "--ephemeral".into()];
    a.extend(ctx.place.args());
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let out = run_cli(Some(&ctx.topo.gateway), &a);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("list tls (https://127.0.0.1:") && err.contains("fetch failed"), "{err}");
    assert!(err.to_lowercase().contains("certificate"), "the failure names the certificate: {err}");
}

#[kernel_test]
fn a_failing_source_at_start_does_not_keep_the_good_ones_from_enforcing() {
    let topo = Topology::new("ub").unwrap();
    let dir = TempDir::new("urls-bad");
    let good = dir.file("good.txt", "198.51.100.7\n");
    // Nothing listens on port 9 of the namespace's loopback: the fetch fails at once, and
    // there is no cached copy.
    let config = dir.file(
        "takedown.toml",
        &format!(
            "interfaces = [\"{}\"]\n[guards]\nblock_own = true\n\
             [[list]]\nname = \"good\"\nfile = \"{good}\"\n\
             [[list]]\nname = \"feed\"\nurl = \"http://127.0.0.1:9/feed.txt\"\ntimeout = 1\nattempts = 1\n",
            Addrs::GATEWAY_IF
        ),
    );
    let ctx = Ctx { topo, place: PinPlace::new("urls-bad"), config };
    // A damaged cached copy is not used, the report says it is damaged, and it is kept aside.
    let cache = ctx.place.state.0.join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::write(cache.join("feed.cache"), "{\"url\": cut short").unwrap();
    let daemon = ctx.start();
    assert!(ctx.blocked("198.51.100.7"), "the good list is enforced");
    let (_, status) = ctx.cli(&["status"]);
    assert!(
        status.contains("list feed: 0 in the maps; last refresh FAILED (fetch failed"),
        "{status}"
    );
    assert!(status.contains("damaged cache file") && status.contains("feed.cache"), "{status}");
    assert!(status.contains("(kept as ") && cache.join("feed.cache.corrupt").exists(), "{status}");
    assert!(daemon.stderr().contains("starting without it"), "{}", daemon.stderr());
    daemon.stop().unwrap();
}

#[kernel_test]
fn a_server_of_an_untrusted_ca_is_refused_naming_ssl_cert_file() {
    let topo = Topology::new("uc").unwrap();
    let files = vec![("/list.txt".to_string(), V1.to_string())];
    let server = HttpsFiles::start(&topo.gateway, "127.0.0.1", files).unwrap();
    let dir = TempDir::new("urls-ca");
    let config = dir.url_config("feed", &server.url("/list.txt"), "attempts = 1\n");
    let place = PinPlace::new("urls-ca");
    // The test CA is not given (no SSL_CERT_FILE): the start fails, saying how to trust it.
    let (code, out, err) = place.cli(&topo.gateway, &["run", "--config", &config]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(err.contains(integration_tests::messages::UNTRUSTED_CA), "{err}");
}
