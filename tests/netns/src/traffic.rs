//! Real traffic between namespaces: ping, and UDP datagrams counted at the receiver.

use std::{
    fs::File,
    net::{IpAddr, SocketAddr, UdpSocket},
    os::fd::AsRawFd,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use crate::NetNs;

/// Runs `f` on a thread that has entered `ns`; sockets it creates stay in that namespace.
pub fn in_netns<T: Send + 'static>(
    ns: &NetNs,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let path = format!("/run/netns/{}", ns.name());
    std::thread::spawn(move || {
        let file = File::open(&path).with_context(|| format!("cannot open {path}"))?;
        // SAFETY: setns on a namespace file descriptor affects only this thread.
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            bail!("setns {path}: {}", std::io::Error::last_os_error());
        }
        f()
    })
    .join()
    .map_err(|_| anyhow::anyhow!("namespace thread panicked"))?
}

/// Pings `dst` from `ns` `count` times (optionally from source address `src`); returns replies.
pub fn ping(ns: &NetNs, src: Option<&str>, dst: &str, count: u32) -> Result<u32> {
    let count = count.to_string();
    let mut args = vec!["-c", &count, "-i", "0.2", "-W", "1", "-n", "-q"];
    if let Some(src) = src {
        args.extend(["-I", src]);
    }
    args.push(dst);
    let out = ns.exec("ping", &args)?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split(',')
        .find_map(|part| part.trim().strip_suffix(" received"))
        .and_then(|n| n.trim().parse().ok())
        .with_context(|| format!("unexpected ping output: {text}"))
}

/// Sends `count` UDP datagrams from `src` (in `from`) to `dst:port` (received in `to`) and
/// returns how many arrived. Bounded: waits at most `wait` after the last send.
pub fn udp_count(
    from: &NetNs,
    src: IpAddr,
    to: &NetNs,
    dst: IpAddr,
    count: u32,
    wait: Duration,
) -> Result<u32> {
    let receiver = in_netns(to, move || {
        let s = UdpSocket::bind(SocketAddr::new(dst, 0)).context("bind receiver")?;
        s.set_read_timeout(Some(Duration::from_millis(50)))?;
        Ok(s)
    })?;
    let target = receiver.local_addr()?;
    let sender =
        in_netns(from, move || UdpSocket::bind(SocketAddr::new(src, 0)).context("bind sender"))?;
    for i in 0..count {
        sender.send_to(&i.to_be_bytes(), target)?;
    }
    let deadline = Instant::now() + wait;
    let mut got = 0;
    let mut buf = [0u8; 64];
    while got < count && Instant::now() < deadline {
        if receiver.recv_from(&mut buf).is_ok() {
            got += 1;
        }
    }
    Ok(got)
}

/// A steady UDP stream between two namespaces, running until stopped (or `limit` elapses).
/// Dropped without [`Stream::stop`] (a failed test), it stops at once.
pub struct Stream {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Option<(std::thread::JoinHandle<u32>, std::thread::JoinHandle<u32>)>,
}

impl Stream {
    /// Sends a datagram from `src` (in `from`) to `dst` (in `to`) every `every`.
    pub fn start(
        from: &NetNs,
        src: IpAddr,
        to: &NetNs,
        dst: IpAddr,
        every: Duration,
        limit: Duration,
    ) -> Result<Self> {
        use std::sync::atomic::{AtomicBool, Ordering};
        let receiver = in_netns(to, move || Ok(UdpSocket::bind(SocketAddr::new(dst, 0))?))?;
        receiver.set_read_timeout(Some(Duration::from_millis(50)))?;
        let target = receiver.local_addr()?;
        let sender = in_netns(from, move || Ok(UdpSocket::bind(SocketAddr::new(src, 0))?))?;
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let end = Instant::now() + limit;
        let s = stop.clone();
        let sender = std::thread::spawn(move || {
            let mut sent = 0u32;
            while !s.load(Ordering::Relaxed) && Instant::now() < end {
                if sender.send_to(&sent.to_be_bytes(), target).is_ok() {
                    sent += 1;
                }
                std::thread::sleep(every);
            }
            sent
        });
        let s = stop.clone();
        let receiver = std::thread::spawn(move || {
            let mut got = 0u32;
            let mut buf = [0u8; 64];
            let mut stopped_at = None;
            loop {
                if receiver.recv_from(&mut buf).is_ok() {
                    got += 1;
                }
                if s.load(Ordering::Relaxed) || Instant::now() > end {
                    // Drain what is still in flight for a moment after the sender stops.
                    let t = *stopped_at.get_or_insert_with(Instant::now);
                    if t.elapsed() > Duration::from_millis(300) {
                        return got;
                    }
                }
            }
        });
        Ok(Self { stop, threads: Some((sender, receiver)) })
    }

    /// Stops the stream; returns (sent, received).
    pub fn stop(mut self) -> (u32, u32) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (sender, receiver) = self.threads.take().expect("running");
        let sent = sender.join().expect("sender thread");
        let got = receiver.join().expect("receiver thread");
        (sent, got)
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}
