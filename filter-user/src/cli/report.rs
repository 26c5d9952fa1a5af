//! Human-readable load summaries: entries per kind and the lines that were skipped.

use takedown::{parse::ParsedList, plan::Plan};

/// How many skipped or warned lines are shown before the rest are only counted.
pub const SHOWN_LINES: usize = 5;

/// Prints what each list gave and which lines were skipped (the first few, then a count).
pub fn print_lists(lists: &[ParsedList]) {
    for l in lists {
        say!(
            "list {}: {} entries, {} lines skipped, {} masked",
            l.path.display(),
            l.entries.len(),
            l.skipped.len(),
            l.warnings.len()
        );
    }
    let mut notes =
        lists.iter().flat_map(|l| {
            l.skipped
                .iter()
                .map(move |n| format!("{}:{}: skipped: {}", l.path.display(), n.line, n.reason))
                .chain(l.warnings.iter().map(move |n| {
                    format!("{}:{}: warning: {}", l.path.display(), n.line, n.reason)
                }))
        });
    for note in notes.by_ref().take(SHOWN_LINES) {
        warn_line!("{note}");
    }
    let rest = notes.count();
    if rest > 0 {
        warn_line!("... and {rest} more skipped or masked lines");
    }
}

/// Prints the plan's entry counts per kind.
pub fn print_plan(plan: &Plan) {
    say!(
        "entries: {} IPv4 addresses, {} IPv6 addresses, {} IPv4 prefixes, {} IPv6 prefixes; {} duplicates merged",
        plan.v4_exact.len(),
        plan.v6_exact.len(),
        plan.v4_prefix.len(),
        plan.v6_prefix.len(),
        plan.duplicates
    );
}
