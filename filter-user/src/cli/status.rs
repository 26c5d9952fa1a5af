//! `takedown status`: the daemon, the pinned filter's interfaces and program, entries per map
//! and per list, and each list's last refresh. Works whether or not the daemon runs.

use anyhow::Result;
use clap::Args;
use serde_json::{Value, json};
use takedown::{
    daemon::{
        manual::{self, MANUAL_BIT},
        status::{Status, now},
    },
    plan::Plan,
    words::entries,
};

use super::{inspect, places::Places};

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    places: Places,
}

/// What `status` shows, gathered once.
struct Seen {
    daemon: Option<i32>,
    st: Status,
    plan: Plan,
    interfaces: Vec<String>,
    manual_entries: usize,
}

pub fn run(args: StatusArgs) -> Result<()> {
    let pins = args.places.pins();
    let state = args.places.state();
    let st = inspect::status(&args.places);
    // Pinned links, or (an ephemeral run pins none) the interfaces its daemon attached to.
    let mut interfaces = pins.linked_interfaces();
    if interfaces.is_empty() {
        interfaces = st.interfaces.iter().map(|i| i.name.clone()).collect();
    }
    let seen = Seen {
        daemon: state.daemon_pid(),
        st,
        plan: args.places.maps("takedown status")?.plan()?,
        interfaces,
        manual_entries: manual::load(&state.manual())?.len(),
    };
    if args.json {
        say!("{}", serde_json::to_string_pretty(&to_json(&seen, &args.places))?);
    } else {
        print(&seen, &args.places);
    }
    Ok(())
}

fn to_json(s: &Seen, places: &Places) -> Value {
    let entries: serde_json::Map<String, Value> =
        s.plan.counts().into_iter().map(|(label, n)| (label.to_string(), json!(n))).collect();
    let lists: Vec<Value> =
        s.st.lists
            .iter()
            .map(|l| {
                let mut v = serde_json::to_value(l).unwrap_or_default();
                v["in_maps"] = json!(s.plan.list_count(l.bit));
                v
            })
            .collect();
    json!({
        "daemon": s.daemon, "pin_dir": places.pins().dir(), "interfaces": s.interfaces,
        "program_id": s.st.program_id, "entries": entries, "manual_entries": s.manual_entries,
        "lists": lists, "metrics": metrics_json(s),
        "warnings": if s.daemon.is_some() { s.st.warnings.clone() } else { vec![] },
        "journal": s.daemon.and(s.st.journal.as_ref()), "exposed_hosts": s.st.exposed_hosts,
    })
}

/// `{"url": ...}` or `{"error": ...}` while a daemon runs that was asked to serve metrics.
fn metrics_json(s: &Seen) -> Option<Value> {
    Some(match s.daemon.and(s.st.metrics.as_ref())? {
        Ok(url) => json!({ "url": url }),
        Err(why) => json!({ "error": why }),
    })
}

fn print(s: &Seen, places: &Places) {
    match s.daemon {
        Some(pid) => say!("daemon: running (pid {pid})"),
        None => say!("daemon: not running (the pinned filter enforces on its own)"),
    }
    say!("pinned at: {}", places.pins().dir().display());
    let modes: Vec<String> = s
        .interfaces
        .iter()
        .map(|i| match s.st.interfaces.iter().find(|x| &x.name == i) {
            Some(x) => format!("{i} ({})", x.mode),
            None => i.clone(),
        })
        .collect();
    say!("interfaces: {}", if modes.is_empty() { "none".into() } else { modes.join(", ") });
    if let Some(id) = s.st.program_id {
        say!("program id: {id}");
    }
    let [v4, v6, p4, p6, a4, a6] = s.plan.counts().map(|(_, n)| n);
    say!(
        "entries: {v4} IPv4, {v6} IPv6, {p4} IPv4 prefixes, {p6} IPv6 prefixes; allowlist {a4} IPv4, {a6} IPv6"
    );
    for l in &s.st.lists {
        let when = l
            .last_success
            .map_or("never".to_string(), |t| format!("{}s ago", now().saturating_sub(t)));
        let word = if l.ok { "ok" } else { "FAILED" };
        say!(
            "list {}: {} in the maps; last refresh {word} ({}), last success {when}; source {}",
            l.name,
            s.plan.list_count(l.bit),
            l.message,
            l.source
        );
    }
    let manual = s.plan.list_count(MANUAL_BIT.trailing_zeros());
    say!("list manual: {}, {manual} in the maps", entries(s.manual_entries));
    match (&s.st.metrics, s.daemon) {
        (Some(Ok(url)), Some(_)) => say!("metrics: {url}"),
        (Some(Err(why)), Some(_)) => say!("metrics: FAILED: {why}"),
        _ => {}
    }
    if let (Some(j), Some(_)) = (&s.st.journal, s.daemon) {
        say!(
            "journal: {} hour(s), {} bytes in {}, kept {} days; {} new connection(s) since the \
             start; {} inside host(s) found to have contacted an address before it was listed",
            j.hours,
            j.bytes,
            j.dir,
            j.days,
            j.connections,
            s.st.exposed_hosts
        );
    }
    if s.daemon.is_some() {
        s.st.warnings.iter().for_each(|w| say!("WARNING: {w}"));
    }
}
