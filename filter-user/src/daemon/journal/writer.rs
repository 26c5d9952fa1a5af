//! The journal's writer, a thread of its own: drains the kernel's ring every 100 ms into rows
//! of the current few seconds, appends them as a block every 5 s (or when asked: `flush`),
//! and cleans old hours every hour. It never holds the daemon's loop up.

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
use filter_common::Connection;

use super::{
    JournalConfig,
    block::{self, Key, Seen},
    sides::Sides,
    store::{Removed, Store},
};
use crate::clock::now;

const TICK: Duration = Duration::from_millis(100);
const BLOCK_EVERY: Duration = Duration::from_secs(5);
const CLEAN_EVERY: Duration = Duration::from_secs(3600);

/// What the writer did, for the status and the metrics.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// New connections the kernel reported.
    pub connections: u64,
    /// Connections with no inside end (neither address private, no inside interface).
    pub unsided: u64,
    /// Blocks and bytes appended.
    pub blocks: u64,
    pub bytes: u64,
    /// Hours deleted since the start, by age and to hold `max_bytes`.
    pub removed: Removed,
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
    pub fn start(ring: RingBuf<MapData>, store: Store, sides: Sides, cfg: JournalConfig) -> Self {
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            asked: AtomicU64::new(0),
            done: AtomicU64::new(0),
            stats: Mutex::new(Stats::default()),
        });
        let mut run = Run { ring, store, sides, cfg, shared: shared.clone(), rows: HashMap::new() };
        let handle =
            std::thread::Builder::new().name("journal".into()).spawn(move || run.main()).ok();
        Self { shared, handle }
    }

    pub fn stats(&self) -> Stats {
        self.shared.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn flusher(&self) -> Flusher {
        Flusher(self.shared.clone())
    }
}

impl Drop for Writer {
    /// Writes what it holds, then stops.
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

struct Run {
    ring: RingBuf<MapData>,
    store: Store,
    sides: Sides,
    cfg: JournalConfig,
    shared: Arc<Shared>,
    rows: HashMap<Key, Seen>,
}

impl Run {
    fn main(&mut self) {
        let (mut written, mut cleaned) = (Instant::now(), None::<Instant>);
        loop {
            self.drain();
            let stop = self.shared.stop.load(Ordering::SeqCst);
            let asked = self.shared.asked.load(Ordering::SeqCst);
            if stop
                || asked > self.shared.done.load(Ordering::SeqCst)
                || written.elapsed() >= BLOCK_EVERY
            {
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
            std::thread::sleep(TICK);
        }
    }

    /// Every record in the ring into the rows.
    fn drain(&mut self) {
        let (t, mut n, mut unsided) = (now(), 0, 0);
        while let Some(item) = self.ring.next() {
            if item.len() < size_of::<Connection>() {
                continue;
            }
            // SAFETY: the kernel wrote a `Connection` there; read without alignment.
            let c = unsafe { (item.as_ptr() as *const Connection).read_unaligned() };
            n += 1;
            match self.sides.key(&c) {
                Some(k) => {
                    self.rows.entry(k).or_insert(Seen { count: 0, ..Seen::once(t) }).count += 1
                }
                None => unsided += 1,
            }
        }
        if n > 0 {
            let mut s = self.shared.stats.lock().expect("journal stats");
            s.connections += n;
            s.unsided += unsided;
        }
    }

    /// The rows as one block, appended to the hour's file.
    fn write(&mut self) {
        if self.rows.is_empty() {
            return;
        }
        let mut rows: Vec<(Key, Seen)> = self.rows.drain().collect();
        let at = rows.iter().map(|(_, s)| s.first).min().unwrap_or_else(now);
        let done =
            block::encode(&mut rows).and_then(|b| self.store.append(at, &b).map(|()| b.len()));
        let mut s = self.shared.stats.lock().expect("journal stats");
        match done {
            Ok(len) => {
                s.blocks += 1;
                s.bytes += len as u64;
            }
            Err(e) => {
                log::error!("the connection journal lost {} rows: {e:#}", rows.len());
                s.error = Some(format!("{e:#}"));
            }
        }
    }

    fn clean(&mut self) {
        let done = self.store.clean(now(), self.cfg.days, self.cfg.max_bytes);
        let mut s = self.shared.stats.lock().expect("journal stats");
        match done {
            Ok(r) => {
                if r.by_size > 0 {
                    log::warn!(
                        "the connection journal reached max_bytes ({} bytes): deleted its {} oldest hours",
                        self.cfg.max_bytes,
                        r.by_size
                    );
                }
                s.removed.by_age += r.by_age;
                s.removed.by_size += r.by_size;
            }
            Err(e) => s.error = Some(format!("{e:#}")),
        }
    }
}
