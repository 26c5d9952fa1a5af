//! One configured list: where it comes from (a file, an http(s) URL, or a CrowdSec Local API),
//! how it is read, refreshed and fetched, and what is wrong with it.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::sources::{Kind, crowdsec, http, taxii};
use crate::{
    lists::{Format, ListOptions, entry::Direction},
    plan::pipeline::ListSpec,
};

/// One list.
/// The longest `refresh`: a year, in seconds.
pub const MOST_REFRESH: u64 = 365 * 86_400;
/// The longest `timeout` of one fetch: an hour, in seconds.
pub const MOST_TIMEOUT: u64 = 3_600;
/// The longest `deadline` a list may give one refresh: a day.
pub const MOST_DEADLINE: u64 = 86_400;
/// The most `attempts` of one refresh.
pub const MOST_ATTEMPTS: u64 = 10;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListConfig {
    /// Its name in reports and commands (unique; "manual" is reserved).
    pub name: String,
    /// A local file...
    pub file: Option<PathBuf>,
    /// ...or an http(s) URL...
    pub url: Option<String>,
    /// ...or a CrowdSec Local API (bouncer mode)...
    pub crowdsec: Option<crowdsec::Source>,
    /// ...or a TAXII 2.1 collection.
    pub taxii: Option<taxii::Source>,
    /// Seconds between refreshes (0 or absent: only on SIGHUP or `takedown refresh`).
    #[serde(default)]
    pub refresh: u64,
    /// Which packets its entries block (absent: what each record says, else both).
    pub direction: Option<Direction>,
    pub format: Option<Format>,
    /// MISP: take every attribute, not only those marked `to_ids`.
    #[serde(default)]
    pub misp_all: bool,
    pub column: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Monitor only: entries count and report as if enforced, but packets pass.
    #[serde(default)]
    pub monitor: bool,
    /// Largest accepted download, in bytes.
    #[serde(default = "d64m")]
    pub max_bytes: u64,
    /// Seconds a download may take.
    #[serde(default = "d30")]
    pub timeout: u64,
    /// Tries per refresh (the first and the retries, with a doubling back-off from 1 s).
    #[serde(default = "d3u")]
    pub attempts: u32,
    /// Seconds one refresh may take in all (every page, event, retry and the signature): past
    /// it the refresh fails, and what is enforced stays.
    #[serde(default = "d300")]
    pub deadline: u64,
    /// A plain http:// URL is intended (no warning).
    #[serde(default)]
    pub insecure: bool,
    /// The publisher's minisign public key (`RW...`): the list is used only when its signature
    /// (`<list>.minisig`, beside the file or URL) verifies...
    pub minisign_key: Option<String>,
    /// ...or a file holding it (a `minisign -G` `.pub` file).
    pub minisign_key_file: Option<PathBuf>,
}

fn d30() -> u64 {
    30
}
fn d300() -> u64 {
    300
}
fn d3u() -> u32 {
    3
}

fn yes() -> bool {
    true
}
fn d64m() -> u64 {
    crate::lists::DEFAULT_MAX_BYTES
}

impl ListConfig {
    /// A list read from a local file, named after it.
    pub fn from_file(path: &Path, opts: &ListOptions) -> Self {
        Self {
            name: path
                .file_name()
                .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned()),
            file: Some(path.to_path_buf()),
            url: None,
            crowdsec: None,
            taxii: None,
            refresh: 0,
            direction: opts.direction,
            misp_all: opts.misp_all,
            format: opts.format,
            column: opts.column.clone(),
            enabled: true,
            monitor: false,
            insecure: false,
            minisign_key: None,
            minisign_key_file: None,
            max_bytes: d64m(),
            timeout: d30(),
            attempts: d3u(),
            deadline: d300(),
        }
    }

    /// How to parse it.
    pub fn options(&self) -> ListOptions {
        ListOptions {
            format: self.format,
            column: self.column.clone(),
            direction: self.direction,
            misp_all: self.misp_all,
        }
    }

    /// How its URLs are fetched, with bodies of at most `max_bytes`.
    pub fn fetch_policy(&self, max_bytes: u64) -> http::FetchPolicy {
        http::FetchPolicy {
            max_bytes,
            timeout: std::time::Duration::from_secs(self.timeout),
            attempts: self.attempts,
            backoff: std::time::Duration::from_secs(1),
            until: None,
        }
    }

    /// A warning for a list fetched over plain http without `insecure = true` (a URL list, a
    /// TAXII server, a CrowdSec Local API off this machine).
    pub fn insecure_warning(&self) -> Option<String> {
        let (url, what) = match (&self.url, &self.taxii, &self.crowdsec) {
            (Some(u), _, _) => (u, "anyone on the path can change what is blocked"),
            (_, Some(t), _) => {
                (&t.url, "anyone on the path can read the credentials and change what is blocked")
            }
            (_, _, Some(c)) => {
                (&c.url, "anyone on the path can read the bouncer key and change what is blocked")
            }
            _ => return None,
        };
        let host = reqwest::Url::parse(url).ok()?.host_str()?.to_string();
        let loopback = host == "localhost"
            || host
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|a| a.is_loopback());
        if !url.starts_with("http://") || self.insecure || (loopback && self.url.is_none()) {
            return None;
        }
        Some(format!(
            "list {}: {} is fetched over plain http: {what} (use https, or say insecure = true)",
            self.name,
            http::redact(url)
        ))
    }

    /// What is wrong with it.
    pub(super) fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let sources = [
            self.file.is_some(),
            self.url.is_some(),
            self.crowdsec.is_some(),
            self.taxii.is_some(),
        ];
        if sources.iter().filter(|s| **s).count() != 1 {
            out.push("needs exactly one of `file`, `url`, `crowdsec` and `taxii`".into());
        }
        out.extend(self.taxii.iter().flat_map(taxii::Source::problems));
        out.extend(self.url_problems());
        out.extend(self.signature_problems());
        out.extend(self.bound_problems());
        out
    }

    /// Its URLs (a list's, a Local API's, a TAXII server's) that cannot be fetched.
    fn url_problems(&self) -> Vec<String> {
        let urls = self.url.iter().chain(self.crowdsec.as_ref().map(|c| &c.url));
        let urls = urls.chain(self.taxii.as_ref().map(|t| &t.url));
        let why = |url: &String| match reqwest::Url::parse(url) {
            Ok(u) if !matches!(u.scheme(), "http" | "https") => {
                Some("only http and https are fetched".to_string())
            }
            Ok(u) if u.host_str().is_none_or(str::is_empty) => Some("no host".into()),
            Ok(_) => None,
            Err(e) => Some(e.to_string()),
        };
        urls.filter_map(|u| why(u).map(|w| format!("url {}: {w}", http::redact(u)))).collect()
    }

    /// A signature key given twice, unreadable, or for a source that is not one signed file.
    fn signature_problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.minisign_key.is_some() && self.minisign_key_file.is_some() {
            out.push("give one of `minisign_key` and `minisign_key_file`".into());
        }
        if self.kind().is_stream() && self.minisign_key().is_some() {
            out.push("a CrowdSec list or TAXII collection is not signed: no minisign key".into());
        }
        let feed = matches!(self.kind(), Kind::MispFeed(_))
            || self.file.as_deref().and_then(crate::lists::misp_feed::feed_dir).is_some();
        if feed && self.minisign_key().is_some() {
            out.push("a MISP feed is many files, not one signed list: no minisign key".into());
        }
        if let Some(f) = self.minisign_key_file.as_ref().filter(|f| !f.is_file()) {
            out.push(format!("minisign_key_file {} is not a readable file", f.display()));
        }
        out
    }

    /// Numbers that are 0 or past their bound.
    fn bound_problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (what, zero) in [
            ("timeout", self.timeout == 0),
            ("max_bytes", self.max_bytes == 0),
            ("attempts", self.attempts == 0),
            ("deadline", self.deadline == 0),
        ] {
            if zero {
                out.push(format!("{what} is 0"));
            }
        }
        for (what, value, most, unit) in [
            ("refresh", self.refresh, MOST_REFRESH, "seconds (a year)"),
            ("timeout", self.timeout, MOST_TIMEOUT, "seconds (an hour)"),
            ("attempts", u64::from(self.attempts), MOST_ATTEMPTS, "tries"),
            ("deadline", self.deadline, MOST_DEADLINE, "seconds (a day)"),
        ] {
            if value > most {
                out.push(format!("{what} = {value} is more than the {most} {unit} allowed"));
            }
        }
        out
    }

    /// How the pipeline reads it.
    pub fn spec(&self) -> ListSpec {
        let origin = self.file.clone().unwrap_or_else(|| PathBuf::from(self.source()));
        let (name, options, monitor) = (self.name.clone(), self.options(), self.monitor);
        let minisign_key = self.minisign_key();
        ListSpec { name, origin, options, monitor, max_bytes: self.max_bytes, minisign_key }
    }

    /// The public key its signature must verify with, if it is signed. A key file that cannot
    /// be read gives a key that verifies nothing (the list is refused, never used unchecked).
    pub fn minisign_key(&self) -> Option<String> {
        let file = self.minisign_key_file.as_ref().map(|f| {
            std::fs::read_to_string(f)
                .unwrap_or_else(|e| format!("unreadable key file {}: {e}", f.display()))
        });
        self.minisign_key.clone().or(file)
    }

    /// Its source, by kind (one of `file`, `url`, `crowdsec` and `taxii` is given: checked by
    /// `problems`; a list with none reads as an empty file name).
    pub fn kind(&self) -> Kind<'_> {
        match (&self.file, &self.url, &self.taxii, &self.crowdsec) {
            (Some(f), ..) => Kind::File(f),
            (_, Some(u), ..) if crate::sources::misp_feed::is_feed_url(u) => Kind::MispFeed(u),
            (_, Some(u), ..) => Kind::Url(u),
            (_, _, Some(t), _) => Kind::Taxii(t),
            (_, _, _, Some(c)) => Kind::Crowdsec(c),
            _ => Kind::File(std::path::Path::new("")),
        }
    }

    /// Where it comes from, for messages.
    pub fn source(&self) -> String {
        self.kind().describe()
    }
}
