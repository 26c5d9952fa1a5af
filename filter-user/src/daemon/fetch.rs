//! One fetch of a list as a job that owns what it needs (its configuration, the HTTP clients,
//! a copy of its source's state), so that it runs beside the daemon's loop (expiry, the control
//! socket and signals go on meanwhile) within the list's overall `deadline`; the daemon takes
//! its outcome in when it ends. A failed or late job changes nothing: the source's state and
//! the content in force stay as they were.

use std::time::Duration;

use super::{Daemon, config::ListConfig, feed::FeedEvents, slots::Got, status::now};
use crate::sources::{
    Kind,
    crowdsec::{Decisions, Skipped},
    http::{self, CacheMeta, Fetched},
    taxii::Collection,
};

/// A source's state, as a job carries it out and back.
pub(super) enum Carried {
    Nothing,
    Feed(FeedEvents),
    Collection(Collection, usize),
    Decisions(Decisions, Skipped),
}

/// What one fetch of list `i` needs, owned.
pub(super) struct Job {
    pub i: usize,
    started: std::time::Instant,
    cfg: ListConfig,
    client: Option<reqwest::Client>,
    keyed: Option<reqwest::Client>,
    /// The cached copy's validators, when content is in force (a 304 must confirm it).
    validators: Option<CacheMeta>,
    carried: Carried,
}

/// What a job brought: the bytes (or "unchanged"), and the source's new state on success.
pub(super) struct Outcome {
    pub i: usize,
    started: std::time::Instant,
    pub got: Result<Got, String>,
    carried: Carried,
}

impl Job {
    /// Runs the fetch, and the signature check of what it brought, within the deadline.
    pub async fn run(self) -> Outcome {
        let (i, started, deadline) = (self.i, self.started, self.cfg.deadline);
        match tokio::time::timeout(Duration::from_secs(deadline), self.work()).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome {
                i,
                started,
                got: Err(format!("the refresh took longer than its deadline of {deadline} s")),
                carried: Carried::Nothing,
            },
        }
    }

    async fn work(self) -> Outcome {
        let Job { i, started, cfg, client, keyed, validators, carried } = self;
        let max = cfg.max_bytes;
        let timeout = Duration::from_secs(cfg.timeout);
        let plain = client.as_ref().ok_or("no HTTP client");
        let keyed = keyed.as_ref().ok_or("no HTTP client");
        let (got, carried) = match (cfg.kind(), carried) {
            (Kind::File(path), _) => {
                let bytes = crate::lists::read_list(path, max).map_err(|e| format!("{e:#}"));
                let url = path.display().to_string();
                let meta = CacheMeta { url, fetched: now(), ..Default::default() };
                (bytes.map(|b| Got::Bytes(b, meta)), Carried::Nothing)
            }
            (Kind::Url(url), _) => match plain {
                Ok(c) => (fetch_url(c, &cfg, url, validators).await, Carried::Nothing),
                Err(e) => (Err(e.into()), Carried::Nothing),
            },
            (Kind::MispFeed(url), Carried::Feed(known)) => match plain {
                Ok(c) => super::feed::fetch(c, &cfg, url, validators, known).await,
                Err(e) => (Err(e.into()), Carried::Nothing),
            },
            (Kind::Taxii(source), Carried::Collection(mut c, _)) => match keyed {
                Ok(k) => match c.pull(k, source, timeout, max).await {
                    Ok(added) => (Ok(taxii_bytes(&cfg, &c)), Carried::Collection(c, added)),
                    Err(e) => (Err(format!("{e:#}")), Carried::Nothing),
                },
                Err(e) => (Err(e.into()), Carried::Nothing),
            },
            (Kind::Crowdsec(source), Carried::Decisions(mut d, _)) => match keyed {
                Ok(k) => match d.poll(k, source, timeout, max, now()).await {
                    Ok(skipped) => {
                        d.expire(now());
                        let meta = source_meta(&cfg);
                        (
                            Ok(Got::Bytes(d.text().into_bytes(), meta)),
                            Carried::Decisions(d, skipped),
                        )
                    }
                    Err(e) => (Err(format!("{e:#}")), Carried::Nothing),
                },
                Err(e) => (Err(e.into()), Carried::Nothing),
            },
            _ => (Err("the source's state is missing".into()), Carried::Nothing),
        };
        let got = match got {
            Ok(Got::Bytes(bytes, meta)) => {
                match check_signature(&cfg, client.as_ref(), &bytes).await {
                    Ok(()) => Ok(Got::Bytes(bytes, meta)),
                    Err(e) => Err(e),
                }
            }
            other => other,
        };
        Outcome { i, started, got, carried }
    }
}

fn source_meta(cfg: &ListConfig) -> CacheMeta {
    CacheMeta { url: cfg.source(), fetched: now(), ..Default::default() }
}

fn taxii_bytes(cfg: &ListConfig, c: &Collection) -> Got {
    Got::Bytes(c.bundle(), source_meta(cfg))
}

/// A URL list: a conditional GET when content is in force.
async fn fetch_url(
    client: &reqwest::Client,
    cfg: &ListConfig,
    url: &str,
    validators: Option<CacheMeta>,
) -> Result<Got, String> {
    let policy = cfg.fetch_policy(cfg.max_bytes);
    match http::fetch(client, url, validators.as_ref(), &policy).await {
        Ok(Fetched::NotModified) => {
            Ok(Got::Unchanged("not modified (304): content unchanged".into()))
        }
        Ok(Fetched::New { body, meta }) => Ok(Got::Bytes(body, meta)),
        Err(e) => Err(format!("fetch failed: {e}")),
    }
}

/// For a signed list, checks the signature beside its file or URL (`.minisig`).
async fn check_signature(
    cfg: &ListConfig,
    client: Option<&reqwest::Client>,
    bytes: &[u8],
) -> Result<(), String> {
    let Some(key) = cfg.minisign_key() else { return Ok(()) };
    let failed = |e: anyhow::Error| format!("signature check failed: {e:#}");
    if let Some(path) = &cfg.file {
        return crate::lists::signature::verify_file(path, bytes, &key).map_err(failed);
    }
    let url = http::signature_url(cfg.url.as_deref().ok_or("no file or url")?);
    let client = client.ok_or("no HTTP client")?;
    let policy = cfg.fetch_policy(crate::lists::signature::MAX_SIGNATURE);
    let sig = match http::fetch(client, &url, None, &policy).await {
        Ok(Fetched::New { body, .. }) => body,
        Ok(Fetched::NotModified) => return Err("signature: unexpected 304".into()),
        Err(e) => {
            return Err(format!(
                "signature check failed: cannot fetch {}: {e}",
                http::redact(&url)
            ));
        }
    };
    let sig = String::from_utf8_lossy(&sig);
    crate::lists::signature::verify(bytes, &sig, &key).map_err(failed)
}

impl Daemon {
    /// The job that fetches list `i` (a copy of its source's state inside).
    pub(super) fn job(&mut self, i: usize) -> Job {
        let slot = &mut self.slots[i];
        let carried = match slot.cfg.kind() {
            // A feed's events are moved out (they may be large) and come back with the outcome.
            Kind::MispFeed(_) => Carried::Feed(std::mem::take(&mut slot.feed)),
            Kind::Taxii(_) => Carried::Collection(slot.collection.clone().unwrap_or_default(), 0),
            Kind::Crowdsec(_) => {
                Carried::Decisions(slot.decisions.clone().unwrap_or_default(), Skipped::new())
            }
            Kind::File(_) | Kind::Url(_) => Carried::Nothing,
        };
        Job {
            i,
            started: std::time::Instant::now(),
            cfg: slot.cfg.clone(),
            client: self.client.clone(),
            keyed: self.keyed.clone(),
            validators: slot.report.as_ref().and(slot.cached.clone()),
            carried,
        }
    }

    /// The job of a scheduled refresh of list `i`, which is then under way (not due again,
    /// not refreshed by hand meanwhile) until [`Daemon::finish_job`] takes its outcome in.
    pub(super) fn start_job(&mut self, i: usize) -> Job {
        self.slots[i].fetching = true;
        self.slots[i].next = None;
        self.job(i)
    }

    /// Takes in the outcome of a scheduled refresh and applies what changed.
    pub(super) fn finish_job(&mut self, o: Outcome) {
        let (i, took) = (o.i, o.started.elapsed());
        self.slots[i].fetching = false;
        self.slots[i].changed = false;
        let before = self.slots[i].report.as_ref().map(|r| r.usable());
        let result = self.take_in(o, before);
        self.slots[i].record(&result, took, false);
        if !self.slots[i].changed {
            return self.write_status();
        }
        match self.reconcile() {
            Ok(ch) => log::info!("refresh applied: {} written, {} deleted", ch.written, ch.deleted),
            Err(e) => log::error!("refresh: {e:#}"),
        }
    }

    /// Takes in a job's outcome: the source's new state (saved), then its bytes, accepted
    /// unless unchanged; `before`: the usable entries of the content it replaces.
    pub(super) fn take_in(&mut self, o: Outcome, before: Option<usize>) -> Result<String, String> {
        let i = o.i;
        let name = self.slots[i].cfg.name.clone();
        match o.carried {
            Carried::Nothing => {}
            Carried::Feed(events) => self.slots[i].feed = events,
            Carried::Collection(c, added) => {
                log::info!("list {name}: {added} objects pulled");
                self.keep_collection(i, c);
            }
            Carried::Decisions(d, skipped) => {
                self.keep_decisions(i, d, &skipped);
            }
        }
        match o.got? {
            Got::Unchanged(message) => Ok(message),
            Got::Bytes(bytes, _) if self.slots[i].same_content(&bytes) => {
                Ok("content unchanged".into())
            }
            Got::Bytes(bytes, meta) => self.accept(i, &bytes, Some(meta), before),
        }
    }
}
