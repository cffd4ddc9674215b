//! Jobs: which processes exist, how inputs are checked and fetched, and how
//! jobs are queued, run, dismissed, recovered and notified about.
//!
//! - `registry.rs`: loaded processes (module, effective description, rules).
//! - `validate.rs`: input validation against the description's schemas.
//! - `href.rs`: fetching inputs given by reference, with SSRF guards.
//! - `scheduler.rs`: queue, worker pool, sync/async execution, dismissal,
//!   crash recovery, retention.
//! - `callbacks.rs`: POSTs to subscriber URIs.
//! - `documents.rs`: statusInfo and results documents built from records.

mod callbacks;
pub mod documents;
mod href;
mod registry;
mod scheduler;
mod validate;

pub use href::{FetchFailure, check_reference, fetch_bytes};
pub use registry::{Policy, ProcessRegistry, RegisterError, RegisteredProcess, Registration};
pub use scheduler::{JobError, Recovery, Scheduler};
pub use validate::{DescriptionError, InputValidator, InvalidInput};
