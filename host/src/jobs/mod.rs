//! Jobs: which processes exist, how inputs are checked and fetched, and how
//! jobs are queued, run, dismissed, recovered and notified about.
//!
//! - `registry.rs`: loaded processes (module, effective description, rules).
//! - `validate.rs`: input validation against the description's schemas.
//! - `address_guard.rs`: the one SSRF guard (allow-lists, public addresses,
//!   a DNS resolver that connects to exactly the addresses it checked),
//!   shared by `href` fetches and callbacks.
//! - `href.rs`: fetching inputs given by reference, through the guard.
//! - `scheduler.rs`: queue, worker pool, sync/async execution, dismissal,
//!   crash recovery, retention.
//! - `callbacks.rs`: POSTs to subscriber URIs.
//! - `documents.rs`: statusInfo and results documents built from records.

mod address_guard;
mod callbacks;
pub mod documents;
mod href;
mod registry;
mod scheduler;
mod validate;

pub use address_guard::{AddressGuard, AddressRefused, GuardedClient, is_public, refusal_in};
pub use callbacks::{SubscriberRefused, check_subscriber};
pub use href::{FetchFailure, fetch_bytes};
pub use registry::{Policy, ProcessRegistry, RegisterError, RegisteredProcess, Registration};
pub use scheduler::{JobError, Recovery, Scheduler};
pub use validate::{DescriptionError, InputValidator, InvalidInput};
