//! The daemon's side of MISP feeds served over http(s): a list whose `url` ends in
//! `/manifest.json`. Each refresh asks for the manifest (conditionally: a 304 means the feed
//! is unchanged), then fetches only the events that are new or whose `timestamp` changed;
//! the others are reused from the previous refresh. The joined events are the list's content
//! (cached like any URL list's).

use std::collections::BTreeMap;

use super::{Daemon, slots::Got};
use crate::{
    lists::misp_feed::{self, FeedEvent},
    sources::http::{self, Fetched},
};

/// The events of a feed as last fetched: uuid -> (timestamp, body).
pub type FeedEvents = BTreeMap<String, (String, Vec<u8>)>;

/// True when `url` names a MISP feed's manifest.
pub fn is_feed_url(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| u.path().ends_with(&format!("/{}", misp_feed::MANIFEST)))
}

impl Daemon {
    /// Fetches the feed whose manifest is at `url` for list `i`.
    pub(super) async fn fetch_feed(&mut self, i: usize, url: &str) -> Result<Got, String> {
        let cfg = self.slots[i].cfg.clone();
        let client = self.client.clone().ok_or("no HTTP client")?;
        let policy = cfg.fetch_policy(cfg.max_bytes);
        let validators = self.slots[i].report.as_ref().and(self.slots[i].cached.clone());
        let (manifest, meta) = match http::fetch(&client, url, validators.as_ref(), &policy).await {
            Ok(Fetched::NotModified) => {
                return Ok(Got::Unchanged("manifest not modified (304): feed unchanged".into()));
            }
            Ok(Fetched::New { body, meta }) => (body, meta),
            Err(e) => return Err(format!("fetch failed: manifest: {e}")),
        };
        let events = misp_feed::events(&manifest).map_err(|e| format!("manifest: {e:#}"))?;
        let mut known = std::mem::take(&mut self.slots[i].feed);
        let fetched = fetch_events(&client, url, &events, &mut known, &policy).await;
        let (bodies, fresh) = fetched.inspect_err(|_| self.slots[i].feed = known)?;
        log::info!("list {}: {} events, {fresh} fetched", cfg.name, events.len());
        let joined = misp_feed::join(events.iter().map(|e| bodies[&e.uuid].1.as_slice()));
        self.slots[i].feed = bodies;
        Ok(Got::Bytes(joined, meta))
    }
}

/// Every event of `events`: moved out of `known` when its timestamp is the same, fetched from
/// beside the manifest otherwise; with how many were fetched. At most `policy.max_bytes` in
/// all. On failure `known` keeps every event it had, so the next try fetches only what
/// changed.
async fn fetch_events(
    client: &reqwest::Client,
    manifest_url: &str,
    events: &[FeedEvent],
    known: &mut FeedEvents,
    policy: &http::FetchPolicy,
) -> Result<(FeedEvents, usize), String> {
    let mut out = FeedEvents::new();
    let fetched = fill(client, manifest_url, events, known, &mut out, policy).await;
    if fetched.is_err() {
        known.append(&mut out);
    }
    fetched.map(|fresh| (out, fresh))
}

/// The loop of [`fetch_events`]: moves or fetches each event into `out`.
async fn fill(
    client: &reqwest::Client,
    manifest_url: &str,
    events: &[FeedEvent],
    known: &mut FeedEvents,
    out: &mut FeedEvents,
    policy: &http::FetchPolicy,
) -> Result<usize, String> {
    let base = reqwest::Url::parse(manifest_url).map_err(|e| e.to_string())?;
    let (mut fresh, mut total) = (0, 0u64);
    for e in events {
        let body = match known.remove(&e.uuid) {
            Some((ts, body)) if ts == e.timestamp => body,
            _ => {
                let url = base.join(&format!("{}.json", e.uuid)).map_err(|e| e.to_string())?;
                fresh += 1;
                match http::fetch(client, url.as_str(), None, policy).await {
                    Ok(Fetched::New { body, .. }) => body,
                    Ok(Fetched::NotModified) => return Err("event: unexpected 304".into()),
                    Err(why) => return Err(format!("fetch failed: event {}: {why}", e.uuid)),
                }
            }
        };
        total += body.len() as u64;
        if total > policy.max_bytes {
            return Err(format!("the feed exceeds the {} byte limit", policy.max_bytes));
        }
        out.insert(e.uuid.clone(), (e.timestamp.clone(), body));
    }
    Ok(fresh)
}
