//! medallion, the OASIS TAXII 2.1 reference server (pip-installed by `cargo xtask setup` into
//! the virtual environment `cargo xtask test` names in `TAKEDOWN_TEST_VENV`), started by a test inside its namespace on loopback: in-memory backend, one API
//! root with one collection, basic authentication. Objects are added while it runs with the
//! protocol's own `POST .../objects/` (medallion writes nothing back to its data file). Stopped
//! (SIGTERM) on drop.

use std::{
    process::{Child, Stdio},
    time::Duration,
};

use anyhow::{Context, Result, bail};
use td_netns::NetNs;

use crate::{TempDir, local_server};

/// The collection's id.
pub const COLLECTION: &str = "91a7b528-80eb-42ed-a74d-c6fbd5a26116";
const PORT: u16 = 18081;
const MEDIA_TYPE: &str = "application/taxii+json;version=2.1";

pub struct Medallion {
    child: Child,
    dir: TempDir,
    ns: String,
    user: String,
}

impl Medallion {
    /// Starts medallion in `ns`, accepting `user`:`password`.
    pub fn start(ns: &NetNs, user: &str, password: &str) -> Result<Self> {
        let venv = std::env::var("TAKEDOWN_TEST_VENV")
            .context("TAKEDOWN_TEST_VENV is not set: run the tests with cargo xtask test")?;
        let bin = format!("{venv}/bin/medallion");
        if !std::path::Path::new(&bin).exists() {
            bail!("{bin} is missing: run cargo xtask setup (medallion, from PyPI)");
        }
        let dir = TempDir::new("medallion");
        let data = dir.file("data.json", &data());
        let conf = serde_json::json!({
            "backend": {"module": "medallion.backends.memory_backend",
                        "module_class": "MemoryBackend", "filename": data},
            "users": {user: password},
            "taxii": {"max_page_size": 100},
        });
        let conf = dir.file("conf.json", &conf.to_string());
        let log = std::fs::File::create(dir.0.join("medallion.log"))?;
        let child = ns
            .command(&bin)
            .args(["--host", "127.0.0.1", "--port", &PORT.to_string(), &conf])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start medallion")?;
        let ns = ns.name().to_string();
        let mut server = Self { child, dir, ns, user: format!("{user}:{password}") };
        server.wait_ready()?;
        Ok(server)
    }

    /// The API root, as a takedown list names it.
    pub fn api_root(&self) -> String {
        format!("http://127.0.0.1:{PORT}/api1/")
    }

    /// Adds `objects` (STIX objects, JSON) to the collection, as a TAXII client publishes
    /// them; fails unless medallion took every one.
    pub fn add(&self, objects: &[serde_json::Value]) -> Result<()> {
        let envelope = serde_json::json!({ "objects": objects }).to_string();
        let url = format!("{}collections/{COLLECTION}/objects/", self.api_root());
        let out = self.curl(
            &["-X", "POST", "-H", &format!("Content-Type: {MEDIA_TYPE}")],
            &url,
            &envelope,
        )?;
        let status: serde_json::Value = serde_json::from_str(&out).context(out.clone())?;
        if status["success_count"] != objects.len() {
            bail!("medallion did not take every object: {status}");
        }
        Ok(())
    }

    /// medallion's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("medallion.log")).unwrap_or_default()
    }

    fn curl(&self, args: &[&str], url: &str, body: &str) -> Result<String> {
        let body_file = self.dir.file("body.json", body);
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", &self.ns, "curl", "-s", "-u", &self.user])
            .args(["-H", &format!("Accept: {MEDIA_TYPE}")])
            .args(args)
            .args(["--data-binary", &format!("@{body_file}"), url])
            .output()
            .context("cannot run curl")?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Waits (15 s at most) until discovery answers.
    fn wait_ready(&mut self) -> Result<()> {
        let url = format!("http://127.0.0.1:{PORT}/taxii2/");
        let accept = format!("Accept: {MEDIA_TYPE}");
        let args = ["-u", self.user.as_str(), "-H", accept.as_str()];
        let log = || std::fs::read_to_string(self.dir.0.join("medallion.log")).unwrap_or_default();
        let ns = (self.ns.as_str(), &mut self.child);
        local_server::wait_for_200(ns, &args, &url, Duration::from_secs(15), log)
    }
}

impl Drop for Medallion {
    fn drop(&mut self) {
        local_server::stop(&mut self.child);
    }
}

/// The smallest data file medallion serves: discovery, one API root, one empty collection
/// (`status`, `max_content_length`, `media_types` and `manifest` are needed to take a POST).
fn data() -> String {
    let root = format!("http://127.0.0.1:{PORT}/api1/");
    serde_json::json!({
        "/discovery": {"title": "takedown test TAXII", "default": root, "api_roots": [root]},
        "api1": {
            "information": {"title": "api1", "versions": [MEDIA_TYPE], "max_content_length": 10485760},
            "status": [],
            "collections": [{
                "id": COLLECTION, "title": "takedown IOCs", "can_read": true, "can_write": true,
                "media_types": ["application/stix+json;version=2.1"], "objects": [], "manifest": []
            }]
        }
    })
    .to_string()
}
