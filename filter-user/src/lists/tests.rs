//! Unit tests of list parsing: fields, every format with small fixtures, detection, and
//! property tests.

use std::path::Path;

use proptest::prelude::*;

use super::{token::*, *};

fn net(s: &str) -> (Target, Kind) {
    let kind = if s.contains('/') { Kind::Cidr } else { Kind::Ip };
    let net = s.parse().unwrap_or_else(|_| IpNet::from(s.parse::<std::net::IpAddr>().unwrap()));
    (Target::Net { net, masked: false }, kind)
}

fn parse(text: &str) -> ParsedList {
    parse_text(Path::new("t.txt"), text, &ListOptions::default()).unwrap()
}

fn nets(l: &ParsedList) -> Vec<String> {
    l.entries.iter().map(|e| e.net.to_string()).collect()
}

fn names(l: &ParsedList) -> Vec<&str> {
    l.domains.iter().map(|d| d.name.as_str()).collect()
}

#[test]
fn fields() {
    assert_eq!(classify("192.0.2.1"), Ok(net("192.0.2.1")));
    assert_eq!(classify("2001:db8::1"), Ok(net("2001:db8::1")));
    assert_eq!(classify("198.51.100.0/24"), Ok(net("198.51.100.0/24")));
    let ipport = |s: &str, a: &str| {
        let (t, _) = net(a);
        assert_eq!(classify(s), Ok((t, Kind::IpPort)), "{s}");
    };
    ipport("192.0.2.9:6677", "192.0.2.9");
    ipport("[2001:db8::9]:443", "2001:db8::9");
    ipport("[2001:db8::a]", "2001:db8::a");
    let dom = |s: &str, d: &str, k: Kind| {
        assert_eq!(classify(s), Ok((Target::Domain(d.into()), k)), "{s}")
    };
    dom("Evil.Example.", "evil.example", Kind::Domain);
    dom("evil.example:8080", "evil.example", Kind::Domain);
    dom("http://evil.example:8080/gate.php?x=1", "evil.example", Kind::Url);
    dom("https://user@evil.example/", "evil.example", Kind::Url);
    dom("evil.example/data", "evil.example", Kind::Url);
    dom("xn--80ak6aa92e.com", "xn--80ak6aa92e.com", Kind::Domain);
    assert_eq!(classify("http://192.0.2.7:81/x").map(|(t, _)| t), Ok(net("192.0.2.7").0));
    assert_eq!(classify("http://[2001:db8::7]:81/x").map(|(t, _)| t), Ok(net("2001:db8::7").0));
    for junk in [
        "/x.php",
        "ttp",
        "84.54.0.51.78",
        "a.4b",
        "a.b",
        "192.0.2.300",
        "10.0.0.0/33",
        "192.0.2.9:port",
        "192.0.2.9:70000",
        "[2001:db8::9]:",
        "-bad.example",
        "http:///x",
        "ex ample.com",
        "",
    ] {
        assert!(classify(junk).is_err(), "{junk:?} must be skipped");
    }
    assert!(classify("/x.php").unwrap_err().contains("a path"));
    assert!(classify("10.0.0.0/33").unwrap_err().contains("not a valid CIDR"));
}

#[test]
fn plain_lines() {
    let l = parse(
        "# header\n\n192.0.2.1\n203.0.113.0/24 ; SBL1\n192.0.2.4 # note\n192.0.2.5#n\n  \t192.0.2.6 \t\r\n\
         192.0.2.7\t10\n192.0.2.77/24\n2001:db8::/48 \n",
    );
    assert_eq!(l.format, Format::SpamhausDrop, "the `; SBL` comment names the format");
    assert_eq!(
        nets(&l),
        [
            "192.0.2.1/32",
            "203.0.113.0/24",
            "192.0.2.4/32",
            "192.0.2.5/32",
            "192.0.2.6/32",
            "192.0.2.7/32",
            "192.0.2.0/24",
            "2001:db8::/48"
        ]
    );
    assert_eq!(
        l.warnings,
        [LineNote { line: 9, reason: "host bits set, loaded as 192.0.2.0/24".into() }]
    );
    assert!(l.skipped.is_empty());
}

#[test]
fn junk_is_skipped_with_line_and_reason() {
    let l = parse("192.0.2.1\n/x.php\n192.0.2.300\n10.0.0.0/33\n198.51.100.1\n");
    assert_eq!(nets(&l), ["192.0.2.1/32", "198.51.100.1/32"]);
    assert_eq!(l.entries[1].line, 5);
    let lines: Vec<_> = l.skipped.iter().map(|s| s.line).collect();
    assert_eq!(lines, [2, 3, 4]);
}

#[test]
fn trail_lines() {
    let l = parse(
        "# maltrail\n192.0.2.9:6677\nevil.example\nhttp://bad.example/gate.php#frag\n/x.php\nevil.example\n",
    );
    assert_eq!(l.format, Format::Trail);
    assert_eq!(nets(&l), ["192.0.2.9/32"]);
    assert_eq!(names(&l), ["evil.example", "bad.example", "evil.example"]);
    assert_eq!(l.kinds[&Kind::IpPort], 1);
    assert_eq!(l.kinds[&Kind::Domain], 2);
    assert_eq!(l.kinds[&Kind::Url], 1);
    assert_eq!(l.skipped.len(), 1);
    assert_eq!(l.skipped[0].line, 5);
}

#[test]
fn hosts_file() {
    let l = parse(
        "# hosts\n0.0.0.0 evil.example\n127.0.0.1 bad.example other.example\n0.0.0.0 ttp\n0.0.0.0 localhost\n",
    );
    assert_eq!(l.format, Format::Hosts);
    assert!(l.entries.is_empty(), "the sink is not an entry");
    assert_eq!(names(&l), ["evil.example", "bad.example", "other.example"]);
    assert_eq!(l.skipped.len(), 2);
}

#[test]
fn spamhaus_json_lines() {
    let l = parse(
        "{\"cidr\":\"192.0.2.0/24\",\"sblid\":\"SBL1\",\"rir\":\"apnic\"}\n\
         {\"cidr\":\"2001:db8::/32\",\"sblid\":\"SBL2\"}\n{\"cidr\":\"junk\"}\n\
         {\"type\":\"metadata\",\"timestamp\":1,\"size\":2}\n",
    );
    assert_eq!(l.format, Format::SpamhausJson);
    assert_eq!(nets(&l), ["192.0.2.0/24", "2001:db8::/32"]);
    assert_eq!(l.skipped.len(), 1);
    assert_eq!(l.skipped[0].line, 3);
}

#[test]
fn crowdsec_stream() {
    let l = parse(
        r#"{"new":[{"scope":"Ip","value":"192.0.2.7","type":"ban"},{"scope":"Range","value":"198.51.100.0/24"},
        {"scope":"Country","value":"XX"},{"scope":"ip","value":"2001:db8::7"}],
        "deleted":[{"scope":"Ip","value":"203.0.113.9"}]}"#,
    );
    assert_eq!(l.format, Format::Crowdsec);
    assert_eq!(nets(&l), ["192.0.2.7/32", "198.51.100.0/24", "2001:db8::7/128"]);
    assert_eq!(l.skipped.len(), 1);
    assert!(l.skipped[0].reason.contains("new[2]: scope \"Country\""));
    let empty = parse(r#"{"new":null,"deleted":[]}"#);
    assert!(empty.is_empty());
}

#[test]
fn csv_feodo_style() {
    let l = parse(
        "# comment\n\"first_seen_utc\",\"dst_ip\",\"dst_port\",\"c2_status\"\n\
         \"2023-05-23 17:51:44\",\"192.0.2.73\",\"1194\",\"online\"\n\
         \"2023-05-23 17:51:44\", \"198.51.100.8\" ,\"443\",\"offline\"\n\"x\",\"\",\"1\",\"y\"",
    );
    assert_eq!(l.format, Format::Csv);
    assert_eq!(nets(&l), ["192.0.2.73/32", "198.51.100.8/32"]);
    assert_eq!(l.entries[0].line, 3);
    assert_eq!(l.skipped.len(), 1);
    assert_eq!(l.skipped[0].line, 5);
}

#[test]
fn csv_threatfox_style_with_commented_header() {
    let l = parse(
        "################\n# ThreatFox IOCs: CSV export\n\
         # \"first_seen_utc\",\"ioc_id\",\"ioc_value\",\"ioc_type\",\"threat_type\"\n\
         \"2024-01-01\",\"1\",\"192.0.2.5:443\",\"ip:port\",\"botnet_cc\"\n\
         \"2024-01-01\",\"2\",\"evil.example\",\"domain\",\"botnet_cc\"\n\
         \"2024-01-01\",\"3\",\"http://bad.example:8080/x\",\"url\",\"payload_delivery\"\n\
         \"2024-01-01\",\"4\",\"e3b0c44298fc1c149afbf4c8996fb924\",\"md5_hash\",\"payload\"\n",
    );
    assert_eq!(l.format, Format::Csv);
    assert_eq!(nets(&l), ["192.0.2.5/32"]);
    assert_eq!(names(&l), ["evil.example", "bad.example"]);
    assert_eq!(l.skipped.len(), 1);
    assert!(l.skipped[0].reason.contains("md5_hash"));
}

#[test]
fn csv_urlhaus_host_column_and_column_override() {
    let text = "id,dateadded,host,url\n1,2024,evil.example:8080,http://x.example/a\n2,2024,192.0.2.8,http://y.example/b\n";
    let l = parse(text);
    assert_eq!(nets(&l), ["192.0.2.8/32"]);
    assert_eq!(names(&l), ["evil.example"]);
    let opts = ListOptions { column: Some("URL".into()), ..Default::default() };
    let l = parse_text(Path::new("u.csv"), text, &opts).unwrap();
    assert_eq!(names(&l), ["x.example", "y.example"]);
    let opts = ListOptions {
        column: Some("nope".into()),
        format: Some(Format::Csv),
        ..Default::default()
    };
    let err = parse_text(Path::new("u.csv"), text, &opts).unwrap_err();
    assert!(format!("{err:#}").contains("no header row with a column named \"nope\""));
}

#[test]
fn forced_format_wins() {
    let opts = ListOptions { format: Some(Format::Hosts), ..Default::default() };
    let l = parse_text(Path::new("h"), "192.0.2.1\n", &opts).unwrap();
    assert!(l.is_empty());
    assert_eq!(l.skipped.len(), 1);
}

#[test]
fn unknown_format_is_an_error_naming_the_file() {
    let err =
        parse_text(Path::new("mystery.bin"), "hello world\nfoo bar\n", &ListOptions::default())
            .unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("mystery.bin: no known format fits"), "{msg}");
    assert!(msg.contains("line 1"), "{msg}");
}

#[test]
fn invalid_utf8_costs_one_line() {
    let dir = std::env::temp_dir().join(format!("td-parse-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bytes.txt");
    std::fs::write(&path, b"192.0.2.1\n\xff\xfe\n192.0.2.2\n").unwrap();
    let l = parse_file(&path, &ListOptions::default()).unwrap();
    assert_eq!(l.entries.len(), 2);
    assert_eq!(l.skipped.len(), 1);
    assert_eq!(l.skipped[0].line, 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unreadable_file_names_the_file() {
    let err = parse_file(Path::new("/nonexistent/list.txt"), &ListOptions::default()).unwrap_err();
    assert!(format!("{err:#}").contains("/nonexistent/list.txt"));
}

fn arb_net() -> impl Strategy<Value = IpNet> {
    prop_oneof![
        (any::<[u8; 4]>(), 0u8..=32).prop_map(|(a, l)| IpNet::new(a.into(), l).unwrap().trunc()),
        (any::<[u8; 16]>(), 0u8..=128).prop_map(|(a, l)| IpNet::new(a.into(), l).unwrap().trunc()),
    ]
}

fn arb_domain() -> impl Strategy<Value = String> {
    ("[a-z0-9]{1,12}", "[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", "[a-z]{2,6}")
        .prop_map(|(a, b, t)| format!("{a}.{b}.{t}"))
}

proptest! {
    #[test]
    fn parse_of_render_round_trips(nets in proptest::collection::vec(arb_net(), 1..40),
                                   domains in proptest::collection::vec(arb_domain(), 0..10)) {
        let mut text = String::from("# rendered\n");
        for n in &nets { text.push_str(&format!("{n}\n")); }
        for d in &domains { text.push_str(&format!("{d}\n")); }
        let l = parse(&text);
        let got: Vec<IpNet> = l.entries.iter().map(|e| e.net).collect();
        prop_assert_eq!(got, nets);
        prop_assert_eq!(names(&l), domains.iter().map(String::as_str).collect::<Vec<_>>());
        prop_assert!(l.skipped.is_empty());
    }
}

#[test]
fn a_byte_order_mark_is_no_part_of_the_first_entry() {
    let opts = ListOptions::default();
    let plain =
        parse_text(Path::new("bom.txt"), "\u{feff}203.0.113.7\n198.51.100.7\n", &opts).unwrap();
    assert_eq!(plain.entries.len(), 2, "{:?}", plain.skipped);
    let json = "\u{feff}{\"new\":[{\"scope\":\"Ip\",\"value\":\"203.0.113.7\"}],\"deleted\":[]}";
    let crowdsec = parse_text(Path::new("bom.json"), json, &opts).unwrap();
    assert_eq!(crowdsec.entries.len(), 1, "{:?}", crowdsec.skipped);
}

#[test]
fn ipv4_mapped_addresses_are_ipv4_entries() {
    assert_eq!(classify("::ffff:203.0.113.7").unwrap(), net("203.0.113.7"));
    assert_eq!(classify("::ffff:198.51.100.0/120").unwrap(), net("198.51.100.0/24"));
    assert_eq!(classify("2001:db8::7").unwrap(), net("2001:db8::7"));
}

#[test]
fn a_junk_line_is_quoted_short_and_a_lost_address_is_noted() {
    let junk = "x".repeat(10_000);
    let l = parse_text(Path::new("l.txt"), &format!("{junk}\n203.0.113.7\n"), &Default::default());
    let l = l.unwrap();
    assert!(l.skipped[0].reason.len() < 120, "{}", l.skipped[0].reason);
    let text = "203.0.113.7 198.51.100.7\n203.0.113.8;198.51.100.8\n198.51.100.0/24 ; SBL1\n";
    let l = parse_text(Path::new("l.txt"), text, &Default::default()).unwrap();
    assert_eq!(l.entries.len(), 3);
    let notes: Vec<(usize, &str)> =
        l.warnings.iter().map(|n| (n.line, n.reason.as_str())).collect();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert_eq!(notes[0], (1, "several addresses on one line: only the first is loaded"));
    assert_eq!(notes[1], (2, "an address after \";\" is read as a comment: not loaded"));
}

#[test]
fn only_regular_files_of_a_bounded_size_are_read() {
    let e = read_file(Path::new("/dev/zero"), DEFAULT_MAX_BYTES).unwrap_err().to_string();
    assert!(e.contains("is not a regular file"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let e = read_file(&fifo, DEFAULT_MAX_BYTES).unwrap_err().to_string();
    assert!(e.contains("is not a regular file"), "a FIFO is refused, not read: {e}");
    let big = dir.path().join("big.txt");
    std::fs::write(&big, "203.0.113.7\n".repeat(100)).unwrap();
    assert!(read_file(&big, 1200).is_ok());
    let e = read_file(&big, 1199).unwrap_err().to_string();
    assert!(e.contains("is larger than 1199 bytes"), "{e}");
}

#[test]
fn only_masked_host_bits_count_as_masked() {
    let l = parse("192.0.2.1/24\n198.51.100.7 203.0.113.7\n");
    assert_eq!((l.masked, l.warnings.len()), (1, 2), "{:?}", l.warnings);
}
