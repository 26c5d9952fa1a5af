//! Harness for takedown's kernel tests: the root check, crafted frames, a filter loaded for
//! BPF_PROG_TEST_RUN, and the `takedown` binary run inside test namespaces.

pub mod crowdsec_lapi;
pub mod dns;
pub mod frames;
pub mod http;
pub mod https;
pub mod lapi;
pub mod loaded;
pub mod local_server;
pub mod medallion;
pub mod messages;
pub mod minisign;
pub mod process;
pub mod reference;
pub mod taxii;
pub mod test_run;
pub mod tmux;

pub use td_netns;
pub use td_test_macros::kernel_test;

/// True when the test may touch the kernel; otherwise prints a loud skip notice. In CI
/// (`CI=true`), which runs as root, a test that would be skipped fails instead.
pub fn require_root(test: &str) -> bool {
    if td_netns::is_root() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test} needs root, and CI runs as root: a skip here is a failure");
    }
    // Written to the real stderr, past libtest's output capture, so that the skip is seen.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr().lock(),
        "\n!!!!!!!! SKIPPED {test}: it loads XDP into the kernel and needs root. CI runs as root. !!!!!!!!\n"
    );
    false
}

/// A temporary directory, removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    /// Creates `$TMPDIR/takedown-<name>-<pid>-<n>` (unique: two tests never share one).
    pub fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(td_netns::unique(&format!("takedown-{name}")));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }

    /// A daemon configuration (`takedown.toml` in it) for the test gateway's interface with one
    /// list `name` fetched from `url` (plain http: the test's own server), plus `extra` lines of
    /// that list; returns its path.
    pub fn url_config(&self, name: &str, url: &str, extra: &str) -> String {
        let gw = td_netns::Addrs::GATEWAY_IF;
        let text = format!(
            "interfaces = [\"{gw}\"]\n[[list]]\nname = \"{name}\"\nurl = \"{url}\"\ninsecure = true\n{extra}"
        );
        self.file("takedown.toml", &text)
    }

    /// A daemon configuration (`takedown.toml` in it) for the test gateway's interface with one
    /// CrowdSec list polled every second from the Local API at `url` with bouncer key `key`;
    /// returns its path.
    pub fn crowdsec_config(&self, url: &str, key: &str) -> String {
        let key_file = self.file("bouncer.key", &format!("{key}\n"));
        self.file(
            "takedown.toml",
            &format!(
                "interfaces = [\"{}\"]\n[[list]]\nname = \"crowdsec\"\nrefresh = 1\ntimeout = 2\n\
                 crowdsec = {{ url = \"{url}\", api_key_file = \"{key_file}\" }}\n",
                td_netns::Addrs::GATEWAY_IF
            ),
        )
    }

    /// Writes `content` to `name` inside it and returns the path as a string.
    pub fn file(&self, name: &str, content: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, content).expect("write temp file");
        path.to_str().unwrap().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// True when an XDP program is attached to `iface` in `ns`.
pub fn xdp_attached(ns: &td_netns::NetNs, iface: &str) -> bool {
    let out = ns.ip(&["-d", "link", "show", iface]).expect("ip link show");
    String::from_utf8_lossy(&out.stdout).contains("xdp")
}

/// The id of the XDP program attached to `iface` in `ns`.
pub fn attached_program(ns: &td_netns::NetNs, iface: &str) -> Option<u32> {
    let out = ns.ip(&["-d", "link", "show", iface]).ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let rest = &text[text.find("prog/xdp id ")? + "prog/xdp id ".len()..];
    rest.split_whitespace().next()?.parse().ok()
}

/// The verdict of the program attached to `iface` in `ns` on `frame`, from the kernel itself
/// (BPF_PROG_TEST_RUN, through `bpftool prog run`).
pub fn kernel_verdict(ns: &td_netns::NetNs, iface: &str, frame: &[u8]) -> u32 {
    let id = attached_program(ns, iface).expect("a program is attached");
    let dir = TempDir::new("frame");
    let path = dir.0.join("frame.bin");
    std::fs::write(&path, frame).unwrap();
    let out = std::process::Command::new("bpftool")
        .args(["prog", "run", "id", &id.to_string(), "data_in", path.to_str().unwrap()])
        .output()
        .expect("run bpftool");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let value = text.split("Return value: ").nth(1).and_then(|r| r.split([',', '\n']).next());
    value.and_then(|v| v.trim().parse().ok()).unwrap_or_else(|| panic!("bpftool: {text}"))
}

/// A private bpf filesystem mounted on a temporary directory, plus a state directory: where a
/// test's pinned filter lives. Unmounted and removed on drop.
pub struct PinPlace {
    pub bpffs: std::path::PathBuf,
    pub state: TempDir,
}

impl PinPlace {
    pub fn new(name: &str) -> Self {
        let bpffs = std::env::temp_dir().join(td_netns::unique(&format!("takedown-bpffs-{name}")));
        let _ = std::process::Command::new("umount").arg(&bpffs).output();
        std::fs::create_dir_all(&bpffs).expect("bpffs dir");
        takedown::maps::pins::mount_bpffs(&bpffs).expect("mount bpffs");
        Self { bpffs, state: TempDir::new(&format!("state-{name}")) }
    }

    /// The pin directory inside the bpffs.
    pub fn pin_dir(&self) -> String {
        self.bpffs.join("takedown").to_str().unwrap().to_string()
    }

    /// The state directory.
    pub fn state_dir(&self) -> String {
        self.state.0.to_str().unwrap().to_string()
    }

    /// `--pin-dir DIR --state-dir DIR`, to append to a command.
    pub fn args(&self) -> Vec<String> {
        vec!["--pin-dir".into(), self.pin_dir(), "--state-dir".into(), self.state_dir()]
    }

    /// `args` followed by this place's options.
    fn with(&self, args: &[&str]) -> Vec<String> {
        args.iter().map(|a| a.to_string()).chain(self.args()).collect()
    }

    /// Runs `takedown ARGS` on this place to completion in `ns`: (exit code, stdout, stderr).
    pub fn cli(&self, ns: &td_netns::NetNs, args: &[&str]) -> (Option<i32>, String, String) {
        let all = self.with(args);
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let out = process::run_cli(Some(ns), &all);
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    }

    /// True when traffic from an inside host to `addr` is dropped: `takedown lookup` (which must
    /// succeed) and the kernel's verdict on such a packet through `iface` must agree (asked
    /// again a few times, should the daemon change the maps between the two questions).
    pub fn blocked(&self, ns: &td_netns::NetNs, iface: &str, addr: &str) -> bool {
        let inside = if addr.contains(':') { "2001:db8:1::10" } else { "192.0.2.10" };
        let mut last = String::new();
        for _ in 0..5 {
            let (code, out, err) = self.cli(ns, &["lookup", addr]);
            assert_eq!(code, Some(0), "takedown lookup {addr}: {out}{err}");
            // Traffic to `addr`: blocked when the entry blocks it as a destination.
            let says = out.contains("blocked") && !out.contains("blocked (as source)");
            let verdict = kernel_verdict(ns, iface, &frames::ip(inside, addr));
            if says == (verdict == 1) {
                return says; // 1: XDP_DROP
            }
            last = format!("lookup says {out:?}; the kernel's verdict is {verdict}");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("{last}");
    }

    /// Starts `takedown ARGS` (a `run`) on this place in `ns`, waiting until it filters.
    pub fn start(&self, ns: &td_netns::NetNs, args: &[&str]) -> process::Running {
        let all = self.with(args);
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        process::Running::start(ns, &all).expect("takedown starts")
    }
}

impl Drop for PinPlace {
    fn drop(&mut self) {
        // Unpinning everything detaches what a test left attached, then the mount goes.
        let _ = takedown::maps::pins::Pins::new(self.pin_dir()).remove_all();
        let _ = std::process::Command::new("umount").arg(&self.bpffs).output();
        let _ = std::fs::remove_dir(&self.bpffs);
    }
}

/// A small tmpfs mounted on a temporary directory (unmounted on drop): a disk that fills.
pub struct SmallDisk(pub std::path::PathBuf);

impl SmallDisk {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(td_netns::unique(&format!("takedown-disk-{name}")));
        std::fs::create_dir_all(&dir).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs", dir.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "mount tmpfs: {}", String::from_utf8_lossy(&out.stderr));
        Self(dir)
    }
}

impl SmallDisk {
    /// Fills it (bounded: the tmpfs holds 256 KiB) with a file named `filler`.
    pub fn fill(&self) {
        let filler = vec![0u8; 4096];
        let mut f = std::fs::File::create(self.0.join("filler")).unwrap();
        for _ in 0..1024 {
            if std::io::Write::write_all(&mut f, &filler).is_err() {
                break;
            }
        }
    }

    /// Frees what `fill` took.
    pub fn free(&self) {
        std::fs::remove_file(self.0.join("filler")).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).output();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Polls `done` every 200 ms until it holds; after `secs` seconds, panics naming `what` with
/// `context()` (a daemon's log, say).
pub fn wait_until(
    what: &str,
    secs: u64,
    mut done: impl FnMut() -> bool,
    context: impl Fn() -> String,
) {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !done() {
        assert!(std::time::Instant::now() < end, "{what}: {}", context());
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
