//! takedown: keeps machines behind a gateway from reaching takedown addresses, with XDP.
//!
//! One folder a layer; an upper layer uses a lower one, never the reverse:
//! - [`lists`]: list text -> entries, with file:line notes.
//! - [`plan`]: guards, own addresses, allowlist, the plan and its diff; the one pipeline from
//!   sources to plan. Pure: no kernel.
//! - [`maps`]: load, pin, adopt, write (`sync`) and read the kernel maps.
//! - [`daemon`]: sources, refresh loop, state directory, hosts, metrics, control socket.
//!
//! The `takedown` binary (`cli/`) is a thin face over them.

pub mod daemon;
pub mod lists;
pub mod maps;
pub mod plan;

/// The compiled XDP program (filter-ebpf), embedded at build time.
pub static EBPF_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/takedown.bpf.o"));
