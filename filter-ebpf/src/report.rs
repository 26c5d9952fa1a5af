//! The hit path: the matched entry's packet count (shared, one atomic add) and last-hit stamp,
//! its lists' counters (per CPU), the per-interface verdict counters, and rate-limited events
//! to user space.

use core::intrinsics::{AtomicOrdering, atomic_xadd};

use aya_ebpf::helpers::bpf_ktime_get_coarse_ns;
use filter_common::{
    CFG_EVENT_BURST, CFG_EVENT_INTERVAL, CNT_DROP_DST, CNT_DROP_SRC, CNT_EVENTS, CNT_SUPPRESSED,
    EV_DROPPED, EV_DST, EntryValue, Event, MAX_LISTS, counter_index, list_counter_index,
};

use crate::{
    Hit, TD_COUNTERS, TD_EVENTS, TD_LIST_COUNTERS, TD_RATE, config,
    lookup::Family,
    parse::{self, Frame, Packet},
};

/// Adds a packet of `len` bytes to counter `cnt` of interface slot `slot`.
#[inline(always)]
pub fn count(slot: u32, cnt: u32, len: u64) {
    if let Some(c) = TD_COUNTERS.get_ptr_mut(counter_index(slot, cnt)) {
        // SAFETY: per-CPU slot; no other context writes it concurrently.
        unsafe {
            (*c).packets += 1;
            (*c).bytes += len;
        }
    }
}

/// Records a hit: entry counters, list counters, and an event if the rate allows.
#[inline(always)]
pub fn hit<F: Family, C: Frame>(ctx: &C, h: &Hit, cnt: u32, len: u64, p: &Packet<F::Addr>) {
    // The coarse clock (a tick's resolution) is enough for last-hit times and the event budget,
    // and much cheaper than bpf_ktime_get_ns.
    // SAFETY: a helper without arguments or memory effects.
    let now = unsafe { bpf_ktime_get_coarse_ns() };
    let lists = touch(h, now);
    count_lists(lists, h.as_src, len);
    let interval = config(CFG_EVENT_INTERVAL) as u64;
    if interval == 0 {
        return; // events off: none to send, none suppressed
    }
    if !take_token(now, interval) {
        bump(CNT_SUPPRESSED);
        return;
    }
    // Only now, for an event: the addresses in 16 bytes and the ports.
    let (src, dst) = (F::wide(&p.src), F::wide(&p.dst));
    let (sport, dport) = parse::ports(ctx, p.proto, p.l4);
    let (inside, remote, remote_port) =
        if h.as_src { (dst, src, sport) } else { (src, dst, dport) };
    let (proto, ifindex) = (p.proto, ctx.ifindex());
    let Some(mut slot) = TD_EVENTS.reserve::<Event>(0) else {
        bump(CNT_SUPPRESSED);
        return;
    };
    let dropped = cnt == CNT_DROP_SRC || cnt == CNT_DROP_DST;
    slot.write(Event {
        ts_ns: now,
        lists,
        inside,
        remote,
        ifindex,
        remote_port,
        proto,
        family: F::VERSION,
        kind: if h.as_src { 0 } else { EV_DST } | if dropped { EV_DROPPED } else { 0 },
        pad: [0; 7],
    });
    slot.submit(0);
    bump(CNT_EVENTS);
}

/// Counts a hit on the matched entry at time `now` and returns its lists.
#[inline(always)]
fn touch(h: &Hit, now: u64) -> u64 {
    let stamp = EntryValue::last_hit_of(now);
    // SAFETY: `h.entry` points at a writable map value a lookup returned, valid for this run;
    // its packet count is only added to atomically. The last-hit stamp is written only when
    // it changes: most packets of a flood write nothing but the count.
    unsafe {
        let e = h.entry.as_ptr();
        atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(&raw mut (*e).packets, 1);
        if (*e).last_hit != stamp {
            (*e).last_hit = stamp;
        }
        (*e).lists
    }
}

/// Adds a packet of `len` bytes to the (per-CPU) counters of every list in `lists`, matched
/// as source or destination.
#[inline(always)]
fn count_lists(lists: u64, as_src: bool, len: u64) {
    let mut rest = lists;
    for _ in 0..MAX_LISTS {
        if rest == 0 {
            break;
        }
        let bit = rest.trailing_zeros();
        rest &= rest - 1;
        if let Some(c) = TD_LIST_COUNTERS.get_ptr_mut(list_counter_index(bit, !as_src)) {
            // SAFETY: per-CPU slot.
            unsafe {
                (*c).packets += 1;
                (*c).bytes += len;
            }
        }
    }
}

/// Counts one event (sent or suppressed) in interface slot 0's counters.
#[inline(always)]
fn bump(cnt: u32) {
    count(0, cnt, 0);
}

/// True when this CPU may send an event now: at most one an `interval` (ns, not 0), in bursts of up to
/// `CFG_EVENT_BURST` (a virtual schedule: compares and adds only, no division).
#[inline(always)]
fn take_token(now: u64, interval: u64) -> bool {
    let window = config(CFG_EVENT_BURST).max(1) as u64 * interval;
    let Some(b) = TD_RATE.get_ptr_mut(0) else { return false };
    // SAFETY: per-CPU slot; no other context writes it concurrently.
    unsafe {
        let next = (*b).next_ns.max(now);
        if next + interval - now > window {
            return false;
        }
        (*b).next_ns = next + interval;
    }
    true
}
