//! takedown: keeps machines behind a gateway from reaching takedown addresses, with XDP.
//!
//! The library holds every stage of the flow (parse, plan, load, sync, read counters); the
//! `takedown` binary is a thin command-line face over it.

pub mod batch;
pub mod config;
pub mod control;
pub mod counters;
pub mod daemon;
pub mod domains;
pub mod edit;
pub mod entry;
pub mod filter;
pub mod guards;
pub mod hosts;
pub mod lists;
pub mod lookup;
pub mod manual;
pub mod metrics;
pub mod own;
pub mod pins;
pub mod plan;
pub mod prepare;
pub mod privileges;
pub mod read;
pub mod source;
pub mod state;
pub mod status;
pub mod sync;

/// The compiled XDP program (filter-ebpf), embedded at build time.
pub static EBPF_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/takedown.bpf.o"));
