//! `takedown check`: parse, guard and plan lists without touching the kernel (no root needed).
//!
//! Exit status: 0 when every list is usable; 1 when a list has no usable entry or a refused
//! (too broad) entry, or a file cannot be read; 2 on usage errors (clap).

use std::{path::PathBuf, process::ExitCode};

use anyhow::Result;
use clap::Args;
use serde_json::json;
use takedown::prepare::{self, ListReport, Prepared};

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

pub fn run(args: CheckArgs) -> Result<ExitCode> {
    let mut sources = match &args.config {
        Some(path) => config_sources(path)?,
        None => args.sources.sources(&args.lists),
    };
    sources.keep_going = true;
    let prepared = prepare::prepare(&sources)?;
    let plan = prepared.plan(&[]);
    let usable =
        prepared.empty_lists().next().is_none() && prepared.lists.iter().all(|r| r.refused == 0);
    if args.json {
        say!("{}", serde_json::to_string_pretty(&to_json(&prepared, &plan, usable))?);
    } else {
        for r in &prepared.lists {
            report::print_list(r, args.verbose);
        }
        report::print_allow(&prepared);
        report::print_plan(&plan);
        for r in prepared.empty_lists() {
            match &r.error {
                Some(e) => say!("not usable: {e}"),
                None => say!("not usable: {} has no usable entry", r.list.path.display()),
            }
        }
        for r in prepared.lists.iter().filter(|r| r.refused > 0) {
            say!("not usable: {} has {} refused entries", r.list.path.display(), r.refused);
        }
    }
    Ok(if usable { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// The sources a configuration file names (its file lists; URL lists are only reported).
fn config_sources(path: &std::path::Path) -> Result<takedown::prepare::Sources> {
    let config = takedown::config::Config::load(path)?;
    for l in config.enabled().filter(|l| l.url.is_some()) {
        say!("{}: URL list {}: not fetched by check", l.name, l.source());
    }
    Ok(takedown::prepare::Sources {
        lists: config.enabled().filter_map(|l| l.file.clone().map(|f| (f, l.options()))).collect(),
        allow: config.allow.clone(),
        guards: takedown::guards::GuardOptions {
            force_broad: config.guards.force_broad,
            allow_special: config.guards.allow_special,
        },
        protect_own: !config.guards.block_own,
        keep_going: true,
    })
}

fn list_json(r: &ListReport) -> serde_json::Value {
    let l = &r.list;
    let [v4, v6, p4, p6] = report::kinds(r);
    json!({
        "name": l.name,
        "error": r.error,
        "path": l.path,
        "format": l.format,
        "direction": l.direction.to_string(),
        "entries": {"ipv4": v4, "ipv6": v6, "ipv4_prefixes": p4, "ipv6_prefixes": p6, "domains": l.domains.len()},
        "fields": l.kinds,
        "duplicates": r.duplicates,
        "aggregated": r.aggregated,
        "refused": r.refused,
        "guarded": r.guarded,
        "guard_notes": r.guard_notes,
        "skipped": l.skipped,
        "warnings": l.warnings,
        "usable": !(r.nets.is_empty() && l.domains.is_empty()) && r.refused == 0,
    })
}

fn to_json(p: &Prepared, plan: &takedown::plan::Plan, usable: bool) -> serde_json::Value {
    json!({
        "lists": p.lists.iter().map(list_json).collect::<Vec<_>>(),
        "allowlist": {
            "networks": p.allow.len(),
            "own_addresses": p.own,
            "skipped": p.allow_notes.iter().map(|(path, n)| json!({"path": path, "line": n.line, "reason": n.reason})).collect::<Vec<_>>(),
        },
        "plan": {
            "ipv4": plan.v4_exact.len(),
            "ipv6": plan.v6_exact.len(),
            "ipv4_prefixes": plan.v4_prefix.len(),
            "ipv6_prefixes": plan.v6_prefix.len(),
            "stats": plan.stats,
        },
        "usable": usable,
    })
}
