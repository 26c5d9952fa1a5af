//! CrowdSec bouncer mode against a scripted Local API in the test's namespace: the start of the
//! stream, a delta (a new ban, a deleted one), a decision that ends by itself, the server going
//! down (the decisions stay, also across a restart, and a damaged state file then keeps the
//! pinned entries), and a wrong key; the key is never shown.

use std::time::{Duration, Instant};

use integration_tests::{PinPlace, TempDir, kernel_test, lapi::Lapi, process::Running};
use td_netns::{Addrs, Topology};

const KEY: &str = "s3cret-bouncer-key";

fn ban(value: &str, scope: &str, duration: &str) -> String {
    format!(
        r#"{{"scope":"{scope}","value":"{value}","type":"ban","duration":"{duration}","origin":"crowdsec"}}"#
    )
}

/// A stream's answer with these new decisions and no deleted one.
fn start_of_stream(new: &[String]) -> String {
    format!(r#"{{"new":[{}],"deleted":null}}"#, new.join(","))
}

struct Ctx {
    topo: Topology,
    place: PinPlace,
    config: String,
    _dir: TempDir,
}

/// A scripted Local API in a new topology (`ns`) that starts its stream with `startup`, and a
/// daemon configuration with one CrowdSec list polled every second, its state in `name`.
fn with_lapi(ns: &str, name: &str, startup: &str) -> (Lapi, Ctx) {
    let topo = Topology::new(ns).unwrap();
    let lapi = Lapi::start(&topo.gateway, KEY, startup).unwrap();
    let dir = TempDir::new(name);
    let config = dir.crowdsec_config(&lapi.url(), KEY);
    (lapi, Ctx { topo, place: PinPlace::new(name), config, _dir: dir })
}

impl Ctx {
    fn start(&self) -> Running {
        self.place.start(&self.topo.gateway, &["run", "--config", &self.config])
    }

    fn blocked(&self, addr: &str) -> bool {
        self.place.blocked(&self.topo.gateway, Addrs::GATEWAY_IF, addr)
    }

    /// Polls (10 s at most) until `addr` is blocked or not as wanted.
    fn wait(&self, addr: &str, want: bool) -> bool {
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if self.blocked(addr) == want {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// The status, polled (10 s at most) until it says `what`.
    fn status_once(&self, what: &str) -> String {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let status = self.status();
            if status.contains(what) || Instant::now() > end {
                return status;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn status(&self) -> String {
        let (_, out, err) = self.place.cli(&self.topo.gateway, &["status"]);
        out + &err
    }
}

#[kernel_test]
fn takedown_enforces_crowdsec_decisions_as_they_come_go_and_end() {
    let startup = start_of_stream(&[
        ban(Addrs::TAKEDOWN_V4, "Ip", "4h"),
        ban(Addrs::SERVER_V4, "Ip", "3s"),
        ban("192.0.2.128/25", "Range", "1h"),
    ]);
    let (lapi, ctx) = with_lapi("cs", "crowdsec", &startup);
    let daemon = ctx.start();
    assert!(ctx.blocked(Addrs::TAKEDOWN_V4) && ctx.blocked("192.0.2.200"), "the stream's start");
    assert_eq!(lapi.startups().first(), Some(&true), "startup=true first");

    // A decision of 3 s ends by itself.
    assert!(ctx.wait(Addrs::SERVER_V4, false), "the 3 s decision did not end");
    assert!(ctx.blocked(Addrs::TAKEDOWN_V4), "the 4 h one stays");

    // A delta: one new ban, one deleted.
    let delta = format!(
        r#"{{"new":[{}],"deleted":[{}]}}"#,
        ban("198.51.100.9", "Ip", "1h"),
        ban(Addrs::TAKEDOWN_V4, "Ip", "0s")
    );
    lapi.push_delta(&delta);
    assert!(ctx.wait("198.51.100.9", true), "the new ban");
    assert!(ctx.wait(Addrs::TAKEDOWN_V4, false), "the deleted ban");
    assert!(
        lapi.startups().iter().skip(1).all(|s| !s),
        "deltas after the start: {:?}",
        lapi.startups()
    );

    // The server goes down: the decisions stay, and a restart starts from them.
    lapi.set_down(true);
    let status = ctx.status_once("FAILED");
    assert!(status.contains("list crowdsec: 2 in the maps; last refresh FAILED"), "{status}");
    assert!(ctx.blocked("198.51.100.9"));
    daemon.stop().unwrap();
    let daemon = ctx.start();
    assert!(ctx.blocked("198.51.100.9") && ctx.blocked("192.0.2.200"), "saved decisions enforced");
    // Said at the start and at every failed poll after it (refresh = 1 s), with the time of
    // the last good poll.
    let status = ctx.status();
    assert!(status.contains("using the cached copy of 20"), "{status}");
    let status = ctx.status_once("still using the cached copy of 20");
    assert!(status.contains("still using the cached copy of 20"), "{status}");

    // A wrong key is refused in one sentence; what is enforced stays.
    lapi.set_key("another-key");
    lapi.set_down(false);
    let status = ctx.status_once("refused the bouncer API key");
    assert!(status.contains("the Local API refused the bouncer API key (HTTP 403"), "{status}");
    assert!(ctx.blocked("198.51.100.9"));
    let log = daemon.stderr() + &daemon.stdout() + &status;
    assert!(!log.contains(KEY), "the key was shown");
    let saved = std::fs::read_to_string(ctx.place.state.0.join("crowdsec-crowdsec.json")).unwrap();
    assert!(saved.contains("198.51.100.9") && !saved.contains(KEY), "{saved}");
    daemon.stop().unwrap();
}

#[kernel_test]
fn durations_past_what_64_bits_hold_are_bans_that_never_stop_the_daemon() {
    // Each once panicked the daemon at start, at its expiry, or wrapped to a past time.
    let startup = start_of_stream(&[
        ban(Addrs::TAKEDOWN_V4, "Ip", "99999999999999999999h"),
        ban(Addrs::SERVER_V4, "Ip", "10000000000000000000s"),
        ban("198.51.100.9", "Ip", "18446744073000000000s"),
    ]);
    let (lapi, ctx) = with_lapi("cd", "crowdsec-durations", &startup);
    let addrs = [Addrs::TAKEDOWN_V4, Addrs::SERVER_V4, "198.51.100.9"];
    for round in ["first start", "restart from the saved decisions, the Local API down"] {
        let daemon = ctx.start();
        // Polls, expiry checks and the decisions' next end come and go meanwhile.
        std::thread::sleep(Duration::from_secs(3));
        for a in addrs {
            assert!(ctx.blocked(a), "{round}: {a} is not blocked");
        }
        let err = daemon.stderr();
        let (status, _) = daemon.stop().unwrap();
        assert!(status.success(), "{round}: the daemon ended {status}: {err}");
        assert!(!err.contains("panicked"), "{round}: {err}");
        lapi.set_down(true);
    }
}

#[kernel_test]
fn the_bouncer_key_never_follows_a_redirect_to_another_origin() {
    use std::{
        io::Write,
        sync::{Arc, Mutex},
    };

    use integration_tests::http::{listen, read_head};
    let topo = Topology::new("ck").unwrap();
    // Another origin (another port), which records the key of any request that reaches it.
    let keys: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let seen = keys.clone();
    let (other, _stop_other) = listen(&topo.gateway, move |mut conn| {
        let (_, key) = read_head(&conn, "x-api-key").unwrap_or_default();
        seen.lock().unwrap().push(key);
        let body = start_of_stream(&[ban("198.51.100.9", "Ip", "1h")]);
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
        let _ = conn.write_all(format!("{head}{body}").as_bytes());
    })
    .unwrap();
    // The Local API's address answers every request with a redirect there.
    let (lapi, _stop_lapi) = listen(&topo.gateway, move |mut conn| {
        let (first, _) = read_head(&conn, "x-api-key").unwrap_or_default();
        let path = first.split_whitespace().nth(1).unwrap_or("/").to_string();
        let to = format!("http://{other}{path}");
        let _ = write!(conn, "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\n\r\n");
    })
    .unwrap();
    let dir = TempDir::new("crowdsec-redirect");
    let key_file = dir.file("bouncer.key", &format!("{KEY}\n"));
    let config = dir.file(
        "takedown.toml",
        &format!(
            "interfaces = [\"{}\"]\n[[list]]\nname = \"crowdsec\"\nrefresh = 1\ntimeout = 2\n\
             crowdsec = {{ url = \"http://{lapi}\", api_key_file = \"{key_file}\" }}\n\
             [[list]]\nname = \"local\"\nfile = \"{}\"\n",
            Addrs::GATEWAY_IF,
            dir.file("local.txt", "203.0.113.7\n"),
        ),
    );
    let ctx = Ctx { topo, place: PinPlace::new("crowdsec-redirect"), config, _dir: dir };
    let daemon = ctx.start();
    let status = ctx.status_once("another origin");
    assert!(status.contains("redirected to another origin: refused"), "{status}");
    assert!(!ctx.blocked("198.51.100.9"), "nothing came from the other origin");
    daemon.stop().unwrap();
    let keys = keys.lock().unwrap();
    assert!(keys.iter().all(|k| k.is_none()), "the key went to another origin: {keys:?}");
}

#[kernel_test]
fn a_corrupt_state_file_with_the_local_api_down_keeps_the_pinned_entries() {
    let startup = start_of_stream(&[ban("198.51.100.9", "Ip", "4h")]);
    let (lapi, ctx) = with_lapi("cc", "crowdsec-corrupt", &startup);
    let daemon = ctx.start();
    assert!(ctx.blocked("198.51.100.9"));
    daemon.stop().unwrap();
    // The saved decisions are damaged and the Local API is down: no source, no copy.
    let saved = ctx.place.state.0.join("crowdsec-crowdsec.json");
    std::fs::write(&saved, b"{\"active\": trunc").unwrap();
    lapi.set_down(true);
    let daemon = ctx.start();
    assert!(ctx.blocked("198.51.100.9"), "the pinned filter's entry is the last good state");
    let status = ctx.status();
    assert!(status.contains("holding the 1 entry the pinned filter has for it"), "{status}");
    let err = daemon.stderr();
    assert!(err.contains("crowdsec-crowdsec.json.corrupt"), "set aside: {err}");
    // Once the Local API answers again, its decisions replace what was held.
    lapi.set_down(false);
    assert!(ctx.wait("198.51.100.9", true));
    let status = ctx.status_once("last refresh ok");
    assert!(!status.contains("holding"), "{status}");
    daemon.stop().unwrap();
}
