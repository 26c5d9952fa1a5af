//! A tiny authoritative DNS server for tests, on a loopback address inside a test namespace:
//! answers A and AAAA from a table the test controls, NXDOMAIN for unknown names, and counts
//! the queries. Stops on drop.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr, UdpSocket},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    time::Duration,
};

use anyhow::Result;
use hickory_proto::{
    op::{Message, MessageType, OpCode, ResponseCode},
    rr::{
        RData, Record, RecordType,
        rdata::{A, AAAA},
    },
};
use td_netns::{NetNs, in_netns};

type Table = Arc<Mutex<HashMap<String, (Vec<IpAddr>, u32)>>>;

/// A running test DNS server.
pub struct DnsServer {
    /// Where it listens (127.0.0.1 inside its namespace).
    pub addr: SocketAddr,
    table: Table,
    queries: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
}

impl DnsServer {
    /// Starts a server on 127.0.0.1 (random port) inside `ns`.
    pub fn start(ns: &NetNs) -> Result<Self> {
        let socket = in_netns(ns, || Ok(UdpSocket::bind("127.0.0.1:0")?))?;
        socket.set_read_timeout(Some(Duration::from_millis(100)))?;
        let server = Self {
            addr: socket.local_addr()?,
            table: Arc::default(),
            queries: Arc::default(),
            stop: Arc::default(),
        };
        let (table, queries, stop) =
            (server.table.clone(), server.queries.clone(), server.stop.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !stop.load(Ordering::Relaxed) {
                let Ok((n, peer)) = socket.recv_from(&mut buf) else { continue };
                queries.fetch_add(1, Ordering::Relaxed);
                if let Some(reply) = answer(&table, &buf[..n]) {
                    let _ = socket.send_to(&reply, peer);
                }
            }
        });
        Ok(server)
    }

    /// Sets (or replaces) the addresses of `name`, served with `ttl` seconds.
    pub fn set(&self, name: &str, addrs: &[&str], ttl: u32) {
        let addrs = addrs.iter().map(|a| a.parse().expect("test address")).collect();
        self.table.lock().unwrap().insert(name.to_ascii_lowercase(), (addrs, ttl));
    }

    /// Queries received so far.
    pub fn queries(&self) -> u32 {
        self.queries.load(Ordering::Relaxed)
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn answer(table: &Table, query: &[u8]) -> Option<Vec<u8>> {
    let request = Message::from_vec(query).ok()?;
    let mut reply = Message::new(request.metadata.id, MessageType::Response, OpCode::Query);
    reply.metadata.recursion_desired = request.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.metadata.authoritative = true;
    let table = table.lock().unwrap();
    for q in &request.queries {
        reply.add_query(q.clone());
        let name = q.name().to_string().trim_end_matches('.').to_ascii_lowercase();
        let Some((addrs, ttl)) = table.get(&name) else {
            reply.metadata.response_code = ResponseCode::NXDomain;
            continue;
        };
        for addr in addrs {
            let rdata = match (q.query_type(), addr) {
                (RecordType::A, IpAddr::V4(a)) => RData::A(A(*a)),
                (RecordType::AAAA, IpAddr::V6(a)) => RData::AAAA(AAAA(*a)),
                _ => continue,
            };
            reply.add_answer(Record::from_rdata(q.name().clone(), *ttl, rdata));
        }
    }
    reply.to_vec().ok()
}
