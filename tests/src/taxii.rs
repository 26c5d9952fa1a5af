//! A scripted TAXII 2.1 server inside a test namespace: one API root (`/api1/`) with one
//! collection, whose objects were each added at a time the test gives. `GET
//! /api1/collections/<id>/objects/` checks the `Authorization` header (401 when wrong), honours
//! `added_after`, pages by `limit` and `next` (an offset) with `more`, and sets
//! `X-TAXII-Date-Added-Last`. It can go down (connections closed unanswered) and records each
//! request's target. Stops on drop.

use std::{
    io::Write,
    net::SocketAddr,
    sync::{Arc, Mutex, atomic::AtomicBool},
};

use anyhow::Result;
use td_netns::NetNs;

/// The collection's id.
pub const COLLECTION: &str = "91a7b528-80eb-42ed-a74d-c6fbd5a26116";

#[derive(Default)]
struct Script {
    authorization: String,
    /// (date added, object JSON), in the order added.
    objects: Vec<(String, String)>,
    down: bool,
    targets: Vec<String>,
}

pub struct Taxii {
    pub addr: SocketAddr,
    script: Arc<Mutex<Script>>,
    stop: Arc<AtomicBool>,
}

impl Taxii {
    /// A server that accepts requests whose `Authorization` header is `authorization`.
    pub fn start(ns: &NetNs, authorization: &str) -> Result<Self> {
        let script = Script { authorization: authorization.into(), ..Default::default() };
        let (addr, script, stop) = crate::http::scripted(ns, script, answer)?;
        Ok(Self { addr, script, stop })
    }

    /// The API root.
    pub fn api_root(&self) -> String {
        format!("http://{}/api1/", self.addr)
    }

    /// Adds `object` to the collection, added at `date` (RFC 3339, later than the others).
    pub fn add(&self, date: &str, object: &str) {
        self.script.lock().unwrap().objects.push((date.into(), object.into()));
    }

    pub fn set_down(&self, down: bool) {
        self.script.lock().unwrap().down = down;
    }

    /// The request targets (path and query) answered or refused so far, and forgets them.
    pub fn take_targets(&self) -> Vec<String> {
        std::mem::take(&mut self.script.lock().unwrap().targets)
    }
}

impl Drop for Taxii {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The value of `key` in the query of `target`.
fn param<'a>(target: &'a str, key: &str) -> Option<&'a str> {
    let query = target.split_once('?')?.1;
    query.split('&').find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

fn answer(conn: std::net::TcpStream, script: &Mutex<Script>) -> std::io::Result<()> {
    let (first, auth) = crate::http::read_head(&conn, "authorization")?;
    let target = first.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut s = script.lock().unwrap();
    if s.down {
        return Ok(());
    }
    s.targets.push(target.clone());
    let path = format!("/api1/collections/{COLLECTION}/objects/");
    let (status, headers, body) = if auth.as_deref() != Some(s.authorization.as_str()) {
        ("401 Unauthorized", String::new(), r#"{"title":"unauthorized"}"#.to_string())
    } else if target.split('?').next() != Some(path.as_str()) {
        ("404 Not Found", String::new(), r#"{"title":"no such collection"}"#.to_string())
    } else {
        page(&s.objects, &target)
    };
    drop(s);
    let mut out = conn;
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: application/taxii+json;version=2.1\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// One page of the objects added after `added_after`, from offset `next`.
fn page(objects: &[(String, String)], target: &str) -> (&'static str, String, String) {
    // RFC 3339 times in one format compare as strings; `:` may come percent-encoded.
    let after = param(target, "added_after").map(|a| a.replace("%3A", ":"));
    let limit: usize = param(target, "limit").and_then(|l| l.parse().ok()).unwrap_or(100);
    let from: usize = param(target, "next").and_then(|n| n.parse().ok()).unwrap_or(0);
    let newer: Vec<&(String, String)> =
        objects.iter().filter(|(d, _)| after.as_ref().is_none_or(|a| d > a)).collect();
    let taken: Vec<&(String, String)> = newer.iter().skip(from).take(limit).copied().collect();
    let more = from + taken.len() < newer.len();
    let mut body = format!(r#"{{"more":{more}"#);
    if more {
        body.push_str(&format!(r#","next":"{}""#, from + taken.len()));
    }
    let list: Vec<&str> = taken.iter().map(|(_, o)| o.as_str()).collect();
    body.push_str(&format!(r#","objects":[{}]}}"#, list.join(",")));
    let headers =
        taken.last().map(|(d, _)| format!("X-TAXII-Date-Added-Last: {d}\r\n")).unwrap_or_default();
    ("200 OK", headers, body)
}
