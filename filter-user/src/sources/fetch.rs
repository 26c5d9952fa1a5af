//! One fetch of a source, by kind: from what the daemon gives it ([`Ask`]: clients, the
//! fetch policy, the validators of the content in force) and the source's state before, it
//! gives back what it brought and the state after. A fetch that fails leaves the state as it
//! was (a feed's events come back as they were, or with those fetched so far).

use super::{
    Kind,
    http::{self, CacheMeta, FetchPolicy, Fetched},
    state::State,
};

/// What a fetch brought.
pub enum Got {
    /// The server says the content in force is current.
    Unchanged(String),
    /// New bytes, with what to cache them under.
    Bytes(Vec<u8>, CacheMeta),
}

/// When a fetch must have ended: checked between its requests (pages, events), so that what
/// it fetched so far comes back with its failure (a feed's events); the request under way may
/// take its `timeout` more.
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    pub at: std::time::Instant,
    pub secs: u64,
}

impl Deadline {
    pub fn in_secs(secs: u64) -> Self {
        Self { at: std::time::Instant::now() + std::time::Duration::from_secs(secs), secs }
    }

    /// Err with the words to say when it has passed.
    pub fn check(&self) -> Result<(), String> {
        if std::time::Instant::now() < self.at {
            return Ok(());
        }
        Err(self.message())
    }

    /// `timeout`, or what is left before the deadline when that is shorter: a request never
    /// runs past it.
    pub fn bound(&self, timeout: std::time::Duration) -> std::time::Duration {
        http::cut_to(timeout, Some(self.at)).max(std::time::Duration::from_millis(1))
    }

    pub fn message(&self) -> String {
        format!("the refresh took longer than its deadline of {} s", self.secs)
    }
}

/// What the daemon gives a fetch.
pub struct Ask {
    pub plain: Option<reqwest::Client>,
    /// The client that keeps credentials within their origin (TAXII, CrowdSec).
    pub keyed: Option<reqwest::Client>,
    pub policy: FetchPolicy,
    /// The cached copy's validators, when content is in force (a 304 must confirm it).
    pub validators: Option<CacheMeta>,
    /// The list's name and where it comes from, for log lines and the content's metadata.
    pub name: String,
    pub source: String,
    pub deadline: Deadline,
}

impl Ask {
    fn meta(&self) -> CacheMeta {
        CacheMeta { url: self.source.clone(), fetched: crate::clock::now(), ..Default::default() }
    }
}

impl Kind<'_> {
    /// Fetches the source once, from `state`; what it brought, and the state after. A failure
    /// at or past the deadline says so first.
    pub async fn fetch(&self, ask: &Ask, state: State) -> (Result<Got, String>, State) {
        let (got, state) = self.fetch_once(ask, state).await;
        let late = |e: String| match ask.deadline.check() {
            Err(deadline) if !e.starts_with(&deadline) => format!("{deadline}: {e}"),
            _ => e,
        };
        (got.map_err(late), state)
    }

    async fn fetch_once(&self, ask: &Ask, state: State) -> (Result<Got, String>, State) {
        let plain = ask.plain.as_ref().ok_or_else(|| "no HTTP client".to_string());
        let keyed = ask.keyed.as_ref().ok_or_else(|| "no HTTP client".to_string());
        match (self, state, plain, keyed) {
            (Kind::File(path), state, ..) => {
                let bytes = crate::lists::read_list(path, ask.policy.max_bytes);
                let meta = CacheMeta { url: path.display().to_string(), ..ask.meta() };
                (bytes.map(|b| Got::Bytes(b, meta)).map_err(|e| format!("{e:#}")), state)
            }
            (Kind::Url(url), state, Ok(c), _) => (fetch_url(c, ask, url).await, state),
            (Kind::MispFeed(url), State::Feed(known), Ok(c), _) => {
                super::misp_feed::fetch(c, ask, url, known).await
            }
            (Kind::Taxii(source), State::Collection(c), _, Ok(k)) => pull(k, ask, source, c).await,
            (Kind::Crowdsec(source), State::Decisions(d), _, Ok(k)) => {
                poll(k, ask, source, d).await
            }
            (Kind::Url(_) | Kind::MispFeed(_), state, Err(e), _) => (Err(e), state),
            (Kind::Taxii(_) | Kind::Crowdsec(_), state, _, Err(e)) => (Err(e), state),
            (_, state, ..) => (Err("the source's state does not fit its kind".into()), state),
        }
    }
}

/// A TAXII collection: what was added since the last pull; on failure, the collection as it
/// was.
async fn pull(
    client: &reqwest::Client,
    ask: &Ask,
    source: &super::taxii::Source,
    mut c: super::taxii::Collection,
) -> (Result<Got, String>, State) {
    let before = c.clone();
    let limits = (ask.policy.timeout, ask.policy.max_bytes);
    match c.pull(client, source, limits, &ask.deadline).await {
        Ok(added) => {
            log::info!("list {}: {added} objects pulled", ask.name);
            (Ok(Got::Bytes(c.bundle(), ask.meta())), State::Collection(c))
        }
        Err(e) => (Err(format!("{e:#}")), State::Collection(before)),
    }
}

/// A CrowdSec decision stream: one answer applied; on failure, the decisions as they were, read
/// from the stream's start next time (the Local API may have answered, and moved on, before the
/// failure).
async fn poll(
    client: &reqwest::Client,
    ask: &Ask,
    source: &super::crowdsec::Source,
    mut d: super::crowdsec::Decisions,
) -> (Result<Got, String>, State) {
    let mut before = d.clone();
    let timeout = ask.deadline.bound(ask.policy.timeout);
    let now = crate::clock::now();
    match d.poll(client, source, timeout, ask.policy.max_bytes, now).await {
        Ok(skipped) => {
            super::crowdsec::log_not_taken(&ask.name, &skipped);
            d.expire(crate::clock::now());
            (Ok(Got::Bytes(d.text().into_bytes(), ask.meta())), State::Decisions(d))
        }
        Err(e) => {
            before.started = false;
            (Err(format!("{e:#}")), State::Decisions(before))
        }
    }
}

/// A URL list: a conditional GET when content is in force.
async fn fetch_url(client: &reqwest::Client, ask: &Ask, url: &str) -> Result<Got, String> {
    match http::fetch(client, url, ask.validators.as_ref(), &ask.policy).await {
        Ok(Fetched::NotModified) => {
            Ok(Got::Unchanged("not modified (304): content unchanged".into()))
        }
        Ok(Fetched::New { body, meta }) => Ok(Got::Bytes(body, meta)),
        Err(e) => Err(format!("fetch failed: {e}")),
    }
}
