//! Human-readable reports of what was read, guarded and planned (`check`, and `run` at start).

use takedown::{
    lists::LineNote,
    plan::{
        Plan,
        pipeline::{ListReport, Pipeline},
    },
};

/// How many notes of each sort are shown per list unless verbose.
pub const SHOWN_LINES: usize = 5;

/// Prints one list: format, entries by kind, merges, guards, skipped lines.
pub fn print_list(r: &ListReport, verbose: bool) {
    let l = &r.list;
    if let Some(e) = &r.error {
        say!("list {}: {}: cannot be used: {e}", l.name, l.path.display());
        return;
    }
    let [v4, v6, p4, p6] = r.kinds;
    say!(
        "list {}: {}: format {}, direction {}, {}",
        l.name,
        l.path.display(),
        l.format,
        r.direction,
        mode(r.monitor)
    );
    say!(
        "  entries: {v4} IPv4, {v6} IPv6, {p4} IPv4 prefixes, {p6} IPv6 prefixes, {} domains",
        l.domains.len()
    );
    let by_kind: Vec<String> = l.kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
    if !by_kind.is_empty() {
        say!("  fields: {}", by_kind.join(", "));
    }
    say!(
        "  merged: {} duplicates, {} prefixes aggregated; {} host bits masked",
        r.duplicates,
        r.aggregated,
        l.masked
    );
    if r.refused + r.guarded > 0 {
        say!(
            "  guards: {} refused, {} left out or split around special ranges",
            r.refused,
            r.guarded
        );
        print_notes(l.path.display(), &r.guard_notes, "guard", verbose);
    }
    say!("  skipped: {} lines", l.skipped.len());
    print_notes(l.path.display(), &l.skipped, "skipped", verbose);
    print_notes(l.path.display(), &l.warnings, "warning", verbose);
}

/// How a list's entries act: "enforced", or "monitor only" (matched and counted, never dropped).
pub fn mode(monitor: bool) -> &'static str {
    if monitor { "monitor only (matched and counted, not dropped)" } else { "enforced" }
}

fn print_notes(path: impl std::fmt::Display, notes: &[LineNote], what: &str, verbose: bool) {
    let shown = if verbose { notes.len() } else { notes.len().min(SHOWN_LINES) };
    for n in &notes[..shown] {
        say!("    {path}:{}: {what}: {}", n.line, n.reason);
    }
    if shown < notes.len() {
        say!("    ... and {} more (--verbose shows all)", notes.len() - shown);
    }
}

/// Prints the allowlist summary and its skipped lines.
pub fn print_allow(p: &Pipeline) {
    say!(
        "allowlist: {} networks never blocked ({} of them this machine's own addresses)",
        p.allow.len(),
        p.own.len()
    );
    for (path, n) in &p.allow_notes {
        say!("    {}:{}: allowlist: {}", path.display(), n.line, n.reason);
    }
}

/// Prints the plan's entry counts per kind and what planning merged.
pub fn print_plan(plan: &Plan) {
    let s = plan.stats;
    let [(_, v4), (_, v6), (_, p4), (_, p6), ..] = plan.counts();
    say!(
        "plan: {v4} IPv4 addresses, {v6} IPv6 addresses, {p4} IPv4 prefixes, {p6} IPv6 prefixes; \
         {} duplicates merged, {} prefixes aggregated, {} covered by a prefix, {} allowlisted",
        s.duplicates,
        s.aggregated,
        s.covered,
        s.allowlisted
    );
}
