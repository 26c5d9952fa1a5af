//! Unit tests of list parsing: every line form, and the real feeds in ../shared/lists.

use super::*;

fn net(s: &str) -> Line {
    Line::Net {
        net: s.parse().unwrap(),
        masked: false,
    }
}

#[test]
fn plain_addresses_and_cidrs() {
    assert_eq!(parse_line("192.0.2.1"), Ok(net("192.0.2.1/32")));
    assert_eq!(parse_line("2001:db8::1"), Ok(net("2001:db8::1/128")));
    assert_eq!(parse_line("198.51.100.0/24"), Ok(net("198.51.100.0/24")));
    assert_eq!(parse_line("2001:db8::/32"), Ok(net("2001:db8::/32")));
}

#[test]
fn comments_blanks_and_whitespace() {
    assert_eq!(parse_line(""), Ok(Line::Empty));
    assert_eq!(parse_line("   \t "), Ok(Line::Empty));
    assert_eq!(parse_line("# comment 192.0.2.1"), Ok(Line::Empty));
    assert_eq!(parse_line("; Spamhaus header"), Ok(Line::Empty));
    assert_eq!(
        parse_line("203.0.113.0/24 ; SBL1"),
        Ok(net("203.0.113.0/24"))
    );
    assert_eq!(parse_line("192.0.2.4 # note"), Ok(net("192.0.2.4/32")));
    assert_eq!(parse_line("192.0.2.4#note"), Ok(net("192.0.2.4/32")));
    assert_eq!(parse_line("  \t192.0.2.5 \t"), Ok(net("192.0.2.5/32")));
    assert_eq!(parse_line("192.0.2.6\r"), Ok(net("192.0.2.6/32")));
    assert_eq!(parse_line("2001:db8::/48 "), Ok(net("2001:db8::/48")));
}

#[test]
fn extra_columns_are_ignored() {
    assert_eq!(parse_line("192.0.2.7\t10"), Ok(net("192.0.2.7/32")));
    assert_eq!(parse_line("192.0.2.8 some text"), Ok(net("192.0.2.8/32")));
}

#[test]
fn ports_are_ignored() {
    assert_eq!(parse_line("192.0.2.9:6677"), Ok(net("192.0.2.9/32")));
    assert_eq!(parse_line("[2001:db8::9]:443"), Ok(net("2001:db8::9/128")));
    assert_eq!(parse_line("[2001:db8::a]"), Ok(net("2001:db8::a/128")));
    assert!(parse_line("192.0.2.9:port").is_err());
    assert!(parse_line("192.0.2.9:70000").is_err());
    assert!(parse_line("[2001:db8::9]:").is_err());
}

#[test]
fn host_bits_are_masked_with_a_warning() {
    assert_eq!(
        parse_line("192.0.2.77/24"),
        Ok(Line::Net {
            net: "192.0.2.0/24".parse().unwrap(),
            masked: true
        })
    );
    let list = parse_text(Path::new("l.txt"), "192.0.2.77/24\n", Direction::Both);
    assert_eq!(list.entries.len(), 1);
    assert_eq!(list.warnings.len(), 1);
    assert_eq!(list.warnings[0].line, 1);
    assert!(list.warnings[0].reason.contains("192.0.2.0/24"));
}

#[test]
fn junk_is_skipped_with_line_and_reason() {
    let text = "192.0.2.1\nevil.example\n/x.php\n192.0.2.300\n10.0.0.0/33\n198.51.100.1\n";
    let list = parse_text(Path::new("junk.txt"), text, Direction::Dst);
    let nets: Vec<_> = list.entries.iter().map(|e| e.net.to_string()).collect();
    assert_eq!(nets, ["192.0.2.1/32", "198.51.100.1/32"]);
    assert!(list.entries.iter().all(|e| e.direction == Direction::Dst));
    assert_eq!(list.entries[1].line, 6);
    let lines: Vec<_> = list.skipped.iter().map(|s| s.line).collect();
    assert_eq!(lines, [2, 3, 4, 5]);
    assert!(list.skipped[0].reason.contains("evil.example"));
    assert!(list.skipped[3].reason.contains("not a valid CIDR"));
}

#[test]
fn invalid_utf8_costs_one_line() {
    let dir = std::env::temp_dir().join(format!("td-parse-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bytes.txt");
    std::fs::write(&path, b"192.0.2.1\n\xff\xfe\n192.0.2.2\n").unwrap();
    let list = parse_file(&path, Direction::Both).unwrap();
    assert_eq!(list.entries.len(), 2);
    assert_eq!(list.skipped.len(), 1);
    assert_eq!(list.skipped[0].line, 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unreadable_file_names_the_file() {
    let err = parse_file(Path::new("/nonexistent/list.txt"), Direction::Both).unwrap_err();
    assert!(format!("{err:#}").contains("/nonexistent/list.txt"));
}

fn shared(name: &str) -> ParsedList {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/lists")
        .join(name);
    parse_file(&path, Direction::Both).expect("the shared lists sit beside the project")
}

fn count_v4_v6(list: &ParsedList) -> (usize, usize, usize, usize) {
    let (mut v4, mut v6, mut p4, mut p6) = (0, 0, 0, 0);
    for e in &list.entries {
        match e.net {
            IpNet::V4(n) if n.prefix_len() == 32 => v4 += 1,
            IpNet::V4(_) => p4 += 1,
            IpNet::V6(n) if n.prefix_len() == 128 => v6 += 1,
            IpNet::V6(_) => p6 += 1,
        }
    }
    (v4, v6, p4, p6)
}

#[test]
fn shared_spamhaus_drop() {
    let l = shared("spamhaus-drop.txt");
    assert_eq!(count_v4_v6(&l), (0, 0, 955, 0));
    assert!(l.skipped.is_empty(), "{:?}", l.skipped);
}

#[test]
fn shared_spamhaus_drop_v6() {
    let l = shared("spamhaus-drop-v6.txt");
    assert_eq!(count_v4_v6(&l), (0, 0, 0, 51));
    assert!(l.skipped.is_empty(), "{:?}", l.skipped);
}

#[test]
fn shared_firehol_level1() {
    let l = shared("firehol_level1.netset");
    assert_eq!(count_v4_v6(&l), (1, 0, 4630, 0));
    assert!(l.skipped.is_empty(), "{:?}", l.skipped);
}

#[test]
fn shared_sslbl_crlf_no_final_newline() {
    let l = shared("abusech-sslipblacklist.txt");
    assert_eq!(count_v4_v6(&l), (29, 0, 0, 0));
    assert!(l.skipped.is_empty(), "{:?}", l.skipped);
}

#[test]
fn shared_ipsum_tab_columns() {
    let l = shared("ipsum.txt");
    assert_eq!(count_v4_v6(&l), (120_430, 0, 0, 0));
    assert!(
        l.skipped.is_empty(),
        "{:?}",
        &l.skipped[..l.skipped.len().min(3)]
    );
}

#[test]
fn shared_stopforumspam_ipset() {
    let l = shared("stopforumspam_180d.ipset");
    assert_eq!(count_v4_v6(&l), (243_746, 0, 0, 0));
    assert!(
        l.skipped.is_empty(),
        "{:?}",
        &l.skipped[..l.skipped.len().min(3)]
    );
}

#[test]
fn shared_maltrail_ip_port_lines() {
    // The IP:port lines load; domains, URLs and paths are skipped with a reason
    // (domain and URL support is a later issue).
    let l = shared("maltrail-redline.txt");
    let (v4, v6, p4, p6) = count_v4_v6(&l);
    assert_eq!((v6, p4, p6), (0, 0, 0));
    assert_eq!(v4, 7_320);
    assert_eq!(l.skipped.len(), 3_317 + 593 + 129);
}
