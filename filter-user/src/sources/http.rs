//! Getting a list's bytes: from a file, or from an http(s) URL with certificate verification
//! (rustls), conditional GET (ETag / Last-Modified), a timeout, a size cap and retries with
//! back-off. The last good copy of every URL list is cached on disk (written atomically), so a
//! start without network still enforces it.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, Result};
use reqwest::{StatusCode, header};
use serde::{Deserialize, Serialize};

use super::files::write_atomic;

/// How a URL is fetched.
#[derive(Clone, Copy, Debug)]
pub struct FetchPolicy {
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Largest accepted body.
    pub max_bytes: u64,
    /// Tries in all (the first and the retries).
    pub attempts: u32,
    /// Wait before the first retry (doubled each time).
    pub backoff: Duration,
    /// No try runs past this moment, and none starts after it (a refresh's deadline).
    pub until: Option<std::time::Instant>,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            max_bytes: 64 << 20,
            attempts: 3,
            backoff: Duration::from_secs(1),
            until: None,
        }
    }
}

/// What the cache keeps beside a list's body.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct CacheMeta {
    /// The URL (redacted) or file it came from.
    pub url: String,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// When it was fetched (Unix seconds).
    pub fetched: u64,
    /// Its usable entries when it was accepted (what the shrink guard compares with at start).
    #[serde(default)]
    pub entries: usize,
}

/// A cache file's header line: the metadata and the body's length (checked on load).
#[derive(Serialize, Deserialize)]
struct Header {
    #[serde(flatten)]
    meta: CacheMeta,
    bytes: u64,
}

/// The on-disk cache of fetched lists.
#[derive(Clone, Debug)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// One file a list: a JSON header line (the metadata), then the body. Written atomically,
    /// so the body and the validators that describe it can never disagree.
    pub fn path(&self, list: &str) -> PathBuf {
        self.dir.join(format!("{}.cache", super::files::safe_name(list)))
    }

    /// The cached body and its metadata; `Ok(None)` when there is none, an error naming the
    /// file when it is unreadable or damaged.
    pub fn load(&self, list: &str) -> Result<Option<(Vec<u8>, CacheMeta)>> {
        let path = self.path(list);
        let data = match std::fs::read(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            r => r.with_context(|| format!("cannot read {}", path.display()))?,
        };
        let parse = || -> Result<(Vec<u8>, CacheMeta)> {
            let nl = data.iter().position(|b| *b == b'\n').context("no header line")?;
            let head: Header = serde_json::from_slice(&data[..nl]).context("bad header")?;
            let body = data[nl + 1..].to_vec();
            anyhow::ensure!(
                body.len() as u64 == head.bytes,
                "body of {} bytes where the header says {}",
                body.len(),
                head.bytes
            );
            Ok((body, head.meta))
        };
        parse().map(Some).with_context(|| format!("damaged cache file {}", path.display()))
    }

    /// Stores a good copy.
    pub fn store(&self, list: &str, body: &[u8], meta: &CacheMeta) -> Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let head = Header { meta: meta.clone(), bytes: body.len() as u64 };
        let mut data = serde_json::to_vec(&head)?;
        data.push(b'\n');
        data.extend_from_slice(body);
        write_atomic(&self.path(list), &data)
    }
}

/// The result of a fetch.
#[derive(Debug)]
pub enum Fetched {
    /// A new body, with the validators to send next time.
    New { body: Vec<u8>, meta: CacheMeta },
    /// The server says the cached copy is current (304).
    NotModified,
}

/// A client with rustls and the platform's certificate verification.
pub fn client(policy: &FetchPolicy) -> Result<reqwest::Client> {
    build(policy, false)
}

/// The same, for sources that send credentials (CrowdSec's key, TAXII's password or token): a
/// redirect is followed only within the origin the request went to, so no credential is sent
/// anywhere else (reqwest drops `Authorization` across origins, but not `X-Api-Key` or a
/// token header of the operator's choosing).
pub fn keyed_client(policy: &FetchPolicy) -> Result<reqwest::Client> {
    build(policy, true)
}

fn build(policy: &FetchPolicy, same_origin: bool) -> Result<reqwest::Client> {
    // One process-wide crypto provider; a second install is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let redirects = reqwest::redirect::Policy::custom(move |attempt| {
        let first = attempt.previous().first().map(|u| u.origin());
        let from = attempt.previous().last().map(|u| u.scheme().to_string());
        match (attempt.previous().len(), from) {
            (n, _) if n >= MAX_REDIRECTS => attempt.error("too many redirects"),
            (_, Some(from)) if downgrade(&from, attempt.url().scheme()) => {
                attempt.error("an https list redirected to plain http: refused")
            }
            _ if same_origin && first.is_some_and(|o| o != attempt.url().origin()) => attempt
                .error("redirected to another origin: refused (the credentials would go there)"),
            _ => attempt.follow(),
        }
    });
    reqwest::Client::builder()
        .timeout(policy.timeout)
        .redirect(redirects)
        .user_agent(concat!("takedown/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot build the HTTP client")
}

/// Redirects followed at most.
const MAX_REDIRECTS: usize = 10;

/// True when a redirect from scheme `from` to `to` gives up TLS.
fn downgrade(from: &str, to: &str) -> bool {
    from == "https" && to != "https"
}

/// Fetches `url`, conditionally when `cached` has validators; retries failures that may pass
/// (connection errors, timeouts, 5xx) with a doubling back-off.
pub async fn fetch(
    client: &reqwest::Client,
    url: &str,
    cached: Option<&CacheMeta>,
    policy: &FetchPolicy,
) -> Result<Fetched, String> {
    let mut wait = policy.backoff;
    let mut last = String::from("no time was left before the deadline");
    let left = || policy.until.map(|u| u.saturating_duration_since(std::time::Instant::now()));
    for attempt in 1..=policy.attempts.max(1) {
        // Each try ends by the deadline, if there is one.
        let timeout = cut_to(policy.timeout, policy.until);
        if timeout.is_zero() {
            break;
        }
        match fetch_once(client, url, cached, &FetchPolicy { timeout, ..*policy }).await {
            Ok(f) => return Ok(f),
            Err((retry, e)) => {
                last = e;
                let no_time = left().is_some_and(|l| l <= wait);
                if !retry || attempt == policy.attempts || no_time {
                    break;
                }
                log::warn!("{}: {last}; retrying in {wait:?}", redact(url));
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
        }
    }
    Err(last)
}

/// `timeout`, or the time left before `until` when that is shorter (zero once it has passed).
pub fn cut_to(timeout: Duration, until: Option<std::time::Instant>) -> Duration {
    let left = until.map(|u| u.saturating_duration_since(std::time::Instant::now()));
    left.map_or(timeout, |l| timeout.min(l))
}

/// One try; the error says whether a retry may help.
async fn fetch_once(
    client: &reqwest::Client,
    url: &str,
    cached: Option<&CacheMeta>,
    policy: &FetchPolicy,
) -> Result<Fetched, (bool, String)> {
    let mut req = client.get(url).timeout(policy.timeout);
    if let Some(c) = cached.filter(|c| c.url == redact(url)) {
        if let Some(etag) = &c.etag {
            req = req.header(header::IF_NONE_MATCH, etag);
        }
        if let Some(lm) = &c.last_modified {
            req = req.header(header::IF_MODIFIED_SINCE, lm);
        }
    }
    let resp = req.send().await.map_err(|e| (true, describe(e)))?;
    let status = resp.status();
    if status == StatusCode::NOT_MODIFIED {
        return if cached.is_some() {
            Ok(Fetched::NotModified)
        } else {
            Err((false, "304 without a cached copy".into()))
        };
    }
    if !status.is_success() {
        return Err((status.is_server_error(), format!("HTTP {status}")));
    }
    let header_str = |h| {
        resp.headers().get(h).and_then(|v: &header::HeaderValue| v.to_str().ok()).map(String::from)
    };
    let meta = CacheMeta {
        url: redact(url),
        etag: header_str(header::ETAG),
        last_modified: header_str(header::LAST_MODIFIED),
        fetched: crate::clock::now(),
        entries: 0,
    };
    let body = bounded_body(resp, policy.max_bytes).await?;
    Ok(Fetched::New { body, meta })
}

/// The body of `resp`, read as it comes and given up past `max` bytes (a `Content-Length`
/// over it is refused before a byte is read): every source reads through this, so an endless
/// answer costs at most `max` bytes of memory. The error says whether a retry may help.
pub async fn bounded_body(
    mut resp: reqwest::Response,
    max: u64,
) -> Result<Vec<u8>, (bool, String)> {
    if let Some(len) = resp.content_length().filter(|l| *l > max) {
        return Err((
            false,
            format!("body of {len} bytes exceeds the {max} byte limit (max_bytes)"),
        ));
    }
    let mut body = Vec::new();
    while let Some(chunk) =
        resp.chunk().await.map_err(|e| (true, format!("body cut short: {}", describe(e))))?
    {
        body.extend_from_slice(&chunk);
        if body.len() as u64 > max {
            return Err((false, format!("body exceeds the {max} byte limit (max_bytes)")));
        }
    }
    Ok(body)
}

/// Where the signature of the list at `url` is: `.minisig` added to its path, its query (a
/// token, a signed-URL's parameters) kept.
pub fn signature_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            u.set_path(&format!("{}.minisig", u.path()));
            u.to_string()
        }
        Err(_) => format!("{url}.minisig"),
    }
}

/// Words that make a query parameter's value a secret, wherever they appear in its name
/// (letters and digits only, any case): `key`, `api-key`, `access_key`, `X-Amz-Credential`,
/// `X-Amz-Signature`, `client_secret`, `sig`... A harmless parameter redacted too is the safe
/// mistake.
const SECRET_WORDS: [&str; 8] =
    ["key", "token", "secret", "password", "passwd", "credential", "auth", "sig"];

fn is_secret(name: &str) -> bool {
    let name: String = name.chars().filter(char::is_ascii_alphanumeric).collect();
    let name = name.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| name.contains(w))
}

/// `url` as it may be shown or stored: its password and secret query values replaced by `***`.
pub fn redact(url: &str) -> String {
    let Ok(mut u) = reqwest::Url::parse(url) else { return url.into() };
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    let secret = |k: &str| is_secret(k);
    if u.query_pairs().any(|(k, _)| secret(&k)) {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| (k.to_string(), if secret(&k) { "***".into() } else { v.into() }))
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}

/// An error with its causes, in one line (without the URL, which may hold a secret: the
/// caller names the list).
pub(super) fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut s = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    if s.contains("UnknownIssuer") {
        // A private CA (a CERT's own TAXII server): say how to trust it.
        s.push_str(
            " (the server's certificate is signed by an authority this machine does not trust: \
             give its CA to takedown with SSL_CERT_FILE=/path/ca.pem or SSL_CERT_DIR in its \
             environment)",
        );
    }
    if e.is_timeout() { format!("timed out ({s})") } else { s }
}

#[cfg(test)]
mod tests {
    use super::{Cache, CacheMeta, redact};

    #[test]
    fn the_cache_keeps_body_and_validators_together_and_names_a_damaged_file() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        assert!(cache.load("feed").unwrap().is_none(), "no copy yet");
        let meta = CacheMeta { etag: Some("\"v2\"".into()), fetched: 7, ..Default::default() };
        cache.store("feed", b"192.0.2.1\n198.51.100.0/24\n", &meta).unwrap();
        let (body, got) = cache.load("feed").unwrap().unwrap();
        assert_eq!(body, b"192.0.2.1\n198.51.100.0/24\n");
        assert_eq!((got.etag, got.fetched), (meta.etag, 7));

        let file = dir.path().join("feed.cache");
        let mut data = std::fs::read(&file).unwrap();
        data.truncate(data.len() - 4);
        std::fs::write(&file, data).unwrap();
        let err = format!("{:#}", cache.load("feed").unwrap_err());
        assert!(err.contains("damaged cache file") && err.contains("feed.cache"), "{err}");
        assert!(err.contains("body of 22 bytes where the header says 26"), "{err}");
        std::fs::write(&file, b"not json\n").unwrap();
        assert!(format!("{:#}", cache.load("feed").unwrap_err()).contains("bad header"));
    }

    #[test]
    fn a_redirect_from_https_to_http_is_a_downgrade() {
        use super::downgrade;
        assert!(downgrade("https", "http"));
        assert!(!downgrade("https", "https"));
        assert!(!downgrade("http", "https"));
        assert!(!downgrade("http", "http"));
    }

    #[test]
    fn a_signature_sits_beside_the_path_and_keeps_the_query() {
        use super::signature_url;
        assert_eq!(signature_url("https://l.example/t.txt"), "https://l.example/t.txt.minisig");
        assert_eq!(
            signature_url("https://l.example/t.txt?token=x&v=2"),
            "https://l.example/t.txt.minisig?token=x&v=2"
        );
    }

    #[test]
    fn secrets_in_urls_are_redacted() {
        assert_eq!(
            redact("https://cert:hunter2@feeds.example/list.txt?key=abc&day=1&Token=xyz"),
            "https://cert:***@feeds.example/list.txt?key=***&day=1&Token=***"
        );
        assert_eq!(redact("https://feeds.example/list.txt"), "https://feeds.example/list.txt");
        // Presigned URLs and the usual spellings of keys.
        let presigned = "https://b.s3.example/l.txt?X-Amz-Algorithm=AWS4&X-Amz-Credential=AKIA%2F1&X-Amz-Signature=f00d&api-key=1&access_key=2&client_secret=3&day=4";
        assert_eq!(
            redact(presigned),
            "https://b.s3.example/l.txt?X-Amz-Algorithm=AWS4&X-Amz-Credential=***&X-Amz-Signature=***&api-key=***&access_key=***&client_secret=***&day=4"
        );
        assert_eq!(redact("not a url"), "not a url");
    }
}
