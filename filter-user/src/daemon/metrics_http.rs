//! The metrics endpoint: an HTTP/1.1 server (hyper) in a task of its own, fed by what the
//! daemon publishes, so that a slow or hostile client never delays a refresh or the control
//! socket. Requests are bounded in size, headers must arrive within a timeout, a connection
//! lives at most a minute and only so many are open at once.

use std::{convert::Infallible, sync::Arc, time::Duration};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode, body::Incoming, header, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    net::TcpListener,
    sync::{Semaphore, watch},
};

use super::{
    Daemon,
    metrics::{CounterMaps, Published},
    metrics_format::Format,
};

/// Connections served at once; more wait in the listen queue.
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

async fn accept(listener: TcpListener, feed: watch::Receiver<Published>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else { return };
        match listener.accept().await {
            Ok((stream, _)) => {
                let feed = feed.clone();
                tokio::spawn(async move {
                    connection(stream, feed).await;
                    drop(permit);
                });
            }
            Err(e) => {
                log::debug!("metrics: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Serves one connection within its bounds.
async fn connection(stream: tokio::net::TcpStream, feed: watch::Receiver<Published>) {
    let service = service_fn(move |req| {
        let published = feed.borrow().clone();
        async move { Ok::<_, Infallible>(answer(&req, &published)) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
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
