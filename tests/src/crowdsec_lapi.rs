//! CrowdSec's own Local API (Debian's `crowdsec` package, installed by `cargo xtask setup`),
//! started by a test inside its namespace on loopback, with a private configuration and
//! database in a temporary directory: no central API, no log reading (`-no-cs`). Decisions are
//! made and deleted with the package's own `cscli`. Stopped (SIGTERM) on drop.

use std::{
    path::PathBuf,
    process::{Child, Stdio},
    time::Duration,
};

use anyhow::{Context, Result, bail};
use td_netns::NetNs;

use crate::{TempDir, local_server};

/// The port the Local API listens on, on the namespace's loopback.
const PORT: u16 = 18080;

pub struct CrowdsecLapi {
    child: Option<Child>,
    dir: TempDir,
    ns: String,
}

impl CrowdsecLapi {
    /// Starts a Local API in `ns` that knows the bouncer key `key`.
    pub fn start(ns: &NetNs, key: &str) -> Result<Self> {
        for tool in ["/usr/bin/crowdsec", "/usr/bin/cscli"] {
            if !std::path::Path::new(tool).exists() {
                bail!("{tool} is missing: run cargo xtask setup (Debian's crowdsec package)");
            }
        }
        let dir = TempDir::new("crowdsec-lapi");
        let d = dir.0.display().to_string();
        dir.file("profiles.yaml", PROFILES);
        dir.file("config.yaml", &config(&d));
        let mut lapi = Self { child: None, dir, ns: ns.name().to_string() };
        lapi.cscli(&[
            "machines",
            "add",
            "takedown-test",
            "--password",
            "takedown-test-machine-pw",
            "-f",
            &format!("{d}/local_api_credentials.yaml"),
        ])?;
        lapi.cscli(&["bouncers", "add", "takedown", "-k", key])?;
        let child = ns
            .command("env")
            .args(["-u", "NOTIFY_SOCKET", "crowdsec", "-c", &format!("{d}/config.yaml"), "-no-cs"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(format!("{d}/lapi.log"))?)
            .spawn()
            .context("cannot start crowdsec")?;
        lapi.child = Some(child);
        lapi.wait_ready(key)?;
        Ok(lapi)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{PORT}")
    }

    /// Runs `cscli` of this Local API; its stdout.
    pub fn cscli(&self, args: &[&str]) -> Result<String> {
        let config = self.dir.0.join("config.yaml");
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", &self.ns, "cscli", "-c"])
            .arg(&config)
            .args(["--error"])
            .args(args)
            .output()
            .context("cannot run cscli")?;
        if !out.status.success() {
            bail!("cscli {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The Local API's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.0.join("lapi.log")
    }

    /// Waits (10 s at most) until the stream answers the bouncer.
    fn wait_ready(&mut self, key: &str) -> Result<()> {
        let url = format!("{}/v1/decisions/stream?startup=true", self.url());
        let header = format!("X-Api-Key: {key}");
        let child = self.child.as_mut().context("crowdsec is not started")?;
        let log = || std::fs::read_to_string(self.dir.0.join("lapi.log")).unwrap_or_default();
        let limit = Duration::from_secs(10);
        local_server::wait_for_200((&self.ns, child), &["-H", &header], &url, limit, log)
    }
}

impl Drop for CrowdsecLapi {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            local_server::stop(child);
        }
    }
}

/// The one profile a Local API needs to start (no agent runs: it decides nothing itself).
const PROFILES: &str = "name: default_ip_remediation\nfilters:\n - Alert.Remediation == true && \
                        Alert.GetScope() == \"Ip\"\ndecisions:\n - type: ban\n   duration: 4h\n\
                        on_success: break\n";

/// A configuration with everything under `d`: a sqlite database, no central API (no
/// `online_client`), no metrics port, the API on loopback. `daemonize: true` only makes
/// crowdsec 1.4.6 stop cleanly on SIGTERM (it does not fork).
fn config(d: &str) -> String {
    format!(
        "common:\n  daemonize: true\n  log_media: stdout\n  log_level: info\n\
         config_paths:\n  config_dir: {d}/\n  data_dir: {d}/\n\
         db_config:\n  type: sqlite\n  db_path: {d}/crowdsec.db\n  use_wal: false\n\
         api:\n  client:\n    credentials_path: {d}/local_api_credentials.yaml\n\
         \x20 server:\n    listen_uri: 127.0.0.1:{PORT}\n    profiles_path: {d}/profiles.yaml\n"
    )
}
