//! The peers, run in the same benchmark as takedown, each in a network namespace of its own
//! with a veth pair (nothing touches the machine's own interfaces): xdp-filter (xdp-tools) for
//! per-packet costs, `ipset restore` and `nft -f` for loading a big list. And takedown's own
//! load, measured the same way: wall time to filtering, peak RSS, kernel memory.

use std::{
    fmt::Write as _,
    io::{BufRead, BufReader},
    net::IpAddr,
    os::fd::OwnedFd,
    path::Path,
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{Context, Result, bail};
use integration_tests::process::takedown_bin;
use td_netns::NetNs;

use crate::testrun::prog_by_id;

/// A namespace with a veth pair `tdb0`/`tdb1`, both up.
pub struct Bed {
    pub ns: NetNs,
}

impl Bed {
    pub fn new() -> Result<Self> {
        let ns = NetNs::new("tdb")?;
        ns.ip(&["link", "add", "tdb0", "type", "veth", "peer", "name", "tdb1"])?;
        ns.ip(&["link", "set", "tdb0", "up"])?;
        ns.ip(&["link", "set", "tdb1", "up"])?;
        Ok(Self { ns })
    }

    /// The id of the XDP program on `tdb0`.
    fn prog_id(&self) -> Result<u32> {
        let out = self.ns.ip(&["-d", "link", "show", "tdb0"])?;
        let text = String::from_utf8_lossy(&out.stdout);
        let rest = text.split("prog/xdp id ").nth(1).context("no XDP program on tdb0")?;
        Ok(rest.split_whitespace().next().context("no id")?.parse()?)
    }

    /// Runs `script` with sh in the namespace, with a bpffs of its own at /sys/fs/bpf.
    fn sh(&self, script: &str) -> Result<String> {
        let full = format!("mount -t bpf bpf /sys/fs/bpf && {script}");
        let out = self.ns.exec("sh", &["-c", &full])?;
        if !out.status.success() {
            bail!("{script:.80}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// xdp-filter loaded on the bed's `tdb0` (with `-f features`, or all features), filtering
/// `ips` as source and destination; returns its program.
pub fn xdp_filter(
    bed: &Bed,
    features: Option<&str>,
    ips: &[IpAddr],
    dir: &Path,
) -> Result<OwnedFd> {
    let list = dir.join("xdp-filter-ips.txt");
    let mut text = String::new();
    ips.iter().for_each(|a| writeln!(text, "{a}").expect("string"));
    std::fs::write(&list, text)?;
    // A killed xdp-filter leaves its lock behind.
    let _ = std::fs::remove_file("/run/xdp-filter.lck");
    let features = features.map_or(String::new(), |f| format!("-f {f}"));
    bed.sh(&format!(
        "xdp-filter load {features} tdb0 && while read a; do xdp-filter ip -m src,dst $a || exit 1; done < {}",
        list.display()
    ))?;
    prog_by_id(bed.prog_id()?)
}

/// What loading a list cost.
pub struct Load {
    pub seconds: f64,
    pub peak_rss_mb: f64,
    pub kernel_mb: f64,
}

/// Runs `cmd` to completion, its output to `out`: (seconds, peak RSS in MiB). The peak is GNU
/// time's report of the command's own (`%M`): the rusage of a child of this process would count
/// this process's RSS (hundreds of MiB of lists) from before the child's exec.
pub fn timed(cmd: Command, out: Stdio) -> Result<(f64, f64)> {
    let report = std::env::temp_dir().join(format!("takedown-bench-rss-{}", std::process::id()));
    let mut wrapped = Command::new("/usr/bin/time");
    wrapped.args(["-f", "%M", "-o"]).arg(&report).arg(cmd.get_program()).args(cmd.get_args());
    if let Some(dir) = cmd.get_current_dir() {
        wrapped.current_dir(dir);
    }
    for (key, value) in cmd.get_envs() {
        match value {
            Some(v) => wrapped.env(key, v),
            None => wrapped.env_remove(key),
        };
    }
    let started = Instant::now();
    let done = wrapped.stdout(out).stderr(Stdio::piped()).spawn()?.wait_with_output()?;
    let seconds = started.elapsed().as_secs_f64();
    if !done.status.success() {
        bail!("{cmd:?} failed ({}): {}", done.status, String::from_utf8_lossy(&done.stderr));
    }
    let kib: f64 = std::fs::read_to_string(&report)?.lines().last().unwrap_or("").trim().parse()?;
    let _ = std::fs::remove_file(&report);
    Ok((seconds, kib / 1024.0))
}

/// `ipset restore` of a hash:ip set holding `ips`.
pub fn ipset(bed: &Bed, ips: &[IpAddr], dir: &Path) -> Result<Load> {
    let file = dir.join("ipset.restore");
    let mut text =
        format!("create tdbench hash:ip family inet hashsize 1048576 maxelem {}\n", ips.len() * 2);
    ips.iter().for_each(|a| writeln!(text, "add tdbench {a}").expect("string"));
    std::fs::write(&file, text)?;
    let mut cmd = bed.ns.command("ipset");
    cmd.args(["restore", "-file", &file.display().to_string()]);
    let (seconds, peak_rss_mb) = timed(cmd, Stdio::null())?;
    let out = bed.ns.exec("ipset", &["list", "tdbench", "-t"])?;
    let text = String::from_utf8_lossy(&out.stdout);
    let bytes: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("Size in memory: "))
        .and_then(|v| v.trim().parse().ok())
        .context("ipset did not tell its memory")?;
    bed.ns.exec("ipset", &["destroy", "tdbench"])?;
    Ok(Load { seconds, peak_rss_mb, kernel_mb: bytes / 1048576.0 })
}

/// Kernel slab memory, in MiB (/proc/meminfo).
fn slab_mb() -> Result<f64> {
    let info = std::fs::read_to_string("/proc/meminfo")?;
    let kb: f64 = info
        .lines()
        .find_map(|l| l.strip_prefix("Slab:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no Slab in /proc/meminfo")?;
    Ok(kb / 1024.0)
}

/// `nft -f` of a netdev table with a set holding `ips` (kernel memory: the slab it added).
pub fn nft(bed: &Bed, ips: &[IpAddr], dir: &Path) -> Result<Load> {
    let file = dir.join("nft.rules");
    let mut text = format!(
        "add table netdev tdbench\nadd set netdev tdbench s {{ type ipv4_addr; size {}; }}\n",
        ips.len() * 2
    );
    for chunk in ips.chunks(10_000) {
        let elems: Vec<String> = chunk.iter().map(IpAddr::to_string).collect();
        writeln!(text, "add element netdev tdbench s {{ {} }}", elems.join(", ")).expect("string");
    }
    std::fs::write(&file, text)?;
    let before = slab_mb()?;
    let mut cmd = bed.ns.command("nft");
    cmd.args(["-f", &file.display().to_string()]);
    let (seconds, peak_rss_mb) = timed(cmd, Stdio::null())?;
    let kernel_mb = slab_mb()? - before;
    bed.ns.exec("nft", &["delete", "table", "netdev", "tdbench"])?;
    Ok(Load { seconds, peak_rss_mb, kernel_mb })
}

/// `takedown run` of `list` on the bed's `tdb0`, from start to its "filtering" line; stopped
/// after. Kernel memory: the memlock of the maps it holds.
pub fn takedown(bed: &Bed, list: &Path) -> Result<Load> {
    let mut cmd = bed.ns.command(&takedown_bin().display().to_string());
    let list = list.display().to_string();
    cmd.args(["run", "--ephemeral", "-i", "tdb0", "-l", &list, "--block-own", "--interval", "0"]);
    cmd.args(["--metrics", ""]);
    let started = Instant::now();
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn()?;
    let pid = child.id();
    let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
    let filtering = lines.by_ref().map_while(|l| l.ok()).any(|l| l.starts_with("filtering"));
    let seconds = started.elapsed().as_secs_f64();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let hwm_kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    let kernel = memlock(pid);
    // SAFETY: signals our own child.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let _ = child.wait();
    if !filtering {
        bail!("takedown did not start filtering");
    }
    Ok(Load { seconds, peak_rss_mb: hwm_kb / 1024.0, kernel_mb: kernel as f64 / 1048576.0 })
}

/// The memlock of every BPF object process `pid` holds.
fn memlock(pid: u32) -> u64 {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else { return 0 };
    let memlock = |info: String| -> u64 {
        let line = info.lines().find_map(|l| l.strip_prefix("memlock:").map(str::trim));
        line.and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    fds.flatten().filter_map(|f| std::fs::read_to_string(f.path()).ok()).map(memlock).sum()
}
