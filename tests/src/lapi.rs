//! A scripted CrowdSec Local API inside a test namespace: `GET /v1/decisions/stream` answers the
//! whole stream when `startup=true` and the queued deltas after, checks the `X-Api-Key` header
//! (403 when wrong), and can go down (connections closed unanswered). Records each request's
//! startup flag. Stops on drop.

use std::{
    collections::VecDeque,
    io::Write,
    net::SocketAddr,
    sync::{Arc, Mutex, atomic::AtomicBool},
};

use anyhow::Result;
use td_netns::NetNs;

#[derive(Default)]
struct Script {
    key: String,
    startup: String,
    deltas: VecDeque<String>,
    down: bool,
    /// `startup=` of each answered request.
    startups: Vec<bool>,
}

pub struct Lapi {
    pub addr: SocketAddr,
    script: Arc<Mutex<Script>>,
    stop: Arc<AtomicBool>,
}

impl Lapi {
    /// A Local API that accepts `key` and starts the stream with `startup` (a JSON answer).
    pub fn start(ns: &NetNs, key: &str, startup: &str) -> Result<Self> {
        let script = Script { key: key.into(), startup: startup.into(), ..Default::default() };
        let (addr, script, stop) = crate::http::scripted(ns, script, answer)?;
        Ok(Self { addr, script, stop })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues the answer to the next `startup=false` request.
    pub fn push_delta(&self, delta: &str) {
        self.script.lock().unwrap().deltas.push_back(delta.into());
    }

    pub fn set_down(&self, down: bool) {
        self.script.lock().unwrap().down = down;
    }

    pub fn set_key(&self, key: &str) {
        self.script.lock().unwrap().key = key.into();
    }

    /// The startup flag of each request answered so far.
    pub fn startups(&self) -> Vec<bool> {
        self.script.lock().unwrap().startups.clone()
    }

    /// Deltas not asked for yet.
    pub fn pending(&self) -> usize {
        self.script.lock().unwrap().deltas.len()
    }
}

impl Drop for Lapi {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

fn answer(conn: std::net::TcpStream, script: &Mutex<Script>) -> std::io::Result<()> {
    let (first, key) = crate::http::read_head(&conn, "x-api-key")?;
    let mut s = script.lock().unwrap();
    if s.down {
        return Ok(());
    }
    let (status, body) = if key.as_deref() != Some(s.key.as_str()) {
        ("403 Forbidden", r#"{"message":"access forbidden"}"#.to_string())
    } else if first.contains("/v1/decisions/stream?startup=true") {
        s.startups.push(true);
        ("200 OK", s.startup.clone())
    } else if first.contains("/v1/decisions/stream?startup=false") {
        s.startups.push(false);
        let delta = s.deltas.pop_front();
        ("200 OK", delta.unwrap_or_else(|| r#"{"new":null,"deleted":null}"#.into()))
    } else {
        ("404 Not Found", "{}".to_string())
    };
    drop(s);
    let mut out = conn;
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}
