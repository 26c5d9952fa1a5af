//! The Debian package (`cargo xtask package`), built with cargo-deb installed afresh into an
//! empty install root and medallion into a new virtual environment (as on a fresh machine's
//! first run): lintian finds no error and no warning, and each info it gives is explained in
//! the README; its contents, an install with
//! `dpkg -i` that gives a working `takedown`, a shipped configuration that passes its own
//! check, section-8 man pages whose synopsis is the real command, private state and log
//! directories, and a clean `dpkg --purge` (remove and purge).

use std::{os::unix::fs::PermissionsExt, path::Path, process::Command};

use integration_tests::{TempDir, kernel_test};

fn sh(program: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(program).args(args).output().expect(program);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.success(), text + &String::from_utf8_lossy(&out.stderr))
}

/// Purges the package when the test ends, even on failure.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", "takedown"]).output();
    }
}

#[kernel_test]
fn the_debian_package_installs_works_and_purges_cleanly() {
    let installed_before = sh("dpkg", &["-s", "takedown"]).0;
    assert!(
        !installed_before,
        "a takedown package is installed here: this test will not replace it"
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // cargo-deb's first install, as a fresh machine has it: nothing in the install root; and
    // the Python tools' (medallion) into a virtual environment that does not exist yet.
    let tools = TempDir::new("package-tools");
    let venv = tools.0.join("venv");
    let out = Command::new("cargo")
        .current_dir(&root)
        .args(["xtask", "package"])
        .env("CARGO_INSTALL_ROOT", &tools.0)
        .env("TAKEDOWN_TEST_VENV", &venv)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let progress = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{text}{progress}");
    assert!(progress.contains("setup: installing cargo-deb"), "{progress}");
    assert!(tools.0.join("bin/cargo-deb").is_file(), "{progress}");
    assert!(progress.contains("setup: installing medallion==3.0.0"), "{progress}");
    assert!(venv.join("bin/medallion").is_file(), "{progress}");
    // stdout is the package's path alone.
    assert_eq!(text.lines().count(), 1, "{text}");
    let deb = text.trim_end();
    assert!(deb.ends_with("_amd64.deb") && Path::new(deb).is_file(), "{text}");
    lintian_is_clean(&root, deb);

    let (ok, contents) = sh("dpkg-deb", &["-c", deb]);
    assert!(ok, "{contents}");
    for path in [
        "./usr/sbin/takedown",
        "./lib/systemd/system/takedown.service",
        "./etc/takedown/takedown.toml",
        "./usr/share/man/man8/takedown.8.gz",
        "./usr/share/man/man8/takedown-run.8.gz",
        "./usr/share/doc/takedown/changelog.Debian.gz",
        "./usr/share/doc/takedown/copyright",
        "./etc/takedown/allow.txt",
        "./usr/share/bash-completion/completions/takedown",
        "./usr/share/zsh/vendor-completions/_takedown",
        "./usr/share/fish/vendor_completions.d/takedown.fish",
    ] {
        assert!(contents.contains(path), "{path} not in the package:\n{contents}");
    }
    let (_, conffiles) = sh("dpkg-deb", &["-I", deb, "conffiles"]);
    let mut conffiles: Vec<&str> = conffiles.lines().collect();
    conffiles.sort();
    assert_eq!(conffiles, ["/etc/takedown/allow.txt", "/etc/takedown/takedown.toml"]);

    let _guard = Installed;
    let (ok, out) = sh("dpkg", &["-i", deb]);
    assert!(ok, "{out}");
    let list = root.join("examples/takedown-list.txt");
    let (ok, out) = sh("/usr/sbin/takedown", &["check", list.to_str().unwrap()]);
    assert!(ok && out.contains("plan: "), "{out}");
    // The shipped configuration passes its own check, as installed.
    let (ok, out) = sh("/usr/sbin/takedown", &["check", "--config", "/etc/takedown/takedown.toml"]);
    assert!(ok, "{out}");
    let (ok, page) = sh("man", &["-P", "cat", "8", "takedown"]);
    assert!(ok && page.contains("takedown") && page.contains("SUBCOMMANDS"), "{page}");
    assert!(page.contains("takedown-run(8)"), "{page}");
    let (ok, page) = sh("man", &["-P", "cat", "8", "takedown-run"]);
    let page =
        page.replace(['\u{2010}', '\n'], " ").split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        ok && page.contains("SYNOPSIS takedown run [-c|--config FILE] [-i|--iface IF...]"),
        "{page}"
    );
    for dir in ["/var/lib/takedown", "/var/log/takedown"] {
        let mode = std::fs::metadata(dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{dir}");
    }

    let (ok, out) = sh("dpkg", &["--purge", "takedown"]);
    assert!(ok, "{out}");
    for gone in ["/usr/sbin/takedown", "/etc/takedown", "/var/lib/takedown", "/var/log/takedown"] {
        assert!(!Path::new(gone).exists(), "{gone} left behind");
    }
    assert!(!sh("dpkg", &["-s", "takedown"]).0, "still registered");
}

/// lintian reports no error and no warning, and each info it gives is named in the README's
/// package section with the reason it stays.
fn lintian_is_clean(root: &Path, deb: &str) {
    let (_, out) = sh("lintian", &["--info", "--fail-on", "none", deb]);
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    for line in out.lines().filter(|l| l.len() > 2 && l.as_bytes()[1] == b':') {
        assert!(line.starts_with("I: takedown: "), "lintian: {line}\n{out}");
        let tag = line["I: takedown: ".len()..].split_whitespace().next().unwrap();
        assert!(
            readme.contains(&format!("`{tag}`")),
            "lintian info {tag} is not explained in the README"
        );
    }
}
