//! Jobs: which processes exist, how inputs are checked and fetched, and how
//! jobs are queued, run, dismissed, recovered and notified about.
//!
//! - `registry.rs`: loaded processes (module, effective description, rules),
//!   kept in step with the store across nodes.
//! - `validate.rs`: input validation against the description's schemas.
//! - `href.rs`: fetching inputs given by reference, with SSRF guards.
//! - `scheduler.rs`: the handle the API calls (submit, execute sync,
//!   dismiss) and the state the scheduler's tasks share.
//! - `dispatch.rs`: free workers claim queued async jobs from the store.
//! - `run.rs`: one job from start to stored outcome.
//! - `running.rs`: the jobs running on this node and how they are stopped.
//! - `progress.rs`: progress reports, kept in memory and written sparingly.
//! - `lifecycle.rs`: shutdown, retention, store events, lease heartbeat.
//! - `callbacks.rs`: POSTs to subscriber URIs.
//! - `documents.rs`: statusInfo and results documents built from records.

mod callbacks;
mod dispatch;
pub mod documents;
mod href;
mod lifecycle;
mod progress;
mod registry;
mod run;
mod running;
mod scheduler;
mod validate;

pub use href::{FetchFailure, check_reference, fetch_bytes};
pub use registry::{Policy, ProcessRegistry, RegisterError, RegisteredProcess, Registration};
pub use scheduler::{JobError, Scheduler, WriteFailures};
pub use validate::{DescriptionError, InputValidator, InvalidInput};
