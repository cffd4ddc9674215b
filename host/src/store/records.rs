//! What the store keeps: process and job records, and job results.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::failure::FailureKind;
use crate::ogc::{ExecuteRequest, JobStatus};
use crate::runtime::{Limits, ProcessOutput, RunStats};

/// A process the server offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessRecord {
    /// The process id (from its description).
    pub id: String,
    /// The OGC process description, as the module returned it (or as the
    /// deployer overrode it).
    pub description: serde_json::Value,
    /// SHA-256 of the module bytes, the key into the module tree.
    pub module_sha256: String,
    /// Whether it can be replaced or undeployed (false for built-ins).
    pub mutable: bool,
    /// When it was (last) deployed.
    pub deployed: DateTime<Utc>,
    /// Whether `description` came from the deployer's application package
    /// rather than the module's `describe()`.
    #[serde(default)]
    pub description_overridden: bool,
    /// Job limits given at deploy time (still capped by the server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    /// `jobControlOptions` given at deploy time.
    #[serde(default)]
    pub job_control_options: Option<Vec<String>>,
    /// A deployed workflow's document (its top call, with `$input`
    /// placeholders); `None` for a component. Its bytes are also stored
    /// as the process's module, `module_sha256` being their hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<serde_json::Value>,
}

/// Why a job failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFailure {
    /// The kind of failure (which limit, which error).
    pub kind: FailureKind,
    /// The process error code, when the process reported one.
    pub code: Option<String>,
    /// A sentence for people.
    pub reason: String,
}

/// One job, sync or async.
///
/// Stored as JSON; a field that is `None` (or empty, or zero) is left out
/// rather than written as `null`, and read back as `None`: a queued job's
/// record is then about 100 bytes shorter, which is what every queued job
/// costs the store's cache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// Random, unguessable id.
    pub id: Uuid,
    /// The process it runs.
    pub process_id: String,
    /// The module version it runs (replacements do not affect it).
    pub module_sha256: String,
    /// Current state.
    pub status: JobStatus,
    /// Status message (the failure reason when failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Creation time.
    pub created: DateTime<Utc>,
    /// Start of execution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<DateTime<Utc>>,
    /// End of execution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<DateTime<Utc>>,
    /// Last change.
    pub updated: DateTime<Utc>,
    /// Percent done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<u8>,
    /// The execute request, inputs included (to run it after a restart).
    pub request: ExecuteRequest,
    /// Whether the client waits for it (sync) or polls (async).
    pub asynchronous: bool,
    /// The limits in force when it was accepted (a later replace or
    /// undeploy of its process does not change them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<JobFailure>,
    /// What the run cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<RunStats>,
    /// The guest's log (bounded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    /// The node that ran (or runs) it: its name and incarnation. Only set
    /// by a cluster (PostgreSQL backend).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// How many times a node started it. More than one means a node that
    /// ran it was lost and another ran it again.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts: u32,
    /// The API key that created it (its name), when keys are configured;
    /// only that key and admins see the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// For a step of a workflow (a nested process): the job whose input
    /// it computes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Uuid>,
    /// For a job with nested processes: the jobs that computed its inputs,
    /// each with the path of the input (`inputs.geometry`), in input order.
    /// Written with the job's final state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
    /// For a job whose results were reused from an earlier one (same
    /// module, inputs and requested outputs of a process with `cache`):
    /// that job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_from: Option<Uuid>,
    /// For a job of a process with `cache = true`: the key its results are
    /// kept under once it succeeds (hex), computed when it was accepted
    /// from the registration it was accepted under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_key: Option<String>,
    /// For a job of a process with `cache = true` whose inputs are not
    /// known when it is accepted (an `href` to fetch, a nested process to
    /// run): what its key is computed from once they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_pending: Option<CachePending>,
}

/// What the cache key of a job whose inputs are known only when it runs is
/// computed from, besides those inputs (see `jobs/cache.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachePending {
    /// When the registration it was accepted under was deployed.
    pub deployed: DateTime<Utc>,
    /// Whether earlier results may answer it (false with
    /// `Cache-Control: no-cache`: it runs, and its results are kept).
    pub reuse: bool,
}

/// One step of a workflow, as its parent job records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Where its output went: `inputs.<id>` (with `[i]` for one of several
    /// occurrences), nested steps' paths continuing inside theirs.
    pub path: String,
    /// The step's own job (nil for a step on another server).
    pub job_id: Uuid,
    /// A step on another server (`jobs/remote.rs`): its job's URL there,
    /// when that server gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// Whether to leave `attempts` out of a stored record: a job no claim has
/// counted yet (queued, or failed before it ran) carries no zero field.
fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl JobRecord {
    /// A new job in state `accepted`.
    pub fn new(
        process_id: &str,
        module_sha256: &str,
        request: ExecuteRequest,
        asynchronous: bool,
    ) -> Self {
        let now = Utc::now();
        Self {
            id: Uuid::new_v4(),
            process_id: process_id.to_owned(),
            module_sha256: module_sha256.to_owned(),
            status: JobStatus::Accepted,
            message: None,
            created: now,
            started: None,
            finished: None,
            updated: now,
            progress: None,
            request,
            asynchronous,
            limits: None,
            failure: None,
            stats: None,
            log: None,
            node: None,
            attempts: 0,
            owner: None,
            parent: None,
            steps: Vec::new(),
            cached_from: None,
            cache_key: None,
            cache_pending: None,
        }
    }

    /// Set the job running from now, at 0 %.
    pub fn mark_running(&mut self) {
        let now = Utc::now();
        self.status = JobStatus::Running;
        self.started = Some(now);
        self.updated = now;
        self.progress = Some(0);
    }

    /// Set the job failed from now, with a reason of the given kind.
    pub fn mark_failed(&mut self, kind: FailureKind, reason: impl Into<String>) {
        let reason = reason.into();
        let now = Utc::now();
        self.status = JobStatus::Failed;
        self.failure = Some(JobFailure {
            kind,
            code: None,
            reason: reason.clone(),
        });
        self.message = Some(reason);
        self.finished = Some(now);
        self.updated = now;
    }

    /// How long the job waited between being created and starting; none
    /// before it starts.
    pub fn queue_wait(&self) -> Option<std::time::Duration> {
        let waited = self.started? - self.created;
        Some(waited.to_std().unwrap_or_default())
    }

    /// The outcome label of a finished job, as metrics and logs name it:
    /// `success`, `dismissed`, or its failure kind.
    pub fn outcome_label(&self) -> &'static str {
        match (self.status, &self.failure) {
            (JobStatus::Successful, _) => "success",
            (_, Some(failure)) => failure.kind.as_str(),
            (JobStatus::Dismissed, None) => "dismissed",
            (_, None) => "unknown",
        }
    }

    /// Seconds between start and finish (or now, while running).
    pub fn duration_seconds(&self) -> Option<f64> {
        self.duration_millis().map(|ms| ms as f64 / 1000.0)
    }

    /// Whole milliseconds between start and finish (or now, while
    /// running): what the duration indexes store.
    pub fn duration_millis(&self) -> Option<i64> {
        let started = self.started?;
        let end = self.finished.unwrap_or_else(Utc::now);
        Some((end - started).num_milliseconds().max(0))
    }
}

/// The outputs of a successful job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobResults {
    /// Every output the process produced.
    pub outputs: Vec<ProcessOutput>,
}
