//! The host table's tests: aggregation, bounds, hosts only reached, corrupt files, marks of
//! the connection journal.

use super::*;

fn ev(inside: [u8; 4], remote: [u8; 4], dst: bool) -> Event {
    let mut e = Event {
        family: 4,
        proto: 17,
        remote_port: 443,
        lists: 1,
        kind: EV_DROPPED,
        ..Default::default()
    };
    e.inside[..4].copy_from_slice(&inside);
    e.remote[..4].copy_from_slice(&remote);
    if dst {
        e.kind |= EV_DST;
    }
    e
}

#[test]
fn a_table_without_a_file_keeps_its_hosts() {
    let names = Names { lists: &|_| vec![], interface: &|_| "eth1".into() };
    let mut t = HostTable::new(100);
    assert!(t.record(&ev([192, 0, 2, 10], [203, 0, 113, 7], true), 1, &names).is_some());
    assert!(t.record(&ev([192, 0, 2, 11], [203, 0, 113, 7], true), 2, &names).is_some());
    assert!(t.record(&ev([192, 0, 2, 10], [203, 0, 113, 7], true), 3, &names).is_none(), "known");
    assert_eq!(t.len(), 2);
}

#[test]
fn aggregates_per_host_and_forgets_the_oldest() {
    let names = Names { lists: &|_| vec!["drop".into()], interface: &|_| "eth1".into() };
    let mut t = HostTable::load(Path::new("/nonexistent"), 2);
    assert!(t.record(&ev([192, 0, 2, 10], [203, 0, 113, 7], true), 100, &names).is_some());
    assert!(t.record(&ev([192, 0, 2, 10], [203, 0, 113, 8], true), 105, &names).is_none());
    assert!(t.record(&ev([192, 0, 2, 11], [203, 0, 113, 7], true), 110, &names).is_some());
    let hosts = t.recent(0);
    assert_eq!(hosts[0].address, "192.0.2.11");
    let h = &hosts[1];
    assert_eq!((h.first_seen, h.last_seen, h.events, h.dropped), (100, 105, 2, 2));
    assert_eq!(h.contacted.iter().collect::<Vec<_>>(), ["203.0.113.7", "203.0.113.8"]);
    assert!(
        h.services.contains("udp/443") && h.lists.contains("drop") && h.interfaces.contains("eth1")
    );
    assert_eq!(t.recent(106).len(), 1);
    // A third host: the one seen longest ago goes.
    t.record(&ev([192, 0, 2, 12], [203, 0, 113, 7], true), 120, &names);
    let addrs: Vec<String> = t.recent(0).into_iter().map(|h| h.address).collect();
    assert_eq!(addrs, ["192.0.2.12", "192.0.2.11"]);
}

/// A listed scanner (or a spoofed listed source) reaching many inside hosts makes none of
/// them infected, and never pushes an infected host out of a full table.
#[test]
fn hosts_only_reached_are_apart_and_never_evict_an_infected_one() {
    let names = Names { lists: &|_| vec![], interface: &|_| "eth1".into() };
    let mut t = HostTable::new(3);
    assert!(t.record(&ev([192, 0, 2, 10], [203, 0, 113, 7], true), 1, &names).is_some());
    for k in 0..61u8 {
        let reached = ev([192, 0, 2, 100 + k], [203, 0, 113, 7], false);
        assert!(t.record(&reached, 2 + u64::from(k), &names).is_none(), "not infected");
    }
    assert_eq!((t.len(), t.infected()), (3, 1));
    assert!(t.recent(0).iter().any(|h| h.address == "192.0.2.10" && h.infected()));
    // A reached host that answers the listed address becomes infected, said once.
    let answers = ev([192, 0, 2, 160], [203, 0, 113, 7], true);
    assert!(t.record(&answers, 100, &names).is_some(), "infected now");
    assert!(t.record(&answers, 101, &names).is_none(), "said once");
    // Two infected hosts and a full table: a new sender pushes the reached one out first.
    t.record(&ev([192, 0, 2, 11], [203, 0, 113, 7], true), 102, &names);
    assert_eq!((t.len(), t.infected()), (3, 3));
    t.record(&ev([192, 0, 2, 99], [203, 0, 113, 7], false), 103, &names);
    assert_eq!(t.infected(), 3, "an inbound contact pushes out no infected host");
}

#[test]
fn a_corrupt_table_is_kept_aside_and_said_so() {
    let dir = std::env::temp_dir().join(format!("td-hosts-corrupt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("hosts.json");
    std::fs::write(&path, "[{\"address\": truncated").unwrap();
    assert!(HostTable::read(&path).unwrap_err().to_string().contains("is corrupt"));
    assert!(path.exists(), "reading it moves nothing");
    assert!(HostTable::load(&path, 10).is_empty());
    let aside = std::fs::read_to_string(dir.join("hosts.json.corrupt")).unwrap();
    assert_eq!(aside, "[{\"address\": truncated", "the evidence is kept");
    // A second corrupt table never overwrites the first one's copy.
    std::fs::write(&path, "[{\"second\"").unwrap();
    assert!(HostTable::load(&path, 10).is_empty());
    assert_eq!(std::fs::read_to_string(dir.join("hosts.json.corrupt")).unwrap(), aside);
    let second = std::fs::read_to_string(dir.join("hosts.json.corrupt.2")).unwrap();
    assert_eq!(second, "[{\"second\"");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_contact_found_again_is_known_and_not_counted_twice() {
    let contact = |count| Contact {
        remote: "198.51.100.7".parse().unwrap(),
        entry: "198.51.100.7/32".parse().unwrap(),
        proto: "tcp",
        port: 8443,
        opened_by: "inside",
        first: 100,
        last: 200,
        count,
    };
    let host = "192.0.2.10".parse().unwrap();
    let mut t = HostTable::new(10);
    assert!(t.mark_exposed(&Exposed { host, contacts: vec![contact(3)] }));
    assert!(t.knows("192.0.2.10", &contact(3)));
    // Found again (a fresh start looks every entry up): the same 3 connections.
    assert!(t.mark_exposed(&Exposed { host, contacts: vec![contact(3)] }));
    let b = t.recent(0)[0].before_listed.clone().unwrap();
    assert_eq!((b.connections, b.first, b.last), (3, 100, 200));
    // More connections since: the new count, said again.
    assert!(!t.knows("192.0.2.10", &contact(5)));
    t.mark_exposed(&Exposed { host, contacts: vec![contact(5)] });
    assert_eq!(t.recent(0)[0].before_listed.as_ref().unwrap().connections, 5);
    assert_eq!(t.exposed(), 1);
}
