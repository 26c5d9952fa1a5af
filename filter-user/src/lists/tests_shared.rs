//! Every file in ../shared/lists loads with exactly the counts its README gives.

use std::path::Path;

use super::*;

fn shared(name: &str) -> ParsedList {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/lists").join(name);
    assert!(
        path.exists(),
        "{} is missing: the shared lists sit beside the project",
        path.display()
    );
    parse_file(&path, &ListOptions::default()).unwrap()
}

/// (exact v4, exact v6, v4 prefixes, v6 prefixes, domains)
fn counts(l: &ParsedList) -> (usize, usize, usize, usize, usize) {
    let (mut v4, mut v6, mut p4, mut p6) = (0, 0, 0, 0);
    for e in &l.entries {
        match e.net {
            IpNet::V4(n) if n.prefix_len() == 32 => v4 += 1,
            IpNet::V4(_) => p4 += 1,
            IpNet::V6(n) if n.prefix_len() == 128 => v6 += 1,
            IpNet::V6(_) => p6 += 1,
        }
    }
    (v4, v6, p4, p6, l.domains.len())
}

fn first_skips(l: &ParsedList) -> &[LineNote] {
    &l.skipped[..l.skipped.len().min(3)]
}

#[test]
fn spamhaus_drop() {
    let l = shared("spamhaus-drop.txt");
    assert_eq!(l.format, Format::SpamhausDrop);
    assert_eq!(counts(&l), (0, 0, 955, 0, 0));
    assert!(l.skipped.is_empty(), "{:?}", first_skips(&l));
}

#[test]
fn spamhaus_drop_v6() {
    let l = shared("spamhaus-drop-v6.txt");
    assert_eq!(l.format, Format::Plain);
    assert_eq!(counts(&l), (0, 0, 0, 51, 0));
    assert!(l.skipped.is_empty(), "{:?}", first_skips(&l));
}

#[test]
fn firehol_level1() {
    let l = shared("firehol_level1.netset");
    assert_eq!(l.format, Format::Netset);
    assert_eq!(counts(&l), (1, 0, 4630, 0, 0));
    assert_eq!(l.kinds[&Kind::Cidr], 4630);
    assert!(l.skipped.is_empty(), "{:?}", first_skips(&l));
}

#[test]
fn feodo_csv() {
    let l = shared("feodo-ipblocklist.csv");
    assert_eq!(l.format, Format::Csv);
    assert_eq!(counts(&l), (28, 0, 0, 0, 0));
    assert!(l.skipped.is_empty(), "{:?}", first_skips(&l));
}

#[test]
fn sslbl_crlf_no_final_newline() {
    let l = shared("abusech-sslipblacklist.txt");
    assert_eq!(l.format, Format::Plain);
    assert_eq!(counts(&l), (29, 0, 0, 0, 0));
    assert!(l.skipped.is_empty(), "{:?}", first_skips(&l));
}

#[test]
fn ipsum_tab_columns() {
    let l = shared("ipsum.txt");
    assert_eq!(l.format, Format::Plain);
    assert_eq!(counts(&l), (120_430, 0, 0, 0, 0));
    assert!(l.skipped.is_empty(), "{:?}", first_skips(&l));
}

#[test]
fn stopforumspam_ipset() {
    let l = shared("stopforumspam_180d.ipset");
    assert_eq!(l.format, Format::Netset);
    assert_eq!(counts(&l), (243_746, 0, 0, 0, 0));
    assert!(l.skipped.is_empty(), "{:?}", first_skips(&l));
}

#[test]
fn urlhaus_hosts() {
    let l = shared("urlhaus-hosts.txt");
    assert_eq!(l.format, Format::Hosts);
    assert_eq!(counts(&l), (0, 0, 0, 0, 1_828));
    assert_eq!(l.skipped.len(), 2, "the two junk lines: {:?}", l.skipped);
}

#[test]
fn maltrail_mixed_trail() {
    let l = shared("maltrail-redline.txt");
    assert_eq!(l.format, Format::Trail);
    assert_eq!(l.kinds[&Kind::IpPort], 7_320);
    assert_eq!(l.kinds[&Kind::Domain], 3_317);
    assert_eq!(l.kinds[&Kind::Url], 593);
    assert_eq!(l.kinds.get(&Kind::Ip), None);
    assert_eq!(l.skipped.len(), 129, "paths and junk");
    assert!(l.skipped.iter().any(|s| s.reason.contains("a path")));
}
