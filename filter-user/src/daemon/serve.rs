//! The daemon's event loop: signals (SIGTERM/SIGINT stop, SIGHUP refreshes every list),
//! scheduled refreshes, new domain addresses, kernel events, the control socket and counter
//! lines, each one small function below; the state it publishes after each step feeds the
//! metrics server, which runs in a task of its own (`metrics_http`).

use std::{
    os::unix::fs::PermissionsExt,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use filter_common::{Event, Record};
use tokio::{
    io::AsyncReadExt,
    io::unix::AsyncFd,
    io::{AsyncBufReadExt, BufReader},
    net::{TcpListener, UnixListener, UnixStream, unix::OwnedWriteHalf},
    signal::unix::{Signal, SignalKind, signal},
    sync::mpsc::Sender,
};

use super::{
    Daemon, Resolver,
    control::{Reply, Request},
    fetch::Outcome,
    jobs::{Jobs, send},
    metrics_http::Feed,
    resolve::Channels,
};
use crate::maps::counters;

/// The signals the loop answers, watched from the start of `takedown run`: a signal sent while
/// the lists load (or right after "filtering" is printed) waits for the loop instead of being
/// lost. A process started with SIGINT ignored (a background job of a script) would otherwise
/// drop it until the loop began, and run on.
pub struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

impl Signals {
    /// Starts watching SIGTERM, SIGINT and SIGHUP (inside the runtime).
    pub fn watch() -> Result<Self> {
        let watch = |kind| signal(kind).context("cannot watch signals");
        let (term, int) = (watch(SignalKind::terminate())?, watch(SignalKind::interrupt())?);
        Ok(Self { term, int, hup: watch(SignalKind::hangup())? })
    }
}

/// How the loop reports.
pub struct ServeOptions {
    /// The signals watched since the start.
    pub signals: Signals,
    /// Seconds between counter lines (0: none).
    pub interval: u64,
    /// Prints a line (the CLI's stdout).
    pub say: fn(&str),
    /// The bound listener for Prometheus metrics.
    pub metrics: Option<TcpListener>,
}

type Events = AsyncFd<aya::maps::RingBuf<aya::maps::MapData>>;

/// Runs until SIGTERM or SIGINT.
pub async fn serve(d: &mut Daemon, resolver: Option<Resolver>, opts: ServeOptions) -> Result<()> {
    let Signals { mut term, mut int, mut hup } = opts.signals;
    let control = control_listener(d)?;
    let mut dns = resolver.map(|r| r.spawn(d.domain_names()));
    let mut events = event_reader(d)?;
    let mut generation = d.generation();
    let period = Duration::from_secs(opts.interval.max(1));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    let mut save = tokio::time::interval(Duration::from_secs(2));
    let mut feed = metrics_feed(d, opts.metrics);
    // Refreshes run as jobs beside the loop: nothing here waits on a fetch.
    let mut jobs = Jobs::default();
    let mut requests = tokio::sync::mpsc::channel::<(String, OwnedWriteHalf)>(16);
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    loop {
        renew_events(d, &mut events, &mut generation)?;
        feed.publish(d);
        let next = [d.next_refresh(), d.next_expiry()].into_iter().flatten().min();
        let sleep_to = next.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                log::info!("SIGHUP: refreshing every list");
                jobs.every(d);
            }
            _ = tokio::time::sleep_until(sleep_to.into()), if next.is_some() => {
                expire(d);
                d.due().into_iter().for_each(|i| jobs.start(d, i));
            }
            Some((i, outcome)) = jobs.next(), if !jobs.is_empty() => {
                job_done(d, &mut jobs, i, outcome);
                send_names(d, &dns);
            }
            _ = save.tick() => housekeeping(d),
            guard = async { events.as_mut().expect("guarded").readable_mut().await }, if events.is_some() => {
                read_events(d, guard?);
            }
            _ = ticker.tick(), if opts.interval > 0 => say_counters(d, opts.say)?,
            changed = async { dns.as_mut().expect("guarded").addresses.changed().await }, if dns.is_some() => {
                match changed {
                    Ok(()) => new_addresses(d, dns.as_mut().expect("guarded")),
                    Err(_) => dns = None,
                }
            }
            conn = async { control.as_ref().expect("guarded").accept().await }, if control.is_some() => {
                // Each request is read apart from the loop: an idle or endless client holds
                // nothing up.
                if let Ok((stream, _)) = conn {
                    tokio::task::spawn_local(read_request(stream, requests.0.clone()));
                }
            }
            Some((line, write)) = requests.1.recv() => answer(d, &mut jobs, &line, write),
        }
    }
    shut_down(d);
    Ok(())
}

/// What the metrics endpoint serves, published from `d`, served on `listener` if given.
fn metrics_feed(d: &Daemon, listener: Option<TcpListener>) -> Feed {
    let mut feed = Feed::new(d);
    if let Some(listener) = listener {
        feed.serve(listener);
    }
    feed
}

/// The counter line, every `--interval` seconds.
fn say_counters(d: &Daemon, say: fn(&str)) -> Result<()> {
    if let Some(f) = d.filter() {
        say(&counters::read(f.maps())?.to_string());
    }
    Ok(())
}

/// Every two seconds: the host table saved, the pinned filter kept the daemon's own.
fn housekeeping(d: &mut Daemon) {
    d.save_hosts();
    d.check_pins();
    d.check_writers();
    d.check_mount();
    d.take_exposures();
}

fn shut_down(d: &mut Daemon) {
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    d.stop_journal();
    d.save_hosts();
    if let Some(s) = &d.settings.state {
        let _ = std::fs::remove_file(s.socket());
    }
}

/// The control socket (mode 0600), when there is a state directory.
fn control_listener(d: &Daemon) -> Result<Option<UnixListener>> {
    let Some(s) = &d.settings.state else { return Ok(None) };
    let path = s.socket();
    let _ = std::fs::remove_file(&path);
    let l = UnixListener::bind(&path)
        .with_context(|| format!("cannot listen on {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(Some(l))
}

/// After the filter moved to new maps, reads their event ring buffer instead.
fn renew_events(d: &mut Daemon, events: &mut Option<Events>, generation: &mut u64) -> Result<()> {
    if d.generation() != *generation {
        (*events, *generation) = (event_reader(d)?, d.generation());
    }
    Ok(())
}

fn event_reader(d: &mut Daemon) -> Result<Option<Events>> {
    let Some(ring) = d.take_events() else { return Ok(None) };
    // SAFETY: the ring buffer owns its map's descriptor, which stays open and the same for as
    // long as the AsyncFd owns the ring buffer.
    let fd = unsafe { AsyncFd::register(ring) }
        .map_err(|e| anyhow::anyhow!("cannot watch the event ring buffer: {e}"))?;
    Ok(Some(fd))
}

fn read_events(
    d: &mut Daemon,
    mut guard: tokio::io::unix::AsyncFdReadyMutGuard<'_, aya::maps::RingBuf<aya::maps::MapData>>,
) {
    let mut batch = Vec::new();
    while let Some(item) = guard.get_inner_mut().next() {
        batch.extend(Event::read(&item));
    }
    guard.clear_ready();
    d.record_events(&batch);
}

/// Takes expired manual entries and CrowdSec decisions out of the maps.
fn expire(d: &mut Daemon) {
    match d.expire() {
        Ok(Some(ch)) => log::info!("expired entries removed ({} deleted)", ch.deleted),
        Ok(None) => {}
        Err(e) => log::error!("cannot remove expired entries: {e:#}"),
    }
}

/// Applies the resolver's new addresses.
fn new_addresses(d: &mut Daemon, dns: &mut Channels) {
    let r = dns.addresses.borrow_and_update().clone();
    d.set_resolved(r);
    match d.reconcile() {
        Ok(ch) => log::info!("domains: applied {} writes and {} deletions", ch.written, ch.deleted),
        Err(e) => log::error!("domains: cannot apply the new addresses: {e:#}"),
    }
}

/// Takes a job's outcome in (or says it was lost), and answers the refreshes waiting for it.
fn job_done(d: &mut Daemon, jobs: &mut Jobs, i: usize, outcome: Result<Outcome, String>) {
    match outcome {
        Ok(outcome) => d.finish_job(outcome),
        Err(e) => d.job_lost(i, e),
    }
    jobs.done(d, i);
}

/// Gives the resolver the lists' domain names, when they changed.
fn send_names(d: &Daemon, dns: &Option<Channels>) {
    if let Some(dns) = dns {
        let set = d.domain_names();
        dns.names.send_if_modified(|old| {
            let changed = *old != set;
            *old = set;
            changed
        });
    }
}

/// The longest control request read (a request is a short JSON line).
const MOST_REQUEST: u64 = 64 << 10;

/// Reads one control request (a JSON line of at most [`MOST_REQUEST`] bytes, within 5 s) and
/// hands it to the loop with the way to answer.
async fn read_request(stream: UnixStream, to: Sender<(String, OwnedWriteHalf)>) {
    let (read, write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read.take(MOST_REQUEST + 1));
    let read = tokio::time::timeout(Duration::from_secs(5), reader.read_line(&mut line)).await;
    if matches!(read, Ok(Ok(n)) if n as u64 <= MOST_REQUEST) {
        let _ = to.send((line, write)).await;
    }
}

/// Answers one control request (one JSON line each way): a refresh once its lists have their
/// results (the loop goes on meanwhile), the rest at once.
fn answer(d: &mut Daemon, jobs: &mut Jobs, line: &str, write: OwnedWriteHalf) {
    let failed = |error: String| Reply { error: Some(error), ..Default::default() };
    let reply = match Request::parse(line) {
        Err(e) => failed(format!("{e:#}")),
        Ok(Request::Refresh { list }) => match d.lists_named(list.as_deref()) {
            Ok(lists) => return jobs.refresh(d, lists, write),
            Err(e) => failed(e),
        },
        Ok(Request::ReloadManual) => match d.reload_manual() {
            Ok(_) => Reply { ok: true, ..Default::default() },
            Err(e) => failed(format!("{e:#}")),
        },
    };
    tokio::task::spawn_local(send(write, reply));
}
