//! Fuzzing of everything takedown reads from outside: every list format's parser and the format
//! detector, the configuration, the control-socket request, and the state files (the cache of a
//! list, the manual list, the host table, the status). Inputs are seeds of each kind mutated by
//! proptest (bytes flipped, cut, repeated, spliced with tokens that parsers trip on) plus raw
//! bytes. Each input must be handled without a panic, within a time limit (no hang), and with an
//! output bounded by the input (memory).
//!
//! A short run is part of `cargo test`; `cargo xtask fuzz` runs a long one
//! (`TAKEDOWN_FUZZ_CASES` sets the cases per target).

use std::{path::Path, sync::mpsc, time::Duration};

use proptest::{prelude::*, test_runner::Config};
use takedown::{
    daemon::{config::Config as TakedownConfig, control::Request, hosts, manual, status},
    lists::{self, Format, ListOptions},
};

/// How long one input may take to be handled (a debug build on a busy 2-core machine).
const LIMIT: Duration = Duration::from_secs(10);

fn config() -> Config {
    let cases = std::env::var("TAKEDOWN_FUZZ_CASES").ok().and_then(|c| c.parse().ok());
    Config { cases: cases.unwrap_or(200), failure_persistence: None, ..Config::default() }
}

/// Runs `check` on `input` in a thread of its own; a panic or a run over [`LIMIT`] fails, naming
/// the input.
fn bounded(what: &str, input: Vec<u8>, check: fn(&[u8])) {
    let (tx, rx) = mpsc::channel();
    let shown = String::from_utf8_lossy(&input[..input.len().min(300)]).into_owned();
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(|| check(&input));
        let _ = tx.send(r.is_ok());
    });
    match rx.recv_timeout(LIMIT) {
        Ok(true) => {}
        Ok(false) => panic!("{what}: panicked on {shown:?}"),
        Err(_) => panic!("{what}: no answer within {LIMIT:?} on {shown:?}"),
    }
}

const LIST_SEEDS: [&str; 12] = [
    "# takedown list\n192.0.2.1\n198.51.100.0/24 ; note\n2001:db8::/48\nbad.example.com\n",
    "#\n# FireHOL netset\n#\n192.0.2.0/24\n203.0.113.7\n",
    "; Spamhaus DROP List\n192.0.2.0/24 ; SBL123\n198.51.100.0/25 ; SBL124\n",
    "{\"cidr\":\"192.0.2.0/24\",\"sblid\":\"SBL1\",\"rir\":\"arin\"}\n{\"type\":\"metadata\",\"timestamp\":1}\n",
    "first_seen_utc,dst_ip,dst_port,c2_status\n2026-01-01 00:00:00,192.0.2.7,443,online\n",
    "0.0.0.0 bad.example.com\n127.0.0.1 evil.example.org\n0.0.0.0 c2.example.net # x\n",
    "192.0.2.7:8080\nhttp://bad.example.org/x\n[2001:db8::7]:443\nevil.example.com\n",
    "{\"new\":[{\"scope\":\"Ip\",\"value\":\"192.0.2.7\",\"type\":\"ban\",\"duration\":\"4h\"},{\"scope\":\"Range\",\"value\":\"198.51.100.0/24\"}],\"deleted\":null}",
    "\u{feff}203.0.113.7\r\n2001:db8:bad::7\r\n::ffff:192.0.2.9\r\n",
    r#"{"type":"bundle","id":"bundle--1","objects":[{"type":"indicator","id":"indicator--a","pattern":"[ipv4-addr:value = '203.0.113.7' OR ipv6-addr:value IN ('2001:db8::1', '2001:db8::/48')]","pattern_type":"stix","valid_until":"2099-01-01T00:00:00Z"},{"type":"domain-name","id":"domain-name--b","value":"c2.example.net"}]}"#,
    r#"{"Event":{"info":"x","Attribute":[{"uuid":"a","type":"ip-dst|port","value":"192.0.2.7|443","to_ids":true},{"uuid":"b","type":"domain|ip","value":"c2.example|198.51.100.9","to_ids":"1"}],"Object":[{"Attribute":[{"uuid":"c","type":"ip-src","value":"2001:db8::/48","to_ids":true}]}]}}"#,
    "uuid,event_id,category,type,value,comment,to_ids,date\na,1,Network activity,ip-dst,192.0.2.7,,1,1\nb,1,Network activity,hostname,c2.example,,True,1\n",
];

const CONFIG_SEED: &str = r#"interfaces = ["eth0", "eth1"]
mode = "native"
allow = ["/etc/takedown/allow.txt"]
[guards]
block_own = false
accept_shrink = false
[report]
metrics = "127.0.0.1:9645"
event_rate = 100
[dns]
min_ttl = 60
max_ttl = 3600
[[list]]
name = "feed"
url = "https://lists.example.org/feed.txt"
refresh = 3600
timeout = 30
max_bytes = 100000000
direction = "dst"
[[list]]
name = "local"
file = "/etc/takedown/local.txt"
monitor = true
format = "csv"
column = "dst_ip"
"#;

const REQUEST_SEEDS: [&str; 3] = [
    "{\"op\":\"refresh\",\"list\":\"feed\"}",
    "{\"op\":\"refresh\"}",
    "{\"op\":\"reload-manual\"}",
];

/// The state files: a cache file, a manual list, a host table, a status file (as the daemon
/// writes it).
fn state_seeds() -> [String; 4] {
    let status = serde_json::to_string(&status::Status::default()).unwrap();
    [STATE_SEEDS[0].into(), STATE_SEEDS[1].into(), STATE_SEEDS[2].into(), status]
}

const STATE_SEEDS: [&str; 3] = [
    "{\"url\":\"https://lists.example.org/feed\",\"etag\":\"\\\"v2\\\"\",\"last_modified\":null,\"fetched\":7,\"entries\":2,\"bytes\":26}\n192.0.2.1\n198.51.100.0/24\n",
    "192.0.2.7 dst monitor # seen in a report\n2001:db8::/32 both\n",
    "[{\"address\":\"192.0.2.10\",\"first_seen\":1,\"last_seen\":2,\"events\":3,\"dropped\":3,\"contacted\":[\"203.0.113.7\"],\"lists\":[\"feed\"],\"services\":[\"udp/53\"],\"interfaces\":[\"td-g\"]}]",
];

/// Strings that parsers trip on.
const TOKENS: [&str; 32] = [
    "\n",
    "\r\n",
    ",",
    ";",
    "#",
    "/",
    "/0",
    "/33",
    "/129",
    ":",
    "::",
    "::ffff:",
    "\"",
    "{",
    "}",
    "[",
    "]",
    "\u{feff}",
    "\0",
    "0.0.0.0",
    "255.255.255.255",
    "-1",
    "99999999999999999999",
    "1e999",
    "\t",
    "xn--",
    "[[list]]\n",
    "= ",
    "http://u:p@h/?token=x",
    "..",
    "\u{202e}",
    "{}",
];

/// One mutation: (kind, position, length, byte, token).
type Edit = (u8, usize, usize, u8, usize);

fn mutate(seed: &str, edits: &[Edit]) -> Vec<u8> {
    let mut b = seed.as_bytes().to_vec();
    for &(kind, pos, len, byte, token) in edits {
        let pos = if b.is_empty() { 0 } else { pos % (b.len() + 1) };
        let end = (pos + len % 64).min(b.len());
        match kind % 6 {
            0 if pos < b.len() => b[pos] = byte,
            1 => drop(b.splice(pos..pos, TOKENS[token % TOKENS.len()].bytes())),
            2 => drop(b.drain(pos..end)),
            3 => {
                let piece = b[pos..end].repeat(1 + len % 200);
                drop(b.splice(pos..pos, piece));
            }
            4 => b.truncate(pos),
            _ => drop(b.splice(pos..pos, std::iter::repeat_n(byte, len % 20_000))),
        }
    }
    b
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    proptest::collection::vec(any::<Edit>(), 0..12)
}

fn raw() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..2000)
}

/// Every format, forced and detected: no panic; what comes out is bounded by what went in, and
/// a note quotes at most a short piece of its line.
fn check_list(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    let forced = <Format as clap::ValueEnum>::value_variants().iter().copied().map(Some);
    for format in std::iter::once(None).chain(forced) {
        let opts = ListOptions { format, ..Default::default() };
        let Ok(l) = lists::parse_text(Path::new("fuzz.txt"), &text, &opts) else { continue };
        let out = l.entries.len() + l.domains.len() + l.skipped.len() + l.warnings.len();
        assert!(out <= input.len() + 1, "{format:?}: {out} results from {} bytes", input.len());
        for note in l.skipped.iter().chain(&l.warnings) {
            assert!(note.reason.len() <= 1024, "{format:?}: a note of {} bytes", note.reason.len());
        }
    }
}

fn check_config(input: &[u8]) {
    if let Ok(c) = TakedownConfig::parse(&String::from_utf8_lossy(input)) {
        let _ = c.specs();
    }
}

fn check_request(input: &[u8]) {
    let _ = Request::parse(&String::from_utf8_lossy(input));
}

/// The state files, each written where the daemon would read it.
fn check_state(input: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("feed.cache"), input).unwrap();
    if let Ok(Some((body, _))) = takedown::sources::http::Cache::new(dir.path()).load("feed") {
        assert!(body.len() <= input.len());
    }
    let path = dir.path().join("manual.txt");
    std::fs::write(&path, input).unwrap();
    if let Ok(entries) = manual::load(&path) {
        assert!(entries.len() <= input.len());
    }
    let path = dir.path().join("hosts.json");
    std::fs::write(&path, input).unwrap();
    assert!(hosts::HostTable::load(&path, 100).len() <= 100);
    let path = dir.path().join("status.json");
    std::fs::write(&path, input).unwrap();
    let _ = status::Status::read(&path);
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn lists_and_the_detector(seed in 0..LIST_SEEDS.len(), e in edits()) {
        bounded("list", mutate(LIST_SEEDS[seed], &e), check_list);
    }

    #[test]
    fn lists_from_raw_bytes(bytes in raw()) {
        bounded("list", bytes, check_list);
    }

    #[test]
    fn the_configuration(e in edits()) {
        bounded("configuration", mutate(CONFIG_SEED, &e), check_config);
    }

    #[test]
    fn control_requests(seed in 0..REQUEST_SEEDS.len(), e in edits()) {
        bounded("control request", mutate(REQUEST_SEEDS[seed], &e), check_request);
    }

    #[test]
    fn state_files(seed in 0..4usize, e in edits()) {
        bounded("state file", mutate(&state_seeds()[seed], &e), check_state);
    }
}

#[test]
fn the_seeds_are_good_inputs() {
    for seed in LIST_SEEDS {
        let l = lists::parse_text(Path::new("seed"), seed, &ListOptions::default()).unwrap();
        assert!(!l.is_empty() && l.skipped.is_empty(), "{seed}: {:?}", l.skipped);
    }
    assert!(
        TakedownConfig::parse(CONFIG_SEED).is_ok(),
        "{:?}",
        TakedownConfig::parse(CONFIG_SEED).err()
    );
    for seed in REQUEST_SEEDS {
        Request::parse(seed).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("feed.cache"), STATE_SEEDS[0]).unwrap();
    assert!(takedown::sources::http::Cache::new(dir.path()).load("feed").unwrap().is_some());
    std::fs::write(dir.path().join("m.txt"), STATE_SEEDS[1]).unwrap();
    assert_eq!(manual::load(&dir.path().join("m.txt")).unwrap().len(), 2);
    std::fs::write(dir.path().join("h.json"), STATE_SEEDS[2]).unwrap();
    assert_eq!(hosts::HostTable::read(&dir.path().join("h.json")).unwrap().len(), 1);
    std::fs::write(dir.path().join("s.json"), &state_seeds()[3]).unwrap();
    assert!(status::Status::read(&dir.path().join("s.json")).is_some());
}
