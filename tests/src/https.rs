//! A trusted HTTPS file server for tests, inside a test namespace: a certificate for its
//! address issued by a test CA (whose PEM a client is given, e.g. through `SSL_CERT_FILE`),
//! files served with an ETag (304 when the client sends it back), a switch that takes it down
//! (connections closed unanswered), and the requests recorded. Stops on drop.

use std::{
    io::Write,
    net::{SocketAddr, TcpStream},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use anyhow::Result;
use td_netns::NetNs;

/// (path, If-None-Match) of each request.
type Requests = Arc<Mutex<Vec<(String, Option<String>)>>>;

pub struct HttpsFiles {
    pub addr: SocketAddr,
    /// The test CA's certificate, PEM.
    pub ca_pem: String,
    files: Arc<Mutex<Vec<(String, String)>>>,
    down: Arc<AtomicBool>,
    pub requests: Requests,
    stop: Arc<AtomicBool>,
}

impl HttpsFiles {
    /// Serves `files` (path, body) on `ip` (an address of `ns`), port chosen by the kernel.
    pub fn start(ns: &NetNs, ip: &str, files: Vec<(String, String)>) -> Result<Self> {
        let (config, ca_pem) = tls(ip)?;
        let files = Arc::new(Mutex::new(files));
        let (down, requests): (Arc<AtomicBool>, Requests) = Default::default();
        let (f, d, r) = (files.clone(), down.clone(), requests.clone());
        let (addr, stop) = crate::http::listen_on(ns, &format!("{ip}:0"), move |conn| {
            if !d.load(Ordering::Relaxed) {
                let _ = answer(conn, config.clone(), &f, &r);
            }
        })?;
        Ok(Self { addr, ca_pem, files, down, requests, stop })
    }

    /// The URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    pub fn set_files(&self, files: Vec<(String, String)>) {
        *self.files.lock().unwrap() = files;
    }

    /// Takes the server down (every connection closed at once) or up again.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::Relaxed);
    }
}

impl Drop for HttpsFiles {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A server configuration with a certificate for `ip` issued by a new CA, and the CA's PEM.
fn tls(ip: &str) -> Result<(Arc<rustls::ServerConfig>, String)> {
    use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, "takedown test CA");
    let ca_pem = ca.self_signed(&ca_key)?.pem();
    let key = rcgen::KeyPair::generate()?;
    let mut leaf = CertificateParams::new(vec![ip.to_string()])?;
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = leaf.signed_by(&key, &Issuer::new(ca, ca_key))?;
    let der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], der)?;
    Ok((Arc::new(config), ca_pem))
}

/// The ETag of `body`.
fn etag(body: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut h);
    format!("\"{:x}\"", h.finish())
}

fn answer(
    conn: TcpStream,
    config: Arc<rustls::ServerConfig>,
    files: &Mutex<Vec<(String, String)>>,
    requests: &Mutex<Vec<(String, Option<String>)>>,
) -> std::io::Result<()> {
    conn.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    let tls = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
    let mut stream = rustls::StreamOwned::new(tls, conn);
    let (first, inm) = crate::http::read_head_from(&mut stream, "if-none-match")?;
    let path = first.split_whitespace().nth(1).unwrap_or("/").to_string();
    requests.lock().unwrap().push((path.clone(), inm.clone()));
    let body = files.lock().unwrap().iter().find(|(p, _)| *p == path).map(|f| f.1.clone());
    let head = match &body {
        Some(b) if inm.as_deref() == Some(etag(b).as_str()) => {
            format!("HTTP/1.1 304 Not Modified\r\nETag: {}\r\n", etag(b))
        }
        Some(b) => {
            format!("HTTP/1.1 200 OK\r\nETag: {}\r\nContent-Length: {}\r\n", etag(b), b.len())
        }
        None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n".into(),
    };
    let body = body.filter(|_| head.contains("200 OK")).unwrap_or_default();
    write!(stream, "{head}Connection: close\r\n\r\n{body}")?;
    stream.conn.send_close_notify();
    stream.flush()
}
