//! A filter loaded into the kernel (not attached) for BPF_PROG_TEST_RUN verdict tests.

use std::os::fd::{AsFd, AsRawFd};

use anyhow::Result;
use aya::programs::{TestRun, TestRunOptions};
use filter_common::CNT_COUNT;
use ipnet::IpNet;
use takedown::{
    lists::entry::Direction,
    maps::{
        counters::{self, Totals},
        filter::{Capacities, Filter},
        sync,
    },
    plan::{Meta, Plan},
};

/// XDP verdicts.
pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;
/// tc verdicts of the egress program: drop, and hand on to the next program.
pub const TC_ACT_SHOT: i32 = 2;
pub const TC_ACT_UNSPEC: i32 = -1;

/// Capacities for `plan` with exactly `n` entries in address map `map` (the others as the plan
/// needs): a table filled to its capacity.
pub fn sized(plan: &Plan, map: &str, n: u32) -> Capacities {
    let mut caps = Capacities::for_plan(plan, u32::MAX).expect("capacities");
    let at = filter_common::ADDRESS_MAPS.iter().position(|m| m.name == map).expect("a map");
    caps.tables[at] = n;
    caps
}

/// A loaded, filled filter.
pub struct Loaded {
    pub filter: Filter,
}

impl Loaded {
    /// Loads the program with these entries (`"198.51.100.0/24"`, direction).
    pub fn with(entries: &[(&str, Direction)]) -> Result<Self> {
        let entries = entries.iter().map(|(net, d)| {
            let net: IpNet = net
                .parse()
                .or_else(|_| net.parse::<std::net::IpAddr>().map(IpNet::from))
                .expect("test entry");
            (net, Meta { flags: d.flags(), lists: 1 })
        });
        let plan = Plan::build(entries, &[]);
        Self::with_plan(&plan)
    }

    /// Loads the program filled with `plan`.
    pub fn with_plan(plan: &Plan) -> Result<Self> {
        let mut filter = Filter::load(&Capacities::for_plan(plan, u32::MAX)?)?;
        sync::fill(&mut filter.maps_mut().addr, plan)?;
        Ok(Self { filter })
    }

    /// Runs the program once on `frame` and returns its verdict.
    pub fn verdict(&self, frame: &[u8]) -> u32 {
        let opts = TestRunOptions { data_in: Some(frame), repeat: 1, ..Default::default() };
        self.filter.program().test_run(opts).expect("BPF_PROG_TEST_RUN").return_value
    }

    /// Runs the program `repeat` times on `frame` on every CPU at once (a thread pinned to each,
    /// all started together), as a flood spread over a NIC's queues runs it; returns the CPUs
    /// it ran on.
    pub fn flood_on_every_cpu(&self, frame: &[u8], repeat: u32) -> usize {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let fd = self.filter.program().fd().expect("program fd").as_fd().as_raw_fd();
        let start = std::sync::Barrier::new(cpus);
        std::thread::scope(|s| {
            for cpu in 0..cpus {
                let start = &start;
                s.spawn(move || {
                    crate::test_run::pin_to(cpu).expect("pin to a CPU");
                    start.wait();
                    let (verdict, _) = crate::test_run::run(fd, frame, repeat).expect("test run");
                    assert_eq!(verdict, XDP_DROP, "on CPU {cpu}");
                });
            }
        });
        cpus
    }

    /// Runs the egress (tc) program once on `frame` and returns its verdict.
    pub fn egress_verdict(&mut self, frame: &[u8]) -> i32 {
        let opts = TestRunOptions { data_in: Some(frame), repeat: 1, ..Default::default() };
        let prog = self.filter.egress_program().expect("the egress program loads");
        let r = prog.test_run(opts).expect("BPF_PROG_TEST_RUN");
        r.return_value as i32
    }

    /// Counter totals.
    pub fn counters(&self) -> Totals {
        counters::read(self.filter.maps()).expect("read counters")
    }

    /// Packets per counter slot, in `CNT_*` order.
    pub fn packets(&self) -> [u64; CNT_COUNT as usize] {
        self.counters().0.map(|c| c.packets)
    }
}
