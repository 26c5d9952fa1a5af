//! Signing lists in tests as a CERT does, with the `minisign` tool (`cargo xtask setup`
//! installs it): a key pair, and `minisign -Sm list`.

use std::path::Path;

/// A key pair in `dir` (no password): the public key's base64 line; the key files are
/// `cert.pub` and `cert.key`.
pub fn keys(dir: &Path) -> String {
    let out = std::process::Command::new("minisign")
        .args(["-G", "-W", "-p"])
        .arg(dir.join("cert.pub"))
        .arg("-s")
        .arg(dir.join("cert.key"))
        .output()
        .expect("minisign (cargo xtask setup installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let public = std::fs::read_to_string(dir.join("cert.pub")).unwrap();
    public.lines().nth(1).unwrap().to_string()
}

/// Signs `list` with the key made in `dir`: writes `<list>.minisig`.
pub fn sign(dir: &Path, list: &str) {
    let out = std::process::Command::new("minisign")
        .arg("-S")
        .arg("-s")
        .arg(dir.join("cert.key"))
        .args(["-m", list])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
