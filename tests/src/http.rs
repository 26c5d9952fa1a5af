//! A scripted HTTP server for URL-source tests, on 127.0.0.1 inside a test namespace: serves a
//! body with an ETag (304 when the client sends it back), or fails on purpose (500, slow,
//! oversized, truncated), and records the requests. Stops on drop.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::Result;
use td_netns::{NetNs, in_netns};

/// What the server does with the next requests.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// 200 with this body and ETag; 304 when If-None-Match matches.
    Serve { body: String, etag: String },
    /// 500 Internal Server Error.
    Fail,
    /// Answers only after this long.
    Slow(Duration),
    /// Announces a body of this many bytes and sends it.
    Oversized(usize),
    /// Announces 1000 bytes, sends 100, closes.
    Truncated,
    /// Sends this many bytes chunked, without announcing a length.
    Chunked(usize),
    /// Serves each (path, body); 404 for any other path.
    Files(Vec<(String, String)>),
    /// Fails (500) the next `n` requests, then behaves as the boxed behaviour.
    FailFirst(u32, Box<Behaviour>),
    /// Waits this long, then behaves as the boxed behaviour (as it was when the request came).
    Delayed(Duration, Box<Behaviour>),
}

/// (path, If-None-Match) of each request.
pub type Requests = Arc<Mutex<Vec<(String, Option<String>)>>>;

pub struct HttpServer {
    pub addr: SocketAddr,
    behaviour: Arc<Mutex<Behaviour>>,
    /// (path, If-None-Match) of every request.
    pub requests: Requests,
    stop: Arc<AtomicBool>,
}

impl HttpServer {
    pub fn start(ns: &NetNs, behaviour: Behaviour) -> Result<Self> {
        let behaviour = Arc::new(Mutex::new(behaviour));
        let requests: Requests = Arc::default();
        let (b, r) = (behaviour.clone(), requests.clone());
        let (addr, stop) = listen(ns, move |conn| {
            let _ = serve(conn, &b, &r);
        })?;
        Ok(Self { addr, behaviour, requests, stop })
    }

    pub fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// A scripted server's address, its script (for the test to change) and the flag that stops
/// it.
pub type Scripted<S> = (SocketAddr, Arc<Mutex<S>>, Arc<AtomicBool>);

/// A scripted server on 127.0.0.1 inside `ns`: `script` behind a lock, each connection
/// answered by `answer` on a thread of its own.
pub fn scripted<S: Send + 'static>(
    ns: &NetNs,
    script: S,
    answer: fn(TcpStream, &Mutex<S>) -> std::io::Result<()>,
) -> Result<Scripted<S>> {
    let script = Arc::new(Mutex::new(script));
    let s = script.clone();
    let (addr, stop) = listen(ns, move |conn| {
        let _ = answer(conn, &s);
    })?;
    Ok((addr, script, stop))
}

/// Listens on 127.0.0.1 (a free port) inside `ns` and hands each connection to `handle` on a
/// thread of its own, until the returned flag is set.
pub fn listen(
    ns: &NetNs,
    handle: impl Fn(TcpStream) + Send + Sync + 'static,
) -> Result<(SocketAddr, Arc<AtomicBool>)> {
    listen_on(ns, "127.0.0.1:0", handle)
}

/// As [`listen`], on `bind` (an address of `ns`, and a port or 0).
pub fn listen_on(
    ns: &NetNs,
    bind: &str,
    handle: impl Fn(TcpStream) + Send + Sync + 'static,
) -> Result<(SocketAddr, Arc<AtomicBool>)> {
    let bind = bind.to_string();
    let listener = in_netns(ns, move || Ok(TcpListener::bind(bind.as_str())?))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let stop: Arc<AtomicBool> = Arc::default();
    let (flag, handle) = (stop.clone(), Arc::new(handle));
    std::thread::spawn(move || {
        while !flag.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((conn, _)) => {
                    let handle = handle.clone();
                    std::thread::spawn(move || {
                        let _ = conn.set_nonblocking(false);
                        handle(conn);
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    Ok((addr, stop))
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(
    conn: TcpStream,
    behaviour: &Mutex<Behaviour>,
    requests: &Mutex<Vec<(String, Option<String>)>>,
) -> std::io::Result<()> {
    let (first, inm) = read_head(&conn, "if-none-match")?;
    let path = first.split_whitespace().nth(1).unwrap_or("/").to_string();
    requests.lock().unwrap().push((path.clone(), inm.clone()));
    answer(conn, next(behaviour), &path, inm.as_deref())
}

/// Reads a request's head (5 s at most): its first line, and the value of header `wanted`.
pub fn read_head(conn: &TcpStream, wanted: &str) -> std::io::Result<(String, Option<String>)> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    read_head_from(conn.try_clone()?, wanted)
}

/// Reads a request's head from `from` (a TCP or TLS stream): its first line, and the value of
/// header `wanted`.
pub fn read_head_from(
    from: impl std::io::Read,
    wanted: &str,
) -> std::io::Result<(String, Option<String>)> {
    let mut reader = BufReader::new(from);
    let mut first = String::new();
    reader.read_line(&mut first)?;
    let mut value = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case(wanted)
        {
            value = Some(v.trim().to_string());
        }
    }
    Ok((first, value))
}

/// What to do for this request (counting a `FailFirst` down).
fn next(behaviour: &Mutex<Behaviour>) -> Behaviour {
    let mut current = behaviour.lock().unwrap();
    match &mut *current {
        Behaviour::FailFirst(0, then) => {
            let next = (**then).clone();
            *current = next.clone();
            next
        }
        Behaviour::FailFirst(n, _) => {
            *n -= 1;
            Behaviour::Fail
        }
        other => other.clone(),
    }
}

/// Writes the answer `b` gives to a request for `path` (with `If-None-Match: inm`).
fn answer(mut out: TcpStream, b: Behaviour, path: &str, inm: Option<&str>) -> std::io::Result<()> {
    match b {
        Behaviour::Serve { etag, .. } if inm == Some(etag.as_str()) => {
            write!(out, "HTTP/1.1 304 Not Modified\r\nETag: {etag}\r\nConnection: close\r\n\r\n")
        }
        Behaviour::Files(files) => match files.iter().find(|(p, _)| *p == path) {
            Some((_, body)) => write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
            None => write!(
                out,
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            ),
        },
        Behaviour::Serve { body, etag } => write!(
            out,
            "HTTP/1.1 200 OK\r\nETag: {etag}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
        Behaviour::Fail => write!(
            out,
            "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
        Behaviour::Slow(d) => {
            std::thread::sleep(d);
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: close\r\n\r\n203.0.113.7\n"
            )
        }
        Behaviour::Oversized(n) => {
            write!(out, "HTTP/1.1 200 OK\r\nContent-Length: {n}\r\nConnection: close\r\n\r\n")?;
            let line = b"203.0.113.9\n";
            for _ in 0..n / line.len() {
                out.write_all(line)?;
            }
            Ok(())
        }
        Behaviour::Truncated => {
            write!(out, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n")?;
            out.write_all(&[b'#'; 100])
        }
        Behaviour::Chunked(n) => {
            write!(
                out,
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            )?;
            let line = "203.0.113.9\n";
            for _ in 0..n / line.len() {
                write!(out, "{:x}\r\n{line}\r\n", line.len())?;
            }
            write!(out, "0\r\n\r\n")
        }
        Behaviour::FailFirst(..) => unreachable!("resolved above"),
        Behaviour::Delayed(d, then) => {
            std::thread::sleep(d);
            answer(out, *then, path, inm)
        }
    }
}

/// An HTTPS server on 127.0.0.1 inside `ns` with a self-signed certificate (which no client
/// should trust); it answers every request with a small list. Returns its port.
pub fn start_untrusted_https(ns: &NetNs) -> Result<u16> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])?;
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let config = Arc::new(
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)?,
    );
    let listener = in_netns(ns, || Ok(TcpListener::bind("127.0.0.1:0")?))?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let Ok(tls) = rustls::ServerConnection::new(config.clone()) else { continue };
            let mut stream = rustls::StreamOwned::new(tls, conn);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: close\r\n\r\n203.0.113.7\n",
            );
        }
    });
    Ok(port)
}

/// The whole answer (status line, headers, body) to a GET of `path` from `addr` in `ns`, with
/// `headers` (each ending in CRLF).
pub fn get_in(ns: &NetNs, addr: &str, path: &str, headers: &str) -> String {
    let (addr, path, headers) = (addr.to_string(), path.to_string(), headers.to_string());
    in_netns(ns, move || {
        let mut s = TcpStream::connect(addr)?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n{headers}Connection: close\r\n\r\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    })
    .unwrap()
}
