//! The hit path: the matched entry's packet count (in this CPU's hit slot, see filter-common's
//! `hits`: no cache line that another CPU writes) and last-hit stamp, its lists' counters (per
//! CPU), the per-interface verdict counters (per CPU), and rate-limited events to user space.

use core::intrinsics::{AtomicOrdering, atomic_xadd};

use aya_ebpf::{
    cty::c_void,
    helpers::{bpf_jiffies64, bpf_ktime_get_coarse_ns, bpf_loop},
};
use filter_common::{
    AT_V4_EXACT, AT_V4_PREFIX, AT_V6_EXACT, AT_V6_PREFIX, CNT_DROP_DST, CNT_DROP_SRC, CNT_EVENTS,
    EV_DROPPED, EV_DST, EntryValue, Event, HIT_SLOTS, HitSlot, LAST_HIT_SHIFT, RateState,
    counter_index, entry_of, hit_slot, list_counter_index,
};

use crate::{
    Hit, TD_COUNTERS, TD_EVENTS, TD_HITS, TD_LIST_COUNTERS, TD_RATE, TD_V4_EXACT, TD_V4_PREFIX,
    TD_V6_EXACT, TD_V6_PREFIX,
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
    // This CPU's budget (and clock cache). A non-null pointer: one register, where an
    // `Option<*mut _>` would leave a slot older verifiers refuse to read.
    let budget = TD_RATE.get_ptr_mut(0).and_then(Budget::new);
    let now = clock(budget);
    let lists = touch::<F>(h, now);
    count_lists(lists, h.as_src, len);
    match take_token(budget, now) {
        Token::Off => return, // events off: none to send, none suppressed
        Token::Spent => return,
        Token::Taken => {}
    }
    // Only now, for an event: the addresses in 16 bytes and the ports.
    let (src, dst) = (F::wide(&p.src), F::wide(&p.dst));
    let (sport, dport) = parse::ports(ctx, p.proto, p.l4);
    let (inside, remote, remote_port) =
        if h.as_src { (dst, src, sport) } else { (src, dst, dport) };
    let (proto, ifindex) = (p.proto, ctx.ifindex());
    let Some(mut slot) = TD_EVENTS.reserve::<Event>(0) else {
        if let Some(b) = budget {
            // SAFETY: per-CPU slot; only this CPU's programs write its count.
            unsafe { (*b.as_ptr()).suppressed += 1 };
        }
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
fn touch<F: Family>(h: &Hit, now: u64) -> u64 {
    let stamp = EntryValue::last_hit_of(now);
    let e = h.entry.as_ptr();
    count_hit(e, F::at(h.entry), (now >> LAST_HIT_SHIFT) as u16);
    // SAFETY: `e` points at a writable map value a lookup returned, valid for this run. The
    // last-hit stamp is written only when it changes: once a tick, whatever the packet rate.
    unsafe {
        if (*e).last_hit != stamp {
            (*e).last_hit = stamp;
        }
        (*e).lists
    }
}

/// Counts a hit on value `e` (which lies at `at`) in tick `tick`: in this CPU's slot for it;
/// where another entry hit that slot in this tick, on the value itself, atomically; where the
/// slot rests, the slot is taken, its count first added to the value it named.
#[inline(always)]
fn count_hit(e: *mut EntryValue, at: u32, tick: u16) {
    let slots = TD_HITS.get_ptr_mut(0);
    // SAFETY: per-CPU value; only this CPU's programs write it (user space only reads).
    let slot = slots.and_then(|s| unsafe { (*s).slots.get_mut(hit_slot(at) & (HIT_SLOTS - 1)) });
    let Some(s) = slot.filter(|_| at != 0) else {
        add(e, 1);
        return;
    };
    // SAFETY: `e` is a map value a lookup returned, valid for this run.
    let generation = unsafe { (*e).generation() };
    if s.at == at && s.generation == generation {
        s.packets += 1;
        s.tick = tick;
    } else if s.at != 0 && s.tick == tick {
        add(e, 1);
    } else {
        if s.packets != 0 {
            td_flush_hits(s.at, u32::from(s.generation), s.packets);
        }
        *s = HitSlot { at, generation, tick, packets: 1 };
    }
}

/// Adds `n` to value `e`'s packet count, atomically (other CPUs may add at the same time).
#[inline(always)]
fn add(e: *mut EntryValue, n: u64) {
    // SAFETY: `e` points at a writable map value a lookup returned, valid for this run; its
    // packet count is only added to atomically.
    unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(&raw mut (*e).packets, n) };
}

/// Adds `n` hits that a slot held to the value at `at` if it is still of generation
/// `generation` (else its entry is gone, and its hits with it): a global function, which the
/// verifier checks once (it reaches all four value arrays).
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn td_flush_hits(at: u32, generation: u32, n: u64) -> u32 {
    let (table, index) = entry_of(at);
    let value = match table {
        AT_V4_EXACT => TD_V4_EXACT.get_ptr_mut(index),
        AT_V4_PREFIX => TD_V4_PREFIX.get_ptr_mut(index),
        AT_V6_EXACT => TD_V6_EXACT.get_ptr_mut(index),
        AT_V6_PREFIX => TD_V6_PREFIX.get_ptr_mut(index),
        _ => None,
    };
    // SAFETY: `v` is a map value the lookup just returned.
    if let Some(v) = value.filter(|v| u32::from(unsafe { (**v).generation() }) == generation) {
        add(v, n);
    }
    0
}

/// Adds a packet of `len` bytes to the (per-CPU) counters of every list in `lists`, matched
/// as source or destination. An entry of one list (nearly all) is counted straight; for more,
/// the lists are walked in `bpf_loop`, which the verifier checks once (an inline loop over up
/// to 64 lists had it walk everything after it once a list: half a million instructions).
#[inline(always)]
fn count_lists(lists: u64, as_src: bool, len: u64) {
    if lists & lists.wrapping_sub(1) == 0 {
        if lists != 0 {
            count_list(lists.trailing_zeros(), as_src, len);
        }
        return;
    }
    let mut walk = ListWalk { rest: lists, len, as_src: u64::from(as_src) };
    let ctx = &mut walk as *mut ListWalk as *mut c_void;
    // SAFETY: `list_step` is a callback of the type bpf_loop expects, and `ctx` points at
    // `walk`, which outlives the call.
    unsafe { bpf_loop(lists.count_ones(), list_step as *mut c_void, ctx, 0) };
}

/// What `list_step` walks: the lists left, and the packet.
#[repr(C)]
struct ListWalk {
    rest: u64,
    len: u64,
    as_src: u64,
}

/// One step of the walk: the lowest list left is counted and taken out.
extern "C" fn list_step(_: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: bpf_loop passes back the pointer to the caller's `ListWalk`.
    let w = unsafe { &mut *(ctx as *mut ListWalk) };
    if w.rest == 0 {
        return 1;
    }
    let bit = w.rest.trailing_zeros();
    w.rest &= w.rest - 1;
    count_list(bit, w.as_src != 0, w.len);
    0
}

/// Adds a packet of `len` bytes to list `bit`'s per-CPU counter of its direction.
#[inline(always)]
fn count_list(bit: u32, as_src: bool, len: u64) {
    if let Some(c) = TD_LIST_COUNTERS.get_ptr_mut(list_counter_index(bit, !as_src)) {
        // SAFETY: per-CPU slot.
        unsafe {
            (*c).packets += 1;
            (*c).bytes += len;
        }
    }
}

/// Counts one event (sent or suppressed) in interface slot 0's counters.
#[inline(always)]
fn bump(cnt: u32) {
    count(0, cnt, 0);
}

/// This CPU's event budget (and clock cache) in `TD_RATE`.
type Budget = core::ptr::NonNull<RateState>;

/// The coarse clock (a tick's resolution: enough for last-hit times and the event budget).
/// It moves only on a tick, as jiffies do, and jiffies cost a far cheaper helper: it is read
/// only when they moved since this CPU last read it (its value is then kept beside the
/// budget). Should the timekeeping lag the tick's jiffies by a moment, the clock is a tick
/// behind until the next one.
#[inline(always)]
fn clock(budget: Option<Budget>) -> u64 {
    // SAFETY: helpers without arguments or memory effects.
    let Some(b) = budget else { return unsafe { bpf_ktime_get_coarse_ns() } };
    let b = b.as_ptr();
    // SAFETY: per-CPU slot; only this CPU's programs write its clock cache.
    unsafe {
        let jiffies = bpf_jiffies64();
        if (*b).clock_jiffies != jiffies || (*b).clock_ns == 0 {
            (*b).clock_jiffies = jiffies;
            (*b).clock_ns = bpf_ktime_get_coarse_ns();
        }
        (*b).clock_ns
    }
}

/// What the event budget says of a hit.
enum Token {
    /// Events are off.
    Off,
    /// This CPU has sent its share: the event is suppressed (and counted so).
    Spent,
    /// An event may go.
    Taken,
}

/// Whether this CPU may send an event now: at most one an interval, in bursts (a virtual
/// schedule: compares and adds only, no division; the rate beside it, one lookup in all).
#[inline(always)]
fn take_token(budget: Option<Budget>, now: u64) -> Token {
    let Some(b) = budget else { return Token::Off };
    let b = b.as_ptr();
    // SAFETY: per-CPU slot; no other context writes it concurrently (the loader writes the
    // rate only).
    unsafe {
        let interval = (*b).interval_ns;
        if interval == 0 {
            return Token::Off;
        }
        let next = (*b).next_ns.max(now);
        if next + interval - now > (*b).window_ns {
            (*b).suppressed += 1;
            return Token::Spent;
        }
        (*b).next_ns = next + interval;
    }
    Token::Taken
}
