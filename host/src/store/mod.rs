//! Durable state behind one backend-neutral API: processes, module bytes,
//! jobs (with indexes for every `/jobs` filter), results, and the queue of
//! async jobs waiting for a worker.
//!
//! # Backends
//! [`Store`] is an enum over two backends; callers never see which one runs
//! (except through [`Store::is_shared`], which says whether other nodes may
//! write too).
//! - `sled` (the default): an embedded database in the data
//!   directory, one node. The in-memory overlays that exist for its speed
//!   (running sync jobs held in memory, async finals shown only once
//!   flushed, the async queue as an in-memory list of ids) live inside it.
//!   It is the only code that touches sled.
//! - `postgres`: a PostgreSQL database shared by several
//!   nodes. Jobs are claimed with `FOR UPDATE SKIP LOCKED` under a lease
//!   that a heartbeat renews; LISTEN/NOTIFY carries wake-ups, dismissals and
//!   deploys between nodes. It is the only code that touches PostgreSQL.
//!
//! # Contract
//! Both backends pass the same contract tests (`tests/tests/e2e/store_contract.rs`).
//! What every caller may rely on:
//! - A method that changes something the client will be told about
//!   ([`Store::enqueue_job`], [`Store::write_process`],
//!   [`Store::delete_process`],
//!   [`Store::delete_job`], and [`Store::finish_job`] of an async job) is
//!   durable when it returns: a crash right after cannot undo it.
//! - A job's final state and its results become visible together.
//! - A deleted (dismissed) job is never resurrected by a late write: every
//!   update of a job says whether the job still exists, and writes nothing
//!   when it does not.
//! - [`Store::list_jobs`] pages with a keyset cursor: a page's `next` stays
//!   valid while jobs are added, and never repeats or skips a job that
//!   existed when the first page was read.
//!
//! # Metrics
//! The job counters and histograms (submitted, started, finished,
//! dismissed) and the write latencies are recorded here, on the way out of
//! the backend-neutral methods: every path that accepts, starts or ends a
//! job calls one of them, so each event is counted exactly once, whichever
//! backend runs (see `telemetry::metrics`).
//!
//! # Errors
//! [`StoreError::Unavailable`] means the database cannot be reached right
//! now (PostgreSQL down or restarting); the HTTP API answers it with 503 and
//! `Retry-After`, never 500. Other errors are bugs or corruption.

pub mod postgres;
mod records;
pub mod sled;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, broadcast};
use uuid::Uuid;

use crate::config::{StoreBackend, StoreConfig};
use crate::ogc::JobStatus;
use crate::telemetry::metrics;
pub use records::{CachePending, JobFailure, JobRecord, JobResults, ProcessRecord, Step};

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The embedded sled database failed (I/O, corruption).
    #[error(transparent)]
    Sled(#[from] self::sled::SledError),
    /// PostgreSQL refused a statement (a bug, or a database changed by
    /// hand); not a connection problem, which is [`StoreError::Unavailable`].
    #[error(transparent)]
    Postgres(#[from] self::postgres::PgError),
    /// The database cannot be reached now; try again after `retry_after`.
    #[error("the database is unavailable: {reason}")]
    Unavailable {
        /// What failed (no credentials in it).
        reason: String,
        /// When a retry is worth it.
        retry_after: Duration,
    },
    /// A stored value could not be (de)serialised.
    #[error("stored data is unreadable: {0}")]
    Encoding(#[from] serde_json::Error),
    /// The database was written by a newer wasmproc.
    #[error(
        "the database schema is version {found}, newer than the {supported} this wasmproc knows; \
         upgrade wasmproc (or point it at another database)"
    )]
    SchemaTooNew {
        /// The version found in the database.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// The async queue is full (cluster-wide with PostgreSQL).
    #[error("the job queue is full ({0} jobs waiting); try again later")]
    QueueFull(usize),
}

impl StoreError {
    /// Whether a write failed because the disk is full (`ENOSPC`, or a
    /// quota's `EDQUOT`). The embedded store stays failed after that
    /// until the server restarts (see `jobs/disk_space.rs`), so the client
    /// is told the server is out of storage, not that it misbehaved.
    pub fn is_disk_full(&self) -> bool {
        /// `ENOSPC` and `EDQUOT` on Linux.
        const NO_SPACE: [i32; 2] = [28, 122];
        match self {
            StoreError::Sled(self::sled::SledError(::sled::Error::Io(error))) => {
                error.kind() == std::io::ErrorKind::StorageFull
                    || error.kind() == std::io::ErrorKind::QuotaExceeded
                    || error
                        .raw_os_error()
                        .is_some_and(|code| NO_SPACE.contains(&code))
            }
            _ => false,
        }
    }
}

/// Filters of `GET /jobs`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobFilter {
    /// Only jobs of these processes (any, when empty).
    pub process_ids: Vec<String>,
    /// Only jobs in these states (any, when empty).
    pub statuses: Vec<JobStatus>,
    /// Only jobs created at or after this time.
    pub created_from: Option<DateTime<Utc>>,
    /// Only jobs created at or before this time.
    pub created_to: Option<DateTime<Utc>>,
    /// Only jobs that ran at least this many seconds.
    pub min_duration: Option<f64>,
    /// Only jobs that ran at most this many seconds.
    pub max_duration: Option<f64>,
    /// Only jobs of this owner (the API key that created them).
    pub owner: Option<String>,
}

impl JobFilter {
    /// Whether `job` passes every filter. Backends use their indexes to
    /// find candidates and this to decide, so both answer the same.
    pub fn matches(&self, job: &JobRecord) -> bool {
        (self.process_ids.is_empty() || self.process_ids.contains(&job.process_id))
            && (self.statuses.is_empty() || self.statuses.contains(&job.status))
            && self.created_from.is_none_or(|from| job.created >= from)
            && self.created_to.is_none_or(|to| job.created <= to)
            && self
                .min_duration
                .is_none_or(|min| job.duration_seconds().is_some_and(|d| d >= min))
            && self
                .max_duration
                .is_none_or(|max| job.duration_seconds().is_some_and(|d| d <= max))
            && self
                .owner
                .as_ref()
                .is_none_or(|owner| job.owner.as_ref() == Some(owner))
    }

    /// Whether jobs in `status` can match.
    pub(crate) fn wants_status(&self, status: JobStatus) -> bool {
        self.statuses.is_empty() || self.statuses.contains(&status)
    }
}

/// What the stored job data weighs ([`Store::stored_job_bytes`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredBytes {
    /// Every job's bytes.
    pub total: u64,
    /// The bytes of the jobs of each owner (only when asked for; jobs
    /// without an owner are in `total` only).
    pub by_owner: std::collections::HashMap<String, u64>,
}

/// Where a page of jobs starts: just after the job with this creation time
/// and id, in newest-first order. Jobs are ordered by (created, id), so a
/// cursor stays meaningful while jobs are added or removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobCursor {
    /// Creation time of the last job of the previous page, in µs since the
    /// epoch (the precision both backends keep).
    pub created_micros: i64,
    /// Its id.
    pub id: Uuid,
}

impl JobCursor {
    /// The cursor just after `job`.
    pub fn after(job: &JobRecord) -> Self {
        Self {
            created_micros: job.created.timestamp_micros(),
            id: job.id,
        }
    }

    /// Its form in a URL: `<µs>_<id>`.
    pub fn encode(&self) -> String {
        format!("{}_{}", self.created_micros, self.id.simple())
    }

    /// Parse [`JobCursor::encode`]'s form.
    pub fn decode(text: &str) -> Option<Self> {
        let (micros, id) = text.split_once('_')?;
        Some(Self {
            created_micros: micros.parse().ok()?,
            id: Uuid::parse_str(id).ok()?,
        })
    }
}

/// Which page of [`Store::list_jobs`] to read.
#[derive(Debug, Clone, PartialEq)]
pub struct JobQuery {
    /// The filters.
    pub filter: JobFilter,
    /// Start after this job (keyset paging).
    pub after: Option<JobCursor>,
    /// Then skip this many matching jobs (the `offset` parameter; costs
    /// reading them).
    pub offset: usize,
    /// At most this many jobs.
    pub limit: usize,
}

/// A page of jobs.
#[derive(Debug, Clone, PartialEq)]
pub struct JobPage {
    /// The jobs, newest first.
    pub jobs: Vec<JobRecord>,
    /// Where the next page starts, when more jobs match.
    pub next: Option<JobCursor>,
}

/// Something another node (or this one) changed that a node must react to.
/// Delivered by [`Store::subscribe`]; PostgreSQL carries them between
/// nodes with LISTEN/NOTIFY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreEvent {
    /// This job was dismissed (deleted): stop it if it runs here.
    JobDismissed(Uuid),
    /// This step of a tree (a job with a parent) ended: its parent may be
    /// waiting for it on another node (`jobs/spread.rs`). PostgreSQL only.
    JobFinished(Uuid),
    /// This process was deployed, replaced or undeployed: reload it.
    ProcessChanged(String),
    /// Notifications may have been missed (a reconnect, a lagging
    /// receiver): reload everything that events keep up to date.
    Resync,
}

/// What start-up recovery did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Jobs that were `running` and are now `failed`.
    pub interrupted: usize,
    /// Jobs that were `accepted` and are queued again.
    pub requeued: usize,
}

/// What one sweep of expired leases did (PostgreSQL).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeaseSweep {
    /// Jobs of lost nodes put back in the queue.
    pub requeued: usize,
    /// Jobs failed because their node was lost too often (or they were
    /// sync jobs, whose client is gone with the node).
    pub failed: usize,
}

/// Identity and lease settings of this node, as the store needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeIdentity {
    /// Unique per process start: `<name>#<8 hex digits>`. Leases are held
    /// in this name, so a restarted node never mistakes its previous life's
    /// leases for its own.
    pub id: String,
    /// How long a claim lasts without renewal.
    pub lease: Duration,
    /// How many times a job may be started before a lost lease fails it.
    pub max_attempts: u32,
}

impl NodeIdentity {
    /// A fresh identity for a node called `name`.
    pub fn new(name: &str, lease: Duration, max_attempts: u32) -> Self {
        let incarnation = Uuid::new_v4().simple().to_string();
        Self {
            id: format!("{name}#{}", &incarnation[..8]),
            lease,
            max_attempts,
        }
    }
}

/// How a process record is written, which decides when it is: the
/// three ways a process comes to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessWrite {
    /// A deploy: only when no process has the id.
    Deploy,
    /// A replace: only over a mutable (deployed) process with the id. The
    /// module it used is touched, so that jobs accepted under it keep it
    /// through the collection's grace period.
    Replace,
    /// A built-in or a processes-directory module at start-up: over
    /// whatever has the id (always written).
    Install,
}

/// The database. Cheap to clone: one reference count.
#[derive(Debug, Clone)]
pub enum Store {
    /// Embedded sled (one node).
    Sled(Arc<self::sled::SledStore>),
    /// Shared PostgreSQL (a cluster).
    Postgres(Arc<self::postgres::PgStore>),
}

/// Call the same method on whichever backend runs. This is also the one
/// place store writes are timed (`wasmproc_store_write_duration_seconds`,
/// labelled with the method name): every write of either backend passes
/// here, so neither backend carries metrics code.
macro_rules! dispatch {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {{
        let started = std::time::Instant::now();
        let result = match $self {
            Store::Sled(s) => s.$method($($arg),*).await,
            Store::Postgres(p) => p.$method($($arg),*).await,
        };
        let operation = stringify!($method);
        if WRITE_OPERATIONS.contains(&operation) {
            crate::telemetry::metrics::store_write(operation, started.elapsed());
        }
        result
    }};
}

/// The [`Store`] methods that write, by name: the ones whose latency is
/// recorded. Reads are left out (they are the HTTP latency's business).
const WRITE_OPERATIONS: &[&str] = &[
    "write_process",
    "delete_process",
    "collect_modules",
    "enqueue_job",
    "claim_jobs",
    "start_sync_job",
    "insert_failed_job",
    "insert_finished_job",
    "update_progress",
    "finish_job",
    "requeue_job",
    "delete_job",
    "heartbeat",
    "sweep_expired_leases",
    "delete_finished_before",
];

impl Store {
    /// Open the configured backend: sled in `data_dir/db`, or PostgreSQL at
    /// the configured URL (migrating its schema).
    pub async fn open(
        config: &StoreConfig,
        data_dir: &Path,
        node: NodeIdentity,
    ) -> Result<Self, StoreError> {
        match config.backend {
            StoreBackend::Sled => Ok(Store::Sled(Arc::new(self::sled::SledStore::open(
                &data_dir.join("db"),
            )?))),
            StoreBackend::Postgres => Ok(Store::Postgres(Arc::new(
                self::postgres::PgStore::connect(config, node).await?,
            ))),
        }
    }

    /// Let the server's shutdown finish with the store: on sled, wait (at
    /// most 10 s) for its work on the blocking pool, which holds the
    /// database and with it the directory lock. PostgreSQL has nothing to
    /// wait for: its connections close when the pool is dropped.
    pub async fn close(&self) {
        if let Store::Sled(sled) = self {
            sled.close().await;
        }
    }

    /// Whether the store can answer now (`GET /readyz`): PostgreSQL one
    /// round trip within `store.timeout`, else [`StoreError::Unavailable`];
    /// sled, in this process, always.
    pub async fn ping(&self) -> Result<(), StoreError> {
        dispatch!(self.ping())
    }

    /// `sled` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        match self {
            Store::Sled(_) => "sled",
            Store::Postgres(_) => "postgres",
        }
    }

    /// Whether other nodes share this store (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        matches!(self, Store::Postgres(_))
    }

    /// Events to react to (see [`StoreEvent`]).
    pub fn subscribe(&self) -> broadcast::Receiver<StoreEvent> {
        match self {
            Store::Sled(s) => s.subscribe(),
            Store::Postgres(p) => p.subscribe(),
        }
    }

    /// Woken whenever a job may have become claimable (a local submission,
    /// a notification from another node, a re-queued job).
    pub fn queue_wake(&self) -> &Notify {
        match self {
            Store::Sled(s) => s.queue_wake(),
            Store::Postgres(p) => p.queue_wake(),
        }
    }

    /// The dispatcher says whether it has an idle worker and will claim
    /// what is queued next. On PostgreSQL a local submission then wakes
    /// only this node; otherwise (and on sled, where there is only this
    /// node) nothing changes.
    pub fn set_claimer_ready(&self, ready: bool) {
        match self {
            Store::Sled(_) => {}
            Store::Postgres(p) => p.set_claimer_ready(ready),
        }
    }

    /// The dispatcher's last claim took all it asked for, so more jobs
    /// may be queued than this node can take: on PostgreSQL, wake the
    /// other nodes (coalesced); on sled, nothing to do.
    pub fn announce_backlog(&self) {
        match self {
            Store::Sled(_) => {}
            Store::Postgres(p) => p.announce_backlog(),
        }
    }

    // ---- processes and modules -------------------------------------------

    /// How many bytes the stored jobs take: every job's record (its
    /// inputs, state and log) and results, as the backend stores them;
    /// also per owner when `by_owner` (which costs reading each job's
    /// owner). A walk of every job, so it is called now and then
    /// (`jobs/storage.rs`), never per request.
    pub async fn stored_job_bytes(&self, by_owner: bool) -> Result<StoredBytes, StoreError> {
        dispatch!(self.stored_job_bytes(by_owner))
    }

    /// Delete the module bytes that no process and no queued or running
    /// job uses and that nothing touched (stored, replaced away from,
    /// undeployed) for `grace`; returns their sha256s. Finished jobs keep
    /// their results, not their module.
    pub async fn collect_modules(
        &self,
        grace: std::time::Duration,
    ) -> Result<Vec<String>, StoreError> {
        dispatch!(self.collect_modules(grace))
    }

    /// Store a process record and its module bytes, durably, when `how`
    /// allows it: whether the record was written (`false`: it was not,
    /// and only module bytes a later collection removes may have been).
    /// The check and the write are one atomic step of the backend, so two
    /// nodes (or two requests) writing one id at once agree on the
    /// outcome.
    pub async fn write_process(
        &self,
        record: &ProcessRecord,
        wasm: &[u8],
        how: ProcessWrite,
    ) -> Result<bool, StoreError> {
        dispatch!(self.write_process(record, wasm, how))
    }

    /// A process record by id.
    pub async fn get_process(&self, id: &str) -> Result<Option<ProcessRecord>, StoreError> {
        dispatch!(self.get_process(id))
    }

    /// Every process record, ordered by id.
    pub async fn list_processes(&self) -> Result<Vec<ProcessRecord>, StoreError> {
        dispatch!(self.list_processes())
    }

    /// Remove a mutable process, durably; `false` when there was none. Its
    /// module bytes stay for the jobs that still run it.
    pub async fn delete_process(&self, id: &str) -> Result<bool, StoreError> {
        dispatch!(self.delete_process(id))
    }

    /// Module bytes by sha256.
    pub async fn get_module(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        dispatch!(self.get_module(sha256))
    }

    // ---- job lifecycle ----------------------------------------------------

    /// Accept an async job: durable and claimable when this returns. Fails
    /// with [`StoreError::QueueFull`] (writing nothing) when `max_queued`
    /// jobs already wait.
    pub async fn enqueue_job(&self, job: &JobRecord, max_queued: usize) -> Result<(), StoreError> {
        let result = dispatch!(self.enqueue_job(job, max_queued));
        if result.is_ok() {
            count_submitted(job);
        }
        result
    }

    /// Jobs accepted and not yet claimed (cluster-wide with PostgreSQL).
    pub async fn queued_jobs(&self) -> Result<usize, StoreError> {
        dispatch!(self.queued_jobs())
    }

    /// Take up to `max` queued async jobs for this node, oldest first, and
    /// mark them `running` (under a lease, with PostgreSQL).
    pub async fn claim_jobs(&self, max: usize) -> Result<Vec<JobRecord>, StoreError> {
        let result = dispatch!(self.claim_jobs(max));
        for job in result.iter().flatten() {
            count_started(job);
        }
        result
    }

    /// Record a sync job that starts running now on this node.
    pub async fn start_sync_job(&self, job: &JobRecord) -> Result<(), StoreError> {
        let result = dispatch!(self.start_sync_job(job));
        if result.is_ok() {
            count_sync_start(job);
        }
        result
    }

    /// Record a job that is finished when it is created, with its
    /// results (a result reused from the cache, `jobs/cache.rs`).
    pub async fn insert_finished_job(
        &self,
        job: &JobRecord,
        results: &JobResults,
    ) -> Result<(), StoreError> {
        let result = dispatch!(self.insert_finished_job(job, results));
        if result.is_ok() {
            count_submitted(job);
            count_finished(job);
        }
        result
    }

    /// Record a job that failed before it ever ran (a sync job that found
    /// no worker in time, a workflow step whose tree's fuel budget was
    /// used up before it was queued).
    pub async fn insert_failed_job(&self, job: &JobRecord) -> Result<(), StoreError> {
        let result = dispatch!(self.insert_failed_job(job));
        if result.is_ok() {
            count_submitted(job);
            count_finished(job);
        }
        result
    }

    /// Write a running job's progress (not forced to disk); `false` when
    /// the job no longer exists or no longer runs here.
    pub async fn update_progress(&self, job: &JobRecord) -> Result<bool, StoreError> {
        dispatch!(self.update_progress(job))
    }

    /// Write a job's final state and its results together. For an async
    /// job this is durable before anybody can see the job finished; until
    /// then readers see `shown` (its state before; ignored for sync jobs). `false` (nothing
    /// written) when the job was deleted or, in a cluster, taken over by
    /// another node meanwhile.
    pub async fn finish_job(
        &self,
        shown: &JobRecord,
        job: &JobRecord,
        results: Option<&JobResults>,
    ) -> Result<bool, StoreError> {
        let result = dispatch!(self.finish_job(shown, job, results));
        if let Ok(true) = result {
            count_finished(job);
        }
        result
    }

    /// Put a running async job back in the queue (a graceful shutdown
    /// stopped it), durably; `false` when it no longer exists.
    pub async fn requeue_job(&self, job: &JobRecord) -> Result<bool, StoreError> {
        dispatch!(self.requeue_job(job))
    }

    /// Delete a job and its results, durably, and tell every node
    /// ([`StoreEvent::JobDismissed`]). Returns the job as it was.
    pub async fn delete_job(&self, id: Uuid) -> Result<Option<JobRecord>, StoreError> {
        let result = dispatch!(self.delete_job(id));
        if let Ok(Some(job)) = &result {
            metrics::job_dismissed(&job.process_id);
        }
        result
    }

    /// A job by id.
    pub async fn get_job(&self, id: Uuid) -> Result<Option<JobRecord>, StoreError> {
        dispatch!(self.get_job(id))
    }

    /// A page of jobs matching the query, newest first, found through
    /// indexes (see each backend for how each filter is served).
    pub async fn list_jobs(&self, query: &JobQuery) -> Result<JobPage, StoreError> {
        dispatch!(self.list_jobs(query))
    }

    /// The results of a job.
    pub async fn get_results(&self, id: Uuid) -> Result<Option<JobResults>, StoreError> {
        dispatch!(self.get_results(id))
    }

    // ---- lifecycle --------------------------------------------------------

    /// Start-up recovery. sled (one node): jobs found `running` were cut
    /// off by a crash and are failed, `accepted` ones are queued again.
    /// PostgreSQL: nothing here; a dead node's jobs come back when their
    /// leases expire ([`Store::sweep_expired_leases`]).
    pub async fn recover(&self) -> Result<Recovery, StoreError> {
        dispatch!(self.recover())
    }

    /// Renew this node's leases and say which of `running` (the jobs this
    /// node believes it runs) it no longer holds: dismissed, or taken over
    /// after this node was cut off for longer than a lease. The caller
    /// stops those. Also records the node as alive. sled: nothing is lost.
    pub async fn heartbeat(&self, running: &[Uuid]) -> Result<Vec<Uuid>, StoreError> {
        dispatch!(self.heartbeat(running))
    }

    /// Re-queue (or fail, past the attempt limit) the jobs whose node
    /// stopped renewing their lease. Any node may run it; each expired job
    /// is handled once. sled: nothing to do.
    pub async fn sweep_expired_leases(&self) -> Result<LeaseSweep, StoreError> {
        let result = dispatch!(self.sweep_expired_leases());
        if let Ok(sweep) = &result {
            metrics::jobs_node_lost(sweep.failed);
        }
        result
    }

    /// Delete jobs that finished before `cutoff`, with their results, one
    /// batch per call: up to `max` on sled, up to `max` per finished state
    /// on PostgreSQL (so up to three times `max`); returns how many.
    /// PostgreSQL: one node at a time (an advisory lock), the others
    /// return 0.
    pub async fn delete_finished_before(
        &self,
        cutoff: DateTime<Utc>,
        max: usize,
    ) -> Result<usize, StoreError> {
        dispatch!(self.delete_finished_before(cutoff, max))
    }

    /// Number of jobs stored (running sync jobs included).
    pub async fn job_count(&self) -> Result<u64, StoreError> {
        dispatch!(self.job_count())
    }
}

// ---- job metrics --------------------------------------------------------
//
// The store is where every job's state changes are written, once each, so
// it is where they are counted (`telemetry::metrics` says so). These turn
// a record into the plain facts the metrics take.

/// Count a job accepted.
pub(crate) fn count_submitted(job: &JobRecord) {
    metrics::job_submitted(&job.process_id, job.asynchronous);
}

/// Count a sync job that starts now: stored by
/// [`Store::start_sync_job`], or one that is not kept
/// (`execution.keep_sync_jobs = false`), counted all the same.
pub(crate) fn count_sync_start(job: &JobRecord) {
    count_submitted(job);
    count_started(job);
}

/// Observe how long a job that starts now waited.
fn count_started(job: &JobRecord) {
    if let Some(waited) = job.queue_wait() {
        metrics::job_started(&job.process_id, waited);
    }
}

/// Count a job whose outcome is now stored and visible (or final, for a
/// sync job that is not kept), observe what it cost, and say so in the
/// log (inside the job's span).
pub(crate) fn count_finished(job: &JobRecord) {
    let outcome = job.outcome_label();
    metrics::job_finished(&metrics::FinishedJob {
        process: &job.process_id,
        outcome,
        seconds: job
            .stats
            .map(|s| s.duration.as_secs_f64())
            .or_else(|| job.duration_seconds()),
        fuel_consumed: job.stats.map(|s| s.fuel_consumed),
        peak_memory_bytes: job.stats.map(|s| s.peak_memory_bytes),
    });
    tracing::debug!(job = %job.id, outcome, "job finished");
}

#[cfg(test)]
mod disk_full_tests {
    use super::*;

    #[test]
    fn a_write_that_found_no_space_is_told_apart() {
        let full = std::io::Error::from_raw_os_error(28);
        assert!(StoreError::from(::sled::Error::Io(full)).is_disk_full());
        let quota = std::io::Error::from(std::io::ErrorKind::QuotaExceeded);
        assert!(StoreError::from(::sled::Error::Io(quota)).is_disk_full());
        let other = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert!(!StoreError::from(::sled::Error::Io(other)).is_disk_full());
        assert!(!StoreError::QueueFull(1).is_disk_full());
    }
}
