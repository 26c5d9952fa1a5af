//! The subcommands of the `takedown` binary, one module each.

pub mod report;
pub mod run;
