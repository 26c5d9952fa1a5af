//! The subcommands of the `takedown` binary, one module each: thin faces over the library's
//! layers (they parse options, call a layer, print). No logic that a layer could own lives here.

/// `println!` that ignores write errors: a closed stdout (a log reader that went away) must
/// never stop the filter.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

pub mod check;
pub mod dns;
pub mod entries;
pub mod exposed;
mod exposed_csv;
pub mod generate;
pub mod inspect;
pub mod lifecycle;
pub mod logging;
pub mod observe;
pub mod places;
pub mod refresh;
pub mod report;
pub mod run;
pub mod sources;
pub mod status;
pub mod watch;
