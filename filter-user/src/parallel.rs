//! How a large job is shared out: one thread a CPU, up to a bound, and from what size a job
//! is large enough to be worth the threads.

/// Entries from which a plan or a list is worked on by several threads.
pub const LARGE: usize = 100_000;

/// Threads for a large job: one a CPU, at most `max` (1: do it on the calling thread).
pub fn threads(max: usize) -> usize {
    // Asked once: the answer reads cgroup files, which takes longer than a small write.
    static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let cpus = *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    cpus.min(max)
}
