//! Format names and auto-detection from a list's first lines.

use std::fmt;

/// The list formats takedown reads.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// One address or network a line (comments `#`/`;`, extra columns ignored).
    #[default]
    Plain,
    /// FireHOL netset/ipset (plain lines with a FireHOL header).
    Netset,
    /// Spamhaus DROP/EDROP text: `CIDR ; SBLnnn`.
    SpamhausDrop,
    /// Spamhaus DROP JSON lines: `{"cidr":...,"sblid":...}`.
    SpamhausJson,
    /// CSV with a header row; the address column is found by name (`--column` overrides).
    Csv,
    /// Hosts file: `0.0.0.0 domain` (the first column is a sink, not an entry).
    Hosts,
    /// Mixed trail lines (maltrail): addresses, `IP:port`, domains, URLs.
    Trail,
    /// CrowdSec decision stream JSON: `{"new":[...],"deleted":[...]}`.
    Crowdsec,
    /// A STIX 2.1 bundle: `{"type":"bundle","objects":[...]}` (indicators and address objects).
    Stix,
    /// MISP events: `{"Event":{...}}`, `{"response":[...]}` or an array of events.
    Misp,
    /// MISP's CSV export: `uuid,event_id,category,type,value,comment,to_ids,...`.
    MispCsv,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Plain => "plain",
            Self::Netset => "netset",
            Self::SpamhausDrop => "spamhaus-drop",
            Self::SpamhausJson => "spamhaus-json",
            Self::Csv => "csv",
            Self::Hosts => "hosts",
            Self::Trail => "trail",
            Self::Crowdsec => "crowdsec",
            Self::Stix => "stix",
            Self::Misp => "misp",
            Self::MispCsv => "misp-csv",
        })
    }
}

/// Address columns looked for in a CSV header, in order of preference.
pub const CSV_COLUMNS: [&str; 12] = [
    "dst_ip",
    "ip_address",
    "ip",
    "ioc_value",
    "ioc",
    "host",
    "url",
    "cidr",
    "network",
    "address",
    "domain",
    "indicator",
];

/// Sink addresses that start a hosts-file line.
pub const SINKS: [&str; 5] = ["0.0.0.0", "127.0.0.1", "::", "::1", "0:0:0:0:0:0:0:0"];

/// How many data lines detection looks at.
const SAMPLE: usize = 200;

/// Which JSON list `text` is: a STIX bundle, MISP events, a CrowdSec stream, else Spamhaus
/// JSON lines.
fn detect_json(text: &str) -> Format {
    let misp = |v: &serde_json::Value| v.get("Event").is_some();
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(o)) => {
            if o.get("type").and_then(|t| t.as_str()) == Some("bundle") {
                Format::Stix
            } else if o.contains_key("new") || o.contains_key("deleted") {
                Format::Crowdsec
            } else if o.contains_key("Event") || o.contains_key("response") {
                Format::Misp
            } else {
                Format::SpamhausJson
            }
        }
        Ok(serde_json::Value::Array(a)) if a.iter().any(misp) => Format::Misp,
        _ => Format::SpamhausJson,
    }
}

/// Detects the format of `text`. `has_column`: the caller named a CSV column.
pub fn detect(text: &str, has_column: bool) -> Format {
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with(['{', '[']) {
        return detect_json(trimmed);
    }
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    if !has_column && super::misp::is_csv_header(&super::csv::split_header(first)) {
        return Format::MispCsv;
    }
    if has_column || super::csv::find_header(text, None).is_some() {
        return Format::Csv;
    }
    let data: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .take(SAMPLE)
        .collect();
    let hosts = data
        .iter()
        .filter(|l| {
            let mut f = l.split_ascii_whitespace();
            f.next().is_some_and(|s| SINKS.contains(&s)) && f.next().is_some()
        })
        .count();
    if !data.is_empty() && hosts * 2 > data.len() {
        return Format::Hosts;
    }
    let names = data.iter().any(|l| {
        let first = l.split_ascii_whitespace().next().unwrap_or("");
        matches!(super::token::classify(first), Ok((_, super::Kind::Domain | super::Kind::Url)))
    });
    if names {
        return Format::Trail;
    }
    let head: String = text.lines().take(30).collect::<Vec<_>>().join("\n");
    if head.contains("ipset") && (head.contains("hash:net") || head.contains("hash:ip")) {
        Format::Netset
    } else if data.iter().any(|l| l.contains("; SBL")) {
        Format::SpamhausDrop
    } else {
        Format::Plain
    }
}
