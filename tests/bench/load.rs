//! Loading and refreshing a big real list: takedown's stages through the library, the whole
//! `takedown run` from start to filtering, and, with `--peers`, `ipset restore` and `nft -f`
//! of the same addresses, measured round-robin in the same run.

use std::{fmt::Write as _, net::IpAddr, path::Path, time::Instant};

use anyhow::Result;
use filter_common::ADDRESS_MAPS;
use integration_tests::TempDir;
use ipnet::IpNet;
use takedown::{
    lists::ListOptions,
    maps::{
        WriteMode,
        filter::{Capacities, Filter},
        sync,
    },
    plan::{
        Plan,
        pipeline::{ListSpec, Pipeline},
    },
};

use crate::{peers, real};

/// Rounds of the load comparison (median kept).
const ROUNDS: usize = 3;

/// Writes `nets` one a line (an address alone, a prefix with its length) to `path`.
pub fn write_list(path: &Path, nets: &[IpNet]) -> Result<()> {
    let mut text = String::with_capacity(nets.len() * 16);
    for n in nets {
        match n.prefix_len() == n.max_prefix_len() {
            true => writeln!(text, "{}", n.addr()),
            false => writeln!(text, "{n}"),
        }
        .expect("string");
    }
    Ok(std::fs::write(path, text)?)
}

fn spec(path: &Path) -> ListSpec {
    ListSpec {
        name: "big".into(),
        origin: path.into(),
        options: ListOptions::default(),
        monitor: false,
        max_bytes: takedown::lists::DEFAULT_MAX_BYTES,
        minisign_key: None,
    }
}

pub fn run(peers: bool) -> Result<()> {
    let dir = TempDir::new("bench-load");
    let big = real::ips_big()?;
    let path = dir.0.join("big.txt");
    write_list(&path, &big)?;
    println!("\n## Loading {} IPv4 addresses\n", big.len());
    stages(&path, WriteMode::Batched)?;
    stages(&path, WriteMode::PerElement)?;
    compare(&path, &big, peers, &dir.0)?;
    refresh(&dir.0, big.len())?;
    unchanged(&path, big.len())?;
    refresh(&dir.0, 20_000)?;
    Ok(())
}

/// takedown's stages through the library.
fn stages(path: &Path, mode: WriteMode) -> Result<()> {
    let pipeline = Pipeline::default();
    let t0 = Instant::now();
    let report = pipeline.list_file(&spec(path), 0);
    let t1 = Instant::now();
    let plan = pipeline.plan([report].iter(), &[], std::iter::empty());
    let t2 = Instant::now();
    let mut filter = Filter::load(&Capacities::for_plan(&plan, u32::MAX)?)?;
    let t3 = Instant::now();
    sync::fill_with(&mut filter.maps_mut().addr, &plan, mode)?;
    let t4 = Instant::now();
    let maps = &filter.maps().addr;
    let memory: u64 = ADDRESS_MAPS.iter().map(|m| maps.info(m).memory()).sum::<Result<u64>>()?;
    let s = |a: Instant, b: Instant| format!("{:.3} s", (b - a).as_secs_f64());
    println!(
        "takedown library, {mode:?} writes: read + parse {}, plan {}, create maps + load program {}, fill {}: total **{}**; address maps {:.0} MiB\n",
        s(t0, t1),
        s(t1, t2),
        s(t2, t3),
        s(t3, t4),
        s(t0, t4),
        memory as f64 / 1048576.0
    );
    Ok(())
}

/// The whole `takedown run` against the peers, round-robin.
fn compare(path: &Path, big: &[IpNet], peers: bool, dir: &Path) -> Result<()> {
    let bed = peers::Bed::new()?;
    let ips: Vec<IpAddr> = big.iter().map(IpNet::addr).collect();
    let mut runs: Vec<(&str, Vec<peers::Load>)> =
        vec![("takedown run (start to filtering)", vec![])];
    if peers {
        runs.extend([("ipset restore (hash:ip)", vec![]), ("nft -f (netdev set)", vec![])]);
    }
    for _ in 0..ROUNDS {
        runs[0].1.push(peers::takedown(&bed, path)?);
        if peers {
            runs[1].1.push(peers::ipset(&bed, &ips, dir)?);
            runs[2].1.push(peers::nft(&bed, &ips, dir)?);
        }
    }
    let rows: Vec<(&str, [f64; 3])> = runs
        .iter()
        .map(|(name, loads)| {
            let col = |f: fn(&peers::Load) -> f64| {
                crate::median(&mut loads.iter().map(f).collect::<Vec<_>>())
            };
            (*name, [col(|l| l.seconds), col(|l| l.peak_rss_mb), col(|l| l.kernel_mb)])
        })
        .collect();
    println!("| tool | wall | peak RSS | kernel memory | ipset's wall / this |");
    println!("|---|---|---|---|---|");
    let ipset = rows.iter().find(|(n, _)| n.starts_with("ipset")).map(|(_, v)| v[0]);
    for (name, [wall, rss, kernel]) in &rows {
        let speedup = ipset.map_or(String::new(), |i| format!("{:.2}x", i / wall));
        println!("| {name} | {wall:.2} s | {rss:.0} MiB | {kernel:.0} MiB | {speedup} |");
    }
    println!(
        "\nMedian of {ROUNDS} rounds. Kernel memory: takedown, the memlock of every map and program it holds; ipset, its \"Size in memory\"; nft, the slab the load added.\n"
    );
    Ok(())
}

/// A refresh whose list did not change: what the daemon does then (read the file, hash its
/// bytes, find the hash of the content in force: nothing is parsed, planned or written).
fn unchanged(path: &Path, n: usize) -> Result<()> {
    let in_force = takedown::lists::content_hash(&takedown::lists::read_list(
        path,
        takedown::lists::DEFAULT_MAX_BYTES,
    )?);
    let t0 = Instant::now();
    let bytes = takedown::lists::read_list(path, takedown::lists::DEFAULT_MAX_BYTES)?;
    let same = !bytes.is_empty() && takedown::lists::content_hash(&bytes) == in_force;
    let took = t0.elapsed().as_secs_f64();
    anyhow::ensure!(same, "the same file hashed differently");
    println!(
        "Refresh of {n} addresses whose list did not change: read + hash, nothing parsed or written: **{took:.3} s**\n"
    );
    Ok(())
}

/// A refresh of the first `n` addresses of [`real::ips`] where the first 1% leave and as many
/// new ones (the next addresses) arrive: re-read and parse, plan, apply. The median of
/// [`ROUNDS`] refreshes (the maps are moved back, untimed, between two).
fn refresh(dir: &Path, n: usize) -> Result<()> {
    let churn = n / 100;
    let all = real::ips(n + churn)?;
    let pipeline = Pipeline::default();
    let (old_path, new_path) = (dir.join("old.txt"), dir.join("new.txt"));
    write_list(&old_path, &all[..n])?;
    write_list(&new_path, &all[churn..])?;
    let plan_of = |p: &Path| -> Plan {
        pipeline.plan([pipeline.list_file(&spec(p), 0)].iter(), &[], std::iter::empty())
    };
    let old = plan_of(&old_path);
    let mut filter = Filter::load(&Capacities::for_plan(&old, u32::MAX)?)?;
    sync::fill(&mut filter.maps_mut().addr, &old)?;
    let mut rounds = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let t0 = Instant::now();
        let new = plan_of(&new_path);
        let t1 = Instant::now();
        let ch = sync::apply(&mut filter.maps_mut().addr, &old, &new)?;
        let t2 = Instant::now();
        rounds.push(((t1 - t0).as_secs_f64(), (t2 - t1).as_secs_f64(), ch));
        sync::apply(&mut filter.maps_mut().addr, &new, &old)?;
    }
    rounds.sort_by(|a, b| (a.0 + a.1).total_cmp(&(b.0 + b.1)));
    let (plan, apply, ch) = rounds[ROUNDS / 2];
    println!(
        "Refresh of {n} addresses with 1% churn (median of {ROUNDS}): read + parse + plan {plan:.3} s, apply {apply:.3} s ({} written, {} deleted): **{:.3} s**\n",
        ch.written,
        ch.deleted,
        plan + apply
    );
    Ok(())
}
