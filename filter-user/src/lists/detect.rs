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

/// The top-level keys that tell JSON lists apart; values are skipped unread (a bundle of
/// 100,000 indicators is not built in memory to be told apart).
#[derive(serde::Deserialize)]
struct Keys {
    #[serde(rename = "type")]
    kind: Option<String>,
    objects: Option<serde::de::IgnoredAny>,
    more: Option<serde::de::IgnoredAny>,
    new: Option<serde::de::IgnoredAny>,
    deleted: Option<serde::de::IgnoredAny>,
    #[serde(rename = "Event")]
    event: Option<serde::de::IgnoredAny>,
    response: Option<serde::de::IgnoredAny>,
    #[serde(rename = "Attribute")]
    attribute: Option<serde::de::IgnoredAny>,
    #[serde(rename = "Object")]
    object: Option<serde::de::IgnoredAny>,
    info: Option<serde::de::IgnoredAny>,
}

impl Keys {
    /// The format these keys say, if they say one.
    fn format(&self) -> Option<Format> {
        // A bundle, or a TAXII 2.1 envelope (`{"more":...,"objects":[...]}`) saved to a file.
        let envelope = self.objects.is_some() && (self.more.is_some() || self.kind.is_none());
        if self.kind.as_deref() == Some("bundle") || envelope {
            Some(Format::Stix)
        } else if self.new.is_some() || self.deleted.is_some() {
            Some(Format::Crowdsec)
        } else if self.event.is_some() || self.response.is_some() || self.is_bare_event() {
            Some(Format::Misp)
        } else {
            None
        }
    }

    /// An event as pymisp's `MISPEvent.to_json()` writes it: no `"Event"` wrapper.
    fn is_bare_event(&self) -> bool {
        self.info.is_some() && (self.attribute.is_some() || self.object.is_some())
    }
}

/// Which JSON list `text` is: a STIX bundle, MISP events, a CrowdSec stream (each told by its
/// structure, so certain), else Spamhaus JSON lines (a guess).
fn detect_json(text: &str) -> (Format, bool) {
    // Told by the first character, not an untagged enum: that would buffer the whole document.
    if text.starts_with('[') {
        let events = serde_json::from_str::<Vec<Keys>>(text)
            .is_ok_and(|a| a.iter().any(|k| k.event.is_some() || k.is_bare_event()));
        return if events { (Format::Misp, true) } else { (Format::SpamhausJson, false) };
    }
    match serde_json::from_str::<Keys>(text).ok().and_then(|k| k.format()) {
        Some(f) => (f, true),
        None => (Format::SpamhausJson, false),
    }
}

/// Detects the format of `text`, and whether its structure says so for certain (a JSON
/// document of a known shape) rather than a guess from its lines.
pub fn detect_how(text: &str, has_column: bool) -> (Format, bool) {
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with(['{', '[']) {
        return detect_json(trimmed);
    }
    (detect_lines(text, has_column), false)
}

/// Detects the format of a text that is no JSON document.
fn detect_lines(text: &str, has_column: bool) -> Format {
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
