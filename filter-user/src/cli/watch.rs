//! `takedown watch`: a live view of the running filter, refreshed every second, that fits an
//! 80x24 terminal (over SSH too): drop and pass rates with their recent history, the most-hit
//! entries, the newest infected hosts, and each list's refresh state. q, Esc or Ctrl-C quits.
//! The rates come from the counters every second; the entry table, which reads every entry, is
//! refreshed every [`TOP_EVERY`] seconds so that a million-entry filter stays responsive.

use std::{
    collections::{HashMap, VecDeque},
    time::{Duration, Instant},
};

use anyhow::Result;
use clap::Args;
use filter_common::{CNT_DROP_DST, CNT_DROP_SRC, CNT_MONITORED, CNT_PASSED, MAP_COUNTERS};
use ratatui::{
    Frame,
    crossterm::event::{self, Event, KeyCode, KeyModifiers},
    layout::{Constraint, Layout},
    style::{Color, Style},
    widgets::{Block, Borders, Paragraph, Row, Sparkline, Table},
};
use takedown::{
    daemon::{
        hosts::HostTable,
        status::{Status, now},
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
    hosts: Vec<(String, u64, String)>,
    lists: Vec<(String, usize, bool, u64)>,
    daemon: String,
}

const HISTORY: usize = 60;
/// Seconds between two reads of every entry for the top table.
const TOP_EVERY: u32 = 5;

pub fn run(args: WatchArgs) -> Result<()> {
    let maps = FilterMaps::open(&args.places.pins())?;
    let mut terminal = ratatui::init();
    let result = watch(&mut terminal, &maps, &args.places);
    ratatui::restore();
    result
}

fn watch(
    terminal: &mut ratatui::DefaultTerminal,
    maps: &FilterMaps,
    places: &Places,
) -> Result<()> {
    let mut view = View::default();
    let mut last = counters::read_map(maps.map(MAP_COUNTERS)?)?;
    let mut last_hits: HashMap<String, u64> = HashMap::new();
    let mut last_t = Instant::now();
    let mut last_top = Instant::now();
    for tick in 0u32.. {
        let t = Instant::now();
        let secs = (t - last_t).as_secs_f64().max(0.001);
        let now_c = counters::read_map(maps.map(MAP_COUNTERS)?)?;
        let d = |c: u32| now_c.packets(c).saturating_sub(last.packets(c));
        view.drop_rate = (d(CNT_DROP_SRC) + d(CNT_DROP_DST)) as f64 / secs;
        view.pass_rate = (d(CNT_PASSED) + d(CNT_MONITORED)) as f64 / secs;
        push(&mut view.drops, view.drop_rate as u64);
        push(&mut view.passes, view.pass_rate as u64);
        let st = Status::read(&places.state().status_file()).unwrap_or_default();
        if tick % TOP_EVERY == 0 {
            let secs = last_top.elapsed().as_secs_f64().max(0.001);
            last_top = Instant::now();
            let hits = maps.hits()?;
            let mut top: Vec<(String, f64, u64, String)> = hits
                .iter()
                .filter(|h| h.packets > 0)
                .map(|h| {
                    let key = h.net.to_string();
                    let rate =
                        h.packets.saturating_sub(last_hits.get(&key).copied().unwrap_or(h.packets))
                            as f64
                            / secs;
                    (key, rate, h.packets, st.list_names(h.meta.lists).join(","))
                })
                .collect();
            top.sort_by_key(|t| std::cmp::Reverse(t.2));
            top.truncate(6);
            view.top = top;
            last_hits = hits.iter().map(|h| (h.net.to_string(), h.packets)).collect();
        }
        view.hosts = HostTable::load(&places.state().hosts_file(), usize::MAX)
            .recent(0)
            .into_iter()
            .take(6)
            .map(|h| {
                (
                    h.address,
                    now().saturating_sub(h.last_seen),
                    h.contacted.into_iter().next().unwrap_or_default(),
                )
            })
            .collect();
        view.lists = st
            .lists
            .iter()
            .map(|l| {
                (
                    l.name.clone(),
                    l.entries,
                    l.ok,
                    l.last_success.map_or(0, |s| now().saturating_sub(s)),
                )
            })
            .collect();
        view.daemon = match places.state().daemon_pid() {
            Some(pid) => format!("daemon pid {pid}"),
            None => "no daemon (the pinned filter enforces)".into(),
        };
        terminal.draw(|f| draw(f, &view))?;
        last = now_c;
        last_t = t;
        let deadline = t + Duration::from_secs(1);
        while Instant::now() < deadline {
            if event::poll(deadline.saturating_duration_since(Instant::now()))?
                && let Event::Key(k) = event::read()?
                && (matches!(k.code, KeyCode::Char('q') | KeyCode::Esc)
                    || (k.code == KeyCode::Char('c')
                        && k.modifiers.contains(KeyModifiers::CONTROL)))
            {
                return Ok(());
            }
        }
    }
    Ok(())
}

fn push(v: &mut VecDeque<u64>, x: u64) {
    if v.len() == HISTORY {
        v.pop_front();
    }
    v.push_back(x);
}

fn draw(f: &mut Frame, v: &View) {
    let [head, charts, middle, lists] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(5),
        Constraint::Min(8),
        Constraint::Length(6),
    ])
    .areas(f.area());
    f.render_widget(Paragraph::new(format!("takedown watch - {} - q quits", v.daemon)), head);
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(charts);
    let drops: Vec<u64> = v.drops.iter().copied().collect();
    let passes: Vec<u64> = v.passes.iter().copied().collect();
    let title = |what: &str, rate: f64| format!("{what} {rate:.0} pkts/s");
    f.render_widget(
        Sparkline::default()
            .block(Block::default().borders(Borders::ALL).title(title("dropped", v.drop_rate)))
            .data(&drops)
            .style(Style::default().fg(Color::Red)),
        left,
    );
    f.render_widget(
        Sparkline::default()
            .block(Block::default().borders(Borders::ALL).title(title("passed", v.pass_rate)))
            .data(&passes)
            .style(Style::default().fg(Color::Green)),
        right,
    );
    let [top, hosts] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(middle);
    let rows = v.top.iter().map(|(e, r, n, l)| {
        Row::new(vec![e.clone(), format!("{r:.0}/s"), n.to_string(), l.clone()])
    });
    f.render_widget(
        Table::new(
            rows,
            [
                Constraint::Length(18),
                Constraint::Length(6),
                Constraint::Length(7),
                Constraint::Min(4),
            ],
        )
        .header(Row::new(vec!["entry", "rate", "total", "lists"]))
        .block(Block::default().borders(Borders::ALL).title("top entries")),
        top,
    );
    let rows =
        v.hosts.iter().map(|(a, ago, c)| Row::new(vec![a.clone(), format!("{ago}s"), c.clone()]));
    f.render_widget(
        Table::new(rows, [Constraint::Length(16), Constraint::Length(6), Constraint::Min(8)])
            .header(Row::new(vec!["infected host", "seen", "contacted"]))
            .block(Block::default().borders(Borders::ALL).title("newest infected hosts")),
        hosts,
    );
    let rows = v.lists.iter().map(|(n, e, ok, ago)| {
        Row::new(vec![
            n.clone(),
            e.to_string(),
            if *ok { "ok".into() } else { "FAILED".into() },
            format!("{ago}s ago"),
        ])
    });
    f.render_widget(
        Table::new(
            rows,
            [
                Constraint::Length(24),
                Constraint::Length(10),
                Constraint::Length(8),
                Constraint::Min(8),
            ],
        )
        .header(Row::new(vec!["list", "entries", "refresh", "success"]))
        .block(Block::default().borders(Borders::ALL).title("lists")),
        lists,
    );
}
