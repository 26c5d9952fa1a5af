//! `cargo xtask test --kernels`: proves the release build on the stock kernels operators run.
//! For each kernel of [`KERNELS`] it fetches Debian's unsigned image with `apt-get download`,
//! unpacks it with `dpkg -x` (never installs it), builds an initramfs holding busybox, `ip`,
//! `takedown` (with the libraries they link), the kernel's veth module and `check.sh` as
//! `/init`, boots it with `qemu-system-x86_64` in software emulation (no network card) and
//! reads the check's verdict from the serial console.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use crate::{build, setup::run_ok};

/// Debian 12's stock kernels checked: 6.1.170 and 6.1.192 (`linux-image-<k>-unsigned`).
pub const KERNELS: [&str; 2] = ["6.1.0-47-amd64", "6.1.0-56-amd64"];

/// The guest's whole run, boot included, at most.
const BOOT_LIMIT: Duration = Duration::from_secs(420);

/// The check run as the guest's `/init`.
const CHECK: &str = include_str!("check.sh");

/// Boots every kernel of [`KERNELS`] on the release build and runs the check in it.
pub fn run() -> Result<()> {
    let bin = build::release()?;
    let work = build::root().join("target/kernels");
    let mut proven = Vec::new();
    for k in KERNELS {
        let started = Instant::now();
        let kernel = fetch(&work, k)?;
        let initrd = initramfs(&work, &kernel, k, &bin)?;
        let version = boot(&kernel.join(format!("boot/vmlinuz-{k}")), &initrd)
            .with_context(|| format!("kernel {k}"))?;
        proven.push(format!("{version} ({k}, {:.0} s)", started.elapsed().as_secs_f64()));
    }
    println!("kernels: the end-to-end check passed on {}", proven.join(", "));
    Ok(())
}

/// The unpacked image of kernel `k` (downloaded once, kept in `work`).
fn fetch(work: &Path, k: &str) -> Result<PathBuf> {
    let dir = work.join(k);
    if dir.join(format!("boot/vmlinuz-{k}")).is_file() {
        return Ok(dir);
    }
    std::fs::create_dir_all(work)?;
    let package = format!("linux-image-{k}-unsigned");
    println!("kernels: downloading {package}");
    run_ok(Command::new("apt-get").current_dir(work).args(["download", "-q", &package]))?;
    let deb = std::fs::read_dir(work)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(&package)))
        .with_context(|| format!("apt-get download left no {package}*.deb"))?;
    run_ok(Command::new("dpkg").arg("-x").arg(&deb).arg(&dir))?;
    std::fs::remove_file(&deb)?;
    Ok(dir)
}

/// Busybox applets the check uses.
const APPLETS: [&str; 16] = [
    "sh", "mount", "insmod", "poweroff", "sleep", "grep", "sed", "cat", "ls", "kill", "echo",
    "uname", "ping", "mkdir", "ln", "timeout",
];

/// Builds the initramfs of kernel `k` (unpacked in `kernel`) around `bin`; returns its path.
fn initramfs(work: &Path, kernel: &Path, k: &str, bin: &Path) -> Result<PathBuf> {
    let stage = work.join(format!("initramfs-{k}"));
    let _ = std::fs::remove_dir_all(&stage);
    for d in ["bin", "proc", "sys", "dev", "run", "tmp", "etc"] {
        std::fs::create_dir_all(stage.join(d))?;
    }
    std::fs::copy("/bin/busybox", stage.join("bin/busybox")).context("busybox-static")?;
    for applet in APPLETS {
        std::os::unix::fs::symlink("busybox", stage.join("bin").join(applet))?;
    }
    // iproute2's ip as `rt-ip`: busybox's shell runs its own applet for the name `ip`, and
    // iproute2 reads a name starting with `ip` as `ip <rest of the name>`.
    for (program, name) in [(bin, "takedown"), (Path::new("/usr/sbin/ip"), "rt-ip")] {
        std::fs::copy(program, stage.join("bin").join(name))?;
        for lib in libraries(program)? {
            let to = stage.join(lib.strip_prefix("/")?);
            std::fs::create_dir_all(to.parent().context("library dir")?)?;
            std::fs::copy(&lib, &to)?;
        }
    }
    let veth = kernel.join(format!("lib/modules/{k}/kernel/drivers/net/veth.ko"));
    std::fs::copy(&veth, stage.join("veth.ko")).with_context(|| veth.display().to_string())?;
    let init = stage.join("init");
    std::fs::write(&init, CHECK)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&init, std::fs::Permissions::from_mode(0o755))?;
    let out = work.join(format!("initramfs-{k}.cpio.gz"));
    let pack = format!(
        "cd '{}' && find . -print0 | cpio --null -o -H newc --quiet | gzip -1 > '{}'",
        stage.display(),
        out.display()
    );
    run_ok(Command::new("sh").args(["-c", &pack]))?;
    Ok(out)
}

/// The shared libraries `program` loads (as `ldd` lists them), the dynamic loader included.
fn libraries(program: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new("ldd").arg(program).output().context("ldd")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let paths = text.split_whitespace().filter(|w| w.starts_with('/')).map(PathBuf::from);
    Ok(paths.collect())
}

/// Boots `vmlinuz` with `initrd` and follows the check; returns the kernel's `uname -r` line.
fn boot(vmlinuz: &Path, initrd: &Path) -> Result<String> {
    let mut child = Command::new("qemu-system-x86_64")
        .args(["-accel", "tcg", "-m", "1024", "-smp", "2", "-nographic", "-no-reboot"])
        .args(["-nic", "none", "-kernel"])
        .arg(vmlinuz)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", "console=ttyS0 rdinit=/init panic=-1 quiet"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("qemu-system-x86_64 (cargo xtask setup installs qemu-system-x86)")?;
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().context("qemu stdout")?;
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let verdict = follow(&rx, Instant::now() + BOOT_LIMIT);
    let _ = child.kill();
    let _ = child.wait();
    verdict
}

/// Reads the guest's console until the check's verdict (or `deadline`); the lines of the
/// check and any output of a failure are printed.
fn follow(rx: &mpsc::Receiver<String>, deadline: Instant) -> Result<String> {
    let (mut version, mut tail) = (String::new(), Vec::new());
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match rx.recv_timeout(left) {
            // The console's escape sequences may precede a marker on its line.
            Ok(l) => match l.find("TAKEDOWN-CHECK") {
                Some(at) => l[at..].trim_end().to_string(),
                None => l.trim_end().to_string(),
            },
            Err(mpsc::RecvTimeoutError::Timeout) => bail!("no verdict within {BOOT_LIMIT:?}"),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                bail!("the guest stopped without a verdict:\n{}", tail.join("\n"))
            }
        };
        if let Some(v) = line.strip_prefix("TAKEDOWN-CHECK kernel ") {
            // `uname -v` of a Debian kernel names its upstream version: "... Debian 6.1.170-3 ...".
            let debian = v.split_once("Debian ").map(|(_, r)| r.split(' ').next().unwrap_or(r));
            version = debian.map_or_else(|| v.to_string(), |d| format!("Linux {d}"));
        }
        if line.starts_with("TAKEDOWN-CHECK") {
            println!("  {line}");
        }
        if line == "TAKEDOWN-CHECK PASS" {
            return Ok(version);
        }
        if line.starts_with("TAKEDOWN-CHECK FAIL") {
            bail!("{line}\n{}", tail.join("\n"));
        }
        tail.push(line);
        if tail.len() > 40 {
            tail.remove(0);
        }
    }
}
