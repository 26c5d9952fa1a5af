//! The journal's writer, a thread of its own: drains the kernel's ring every 100 ms into rows
//! of the current few seconds, appends them every 5 s (sooner when asked: `flush`, or when the
//! rows reach a block's bound) as one block an hour they fall in, deletes old hours every
//! minute (by age, then to hold `max_bytes`), and empties the kernel's flow slots every hour
//! (a long UDP flow is reported again). It never holds the daemon's loop up: a writer replaced
//! finishes on its own.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use aya::maps::{MapData, RingBuf};
use filter_common::{Connection, Record};

use super::{
    JournalConfig,
    block::{self, Key, Seen},
    recent::RecentFlows,
    sides::Sides,
    store::{Removed, Store},
};
use crate::{clock::now, maps::journal::FlowSlots};

const TICK: Duration = Duration::from_millis(100);
const BLOCK_EVERY: Duration = Duration::from_secs(5);
const CLEAN_EVERY: Duration = Duration::from_secs(60);
const HOUR: u64 = 3600;
/// Records taken from the ring at a time (then the rows may be written).
const DRAIN_AT_MOST: usize = 100_000;
const UDP: u8 = 17;

/// What the writer did, for the status and the metrics.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// New connections the kernel reported (UDP replies and repeats it did not know as such
    /// left out).
    pub connections: u64,
    /// Connections with no inside end (neither address private, no inside interface).
    pub unsided: u64,
    /// Blocks and bytes appended.
    pub blocks: u64,
    pub bytes: u64,
    /// Hours deleted since the start, by age and to hold `max_bytes`.
    pub removed: Removed,
    /// Rows not written: the current hour alone reached `max_bytes`, or they were older than
    /// `days` (records a stopped daemon left in the ring).
    pub dropped: u64,
    /// The last write or cleanup that failed.
    pub error: Option<String>,
}

/// The running writer.
pub struct Writer {
    shared: Arc<Shared>,
    handle: Option<JoinHandle<()>>,
}

struct Shared {
    stop: AtomicBool,
    /// Flushes asked for, and done.
    asked: AtomicU64,
    done: AtomicU64,
    stats: Mutex<Stats>,
}

/// A handle that asks the writer to write what it holds (for the exposure check).
#[derive(Clone)]
pub struct Flusher(Arc<Shared>);

impl Flusher {
    /// Asks for a flush and waits for it (at most 2 s).
    pub fn flush(&self) {
        let want = self.0.asked.fetch_add(1, Ordering::SeqCst) + 1;
        let end = Instant::now() + Duration::from_secs(2);
        while self.0.done.load(Ordering::SeqCst) < want && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Writer {
    /// Starts a writer on `ring` (and the kernel's `flows` slots).
    pub fn start(
        ring: RingBuf<MapData>,
        flows: FlowSlots,
        store: Store,
        sides: Sides,
        cfg: JournalConfig,
    ) -> Self {
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            asked: AtomicU64::new(0),
            done: AtomicU64::new(0),
            stats: Mutex::new(Stats::default()),
        });
        let mut run = Run {
            ring,
            flows,
            store,
            sides,
            cfg,
            shared: shared.clone(),
            rows: HashMap::new(),
            recent: RecentFlows::default(),
            ring_empty: true,
            full: false,
        };
        let handle = std::thread::Builder::new().name("journal".into()).spawn(move || run.main());
        if let Err(e) = &handle {
            log::error!("cannot start the connection journal's writer: {e}");
        }
        Self { shared, handle: handle.ok() }
    }

    pub fn stats(&self) -> Stats {
        self.shared.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn flusher(&self) -> Flusher {
        Flusher(self.shared.clone())
    }

    /// Has it write what it holds and stop, and waits for that (at the daemon's exit).
    pub fn finish(mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Writer {
    /// Has it write what it holds and stop, without waiting.
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
    }
}

struct Run {
    ring: RingBuf<MapData>,
    flows: FlowSlots,
    store: Store,
    sides: Sides,
    cfg: JournalConfig,
    shared: Arc<Shared>,
    rows: HashMap<Key, Seen>,
    recent: RecentFlows,
    /// The last drain emptied the ring (else it stopped at a bound: drain again at once).
    ring_empty: bool,
    /// The current hour alone is over max_bytes (see `clean`).
    full: bool,
}

impl Run {
    fn main(&mut self) {
        let (mut written, mut cleaned, mut hour) = (Instant::now(), None::<Instant>, now() / HOUR);
        loop {
            // Asked before the drain: a flush covers every record reported before it was asked.
            let asked = self.shared.asked.load(Ordering::SeqCst);
            self.drain();
            let stop = self.shared.stop.load(Ordering::SeqCst);
            let due = written.elapsed() >= BLOCK_EVERY || self.rows.len() >= block::MAX_ROWS;
            if stop || due || asked > self.shared.done.load(Ordering::SeqCst) {
                self.write();
                written = Instant::now();
                self.shared.done.store(asked, Ordering::SeqCst);
            }
            if stop {
                return;
            }
            if cleaned.is_none_or(|c| c.elapsed() >= CLEAN_EVERY) {
                self.clean();
                cleaned = Some(Instant::now());
            }
            if now() / HOUR != hour {
                hour = now() / HOUR;
                if let Err(e) = self.flows.clear() {
                    log::warn!("cannot empty the kernel's flow slots: {e:#}");
                }
            }
            if self.ring_empty {
                std::thread::sleep(TICK);
            }
        }
    }

    /// Records from the ring into the rows (at most [`DRAIN_AT_MOST`], and no more than a
    /// block holds), each at the wall-clock time the kernel stamped it.
    fn drain(&mut self) {
        let (wall, mono) = (now(), crate::maps::monotonic_ns());
        let (mut n, mut unsided) = (0, 0);
        self.ring_empty = false;
        while n < DRAIN_AT_MOST && self.rows.len() < block::MAX_ROWS {
            let Some(item) = self.ring.next() else {
                self.ring_empty = true;
                break;
            };
            let Some(c) = Connection::read(&item) else { continue };
            let t = wall.saturating_sub(mono.saturating_sub(c.ts_ns) / 1_000_000_000);
            let Some(k) = self.sides.key(&c) else {
                unsided += 1;
                continue;
            };
            let (src, dst) = if k.inbound { (k.remote, k.inside) } else { (k.inside, k.remote) };
            if c.proto == UDP && self.recent.known((src, c.sport), (dst, c.dport), t) {
                continue;
            }
            n += 1;
            self.rows.entry(k).and_modify(|s| s.merge(&Seen::once(t))).or_insert(Seen::once(t));
        }
        if n > 0 || unsided > 0 {
            let mut s = self.shared.stats.lock().expect("journal stats");
            s.connections += n as u64;
            s.unsided += unsided;
        }
    }

    /// The rows as blocks, one an hour they fall in (by their first time); rows older than
    /// `days`, or any while the current hour is over max_bytes, are counted, not written.
    fn write(&mut self) {
        let keep_from = now().saturating_sub(self.cfg.days * 86_400);
        let mut hours: HashMap<u64, Vec<(Key, Seen)>> = HashMap::new();
        let mut dropped = 0;
        for (k, s) in self.rows.drain() {
            if self.full || s.first < keep_from {
                dropped += 1;
            } else {
                hours.entry(s.first / HOUR).or_default().push((k, s));
            }
        }
        let mut s = self.shared.stats.lock().expect("journal stats");
        s.dropped += dropped;
        for (hour, mut rows) in hours {
            let done = block::encode(&mut rows)
                .and_then(|b| self.store.append(hour * HOUR, &b).map(|()| b.len()));
            match done {
                Ok(len) => {
                    (s.blocks, s.bytes, s.error) = (s.blocks + 1, s.bytes + len as u64, None);
                }
                Err(e) => {
                    log::error!("the connection journal lost {} rows: {e:#}", rows.len());
                    s.error = Some(format!("{e:#}"));
                }
            }
        }
    }

    fn clean(&mut self) {
        self.recent.expire(now());
        let r = self.store.clean(now(), self.cfg.days, self.cfg.max_bytes);
        let mut s = self.shared.stats.lock().expect("journal stats");
        if r.by_size > 0 {
            log::warn!(
                "the connection journal reached max_bytes ({} bytes): deleted its {} oldest hours",
                self.cfg.max_bytes,
                r.by_size
            );
        }
        if r.full && !self.full {
            log::error!(
                "the connection journal's current hour alone reached max_bytes ({} \
                 bytes): nothing more is written until the next hour",
                self.cfg.max_bytes
            );
        }
        self.full = r.full;
        s.removed.by_age += r.by_age;
        s.removed.by_size += r.by_size;
    }
}
