//! The daemon's configuration (`/etc/takedown/takedown.toml`): interfaces, lists (file or URL,
//! refresh interval, direction, format), allowlist, guards, DNS. `takedown run --iface/--list`
//! builds the same structure from its options.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

pub use super::list_config::ListConfig;
use crate::{
    maps::filter::Mode,
    plan::{
        guards::GuardOptions,
        pipeline::{self, ListSpec, Pipeline},
    },
};

/// The default configuration file.
pub const DEFAULT_CONFIG: &str = "/etc/takedown/takedown.toml";

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Interfaces to attach to (inside and outside on a gateway).
    pub interfaces: Vec<String>,
    /// XDP attach mode.
    #[serde(default)]
    pub mode: ModeName,
    /// Also filter what leaves the interfaces (tc egress): what the gateway itself sends.
    #[serde(default)]
    pub egress: bool,
    /// Where the filter is pinned (default /sys/fs/bpf/takedown).
    pub pin_dir: Option<PathBuf>,
    /// takedown's state directory (default /var/lib/takedown).
    pub state_dir: Option<PathBuf>,
    /// Allowlist files.
    #[serde(default)]
    pub allow: Vec<PathBuf>,
    #[serde(default)]
    pub guards: Guards,
    #[serde(default)]
    pub dns: Dns,
    #[serde(default)]
    pub report: Report,
    /// The connection journal (off unless given).
    pub journal: Option<super::journal::JournalConfig>,
    /// The takedown lists.
    #[serde(default, rename = "list")]
    pub lists: Vec<ListConfig>,
}

/// Attach mode as written in the file.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ModeName {
    #[default]
    Auto,
    Native,
    Skb,
}

impl From<ModeName> for Mode {
    fn from(m: ModeName) -> Self {
        match m {
            ModeName::Auto => Mode::Auto,
            ModeName::Native => Mode::Native,
            ModeName::Skb => Mode::Skb,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Guards {
    #[serde(default)]
    pub force_broad: bool,
    #[serde(default)]
    pub allow_special: bool,
    #[serde(default)]
    pub block_own: bool,
    /// Accept a refresh that loses more than half of a list's entries.
    #[serde(default)]
    pub accept_shrink: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dns {
    #[serde(default)]
    pub resolvers: Vec<SocketAddr>,
    #[serde(default = "d60")]
    pub min_ttl: u64,
    #[serde(default = "d3600")]
    pub max_ttl: u64,
    #[serde(default = "d32")]
    pub concurrency: usize,
    #[serde(default = "d3")]
    pub timeout: u64,
    #[serde(default = "d15")]
    pub wait: u64,
}

fn d60() -> u64 {
    60
}
fn d3600() -> u64 {
    3600
}
fn d32() -> usize {
    32
}
fn d3() -> u64 {
    3
}
fn d15() -> u64 {
    15
}

impl Default for Dns {
    fn default() -> Self {
        Self {
            resolvers: vec![],
            min_ttl: 60,
            max_ttl: 3600,
            concurrency: 32,
            timeout: 3,
            wait: 15,
        }
    }
}

/// Reporting: events from the kernel, the infected-host table, metrics.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// Events a second each CPU may report (0: none).
    #[serde(default = "d100")]
    pub event_rate: u32,
    /// Events a CPU may report at once after a quiet time.
    #[serde(default = "d200")]
    pub event_burst: u32,
    /// Inside hosts kept in the host table (oldest forgotten first).
    #[serde(default = "d100k")]
    pub max_hosts: usize,
    /// Append one JSON line per new infected host to this file (for a SIEM).
    pub new_host_log: Option<PathBuf>,
    /// Prometheus metrics address ("" disables).
    #[serde(default = "metrics_default")]
    pub metrics: String,
    /// Allow a metrics address that is not loopback.
    #[serde(default)]
    pub metrics_remote: bool,
}

fn d100() -> u32 {
    100
}
fn d200() -> u32 {
    200
}
fn d100k() -> usize {
    100_000
}
fn metrics_default() -> String {
    "127.0.0.1:9645".into()
}

impl Default for Report {
    fn default() -> Self {
        Self {
            event_rate: 100,
            event_burst: 200,
            max_hosts: 100_000,
            new_host_log: None,
            metrics: metrics_default(),
            metrics_remote: false,
        }
    }
}

impl Config {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read configuration {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("{}", path.display()))
    }

    /// Parses and checks a configuration text.
    pub fn parse(text: &str) -> Result<Self> {
        let config: Config = toml::from_str(text).context("invalid configuration")?;
        config.check()?;
        Ok(config)
    }

    /// Checks the whole configuration; the error names every problem, one a line.
    pub fn check(&self) -> Result<()> {
        let problems = self.problems();
        if !problems.is_empty() {
            bail!("{}", problems.join("\n"));
        }
        Ok(())
    }

    /// Every problem of the configuration.
    fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.interfaces.is_empty() {
            out.push("no interface configured".into());
        }
        let mut names = std::collections::HashSet::new();
        let mut files = std::collections::HashMap::new();
        for l in &self.lists {
            if l.name == super::manual::MANUAL || !names.insert(&l.name) {
                out.push(format!("list name {:?} is reserved or used twice", l.name));
            }
            // Names become the names of the list's cache and state files: one file a name.
            let file = super::state::safe_name(&l.name);
            if let Some(other) = files.insert(file, &l.name).filter(|o| **o != l.name) {
                out.push(format!(
                    "list names {other:?} and {:?} name the same cache and state files: rename one",
                    l.name
                ));
            }
            out.extend(l.problems().into_iter().map(|p| format!("list {:?}: {p}", l.name)));
        }
        if !self.lists.iter().any(|l| l.enabled) {
            out.push("no enabled list configured".into());
        }
        let state = self.state_dir.as_ref().map(super::state::StateDir::new);
        out.extend(state.and_then(|s| s.path_problem()));
        if self.dns.min_ttl > self.dns.max_ttl {
            out.push(format!(
                "dns: min_ttl ({}) is above max_ttl ({})",
                self.dns.min_ttl, self.dns.max_ttl
            ));
        }
        if let Some(j) = &self.journal {
            out.extend(j.problem());
            let stray = j.inside.iter().filter(|i| !self.interfaces.contains(i));
            out.extend(
                stray
                    .map(|i| format!("journal: inside interface {i} is not one of the interfaces")),
            );
        }
        if let Some(dir) = self.report.new_host_log.as_ref().and_then(|p| p.parent())
            && !dir.as_os_str().is_empty()
            && !dir.is_dir()
        {
            out.push(format!("report: new_host_log's directory {} does not exist", dir.display()));
        }
        out
    }

    /// The enabled lists.
    pub fn enabled(&self) -> impl Iterator<Item = &ListConfig> {
        self.lists.iter().filter(|l| l.enabled)
    }

    /// How each enabled list is read; list i holds bit i.
    pub fn specs(&self) -> Result<Vec<ListSpec>> {
        let specs: Vec<ListSpec> = self.enabled().map(ListConfig::spec).collect();
        pipeline::check_count(specs.len())?;
        Ok(specs)
    }

    /// The guards the lists are held to.
    pub fn guard_options(&self) -> GuardOptions {
        GuardOptions {
            force_broad: self.guards.force_broad,
            allow_special: self.guards.allow_special,
        }
    }

    /// The pipeline of this configuration: its allowlist, guards and own addresses.
    pub fn pipeline(&self) -> Result<Pipeline> {
        Pipeline::new(&self.allow, self.guard_options(), !self.guards.block_own)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lists::Format;

    #[test]
    fn the_shipped_example_configuration_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/takedown.toml");
        let c = Config::load(&path).unwrap();
        assert_eq!(c.interfaces, ["eth1", "eth0"]);
        assert_eq!(c.lists.len(), 3);
        assert_eq!(c.lists[1].refresh, 600);
        assert_eq!(c.lists[1].format, Some(Format::Csv));
        assert_eq!(c.dns.max_ttl, 3600);
        // The commented examples are valid too, once uncommented (files need not exist here).
        let text = std::fs::read_to_string(&path).unwrap();
        let (mut uncommented, mut inside) = (String::new(), false);
        for line in text.lines() {
            inside = (inside || line == "# [[list]]") && line.starts_with("# ");
            if inside {
                uncommented.push_str(&format!("{}\n", &line[2..]));
            }
        }
        let examples: Config = toml::from_str(&format!("interfaces = [\"eth0\"]\n{uncommented}"))
            .unwrap_or_else(|e| panic!("{e}\n{uncommented}"));
        let names: Vec<&str> = examples.lists.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["crowdsec", "cert-signed", "misp-osint", "cert-taxii"]);
        assert!(examples.lists[3].taxii.as_ref().is_some_and(|t| t.problems().is_empty()));
    }

    #[test]
    fn a_state_directory_too_long_for_its_socket_is_refused() {
        let dir = format!("/var/lib/{}", "d".repeat(100));
        let text = format!(
            "interfaces = [\"eth0\"]\nstate_dir = \"{dir}\"\n[[list]]\nname = \"a\"\nfile = \"/a\"\n"
        );
        let err = format!("{:#}", Config::parse(&text).unwrap_err());
        assert!(err.contains("is too long: its control socket's path would be 122 bytes"), "{err}");
        let short = text.replace(&"d".repeat(100), "takedown");
        assert!(Config::parse(&short).is_ok());
    }

    #[test]
    fn names_that_would_share_a_cache_file_are_refused() {
        let list =
            |name: &str| format!("[[list]]\nname = \"{name}\"\nurl = \"https://x.example/l\"\n");
        let text = format!("interfaces = [\"eth0\"]\n{}{}", list("cert feed"), list("cert_feed"));
        let err = format!("{:#}", Config::parse(&text).unwrap_err());
        assert!(err.contains("\"cert feed\" and \"cert_feed\" name the same cache"), "{err}");
    }

    #[test]
    fn times_past_what_the_daemon_can_count_are_refused() {
        let list =
            "interfaces = [\"eth0\"]\n[[list]]\nname = \"a\"\nurl = \"https://x.example/l\"\n";
        for (line, why) in [
            ("refresh = 9223372036854775807", "refresh = 9223372036854775807 is more than"),
            ("timeout = 86400", "timeout = 86400 is more than the 3600"),
            ("attempts = 1000", "attempts = 1000 is more than the 10 tries"),
        ] {
            let err = format!("{:#}", Config::parse(&format!("{list}{line}\n")).unwrap_err());
            assert!(err.contains(why), "{line}: {err}");
        }
        assert!(Config::parse(&format!("{list}refresh = 31536000\n")).is_ok());
    }

    #[test]
    fn a_monitor_list_reaches_the_pipeline_as_one() {
        let text = "interfaces = [\"eth0\"]\n[[list]]\nname = \"a\"\nfile = \"/a\"\n\
                    [[list]]\nname = \"w\"\nfile = \"/w\"\nmonitor = true\n";
        let c: Config = toml::from_str(text).unwrap();
        let specs = c.specs().unwrap();
        assert_eq!(
            specs.iter().map(|s| (s.name.as_str(), s.monitor)).collect::<Vec<_>>(),
            [("a", false), ("w", true)]
        );
    }

    #[test]
    fn mistakes_are_named() {
        let bad = |text: &str| {
            toml::from_str::<Config>(text)
                .map_err(|e| e.to_string())
                .and_then(|c| c.check().map_err(|e| e.to_string()))
        };
        assert!(bad("interfaces = []\n").unwrap_err().contains("no interface"));
        let two =
            "interfaces = [\"eth0\"]\n[[list]]\nname = \"a\"\nfile = \"/x\"\nurl = \"http://x\"\n";
        assert!(
            bad(two).unwrap_err().contains("exactly one of `file`, `url`, `crowdsec` and `taxii`")
        );
        let manual = "interfaces = [\"eth0\"]\n[[list]]\nname = \"manual\"\nfile = \"/x\"\n";
        assert!(bad(manual).unwrap_err().contains("reserved"));
        assert!(bad("interfaces = [\"eth0\"]\nbogus = 1\n").unwrap_err().contains("bogus"));
    }

    #[test]
    fn every_problem_is_named_one_a_line() {
        let text = "interfaces = []\n[dns]\nmin_ttl = 600\nmax_ttl = 60\n\
                    [report]\nnew_host_log = \"/no/such/dir/hosts.jsonl\"\n\
                    [[list]]\nname = \"a\"\nurl = \"file:///etc/passwd\"\n\
                    [[list]]\nname = \"b\"\nurl = \"ftp://x.example/l\"\ntimeout = 0\nmax_bytes = 0\n\
                    [[list]]\nname = \"c\"\nurl = \"https://u:secret@x.example/l\"\nattempts = 0\n";
        let c: Config = toml::from_str(text).unwrap();
        let e = c.check().unwrap_err().to_string();
        let lines: Vec<&str> = e.lines().collect();
        assert_eq!(lines.len(), 8, "{e}");
        for want in [
            "no interface configured",
            "list \"a\": url file:///etc/passwd: only http and https are fetched",
            "list \"b\": url ftp://x.example/l: only http and https are fetched",
            "list \"b\": timeout is 0",
            "list \"b\": max_bytes is 0",
            "list \"c\": attempts is 0",
            "dns: min_ttl (600) is above max_ttl (60)",
            "report: new_host_log's directory /no/such/dir does not exist",
        ] {
            assert!(lines.contains(&want), "{want}: {e}");
        }
        assert!(!e.contains("secret"));
    }
}
