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
