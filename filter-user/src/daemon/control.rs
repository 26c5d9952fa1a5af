//! The daemon's control socket (`control.sock` in the state directory): one JSON request a
//! line, one JSON reply a line. `takedown refresh` and `takedown add`/`remove` use it when a
//! daemon runs.

use std::{
    io::{BufRead, BufReader, Write},
    os::unix::net::UnixStream,
    path::Path,
    time::Duration,
};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    /// Refresh one list, or all of them.
    Refresh { list: Option<String> },
    /// The manual list changed on disk: reload it and apply.
    ReloadManual,
}

impl Request {
    /// Reads one request line.
    pub fn parse(line: &str) -> Result<Self> {
        serde_json::from_str(line).context("bad request")
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Reply {
    pub ok: bool,
    pub error: Option<String>,
    pub results: Vec<RefreshResult>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RefreshResult {
    pub list: String,
    pub ok: bool,
    pub message: String,
}

/// Sends `request` to the daemon listening on `socket` and waits (at most `timeout`) for its reply.
pub fn call(socket: &Path, request: &Request, timeout: Duration) -> Result<Reply> {
    let mut stream = UnixStream::connect(socket)
        .with_context(|| format!("cannot reach the takedown daemon at {}", socket.display()))?;
    stream.set_read_timeout(Some(timeout))?;
    let mut line = serde_json::to_string(request)?;
    line.push('\n');
    stream.write_all(line.as_bytes())?;
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply).context("no reply from the takedown daemon")?;
    if reply.is_empty() {
        bail!("the takedown daemon closed the connection without a reply");
    }
    Ok(serde_json::from_str(&reply)?)
}
