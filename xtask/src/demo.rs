//! `cargo xtask demo`: takedown dropping real traffic at a gateway between namespaces.
//!
//! Three namespaces: a "client" (an inside host), a "gateway" that routes, and an "internet"
//! holding an ordinary server and a takedown server. takedown runs on both gateway interfaces
//! with the example list in `examples/`. The demo pings and sends UDP, v4 and v6, to listed and
//! ordinary addresses, from a listed inside source, and from the takedown server towards the
//! client; checks that exactly the listed traffic is dropped; shows which inside hosts tried to
//! reach takedown infrastructure (`takedown hosts`, `takedown top`); prints the counters; and
//! removes everything it created, even when interrupted (Ctrl-C). The filter is pinned into a
//! private bpf filesystem under /tmp, never into /sys/fs/bpf.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Stdio},
    sync::{
        OnceLock,
        atomic::{AtomicI32, Ordering},
        mpsc,
    },
    time::Duration,
};

use anyhow::{Context, Result, bail};
use td_netns::{Addrs, NetNs, Topology, is_root, ping, udp_count};

use crate::{build, setup};

const NAMESPACES: [&str; 3] = ["td-demo-client", "td-demo-gw", "td-demo-inet"];
/// The running takedown's pid, for the Ctrl-C handler (0: none).
static CHILD: AtomicI32 = AtomicI32::new(0);
/// The demo's directory (bpffs mount and state), for the Ctrl-C handler.
static DIR: OnceLock<PathBuf> = OnceLock::new();

/// Unmounts the demo's bpffs (dropping every pin) and removes its directory.
fn remove_dir(dir: &Path) {
    let _ = std::process::Command::new("umount").arg(dir.join("bpf")).output();
    let _ = std::fs::remove_dir_all(dir);
}

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
        for ns in NAMESPACES {
            let _ = std::process::Command::new("ip").args(["netns", "del", ns]).output();
        }
        if let Some(dir) = DIR.get() {
            remove_dir(dir);
        }
        std::process::exit(130);
    })?;
    let dir = std::env::temp_dir().join(format!("takedown-demo-{}", std::process::id()));
    remove_dir(&dir);
    std::fs::create_dir_all(dir.join("bpf"))?;
    setup::run_ok(
        std::process::Command::new("mount").args(["-t", "bpf", "bpf"]).arg(dir.join("bpf")),
    )?;
    let _ = DIR.set(dir.clone());
    let places: Vec<String> = vec![
        "--pin-dir".into(),
        dir.join("bpf/takedown").display().to_string(),
        "--state-dir".into(),
        dir.join("state").display().to_string(),
    ];
    let [c, g, i] = NAMESPACES;
    let topo = Topology::named(c, g, i)?;
    let list = build::root().join("examples/takedown-list.txt");
    let (inside, outside) = (Addrs::GATEWAY_IF, Addrs::OUTSIDE_IF);
    println!("\n== takedown on {g} ({inside} inside, {outside} outside) with {}", list.display());
    let list = list.to_str().unwrap();
    let mut child = topo
        .gateway
        .command(bin.to_str().unwrap())
        .args(["run", "--iface", inside, "--iface", outside, "--list", list, "--interval", "0"])
        .args(&places)
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start takedown")?;
    CHILD.store(child.id() as i32, Ordering::SeqCst);
    let ready = relay_output(&mut child);
    let outcome = ready
        .recv_timeout(Duration::from_secs(30))
        .map_err(|_| anyhow::anyhow!("takedown did not start within 30 s"))
        .and_then(|_| show_traffic(&topo))
        .and_then(|_| show_hosts(&bin, &places));
    println!(
        "\n== stopping takedown (SIGINT): the pinned filter stays; `takedown detach` removes it"
    );
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    child.wait()?;
    CHILD.store(0, Ordering::SeqCst);
    let detach =
        std::process::Command::new(&bin).args(["detach", "--yes"]).args(&places).output()?;
    print!("  [takedown detach] {}", String::from_utf8_lossy(&detach.stdout));
    drop(topo);
    remove_dir(&dir);
    println!("\n== namespaces and the demo's bpffs removed");
    outcome
}

/// Shows the infected-host report and the most-hit entries (the daemon saves its host table
/// every 2 s).
fn show_hosts(bin: &Path, places: &[String]) -> Result<()> {
    std::thread::sleep(Duration::from_millis(2500));
    for (title, args) in [
        (
            "which inside hosts tried to reach takedown infrastructure (takedown hosts)",
            vec!["hosts"],
        ),
        ("the most-hit entries (takedown top)", vec!["top", "--interval", "0.5"]),
    ] {
        println!("\n== {title}");
        let out = std::process::Command::new(bin).args(&args).args(places).output()?;
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            println!("  {line}");
        }
    }
    Ok(())
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

/// One demonstration: what is sent, and whether it should arrive.
struct Case {
    what: String,
    pass: bool,
}

fn case(what: String, pass: bool) -> Case {
    Case { what, pass }
}

fn show_traffic(t: &Topology) -> Result<()> {
    use Addrs as A;
    let mut failures = Vec::new();
    let mut show = |c: Case, got: u32, sent: u32| {
        let verdict = if got == 0 { "DROPPED" } else { "passed" };
        println!("  {:<70} {got:>2}/{sent} arrived: {verdict}", c.what);
        if (c.pass && got != sent) || (!c.pass && got != 0) {
            failures.push(c.what);
        }
    };
    println!("\n== ping from the client (3 each)");
    let pings = [
        (None, A::SERVER_V4, "ordinary server", true),
        (None, A::TAKEDOWN_V4, "listed", false),
        (None, A::SERVER_V6, "ordinary server", true),
        (None, A::TAKEDOWN_V6, "in a listed prefix", false),
        (Some(A::LISTED_SRC_V4), A::GATEWAY_V4, "from the listed inside source", false),
    ];
    for (src, dst, note, pass) in pings {
        let from = src.map(|s| format!(" from {s}")).unwrap_or_default();
        show(case(format!("ping {dst}{from} ({note})"), pass), ping(&t.client, src, dst, 3)?, 3);
    }
    println!("\n== UDP (20 datagrams each)");
    let out = |from: &NetNs, to: &NetNs, src: &str, dst: &str| {
        udp_count(from, A::ip(src), to, A::ip(dst), 20, Duration::from_millis(500))
    };
    let (c, i) = (&t.client, &t.internet);
    let udps = [
        (c, i, A::CLIENT_V4, A::SERVER_V4, "client to ordinary server", true),
        (c, i, A::CLIENT_V4, A::TAKEDOWN_V4, "client to listed server", false),
        (c, i, A::CLIENT_V6, A::SERVER_V6, "client to ordinary server", true),
        (c, i, A::CLIENT_V6, A::TAKEDOWN_V6, "client to listed prefix", false),
        (i, c, A::SERVER_V4, A::CLIENT_V4, "ordinary server to client", true),
        (i, c, A::TAKEDOWN_V4, A::CLIENT_V4, "listed server to client (outside interface)", false),
    ];
    for (from, to, src, dst, note, pass) in udps {
        show(case(format!("UDP {src} -> {dst} ({note})"), pass), out(from, to, src, dst)?, 20);
    }
    if !failures.is_empty() {
        bail!("unexpected results for: {}", failures.join("; "));
    }
    Ok(())
}
