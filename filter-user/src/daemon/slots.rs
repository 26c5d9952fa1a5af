//! One configured list and its last good content; loading it: get the bytes (file, or URL with
//! cache), run them through the pipeline, check that the list is usable and has not shrunk by
//! more than half, then replace the content in force. On any failure the previous content stays
//! and the failure is recorded.

use std::time::{Duration, Instant};

use anyhow::Result;

use super::{
    Daemon,
    config::ListConfig,
    control::RefreshResult,
    status::{ListStatus, now},
};
use crate::{
    plan::{guards, pipeline::ListSpec},
    sources::{
        http::{self, CacheMeta},
        state::State,
    },
};

/// Seconds between two tries of a list that never loaded.
const RETRY: u64 = 60;

/// One configured list and its last good content.
pub struct Slot {
    pub cfg: ListConfig,
    pub spec: ListSpec,
    pub bit: u32,
    pub report: Option<crate::plan::pipeline::ListReport>,
    pub status: ListStatus,
    /// Validators of the cached copy (URL lists).
    pub cached: Option<CacheMeta>,
    /// When the cached copy in force was fetched, while the list runs on it (since a start
    /// whose fetch failed, until a load succeeds).
    on_cache: Option<u64>,
    /// When its next scheduled refresh is due.
    pub next: Option<Instant>,
    /// A refresh of it runs (a job beside the loop: scheduled, SIGHUP or `takedown refresh`).
    pub fetching: bool,
    /// Refreshes that succeeded and failed, and how long the last one took.
    pub refreshed_ok: u64,
    pub refreshed_failed: u64,
    pub last_duration: f64,
    /// A hash of the bytes of the content in force: the same bytes again are not re-parsed.
    content: Option<u64>,
    /// The last load replaced the content in force.
    pub changed: bool,
    /// Its source's state between fetches (a feed's events, a collection, decisions).
    pub state: State,
    /// What its last accepted content was, in words ("3 entries (0 domains), ...").
    accepted: Option<String>,
    /// Entries the pinned filter held for it, kept while it has no content (see `held`).
    pub held: Vec<(ipnet::IpNet, crate::plan::Meta)>,
    /// The bytes of the content in force, kept only when entries of it expire (STIX
    /// `valid_until`): they are parsed again at that moment, without a fetch.
    pub expiring: Option<Vec<u8>>,
}

impl Slot {
    pub fn new(cfg: ListConfig, spec: ListSpec, bit: u32) -> Self {
        let status = ListStatus {
            name: cfg.name.clone(),
            bit,
            source: cfg.source(),
            refresh: cfg.refresh,
            ..Default::default()
        };
        Slot {
            state: State::fresh(&cfg.kind()),
            held: Vec::new(),
            accepted: None,
            cfg,
            spec,
            bit,
            report: None,
            status,
            cached: None,
            on_cache: None,
            next: None,
            fetching: false,
            refreshed_ok: 0,
            refreshed_failed: 0,
            last_duration: 0.0,
            content: None,
            changed: false,
            expiring: None,
        }
    }

    /// True when `bytes` are the bytes of the content in force.
    pub(super) fn same_content(&self, bytes: &[u8]) -> bool {
        self.report.is_some() && self.content == Some(crate::lists::content_hash(bytes))
    }

    /// Records the outcome of a load that took `took`.
    pub(super) fn record(
        &mut self,
        result: &Result<String, String>,
        took: Duration,
        at_start: bool,
    ) {
        self.last_duration = took.as_secs_f64();
        self.status.last_attempt = Some(now());
        // A list that never loaded is retried within a minute, whatever its interval.
        let every = match (result, &self.report, self.cfg.refresh) {
            (Err(_), None, r) => Some(if r > 0 { r.min(RETRY) } else { RETRY }),
            (_, _, 0) => None,
            (_, _, r) => Some(r),
        };
        self.next = every.map(|s| Instant::now() + Duration::from_secs(s));
        self.status.ok = result.is_ok();
        if let Some(r) = &self.report {
            self.status.entries = r.usable();
            self.status.domains = r.list.domains.len();
        }
        match result {
            Ok(message) => {
                self.on_cache = None;
                self.refreshed_ok += 1;
                self.status.last_success = Some(now());
                // Unchanged content keeps what was said of it (entries, what a guard held).
                self.status.message = match &self.accepted {
                    Some(said) if !self.changed && !message.contains(said.as_str()) => {
                        format!("{message}: {said}")
                    }
                    _ => message.clone(),
                };
            }
            Err(e) => {
                self.refreshed_failed += 1;
                // A load that failed but changed the content fell back to the cached copy.
                self.status.message = match (&self.report, self.on_cache) {
                    (Some(_), Some(t)) if !self.changed => {
                        format!("{e}; still using the cached copy of {}", super::status::utc(t))
                    }
                    (Some(_), None) if !self.changed => {
                        format!("{e}; keeping the previous content")
                    }
                    _ => e.clone(),
                };
            }
        }
        if !at_start {
            let (name, message) = (&self.cfg.name, &self.status.message);
            match result {
                // A refresh that changed nothing (every few seconds for a CrowdSec list) is
                // not news.
                Ok(_) if !self.changed => log::debug!("list {name}: {message}"),
                Ok(_) => log::info!("list {name}: {message}"),
                Err(_) => log::warn!("list {name}: {message}"),
            }
        }
    }
}

/// A list's cached copy, or why it cannot be used.
type Cached = Result<Option<(Vec<u8>, CacheMeta)>, String>;

impl Daemon {
    /// Loads list `i`. At start, a list whose source fails or whose new content is refused
    /// (not a list, or less than half of what was last accepted) enforces its cached copy: the
    /// last content accepted, kept in the state directory for every list.
    pub(super) async fn load_slot(&mut self, i: usize, at_start: bool) -> Result<(), String> {
        let started = Instant::now();
        self.slots[i].changed = false;
        let cached = if at_start { self.cached(i) } else { Ok(None) };
        let before = match (&self.slots[i].report, &cached) {
            (Some(r), _) => Some(r.usable()),
            (None, Ok(Some((_, meta)))) => Some(meta.entries),
            _ => None,
        };
        // At start, a fetched list with a cached copy enforces it at once; the fetch follows
        // beside the loop, so that a slow or dead source delays nothing.
        let remote = self.slots[i].cfg.kind().is_remote();
        if at_start
            && remote
            && let Ok(Some((body, meta))) = &cached
        {
            match self.start_on_cache(i, body, meta.clone()) {
                Ok(()) => return Ok(()),
                Err(e) => log::warn!("list {}: the cached copy: {e}", self.slots[i].cfg.name),
            }
        }
        let mut result = self.load_new(i, before).await;
        if at_start && let Err(why) = &result {
            result = self.fall_back(i, why, cached);
        }
        self.slots[i].record(&result, started.elapsed(), at_start);
        result.map(|_| ())
    }

    /// Fetches or reads list `i` (a job, awaited here) and accepts what is new; `before`: the
    /// usable entries of the content it replaces, for the shrink guard.
    async fn load_new(&mut self, i: usize, before: Option<usize>) -> Result<String, String> {
        let outcome = self.job(i).run().await;
        self.take_in(outcome, before)
    }

    /// The cached copy of list `i` (none without a state directory).
    fn cached(&self, i: usize) -> Cached {
        if let Some((text, polled)) = self.slots[i].state.content() {
            // A CrowdSec list's last decisions, each still with its own end, as last polled.
            let fetched = if polled > 0 { polled } else { now() };
            let meta = CacheMeta { url: self.slots[i].cfg.source(), fetched, ..Default::default() };
            return Ok((!text.is_empty()).then_some((text, meta)));
        }
        let Some(cache) = self.cache() else { return Ok(None) };
        let name = &self.slots[i].cfg.name;
        cache.load(name).map_err(|e| {
            // Evidence, and out of the way of the next good copy.
            match crate::sources::files::set_aside(&cache.path(name)) {
                Ok(aside) => format!("{e:#} (kept as {})", aside.display()),
                Err(_) => format!("{e:#}"),
            }
        })
    }

    /// Enforces the cached copy of list `i` at start, and has it fetched at once (beside the
    /// loop, which runs by then).
    fn start_on_cache(&mut self, i: usize, body: &[u8], meta: CacheMeta) -> Result<(), String> {
        let took = self.accept(i, body, None, None)?;
        let when = super::status::utc(meta.fetched);
        let slot = &mut self.slots[i];
        if let Some(r) = &slot.report {
            (slot.status.entries, slot.status.domains) = (r.usable(), r.list.domains.len());
        }
        slot.status.ok = true;
        slot.status.last_success.get_or_insert(meta.fetched);
        slot.status.message =
            format!("using the cached copy of {when} until the first refresh, under way: {took}");
        slot.on_cache = Some(meta.fetched);
        slot.cached = Some(meta);
        slot.next = Some(Instant::now());
        Ok(())
    }

    /// Enforces the cached copy of list `i` instead of new content refused for `why`; the
    /// load still counts as failed, and says which copy is in force.
    fn fall_back(&mut self, i: usize, why: &str, cached: Cached) -> Result<String, String> {
        match cached {
            Ok(Some((body, meta))) => {
                let took = self.accept(i, &body, None, None).map_err(|e| {
                    format!("{why}, and the cached copy cannot be used either: {e}")
                })?;
                let when = super::status::utc(meta.fetched);
                // Fetched then, by this daemon or the one before it (after a restart).
                self.slots[i].status.last_success.get_or_insert(meta.fetched);
                self.slots[i].on_cache = Some(meta.fetched);
                self.slots[i].cached = Some(meta);
                Err(format!("{why}; using the cached copy of {when}: {took}"))
            }
            Ok(None) => Err(format!("{why}, and there is no cached copy")),
            Err(damaged) => Err(format!("{why}, and {damaged}")),
        }
    }

    /// The lists `name` names (every list when None).
    pub fn lists_named(&self, name: Option<&str>) -> Result<Vec<usize>, String> {
        let picked: Vec<usize> = (0..self.slots.len())
            .filter(|&i| name.is_none_or(|n| self.slots[i].cfg.name == n))
            .collect();
        if picked.is_empty() {
            return Err(format!("no list named {:?}", name.unwrap_or_default()));
        }
        Ok(picked)
    }

    /// List `i`'s last refresh, as `takedown refresh` reports it.
    pub fn refresh_result(&self, i: usize) -> RefreshResult {
        let s = &self.slots[i];
        RefreshResult {
            list: s.cfg.name.clone(),
            ok: s.status.ok,
            message: s.status.message.clone(),
        }
    }

    /// When the next scheduled refresh is due, if any list has one.
    pub fn next_refresh(&self) -> Option<Instant> {
        self.slots.iter().filter_map(|s| s.next).min()
    }

    /// The lists whose scheduled refresh is due (none already under way).
    pub fn due(&self) -> Vec<usize> {
        let now = Instant::now();
        let due = |s: &&Slot| s.next.is_some_and(|n| n <= now) && !s.fetching;
        self.slots.iter().enumerate().filter(|(_, s)| due(s)).map(|(i, _)| i).collect()
    }

    /// Runs `bytes` through the pipeline; a usable list that keeps at least half of `before`
    /// entries replaces the content in force and, when `fetched` says where it came from, the
    /// cached copy.
    pub(super) fn accept(
        &mut self,
        i: usize,
        bytes: &[u8],
        fetched: Option<CacheMeta>,
        before: Option<usize>,
    ) -> Result<String, String> {
        let slot = &self.slots[i];
        let text = String::from_utf8_lossy(bytes);
        let report =
            self.pipeline.list(&slot.spec, slot.bit, &text).map_err(|e| format!("{e:#}"))?;
        // A CrowdSec list or TAXII collection may hold nothing at all (yet), and so may a list
        // whose entries all ended (`unusable` says so); any other list must hold an entry.
        let stream = slot.cfg.kind().is_stream();
        let ended = report.list.expired + report.list.pending;
        let nothing = report.error.is_none() && report.list.skipped.is_empty();
        if let Some(why) = report.unusable().filter(|_| !(stream && nothing)) {
            return Err(why);
        }
        // Decisions come and go by the thousand, and a collection only loses what its
        // publisher revokes: the shrink guard is for lists, and entries that ended are no
        // shrink.
        if let Some(before) = before.filter(|_| !stream) {
            let accept = self.settings.config.guards.accept_shrink;
            guards::shrink_check(before, report.usable() + ended, accept)?;
        }
        let mut stored = true;
        if let (Some(meta), Some(cache)) = (fetched, self.cache()) {
            // Validators are kept only with the body they describe: without a stored copy, the
            // next fetch is unconditional, and the same bytes are accepted (and stored) again.
            let meta = CacheMeta { entries: report.usable(), ..meta };
            self.slots[i].cached = match cache.store(&slot.cfg.name, bytes, &meta) {
                Ok(()) => Some(meta),
                Err(e) => {
                    log::warn!("list {}: cannot cache it: {e:#}", slot.cfg.name);
                    stored = false;
                    None
                }
            };
        }
        // Name what a guard held back: the operator sees it in `status` and the log.
        let first_guarded =
            report.guard_notes.first().map(|n| format!(" (the first: {})", n.reason));
        let message = format!(
            "{} entries ({} domains), {} lines skipped, {} refused or guarded{}",
            report.usable(),
            report.list.domains.len(),
            report.list.skipped.len(),
            report.refused + report.guarded,
            first_guarded.unwrap_or_default()
        );
        let slot = &mut self.slots[i];
        slot.accepted = Some(message.clone());
        slot.held.clear();
        slot.expiring = report.list.changes_at.map(|_| bytes.to_vec());
        slot.report = Some(report);
        slot.content = stored.then(|| crate::lists::content_hash(bytes));
        slot.changed = true;
        Ok(message)
    }

    fn cache(&self) -> Option<http::Cache> {
        self.settings.state.as_ref().map(|s| http::Cache::new(s.cache_dir()))
    }
}
