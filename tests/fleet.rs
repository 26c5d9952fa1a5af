//! Many gateways, one list: five daemons, each in its own gateway namespace, pull the same
//! signed list from one HTTPS server (a certificate from the operator's CA, ETags) in another
//! namespace. A new version reaches all five within their refresh interval; with the server
//! down all five keep the last good list; a tampered list is refused by all five.

use std::time::{Duration, Instant};

use integration_tests::{
    PinPlace, TempDir,
    https::HttpsFiles,
    kernel_test,
    minisign::{keys, sign},
    process::{Running, takedown_bin},
};
use td_netns::{Addrs, NetNs, Topology};

const GATEWAYS: usize = 5;
/// The list server's address, on its namespace's loopback; each gateway routes to it over a
/// veth of its own.
const SERVER: &str = "10.77.0.1";
/// Seconds between two refreshes of each gateway.
const REFRESH: u64 = 2;

struct Gateway {
    topo: Topology,
    place: PinPlace,
}

impl Gateway {
    /// Gateway `k` (1-based), linked to the server's namespace by `td-f` <-> `td-s<k>`.
    fn new(k: usize, server: &NetNs) -> Self {
        let topo = Topology::new(&format!("f{k}")).unwrap();
        let gw = &topo.gateway;
        let peer = format!("td-s{k}");
        gw.ip(&[
            "link",
            "add",
            "td-f",
            "type",
            "veth",
            "peer",
            "name",
            &peer,
            "netns",
            server.name(),
        ])
        .unwrap();
        gw.ip(&["addr", "add", &format!("10.77.{k}.2/24"), "dev", "td-f"]).unwrap();
        server.ip(&["addr", "add", &format!("10.77.{k}.1/24"), "dev", &peer]).unwrap();
        gw.ip(&["link", "set", "td-f", "up"]).unwrap();
        server.ip(&["link", "set", &peer, "up"]).unwrap();
        gw.ip(&["route", "add", &format!("{SERVER}/32"), "via", &format!("10.77.{k}.1")]).unwrap();
        Self { topo, place: PinPlace::new(&format!("fleet{k}")) }
    }

    /// Runs the daemon on `config`, trusting the CA in `ca`.
    fn start(&self, config: &str, ca: &str) -> Running {
        let mut cmd = self.topo.gateway.command(takedown_bin().to_str().unwrap());
        cmd.args(["run", "--config", config]).args(self.place.args()).env("SSL_CERT_FILE", ca);
        Running::spawn(cmd).expect("takedown starts")
    }

    fn blocked(&self, addr: &str) -> bool {
        self.place.blocked(&self.topo.gateway, Addrs::GATEWAY_IF, addr)
    }

    fn status(&self) -> String {
        self.place.cli(&self.topo.gateway, &["status"]).1
    }
}

/// Waits (at most `limit`) until every gateway agrees with `want`; the time it took.
fn all(gws: &[Gateway], limit: Duration, want: impl Fn(&Gateway) -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if gws.iter().all(&want) {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    None
}

#[kernel_test]
fn five_gateways_follow_one_signed_list_and_keep_it_through_an_outage() {
    let server_ns = NetNs::new("fls").unwrap();
    server_ns.ip(&["addr", "add", &format!("{SERVER}/32"), "dev", "lo"]).unwrap();
    let dir = TempDir::new("fleet");
    let key = keys(&dir.0);
    // A version of the list and its signature, as the CERT publishes them.
    let publish = |body: &str| {
        let list = dir.file("takedown.txt", body);
        sign(&dir.0, &list);
        let sig = std::fs::read_to_string(format!("{list}.minisig")).unwrap();
        vec![("/takedown.txt".to_string(), body.to_string()), ("/takedown.txt.minisig".into(), sig)]
    };
    let v1 = publish("203.0.113.7\n203.0.113.8\n");
    let server = HttpsFiles::start(&server_ns, SERVER, v1).unwrap();
    let ca = dir.file("ca.pem", &server.ca_pem);
    let config = dir.file(
        "takedown.toml",
        &format!(
            "interfaces = [\"{}\"]\n[[list]]\nname = \"cert\"\nurl = \"{}\"\nrefresh = {REFRESH}\n\
             timeout = 2\nattempts = 1\nminisign_key = \"{key}\"\n",
            Addrs::GATEWAY_IF,
            server.url("/takedown.txt")
        ),
    );
    let gws: Vec<Gateway> = (1..=GATEWAYS).map(|k| Gateway::new(k, &server_ns)).collect();
    let daemons: Vec<Running> = gws.iter().map(|g| g.start(&config, &ca)).collect();
    assert!(gws.iter().all(|g| g.blocked("203.0.113.7") && g.blocked("203.0.113.8")));
    assert!(gws.iter().all(|g| !g.blocked("203.0.113.9")));

    // One new version: every gateway enforces it within its refresh interval (plus a fetch).
    server.set_files(publish("203.0.113.8\n203.0.113.9\n203.0.113.10\n"));
    let limit = Duration::from_secs(REFRESH + 3);
    let took = all(&gws, limit, |g| g.blocked("203.0.113.9") && !g.blocked("203.0.113.7"));
    assert!(took.is_some(), "not every gateway took the new list within {limit:?}");
    // Unchanged since: the gateways ask with the ETag and get a 304.
    server.requests.lock().unwrap().clear();
    std::thread::sleep(Duration::from_secs(REFRESH + 1));
    let asked = server.requests.lock().unwrap().clone();
    let lists: Vec<_> = asked.iter().filter(|(p, _)| p == "/takedown.txt").collect();
    assert!(lists.len() >= GATEWAYS && lists.iter().all(|(_, inm)| inm.is_some()), "{asked:?}");

    // The server down: all five keep the last good list and say the refresh failed.
    server.set_down(true);
    let failed = all(&gws, limit, |g| g.status().contains("FAILED"));
    assert!(failed.is_some(), "{}", gws[0].status());
    assert!(gws.iter().all(|g| g.blocked("203.0.113.9") && g.blocked("203.0.113.10")));

    // Back up with a tampered list (the last signature, other content): refused by all five.
    let mut tampered = publish("203.0.113.8\n203.0.113.9\n203.0.113.10\n");
    tampered[0].1 = "198.51.100.66\n203.0.113.8\n203.0.113.9\n203.0.113.10\n".into();
    server.set_files(tampered);
    server.set_down(false);
    let refused = all(&gws, limit, |g| g.status().contains("the signature does not match"));
    assert!(refused.is_some(), "{}", gws[0].status());
    assert!(gws.iter().all(|g| !g.blocked("198.51.100.66") && g.blocked("203.0.113.9")));
    for d in daemons {
        d.stop().unwrap();
    }
}
