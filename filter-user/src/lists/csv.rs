//! CSV lists with a header row (abuse.ch Feodo, ThreatFox and URLhaus exports, and the like).
//!
//! The header may be a plain row or a comment (`# "first_seen_utc","ioc_value",...`, as
//! ThreatFox and URLhaus write it). The address column is found by name; `--column` overrides.
//! Fields may be quoted, with blanks after commas; `#` lines are comments. Records are read a
//! line at a time, so that every skipped record is reported with its exact line.

use anyhow::{Result, bail};

use super::{ParsedList, detect::CSV_COLUMNS};

/// A header: the column names and the 1-based line it stands on.
pub struct Header {
    pub names: Vec<String>,
    pub line: usize,
}

/// The fields of one CSV line, trimmed and lower-cased (for headers) or as they are.
fn fields(line: &str, lower: bool) -> Vec<String> {
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .trim(::csv::Trim::All)
        .from_reader(line.as_bytes());
    reader
        .records()
        .next()
        .and_then(|r| r.ok())
        .map(|r| {
            r.iter().map(|f| if lower { f.to_ascii_lowercase() } else { f.to_string() }).collect()
        })
        .unwrap_or_default()
}

pub fn split_header(line: &str) -> Vec<String> {
    fields(line, true)
}

/// Finds the header among the first lines: the last comment line, or the first data line,
/// that has a comma and an address column (`column`, or one of the known names).
pub fn find_header(text: &str, column: Option<&str>) -> Option<Header> {
    let wanted = |names: &[String]| match column {
        Some(c) => names.iter().any(|n| n.eq_ignore_ascii_case(c)),
        None => names.iter().any(|n| CSV_COLUMNS.contains(&n.as_str())),
    };
    let mut found = None;
    for (i, raw) in text.lines().enumerate().take(100) {
        let line = raw.trim().trim_start_matches('\u{feff}');
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let names = split_header(comment.trim());
            if comment.contains(',') && wanted(&names) {
                found = Some(Header { names, line: i + 1 });
            }
            continue;
        }
        let names = split_header(line);
        if line.contains(',') && wanted(&names) {
            return Some(Header { names, line: i + 1 });
        }
        return found;
    }
    found
}

pub fn parse(text: &str, column: Option<&str>, list: &mut ParsedList) -> Result<()> {
    let Some(header) = find_header(text, column) else {
        match column {
            Some(c) => bail!("no header row with a column named {c:?}"),
            None => bail!(
                "no header row with an address column (looked for {})",
                CSV_COLUMNS.join(", ")
            ),
        }
    };
    let index = match column {
        Some(c) => header.names.iter().position(|n| n.eq_ignore_ascii_case(c)),
        None => CSV_COLUMNS.iter().find_map(|want| header.names.iter().position(|n| n == want)),
    }
    .expect("find_header checked the column");
    let type_index = header.names.iter().position(|n| n == "ioc_type");
    for (i, raw) in text.lines().enumerate().skip(header.line) {
        let line = i + 1;
        let raw = raw.trim();
        if raw.is_empty() || raw.starts_with('#') {
            continue;
        }
        let fields = fields(raw, false);
        if let Some(kind) = type_index.and_then(|t| fields.get(t))
            && kind.ends_with("_hash")
        {
            list.skip(
                line,
                format!("ioc_type {} is not a network indicator", super::token::shown(kind)),
            );
            continue;
        }
        match fields.get(index) {
            Some(field) if !field.is_empty() => list.push_field(line, field),
            _ => list.skip(
                line,
                format!("no value in column {:?}", super::token::shown(&header.names[index])),
            ),
        }
    }
    Ok(())
}
