//! Domain entries against a DNS server on loopback inside a test namespace (never the
//! internet): the resolver, and `takedown run` following the answers as they change.

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use integration_tests::{TempDir, dns::DnsServer, kernel_test, process::Running};
use takedown::{
    plan::Meta,
    sources::dns::{DnsLookup, Domains, Policy},
};
use td_netns::{Addrs, NetNs, Topology, in_netns, ping};

#[kernel_test]
fn resolver_reads_a_and_aaaa_with_their_ttl() {
    let ns = NetNs::new("dr").unwrap();
    let server = DnsServer::start(&ns).unwrap();
    server.set("evil.example", &["203.0.113.7", "2001:db8::7"], 300);
    server.set("Bad.Example", &["203.0.113.7"], 5);
    let addr = server.addr;
    let (domains, round) = in_netns(&ns, move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let lookup = DnsLookup::new(&[addr], Duration::from_secs(2))?;
        let meta = Meta { flags: 3, lists: 1 };
        let names = ["evil.example", "bad.example", "gone.example"].map(|n| (n.to_string(), meta));
        let t0 = Instant::now();
        let mut d = Domains::new(names, t0);
        let round = rt.block_on(d.refresh_due(&lookup, Policy::default(), t0));
        let evil_ttl = d.table["evil.example"].next - t0;
        let bad_ttl = d.table["bad.example"].next - t0;
        Ok((d, (round, evil_ttl, bad_ttl)))
    })
    .unwrap();
    let (round, evil_ttl, bad_ttl) = round;
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert_eq!(domains.table["evil.example"].addrs, [ip("203.0.113.7"), ip("2001:db8::7")]);
    assert_eq!(domains.table["bad.example"].addrs, [ip("203.0.113.7")]);
    // The TTL the server gave (300 s) sets the next lookup; 5 s is raised to the 60 s minimum.
    assert!(
        (Duration::from_secs(295)..=Duration::from_secs(300)).contains(&evil_ttl),
        "{evil_ttl:?}"
    );
    assert_eq!(bad_ttl, Duration::from_secs(60));
    assert_eq!(round.failed.len(), 1, "{:?}", round.failed);
    assert_eq!(round.failed[0].0, "gone.example");
    let shared = domains.resolved().into_iter().find(|r| r.addr == ip("203.0.113.7")).unwrap();
    assert_eq!(shared.names, ["bad.example", "evil.example"]);
    assert!(server.queries() >= 6, "A and AAAA for three names");
}

/// Pings `dst` until `want` replies come back, for at most `limit`.
fn wait_for_pings(topo: &Topology, dst: &str, want: u32, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if ping(&topo.client, None, dst, 1).unwrap() == want {
            return true;
        }
    }
    false
}

#[kernel_test]
fn run_enforces_domains_and_follows_their_addresses() {
    let topo = Topology::new("dd").unwrap();
    let server = DnsServer::start(&topo.gateway).unwrap();
    server.set("evil.example", &[Addrs::TAKEDOWN_V4], 1);
    // A sinkholed name that resolves to the gateway itself: never blocked.
    server.set("sink.example", &[Addrs::GATEWAY_V4], 1);
    let dir = TempDir::new("domains-run");
    let list = dir.file("trail.txt", "evil.example\nhttp://sink.example/gate.php\ngone.example\n");
    let resolver = server.addr.to_string();
    let args = [
        "run",
        "-i",
        Addrs::GATEWAY_IF,
        "-l",
        &list,
        "--resolver",
        &resolver,
        "--dns-min-ttl",
        "1",
        "--dns-max-ttl",
        "1",
    ];
    let run = Running::start(&topo.gateway, &args).unwrap();
    assert!(
        run.stdout().contains("domains: 2 of 3 resolved to 2 addresses, 1 failed"),
        "{}",
        run.stdout()
    );
    assert_eq!(
        ping(&topo.client, None, Addrs::TAKEDOWN_V4, 2).unwrap(),
        0,
        "evil.example's address"
    );
    assert_eq!(ping(&topo.client, None, Addrs::SERVER_V4, 2).unwrap(), 2);
    assert_eq!(
        ping(&topo.client, None, Addrs::GATEWAY_V4, 2).unwrap(),
        2,
        "sinkhole = own address"
    );
    // The name moves: within a few TTLs the new address drops and the old one passes again.
    server.set("evil.example", &[Addrs::SERVER_V4], 1);
    assert!(
        wait_for_pings(&topo, Addrs::SERVER_V4, 0, Duration::from_secs(15)),
        "new address not blocked"
    );
    assert_eq!(ping(&topo.client, None, Addrs::TAKEDOWN_V4, 2).unwrap(), 2, "old address released");
    let (status, _) = run.stop().unwrap();
    assert!(status.success());
}
