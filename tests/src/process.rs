//! Running the `takedown` binary inside a test namespace, with bounded waits.

use std::{
    io::{BufRead, BufReader, Read},
    path::PathBuf,
    process::{Child, ExitStatus, Output, Stdio},
    sync::{Arc, Mutex, mpsc},
    time::{Duration, Instant},
};

use anyhow::{Result, bail};
use td_netns::NetNs;

/// The binary under test: $TAKEDOWN_BIN (set by `cargo xtask test`) or target/debug/takedown.
pub fn takedown_bin() -> PathBuf {
    std::env::var_os("TAKEDOWN_BIN").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/takedown")
    })
}

/// The arguments with `--ephemeral` added to a `takedown run` that names no pin directory: a
/// test never pins into the machine's own /sys/fs/bpf/takedown.
fn guarded(args: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    if args.first() == Some(&"run")
        && !args.contains(&"--pin-dir")
        && !args.contains(&"--ephemeral")
    {
        out.push("--ephemeral".into());
    }
    out
}

/// Runs `takedown args` to completion (in `ns` when given). `takedown run` is refused outside
/// a test namespace: a test must never attach to the machine's own interfaces, not even by
/// accident when an expected error does not happen.
pub fn run_cli(ns: Option<&NetNs>, args: &[&str]) -> Output {
    assert!(
        ns.is_some() || args.first() != Some(&"run"),
        "`takedown run` in a test must run inside a test namespace"
    );
    let bin = takedown_bin();
    let mut cmd = match ns {
        Some(ns) => ns.command(bin.to_str().unwrap()),
        None => std::process::Command::new(&bin),
    };
    cmd.args(guarded(args)).output().expect("run takedown")
}

/// A `takedown run` in the background.
pub struct Running {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

/// Copies `pipe` line by line into `sink`; calls `on_line` for each line.
fn drain(
    pipe: impl Read + Send + 'static,
    sink: Arc<Mutex<String>>,
    on_line: impl Fn(&str) + Send + 'static,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            sink.lock().unwrap().push_str(&line);
            sink.lock().unwrap().push('\n');
            on_line(&line);
        }
    });
}

impl Running {
    /// Starts `takedown args` in `ns` and waits (at most 120 s) until it says it is filtering.
    pub fn start(ns: &NetNs, args: &[&str]) -> Result<Self> {
        let mut cmd = ns.command(takedown_bin().to_str().unwrap());
        cmd.args(guarded(args));
        Self::spawn(cmd)
    }

    /// Starts `cmd` (a `takedown run`, perhaps through a wrapper) and waits (at most 120 s)
    /// until it says it is filtering.
    pub fn spawn(mut cmd: std::process::Command) -> Result<Self> {
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        drain(child.stdout.take().unwrap(), stdout.clone(), move |line| {
            if line.starts_with("filtering") {
                let _ = tx.send(());
            }
        });
        drain(child.stderr.take().unwrap(), stderr.clone(), |_| {});
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if rx.recv_timeout(Duration::from_millis(100)).is_ok() {
                return Ok(Self { child, stdout, stderr });
            }
            if let Some(status) = child.try_wait()? {
                // What it wrote is drained into `stdout` and `stderr` (give the drains a moment).
                std::thread::sleep(Duration::from_millis(200));
                bail!(
                    "takedown exited ({status}) before filtering:\n{}{}",
                    stdout.lock().unwrap(),
                    stderr.lock().unwrap()
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("takedown did not start filtering within 120 s");
            }
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its resident memory in KiB (VmRSS).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// What it printed on stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// What it printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Kills it with SIGKILL (a crash) and reaps it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits (at most 20 s) for it to exit by itself; returns its status and stdout.
    pub fn wait_exit(mut self) -> Result<(ExitStatus, String)> {
        self.reap()
    }

    /// Sends SIGINT and waits (at most 20 s) for it to exit; returns its status and stdout.
    pub fn stop(mut self) -> Result<(ExitStatus, String)> {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        self.reap()
    }

    fn reap(&mut self) -> Result<(ExitStatus, String)> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait()? {
                // Let the reader thread drain the pipe.
                std::thread::sleep(Duration::from_millis(100));
                return Ok((status, self.stdout()));
            }
            if Instant::now() > deadline {
                bail!("takedown did not exit within 20 s of SIGINT");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The packets of counter `name` on the line starting with "final:" of a daemon's output
/// (the number right after the name); None when there is no such line or counter.
pub fn final_count(stdout: &str, name: &str) -> Option<u64> {
    let line = stdout.lines().find(|l| l.starts_with("final:"))?;
    let rest = line.split(&format!(" {name} ")).nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

/// A child process that is killed and reaped when dropped, even when a test fails.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
