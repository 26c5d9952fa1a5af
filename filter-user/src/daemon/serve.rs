//! The daemon's event loop: signals (SIGTERM/SIGINT stop, SIGHUP refreshes every list),
//! scheduled refreshes, new domain addresses, the control socket, and counter lines.

use std::{
    os::unix::fs::PermissionsExt,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{UnixListener, UnixStream},
    signal::unix::{SignalKind, signal},
    sync::watch,
};

use super::Daemon;
use crate::{
    control::{Reply, Request},
    counters,
    prepare::Resolved,
};

/// How the loop reports.
pub struct ServeOptions {
    /// Seconds between counter lines (0: none).
    pub interval: u64,
    /// Prints a line (the CLI's stdout).
    pub say: fn(&str),
    /// The bound listener for Prometheus metrics.
    pub metrics: Option<tokio::net::TcpListener>,
}

/// Runs until SIGTERM or SIGINT.
pub async fn serve(
    d: &mut Daemon,
    mut resolved: Option<watch::Receiver<Vec<Resolved>>>,
    names: Option<watch::Sender<Vec<(String, crate::plan::Meta)>>>,
    opts: ServeOptions,
) -> Result<()> {
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let mut hup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
    let listener = match &d.settings.state {
        Some(s) => {
            let path = s.socket();
            let _ = std::fs::remove_file(&path);
            let l = UnixListener::bind(&path)
                .with_context(|| format!("cannot listen on {}", path.display()))?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
            Some(l)
        }
        None => None,
    };
    let period = Duration::from_secs(opts.interval.max(1));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    let mut save = tokio::time::interval(Duration::from_secs(2));
    let metrics = opts.metrics;
    let mut events = match d.take_events() {
        // SAFETY: the ring buffer owns its map's descriptor, which stays open and the same for
        // as long as the AsyncFd owns the ring buffer.
        Some(ring) => Some(
            unsafe { tokio::io::unix::AsyncFd::register(ring) }
                .map_err(|e| anyhow::anyhow!("cannot watch the event ring buffer: {e}"))?,
        ),
        None => None,
    };
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    loop {
        let next_refresh = d.slots.iter().filter_map(|s| s.next).min();
        let sleep_to = next_refresh.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                log::info!("SIGHUP: refreshing every list");
                let r = d.refresh(None).await;
                after_refresh(d, &names, r);
            }
            _ = tokio::time::sleep_until(sleep_to.into()), if next_refresh.is_some() => {
                let due: Vec<String> = d.slots.iter().filter(|s| s.next.is_some_and(|n| n <= Instant::now())).map(|s| s.cfg.name.clone()).collect();
                for name in due {
                    let r = d.refresh(Some(&name)).await;
                    after_refresh(d, &names, r);
                }
            }
            _ = save.tick() => d.save_hosts(),
            conn = async { metrics.as_ref().expect("guarded").accept().await }, if metrics.is_some() => {
                if let Ok((stream, _)) = conn
                    && let Err(e) = scrape(d, stream).await
                {
                    log::debug!("metrics request failed: {e:#}");
                }
            }
            guard = async { events.as_mut().expect("guarded").readable_mut().await }, if events.is_some() => {
                let mut guard = guard?;
                let mut batch = Vec::new();
                while let Some(item) = guard.get_inner_mut().next() {
                    if item.len() >= std::mem::size_of::<filter_common::Event>() {
                        // SAFETY: the program writes whole `Event`s; the length was checked.
                        batch.push(unsafe { std::ptr::read_unaligned(item.as_ptr() as *const filter_common::Event) });
                    }
                }
                guard.clear_ready();
                d.record_events(&batch);
            }
            _ = ticker.tick(), if opts.interval > 0 => {
                if let Some(f) = d.filter() {
                    (opts.say)(&counters::read(f.ebpf())?.to_string());
                }
            }
            changed = async { resolved.as_mut().expect("guarded").changed().await }, if resolved.is_some() => {
                if changed.is_err() {
                    resolved = None;
                    continue;
                }
                let r = resolved.as_mut().expect("guarded").borrow_and_update().clone();
                d.set_resolved(r);
                match d.reconcile() {
                    Ok(ch) => log::info!("domains: applied {} writes and {} deletions", ch.written, ch.deleted),
                    Err(e) => log::error!("domains: cannot apply the new addresses: {e:#}"),
                }
            }
            conn = async { listener.as_ref().expect("guarded").accept().await }, if listener.is_some() => {
                if let Ok((stream, _)) = conn
                    && let Err(e) = handle(d, &names, stream).await
                {
                    log::warn!("control request failed: {e:#}");
                }
            }
        }
    }
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    d.save_hosts();
    if let Some(s) = &d.settings.state {
        let _ = std::fs::remove_file(s.socket());
    }
    Ok(())
}

/// Logs a refresh's outcome and hands the (possibly new) domain names to the resolver.
fn after_refresh(
    d: &Daemon,
    names: &Option<watch::Sender<Vec<(String, crate::plan::Meta)>>>,
    r: Result<Vec<crate::control::RefreshResult>>,
) {
    if let Err(e) = r {
        log::error!("refresh: {e:#}");
    }
    if let Some(tx) = names {
        let set = d.domain_names();
        tx.send_if_modified(|old| {
            let changed = *old != set;
            *old = set;
            changed
        });
    }
}

async fn handle(
    d: &mut Daemon,
    names: &Option<watch::Sender<Vec<(String, crate::plan::Meta)>>>,
    stream: UnixStream,
) -> Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(5), BufReader::new(read).read_line(&mut line))
        .await??;
    let reply = match serde_json::from_str::<Request>(&line) {
        Err(e) => Reply { error: Some(format!("bad request: {e}")), ..Default::default() },
        Ok(Request::Refresh { list }) => {
            let r = d.refresh(list.as_deref()).await;
            let reply = match &r {
                Ok(results) => Reply {
                    ok: results.iter().all(|x| x.ok),
                    results: results.clone(),
                    error: None,
                },
                Err(e) => Reply { error: Some(format!("{e:#}")), ..Default::default() },
            };
            after_refresh(d, names, r);
            reply
        }
        Ok(Request::ReloadManual) => match d.reload_manual() {
            Ok(_) => Reply { ok: true, ..Default::default() },
            Err(e) => Reply { error: Some(format!("{e:#}")), ..Default::default() },
        },
    };
    let mut out = serde_json::to_string(&reply)?;
    out.push('\n');
    write.write_all(out.as_bytes()).await?;
    Ok(())
}

/// Answers one HTTP request: the metrics on /metrics, 404 elsewhere.
async fn scrape(d: &Daemon, stream: tokio::net::TcpStream) -> Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(5), BufReader::new(read).read_line(&mut line))
        .await??;
    let path = line.split_whitespace().nth(1).unwrap_or("/");
    let (status, kind, body) = if path == "/metrics" || path.starts_with("/metrics?") {
        (
            "200 OK",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            crate::metrics::render(d)?,
        )
    } else {
        ("404 Not Found", "text/plain", "metrics are at /metrics\n".to_string())
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    write.write_all(head.as_bytes()).await?;
    write.write_all(body.as_bytes()).await?;
    Ok(())
}
