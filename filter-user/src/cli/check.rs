//! `takedown check`: parse, guard and plan lists without touching the kernel (no root needed).
//!
//! Exit status: 0 when every list is usable; 1 when a list has no usable entry or a refused
//! (too broad) entry, or a file cannot be read; 2 on usage errors (clap).

use std::{path::PathBuf, process::ExitCode};

use anyhow::Result;
use clap::Args;
use serde_json::json;
use takedown::{
    daemon::config::Config,
    plan::{
        Plan,
        pipeline::{ListReport, ListSpec, Pipeline},
    },
};

use super::{report, sources::SourceArgs};

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// List files to check.
    #[arg(required_unless_present = "config", value_name = "LIST")]
    lists: Vec<PathBuf>,
    /// Check a daemon configuration file and its file lists instead (URL lists are not fetched).
    #[arg(long, value_name = "FILE", conflicts_with = "lists")]
    config: Option<PathBuf>,
    #[command(flatten)]
    sources: SourceArgs,
    /// Show every skipped line and guard note, not only the first few per list.
    #[arg(short, long)]
    verbose: bool,
    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

/// What `check` read and planned.
struct Checked {
    pipeline: Pipeline,
    lists: Vec<ListReport>,
    plan: Plan,
}

impl Checked {
    /// Every list is usable: read, with a usable entry and no refused one.
    fn usable(&self) -> bool {
        self.lists.iter().all(|r| r.unusable().is_none() && r.refused == 0)
    }
}

pub fn run(args: CheckArgs) -> Result<ExitCode> {
    let (pipeline, specs) = match &args.config {
        Some(path) => from_config(path)?,
        None => {
            let (pipeline, specs) = args.sources.pipeline(&args.lists)?;
            (pipeline, specs.into_iter().enumerate().map(|(i, s)| (i as u32, s)).collect())
        }
    };
    let lists: Vec<ListReport> =
        specs.iter().map(|(bit, spec)| pipeline.list_file(spec, *bit)).collect();
    let plan = pipeline.plan(lists.iter(), &[], std::iter::empty());
    let c = Checked { pipeline, lists, plan };
    if args.json {
        say!("{}", serde_json::to_string_pretty(&to_json(&c))?);
    } else {
        print(&c, args.verbose);
    }
    Ok(if c.usable() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn print(c: &Checked, verbose: bool) {
    for r in &c.lists {
        report::print_list(r, verbose);
    }
    report::print_allow(&c.pipeline);
    report::print_plan(&c.plan);
    for r in &c.lists {
        match (&r.error, r.unusable()) {
            (Some(e), _) => say!("not usable: {e}"),
            (None, Some(_)) => say!("not usable: {} has no usable entry", r.list.path.display()),
            _ => {}
        }
    }
    for r in c.lists.iter().filter(|r| r.refused > 0) {
        say!("not usable: {} has {} refused entries", r.list.path.display(), r.refused);
    }
}

/// The pipeline and file lists of a configuration file, each with its bit as in `run` (URL
/// CrowdSec and TAXII lists are reported, not fetched).
fn from_config(path: &std::path::Path) -> Result<(Pipeline, Vec<(u32, ListSpec)>)> {
    let config = Config::load(path)?;
    for l in config.lists.iter().filter(|l| !l.enabled) {
        say!("list {}: {}: disabled (enabled = false), not checked", l.name, l.source());
    }
    let mut files = Vec::new();
    for (bit, (l, spec)) in config.enabled().zip(config.specs()?).enumerate() {
        if let Some(w) = l.insecure_warning() {
            say!("warning: {w}");
        }
        match &l.file {
            Some(_) => files.push((bit as u32, spec)),
            None => {
                let mode = report::mode(l.monitor);
                say!("list {}: {}: {mode}; not fetched by check", l.name, l.source());
            }
        }
    }
    Ok((config.pipeline()?, files))
}

fn list_json(r: &ListReport) -> serde_json::Value {
    let l = &r.list;
    let [v4, v6, p4, p6] = r.kinds;
    json!({
        "name": l.name,
        "error": r.error,
        "path": l.path,
        "format": l.format,
        "direction": r.direction,
        "entries": {"ipv4": v4, "ipv6": v6, "ipv4_prefixes": p4, "ipv6_prefixes": p6, "domains": l.domains.len()},
        "fields": l.kinds,
        "duplicates": r.duplicates,
        "aggregated": r.aggregated,
        "refused": r.refused,
        "guarded": r.guarded,
        "guard_notes": r.guard_notes,
        "skipped": l.skipped,
        "warnings": l.warnings,
        "monitor": r.monitor,
        "usable": r.unusable().is_none() && r.refused == 0,
    })
}

fn to_json(c: &Checked) -> serde_json::Value {
    let p = &c.pipeline;
    let mut plan: serde_json::Map<String, serde_json::Value> =
        c.plan.counts().into_iter().map(|(label, n)| (label.to_string(), json!(n))).collect();
    plan.insert("stats".into(), json!(c.plan.stats));
    let per_list: serde_json::Map<String, serde_json::Value> = c
        .lists
        .iter()
        .map(|r| (r.list.name.clone(), json!(c.plan.list_count(r.bit.trailing_zeros()))))
        .collect();
    plan.insert("lists".into(), json!(per_list));
    json!({
        "lists": c.lists.iter().map(list_json).collect::<Vec<_>>(),
        "allowlist": {
            "networks": p.allow.len(),
            "own_addresses": p.own,
            "skipped": p.allow_notes.iter().map(|(path, n)| json!({"path": path, "line": n.line, "reason": n.reason})).collect::<Vec<_>>(),
        },
        "plan": plan,
        "usable": c.usable(),
    })
}
