//! Floods: a small XDP sender run with BPF_PROG_TEST_RUN's live frames as if received on one
//! end of a bed's veth pair (`tdb1`): each frame gets a source address drawn from a table,
//! really leaves by `tdb1` and arrives at `tdb0`, where the filter under test is attached in
//! native mode. The sender runs on CPU 0 and `tdb0`'s NAPI thread on CPU 1: the sender outruns
//! every filter, so the frames `tdb0` took in a second are the filter's rate on one CPU (the
//! rest overflow the veth's ring). The same bed and sender for every filter.

use std::{
    net::{IpAddr, Ipv4Addr},
    os::fd::AsFd,
    path::Path,
    time::Duration,
};

use anyhow::{Context, Result, bail};
use integration_tests::process::takedown_bin;
use td_netns::in_netns;

use crate::{
    peers::Bed,
    programs::{self, Work},
    testrun,
};

/// Frames a flood sends, and how many a batch.
pub const FRAMES: u32 = 4_000_000;
const BATCH: u32 = 64;
/// Floods each filter takes, interleaved (one a filter a round); the median is kept.
pub const ROUNDS: usize = 3;

/// What a flood sends: `frame`, its IPv4 source replaced by one of `sources` each time.
pub struct Frames {
    pub frame: Vec<u8>,
    pub sources: Vec<Ipv4Addr>,
}

/// What a flood measured: the frames the receiver (`tdb0`) took in, and how many a second.
pub struct Flooded {
    pub mpps: f64,
    pub seen: u64,
}

/// Floods `bed` with `frames` from `tdb1`, the sender on CPU 0 and `tdb0`'s NAPI thread (the
/// filter) on CPU 1: the sender outruns any filter, so the rate is the receiver's.
fn flood(bed: &Bed, frames: &Frames) -> Result<Flooded> {
    receiver_on_cpu(bed, 1)?;
    let (frame, sources) = (frames.frame.clone(), frames.sources.clone());
    let before = rx_packets(bed)?;
    let took: Duration = in_netns(&bed.ns, move || {
        pin(0, 0)?;
        let (sender, _table) = programs::sender(&sources)?;
        let ifindex = ifindex(c"tdb1")?;
        testrun::run_live(sender.as_fd(), &frame, ifindex, FRAMES, BATCH)
    })?;
    let seen = rx_packets(bed)? - before;
    Ok(Flooded { mpps: seen as f64 / took.as_secs_f64() / 1e6, seen })
}

/// Gives `tdb0` a NAPI thread of its own (threaded NAPI) and pins it to `cpu`.
fn receiver_on_cpu(bed: &Bed, cpu: usize) -> Result<()> {
    let out = bed.ns.exec("sh", &["-c", "echo 1 > /sys/class/net/tdb0/threaded"])?;
    anyhow::ensure!(out.status.success(), "cannot thread tdb0's NAPI: {out:?}");
    let mut pinned = 0;
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if let (true, Ok(pid)) =
            (comm.starts_with("napi/tdb0-"), entry.file_name().to_string_lossy().parse())
        {
            pin(pid, cpu)?;
            pinned += 1;
        }
    }
    anyhow::ensure!(pinned > 0, "tdb0 has no NAPI thread");
    Ok(())
}

/// Binds thread `pid` (0: the calling one) to `cpu`.
fn pin(pid: libc::pid_t, cpu: usize) -> Result<()> {
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET writes inside it.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(pid, size_of::<libc::cpu_set_t>(), &set)
    };
    anyhow::ensure!(rc == 0, "cannot pin {pid} to CPU {cpu}: {}", std::io::Error::last_os_error());
    Ok(())
}

/// Frames `tdb0` has received (those its XDP program ran on, whatever it decided).
fn rx_packets(bed: &Bed) -> Result<u64> {
    let out = bed.ns.ip(&["-s", "-j", "link", "show", "tdb0"])?;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    json[0]["stats64"]["rx"]["packets"].as_u64().context("no rx packets for tdb0")
}

/// The index of interface `name` in the calling thread's namespace.
fn ifindex(name: &std::ffi::CStr) -> Result<u32> {
    // SAFETY: a NUL-terminated name.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    anyhow::ensure!(index != 0, "no interface {name:?}");
    Ok(index)
}

/// takedown's counters after a flood (from its final line).
#[derive(Debug)]
pub struct Counted {
    pub passed: u64,
    pub dropped_src: u64,
    pub dropped_dst: u64,
}

impl Counted {
    fn parse(line: &str) -> Self {
        let count = |name| integration_tests::process::final_count(line, name).unwrap_or(0);
        Self {
            passed: count("passed"),
            dropped_src: count("dropped_src"),
            dropped_dst: count("dropped_dst"),
        }
    }
}

/// A takedown daemon filtering `list` natively on the bed's `tdb0`; the flood's rate and
/// takedown's counters once it stopped.
pub fn takedown(list: &Path, frames: &Frames) -> Result<(Flooded, Counted)> {
    let bed = Bed::new()?;
    let mut cmd = bed.ns.command(&takedown_bin().display().to_string());
    let list = list.display().to_string();
    cmd.args(["run", "--ephemeral", "-i", "tdb0", "-l", &list, "--mode", "native"]);
    cmd.args(["--block-own", "--interval", "0", "--metrics", "", "--event-rate", "0"]);
    let mut child = integration_tests::process::KillOnDrop(
        cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::null()).spawn()?,
    );
    use std::io::BufRead;
    let out = child.0.stdout.take().context("stdout")?;
    let mut lines = std::io::BufReader::new(out).lines();
    if !lines.by_ref().map_while(|l| l.ok()).any(|l| l.starts_with("filtering")) {
        bail!("takedown did not start filtering");
    }
    let flooded = flood(&bed, frames)?;
    // SAFETY: signals our own child.
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    let last = lines.map_while(|l| l.ok()).find(|l| l.starts_with("final:")).unwrap_or_default();
    Ok((flooded, Counted::parse(&last)))
}

/// A floor: a program that does `work`, then returns `action`, natively on the bed's `tdb0`:
/// the rate.
pub fn floor(action: i32, work: Work, frames: &Frames) -> Result<f64> {
    let bed = Bed::new()?;
    let link = in_netns(&bed.ns, move || {
        let prog = programs::floor(action, work)?;
        testrun::attach_native(prog.as_fd(), ifindex(c"tdb0")?)
    })?;
    let flooded = flood(&bed, frames);
    drop(link);
    Ok(flooded?.mpps)
}

/// xdp-filter (`features`, or all) filtering `ips` natively on the bed's `tdb0`: the rate.
pub fn xdp_filter(
    features: Option<&str>,
    ips: &[IpAddr],
    dir: &Path,
    frames: &Frames,
) -> Result<f64> {
    let bed = Bed::new()?;
    crate::peers::xdp_filter(&bed, features, ips, dir)?;
    Ok(flood(&bed, frames)?.mpps)
}

/// One row of a flood table: its name, and a flood that returns its rate.
pub type Case<'a> = (String, Box<dyn Fn() -> Result<f64> + 'a>);

/// Runs `cases` [`ROUNDS`] times, taking turns, and prints their medians as a table, with the
/// ratio to case `base` (when present) and to the floor (case 0). Returns the medians.
pub fn table(cases: &[Case], base: Option<(usize, &str)>) -> Result<Vec<f64>> {
    let mut rates = vec![Vec::new(); cases.len()];
    for _ in 0..ROUNDS {
        for (rate, (_, case)) in rates.iter_mut().zip(cases) {
            rate.push(case()?);
        }
    }
    let medians: Vec<f64> = rates.iter_mut().map(|r| crate::median(r)).collect();
    let peer = base.map_or(String::new(), |(_, name)| format!(" / {name} |"));
    println!("| filter | Mpps |{peer} / floor |");
    println!("|---|---|{}---|", if base.is_some() { "---|" } else { "" });
    for ((name, _), mpps) in cases.iter().zip(&medians) {
        let ratio = base.map_or(String::new(), |(i, _)| format!(" {:.2}x |", mpps / medians[i]));
        println!("| {name} | {mpps:.2} |{ratio} {:.2}x |", mpps / medians[0]);
    }
    Ok(medians)
}

/// takedown's flood rate on `list`, once its counters show that `check` holds for the frames
/// the receiver took in.
pub fn checked(
    name: &str,
    list: &Path,
    frames: &Frames,
    check: impl Fn(&Counted, u64) -> bool,
) -> Result<f64> {
    let (flooded, counted) = takedown(list, frames)?;
    if !check(&counted, flooded.seen) {
        let seen = flooded.seen;
        bail!("{name}: takedown did not count the flood as expected: {counted:?} of {seen}");
    }
    Ok(flooded.mpps)
}
