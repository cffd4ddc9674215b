//! How job operations fail: [`JobError`], what the API turns into an OGC
//! exception (`api/error.rs` maps each variant to its status), and
//! [`WriteFailures`], the store writes that failed where no caller waited
//! for the answer, each logged and counted instead.

use std::sync::atomic::{AtomicU64, Ordering};

use uuid::Uuid;

use crate::store::StoreError;

/// Why a job operation failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The async queue is full; try again later.
    #[error("the job queue is full ({0} jobs waiting); try again later")]
    QueueFull(usize),
    /// The stored job data reached `execution.max_stored_bytes`.
    #[error(
        "the server stores {stored} bytes of job data, its bound is {max} bytes: no new job is accepted until finished jobs are deleted (retention, or DELETE /jobs/{{id}})"
    )]
    StorageFull {
        /// What is stored, as last known.
        stored: u64,
        /// `execution.max_stored_bytes`.
        max: u64,
    },
    /// The data directory's disk has less free space than
    /// `execution.min_free_disk_bytes`.
    #[error(
        "the disk of the server's data directory has {available} bytes free, below its floor of {min} bytes (execution.min_free_disk_bytes): no new job is accepted until space is freed"
    )]
    DiskFull {
        /// Free bytes, as last read.
        available: u64,
        /// `execution.min_free_disk_bytes`.
        min: u64,
    },
    /// The stored data of one key's jobs reached its `max_stored_bytes`.
    #[error(
        "the jobs of key '{owner}' store {stored} bytes, its bound is {max} bytes: no new job of this key is accepted until some of its finished jobs are deleted (retention, or DELETE /jobs/{{id}})"
    )]
    OwnerStorageFull {
        /// The key's name.
        owner: String,
        /// What its jobs store, as last known.
        stored: u64,
        /// The key's `max_stored_bytes`.
        max: u64,
    },
    /// Too many synchronous requests wait for a worker; try again later.
    #[error(
        "{0} synchronous requests are already waiting for a worker; try again later, or run the job asynchronously"
    )]
    SyncQueueFull(usize),
    /// No job with that id.
    #[error("no job with id {0}")]
    NoSuchJob(Uuid),
    /// The job's process does not allow dismissal.
    #[error(
        "process '{process}' does not allow its jobs to be dismissed: its jobControlOptions are {options:?}, without \"dismiss\""
    )]
    DismissNotSupported {
        /// The job's process.
        process: String,
        /// Its effective `jobControlOptions`.
        options: Vec<String>,
    },
    /// A request to a deployed workflow that does not make a sound tree
    /// once its inputs are in place (see `jobs/workflow.rs`).
    #[error(transparent)]
    Workflow(#[from] super::validate::InvalidInput),
    /// The scheduler is shutting down.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// Storage failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for JobError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::QueueFull(max) => JobError::QueueFull(max),
            other => JobError::Store(other),
        }
    }
}

/// Store writes that failed where nobody waits for the answer (progress, a
/// job's outcome after its client left, retention): each is logged with
/// the job id and counted here, never dropped silently.
#[derive(Debug, Default)]
pub struct WriteFailures {
    count: AtomicU64,
}

impl WriteFailures {
    /// Log and count one failure.
    pub(super) fn record(&self, job: Uuid, what: &str, error: &StoreError) {
        self.count.fetch_add(1, Ordering::Relaxed);
        tracing::error!(job = %job, write = what, %error, "a store write failed");
    }

    /// How many writes failed since start-up.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}
