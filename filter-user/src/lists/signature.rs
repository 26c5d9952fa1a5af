//! Signed lists: a list's minisign signature (`<list>.minisig` beside the file or URL),
//! checked against the publisher's public key before a byte of the list is used. A list whose
//! signature is missing or wrong is refused like any bad source.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use minisign_verify::{PublicKey, Signature};

/// Largest signature file read (a minisign signature is about 300 bytes).
pub const MAX_SIGNATURE: u64 = 4096;

/// Where the signature of the list at `path` (or URL) is: the same with `.minisig` added.
pub fn signature_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".minisig");
    PathBuf::from(p)
}

/// Checks that `signature` (a `.minisig` file's text) signs `bytes` with `key`: the public key
/// as `minisign -G` prints it (`RW...`), or a whole `.pub` file.
pub fn verify(bytes: &[u8], signature: &str, key: &str) -> Result<()> {
    let key = key.trim();
    let pk = match key.lines().count() {
        1 => PublicKey::from_base64(key),
        _ => PublicKey::decode(key),
    }
    .map_err(|e| anyhow!("not a minisign public key: {e}"))?;
    let sig = Signature::decode(signature).map_err(|e| anyhow!("not a minisign signature: {e}"))?;
    pk.verify(bytes, &sig, false).map_err(|e| anyhow!("the signature does not match: {e}"))
}

/// Checks the signature file beside the list file `path` against `key`.
pub fn verify_file(path: &Path, bytes: &[u8], key: &str) -> Result<()> {
    let sig_path = signature_path(path);
    let sig = super::read_file(&sig_path, MAX_SIGNATURE)
        .with_context(|| format!("no signature {}", sig_path.display()))?;
    verify(bytes, &String::from_utf8_lossy(&sig), key)
        .with_context(|| format!("signature check of {} failed", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // A key pair made with `minisign -G -W`, and a signature of the four bytes "test" made with
    // `minisign -S -m t.txt -t "takedown test vector"`.
    const KEY: &str = "RWS5h/k0GHGSOlDC5i08Es1XXZQeyGwogc9b4Xu5faXqUD/uczfwsjap";
    const SIG: &str = "untrusted comment: signature from minisign secret key
RUS5h/k0GHGSOkJlnRH80P11nOaPGM643BEeyyHM+BIBZg0RpYLb1hoGwPZvFy7t470f1XSJY7YseMKvLoXFVzVx7P2EuF6MjQE=
trusted comment: takedown test vector
PZGCthd6EaKL9JmR9X99JoupWJmqtrQVwEU3LMF4He2H9PyzoSjrzsjvfK4PbT5hDbICm8y/T6sTsBMjARQpAw==
";

    #[test]
    fn a_good_signature_verifies_and_anything_else_is_refused() {
        let good = b"test";
        assert!(verify(good, SIG, KEY).is_ok());
        let err = |bytes: &[u8], sig: &str, key: &str| {
            format!("{:#}", verify(bytes, sig, key).unwrap_err())
        };
        assert!(err(b"tesT", SIG, KEY).contains("does not match"));
        assert!(err(good, "junk", KEY).contains("not a minisign signature"));
        assert!(err(good, SIG, "RWjunk").contains("not a minisign public key"));
        assert_eq!(signature_path(Path::new("/x/list.txt")), Path::new("/x/list.txt.minisig"));
    }
}
