//! `cargo xtask demo`: takedown dropping real traffic between two network namespaces.
//!
//! A "client" namespace (an inside host) and a "gateway" namespace are joined by a veth pair;
//! takedown runs on the gateway's veth with the example list in `examples/`. The demo pings
//! and sends UDP to a listed and to an ordinary address, v4 and v6, and from a listed source,
//! checks that exactly the listed traffic is dropped, prints the counters, and removes
//! everything it created, even when interrupted (Ctrl-C).

use std::{
    io::{BufRead, BufReader},
    process::{Child, Stdio},
    sync::{
        atomic::{AtomicI32, Ordering},
        mpsc,
    },
    time::Duration,
};

use anyhow::{Context, Result, bail};
use td_netns::{Addrs, Topology, is_root, ping, udp_count};

use crate::{build, setup};

const CLIENT_NS: &str = "td-demo-client";
const GATEWAY_NS: &str = "td-demo-gw";
/// The running takedown's pid, for the Ctrl-C handler (0: none).
static CHILD: AtomicI32 = AtomicI32::new(0);

pub fn run() -> Result<()> {
    if !is_root() {
        bail!("the demo creates network namespaces and loads XDP: run it as root");
    }
    setup::ensure()?;
    let bin = build::release()?;
    ctrlc::set_handler(|| {
        eprintln!("\ndemo: interrupted, stopping takedown and removing the namespaces");
        let pid = CHILD.load(Ordering::SeqCst);
        if pid > 0 {
            // SAFETY: signalling our own child; waitpid reaps it (bounded by its own exit).
            unsafe {
                libc::kill(pid, libc::SIGINT);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
        for ns in [CLIENT_NS, GATEWAY_NS] {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", ns])
                .output();
        }
        std::process::exit(130);
    })?;
    let topo = Topology::named(CLIENT_NS, GATEWAY_NS)?;
    let list = build::root().join("examples/takedown-list.txt");
    println!(
        "\n== takedown on {GATEWAY_NS}/{} with {}",
        Addrs::GATEWAY_IF,
        list.display()
    );
    let mut child = topo
        .gateway
        .command(bin.to_str().unwrap())
        .args([
            "run",
            "--iface",
            Addrs::GATEWAY_IF,
            "--list",
            list.to_str().unwrap(),
            "--interval",
            "0",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start takedown")?;
    CHILD.store(child.id() as i32, Ordering::SeqCst);
    let ready = relay_output(&mut child);
    let outcome = ready
        .recv_timeout(Duration::from_secs(30))
        .map_err(|_| anyhow::anyhow!("takedown did not start within 30 s"))
        .and_then(|_| show_traffic(&topo));
    // SAFETY: kill with a pid of our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    child.wait()?;
    CHILD.store(0, Ordering::SeqCst);
    drop(topo);
    println!("\n== namespaces removed");
    outcome
}

/// Prints takedown's output, prefixed; the receiver gets a message once it is filtering.
fn relay_output(child: &mut Child) -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("  [takedown] {line}");
            if line.starts_with("filtering") {
                let _ = tx.send(());
            }
        }
    });
    rx
}

fn show_traffic(topo: &Topology) -> Result<()> {
    let c = &topo.client;
    let mut failures = Vec::new();
    let mut check = |what: &str, got: u32, sent: u32, expect_pass: bool| {
        let verdict = if got == 0 { "DROPPED" } else { "passed" };
        println!("  {what:<58} {got}/{sent} arrived: {verdict}");
        if expect_pass != (got == sent) || (!expect_pass && got != 0) {
            failures.push(what.to_string());
        }
    };
    println!("\n== ping from the client (3 each)");
    let p = |src, dst| ping(c, src, dst, 3);
    check(
        &format!("ping {} (ordinary server)", Addrs::SERVER_V4),
        p(None, Addrs::SERVER_V4)?,
        3,
        true,
    );
    check(
        &format!("ping {} (listed)", Addrs::TAKEDOWN_V4),
        p(None, Addrs::TAKEDOWN_V4)?,
        3,
        false,
    );
    check(
        &format!("ping {} (ordinary server)", Addrs::SERVER_V6),
        p(None, Addrs::SERVER_V6)?,
        3,
        true,
    );
    check(
        &format!("ping {} (listed prefix)", Addrs::TAKEDOWN_V6),
        p(None, Addrs::TAKEDOWN_V6)?,
        3,
        false,
    );
    check(
        &format!(
            "ping {} from {} (listed source)",
            Addrs::GATEWAY_V4,
            Addrs::LISTED_SRC_V4
        ),
        p(Some(Addrs::LISTED_SRC_V4), Addrs::GATEWAY_V4)?,
        3,
        false,
    );
    println!("\n== UDP from the client (20 datagrams each)");
    let udp = |src: &str, dst: &str| {
        udp_count(
            c,
            Addrs::ip(src),
            &topo.gateway,
            Addrs::ip(dst),
            20,
            Duration::from_millis(500),
        )
    };
    check(
        &format!("UDP to {}", Addrs::SERVER_V4),
        udp(Addrs::CLIENT_V4, Addrs::SERVER_V4)?,
        20,
        true,
    );
    check(
        &format!("UDP to {} (listed)", Addrs::TAKEDOWN_V4),
        udp(Addrs::CLIENT_V4, Addrs::TAKEDOWN_V4)?,
        20,
        false,
    );
    check(
        &format!("UDP to {}", Addrs::SERVER_V6),
        udp(Addrs::CLIENT_V6, Addrs::SERVER_V6)?,
        20,
        true,
    );
    check(
        &format!("UDP to {} (listed prefix)", Addrs::TAKEDOWN_V6),
        udp(Addrs::CLIENT_V6, Addrs::TAKEDOWN_V6)?,
        20,
        false,
    );
    println!("\n== stopping takedown (SIGINT): it prints its counters and detaches");
    if !failures.is_empty() {
        bail!("unexpected results for: {}", failures.join("; "));
    }
    Ok(())
}
