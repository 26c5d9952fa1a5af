//! Loading one list into its slot: get the bytes (file, or URL with cache), parse, guard, check
//! that it is usable and has not shrunk by more than half, then replace the content in force.
//! On any failure the previous content stays and the failure is recorded.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use super::Daemon;
use crate::{
    guards, lists as listfmt, prepare,
    source::{self, FetchPolicy, Fetched},
    status::now,
};

impl Daemon {
    /// Loads list `i`. `at_start`: a URL that cannot be fetched falls back to its cached copy.
    pub(super) async fn load_slot(&mut self, i: usize, at_start: bool) -> Result<(), String> {
        let started = Instant::now();
        let result = self.fetch_and_check(i, at_start).await;
        let slot = &mut self.slots[i];
        slot.last_duration = started.elapsed().as_secs_f64();
        if result.is_ok() {
            slot.refreshed_ok += 1
        } else {
            slot.refreshed_failed += 1
        }
        slot.status.last_attempt = Some(now());
        slot.next =
            (slot.cfg.refresh > 0).then(|| Instant::now() + Duration::from_secs(slot.cfg.refresh));
        match result {
            Ok(message) => {
                slot.status.ok = true;
                slot.status.last_success = Some(now());
                slot.status.message = message;
                if let Some(r) = &slot.report {
                    slot.status.entries = r.usable();
                    slot.status.domains = r.list.domains.len();
                }
                if !at_start {
                    log::info!("list {}: {}", slot.cfg.name, slot.status.message);
                }
                Ok(())
            }
            Err(e) => {
                slot.status.ok = false;
                slot.status.message = match &slot.report {
                    Some(_) => format!("{e}; keeping the previous content"),
                    None => e.clone(),
                };
                if !at_start {
                    log::warn!("list {}: {}", slot.cfg.name, slot.status.message);
                }
                Err(e)
            }
        }
    }

    async fn fetch_and_check(&mut self, i: usize, at_start: bool) -> Result<String, String> {
        let cfg = self.slots[i].cfg.clone();
        let (bytes, fetched_meta, note) = match (&cfg.file, &cfg.url) {
            (Some(path), _) => {
                (source::read_file(path).map_err(|e| format!("{e:#}"))?, None, String::new())
            }
            (_, Some(url)) => {
                let cache = self.cache();
                let cached = cache.as_ref().and_then(|c| c.load(&cfg.name));
                if self.slots[i].cached.is_none() {
                    self.slots[i].cached = cached.as_ref().map(|(_, m)| m.clone());
                }
                let client = self.client.as_ref().ok_or("no HTTP client")?;
                let policy = FetchPolicy {
                    max_bytes: cfg.max_bytes,
                    timeout: Duration::from_secs(cfg.timeout),
                    attempts: cfg.attempts,
                    backoff: Duration::from_secs(1),
                };
                let validators = if self.slots[i].report.is_some() {
                    self.slots[i].cached.clone()
                } else {
                    None
                };
                match source::fetch(client, url, validators.as_ref(), &policy).await {
                    Ok(Fetched::NotModified) => {
                        return Ok("not modified (304): content unchanged".into());
                    }
                    Ok(Fetched::New { body, meta }) => (body, Some(meta), String::new()),
                    Err(e) if at_start => match cached {
                        Some((body, meta)) => {
                            let note = format!(
                                " (fetch failed: {e}; using the cached copy of {})",
                                meta.fetched
                            );
                            self.slots[i].cached = Some(meta);
                            (body, None, note)
                        }
                        None => {
                            return Err(format!("fetch failed: {e}, and there is no cached copy"));
                        }
                    },
                    Err(e) => return Err(format!("fetch failed: {e}")),
                }
            }
            _ => return Err("no file or url".into()),
        };
        let origin =
            cfg.file.clone().unwrap_or_else(|| PathBuf::from(cfg.url.clone().unwrap_or_default()));
        let list = listfmt::parse_text(&origin, &String::from_utf8_lossy(&bytes), &cfg.options())
            .map_err(|e| format!("{e:#}"))?;
        let mut report = prepare::guard_list(list, 1u64 << self.slots[i].bit, self.guards());
        report.monitor = cfg.monitor;
        if report.usable() == 0 {
            let first = report
                .list
                .skipped
                .first()
                .or(report.guard_notes.first())
                .map(|n| format!("; first at line {}: {}", n.line, n.reason))
                .unwrap_or_default();
            return Err(format!(
                "no usable entry ({} lines skipped, {} refused or guarded{first})",
                report.list.skipped.len(),
                report.refused + report.guarded
            ));
        }
        if let Some(prev) = &self.slots[i].report {
            guards::shrink_check(
                prev.usable(),
                report.usable(),
                self.settings.config.guards.accept_shrink,
            )?;
        }
        if let (Some(meta), Some(cache)) = (&fetched_meta, self.cache()) {
            if let Err(e) = cache.store(&cfg.name, &bytes, meta) {
                log::warn!("list {}: cannot cache it: {e:#}", cfg.name);
            }
            self.slots[i].cached = Some(meta.clone());
        }
        let message = format!(
            "{} entries ({} domains), {} lines skipped, {} refused or guarded{note}",
            report.usable(),
            report.list.domains.len(),
            report.list.skipped.len(),
            report.refused + report.guarded
        );
        self.slots[i].report = Some(report);
        Ok(message)
    }
}
