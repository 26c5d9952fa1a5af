//! Unit tests of domain resolution bookkeeping, with a scripted resolver.

use std::{cell::RefCell, collections::HashMap};

use super::*;

/// Answers from a table; a missing name fails.
struct Fake(RefCell<HashMap<String, (Vec<IpAddr>, Duration)>>, RefCell<Vec<String>>);

impl Fake {
    fn new() -> Self {
        Self(RefCell::new(HashMap::new()), RefCell::new(Vec::new()))
    }
    fn set(&self, name: &str, addrs: &[&str], ttl: u64) {
        let addrs = addrs.iter().map(|a| a.parse().unwrap()).collect();
        self.0.borrow_mut().insert(name.into(), (addrs, Duration::from_secs(ttl)));
    }
    fn forget(&self, name: &str) {
        self.0.borrow_mut().remove(name);
    }
}

impl Lookup for Fake {
    async fn lookup(&self, name: &str) -> Result<(Vec<IpAddr>, Duration), String> {
        self.1.borrow_mut().push(name.to_string());
        self.0.borrow().get(name).cloned().ok_or_else(|| "NXDOMAIN".to_string())
    }
}

fn block<T>(f: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

const POLICY: Policy =
    Policy { min_ttl: Duration::from_secs(60), max_ttl: Duration::from_secs(3600), concurrency: 4 };

fn meta(lists: u64) -> Meta {
    Meta { flags: 3, lists }
}

#[test]
fn resolves_tags_and_clamps_ttls() {
    let fake = Fake::new();
    fake.set("evil.example", &["203.0.113.7", "2001:db8::7"], 5);
    fake.set("bad.example", &["203.0.113.7"], 86_400);
    let t0 = Instant::now();
    let mut d =
        Domains::new([("evil.example".into(), meta(1)), ("bad.example".into(), meta(2))], t0);
    let round = block(d.refresh_due(&fake, POLICY, t0));
    assert_eq!((round.looked_up, round.failed.len(), round.changed), (2, 0, true));
    // TTL 5 s is raised to the 60 s minimum, one day lowered to the one-hour maximum.
    assert_eq!(d.table["evil.example"].next, t0 + Duration::from_secs(60));
    assert_eq!(d.table["bad.example"].next, t0 + Duration::from_secs(3600));
    let resolved = d.resolved();
    assert_eq!(resolved.len(), 2);
    let shared =
        resolved.iter().find(|r| r.addr == "203.0.113.7".parse::<IpAddr>().unwrap()).unwrap();
    assert_eq!(shared.meta.lists, 3, "an address keeps every list whose domains resolve to it");
    assert_eq!(shared.names, ["bad.example", "evil.example"], "it remembers the domains");
    assert_eq!(d.next_due(), Some(t0 + Duration::from_secs(60)));
}

#[test]
fn only_due_domains_are_looked_up_and_changes_are_reported() {
    let fake = Fake::new();
    fake.set("evil.example", &["203.0.113.7"], 60);
    fake.set("bad.example", &["203.0.113.8"], 3600);
    let t0 = Instant::now();
    let mut d =
        Domains::new([("evil.example".into(), meta(1)), ("bad.example".into(), meta(1))], t0);
    block(d.refresh_due(&fake, POLICY, t0));
    fake.1.borrow_mut().clear();
    let t1 = t0 + Duration::from_secs(61);
    let round = block(d.refresh_due(&fake, POLICY, t1));
    assert_eq!(*fake.1.borrow(), ["evil.example"]);
    assert!(!round.changed, "same answer: no change");
    fake.set("evil.example", &["198.51.100.7"], 60);
    let round = block(d.refresh_due(&fake, POLICY, t1 + Duration::from_secs(61)));
    assert!(round.changed);
    assert_eq!(d.table["evil.example"].addrs, ["198.51.100.7".parse::<IpAddr>().unwrap()]);
}

#[test]
fn failures_keep_the_last_addresses_and_back_off() {
    let fake = Fake::new();
    fake.set("evil.example", &["203.0.113.7"], 60);
    let t0 = Instant::now();
    let mut d = Domains::new([("evil.example".into(), meta(1))], t0);
    block(d.refresh_due(&fake, POLICY, t0));
    fake.forget("evil.example");
    let t1 = t0 + Duration::from_secs(60);
    let round = block(d.refresh_due(&fake, POLICY, t1));
    assert_eq!(round.failed, [("evil.example".to_string(), "NXDOMAIN".to_string())]);
    assert!(!round.changed);
    let s = &d.table["evil.example"];
    assert_eq!(s.addrs, ["203.0.113.7".parse::<IpAddr>().unwrap()], "last known addresses kept");
    assert_eq!(s.error.as_deref(), Some("NXDOMAIN"));
    assert_eq!(s.next, t1 + Duration::from_secs(60));
    let t2 = s.next;
    block(d.refresh_due(&fake, POLICY, t2));
    assert_eq!(d.table["evil.example"].next, t2 + Duration::from_secs(120), "back-off doubles");
    fake.set("evil.example", &["203.0.113.7"], 60);
    let t3 = d.table["evil.example"].next;
    block(d.refresh_due(&fake, POLICY, t3));
    assert_eq!(d.table["evil.example"].failures, 0);
    assert_eq!(d.table["evil.example"].error, None);
}

#[test]
fn an_empty_answer_counts_as_a_failure() {
    let fake = Fake::new();
    fake.set("evil.example", &[], 60);
    let t0 = Instant::now();
    let mut d = Domains::new([("evil.example".into(), meta(1))], t0);
    let round = block(d.refresh_due(&fake, POLICY, t0));
    assert_eq!(round.failed.len(), 1);
    assert!(d.resolved().is_empty());
}
