//! Every CPU at once: each case run on one CPU, then on every CPU at the same moment (a thread
//! pinned to each, started together), as a flood spread over a NIC's receive queues runs the
//! program. A write that two CPUs share per packet shows here and nowhere else.

use std::sync::Barrier;

use anyhow::Result;

use crate::testrun::{self, Case, REPEAT, ROUNDS};

/// (one CPU, every CPU at once: the mean of the CPUs) ns a packet, the mean of the middle half
/// of rounds, for every case.
pub fn measure(cases: &[Case<'_>]) -> Result<Vec<(f64, f64)>> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut one = vec![Vec::with_capacity(ROUNDS); cases.len()];
    let mut all = vec![Vec::with_capacity(ROUNDS); cases.len()];
    for _ in 0..ROUNDS {
        for (i, c) in cases.iter().enumerate() {
            one[i].push(on(&[cpus - 1], c, REPEAT)?);
            all[i].push(on(&(0..cpus).collect::<Vec<_>>(), c, REPEAT)?);
        }
    }
    // The kernel gives whole nanoseconds: the mean of the middle half of rounds tells a
    // fraction of one apart, where a median could not.
    let m = |s: &mut Vec<f64>| testrun::middle_mean(s);
    Ok(one.iter_mut().zip(all.iter_mut()).map(|(o, a)| (m(o), m(a))).collect())
}

/// The mean ns a packet of case `c` run `repeat` times on each of `cpus` at once.
pub fn on(cpus: &[usize], c: &Case<'_>, repeat: u32) -> Result<f64> {
    let start = Barrier::new(cpus.len());
    let times: Vec<Result<f64>> = std::thread::scope(|s| {
        let runs: Vec<_> = cpus
            .iter()
            .map(|&cpu| {
                let start = &start;
                s.spawn(move || {
                    integration_tests::test_run::pin_to(cpu)
                        .map_err(|e| anyhow::anyhow!("cannot pin to CPU {cpu}: {e}"))?;
                    start.wait();
                    let (verdict, ns) = testrun::run(c.prog, &c.frame, repeat)?;
                    anyhow::ensure!(verdict == c.verdict, "verdict {verdict} on CPU {cpu}");
                    Ok(ns)
                })
            })
            .collect();
        runs.into_iter().map(|r| r.join().expect("a measuring thread")).collect()
    });
    let times = times.into_iter().collect::<Result<Vec<f64>>>()?;
    Ok(times.iter().sum::<f64>() / times.len() as f64)
}

/// Prints the table: each case on one CPU and on every CPU at once, with the ratio between the
/// two and to xdp-filter's hit on every CPU at once.
pub fn report(rows: &[(String, &str)], ns: &[(f64, f64)]) {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "\n## Every CPU at once\n\nThe same frames, BPF_PROG_TEST_RUN on one CPU, then on all {cpus} CPUs at the same moment (a thread pinned to each): a flood from one address spread over a NIC's queues. ns a packet (every CPU: the mean of the CPUs), the mean of the middle half of {ROUNDS} rounds of {REPEAT} packets.\n"
    );
    let peer = rows.iter().zip(ns).find(|((n, c), _)| n == "xdp-filter, 10k IPs" && *c == "hit");
    let peer = peer.map(|(_, (_, all))| *all);
    println!(
        "| program and lists | frame | one CPU | every CPU | every / one | every / xdp-filter hit every CPU |"
    );
    println!("|---|---|---|---|---|---|");
    for ((name, col), (one, all)) in rows.iter().zip(ns) {
        let vs = match (peer, col.contains("hit")) {
            (Some(p), true) => format!("{:.2}x", all / p),
            _ => String::new(),
        };
        println!("| {name} | {col} | {one:.1} | {all:.1} | {:.2}x | {vs} |", all / one);
    }
}
