//! Floods: a two-instruction XDP_TX sender run with BPF_PROG_TEST_RUN's live frames as if
//! received on one end of a bed's veth pair (`tdb1`): each frame really leaves by `tdb1` and
//! arrives at `tdb0`, where the filter under test is attached in native mode and drops it
//! (its source is listed). The sender, the veth and the filter run on one CPU, so the rate is
//! the whole path's; the same path for every filter, so the ratios compare the filters.

use std::{net::IpAddr, os::fd::AsFd, path::Path, time::Duration};

use anyhow::{Context, Result, bail};
use integration_tests::process::takedown_bin;
use td_netns::in_netns;

use crate::{peers::Bed, testrun};

/// Frames a flood sends, and how many a batch.
const FRAMES: u32 = 4_000_000;
const BATCH: u32 = 64;

/// Floods `bed` with `frame` from `tdb1`: millions of frames a second.
fn flood(bed: &Bed, frame: &[u8]) -> Result<f64> {
    let frame = frame.to_vec();
    let took: Duration = in_netns(&bed.ns, move || {
        // SAFETY: a zeroed cpu_set_t is valid; CPU_SET writes inside it; 0 is this thread.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(0, &mut set);
            libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set);
        }
        let sender = testrun::tiny_xdp(3)?; // XDP_TX
        // SAFETY: a NUL-terminated name.
        let ifindex = unsafe { libc::if_nametoindex(c"tdb1".as_ptr()) };
        anyhow::ensure!(ifindex != 0, "no tdb1");
        testrun::run_live(sender.as_fd(), &frame, ifindex, FRAMES, BATCH)
    })?;
    Ok(f64::from(FRAMES) / took.as_secs_f64() / 1e6)
}

/// A takedown daemon filtering `list` natively on the bed's `tdb0`; the flood's rate and the
/// packets it dropped (its final counter line).
pub fn takedown(list: &Path, frame: &[u8]) -> Result<(f64, u64)> {
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
    let mpps = flood(&bed, frame)?;
    // SAFETY: signals our own child.
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    let last = lines.map_while(|l| l.ok()).find(|l| l.starts_with("final:")).unwrap_or_default();
    let dropped = last
        .split("dropped_src ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Ok((mpps, dropped))
}

/// The floor: a program that drops every frame, natively on the bed's `tdb0`: the rate.
pub fn floor(frame: &[u8]) -> Result<f64> {
    let bed = Bed::new()?;
    let link = in_netns(&bed.ns, || {
        let drop = testrun::tiny_xdp(1)?; // XDP_DROP
        // SAFETY: a NUL-terminated name.
        let ifindex = unsafe { libc::if_nametoindex(c"tdb0".as_ptr()) };
        anyhow::ensure!(ifindex != 0, "no tdb0");
        testrun::attach_native(drop.as_fd(), ifindex)
    })?;
    let mpps = flood(&bed, frame);
    drop(link);
    mpps
}

/// xdp-filter (`features`, or all) filtering `ips` natively on the bed's `tdb0`: the rate.
pub fn xdp_filter(features: Option<&str>, ips: &[IpAddr], dir: &Path, frame: &[u8]) -> Result<f64> {
    let bed = Bed::new()?;
    crate::peers::xdp_filter(&bed, features, ips, dir)?;
    flood(&bed, frame)
}

/// Floods each filter takes, interleaved (one a filter a round); the median is kept.
const ROUNDS: usize = 3;

/// Prints the flood table: the floor, takedown on the 10k list and on the big one, xdp-filter
/// with `peers`; each the median of [`ROUNDS`] floods, the filters taking turns.
pub fn run(peers: bool) -> Result<()> {
    let dir = integration_tests::TempDir::new("bench-flood");
    let (small, big) = (crate::real::ips_10k()?, crate::real::ips_big()?);
    let small_list = dir.0.join("small.txt");
    let big_list = dir.0.join("big.txt");
    crate::load::write_list(&small_list, &small)?;
    crate::load::write_list(&big_list, &big)?;
    let ips: Vec<IpAddr> = small.iter().map(|n| n.addr()).collect();
    let frame = crate::frame(ips[ips.len() / 2], "192.0.2.77".parse()?);
    let (frame, dir, small, big) = (&frame[..], &dir.0, &small_list, &big_list);
    println!("\n## Flood (veth, XDP live frames)\n");
    println!(
        "{FRAMES} 64-byte frames from a listed source, sent by an XDP_TX program with live frames into a veth pair; the filter on the other end in native mode drops them. Millions of frames a second through the whole path (one CPU); the median of {ROUNDS} floods a filter, the filters taking turns.\n"
    );
    type Case<'a> = (&'static str, Box<dyn Fn() -> Result<f64> + 'a>);
    let mut cases: Vec<Case> =
        vec![("a program that drops everything (floor)", Box::new(|| floor(frame)))];
    if peers {
        cases.push(("xdp-filter, 10k IPs", Box::new(|| xdp_filter(None, &ips, dir, frame))));
        let ipv4 = || xdp_filter(Some("ipv4"), &ips, dir, frame);
        cases.push(("xdp-filter -f ipv4, 10k IPs", Box::new(ipv4)));
    }
    for (name, list) in [("takedown, 10k IPs", small), ("takedown, 1.24M IPs", big)] {
        cases.push((name, Box::new(move || dropping(name, list, frame))));
    }
    let mut rates = vec![Vec::new(); cases.len()];
    for _ in 0..ROUNDS {
        for (rate, (_, case)) in rates.iter_mut().zip(&cases) {
            rate.push(case()?);
        }
    }
    let medians: Vec<f64> = rates.iter_mut().map(|r| crate::median(r)).collect();
    let (floor, base) = (medians[0], medians.get(1).copied().filter(|_| peers));
    println!("| filter | Mpps | / xdp-filter | / floor |\n|---|---|---|---|");
    for ((name, _), mpps) in cases.iter().zip(medians) {
        let ratio = base.map_or(String::new(), |b| format!("{:.2}x", mpps / b));
        println!("| {name} | {mpps:.2} | {ratio} | {:.2}x |", mpps / floor);
    }
    Ok(())
}

/// takedown's flood rate on `list`, once its counters show that it dropped the flood.
fn dropping(name: &str, list: &Path, frame: &[u8]) -> Result<f64> {
    let (mpps, dropped) = takedown(list, frame)?;
    if dropped < u64::from(FRAMES) * 9 / 10 {
        bail!("{name}: the flood's frames were not dropped by takedown ({dropped} of {FRAMES})");
    }
    Ok(mpps)
}
