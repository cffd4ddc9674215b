//! What the server tells its operator about itself: Prometheus metrics
//! and its own log (text or JSON lines).
//!
//! - `metrics.rs`: the one Prometheus recorder of the process, every
//!   metric name with its meaning ([`metrics::names`]), the functions the
//!   store, the runtime and the HTTP layer call to record, and the text
//!   `GET /metrics` serves.
//! - `logging.rs`: the `tracing` subscriber (`log_format = "text" |
//!   "json"`); request ids and job ids reach every line as span fields.
//!
//! What does not live here: the HTTP route (`api/metrics.rs`) and the
//! per-job log a guest writes (`runtime/job_log.rs`, served by
//! `api/job_log.rs`).

pub mod logging;
pub mod metrics;

pub use logging::{LogFormat, init_logging};
