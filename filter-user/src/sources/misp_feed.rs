//! MISP feeds served over http(s): a list whose `url` ends in `/manifest.json`. Each refresh
//! asks for the manifest (conditionally: a 304 means the feed is unchanged), then fetches only
//! the events that are new or whose `timestamp` changed; the others are reused from the
//! previous refresh. The joined events are the list's content (cached like any URL list's).

use std::collections::BTreeMap;

use super::{
    fetch::{Ask, Deadline, Got},
    http::{self, Fetched},
    state::State,
};
use crate::lists::misp_feed::{self, FeedEvent};

/// The events of a feed as last fetched: uuid -> (timestamp, body).
pub type FeedEvents = BTreeMap<String, (String, Vec<u8>)>;

/// True when `url` names a MISP feed's manifest.
pub fn is_feed_url(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| u.path().ends_with(&format!("/{}", misp_feed::MANIFEST)))
}

/// Fetches the feed whose manifest is at `url`, reusing the `known` events whose timestamp
/// is the same; the events come back with the outcome (all of them on success, the known ones
/// and those fetched so far on failure, so that the next try fetches only what changed).
pub(super) async fn fetch(
    client: &reqwest::Client,
    ask: &Ask,
    url: &str,
    mut known: FeedEvents,
) -> (Result<Got, String>, State) {
    let policy = &ask.policy;
    let (manifest, meta) = match http::fetch(client, url, ask.validators.as_ref(), policy).await {
        Ok(Fetched::NotModified) => {
            let unchanged = "manifest not modified (304): feed unchanged".to_string();
            return (Ok(Got::Unchanged(unchanged)), State::Feed(known));
        }
        Ok(Fetched::New { body, meta }) => (body, meta),
        Err(e) => return (Err(format!("fetch failed: manifest: {e}")), State::Feed(known)),
    };
    let events = match misp_feed::events(&manifest) {
        Ok(events) => events,
        Err(e) => return (Err(format!("manifest: {e:#}")), State::Feed(known)),
    };
    match fetch_events(client, url, &events, &mut known, (policy, &ask.deadline)).await {
        Ok((bodies, fresh)) => {
            log::info!("list {}: {} events, {fresh} fetched", ask.name, events.len());
            let joined = misp_feed::join(events.iter().map(|e| bodies[&e.uuid].1.as_slice()));
            (Ok(Got::Bytes(joined, meta)), State::Feed(bodies))
        }
        Err(e) => (Err(e), State::Feed(known)),
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
    limits: (&http::FetchPolicy, &Deadline),
) -> Result<(FeedEvents, usize), String> {
    let mut out = FeedEvents::new();
    let fetched = fill(client, manifest_url, events, known, &mut out, limits).await;
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
    (policy, deadline): (&http::FetchPolicy, &Deadline),
) -> Result<usize, String> {
    let base = reqwest::Url::parse(manifest_url).map_err(|e| e.to_string())?;
    let (mut fresh, mut total) = (0, 0u64);
    for e in events {
        let body = match known.remove(&e.uuid) {
            Some((ts, body)) if ts == e.timestamp => body,
            _ => {
                // Past the deadline, what was fetched so far is kept for the next try.
                deadline.check()?;
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
