//! MISP as a list source: a single event, the CSV export and a feed (directory and URL) load
//! their address attributes with each attribute's side (`ip-src` blocks packets from the
//! address, `ip-dst` packets to it); `to_ids` off, deleted attributes and other types stay
//! out (`--misp-all` takes `to_ids` off); a URL feed's refresh fetches only changed events; an
//! attribute leaves the maps when its decay score falls below its model's threshold; a feed
//! refresh cut by its deadline keeps the events it fetched.

use std::time::Duration;

use integration_tests::{
    PinPlace, TempDir, frames,
    http::{Behaviour, HttpServer},
    kernel_test, kernel_verdict,
    process::run_cli,
};
use td_netns::{Addrs, Topology};

fn attribute(uuid: &str, kind: &str, value: &str, to_ids: bool) -> String {
    format!(r#"{{"uuid":"{uuid}","type":"{kind}","value":"{value}","to_ids":{to_ids}}}"#)
}

/// One event holding `attributes`.
fn event(uuid: &str, attributes: &[String]) -> String {
    format!(
        r#"{{"Event":{{"uuid":"{uuid}","info":"takedown","Attribute":[{}]}}}}"#,
        attributes.join(",")
    )
}

/// The first event: 203.0.113.7 as a destination, 198.51.100.0/24 as a source, a domain, one
/// attribute without to_ids, one deleted and a hash.
fn first() -> String {
    let deleted =
        r#"{"uuid":"a5","type":"ip-dst","value":"192.0.2.77","to_ids":true,"deleted":true}"#;
    event(
        "11111111-1111-4111-8111-111111111111",
        &[
            attribute("a1", "ip-dst", "203.0.113.7", true),
            attribute("a2", "ip-src", "198.51.100.0/24", true),
            attribute("a3", "ip-dst|port", "2001:db8:bad::7|443", true),
            attribute("a4", "ip-dst", "192.0.2.66", false),
            deleted.to_string(),
            attribute(
                "a6",
                "sha256",
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                true,
            ),
        ],
    )
}

fn stdout(args: &[&str]) -> (Option<i32>, String) {
    let out = run_cli(None, args);
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn check_reads_an_event_the_csv_export_and_a_feed_directory() {
    let dir = TempDir::new("misp-check");
    let list = dir.file("event.json", &first());
    let (code, text) = stdout(&["check", "--verbose", &list]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("format misp, direction per entry (2 dst, 1 src)"), "{text}");
    assert!(text.contains("entries: 1 IPv4, 1 IPv6, 1 IPv4 prefixes"), "{text}");
    assert!(text.contains("attribute a4: to_ids is off"), "{text}");
    assert!(text.contains("attribute a5: deleted"), "{text}");
    let (_, all) = stdout(&["check", "--verbose", "--misp-all", &list]);
    assert!(all.contains("entries: 2 IPv4, 1 IPv6, 1 IPv4 prefixes"), "{all}");
    let (_, both) = stdout(&["check", "--direction", "both", &list]);
    assert!(both.contains("direction both"), "{both}");

    let csv = dir.file(
        "export.csv",
        "uuid,event_id,category,type,value,comment,to_ids,date\n\
         c1,7,Network activity,ip-src,203.0.113.9,,1,1700000000\n\
         c2,7,Network activity,hostname,c2.example,,1,1700000000\n\
         c3,7,Network activity,ip-dst,192.0.2.66,,0,1700000000\n",
    );
    let (code, text) = stdout(&["check", "--verbose", &csv]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("format misp-csv"), "{text}");
    assert!(text.contains("export.csv:4: skipped: attribute c3: to_ids is off"), "{text}");

    let feed = TempDir::new("misp-feed-dir");
    let second = "22222222-2222-4222-8222-222222222222";
    feed.file(
        "manifest.json",
        &format!(
            r#"{{"11111111-1111-4111-8111-111111111111":{{"timestamp":"1"}},"{second}":{{"timestamp":"1"}}}}"#
        ),
    );
    feed.file("11111111-1111-4111-8111-111111111111.json", &first());
    feed.file(
        &format!("{second}.json"),
        &event(second, &[attribute("b1", "ip-dst", "203.0.113.99", true)]),
    );
    let (code, text) = stdout(&["check", &feed.0.display().to_string()]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("format misp") && text.contains("entries: 2 IPv4, 1 IPv6"), "{text}");
    // An event the manifest names but the feed lacks: the feed is refused, naming it.
    std::fs::remove_file(feed.0.join(format!("{second}.json"))).unwrap();
    let out = run_cli(None, &["check", &feed.0.display().to_string()]);
    let err =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("incomplete") && err.contains(second), "{err}");
}

#[kernel_test]
fn a_url_feed_enforces_each_side_and_refetches_only_changed_events() {
    let topo = Topology::new("mf").unwrap();
    let dir = TempDir::new("misp-url");
    let (one, two) =
        ("11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222");
    let files = |ts: &str, second: &str| {
        let manifest = format!(r#"{{"{one}":{{"timestamp":"1"}},"{two}":{{"timestamp":"{ts}"}}}}"#);
        Behaviour::Files(vec![
            ("/feed/manifest.json".into(), manifest),
            (format!("/feed/{one}.json"), first()),
            (format!("/feed/{two}.json"), event(two, &[attribute("b1", "ip-dst", second, true)])),
        ])
    };
    let server = HttpServer::start(&topo.gateway, files("1", "203.0.113.99")).unwrap();
    let config = dir.url_config("misp", &server.url("/feed/manifest.json"), "");
    let place = PinPlace::new("misp");
    let daemon = place.start(&topo.gateway, &["run", "--config", &config]);
    let blocked = |a| place.blocked(&topo.gateway, Addrs::GATEWAY_IF, a);
    assert!(blocked("203.0.113.7") && blocked("2001:db8:bad::7") && blocked("203.0.113.99"));
    assert!(!blocked("192.0.2.66") && !blocked("192.0.2.77"), "to_ids off, deleted");
    // ip-src: traffic from the network is dropped, traffic to it is not.
    assert!(!blocked("198.51.100.9"));
    let from = frames::ip("198.51.100.9", "192.0.2.10");
    assert_eq!(kernel_verdict(&topo.gateway, Addrs::GATEWAY_IF, &from), 1, "XDP_DROP");

    server.requests.lock().unwrap().clear();
    server.set(files("2", "203.0.113.100"));
    let (code, out, err) = place.cli(&topo.gateway, &["refresh"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(blocked("203.0.113.100") && !blocked("203.0.113.99") && blocked("203.0.113.7"));
    let paths: Vec<String> = server.requests.lock().unwrap().iter().map(|r| r.0.clone()).collect();
    assert_eq!(paths, ["/feed/manifest.json".to_string(), format!("/feed/{two}.json")]);

    // The server gone: the refresh fails, the feed in force stays.
    server.set(Behaviour::Fail);
    let (code, out, _) = place.cli(&topo.gateway, &["refresh"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(blocked("203.0.113.100") && blocked("203.0.113.7"));
    daemon.stop().unwrap();
}

#[kernel_test]
fn an_attribute_leaves_the_maps_when_its_decay_score_falls_below_the_threshold() {
    let topo = Topology::new("md").unwrap();
    let dir = TempDir::new("misp-decay");
    // Linear decay (speed 1) from 100 to the threshold 50 over half the lifetime: a lifetime of
    // 8 s makes the attribute decay 4 s after its timestamp, now.
    let now = takedown::daemon::status::now();
    let lifetime_days = 8.0 / 86_400.0;
    let decaying = format!(
        r#"{{"uuid":"d1","type":"ip-dst","value":"203.0.113.30","to_ids":true,"timestamp":"{now}",
            "decay_score":[{{"score":100,"base_score":100,"decayed":false,"DecayingModel":{{"name":"short",
            "parameters":{{"lifetime":{lifetime_days},"decay_speed":1,"threshold":50}}}}}}]}}"#
    );
    let list = dir.file(
        "event.json",
        &event(
            "33333333-3333-4333-8333-333333333333",
            &[attribute("k1", "ip-dst", "203.0.113.7", true), decaying],
        ),
    );
    let place = PinPlace::new("misp-decay");
    let daemon = place.start(&topo.gateway, &["run", "-i", Addrs::GATEWAY_IF, "-l", &list]);
    let blocked = |a| place.blocked(&topo.gateway, Addrs::GATEWAY_IF, a);
    assert!(blocked("203.0.113.30"), "decays 4 s after {now}");
    let end = std::time::Instant::now() + std::time::Duration::from_secs(12);
    while blocked("203.0.113.30") && std::time::Instant::now() < end {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let left = takedown::daemon::status::now();
    assert!(!blocked("203.0.113.30"), "still enforced {} s after it decayed", left - now - 4);
    assert!(left >= now + 4, "left before it decayed");
    assert!(blocked("203.0.113.7"), "the rest stays");
    daemon.stop().unwrap();
}

#[kernel_test]
fn a_feed_refresh_cut_by_its_deadline_keeps_the_events_it_fetched() {
    let topo = Topology::new("md").unwrap();
    let dir = TempDir::new("misp-deadline");
    let uuids: Vec<String> =
        (1..=3).map(|k| format!("{k}{k}{k}{k}{k}{k}{k}{k}-1111-4111-8111-111111111111")).collect();
    let files = |ts: &str| {
        let manifest: Vec<String> =
            uuids.iter().map(|u| format!(r#""{u}":{{"timestamp":"{ts}"}}"#)).collect();
        let mut f =
            vec![("/feed/manifest.json".to_string(), format!("{{{}}}", manifest.join(",")))];
        for (k, u) in uuids.iter().enumerate() {
            let attr =
                attribute(&format!("a{k}"), "ip-dst", &format!("203.0.113.{}", 10 + k), true);
            f.push((format!("/feed/{u}.json"), event(u, &[attr])));
        }
        Behaviour::Files(f)
    };
    let server = HttpServer::start(&topo.gateway, files("1")).unwrap();
    let extra = "timeout = 3\ndeadline = 5\n"; // and 3 attempts, as by default
    let config = dir.url_config("misp", &server.url("/feed/manifest.json"), extra);
    let place = PinPlace::new("misp-deadline");
    let daemon = place.start(&topo.gateway, &["run", "--config", &config]);
    // Every event changed, and each answer takes 2 s: the manifest and one event fit in the
    // 5 s deadline, the next event is cut by it.
    server.set(Behaviour::Delayed(Duration::from_secs(2), Box::new(files("2"))));
    let (code, out, _) = place.cli(&topo.gateway, &["refresh"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("deadline of 5 s"), "{out}");
    // The next try fetches only what it lacks.
    server.requests.lock().unwrap().clear();
    server.set(files("2"));
    let (code, out, _) = place.cli(&topo.gateway, &["refresh"]);
    assert_eq!(code, Some(0), "{out}");
    let paths: Vec<String> = server.requests.lock().unwrap().iter().map(|r| r.0.clone()).collect();
    let want = [
        "/feed/manifest.json".to_string(),
        format!("/feed/{}.json", uuids[1]),
        format!("/feed/{}.json", uuids[2]),
    ];
    assert_eq!(paths, want, "the event fetched before the deadline is kept");
    daemon.stop().unwrap();
}
