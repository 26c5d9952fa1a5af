//! The metrics endpoint: an HTTP/1.1 server (hyper) in a task of its own, fed by what the
//! daemon publishes, so that a slow or hostile client never delays a refresh or the control
//! socket. Requests are bounded in size, headers must arrive within a timeout, a connection
//! serves one request and lives at most a minute, and only so many are open at once: a new
//! one beyond that closes the idle one open longest, so that idle clients hold no slot.

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode, body::Incoming, header, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{net::TcpListener, sync::watch, task::AbortHandle};

use super::{
    Daemon,
    metrics::{CounterMaps, Published},
    metrics_format::Format,
};

/// Connections open at once; a new one beyond closes the idle one open longest.
pub const MAX_CONNECTIONS: usize = 32;
/// How long a client may take to send a request's headers (an idle connection included).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one connection may stay open, whatever it does.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);
/// The read buffer, and so the largest request head, in bytes.
pub const MAX_REQUEST: usize = 16 * 1024;

/// Publishes the daemon's state to the metrics server.
pub struct Feed {
    tx: watch::Sender<Published>,
    maps: Option<Arc<CounterMaps>>,
    generation: Option<u64>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Feed {
    fn drop(&mut self) {
        if let Some(s) = &self.server {
            s.abort();
        }
    }
}

impl Feed {
    /// A feed with the daemon's present state.
    pub fn new(d: &Daemon) -> Self {
        let snapshot = Arc::new(d.snapshot());
        let (tx, _) = watch::channel(Published { snapshot, maps: None });
        let mut feed = Self { tx, maps: None, generation: None, server: None };
        feed.publish(d);
        feed
    }

    /// Publishes the daemon's state now (the counter maps are opened again after the filter
    /// moved to new maps).
    pub fn publish(&mut self, d: &Daemon) {
        if self.generation != Some(d.generation()) || self.maps.is_none() {
            self.generation = Some(d.generation());
            self.maps = match d.filter().map(|f| CounterMaps::of(f.maps())) {
                Some(Ok(m)) => Some(Arc::new(m)),
                Some(Err(e)) => {
                    log::warn!("metrics: cannot open the counter maps: {e:#}");
                    None
                }
                None => None,
            };
        }
        let snapshot = Arc::new(d.snapshot());
        self.tx.send_replace(Published { snapshot, maps: self.maps.clone() });
    }

    /// Serves scrapes on `listener` in a task of its own, until the feed is dropped.
    pub fn serve(&mut self, listener: TcpListener) {
        self.server = Some(tokio::spawn(accept(listener, self.tx.subscribe())));
    }
}

/// The connections open: id -> when it opened, whether it has asked for something (a whole
/// request head arrived), and the way to close it.
type Open = Arc<Mutex<HashMap<u64, (Instant, Arc<AtomicBool>, AbortHandle)>>>;

async fn accept(listener: TcpListener, feed: watch::Receiver<Published>) {
    let open: Open = Arc::default();
    for id in 0u64.. {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                log::debug!("metrics: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let mut table = open.lock().unwrap_or_else(|e| e.into_inner());
        if table.len() >= MAX_CONNECTIONS && !close_an_idle_one(&mut table) {
            continue; // every connection is being answered: this one is closed, to retry
        }
        let asked = Arc::new(AtomicBool::new(false));
        let (feed, done, flag) = (feed.clone(), open.clone(), asked.clone());
        let task = tokio::spawn(async move {
            connection(stream, feed, flag).await;
            done.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        });
        table.insert(id, (Instant::now(), asked, task.abort_handle()));
    }
}

/// Closes the connection open longest that has asked for nothing yet (an idle or dribbling
/// client): such clients never hold the slots a scrape needs. False when there is none.
fn close_an_idle_one(table: &mut HashMap<u64, (Instant, Arc<AtomicBool>, AbortHandle)>) -> bool {
    let idle = table.iter().filter(|(_, (_, asked, _))| !asked.load(Ordering::Relaxed));
    let Some(oldest) = idle.min_by_key(|(_, (opened, ..))| *opened).map(|(id, _)| *id) else {
        return false;
    };
    if let Some((_, _, task)) = table.remove(&oldest) {
        task.abort();
    }
    true
}

/// Serves one connection within its bounds: one request (no keep-alive: an idle connection
/// holds nothing between scrapes), its head within the header timeout.
async fn connection(
    stream: tokio::net::TcpStream,
    feed: watch::Receiver<Published>,
    asked: Arc<AtomicBool>,
) {
    let service = service_fn(move |req| {
        asked.store(true, Ordering::Relaxed);
        let published = feed.borrow().clone();
        async move { Ok::<_, Infallible>(answer(&req, &published)) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .keep_alive(false)
        .max_buf_size(MAX_REQUEST)
        .serve_connection(TokioIo::new(stream), service);
    match tokio::time::timeout(CONNECTION_LIFETIME, conn).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => log::debug!("metrics: connection ended: {e}"),
        Err(_) => log::debug!("metrics: connection closed after {CONNECTION_LIFETIME:?}"),
    }
}

/// The metrics on GET /metrics in the format the client accepts, an error elsewhere.
fn answer(req: &Request<Incoming>, published: &Published) -> Response<Full<Bytes>> {
    if req.uri().path() != "/metrics" {
        return reply(StatusCode::NOT_FOUND, "text/plain", "metrics are at /metrics\n".into());
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "use GET\n".into());
    }
    let accept = req.headers().get(header::ACCEPT).and_then(|a| a.to_str().ok());
    let format = Format::accepted(accept);
    match published.render() {
        Ok(body) => reply(StatusCode::OK, format.content_type(), format.write(body)),
        Err(e) => reply(StatusCode::SERVICE_UNAVAILABLE, "text/plain", format!("{e:#}\n")),
    }
}

fn reply(status: StatusCode, kind: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(kind));
    r
}
