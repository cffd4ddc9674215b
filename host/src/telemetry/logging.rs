//! The server's own log: `tracing` events written to stderr as text (for
//! people at a terminal) or as one JSON object per line (for a log
//! collector), chosen by `log_format` in the config or `--log-format`.
//!
//! Correlation comes from spans, not from repeating ids by hand: every
//! HTTP request runs inside a `request` span carrying its `request_id`
//! (the `x-request-id` header, generated when the client sent none, and
//! echoed in the response; see `api::mod`), and every job runs inside a
//! `job` span carrying `job` and `process` (see `jobs::dispatch` and
//! `jobs::scheduler`). In JSON each line lists the fields of the spans it
//! was written in (`spans`), so `jq 'select(.spans[]?.job == "…")'`
//! finds everything about one job; text lines show them as
//! `request{request_id=…}:job{job=…}:` prefixes.

use serde::{Deserialize, Serialize};
use tracing_subscriber::EnvFilter;

/// How the server's own log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (the default); colours only on a terminal.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`,
    /// `fields` (the message and the event's fields) and `spans` (the
    /// fields of every enclosing span, outermost first).
    Json,
}

impl LogFormat {
    /// Parse a flag value: `text` or `json`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }
}

/// Install the global subscriber: `RUST_LOG` filters (default `info`),
/// lines go to stderr in `format`. Returns `false` (and changes nothing)
/// when a subscriber is already installed, as in a test binary that
/// starts several servers.
pub fn init_logging(format: LogFormat) -> bool {
    use std::io::IsTerminal as _;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init()
            .is_ok(),
        LogFormat::Json => builder
            .json()
            .with_current_span(false)
            .with_span_list(true)
            .try_init()
            .is_ok(),
    }
}
