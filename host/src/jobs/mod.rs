//! Jobs: which processes exist, how inputs are checked and fetched, and how
//! jobs are queued, run, dismissed, recovered and notified about.
//!
//! - `registry.rs`: loaded processes (module, effective description, rules),
//!   kept in step with the store across nodes.
//! - `validate.rs`: input validation against the description's schemas.
//! - `address_guard.rs`: the one SSRF guard (allow-lists, public addresses,
//!   a DNS resolver that connects to exactly the addresses it checked),
//!   shared by `href` fetches and callbacks.
//! - `href.rs`: fetching inputs given by reference, through the guard.
//! - `nested.rs`: nested processes (Part 3): an input computed by another
//!   process; the syntax, and the check of a whole tree before it runs.
//! - `steps.rs`: running a job's nested processes as jobs of their own
//!   (steps), and putting their outputs in the parent's inputs.
//! - `remote.rs`: nested processes on other servers, when allow-listed.
//! - `tree.rs`: what the jobs of one tree share: a fuel budget, and the
//!   calls made (a call written twice runs once).
//! - `workflow.rs`: deployable workflows (Part 3): a tree of nested
//!   processes with `$input` placeholders, deployed as a process.
//! - `scheduler.rs`: the handle the API calls (submit, execute sync,
//!   dismiss) and the state the scheduler's tasks share.
//! - `errors.rs`: how a job operation fails, and the count of store writes
//!   that failed where nobody waited.
//! - `spread.rs`: on a cluster, the leaves of a tree of nested processes
//!   queued for any node, their parent waiting for them.
//! - `dispatch.rs`: free workers claim queued async jobs from the store.
//! - `run.rs`: one job from start to stored outcome.
//! - `running.rs`: the jobs running on this node and how they are stopped.
//! - `progress.rs`: progress reports, kept in memory and written sparingly.
//! - `storage.rs`: the bound on stored job data (507 past it).
//! - `cache.rs`: results of deterministic processes, reused for identical
//!   requests.
//! - `lifecycle.rs`: shutdown, retention, store events, lease heartbeat.
//! - `callbacks.rs`: POSTs to subscriber URIs.
//! - `documents.rs`: statusInfo and results documents built from records.

mod address_guard;
mod cache;
mod callbacks;
mod disk_space;
mod dispatch;
pub mod documents;
mod errors;
mod href;
mod inline;
mod lifecycle;
mod moving_average;
pub mod nested;
mod progress;
mod registry;
mod remote;
mod run;
mod running;
mod scheduler;
mod spread;
mod steps;
mod storage;
mod tree;
mod validate;
pub mod workflow;

pub use address_guard::{AddressGuard, AddressRefused, GuardedClient, is_public, refusal_in};
pub use callbacks::{SubscriberRefused, check_subscriber};
pub use errors::{JobError, WriteFailures};
pub use href::{FetchError, FetchFailure, fetch_bytes, resolve_references};
pub use inline::InlineHistory;
pub use registry::{
    Executable, Policy, ProcessRegistry, RegisterError, RegisteredProcess, Registration,
};
pub use scheduler::{JobOwner, Scheduler, SyncRecord, SyncRun};
pub use validate::{CheckedOutcome, DescriptionError, InputValidator, InvalidInput};

/// The span a job runs in: every log line written while it runs (fetching
/// `href` inputs, storing the outcome, a failed write) carries `job` and
/// `process`, in text and in JSON logs (see `telemetry::logging`).
pub(crate) fn job_span(job: &crate::store::JobRecord) -> tracing::Span {
    tracing::info_span!("job", job = %job.id, process = %job.process_id)
}
