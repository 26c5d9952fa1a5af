//! Harness for takedown's kernel tests: the root check, crafted frames, a filter loaded for
//! BPF_PROG_TEST_RUN, and the `takedown` binary run inside test namespaces.

pub mod frames;
pub mod loaded;
pub mod process;

pub use td_netns;

/// True when the test may touch the kernel; otherwise prints a loud skip notice.
pub fn require_root(test: &str) -> bool {
    if td_netns::is_root() {
        return true;
    }
    eprintln!(
        "\n!!!!!!!! SKIPPED {test}: it loads XDP into the kernel and needs root. CI runs as root. !!!!!!!!\n"
    );
    false
}
