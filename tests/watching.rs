//! Watching the filter, in the kernel: per-entry and per-list counters exact after known
//! traffic, monitor entries that count and pass, the event stream with its rate limit, and
//! per-entry counters carried across list changes, under a flood too (IPv4 and IPv6).

use aya::maps::{MapData, RingBuf};
use filter_common::{
    CNT_DROP_DST, CNT_EVENTS, CNT_MONITORED, CNT_SUPPRESSED, EV_DROPPED, EV_DST, Event, MAP_EVENTS,
    MAP_LIST_COUNTERS, Record,
};
use integration_tests::{
    TempDir, frames, kernel_test,
    loaded::{Loaded, XDP_DROP, XDP_PASS},
};
use takedown::{
    lists::entry::Direction,
    maps::{counters, sync},
    plan::{Meta, Plan},
};
use test_case::test_case;

const INSIDE: [u8; 4] = [192, 0, 2, 10];
const V6_INSIDE: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10];
const V6_LISTED: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0x0b, 0xad, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
const V6_IN_PREFIX: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0x0b, 0xad, 0, 9, 0, 0, 0, 0, 0, 0, 0, 1];

fn meta(dir: Direction, monitor: bool, lists: u64) -> Meta {
    Meta { flags: dir.flags_for(monitor), lists }
}

fn load(entries: &[(&str, Meta)]) -> Loaded {
    let plan = Plan::build(entries.iter().map(|(n, m)| (n.parse().unwrap(), *m)), &[]);
    Loaded::with_plan(&plan).unwrap()
}

fn hits_of(l: &Loaded, net: &str) -> (u64, u64) {
    let all = l.filter.maps().hits().unwrap();
    let e =
        all.iter().find(|h| h.net.to_string() == net).unwrap_or_else(|| panic!("{net} in {all:?}"));
    (e.packets, e.last_hit_ns)
}

#[kernel_test]
fn entry_and_list_counters_are_exact() {
    // 203.0.113.7 is on lists 0 and 1; 198.51.100.0/24 on list 2 (destinations only).
    let l = load(&[
        ("203.0.113.7/32", meta(Direction::Both, false, 0b011)),
        ("198.51.100.0/24", meta(Direction::Dst, false, 0b100)),
        ("203.0.113.9/32", meta(Direction::Both, false, 1 << 5 | 1 << 40 | 1 << 63)),
    ]);
    for _ in 0..2 {
        assert_eq!(l.verdict(&frames::v4(INSIDE, [203, 0, 113, 9])), XDP_DROP);
    }
    for _ in 0..3 {
        assert_eq!(l.verdict(&frames::v4(INSIDE, [203, 0, 113, 7])), XDP_DROP);
    }
    assert_eq!(l.verdict(&frames::v4([203, 0, 113, 7], INSIDE)), XDP_DROP);
    for _ in 0..2 {
        assert_eq!(l.verdict(&frames::v4(INSIDE, [198, 51, 100, 42])), XDP_DROP);
    }
    assert_eq!(l.verdict(&frames::v4(INSIDE, [198, 51, 101, 1])), XDP_PASS, "a miss");
    let (p, t) = hits_of(&l, "203.0.113.7/32");
    assert_eq!(p, 4);
    let now = takedown::maps::monotonic_ns();
    assert!(t > 0 && t <= now && now - t < 5_000_000_000, "last hit time set: {t} (now {now})");
    let (p, _) = hits_of(&l, "198.51.100.0/24");
    assert_eq!(p, 2, "the prefix entry counts its hits");
    let lists = counters::read_lists(l.filter.maps().map(MAP_LIST_COUNTERS).unwrap()).unwrap();
    let of =
        |bit: u32| lists.iter().find(|(b, _, _)| *b == bit).map(|(_, s, d)| (s.packets, d.packets));
    assert_eq!(of(0), Some((1, 3)), "list 0: 1 as source, 3 as destination");
    assert_eq!(of(1), Some((1, 3)), "an entry on two lists counts for each");
    assert_eq!(of(2), Some((0, 2)));
    for bit in [5, 40, 63] {
        assert_eq!(of(bit), Some((0, 2)), "an entry on three lists, one of them the last");
    }
    assert_eq!(lists.len(), 6);
}

/// A flood of one listed address on every CPU at once: each hit counts once, in the entry, its
/// list and the interface's counters (exact, IPv4 and IPv6 alike).
#[kernel_test]
#[test_case("203.0.113.7/32", frames::v4(INSIDE, [203, 0, 113, 7]) ; "an exact IPv4 entry")]
#[test_case("198.51.100.0/24", frames::v4(INSIDE, [198, 51, 100, 42]) ; "an IPv4 prefix")]
#[test_case("2001:db8:bad::7/128", frames::v6(V6_INSIDE, V6_LISTED) ; "an exact IPv6 entry")]
#[test_case("2001:db8:bad::/48", frames::v6(V6_INSIDE, V6_IN_PREFIX) ; "an IPv6 prefix")]
fn a_flood_on_every_cpu_at_once_is_counted_exactly(net: &str, frame: Vec<u8>) {
    const REPEAT: u32 = 300_000;
    let l = load(&[(net, meta(Direction::Both, false, 0b10))]);
    let cpus = l.flood_on_every_cpu(&frame, REPEAT) as u64;
    let sent = cpus * u64::from(REPEAT);
    assert_eq!(hits_of(&l, net).0, sent, "the entry's hits on {cpus} CPUs");
    let lists = counters::read_lists(l.filter.maps().map(MAP_LIST_COUNTERS).unwrap()).unwrap();
    let list = lists.iter().find(|(b, _, _)| *b == 1).map(|(_, s, d)| s.packets + d.packets);
    assert_eq!(list, Some(sent), "its list's");
    assert_eq!(l.packets()[CNT_DROP_DST as usize], sent, "the interface's");
}

#[kernel_test]
fn monitor_entries_count_and_pass_unless_also_enforced() {
    let l = load(&[
        ("203.0.113.7/32", meta(Direction::Both, true, 0b01)),
        ("203.0.113.8/32", meta(Direction::Both, true, 0b01)),
        ("203.0.113.8/32", meta(Direction::Both, false, 0b10)),
    ]);
    assert_eq!(l.verdict(&frames::v4(INSIDE, [203, 0, 113, 7])), XDP_PASS, "monitor only");
    assert_eq!(
        l.verdict(&frames::v4(INSIDE, [203, 0, 113, 8])),
        XDP_DROP,
        "monitor and enforce: enforced"
    );
    let p = l.packets();
    assert_eq!((p[CNT_MONITORED as usize], p[CNT_DROP_DST as usize]), (1, 1));
    assert_eq!(hits_of(&l, "203.0.113.7/32").0, 1, "the monitor entry counts its hit");
}

fn events(l: &mut Loaded) -> Vec<Event> {
    let mut ring: RingBuf<&mut MapData> =
        RingBuf::try_from(l.filter.maps_mut().map_mut(MAP_EVENTS).unwrap()).unwrap();
    let mut out = Vec::new();
    while let Some(item) = ring.next() {
        out.push(Event::read(&item).expect("a whole event"));
    }
    out
}

#[kernel_test]
fn events_name_the_inside_host_and_the_rate_limit_caps_a_flood() {
    let mut l = load(&[("203.0.113.7/32", meta(Direction::Both, false, 0b1))]);
    l.filter.maps_mut().set_event_rate(1000, 5).unwrap();
    assert_eq!(l.verdict(&frames::v4(INSIDE, [203, 0, 113, 7])), XDP_DROP);
    assert_eq!(l.verdict(&frames::v4([203, 0, 113, 7], INSIDE)), XDP_DROP);
    let ev = events(&mut l);
    assert_eq!(ev.len(), 2);
    assert_eq!(&ev[0].inside[..4], &INSIDE, "the inside host contacted the listed address");
    assert_eq!(&ev[0].remote[..4], &[203, 0, 113, 7]);
    assert_eq!((ev[0].family, ev[0].proto, ev[0].remote_port), (4, 17, 53));
    assert_eq!(ev[0].kind, EV_DST | EV_DROPPED);
    assert_eq!(ev[1].kind, EV_DROPPED, "the listed address was the source");
    assert_eq!(&ev[1].inside[..4], &INSIDE);
    assert_eq!(ev[0].lists, 1);
    // A later fragment has no UDP header: no port (its payload's first bytes are not one).
    let later = frames::later_fragment(frames::v4(INSIDE, [203, 0, 113, 7]));
    assert_eq!(l.verdict(&later), XDP_DROP);
    let ev = events(&mut l);
    assert_eq!((ev.len(), ev[0].proto, ev[0].remote_port), (1, 17, 0));
    // A flood of 200,000 hits: at most the burst plus 1,000 a second get through; every other
    // one is counted as suppressed.
    let frame = frames::v4(INSIDE, [203, 0, 113, 7]);
    let opts = aya::programs::TestRunOptions {
        data_in: Some(&frame),
        repeat: 200_000,
        ..Default::default()
    };
    let started = std::time::Instant::now();
    aya::programs::TestRun::test_run(l.filter.program(), opts).unwrap();
    let secs = started.elapsed().as_secs_f64();
    let sent = events(&mut l).len() as u64;
    let p = l.packets();
    let (events_total, suppressed) = (p[CNT_EVENTS as usize], p[CNT_SUPPRESSED as usize]);
    assert_eq!(events_total, 3 + sent);
    assert_eq!(sent + suppressed, 200_000, "every hit is either sent or counted as suppressed");
    assert!(sent as f64 <= 5.0 + 1000.0 * secs + 1.0, "{sent} events in {secs:.3} s");
    assert!(suppressed >= 150_000, "{suppressed}");
}

#[kernel_test]
fn with_events_off_a_flood_sends_none_and_counts_none_as_suppressed() {
    let mut l = load(&[("203.0.113.7/32", meta(Direction::Both, false, 0b1))]);
    l.filter.maps_mut().set_event_rate(0, 5).unwrap();
    flood(&l, &frames::v4(INSIDE, [203, 0, 113, 7]), 10_000);
    assert!(events(&mut l).is_empty(), "no event with the rate at 0");
    let p = l.packets();
    assert_eq!(p[CNT_DROP_DST as usize], 10_000, "every frame is still dropped");
    assert_eq!((p[CNT_EVENTS as usize], p[CNT_SUPPRESSED as usize]), (0, 0));
}

/// Runs `frame` through the program `repeat` times; returns how long it took.
fn flood(l: &Loaded, frame: &[u8], repeat: u32) -> std::time::Duration {
    let opts = aya::programs::TestRunOptions { data_in: Some(frame), repeat, ..Default::default() };
    let started = std::time::Instant::now();
    aya::programs::TestRun::test_run(l.filter.program(), opts).unwrap();
    started.elapsed()
}

#[kernel_test]
fn the_event_budget_refills_at_its_rate() {
    // The budget is per CPU: stay on one.
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET writes inside it; 0 is the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        assert_eq!(libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set), 0);
    }
    let mut l = load(&[("203.0.113.7/32", meta(Direction::Both, false, 0b1))]);
    l.filter.maps_mut().set_event_rate(1000, 1000).unwrap();
    let frame = frames::v4(INSIDE, [203, 0, 113, 7]);
    // Empty the bucket (a full burst of 1,000 and what refills meanwhile), wait, then count
    // what refilled. The bucket's clock runs from the first flood's last packet (between t0
    // and t1) to the second flood's last one (before t3): the bounds hold even when this
    // thread is preempted between the kernel's work and the clock reads.
    let t0 = std::time::Instant::now();
    flood(&l, &frame, 5_000);
    let t1 = std::time::Instant::now();
    let first = events(&mut l).len();
    assert!(first >= 1000, "a full burst first: {first}");
    std::thread::sleep(std::time::Duration::from_millis(100));
    let t2 = std::time::Instant::now();
    flood(&l, &frame, 5_000);
    let t3 = std::time::Instant::now();
    let sent = events(&mut l).len() as f64;
    let (gap, took) = ((t2 - t1).as_secs_f64(), (t3 - t0).as_secs_f64());
    // 1,000 a second, within two ticks of the coarse clock (at most 10 ms each: 20 events).
    let (low, high) = (1000.0 * gap - 20.0, 1000.0 * took + 20.0);
    assert!(sent >= low && sent <= high, "{sent} events: {gap:.3} s gap, {took:.3} s in all");
}

#[kernel_test]
fn hit_counters_survive_a_change_of_lists() {
    let entries = |lists: u64| {
        vec![
            ("203.0.113.7/32", meta(Direction::Both, false, lists)),
            ("198.51.100.0/24", meta(Direction::Both, false, lists)),
        ]
    };
    let plan =
        |lists: u64| Plan::build(entries(lists).iter().map(|(n, m)| (n.parse().unwrap(), *m)), &[]);
    let (before, after) = (plan(0b01), plan(0b11));
    let mut l = Loaded::with_plan(&before).unwrap();
    for _ in 0..3 {
        assert_eq!(l.verdict(&frames::v4(INSIDE, [203, 0, 113, 7])), XDP_DROP);
        assert_eq!(l.verdict(&frames::v4(INSIDE, [198, 51, 100, 9])), XDP_DROP);
    }
    // A refresh puts both entries on a second list: their values change, their counts stay.
    sync::apply(&mut l.filter.maps_mut().addr, &before, &after).unwrap();
    let all = l.filter.maps().hits().unwrap();
    for net in ["203.0.113.7/32", "198.51.100.0/24"] {
        let h = all.iter().find(|h| h.net.to_string() == net).unwrap();
        assert_eq!((h.meta.lists, h.packets), (0b11, 3), "{net}");
        assert!(h.last_hit_ns > 0);
    }
}

#[kernel_test]
#[test_case("203.0.113.7/32", "192.0.2.10" ; "an IPv4 address")]
#[test_case("2001:db8::7/128", "2001:db8:ffff::10" ; "an IPv6 address")]
#[test_case("2001:db8:7::/48", "2001:db8:ffff::10" ; "an IPv6 prefix")]
fn hit_counters_survive_list_changes_under_a_flood(listed: &str, inside: &str) {
    let entries = |lists: u64| [(listed, meta(Direction::Both, false, lists))];
    let plan =
        |lists: u64| Plan::build(entries(lists).iter().map(|(n, m)| (n.parse().unwrap(), *m)), &[]);
    let (a, b) = (plan(0b01), plan(0b11));
    let mut l = Loaded::with_plan(&a).unwrap();
    // Another process floods the program with hits while this one changes the entry's lists.
    let dir = TempDir::new("counters-flood");
    let frame = dir.0.join("frame.bin");
    let target = listed.parse::<ipnet::IpNet>().unwrap().addr().to_string();
    std::fs::write(&frame, frames::ip(inside, &target)).unwrap();
    const FLOOD: u64 = 40_000_000;
    let id = l.filter.program_id().unwrap().to_string();
    let mut flood = std::process::Command::new("bpftool")
        .args(["prog", "run", "id", &id, "data_in", frame.to_str().unwrap()])
        .args(["repeat", &FLOOD.to_string()])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut changes = 0;
    while flood.try_wait().unwrap().is_none() && changes < 100_000 {
        let (from, to) = if changes % 2 == 0 { (&a, &b) } else { (&b, &a) };
        sync::apply(&mut l.filter.maps_mut().addr, from, to).unwrap();
        changes += 1;
    }
    assert!(flood.wait().unwrap().success());
    let all = l.filter.maps().hits().unwrap();
    let h = all.iter().find(|h| h.net.to_string() == listed).unwrap();
    let missed = FLOOD - h.packets;
    eprintln!("{changes} list changes under {FLOOD} hits: the entry counted {}", h.packets);
    assert!(changes >= 10, "the lists changed during the flood: {changes}");
    assert_eq!(l.packets()[CNT_DROP_DST as usize], FLOOD, "the verdict counters miss nothing");
    // A list change rewrites the entry's flags and lists in place, never its counters.
    assert_eq!(missed, 0, "{missed} hits missed");
}
