//! takedown: keeps machines behind a gateway from reaching takedown addresses, with XDP.
//!
//! One folder a layer; an upper layer uses a lower one, never the reverse:
//! - [`lists`]: list text -> entries, with file:line notes.
//! - [`plan`]: guards, own addresses, allowlist, the plan and its diff; the one pipeline from
//!   sources to plan. Pure: no kernel.
//! - [`sources`]: where lists come from: files and URLs with their cache, TAXII collections,
//!   the CrowdSec decision stream, DNS. No kernel.
//! - [`maps`]: load, pin, adopt, write (`sync`) and read the kernel maps.
//! - [`daemon`]: the refresh loop, state directory, hosts, metrics, control socket.
//!
//! Below them all: [`clock`], [`words`], [`parallel`].
//!
//! The `takedown` binary (`cli/`) is a thin face over them.

pub mod clock;
pub mod daemon;
pub mod lists;
pub mod maps;
pub mod parallel;
pub mod plan;
pub mod sources;
pub mod words;

/// The compiled XDP program (filter-ebpf), embedded at build time.
pub static EBPF_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/takedown.bpf.o"));

#[cfg(test)]
mod layers {
    use std::path::Path;

    fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                sources(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push((p.display().to_string(), std::fs::read_to_string(&p).unwrap()));
            }
        }
    }

    /// No arrow runs from `lists` or `plan` to `sources`, `maps` or `daemon`, nor from
    /// `sources` or `maps` to `daemon`, nor between `sources` and `maps` (nor from `lists` to
    /// `plan`).
    #[test]
    fn a_lower_layer_never_imports_an_upper_one() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let rules: [(&str, &[&str]); 4] = [
            ("lists", &["crate::plan", "crate::sources", "crate::maps", "crate::daemon"]),
            ("plan", &["crate::sources", "crate::maps", "crate::daemon"]),
            ("sources", &["crate::maps", "crate::daemon"]),
            ("maps", &["crate::sources", "crate::daemon"]),
        ];
        for (layer, upper) in rules {
            let mut files = Vec::new();
            sources(&src.join(layer), &mut files);
            assert!(!files.is_empty(), "{layer}");
            for (path, text) in &files {
                for u in upper {
                    assert!(!text.contains(u), "{path} imports {u}");
                }
                assert!(!text.contains("super::super"), "{path} reaches out of its layer");
            }
        }
    }
}
