//! A server process a test starts in its namespace (CrowdSec's Local API, medallion): waiting
//! until it answers, and stopping it (SIGTERM, then SIGKILL) however the test ends.

use std::{
    process::Child,
    time::{Duration, Instant},
};

use anyhow::{Result, bail};

/// Waits (at most `limit`) until `curl` in namespace `ns`, with `args`, gets HTTP 200 from
/// `url`; fails when `child` exits first, with `log()` (what the server said).
pub fn wait_for_200(
    (ns, child): (&str, &mut Child),
    args: &[&str],
    url: &str,
    limit: Duration,
    log: impl Fn() -> String,
) -> Result<()> {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if let Some(status) = child.try_wait()? {
            bail!("the server exited ({status}): {}", log());
        }
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", ns, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}"])
            .args(args)
            .arg(url)
            .output()?;
        if out.stdout == b"200" {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("the server did not answer within {limit:?}: {}", log())
}

/// Stops `child`: SIGTERM, then SIGKILL after 5 s; reaped.
pub fn stop(child: &mut Child) {
    // SAFETY: kill has no memory preconditions; the pid is our own child's, not yet reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end && matches!(child.try_wait(), Ok(None)) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}
