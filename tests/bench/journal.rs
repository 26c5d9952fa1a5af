//! The connection journal's cost: per packet with the journal on and off (BPF_PROG_TEST_RUN,
//! the 1.24M-address list and IPv6 prefixes: a UDP datagram of a known flow, a TCP ACK, a hit,
//! over IPv4 and IPv6; and a new TCP connection, whose records are drained between samples),
//! the writer's rate into disk on one core and its bytes a connection on a mix like a
//! gateway's, and the time of `exposed` over 14 days of journal (the release binary) against
//! 1.24M addresses + CIDRs.

use std::{net::IpAddr, os::fd::AsFd, time::Instant};

use anyhow::Result;
use integration_tests::{TempDir, frames::tcp};
use takedown::{
    daemon::journal::{
        block::{self, Key, Seen},
        store::Store,
    },
    daemon::state::StateDir,
    maps::filter::Filter,
    plan::Plan,
};

use crate::{dispatcher, median, real, testrun};

/// Loads of each program in the per-packet comparison: one load of a program costs up to 6%
/// more or less than another load of the same program (where the kernel puts its code and
/// maps; measured: four loads of the same program against a fifth, 0.94x to 1.06x), which
/// hides a goal of a few percent; each figure pools the rounds of every load. (A known UDP
/// flow in 16 loads, the journal off: 35.7 to 38.1 ns; on: 37.8 to 38.7.)
const LOADS: usize = 16;
/// Rounds of the per-packet comparison a load (more in all than elsewhere: the goal is a few
/// percent).
const ROUNDS: usize = 8;

/// The per-packet tables, and the disk's and `exposed`'s when `all`.
pub fn run(all: bool) -> Result<()> {
    per_packet()?;
    if !all {
        return Ok(());
    }
    let dir = TempDir::new("bench-journal");
    disk(&dir)?;
    exposed(&dir)
}

/// Per packet, journal off and on, interleaved.
fn per_packet() -> Result<()> {
    let big = real::ips_big()?;
    let v6 = real::cidrs_v6()?;
    let plan = real::plan(&[big.as_slice(), &v6].concat(), &[]);
    let inside: IpAddr = "10.77.0.2".parse()?;
    let remote = real::uncovered(&plan, "11.7.3.9".parse()?).expect("an unlisted address");
    let (inside6, remote6): (IpAddr, IpAddr) = ("fd00:77::2".parse()?, "2a0f:7::9".parse()?);
    let remote6 = real::uncovered(&plan, remote6).expect("an unlisted IPv6 address");
    let (listed, listed6) = (big[big.len() / 10].addr(), real::inside(&v6, 7));
    let frames = [
        ("UDP, a known flow (miss)", crate::frame(inside, remote), 2),
        ("TCP ACK (miss)", tcp(inside, remote, false), 2),
        ("hit", crate::frame(inside, listed), 1),
        ("IPv6: UDP, a known flow (miss)", crate::frame(inside6, remote6), 2),
        ("IPv6: TCP ACK (miss)", tcp(inside6, remote6, false), 2),
        ("IPv6: hit (a prefix)", crate::frame(inside6, listed6), 1),
    ];
    let mut loaded =
        (0..LOADS).map(|_| crate::loaded(&plan, false, true)).collect::<Result<Vec<_>>>()?;
    let measured = toggled(&mut loaded, &frames)?;
    println!(
        "## Connection journal\n\n### Per packet\n\nBPF_PROG_TEST_RUN, 64-byte frames (74 for IPv6's TCP), {} IPv4 addresses and {} IPv6 prefixes loaded, ns a packet; {LOADS} loads of the program (one load's cost differs from another's of the same program by up to 6%: where the kernel puts its code and maps), each measured with the journal off and on (its flag in the config map, as the loader sets it), {ROUNDS} rounds of {} packets a case, off and on back to back in turns, each timed by its call with the program held in the kernel's XDP dispatcher (the kernel's own figure is whole nanoseconds); the mean of each case's middle half of the rounds of every load.\n",
        big.len(),
        v6.len(),
        testrun::REPEAT
    );
    println!("| frame | journal off | journal on | on / off |\n|---|---|---|---|");
    for ((name, _, _), (a, b)) in frames.iter().zip(measured) {
        println!("| {name} | {a:.2} | {b:.2} | {:.3}x |", b / a);
    }
    let new = new_connection(&mut loaded[0], inside, remote)?;
    println!(
        "| a new TCP connection (SYN, miss; its record drained between samples; medians) | {:.1} | {:.1} | {:.2}x |\n",
        new.0,
        new.1,
        new.1 / new.0
    );
    drop(loaded);
    without_journal(&plan, &frames)
}

/// Each frame on each of `loaded`, with the journal off and on (the same code where the
/// kernel put it, so that only the journal's path differs): the middle means of every load's
/// rounds pooled, (off, on) a frame.
fn toggled(loaded: &mut [Filter], frames: &[(&str, Vec<u8>, u32)]) -> Result<Vec<(f64, f64)>> {
    let progs = loaded.iter().map(|f| Ok(f.program().fd()?.as_fd())).collect::<Result<Vec<_>>>()?;
    let _held = dispatcher::Held::new(&progs)?;
    drop(progs);
    let mut pooled = vec![[Vec::new(), Vec::new()]; frames.len()];
    for round in 0..ROUNDS {
        for filter in loaded.iter_mut() {
            for on in if round % 2 == 0 { [false, true] } else { [true, false] } {
                filter.maps_mut().set_journal(on)?;
                let prog = filter.program().fd()?.as_fd();
                for ((name, frame, verdict), p) in frames.iter().zip(pooled.iter_mut()) {
                    let (got, ns) = testrun::run_wall(prog, frame, testrun::REPEAT)?;
                    anyhow::ensure!(got == *verdict, "{name}: verdict {got}, expected {verdict}");
                    p[usize::from(on)].push(ns);
                }
            }
        }
    }
    let mean = testrun::middle_mean;
    Ok(pooled.iter_mut().map(|[a, b]| (mean(a), mean(b))).collect())
}

/// Each frame on pairs of programs `load` makes, [`LOADS`] pairs, all loaded at once (a
/// program loaded after another was dropped takes its place, and its cost), held in the
/// dispatcher and measured in turns: the figures of every pair's rounds pooled.
fn over_loads(
    mut load: impl FnMut() -> Result<(Filter, Filter)>,
    frames: &[(&str, Vec<u8>, u32)],
) -> Result<Vec<(f64, f64)>> {
    let loaded = (0..LOADS).map(|_| load()).collect::<Result<Vec<_>>>()?;
    let progs = loaded.iter().flat_map(|(a, b)| [a, b]).map(|f| Ok(f.program().fd()?.as_fd()));
    let _held = dispatcher::Held::new(&progs.collect::<Result<Vec<_>>>()?)?;
    let cases: Vec<_> = loaded.iter().flat_map(|(a, b)| pairs(a, b, frames)).collect();
    let samples = testrun::paired_samples(&cases, ROUNDS)?;
    let mut pooled = vec![[Vec::new(), Vec::new()]; frames.len()];
    for (i, [sa, sb]) in samples.into_iter().enumerate() {
        pooled[i % frames.len()][0].extend(sa);
        pooled[i % frames.len()][1].extend(sb);
    }
    let mean = testrun::middle_mean;
    Ok(pooled.iter_mut().map(|[a, b]| (mean(a), mean(b))).collect())
}

/// The program with the journal off against a build without the journal's code (`cargo xtask
/// bench` builds it and names it in TAKEDOWN_BENCH_NO_JOURNAL_OBJ), on the same frames.
fn without_journal(plan: &Plan, frames: &[(&str, Vec<u8>, u32)]) -> Result<()> {
    let Some(path) = std::env::var_os("TAKEDOWN_BENCH_NO_JOURNAL_OBJ") else {
        println!(
            "(no build without the journal's code to compare with: `cargo xtask bench` makes one)\n"
        );
        return Ok(());
    };
    let object = std::fs::read(&path)?;
    let load = |object| crate::loaded_built(object, plan, false, false);
    let measured = over_loads(|| Ok((load(Some(&object))?, load(None)?)), frames)?;
    println!(
        "The journal off against the same program built without the journal's code (filter-ebpf's `no-journal` feature), measured the same way:\n\n| frame | built without | journal off | off / without |\n|---|---|---|---|"
    );
    for ((name, _, _), (a, b)) in frames.iter().zip(measured) {
        println!("| {name} | {a:.2} | {b:.2} | {:.3}x |", b / a);
    }
    println!();
    Ok(())
}

/// Each frame on `a` and on `b`.
fn pairs<'a>(
    a: &'a Filter,
    b: &'a Filter,
    frames: &[(&str, Vec<u8>, u32)],
) -> Vec<[testrun::Case<'a>; 2]> {
    let case = |filter: &'a Filter, f: &(&str, Vec<u8>, u32)| testrun::Case {
        prog: filter.program().fd().expect("a loaded program").as_fd(),
        frame: f.1.clone(),
        verdict: f.2,
    };
    frames.iter().map(|f| [case(a, f), case(b, f)]).collect()
}

/// SYNs on `filter`, the journal off and on, in samples small enough for the ring, drained
/// between them.
fn new_connection(filter: &mut Filter, inside: IpAddr, remote: IpAddr) -> Result<(f64, f64)> {
    let syn = tcp(inside, remote, true);
    let mut ring = filter.maps().journal_ring()?;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..testrun::ROUNDS {
        for (on, samples) in [(false, &mut a), (true, &mut b)] {
            filter.maps_mut().set_journal(on)?;
            samples.push(testrun::run(filter.program().fd()?.as_fd(), &syn, 50_000)?.1);
            while ring.next().is_some() {}
        }
    }
    Ok((median(&mut a), median(&mut b)))
}

/// A gateway's mix: 2,000 inside hosts; 90% of connections to 1,000 popular remotes, the rest
/// anywhere; ports 443 (70%), 80, 53 or any.
fn connection(rng: &mut fastrand::Rng) -> Key {
    let host = rng.u32(0..2000);
    let inside = IpAddr::from([10, 1, (host >> 8) as u8, host as u8]);
    let remote = if rng.u8(0..10) < 9 {
        let r = rng.u32(0..1000);
        IpAddr::from([142, 250, (r >> 8) as u8, r as u8])
    } else {
        IpAddr::from(rng.u32(0x0b00_0000..0xdf00_0000).to_be_bytes())
    };
    let port = match rng.u8(0..10) {
        0..7 => 443,
        7 => 80,
        8 => 53,
        _ => rng.u16(1024..),
    };
    Key { inside, remote, proto: 6, port, inbound: false }
}

/// Appends `n` connections at `rate` a second from `start`, as the writer does: rows of 5 s,
/// a block each. Returns the seconds it took.
fn fill(store: &Store, start: u64, n: u64, rate: u64, rng: &mut fastrand::Rng) -> Result<f64> {
    let began = Instant::now();
    let per_block = (rate * 5).clamp(1, 400_000);
    let mut done = 0;
    while done < n {
        let at = start + done / rate;
        let mut rows: std::collections::HashMap<Key, Seen> = Default::default();
        for _ in 0..per_block.min(n - done) {
            rows.entry(connection(rng)).and_modify(|s| s.count += 1).or_insert(Seen::once(at));
        }
        done += per_block.min(n - done);
        let mut rows: Vec<_> = rows.into_iter().collect();
        store.append(at, &block::encode(&mut rows)?)?;
    }
    Ok(began.elapsed().as_secs_f64())
}

/// The writer's rate into disk and its bytes a connection.
fn disk(dir: &TempDir) -> Result<()> {
    let store = Store::new(dir.0.join("rate"));
    let mut rng = fastrand::Rng::with_seed(27);
    let n = 5_000_000;
    let secs = fill(&store, 1_800_000_000, n, 200_000, &mut rng)?;
    let bytes: u64 = store.files().iter().map(|f| f.bytes).sum();
    println!(
        "### Into disk\n\n{n} new connections at 200,000 a second of journal time (2,000 inside hosts, 90% to 1,000 popular remotes, 70% to port 443), aggregated, encoded and appended as the writer does, on one core: **{:.0} connections a second**, **{:.1} bytes a connection** on disk ({bytes} bytes).\n",
        n as f64 / secs,
        bytes as f64 / n as f64
    );
    Ok(())
}

/// Connections a day in the journal `exposed` reads (the goal's "1M distinct connections a day").
const A_DAY: u64 = 1_000_000;

/// `takedown exposed --since 14d --csv` (the release binary, as an operator runs it) over 14
/// days of journal, against list files: the big list + real CIDRs (with misses), and the big
/// list + every IPv4 and IPv6 country block (covers almost every address: nearly every row is
/// found and written). What it found is counted in its output.
fn exposed(dir: &TempDir) -> Result<()> {
    let state = dir.0.join("state");
    let store = Store::new(takedown::daemon::journal::dir_of(&StateDir::new(&state)));
    let mut rng = fastrand::Rng::with_seed(14);
    let per_hour = A_DAY / 24;
    let now = takedown::daemon::status::now();
    for h in (0..14 * 24).rev() {
        fill(&store, now - (h + 1) * 3600, per_hour, per_hour / 3600 + 1, &mut rng)?;
    }
    let bytes: u64 = store.files().iter().map(|f| f.bytes).sum();
    println!(
        "### `exposed` over 14 days\n\n14 days of {A_DAY} connections a day ({} MB on disk, blocks of 5 s as the writer writes them); `takedown exposed --since 14d --csv --file ADDRESSES --file CIDRS`, the release binary, its output to a file:\n\n| networks looked for | addresses | CIDRs | seconds | peak RSS (MiB) | inside hosts found | contacts found |\n|---|---|---|---|---|---|---|",
        bytes / 1_000_000
    );
    let big = real::ips_big()?;
    let all = [real::cidrs_v4_all()?, real::feed("country-blocks-v6.txt")?].concat();
    for (name, cidrs) in [
        (
            "the big list + real CIDRs (with misses)",
            [real::cidrs_v4()?, real::cidrs_v6()?].concat(),
        ),
        ("the big list + every country block, IPv4 and IPv6 (covers almost every address)", all),
    ] {
        let lists = [("addresses", &big), ("cidrs", &cidrs)].map(|(f, nets)| {
            let path = dir.0.join(format!("{f}.txt"));
            let text: String = nets.iter().map(|n| format!("{n}\n")).collect();
            std::fs::write(&path, text).map(|()| path)
        });
        let mut cmd = std::process::Command::new(integration_tests::process::takedown_bin());
        cmd.args(["exposed", "--since", "14d", "--csv", "--state-dir"]).arg(&state);
        for l in lists {
            cmd.arg("--file").arg(l?);
        }
        let csv = dir.0.join("exposed.csv");
        let (secs, rss) = crate::peers::timed(cmd, std::fs::File::create(&csv)?.into())?;
        let (hosts, contacts) = counted(&csv)?;
        let (n, c) = (big.len(), cidrs.len());
        println!("| {name} | {n} | {c} | {secs:.1} | {rss:.0} | {hosts} | {contacts} |");
    }
    println!();
    Ok(())
}

/// The inside hosts and the contacts of `exposed --csv`'s output.
fn counted(csv: &std::path::Path) -> Result<(usize, usize)> {
    let text = std::io::BufReader::new(std::fs::File::open(csv)?);
    let mut hosts = std::collections::HashSet::new();
    let mut contacts = 0;
    for line in std::io::BufRead::lines(text).skip(1) {
        let line = line?;
        hosts.insert(line.split(',').next().unwrap_or_default().to_string());
        contacts += 1;
    }
    Ok((hosts.len(), contacts))
}
