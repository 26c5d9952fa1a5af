//! Command-line options that say how to read lists and which guards to relax, shared by
//! `takedown check` and `takedown run`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use takedown::{
    daemon::config::ListConfig,
    lists::{Format, ListOptions, entry::Direction},
    plan::{
        guards::GuardOptions,
        pipeline::{self, ListSpec, Pipeline},
    },
};

#[derive(Args, Debug, Clone)]
pub struct SourceArgs {
    /// Read every list as this format instead of detecting it.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// CSV lists: the header name of the column holding the address.
    #[arg(long, value_name = "NAME")]
    pub column: Option<String>,
    /// Which packets the entries of these lists block [default: what each record says (MISP
    /// ip-src/ip-dst, STIX src_ref/dst_ref), else both].
    #[arg(long, value_enum)]
    pub direction: Option<Direction>,
    /// MISP lists: take every attribute, not only those marked to_ids.
    #[arg(long)]
    pub misp_all: bool,
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
    /// The publisher's minisign public key (RW...): each list is used only when its signature
    /// (LIST.minisig, beside it) verifies.
    #[arg(long, value_name = "KEY")]
    pub minisign_key: Option<String>,
    /// The largest list file read, in bytes (a list's `max_bytes` in a configuration).
    #[arg(long, value_name = "BYTES", default_value_t = takedown::lists::DEFAULT_MAX_BYTES)]
    pub max_bytes: u64,
}

impl SourceArgs {
    /// How every list file is read.
    pub fn options(&self) -> ListOptions {
        ListOptions {
            format: self.format,
            column: self.column.clone(),
            direction: self.direction,
            misp_all: self.misp_all,
        }
    }

    /// The list at `path`, read as asked.
    pub fn list(&self, path: &std::path::Path) -> ListConfig {
        let key = self.minisign_key.clone();
        let max_bytes = self.max_bytes;
        ListConfig { minisign_key: key, max_bytes, ..ListConfig::from_file(path, &self.options()) }
    }

    /// The guards, relaxed as asked.
    pub fn guards(&self) -> GuardOptions {
        GuardOptions { force_broad: self.force_broad, allow_special: self.allow_special }
    }

    /// The pipeline for these options, and one list (named after its file) per path.
    pub fn pipeline(&self, lists: &[PathBuf]) -> Result<(Pipeline, Vec<ListSpec>)> {
        pipeline::check_count(lists.len())?;
        let pipeline = Pipeline::new(&self.allow, self.guards(), !self.block_own)?;
        let specs = lists.iter().map(|p| self.list(p).spec()).collect();
        Ok((pipeline, specs))
    }
}
