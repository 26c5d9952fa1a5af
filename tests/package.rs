//! The Debian package (`cargo xtask package`): its contents, an install with `dpkg -i` that
//! gives a working `takedown`, its man page and private state and log directories, and a
//! clean `dpkg --purge` (remove and purge).

use std::{os::unix::fs::PermissionsExt, path::Path, process::Command};

use integration_tests::kernel_test;

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
    let out = Command::new("cargo").current_dir(&root).args(["xtask", "package"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let deb = text.lines().find_map(|l| l.strip_prefix("package: ")).expect("package path");

    let (ok, contents) = sh("dpkg-deb", &["-c", deb]);
    assert!(ok, "{contents}");
    for path in [
        "./usr/sbin/takedown",
        "./lib/systemd/system/takedown.service",
        "./etc/takedown/takedown.toml",
        "./usr/share/man/man1/takedown.1",
        "./usr/share/man/man1/takedown-run.1",
        "./usr/share/bash-completion/completions/takedown",
        "./usr/share/zsh/vendor-completions/_takedown",
        "./usr/share/fish/vendor_completions.d/takedown.fish",
    ] {
        assert!(contents.contains(path), "{path} not in the package:\n{contents}");
    }
    let (_, conffiles) = sh("dpkg-deb", &["-I", deb, "conffiles"]);
    assert_eq!(conffiles.trim(), "/etc/takedown/takedown.toml", "the configuration is a conffile");

    let _guard = Installed;
    let (ok, out) = sh("dpkg", &["-i", deb]);
    assert!(ok, "{out}");
    let list = root.join("examples/takedown-list.txt");
    let (ok, out) = sh("/usr/sbin/takedown", &["check", list.to_str().unwrap()]);
    assert!(ok && out.contains("plan: "), "{out}");
    let (ok, page) = sh("man", &["-P", "cat", "takedown"]);
    assert!(ok && page.contains("takedown") && page.contains("SUBCOMMANDS"), "{page}");
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
