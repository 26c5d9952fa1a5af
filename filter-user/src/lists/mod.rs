//! Reading takedown lists in the shapes operators receive them, with every bad line reported.
//!
//! `parse_file` reads a file, detects its format (or uses the one forced), and returns the
//! usable entries (networks and domains) plus every skipped line as `line: reason`. The
//! formats live in their own modules: line-oriented lists (`lines`), CSV (`csv`) and JSON
//! (`json`), STIX bundles (`stix`) and MISP events and CSV (`misp`); `token` classifies one
//! field; `entry` names an entry's direction.
//!
//! The bottom layer: it knows no guard, plan, kernel map or daemon, and imports none of them.

mod csv;
mod detect;
pub mod entry;
mod json;
mod lines;
mod misp;
mod misp_decay;
pub mod misp_feed;
pub mod signature;
mod stix;
pub use stix::version_time;
mod stix_pattern;
pub mod token;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, bail};
pub use detect::Format;
use ipnet::IpNet;
pub use token::Kind;
use token::Target;

use entry::Direction;

/// A network entry of a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The network, host bits already masked.
    pub net: IpNet,
    /// 1-based line number in its list.
    pub line: usize,
    /// Which packets it blocks: the list's direction, or when the list gives none, the
    /// record's own (MISP `ip-src`/`ip-dst`, STIX `src_ref`/`dst_ref`), or both.
    pub direction: Direction,
}

/// How many network entries of each kind and direction a list (or a piece of it) holds,
/// counted in one pass without a string an entry: lists hold millions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shape {
    /// Exact IPv4, exact IPv6, IPv4 prefixes, IPv6 prefixes.
    pub kinds: [usize; 4],
    /// In the order of [`Shape::DIRECTIONS`].
    pub directions: [usize; 3],
}

impl Shape {
    pub const DIRECTIONS: [Direction; 3] = [Direction::Both, Direction::Dst, Direction::Src];

    fn direction_index(d: Direction) -> usize {
        match d {
            Direction::Both => 0,
            Direction::Dst => 1,
            Direction::Src => 2,
        }
    }

    /// Counts one entry.
    pub fn count(&mut self, e: &Entry) {
        let kind = match e.net {
            IpNet::V4(n) if n.prefix_len() == 32 => 0,
            IpNet::V6(n) if n.prefix_len() == 128 => 1,
            IpNet::V4(_) => 2,
            IpNet::V6(_) => 3,
        };
        self.kinds[kind] += 1;
        self.directions[Self::direction_index(e.direction)] += 1;
    }

    /// The counts of two pieces together.
    pub fn plus(mut self, other: &Shape) -> Shape {
        (0..4).for_each(|i| self.kinds[i] += other.kinds[i]);
        (0..3).for_each(|i| self.directions[i] += other.directions[i]);
        self
    }
}

/// A domain entry of a list (resolved to addresses later).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainEntry {
    /// Lower-case name without a trailing dot.
    pub name: String,
    /// 1-based line number in its list.
    pub line: usize,
    /// Which packets its addresses block (as for [`Entry::direction`]).
    pub direction: Direction,
}

/// A line that was not loaded, or loaded with a change, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LineNote {
    /// 1-based line number.
    pub line: usize,
    /// What was wrong.
    pub reason: String,
}

/// How to read a list.
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    /// Force a format instead of detecting it.
    pub format: Option<Format>,
    /// CSV: the column holding the address (by header name).
    pub column: Option<String>,
    /// Which packets the list's entries block; `None`: what each record says (MISP `ip-src` /
    /// `ip-dst`, STIX `src_ref` / `dst_ref`), both for records that say nothing.
    pub direction: Option<Direction>,
    /// MISP: take every attribute, not only those marked `to_ids`.
    pub misp_all: bool,
}

/// A list after parsing.
#[derive(Clone, Debug, Default)]
pub struct ParsedList {
    /// Its name in reports (the file name).
    pub name: String,
    /// Where it was read from.
    pub path: PathBuf,
    /// The format it was read as.
    pub format: Format,
    /// Which packets its entries block, when the list says (else each record's own).
    pub direction: Option<Direction>,
    /// MISP: every attribute is taken, not only those marked `to_ids`.
    pub misp_all: bool,
    /// Network entries, in file order (duplicates kept; the plan merges them).
    pub entries: Vec<Entry>,
    /// Domain entries, in file order.
    pub domains: Vec<DomainEntry>,
    /// Lines or records that were skipped.
    pub skipped: Vec<LineNote>,
    /// Lines that loaded with a change or a caveat (host bits masked, a second address).
    pub warnings: Vec<LineNote>,
    /// Entries whose host bits were masked.
    pub masked: usize,
    /// The next moment what loads changes (Unix seconds): the earliest end of validity of what
    /// loaded (STIX `valid_until`, the decay of a MISP attribute) or start of validity of what
    /// did not yet (STIX `valid_from`). The list is parsed again then.
    pub changes_at: Option<u64>,
    /// Records skipped because their validity has passed.
    pub expired: usize,
    /// Records skipped because their validity has not begun (STIX `valid_from` to come).
    pub pending: usize,
    /// How many loaded fields were of each kind.
    pub kinds: BTreeMap<Kind, usize>,
}

impl ParsedList {
    fn new(path: &Path, format: Format, opts: &ListOptions) -> Self {
        Self {
            name: path
                .file_name()
                .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned()),
            path: path.to_path_buf(),
            format,
            direction: opts.direction,
            misp_all: opts.misp_all,
            ..Default::default()
        }
    }

    /// A list read the same way, holding nothing yet (a piece of a parallel parse).
    fn empty_like(&self) -> Self {
        let (name, path) = (self.name.clone(), self.path.clone());
        let (format, direction, misp_all) = (self.format, self.direction, self.misp_all);
        Self { name, path, format, direction, misp_all, ..Default::default() }
    }

    /// Appends `part`, whose lines follow the `before` lines read so far.
    fn absorb(&mut self, part: ParsedList, before: usize) {
        let shift = |notes: Vec<LineNote>| {
            notes.into_iter().map(move |n| LineNote { line: n.line + before, ..n })
        };
        if self.entries.is_empty() && before == 0 {
            // The first piece's entries become the list's, not copied (a million of them).
            self.entries = part.entries;
        } else {
            let entries = part.entries.into_iter().map(|e| Entry { line: e.line + before, ..e });
            self.entries.extend(entries);
        }
        let domains = part.domains.into_iter().map(|d| DomainEntry { line: d.line + before, ..d });
        self.domains.extend(domains);
        self.skipped.extend(shift(part.skipped));
        self.warnings.extend(shift(part.warnings));
        self.masked += part.masked;
        self.expired += part.expired;
        self.pending += part.pending;
        self.changes_at = self.changes_at.into_iter().chain(part.changes_at).min();
        for (kind, n) in part.kinds {
            *self.kinds.entry(kind).or_default() += n;
        }
    }

    /// Adds one field (already cut out of its line or record).
    fn push_field(&mut self, line: usize, field: &str) {
        self.push_field_as(line, field, None);
    }

    /// Adds one field whose record says which packets it blocks (`said`), unless the list
    /// says otherwise.
    fn push_field_as(&mut self, line: usize, field: &str, said: Option<Direction>) {
        match token::classify(field) {
            Ok((target, kind)) => self.push(line, target, kind, said),
            Err(reason) => self.skip(line, reason),
        }
    }

    fn push(&mut self, line: usize, target: Target, kind: Kind, said: Option<Direction>) {
        *self.kinds.entry(kind).or_default() += 1;
        let direction = self.direction.or(said).unwrap_or_default();
        match target {
            Target::Net { net, masked } => {
                if masked {
                    self.masked += 1;
                    self.warnings
                        .push(LineNote { line, reason: format!("host bits set, loaded as {net}") });
                }
                self.entries.push(Entry { net, line, direction });
            }
            Target::Domain(name) => self.domains.push(DomainEntry { name, line, direction }),
        }
    }

    /// Adds a bare IPv4 address (its kind is counted by the caller).
    fn push_ipv4(&mut self, line: usize, ip: std::net::Ipv4Addr) {
        let direction = self.direction.unwrap_or_default();
        self.entries.push(Entry { net: IpNet::V4(ip.into()), line, direction });
    }

    fn warn(&mut self, line: usize, reason: String) {
        self.warnings.push(LineNote { line, reason });
    }

    fn skip(&mut self, line: usize, reason: String) {
        self.skipped.push(LineNote { line, reason });
    }

    /// Number of usable entries (networks and domains).
    pub fn len(&self) -> usize {
        self.entries.len() + self.domains.len()
    }

    /// Which packets its entries block, in words: the list's direction, or how many entries
    /// block which when the records said (`shape`: its entries' counts).
    pub fn direction_text(&self, shape: &Shape) -> String {
        if let Some(d) = self.direction {
            return d.to_string();
        }
        let mut count = shape.directions;
        self.domains.iter().for_each(|d| count[Shape::direction_index(d.direction)] += 1);
        let each: Vec<String> = Shape::DIRECTIONS
            .iter()
            .zip(count)
            .filter(|(_, n)| *n > 0)
            .map(|(d, n)| format!("{n} {d}"))
            .collect();
        match each.len() {
            0 => "both".into(),
            1 => Shape::DIRECTIONS[count.iter().position(|n| *n > 0).unwrap_or(0)].to_string(),
            _ => format!("per entry ({})", each.join(", ")),
        }
    }

    /// True when nothing usable was found.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when the list holds nothing now only because of time: every record it skipped had
    /// ended or had not begun (an empty list in force, not a broken one).
    pub fn all_out_of_time(&self) -> bool {
        let timed = self.expired + self.pending;
        self.is_empty() && timed > 0 && self.skipped.len() == timed
    }
}

/// Parses a list text.
pub fn parse_text(path: &Path, text: &str, opts: &ListOptions) -> Result<ParsedList> {
    // A UTF-8 byte order mark is no part of the first entry, whatever the format.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (format, certain) = match opts.format {
        Some(f) => (f, true),
        None => detect::detect_how(text, opts.column.is_some()),
    };
    let mut list = ParsedList::new(path, format, opts);
    match format {
        Format::Plain | Format::Netset | Format::SpamhausDrop | Format::Trail => {
            lines::parse_lines(text, &mut list)
        }
        Format::Hosts => lines::parse_hosts(text, &mut list),
        Format::Csv => csv::parse(text, opts.column.as_deref(), &mut list)
            .with_context(|| format!("{} (csv)", path.display()))?,
        Format::SpamhausJson => json::parse_spamhaus(text, &mut list),
        Format::Crowdsec => json::parse_crowdsec(text, &mut list)
            .with_context(|| format!("{} (crowdsec)", path.display()))?,
        Format::Stix => stix::parse(text, &mut list, crate::clock::now())
            .with_context(|| format!("{} (stix)", path.display()))?,
        Format::Misp => misp::parse_json(text, &mut list, crate::clock::now())
            .with_context(|| format!("{} (misp)", path.display()))?,
        Format::MispCsv => misp::parse_csv(text, &mut list)
            .with_context(|| format!("{} (misp-csv)", path.display()))?,
    }
    // Records that ended (or not begun) are a list that holds nothing now, not an unknown format.
    let timed = list.expired + list.pending;
    // A document whose structure said its format is that format, whatever it holds.
    if list.is_empty() && list.skipped.len() > timed && !certain {
        let first = &list.skipped[0];
        bail!(
            "{}: no known format fits (tried stix, misp, crowdsec-json, spamhaus-json, misp-csv, csv with a \
             header, hosts, plain/trail lines; read as {format}): {} lines skipped, the first at line {}: {}",
            path.display(),
            list.skipped.len(),
            first.line,
            first.reason
        );
    }
    Ok(list)
}

/// Reads and parses a list file. Invalid UTF-8 is replaced, so one bad byte costs one line.
pub fn parse_file(path: &Path, opts: &ListOptions) -> Result<ParsedList> {
    parse_text(path, &String::from_utf8_lossy(&read_list(path, DEFAULT_MAX_BYTES)?), opts)
}

/// The bytes of the list at `path`: a file, or a MISP feed (a directory holding
/// `manifest.json`, or the manifest itself) read as one list.
pub fn read_list(path: &Path, max: u64) -> Result<Vec<u8>> {
    match misp_feed::feed_dir(path) {
        Some(dir) => misp_feed::read_dir(&dir, max),
        None => read_file(path, max),
    }
}

/// A hash of a list's bytes: a refresh that reads the same bytes again parses nothing.
pub fn content_hash(bytes: &[u8]) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    BuildHasherDefault::<DefaultHasher>::default().hash_one(bytes)
}

/// The largest list read unless configured otherwise (`max_bytes`).
pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;

/// The bytes of a list file of at most `max` bytes. A device, FIFO or directory is refused
/// before it is opened: `/dev/zero` would fill memory, a FIFO would hang.
pub fn read_file(path: &Path, max: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let cannot = || format!("cannot read list file {}", path.display());
    let meta = std::fs::metadata(path).with_context(cannot)?;
    if !meta.is_file() {
        bail!(
            "{} is not a regular file (a device, FIFO or directory): a list is a file",
            path.display()
        );
    }
    let mut bytes = Vec::with_capacity(meta.len().min(max) as usize);
    std::fs::File::open(path)
        .with_context(cannot)?
        .take(max + 1)
        .read_to_end(&mut bytes)
        .with_context(cannot)?;
    if bytes.len() as u64 > max {
        bail!(
            "{} is larger than {max} bytes (raise the list's max_bytes in the configuration, or \
             --max-bytes on the command line)",
            path.display()
        );
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_shared;
