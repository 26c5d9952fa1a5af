//! One fetch of a list as a job that owns what it needs (what the source needs to fetch, a
//! copy of its state, the list's signature key), so that it runs beside the daemon's loop
//! (expiry, the control socket and signals go on meanwhile) within the list's overall
//! `deadline`; the daemon takes its outcome in when it ends. A failed or late job changes
//! nothing: the source's state and the content in force stay as they were.

use std::time::{Duration, Instant};

use super::{Daemon, config::ListConfig};
use crate::sources::{
    fetch::{Ask, Deadline, Got},
    http::{self, Fetched},
    state::State,
};

/// What one fetch of list `i` needs, owned.
pub(super) struct Job {
    pub i: usize,
    started: Instant,
    cfg: ListConfig,
    ask: Ask,
    state: State,
}

/// What a job brought: the bytes (or "unchanged"), and the source's state after.
pub(super) struct Outcome {
    pub i: usize,
    started: Instant,
    pub got: Result<Got, String>,
    /// None: the job ran out of time, and the state it took is lost (the slot keeps its own).
    state: Option<State>,
}

impl Job {
    /// Runs the fetch, and the signature check of what it brought, within the deadline: no
    /// request runs past it, and the fetch checks it between its requests (so that what it
    /// fetched so far comes back); a job still running a moment after it is dropped.
    pub async fn run(self) -> Outcome {
        let (i, started, deadline) = (self.i, self.started, self.ask.deadline);
        let hard = deadline.at + Duration::from_secs(2);
        match tokio::time::timeout_at(hard.into(), self.work()).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome { i, started, got: Err(deadline.message()), state: None },
        }
    }

    async fn work(self) -> Outcome {
        let Job { i, started, cfg, ask, state } = self;
        let (got, state) = cfg.kind().fetch(&ask, state).await;
        let got = match got {
            Ok(Got::Bytes(bytes, meta)) => match check_signature(&cfg, &ask, &bytes).await {
                Ok(()) => Ok(Got::Bytes(bytes, meta)),
                Err(e) => Err(e),
            },
            other => other,
        };
        Outcome { i, started, got, state: Some(state) }
    }
}

/// For a signed list, checks the signature beside its file or URL (`.minisig`).
async fn check_signature(cfg: &ListConfig, ask: &Ask, bytes: &[u8]) -> Result<(), String> {
    let Some(key) = cfg.minisign_key() else { return Ok(()) };
    let failed = |e: anyhow::Error| format!("signature check failed: {e:#}");
    if let Some(path) = &cfg.file {
        return crate::lists::signature::verify_file(path, bytes, &key).map_err(failed);
    }
    let url = http::signature_url(cfg.url.as_deref().ok_or("no file or url")?);
    let client = ask.plain.as_ref().ok_or("no HTTP client")?;
    let policy = cfg.fetch_policy(crate::lists::signature::MAX_SIGNATURE);
    let policy = http::FetchPolicy { until: ask.policy.until, ..policy };
    let sig = match http::fetch(client, &url, None, &policy).await {
        Ok(Fetched::New { body, .. }) => body,
        Ok(Fetched::NotModified) => return Err("signature: unexpected 304".into()),
        Err(e) => {
            let url = http::redact(&url);
            return Err(format!("signature check failed: cannot fetch {url}: {e}"));
        }
    };
    let sig = String::from_utf8_lossy(&sig);
    crate::lists::signature::verify(bytes, &sig, &key).map_err(failed)
}

impl Daemon {
    /// The job that fetches list `i` (a copy of its source's state inside).
    pub(super) fn job(&mut self, i: usize) -> Job {
        let slot = &mut self.slots[i];
        let deadline = Deadline::in_secs(slot.cfg.deadline);
        let policy = slot.cfg.fetch_policy(slot.cfg.max_bytes);
        let ask = Ask {
            plain: self.client.clone(),
            keyed: self.keyed.clone(),
            policy: http::FetchPolicy { until: Some(deadline.at), ..policy },
            validators: slot.report.as_ref().and(slot.cached.clone()),
            name: slot.cfg.name.clone(),
            source: slot.cfg.source(),
            deadline,
        };
        let state = slot.state.take_copy();
        Job { i, started: Instant::now(), cfg: slot.cfg.clone(), ask, state }
    }

    /// The job of a refresh of list `i`, which is then under way (not due again,
    /// not refreshed by hand meanwhile) until [`Daemon::finish_job`] takes its outcome in.
    pub(super) fn start_job(&mut self, i: usize) -> Job {
        self.slots[i].fetching = true;
        self.slots[i].next = None;
        self.job(i)
    }

    /// A job that ended without an outcome (its task failed): the list's state and content
    /// stay, the failure is said, and the list is fetched again as scheduled.
    pub(super) fn job_lost(&mut self, i: usize, why: String) {
        self.slots[i].fetching = false;
        self.slots[i].state.resync();
        self.slots[i].record(&Err(why), Duration::ZERO, false);
    }

    /// Takes in the outcome of a refresh and applies what changed.
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

    /// Takes in a job's outcome: the source's state after (saved), then its bytes, accepted
    /// unless unchanged; `before`: the usable entries of the content it replaces.
    pub(super) fn take_in(&mut self, o: Outcome, before: Option<usize>) -> Result<String, String> {
        let (i, mut got) = (o.i, o.got);
        if o.state.is_none() {
            // Dropped at its deadline: the source's state stays, read anew from the start
            // where the source moved on meanwhile (a decision stream).
            self.slots[i].state.resync();
        }
        if let Some(mut state) = o.state {
            // What ended while the fetch ran stays ended, in the state and in the content it
            // makes (CrowdSec decisions).
            let ended = state.expire(crate::clock::now());
            if let (true, Ok(Got::Bytes(bytes, _)), Some((text, _))) =
                (ended, &mut got, state.content())
            {
                *bytes = text;
            }
            let worth = state.worth_saving(&self.slots[i].state);
            self.slots[i].state = state;
            if worth {
                self.save_state(i);
            }
        }
        match got? {
            Got::Unchanged(message) => Ok(message),
            Got::Bytes(bytes, _) if self.slots[i].same_content(&bytes) => {
                Ok("content unchanged".into())
            }
            Got::Bytes(bytes, meta) => self.accept(i, &bytes, Some(meta), before),
        }
    }
}
