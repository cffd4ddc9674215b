//! `[execution]`, `[processes.ID]`, `[href]` and `[callbacks]`: how jobs
//! run and are bounded (modes, workers, queue, retention, stored bytes,
//! nesting, caching), what one process may change about its own jobs,
//! and the two ways a job reaches the network: fetching `href` inputs and
//! posting callbacks, both behind the address guard (`jobs/address_guard.rs`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::PartialLimits;

/// How jobs are executed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExecutionConfig {
    /// Allow synchronous execution at all. Default `true`.
    pub enable_sync: bool,
    /// Allow asynchronous execution at all. Default `true`.
    pub enable_async: bool,
    /// Longest a synchronous request waits for its job; past it the job
    /// is failed with a timeout. Default 60 s.
    #[serde(with = "humantime_serde")]
    pub sync_timeout: Duration,
    /// Jobs running at once (sync and async together). Default: number of
    /// cores.
    pub max_concurrent_jobs: usize,
    /// Async jobs waiting for a worker; beyond it submissions get 503 with
    /// `Retry-After`. Default 1000.
    pub max_queued_jobs: usize,
    /// Synchronous requests waiting for a worker on this node; beyond it
    /// they get 503 with `Retry-After` at once. Each waiting request holds a
    /// connection and its body in memory, so the wait must be bounded like
    /// the async queue. Default 100.
    pub max_waiting_sync: usize,
    /// A process's sync jobs start on the HTTP thread that took the
    /// request (saving two thread hand-offs, about a fifth of a short
    /// job's CPU) while the first slices of its recent jobs took less CPU
    /// than this on average; otherwise on the job threads
    /// (`jobs/inline.rs`). Status reads then share the HTTP threads with
    /// short guests. `"0s"`: every job starts on the job threads. Default
    /// 200 µs.
    #[serde(with = "humantime_serde")]
    pub sync_start_budget: Duration,
    /// Whether a synchronous request's job is stored. `true` (the
    /// default): like any job, it can be read at `/jobs/{id}` (the answer
    /// links it with `Link: rel=monitor`), is listed, and has its pages.
    /// `false`: nothing about it is written; its client has the answer,
    /// the metrics count it, and the server's CPU per short sync request
    /// drops by more than a third (BENCHMARKS.md). Kept whatever this says: a
    /// job with nested processes or steps, a job of a process with
    /// `cache = true`, a job run from the HTML form, and every async job.
    pub keep_sync_jobs: bool,
    /// How long finished jobs and their results are kept. Default 7 days.
    #[serde(with = "humantime_serde")]
    pub job_retention: Duration,
    /// Most bytes of job data (inputs, logs and results, as stored) before
    /// new jobs are refused with 507 Insufficient Storage; reads,
    /// dismissals and deletions go on. Cluster-wide with PostgreSQL. 0: no
    /// bound. Default 10 GiB.
    pub max_stored_bytes: u64,
    /// Least free space on the data directory's disk, in bytes, below
    /// which new jobs are refused with 507 Insufficient Storage (sled
    /// only: see `jobs/disk_space.rs`). sled cannot recover from a write
    /// that failed for lack of space without a restart, so this stops
    /// short of it. 0: no floor. Default 256 MiB.
    pub min_free_disk_bytes: u64,
    /// Least time between two counts of the stored job data (a walk of
    /// every job; slower counts space themselves out further, see
    /// `jobs/storage.rs`). Freed space is seen by the next count.
    /// Default 30 s.
    #[serde(with = "humantime_serde")]
    pub storage_recount: Duration,
    /// Module bytes that no process and no queued or running job uses are
    /// deleted from the store this long after they were last used (a
    /// deploy, replace or undeploy touching them). The delay covers a job
    /// accepted by one request while another undeploys its process.
    /// Checked with the retention sweep, and after every replace and
    /// undeploy. Default 10 min.
    #[serde(with = "humantime_serde")]
    pub module_grace: Duration,
    /// On shutdown, how long open requests and running jobs may take to
    /// finish, counted from the signal, before the jobs still running are
    /// stopped: async ones are re-queued, a sync request is answered 503
    /// with Retry-After. Default 30 s.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Whether an output its description does not declare, or whose value
    /// its schema refuses, fails the job (`"strict"`, default) or is
    /// logged as a warning (`"warn"`); `[processes.ID] output_checks`
    /// overrides it per process.
    pub output_checks: OutputChecks,
    /// Deepest nesting of processes in one execute request (OGC API -
    /// Processes Part 3 nested processes; the top process is depth 0).
    /// Default 8.
    pub max_nesting_depth: usize,
    /// Most nested processes (steps) in one execute request, at every
    /// depth. Each is a job that takes a worker while it runs. Default 64.
    pub max_nested_steps: usize,
    /// Most elements one `map` of a nested process runs over (each is a
    /// job). Default 10,000.
    pub max_map_elements: usize,
    /// Longest time the steps of one job (its nested processes, at every
    /// depth) may take in all; past it the running steps are dismissed and
    /// the job fails saying so. Default 1 hour.
    #[serde(with = "humantime_serde")]
    pub workflow_timeout: Duration,
    /// Most fuel the guests of one tree of nested processes (every step
    /// at every depth, and the top job's own run) may burn in all; each
    /// also keeps its own limit. Default 10^12, ten steps at the default
    /// per-job limit.
    pub workflow_fuel: u64,
    /// URL prefixes of processes on other OGC API - Processes servers that
    /// a nested process may name (`jobs/remote.rs`), e.g.
    /// `"https://processes.example.org/processes/"`. They are reached
    /// through the guard of `href` inputs too. Default: none.
    pub remote_processes: Vec<String>,
    /// How long the results of a process with `cache = true` are reused.
    /// Default 1 hour.
    #[serde(with = "humantime_serde")]
    pub cache_ttl: Duration,
    /// Most bytes of results the cache keeps in memory (least recently
    /// used go first). Default 256 MiB.
    pub cache_max_bytes: u64,
}

impl Default for ExecutionConfig {
    fn default() -> Self {
        Self {
            enable_sync: true,
            enable_async: true,
            sync_timeout: Duration::from_secs(60),
            max_concurrent_jobs: std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(2),
            max_queued_jobs: 1000,
            max_waiting_sync: 100,
            sync_start_budget: Duration::from_micros(200),
            keep_sync_jobs: true,
            job_retention: Duration::from_secs(7 * 24 * 3600),
            max_stored_bytes: 10 << 30,
            min_free_disk_bytes: 256 << 20,
            storage_recount: Duration::from_secs(30),
            module_grace: Duration::from_secs(600),
            shutdown_grace: Duration::from_secs(30),
            output_checks: OutputChecks::Strict,
            max_nesting_depth: 8,
            max_nested_steps: 64,
            max_map_elements: 10_000,
            workflow_timeout: Duration::from_secs(3600),
            workflow_fuel: 1_000_000_000_000,
            remote_processes: Vec::new(),
            cache_ttl: Duration::from_secs(3600),
            cache_max_bytes: 256 << 20,
        }
    }
}

/// How strictly a successful run's outputs are held to the description.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputChecks {
    /// An undeclared output id or a value its schema refuses fails the
    /// job (`invalid-output`, naming the output). The default: a client
    /// gets what the description promises, or an error.
    #[default]
    Strict,
    /// Those two are logged as warnings (server log and job log) instead:
    /// the value is kept, an undeclared output dropped. For processes
    /// migrated from servers that never checked. A duplicate id or a
    /// contradicted media type fails the job all the same.
    Warn,
}

/// Overrides for one process (the pygeoapi-prefect model).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProcessOverrides {
    /// Replaces the `jobControlOptions` the module declares, e.g.
    /// `["async-execute"]` to force a slow process to run asynchronously.
    pub job_control_options: Option<Vec<String>>,
    /// Limits for this process's jobs: the fields given here, the others
    /// from `[limits.default]`; none may exceed `limits.max`.
    pub limits: Option<PartialLimits>,
    /// Overrides `execution.output_checks` for this process.
    pub output_checks: Option<OutputChecks>,
    /// The process is deterministic: a job with the same module, inputs
    /// and requested outputs as an earlier successful one reuses its
    /// results instead of running (`jobs/cache.rs`). Default `false`.
    pub cache: Option<bool>,
}

/// Fetching `href` inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HrefConfig {
    /// Hosts that may be fetched (exact host names or IP literals). Empty
    /// means any public host; loopback and private addresses are refused
    /// unless listed here.
    pub allowed_hosts: Vec<String>,
    /// Largest fetched input (or module deployed by reference), in bytes.
    /// Default 64 MiB (a Python component is ~18 MiB).
    pub max_bytes: u64,
    /// Timeout of one fetch. Default 10 s.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for HrefConfig {
    fn default() -> Self {
        Self {
            allowed_hosts: Vec::new(),
            max_bytes: 64 * 1024 * 1024,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Delivering callbacks to subscribers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallbackConfig {
    /// Hosts callbacks may be sent to (exact host names or IP literals),
    /// with the rules of `href.allowed_hosts`: empty means any public host;
    /// loopback and private addresses are refused unless listed. A
    /// subscriber URI outside these rules is refused at submission (400).
    pub allowed_hosts: Vec<String>,
    /// Timeout of one delivery attempt. Default 5 s.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Attempts per callback (with exponential backoff from 200 ms).
    /// Default 3.
    pub attempts: u32,
}

impl Default for CallbackConfig {
    fn default() -> Self {
        Self {
            allowed_hosts: Vec::new(),
            timeout: Duration::from_secs(5),
            attempts: 3,
        }
    }
}
