//! The connection journal (on when the loader sets `CFG_JOURNAL`): each new connection the
//! filter lets pass goes to user space, which keeps who talked to whom. A TCP SYN without ACK
//! (either direction) is new; a UDP datagram is new when its flow slot (the same for both
//! directions, one array for every CPU) holds another flow. Any other packet costs a flag test
//! (TCP) or its flow's tag and one slot's load (UDP). Arriving packets only (XDP): the tc
//! egress program reports nothing.

use aya_ebpf::helpers::bpf_ktime_get_coarse_ns;
use filter_common::{Connection, flow_slot, flow_tag};

use crate::{
    TD_FLOW_TAGS, TD_JOURNAL,
    lookup::Family,
    parse::{self, Frame, Packet},
};

const TCP: u8 = 6;
const UDP: u8 = 17;
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;

/// Reports `p` when it opens a connection.
#[inline(always)]
pub fn note<F: Family, C: Frame>(ctx: &C, p: &Packet<F::Addr>) {
    // (A later IPv4 fragment has no transport header: neither a SYN nor a flow's ports.)
    if C::EGRESS {
        return;
    }
    match p.proto {
        TCP if parse::tcp_flags(ctx, p.l4) & (SYN | ACK) == SYN => {}
        UDP if first_of_flow::<F, C>(ctx, p) => {}
        _ => return,
    }
    let (sport, dport) = parse::ports(ctx, p.proto, p.l4);
    let (src, dst) = (F::wide(&p.src), F::wide(&p.dst));
    let (proto, family, ifindex) = (p.proto, F::VERSION, ctx.ifindex());
    // SAFETY: a helper without arguments.
    let ts_ns = unsafe { bpf_ktime_get_coarse_ns() };
    // Written in place in the ring (a record built on the stack gets misaligned stores the
    // verifier refuses). No wakeup: the journal's reader drains the ring on a timer.
    if let Some(mut slot) = TD_JOURNAL.reserve::<Connection>(0) {
        slot.write(Connection {
            ts_ns,
            src,
            dst,
            ifindex,
            sport,
            dport,
            proto,
            family,
            pad: [0; 2],
        });
        slot.submit(BPF_RB_NO_WAKEUP);
    }
}

const BPF_RB_NO_WAKEUP: u64 = 1;

/// True when the filter has not seen the flow of UDP datagram `p` lately (its slot held
/// another); the slot then holds it. The ports are taken as they lie in the header: the tag
/// only needs them the same both ways. A datagram without ports is no flow's.
#[inline(always)]
fn first_of_flow<F: Family, C: Frame>(ctx: &C, p: &Packet<F::Addr>) -> bool {
    let Some(ports) = parse::ports_at(ctx, p.l4) else { return false };
    // Each port a load of its own (volatile: loaded as one word, each took a shift and a
    // 64-bit mask to take out of it).
    // SAFETY: `ports_at` checked that both lie inside the packet; a port is 2-aligned there.
    let [sport, dport] = unsafe {
        let p = ports as *const u16;
        [p.read_volatile(), p.add(1).read_volatile()]
    };
    let tag = flow_tag(F::fold(&p.src), F::fold(&p.dst), sport, dport);
    // SAFETY: `flow_slot` is below FLOW_SLOTS, the array's length; the program's data lives
    // as long as it. CPUs may race on a slot, which at worst reports a flow twice (an aligned
    // word is written whole); volatile: another CPU may have written it.
    unsafe {
        let slot = (&raw mut TD_FLOW_TAGS as *mut u64).add(flow_slot(tag) as usize);
        if slot.read_volatile() == tag {
            return false;
        }
        slot.write_volatile(tag);
    }
    true
}
