//! `cargo xtask bench`: per-packet cost of the real program under BPF_PROG_TEST_RUN, and the
//! time and memory it takes to load big lists. Prints a report; asserts nothing about speed.

mod synth;

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use aya::programs::{TestRun, TestRunOptions, Xdp};
use filter_common::{ADDRESS_MAPS, FLAG_BOTH};
use integration_tests::frames;
use takedown::{
    lists::{self, ListOptions},
    maps::{
        WriteMode,
        filter::{Capacities, Filter},
        sync,
    },
    plan::{Meta, Plan},
};

const REPEAT: u32 = 1_000_000;
/// The metadata of every benchmark entry: both directions, list 0.
const ONE_LIST: Meta = Meta { flags: FLAG_BOTH, lists: 1 };
const RUNS: usize = 5;

fn main() -> Result<()> {
    if !td_netns_root() {
        bail!("the benchmark loads XDP into the kernel: run it as root");
    }
    println!("# takedown benchmark\n");
    println!(
        "BPF_PROG_TEST_RUN, repeat {REPEAT}, 64-byte UDP frames, median of {RUNS} runs (ns/packet)\n"
    );
    println!("| scenario | v4 hit | v4 miss | v6 hit | v6 miss |");
    println!("|---|---|---|---|---|");
    let mut empty = Filter::load(&Capacities::for_plan(&Plan::default(), u32::MAX)?)?;
    let base = median_ns(empty.baseline()?, &frames::v4(synth::MISS4, synth::MISS4_B))?;
    println!("| bare XDP_PASS (baseline) | {base:.1} | | | |");
    scenario("10k exact v4 + 10k exact v6", &synth::exact(10_000, 10_000, 0, 0))?;
    scenario("1M exact v4 + 1M exact v6", &synth::exact(1_000_000, 1_000_000, 0, 0))?;
    scenario(
        "10k exact + 100k v4 and 100k v6 prefixes (hits in tries)",
        &synth::exact(10_000, 10_000, 100_000, 100_000),
    )?;
    scenario(
        "10k exact v4 + 10k exact v6 + 1k allowlist entries each",
        &synth::with_allow(synth::exact(10_000, 10_000, 0, 0), 1_000),
    )?;
    scenario(
        "every feature: 10k exact + 100k prefixes + 1k allowlist, per family",
        &synth::with_allow(synth::exact(10_000, 10_000, 100_000, 100_000), 1_000),
    )?;
    println!(
        "\nMiss: neither address listed (both exact maps and, when they hold entries, both tries are consulted)."
    );
    println!("Hit: the destination is listed (the source is looked up first and misses).");
    println!("With an allowlist, a hit is checked against it before dropping; a miss never is.\n");

    println!("## Loading\n");
    println!(
        "| list | parse | plan | create maps + load program | fill maps | total | map memory |"
    );
    println!("|---|---|---|---|---|---|---|");
    load("1,000,000 IPv4 addresses", 1_000_000, WriteMode::Batched)?;
    load("1,240,000 IPv4 addresses (ipset: 5.5 s)", 1_240_000, WriteMode::Batched)?;
    load("1,000,000 IPv4 addresses, per-element updates", 1_000_000, WriteMode::PerElement)?;
    refresh(20_000, 200)?;
    Ok(())
}

fn td_netns_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Median per-packet time of `prog` on `frame`.
fn median_ns(prog: &Xdp, frame: &[u8]) -> Result<f64> {
    let mut samples = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let opts = TestRunOptions { data_in: Some(frame), repeat: REPEAT, ..Default::default() };
        samples.push(prog.test_run(opts)?.duration.as_nanos() as f64);
    }
    samples.sort_by(f64::total_cmp);
    Ok(samples[RUNS / 2])
}

fn scenario(name: &str, plan: &Plan) -> Result<()> {
    let mut filter = Filter::load(&Capacities::for_plan(plan, u32::MAX)?)?;
    sync::fill(&mut filter.maps_mut().addr, plan)?;
    let prog = filter.program();
    let hit4 = synth::hit4(plan);
    let hit6 = synth::hit6(plan);
    let cells = [
        median_ns(prog, &frames::v4(synth::MISS4, hit4))?,
        median_ns(prog, &frames::v4(synth::MISS4, synth::MISS4_B))?,
        median_ns(prog, &frames::v6(synth::MISS6, hit6))?,
        median_ns(prog, &frames::v6(synth::MISS6, synth::MISS6_B))?,
    ];
    for (i, frame) in
        [frames::v4(synth::MISS4, hit4), frames::v6(synth::MISS6, hit6)].iter().enumerate()
    {
        let opts = TestRunOptions { data_in: Some(frame), ..Default::default() };
        if prog.test_run(opts)?.return_value != 1 {
            bail!("{name}: the hit frame {i} was not dropped");
        }
    }
    println!("| {name} | {:.1} | {:.1} | {:.1} | {:.1} |", cells[0], cells[1], cells[2], cells[3]);
    Ok(())
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

fn load(name: &str, n: u32, mode: WriteMode) -> Result<()> {
    let text = synth::v4_text(n);
    let t0 = Instant::now();
    let list = lists::parse_text("bench.txt".as_ref(), &text, &ListOptions::default())?;
    let t1 = Instant::now();
    let plan = Plan::build(list.entries.iter().map(|e| (e.net, ONE_LIST)), &[]);
    let t2 = Instant::now();
    let mut filter = Filter::load(&Capacities::for_plan(&plan, u32::MAX)?)?;
    let t3 = Instant::now();
    sync::fill_with(&mut filter.maps_mut().addr, &plan, mode)?;
    let t4 = Instant::now();
    if plan.v4.exact.len() != n as usize {
        bail!("{name}: planned {} entries, expected {n}", plan.v4.exact.len());
    }
    println!(
        "| {name} | {} | {} | {} | {} | **{}** | {:.0} MiB |",
        secs(t1 - t0),
        secs(t2 - t1),
        secs(t3 - t2),
        secs(t4 - t3),
        secs(t4 - t0),
        map_memory(&filter)? as f64 / (1024.0 * 1024.0)
    );
    Ok(())
}

/// Kernel memory of the address maps (memlock).
fn map_memory(filter: &Filter) -> Result<u64> {
    let maps = &filter.maps().addr;
    ADDRESS_MAPS.iter().map(|m| maps.info(m).memory()).sum()
}

/// A refresh of an `n`-entry list of which `churn` entries leave and `churn` new ones arrive:
/// parse the new text, plan, and move the loaded maps to the new plan.
fn refresh(n: u32, churn: u32) -> Result<()> {
    let text = synth::v4_text(n);
    let old = lists::parse_text("old.txt".as_ref(), &text, &ListOptions::default())?;
    let old = Plan::build(old.entries.iter().map(|e| (e.net, ONE_LIST)), &[]);
    let mut filter = Filter::load(&Capacities::for_plan(&old, u32::MAX)?)?;
    sync::fill(&mut filter.maps_mut().addr, &old)?;
    // The new content: the first `churn` addresses gone, `churn` new ones after the last.
    let new_text: String =
        synth::v4_text(n + churn).lines().skip(churn as usize).map(|l| format!("{l}\n")).collect();
    let t0 = Instant::now();
    let list = lists::parse_text("new.txt".as_ref(), &new_text, &ListOptions::default())?;
    let new = Plan::build(list.entries.iter().map(|e| (e.net, ONE_LIST)), &[]);
    let t1 = Instant::now();
    let ch = sync::apply(&mut filter.maps_mut().addr, &old, &new)?;
    let t2 = Instant::now();
    println!(
        "\nRefresh of a {n}-entry list with {:.0}% churn: parse + plan {}, apply {} ({} written, {} deleted), total **{}**",
        100.0 * f64::from(churn) / f64::from(n),
        secs(t1 - t0),
        secs(t2 - t1),
        ch.written,
        ch.deleted,
        secs(t2 - t0)
    );
    Ok(())
}
