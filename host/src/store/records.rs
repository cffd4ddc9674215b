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
/// rather than written as `null`, and read back as `None` (every `Option`
/// field through `skip_serializing_none`, the others by their own
/// `skip_serializing_if`): a queued job's
/// record is then about 100 bytes shorter, which is what every queued job
/// costs the store's cache.
#[serde_with::skip_serializing_none]
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
    pub message: Option<String>,
    /// Creation time.
    pub created: DateTime<Utc>,
    /// Start of execution.
    pub started: Option<DateTime<Utc>>,
    /// End of execution.
    pub finished: Option<DateTime<Utc>>,
    /// Last change.
    pub updated: DateTime<Utc>,
    /// Percent done.
    pub progress: Option<u8>,
    /// The execute request, inputs included (to run it after a restart).
    pub request: ExecuteRequest,
    /// Whether the client waits for it (sync) or polls (async).
    pub asynchronous: bool,
    /// The limits in force when it was accepted (a later replace or
    /// undeploy of its process does not change them).
    pub limits: Option<Limits>,
    /// Why it failed.
    pub failure: Option<JobFailure>,
    /// What the run cost.
    pub stats: Option<RunStats>,
    /// The guest's log (bounded).
    pub log: Option<String>,
    /// The node that ran (or runs) it: its name and incarnation. Only set
    /// by a cluster (PostgreSQL backend).
    pub node: Option<String>,
    /// How many times a node started it. More than one means a node that
    /// ran it was lost and another ran it again.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts: u32,
    /// The API key that created it (its name), when keys are configured;
    /// only that key and admins see the job.
    pub owner: Option<String>,
    /// For a step of a workflow (a nested process): the job whose input
    /// it computes.
    pub parent: Option<Uuid>,
    /// For a job with nested processes: the jobs that computed its inputs,
    /// each with the path of the input (`inputs.geometry`), in input order.
    /// Written with the job's final state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
    /// For a job whose results were reused from an earlier one (same
    /// module, inputs and requested outputs of a process with `cache`):
    /// that job.
    pub cached_from: Option<Uuid>,
    /// For a job of a process with `cache = true`: the key its results are
    /// kept under once it succeeds (hex), computed when it was accepted
    /// from the registration it was accepted under.
    pub cache_key: Option<String>,
    /// For a job of a process with `cache = true` whose inputs are not
    /// known when it is accepted (an `href` to fetch, a nested process to
    /// run): what its key is computed from once they are.
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
            id: job_id(now),
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

/// A new job's id: a UUID version 7 (RFC 9562), the millisecond of
/// `created` in its first 48 bits and 74 random bits after them.
///
/// Why time first: both stores keep jobs and results keyed by id (sled's
/// `jobs` and `results` trees, PostgreSQL's primary key). With random ids
/// (version 4) every new job lands on a random leaf of an ever larger
/// tree, so each write pulls a cold page into the cache and rewrites it;
/// with the time first, new jobs land together at the tree's end, on pages
/// that stay hot. On the sled store that made a stored sync hello-world
/// request about 12 % cheaper in server CPU (BENCHMARKS.md, "Job ids in
/// time order").
///
/// Why still unguessable: without `auth.protect_jobs` an id is the only
/// key to a job's inputs and results. The random part is drawn whole for
/// every id (no per-millisecond counter as in `Uuid::now_v7`, whose
/// neighbouring ids differ by one), so knowing one job's id and another's
/// exact millisecond still leaves 2^74 guesses. What the id reveals, the
/// creation time, the job's status shows anyway. The bits come from
/// `rand`'s thread-local ChaCha12 generator (uuid's `fast-rng` feature), a
/// cryptographic generator seeded from the operating system: no
/// `getrandom` system call per id (with the request id's, two a sync
/// request: about 1 % of its server CPU, BENCHMARKS.md).
fn job_id(created: DateTime<Utc>) -> Uuid {
    // A time before 1970 cannot come from `Utc::now` on a sane clock; it
    // is clamped to the epoch rather than wrapped.
    let seconds = u64::try_from(created.timestamp()).unwrap_or(0);
    // Counter bits 0: `new_v7` fills all 74 bits after the time at random.
    Uuid::new_v7(uuid::Timestamp::from_unix_time(
        seconds,
        created.timestamp_subsec_nanos(),
        0,
        0,
    ))
}

/// The outputs of a successful job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobResults {
    /// Every output the process produced.
    pub outputs: Vec<ProcessOutput>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_id_is_version_7_and_carries_the_millisecond_it_was_created() {
        let created: DateTime<Utc> = "2026-12-04T18:00:00.123456Z".parse().unwrap();
        let id = job_id(created);
        assert_eq!(id.get_version(), Some(uuid::Version::SortRand));
        let (seconds, nanos) = id.get_timestamp().unwrap().to_unix();
        assert_eq!((seconds, nanos), (1_796_407_200, 123_000_000));
        let later = job_id(created + chrono::Duration::milliseconds(1));
        assert!(later > id, "{later} after {id}");
    }

    #[test]
    fn job_ids_of_one_millisecond_share_nothing_after_the_time() {
        let created = Utc::now();
        let ids: Vec<Uuid> = (0..1000).map(|_| job_id(created)).collect();
        let distinct: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        assert!(
            ids.iter()
                .all(|id| id.as_bytes()[..6] == ids[0].as_bytes()[..6])
        );
        // A counter (as `Uuid::now_v7` keeps within a millisecond) would
        // leave neighbours equal in these bytes; drawn at random, a pair
        // is equal in 30 bits once in a billion.
        let alike = ids
            .windows(2)
            .filter(|pair| pair[0].as_bytes()[8..12] == pair[1].as_bytes()[8..12])
            .count();
        assert_eq!(alike, 0, "{ids:?}");
    }
}
