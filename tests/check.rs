//! `takedown check` on the real feeds in ../shared/lists and on crafted lists: formats, counts,
//! guards, exit statuses; and `takedown run` accepting every real feed at once.

use std::path::PathBuf;

use integration_tests::{
    TempDir, dns::DnsServer, kernel_test, messages as m, process::Running, process::run_cli,
};
use serde_json::Value;
use td_netns::{Addrs, Topology};

/// The real takedown feeds of ../shared/lists, by name: the folder also holds the country
/// allocation lists, which are benchmark material (see `country_blocks_load_only_when_forced`).
const FEEDS: [&str; 9] = [
    "abusech-sslipblacklist.txt",
    "feodo-ipblocklist.csv",
    "firehol_level1.netset",
    "ipsum.txt",
    "maltrail-redline.txt",
    "spamhaus-drop-v6.txt",
    "spamhaus-drop.txt",
    "stopforumspam_180d.ipset",
    "urlhaus-hosts.txt",
];

fn shared(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/lists").join(name);
    assert!(path.is_file(), "{} is missing", path.display());
    path.to_str().unwrap().to_string()
}

/// The real feeds' paths.
fn shared_lists() -> Vec<String> {
    FEEDS.iter().map(|n| shared(n)).collect()
}

fn check_json(args: &[&str]) -> (Option<i32>, Value) {
    let mut all = vec!["check", "--json"];
    all.extend_from_slice(args);
    let out = run_cli(None, &all);
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), doc)
}

#[test]
fn every_real_feed_is_usable_with_its_readme_counts() {
    let files = shared_lists();
    let args: Vec<&str> = files.iter().map(String::as_str).collect();
    let (code, doc) = check_json(&args);
    assert_eq!(code, Some(0), "{doc:#}");
    let lists = doc["lists"].as_array().unwrap();
    let by_name = |n: &str| lists.iter().find(|l| l["name"] == n).unwrap_or_else(|| panic!("{n}"));
    // (file, format, ipv4, ipv6, ipv4 prefixes, ipv6 prefixes, domains, skipped)
    let expected = [
        ("abusech-sslipblacklist.txt", "plain", 29, 0, 0, 0, 0, 0),
        ("feodo-ipblocklist.csv", "csv", 28, 0, 0, 0, 0, 0),
        ("firehol_level1.netset", "netset", 1, 0, 4630, 0, 0, 0),
        ("ipsum.txt", "plain", 120_430, 0, 0, 0, 0, 0),
        // 3,317 domain fields and one URL host: 3,276 distinct domains (42 named twice).
        ("maltrail-redline.txt", "trail", 7320 + 592, 0, 0, 0, 3276, 129),
        ("spamhaus-drop-v6.txt", "plain", 0, 0, 0, 51, 0, 0),
        ("spamhaus-drop.txt", "spamhaus-drop", 0, 0, 955, 0, 0, 0),
        ("stopforumspam_180d.ipset", "netset", 243_746, 0, 0, 0, 0, 0),
        ("urlhaus-hosts.txt", "hosts", 0, 0, 0, 0, 1828, 2),
    ];
    for (name, format, v4, v6, p4, p6, domains, skipped) in expected {
        let l = by_name(name);
        assert_eq!(l["format"], format, "{name}");
        let e = &l["entries"];
        let got = [&e["ipv4"], &e["ipv6"], &e["ipv4_prefixes"], &e["ipv6_prefixes"], &e["domains"]];
        let got: Vec<u64> = got.iter().map(|v| v.as_u64().unwrap()).collect();
        assert_eq!(got, [v4, v6, p4, p6, domains], "{name}");
        assert_eq!(l["skipped"].as_array().unwrap().len(), skipped, "{name}");
        assert_eq!(l["usable"], true, "{name}");
    }
    let maltrail = by_name("maltrail-redline.txt");
    assert_eq!(maltrail["fields"]["ip_port"], 7320);
    assert_eq!(maltrail["fields"]["url"], 593);
    assert_eq!(maltrail["fields"]["domain"], 3317);
    // firehol lists 0/8, 10/8, 100.64/10, 127/8, 169.254/16, 172.16/12, 192.168/16, 224/3.
    assert_eq!(by_name("firehol_level1.netset")["guarded"], 8);
    assert_eq!(by_name("stopforumspam_180d.ipset")["guarded"], 13, "the 13 addresses in 100.64/10");
}

#[test]
fn country_blocks_load_only_when_forced() {
    // Every RIR allocation: a handful are broader than the broad guard allows.
    // (file, ipv4 prefixes, ipv6 prefixes, refused as too broad)
    for (name, p4, p6, refused) in
        [("country-blocks-v4.txt", 172_627, 0, 6), ("country-blocks-v6.txt", 0, 73_731, 108)]
    {
        let path = shared(name);
        let (code, doc) = check_json(&[&path]);
        assert_eq!(code, Some(1), "{name}: refused entries make it unusable");
        let l = &doc["lists"][0];
        assert_eq!(l["entries"]["ipv4_prefixes"], p4, "{name}");
        assert_eq!(l["entries"]["ipv6_prefixes"], p6, "{name}");
        assert_eq!(l["refused"], refused, "{name}");
        let (code, doc) = check_json(&[&path, "--force-broad"]);
        assert_eq!(code, Some(0), "{name}");
        assert_eq!(doc["lists"][0]["refused"], 0, "{name}");
    }
}

#[test]
fn text_report_names_formats_guards_and_skipped_lines() {
    let files = shared_lists();
    let mut args = vec!["check", "--verbose"];
    args.extend(files.iter().map(String::as_str));
    let out = run_cli(None, &args);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("urlhaus-hosts.txt: format hosts"), "{text}");
    assert!(text.contains("urlhaus-hosts.txt:124: skipped: not a valid domain: \"84.54.0.51.78\""));
    assert!(
        text.contains("firehol_level1.netset:57: guard: 10.0.0.0/8 is in special range 10.0.0.0/8")
    );
    assert_eq!(
        text.matches("maltrail-redline.txt:").count(),
        129 + 2, // and the list's name and path in its first line
        "--verbose shows every line"
    );
    assert!(text.contains("plan: "));
}

#[test]
fn exit_1_for_a_list_without_entries_or_with_refused_ones() {
    let dir = TempDir::new("check-exit");
    let readme = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/lists/README.md");
    let out = run_cli(None, &["check", readme.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains(m::UNRECOGNISABLE));
    let broad = dir.file("broad.txt", "64.0.0.0/7\n203.0.113.0/24\n");
    let (code, doc) = check_json(&[&broad]);
    assert_eq!(code, Some(1));
    assert_eq!(doc["lists"][0]["refused"], 1);
    let (code, _) = check_json(&[&broad, "--force-broad"]);
    assert_eq!(code, Some(0));
    let (code, _) = check_json(&[&dir.file("ok.txt", "203.0.113.7\n")]);
    assert_eq!(code, Some(0));
}

#[test]
fn check_needs_no_privileges() {
    if !td_netns::is_root() {
        return; // already unprivileged: the other tests show it works
    }
    let dir = TempDir::new("check-unpriv");
    let list = dir.file("l.txt", "203.0.113.7\nevil.example\n");
    let out = std::process::Command::new("setpriv")
        .args(["--bounding-set=-all", "--inh-caps=-all"])
        .arg(integration_tests::process::takedown_bin())
        .args(["check", &list])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

#[kernel_test]
fn run_accepts_every_real_feed_at_once() {
    // The feeds' domains are looked up on a local server that knows none of them.
    let topo = Topology::new("ca").unwrap();
    let server = DnsServer::start(&topo.gateway).unwrap();
    let resolver = server.addr.to_string();
    let mut args =
        vec!["run", "-i", Addrs::GATEWAY_IF, "--resolver", &resolver, "--dns-wait", "30"];
    let files = shared_lists();
    for f in &files {
        args.extend(["-l", f.as_str()]);
    }
    let run = Running::start(&topo.gateway, &args).unwrap();
    let out = run.stdout();
    assert!(out.contains("domains: 0 of 5101 resolved to 0 addresses, 5101 failed"), "{out}");
    assert!(out.contains("attached to td-g"), "{out}");
    run.stop().unwrap();
}

#[test]
fn check_config_validates_the_file_and_its_file_lists() {
    let dir = TempDir::new("check-config");
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/takedown-list.txt");
    let good = dir.file(
        "good.toml",
        &format!(
            "interfaces = [\"eth0\"]\n[[list]]\nname = \"ex\"\nfile = \"{0}\"\n\
             [[list]]\nname = \"watch\"\nfile = \"{0}\"\nmonitor = true\n\
             [[list]]\nname = \"feed\"\nurl = \"https://feeds.example/x.txt\"\n\
             [[list]]\nname = \"later\"\nfile = \"/nonexistent/later.txt\"\nenabled = false\n",
            example.display()
        ),
    );
    let out = run_cli(None, &["check", "--config", &good]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    // Each list by its name, with what it does to packets.
    let feed = "list feed: https://feeds.example/x.txt: enforced; not fetched by check";
    assert!(text.contains(feed), "{text}");
    let ex = format!("list ex: {}: format plain, direction both, enforced", example.display());
    assert!(text.contains(&ex), "{text}");
    let watch =
        format!("list watch: {}: format plain, direction both, monitor only", example.display());
    assert!(text.contains(&watch), "{text}");
    let later = "list later: /nonexistent/later.txt: disabled (enabled = false), not checked";
    assert!(text.contains(later), "{text}");
    let bad = dir.file("bad.toml", "interfaces = [\"eth0\"]\n[[list]]\nname = \"x\"\n");
    let out = run_cli(None, &["check", "--config", &bad]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("needs exactly one of `file`, `url`, `crowdsec` and `taxii`")
    );
}

#[kernel_test]
fn check_config_prints_the_plan_that_run_config_loads() {
    let place = integration_tests::PinPlace::new("check-run");
    let dir = TempDir::new("check-run");
    let drop =
        dir.file("drop.txt", "203.0.113.7\n198.51.100.0/24\n198.51.100.9\n2001:db8:bad::/48\n");
    let watch = dir.file("watch.txt", "203.0.113.0/24\n192.0.2.99\n2001:db8:bad::7\n");
    let allow = dir.file("allow.txt", "198.51.100.10\n");
    // Own addresses are left out (`block_own`): the veths' link-local ones come and go.
    let config = dir.file(
        "takedown.toml",
        &format!(
            "interfaces = [\"{}\"]\nallow = [\"{allow}\"]\n[guards]\nblock_own = true\n\
             [[list]]\nname = \"drop\"\nfile = \"{drop}\"\n\
             [[list]]\nname = \"watch\"\nfile = \"{watch}\"\nmonitor = true\n",
            Addrs::GATEWAY_IF
        ),
    );
    let topo = Topology::new("cr").unwrap();
    let out = run_cli(Some(&topo.gateway), &["check", "--json", "--config", &config]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let checked: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(checked["lists"][1]["monitor"], true);
    let run = place.start(&topo.gateway, &["run", "--config", &config]);
    let (code, out, err) = place.cli(&topo.gateway, &["status", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let status: Value = serde_json::from_str(&out).unwrap();
    for map in ["ipv4", "ipv6", "ipv4_prefixes", "ipv6_prefixes", "ipv4_allow", "ipv6_allow"] {
        assert_eq!(checked["plan"][map], status["entries"][map], "{map}: {checked:#} {status:#}");
    }
    for list in status["lists"].as_array().unwrap() {
        let name = list["name"].as_str().unwrap();
        assert_eq!(checked["plan"]["lists"][name], list["in_maps"], "list {name}");
    }
    assert_eq!(checked["plan"]["ipv4_allow"], 1);
    // The monitor list's own address is monitored, not blocked.
    let (_, out, _) = place.cli(&topo.gateway, &["lookup", "192.0.2.99"]);
    assert!(out.contains("192.0.2.99/32 (monitor both): lists watch"), "{out}");
    run.stop().unwrap();
}

#[test]
fn check_config_warns_of_plain_http_unless_told() {
    let dir = TempDir::new("check-http");
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/takedown-list.txt");
    let config = |insecure: bool| {
        dir.file(
            &format!("c{insecure}.toml"),
            &format!(
                "interfaces = [\"eth0\"]\n[[list]]\nname = \"ex\"\nfile = \"{}\"\n[[list]]\nname = \"plain\"\nurl = \"http://feeds.example/x.txt?token=s3cret\"\ninsecure = {insecure}\n",
                example.display()
            ),
        )
    };
    let out = run_cli(None, &["check", "--config", &config(false)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let want =
        "warning: list plain: http://feeds.example/x.txt?token=*** is fetched over plain http";
    assert!(text.contains(want), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
    let out = run_cli(None, &["check", "--config", &config(true)]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("warning:"));
}

#[test]
fn check_config_warns_of_a_taxii_server_or_a_remote_local_api_over_plain_http() {
    let dir = TempDir::new("check-http-sources");
    let key = dir.file("key", "k\n");
    let config = |taxii: &str, lapi: &str, insecure: bool| {
        dir.file(
            "c.toml",
            &format!(
                "interfaces = [\"eth0\"]\n[[list]]\nname = \"cert\"\ninsecure = {insecure}\n\
                 taxii = {{ url = \"{taxii}\", collection = \"c1\" }}\n\
                 [[list]]\nname = \"cs\"\ninsecure = {insecure}\n\
                 crowdsec = {{ url = \"{lapi}\", api_key_file = \"{key}\" }}\n"
            ),
        )
    };
    let check = |path: &str| {
        let out = run_cli(None, &["check", "--config", path]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let text = check(&config("http://cti.example/api1/", "http://10.0.0.5:8080", false));
    let taxii = "warning: list cert: http://cti.example/api1/ is fetched over plain http: anyone \
                 on the path can read the credentials";
    assert!(text.contains(taxii), "{text}");
    let lapi = "warning: list cs: http://10.0.0.5:8080/ is fetched over plain http: anyone on the \
                path can read the bouncer key";
    assert!(text.contains(lapi), "{text}");
    // Told (insecure = true), over https, or a Local API on this machine: no warning.
    let quiet = [
        config("http://cti.example/api1/", "http://10.0.0.5:8080", true),
        config("https://cti.example/api1/", "http://127.0.0.1:8080", false),
    ];
    for path in quiet {
        let text = check(&path);
        assert!(!text.contains("warning:"), "{text}");
    }
}

#[test]
fn a_list_over_max_bytes_is_refused_saying_how_to_raise_it() {
    let dir = TempDir::new("check-max-bytes");
    let list = dir.file("big.txt", "192.0.2.1\n192.0.2.2\n192.0.2.3\n");
    let out = run_cli(None, &["check", &list, "--max-bytes", "10"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let want = "is larger than 10 bytes (raise the list's max_bytes in the configuration, or \
                --max-bytes on the command line)";
    assert!(text.contains(want), "{text}");
    let out = run_cli(None, &["check", &list, "--max-bytes", "100"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
}
