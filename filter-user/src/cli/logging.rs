//! The log on stderr: plain lines with a timestamp (none under systemd, whose journal adds
//! its own), or one JSON object a line for log shippers (`--log-format json`).

use std::io::Write as _;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `[time LEVEL] message`.
    #[default]
    Text,
    /// `{"time": ..., "level": ..., "message": ...}`.
    Json,
}

/// Starts the logger (RUST_LOG sets the level; info by default).
pub fn init(format: LogFormat) {
    let mut b = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    b.format_target(false);
    match format {
        LogFormat::Text if std::env::var_os("JOURNAL_STREAM").is_some() => {
            b.format_timestamp(None);
        }
        LogFormat::Text => {
            b.format_timestamp_secs();
        }
        LogFormat::Json => {
            b.format(|buf, r| {
                let line = serde_json::json!({
                    "time": buf.timestamp_seconds().to_string(),
                    "level": r.level().to_string(),
                    "message": r.args().to_string(),
                });
                writeln!(buf, "{line}")
            });
        }
    }
    b.init();
}
