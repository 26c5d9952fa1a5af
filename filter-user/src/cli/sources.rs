//! Command-line options that say how to read lists and which guards to relax, shared by
//! `takedown check` and `takedown run`.

use std::path::PathBuf;

use clap::Args;
use takedown::{
    entry::Direction,
    guards::GuardOptions,
    lists::{Format, ListOptions},
    prepare::Sources,
};

#[derive(Args, Debug, Clone)]
pub struct SourceArgs {
    /// Read every list as this format instead of detecting it.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// CSV lists: the header name of the column holding the address.
    #[arg(long, value_name = "NAME")]
    pub column: Option<String>,
    /// Which packets the entries of these lists block.
    #[arg(long, value_enum, default_value_t)]
    pub direction: Direction,
    /// File of addresses and networks never to block, in any list format (repeatable).
    #[arg(long = "allow", value_name = "FILE")]
    pub allow: Vec<PathBuf>,
    /// Load prefixes broader than /8 (IPv4) or /24 (IPv6); /0 is refused all the same.
    #[arg(long)]
    pub force_broad: bool,
    /// Load entries in special ranges (private, loopback, link-local, multicast, ...).
    #[arg(long)]
    pub allow_special: bool,
    /// Let lists block this machine's own addresses (protected by default).
    #[arg(long)]
    pub block_own: bool,
}

impl SourceArgs {
    /// The sources for these list files.
    pub fn sources(&self, lists: &[PathBuf]) -> Sources {
        let opts = ListOptions {
            format: self.format,
            column: self.column.clone(),
            direction: self.direction,
        };
        Sources {
            lists: lists.iter().map(|p| (p.clone(), opts.clone())).collect(),
            allow: self.allow.clone(),
            guards: GuardOptions {
                force_broad: self.force_broad,
                allow_special: self.allow_special,
            },
            protect_own: !self.block_own,
            keep_going: false,
        }
    }
}
