//! `takedown watch`: a live view of the running filter, refreshed every second, that fits an
//! 80x24 terminal (over SSH too): drop and pass rates with their recent history, the most-hit
//! entries, the newest infected hosts, each list's refresh state, and the newest host the
//! connection journal found to have talked to an address before it was listed. q, Esc or
//! Ctrl-C quits. The rates come from the counters every second. The entry table reads every
//! entry: it is refreshed every second too while that read is cheap, and less often (ten times
//! the read's cost) on a filter so large that it is not, with its age in its title.

use std::{
    collections::{HashMap, VecDeque},
    time::{Duration, Instant},
};

use anyhow::Result;
use clap::Args;
use filter_common::{CNT_DROP_DST, CNT_DROP_SRC, CNT_MONITORED, CNT_PASSED};
use ratatui::{
    Frame,
    crossterm::event::{self, Event, KeyCode, KeyModifiers},
    layout::{Constraint, Layout, Rect},
    style::{Color, Style},
    widgets::{Block, Borders, Paragraph, Row, Sparkline, Table},
};
use takedown::{
    daemon::{
        hosts::HostTable,
        status::{ExposureNote, Status, now},
    },
    maps::{FilterMaps, counters},
};

use super::places::Places;

#[derive(Args, Debug)]
pub struct WatchArgs {
    #[command(flatten)]
    places: Places,
}

/// What one screen shows.
#[derive(Default)]
struct View {
    drop_rate: f64,
    pass_rate: f64,
    drops: VecDeque<u64>,
    passes: VecDeque<u64>,
    top: Vec<(String, f64, u64, String)>,
    /// When the top table was read.
    top_read: Option<Instant>,
    hosts: Vec<(String, u64, String)>,
    lists: Vec<(String, usize, bool, u64)>,
    daemon: String,
    /// The newest host the connection journal found to have talked to an address before it
    /// was listed.
    exposed: Option<String>,
}

const HISTORY: usize = 60;
/// The top table is read again after this many times what its last read cost (at least every
/// second).
const TOP_COST_FACTOR: u32 = 10;

pub fn run(args: WatchArgs) -> Result<()> {
    let maps = args.places.maps("takedown watch")?;
    let mut terminal = ratatui::init();
    let result = watch(&mut terminal, &maps, &args.places);
    ratatui::restore();
    result
}

/// What the previous screen saw, to turn totals into rates.
struct Sampler {
    counters: counters::Totals,
    at: Instant,
    hits: HashMap<String, u64>,
    hits_at: Instant,
    /// When the top table is due to be read again.
    top_due: Instant,
}

impl Sampler {
    fn new(maps: &FilterMaps) -> Result<Self> {
        let counters = counters::read(maps)?;
        let now = Instant::now();
        Ok(Self { counters, at: now, hits: HashMap::new(), hits_at: now, top_due: now })
    }

    /// Drop and pass rates since the last call, into the view and its history.
    fn rates(&mut self, maps: &FilterMaps, view: &mut View) -> Result<()> {
        let t = Instant::now();
        let secs = (t - self.at).as_secs_f64().max(0.001);
        let now_c = counters::read(maps)?;
        let d = |c: u32| now_c.packets(c).saturating_sub(self.counters.packets(c));
        view.drop_rate = (d(CNT_DROP_SRC) + d(CNT_DROP_DST)) as f64 / secs;
        view.pass_rate = (d(CNT_PASSED) + d(CNT_MONITORED)) as f64 / secs;
        push(&mut view.drops, view.drop_rate as u64);
        push(&mut view.passes, view.pass_rate as u64);
        (self.counters, self.at) = (now_c, t);
        Ok(())
    }

    /// The most-hit entries with their rates since the last call.
    fn top(&mut self, maps: &FilterMaps, st: &Status) -> Result<Vec<(String, f64, u64, String)>> {
        let secs = self.hits_at.elapsed().as_secs_f64().max(0.001);
        self.hits_at = Instant::now();
        let hits = maps.hits()?;
        let mut top: Vec<(String, f64, u64, String)> = hits
            .iter()
            .filter(|h| h.packets > 0)
            .map(|h| {
                let key = h.net.to_string();
                let before = self.hits.get(&key).copied().unwrap_or(h.packets);
                let rate = h.packets.saturating_sub(before) as f64 / secs;
                (key, rate, h.packets, st.list_names(h.meta.lists).join(","))
            })
            .collect();
        top.sort_by_key(|t| std::cmp::Reverse(t.2));
        top.truncate(6);
        self.hits = hits.iter().map(|h| (h.net.to_string(), h.packets)).collect();
        Ok(top)
    }
}

fn watch(
    terminal: &mut ratatui::DefaultTerminal,
    maps: &FilterMaps,
    places: &Places,
) -> Result<()> {
    let mut view = View::default();
    let mut sampler = Sampler::new(maps)?;
    loop {
        let t = Instant::now();
        sampler.rates(maps, &mut view)?;
        let st = Status::read(&places.state().status_file()).unwrap_or_default();
        if t >= sampler.top_due {
            view.top = sampler.top(maps, &st)?;
            let cost = t.elapsed() * TOP_COST_FACTOR;
            sampler.top_due = t + cost.max(Duration::from_millis(900));
            view.top_read = Some(t);
        }
        view.hosts = newest_hosts(places);
        view.lists = lists(&st);
        view.exposed = st.journal.as_ref().and_then(|j| j.found.first()).map(exposed);
        view.daemon = match places.state().daemon_pid() {
            Some(pid) => format!("daemon pid {pid}"),
            None => "no daemon (the pinned filter enforces)".into(),
        };
        terminal.draw(|f| draw(f, &view))?;
        if quit_before(t + Duration::from_secs(1))? {
            return Ok(());
        }
    }
}

fn newest_hosts(places: &Places) -> Vec<(String, u64, String)> {
    let table = HostTable::read(&places.state().hosts_file()).unwrap_or_else(|_| HostTable::new(1));
    let newest = table.recent(0).into_iter().filter(|h| h.infected()).take(6);
    newest
        .map(|h| {
            let mut contacted = h.contacted.into_iter().next().unwrap_or_default();
            if h.before_listed.is_some() {
                contacted.push_str(" (before it was listed)");
            }
            (h.address, now().saturating_sub(h.last_seen), contacted)
        })
        .collect()
}

/// "exposed: 192.0.2.10 -> 198.51.100.7 +1 before it was listed (5s ago)" (+1: one contact
/// more; `takedown exposed` has them all): 78 columns at most with IPv4 addresses.
fn exposed(n: &ExposureNote) -> String {
    let more = if n.more > 0 { format!(" +{}", n.more) } else { String::new() };
    let ago = short_age(now().saturating_sub(n.at));
    format!("exposed: {} -> {}{more} before it was listed ({ago} ago)", n.host, n.remote)
}

/// `secs` in one unit: "5s", "3m", "2h", "12d".
fn short_age(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86_400 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

fn lists(st: &Status) -> Vec<(String, usize, bool, u64)> {
    let ago = |s: Option<u64>| s.map_or(0, |s| now().saturating_sub(s));
    st.lists.iter().map(|l| (l.name.clone(), l.entries, l.ok, ago(l.last_success))).collect()
}

/// True when q, Esc or Ctrl-C is pressed before `deadline`.
fn quit_before(deadline: Instant) -> Result<bool> {
    while Instant::now() < deadline {
        if event::poll(deadline.saturating_duration_since(Instant::now()))?
            && let Event::Key(k) = event::read()?
            && (matches!(k.code, KeyCode::Char('q') | KeyCode::Esc)
                || (k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL)))
        {
            return Ok(true);
        }
    }
    Ok(false)
}

fn push(v: &mut VecDeque<u64>, x: u64) {
    if v.len() == HISTORY {
        v.pop_front();
    }
    v.push_back(x);
}

fn draw(f: &mut Frame, v: &View) {
    let [head, alert, charts, middle, lists] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(5),
        Constraint::Min(8),
        Constraint::Length(6),
    ])
    .areas(f.area());
    f.render_widget(Paragraph::new(format!("takedown watch - {} - q quits", v.daemon)), head);
    if let Some(e) = &v.exposed {
        f.render_widget(Paragraph::new(e.as_str()).style(Style::default().fg(Color::Red)), alert);
    }
    draw_rates(f, v, charts);
    let [top, hosts] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(middle);
    draw_top(f, v, top);
    draw_hosts(f, v, hosts);
    draw_lists(f, v, lists);
}

fn draw_rates(f: &mut Frame, v: &View, area: Rect) {
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
    let drops: Vec<u64> = v.drops.iter().copied().collect();
    let passes: Vec<u64> = v.passes.iter().copied().collect();
    let chart = |what: &str, rate: f64, data: &[u64], color: Color| {
        let title = format!("{what} {rate:.0} pkts/s");
        Sparkline::default()
            .block(Block::default().borders(Borders::ALL).title(title))
            .data(data.to_vec())
            .style(Style::default().fg(color))
    };
    f.render_widget(chart("dropped", v.drop_rate, &drops, Color::Red), left);
    f.render_widget(chart("passed", v.pass_rate, &passes, Color::Green), right);
}

fn draw_top(f: &mut Frame, v: &View, area: Rect) {
    let rows = v.top.iter().map(|(e, r, n, l)| {
        Row::new(vec![e.clone(), format!("{r:.0}/s"), n.to_string(), l.clone()])
    });
    let widths =
        [Constraint::Length(18), Constraint::Length(6), Constraint::Length(7), Constraint::Min(4)];
    let table = Table::new(rows, widths)
        .header(Row::new(vec!["entry", "rate", "total", "lists"]))
        .block(Block::default().borders(Borders::ALL).title(top_title(v.top_read)));
    f.render_widget(table, area);
}

/// "top entries", with the table's age when it is older than the rates beside it.
fn top_title(read: Option<Instant>) -> String {
    match read.map(|t| t.elapsed().as_secs()) {
        Some(age) if age >= 2 => format!("top entries ({age}s ago)"),
        _ => "top entries".into(),
    }
}

fn draw_hosts(f: &mut Frame, v: &View, area: Rect) {
    let rows =
        v.hosts.iter().map(|(a, ago, c)| Row::new(vec![a.clone(), format!("{ago}s"), c.clone()]));
    let widths = [Constraint::Length(16), Constraint::Length(6), Constraint::Min(8)];
    let table = Table::new(rows, widths)
        .header(Row::new(vec!["infected host", "seen", "contacted"]))
        .block(Block::default().borders(Borders::ALL).title("newest infected hosts"));
    f.render_widget(table, area);
}

fn draw_lists(f: &mut Frame, v: &View, area: Rect) {
    let rows = v.lists.iter().map(|(n, e, ok, ago)| {
        let refresh = if *ok { "ok" } else { "FAILED" };
        Row::new(vec![n.clone(), e.to_string(), refresh.into(), format!("{ago}s ago")])
    });
    let widths =
        [Constraint::Length(24), Constraint::Length(10), Constraint::Length(8), Constraint::Min(8)];
    let table = Table::new(rows, widths)
        .header(Row::new(vec!["list", "entries", "refresh", "success"]))
        .block(Block::default().borders(Borders::ALL).title("lists"));
    f.render_widget(table, area);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposure_line_fits_80_columns_with_ipv4() {
        let long = ExposureNote {
            host: "100.100.100.100".into(),
            remote: "203.203.203.203".into(),
            more: 63,
            at: now() - 99 * 86_400,
        };
        let line = exposed(&long);
        assert!(line.len() <= 80, "{} columns: {line}", line.len());
        assert!(line.ends_with("(99d ago)"), "{line}");
        assert_eq!(short_age(59), "59s");
        assert_eq!(short_age(3599), "59m");
        assert_eq!(short_age(7200), "2h");
    }
}
