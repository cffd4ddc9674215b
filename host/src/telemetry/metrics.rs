//! Prometheus metrics: one recorder per process, recorded through the
//! `metrics` facade, rendered by `metrics-exporter-prometheus` as the text
//! format at `GET /metrics`.
//!
//! # Mechanism
//! [`install`] builds the recorder once per process and sets it as the
//! `metrics` crate's global recorder; the `counter!`/`histogram!` calls
//! below then update lock-free atomics keyed by name and labels (a hash
//! lookup, tens of nanoseconds). Histogram samples are buffered and
//! folded into fixed buckets by *upkeep*: on every scrape and every
//! `UPKEEP_INTERVAL` (5 s) on a thread of its own, so a server nobody scrapes
//! does not buffer samples without bound.
//!
//! Before [`install`] (e.g. `wasmproc run`) the facade's no-op recorder
//! swallows everything. A test binary that starts several servers in one
//! process shares one recorder: its counters are the sum of all of them,
//! which is why the metrics tests run the server as a child process.
//!
//! # Where things are recorded (one place each)
//! - HTTP: every answer, from the API's edge middleware
//!   ([`http_answered`]), labelled with the matched route *template*
//!   (`/jobs/{job_id}`), never the raw path, so a scan of random URLs
//!   cannot create unbounded series.
//! - Jobs: at the store's dispatch point (`store::Store`): a job is
//!   *submitted* when `enqueue_job` / `start_sync_job` /
//!   `insert_failed_job` succeed, *started* (queue wait) when claimed or
//!   started, *finished* when `finish_job` made its outcome visible. Every
//!   path that decides an outcome goes through those calls, so no outcome
//!   is counted twice or missed.
//! - Store write latency: the same dispatch point, for the methods that
//!   write.
//! - Sandbox instantiation and artifact-cache lookups: `runtime`.
//! - Gauges (queue depth, running jobs, workers, failed store writes): set
//!   at scrape time from the scheduler and the store ([`set_gauges`]).
//!
//! With the PostgreSQL store every series carries a `node` label (the
//! configured `cluster.node_name`), so one Prometheus can tell the nodes
//! of a cluster apart.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Every metric name, with what it counts. The README lists the same.
pub mod names {
    /// Counter: HTTP requests answered, by `method`, `route` (the matched
    /// route template, `unmatched` for a 404 on no route) and `status`.
    pub const HTTP_REQUESTS: &str = "wasmproc_http_requests_total";
    /// Histogram: seconds from request to response headers, by `method`
    /// and `route`.
    pub const HTTP_DURATION: &str = "wasmproc_http_request_duration_seconds";
    /// Counter: jobs accepted, by `process` and `mode` (`sync`, `async`).
    pub const JOBS_SUBMITTED: &str = "wasmproc_jobs_submitted_total";
    /// Counter: sync jobs started, by `process` and `thread`: `http` (the
    /// first slice on the HTTP thread that took the request) or
    /// `executor` (a process whose recent first slices overran their
    /// budget; `jobs/inline.rs`).
    pub const SYNC_JOB_STARTS: &str = "wasmproc_sync_job_starts_total";
    /// Counter: jobs whose outcome was stored, by `process` and `outcome`
    /// (`success`, or a failure kind: `fuel-exhausted`, `timeout`, …).
    pub const JOBS_FINISHED: &str = "wasmproc_jobs_finished_total";
    /// Counter: jobs dismissed by a client, by `process`.
    pub const JOBS_DISMISSED: &str = "wasmproc_jobs_dismissed_total";
    /// Counter: jobs failed by the lease sweep because their node was lost
    /// too often (cluster only; the sweep does not know their process).
    pub const JOBS_NODE_LOST: &str = "wasmproc_jobs_node_lost_total";
    /// Histogram: seconds from start to end of a finished job, by `process`.
    pub const JOB_DURATION: &str = "wasmproc_job_duration_seconds";
    /// Histogram: seconds a job waited between creation and start, by
    /// `process`.
    pub const JOB_QUEUE_WAIT: &str = "wasmproc_job_queue_wait_seconds";
    /// Histogram: fuel (wasm instructions) a finished job used, by
    /// `process`.
    pub const JOB_FUEL: &str = "wasmproc_job_fuel_consumed";
    /// Histogram: the highest linear memory of a finished job, by
    /// `process`.
    pub const JOB_PEAK_MEMORY: &str = "wasmproc_job_peak_memory_bytes";
    /// Gauge: async jobs accepted and not yet claimed (cluster-wide with
    /// PostgreSQL).
    pub const QUEUE_DEPTH: &str = "wasmproc_queue_depth";
    /// Gauge: 1 when the store answered the last scrape's query, 0 when it
    /// did not (PostgreSQL down or too slow): what to alert on.
    pub const STORE_UP: &str = "wasmproc_store_up";
    /// Gauge: jobs running on this node.
    pub const JOBS_RUNNING: &str = "wasmproc_jobs_running";
    /// Gauge: workers of this node (`max_concurrent_jobs`).
    pub const WORKERS: &str = "wasmproc_workers";
    /// Gauge: workers holding a job.
    pub const WORKERS_BUSY: &str = "wasmproc_workers_busy";
    /// Histogram: seconds to instantiate a component in a fresh sandbox.
    pub const SANDBOX_INSTANTIATE: &str = "wasmproc_sandbox_instantiate_duration_seconds";
    /// Histogram: seconds a store write took, by `operation` (the `Store`
    /// method: `enqueue_job`, `finish_job`, …).
    pub const STORE_WRITE: &str = "wasmproc_store_write_duration_seconds";
    /// Counter: store writes that failed where nobody waited for them
    /// (progress, an outcome after its client left; each is also logged).
    pub const STORE_WRITE_FAILURES: &str = "wasmproc_store_write_failures_total";
    /// Counter: compiled artifacts loaded from the cache.
    pub const ARTIFACT_CACHE_HITS: &str = "wasmproc_artifact_cache_hits_total";
    /// Counter: modules compiled because no valid artifact was cached.
    pub const ARTIFACT_CACHE_MISSES: &str = "wasmproc_artifact_cache_misses_total";
}

/// How often histogram samples are folded into buckets when nobody
/// scrapes: often enough that the buffer stays small at thousands of jobs
/// per second, rare enough to cost nothing measurable.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Buckets for seconds: 0.5 ms (a sync hello-world is ~0.1 ms of server
/// CPU, a status read less) to 5 min (the longest default job timeout is
/// 60 s; longer limits exist).
const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 300.0,
];
/// Buckets for fuel: a hello-world call is ~10^4 units, a Python guest
/// ~10^6, the default budget 10^11.
const FUEL_BUCKETS: &[f64] = &[1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12];
/// Buckets for memory: 64 KiB (one wasm page) to 1 GiB (the built-in
/// maximum), in powers of four.
const BYTES_BUCKETS: &[f64] = &[
    65_536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
    67_108_864.0,
    268_435_456.0,
    1_073_741_824.0,
];

/// The recorder's handle, once installed.
static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Install the process-wide recorder (once; later calls return the first
/// one's handle). `node` labels every series (the cluster node name, for
/// the PostgreSQL store).
pub fn install(node: Option<&str>) -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let mut builder = PrometheusBuilder::new();
        for (suffix, buckets) in [
            ("_seconds", SECONDS_BUCKETS),
            ("_fuel_consumed", FUEL_BUCKETS),
            ("_bytes", BYTES_BUCKETS),
        ] {
            // Only an empty bucket list is refused, and these are non-empty
            // constants: the fallback is never taken.
            builder = builder
                .set_buckets_for_metric(Matcher::Suffix(suffix.into()), buckets)
                .unwrap_or_else(|_| PrometheusBuilder::new());
        }
        if let Some(node) = node {
            builder = builder.add_global_label("node", node);
        }
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics will be empty");
        }
        describe_all();
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("wasmproc-metrics".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_INTERVAL);
                    upkeep.run_upkeep();
                }
            });
        if let Err(error) = spawned {
            tracing::warn!(%error, "no metrics upkeep thread; samples are folded at scrapes only");
        }
        handle
    })
}

/// The `# HELP` and `# TYPE` lines: every metric described once.
fn describe_all() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    use names::*;
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by method, route template and status"
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time from request to response headers, by method and route template"
    );
    describe_counter!(
        JOBS_SUBMITTED,
        "Jobs accepted, by process and mode (sync, async)"
    );
    describe_counter!(
        SYNC_JOB_STARTS,
        "Sync jobs started, by process and thread (http: on the HTTP thread that took the request; executor: on the job threads)"
    );
    describe_counter!(
        JOBS_FINISHED,
        "Jobs whose outcome was stored, by process and outcome (success or the failure kind)"
    );
    describe_counter!(JOBS_DISMISSED, "Jobs dismissed by a client, by process");
    describe_counter!(
        JOBS_NODE_LOST,
        "Jobs failed because the node running them was lost too often"
    );
    describe_histogram!(
        JOB_DURATION,
        Unit::Seconds,
        "Run time of finished jobs, by process"
    );
    describe_histogram!(
        JOB_QUEUE_WAIT,
        Unit::Seconds,
        "Time between a job's creation and its start, by process"
    );
    describe_histogram!(
        JOB_FUEL,
        "Fuel (wasm instructions) used by finished jobs, by process"
    );
    describe_histogram!(
        JOB_PEAK_MEMORY,
        Unit::Bytes,
        "Highest linear memory of finished jobs, by process"
    );
    describe_gauge!(
        QUEUE_DEPTH,
        "Async jobs accepted and not yet started (cluster-wide on PostgreSQL)"
    );
    describe_gauge!(
        STORE_UP,
        "1 when the store answered this scrape's query, 0 when it did not"
    );
    describe_gauge!(JOBS_RUNNING, "Jobs running on this node");
    describe_gauge!(WORKERS, "Workers of this node (max_concurrent_jobs)");
    describe_gauge!(WORKERS_BUSY, "Workers of this node holding a job");
    describe_histogram!(
        SANDBOX_INSTANTIATE,
        Unit::Seconds,
        "Time to instantiate a component in a fresh sandbox"
    );
    describe_histogram!(
        STORE_WRITE,
        Unit::Seconds,
        "Time of store writes, by operation"
    );
    describe_counter!(
        STORE_WRITE_FAILURES,
        "Store writes that failed without a client waiting for them"
    );
    describe_counter!(
        ARTIFACT_CACHE_HITS,
        "Compiled artifacts loaded from the cache"
    );
    describe_counter!(
        ARTIFACT_CACHE_MISSES,
        "Modules compiled because no valid artifact was cached"
    );
}

/// The text exposition of every metric (upkeep first, so the latest
/// histogram samples and descriptions are in). Empty before [`install`].
pub fn render() -> String {
    match HANDLE.get() {
        Some(handle) => {
            handle.run_upkeep();
            handle.render()
        }
        None => String::new(),
    }
}

/// The scheduler's and the store's state at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gauges {
    /// Jobs waiting in the queue (`None` when the store could not say,
    /// which also sets `wasmproc_store_up` to 0).
    pub queue_depth: Option<usize>,
    /// Jobs running on this node.
    pub running: usize,
    /// Workers of this node.
    pub workers: usize,
    /// Workers holding a job.
    pub busy_workers: usize,
    /// Failed unattended store writes since start.
    pub write_failures: u64,
}

/// Set the gauges (and the failed-writes counter, kept by the scheduler).
pub fn set_gauges(gauges: Gauges) {
    use names::*;
    if let Some(depth) = gauges.queue_depth {
        metrics::gauge!(QUEUE_DEPTH).set(depth as f64);
    }
    let store_up = if gauges.queue_depth.is_some() {
        1.0
    } else {
        0.0
    };
    metrics::gauge!(STORE_UP).set(store_up);
    metrics::gauge!(JOBS_RUNNING).set(gauges.running as f64);
    metrics::gauge!(WORKERS).set(gauges.workers as f64);
    metrics::gauge!(WORKERS_BUSY).set(gauges.busy_workers as f64);
    metrics::counter!(STORE_WRITE_FAILURES).absolute(gauges.write_failures);
}

/// Count one answered request by method, route template and status, and
/// observe its latency (`started` is when the request arrived). Called by
/// the API's edge middleware (`api::edge`), which runs after routing and
/// so knows the route template (`unmatched` for a fallback answer).
pub fn http_answered(method: &str, route: &str, status: u16, started: Instant) {
    metrics::counter!(names::HTTP_REQUESTS, "method" => method.to_owned(), "route" => route.to_owned(), "status" => status.to_string())
        .increment(1);
    metrics::histogram!(names::HTTP_DURATION, "method" => method.to_owned(), "route" => route.to_owned())
        .record(started.elapsed().as_secs_f64());
}

/// A job was accepted (sync or async).
pub(crate) fn job_submitted(process: &str, asynchronous: bool) {
    let mode = if asynchronous { "async" } else { "sync" };
    metrics::counter!(names::JOBS_SUBMITTED, "process" => process.to_owned(), "mode" => mode)
        .increment(1);
}

/// A sync job started, on an HTTP thread (`here`) or on the executor.
pub(crate) fn sync_job_started(process: &str, here: bool) {
    let thread = if here { "http" } else { "executor" };
    metrics::counter!(names::SYNC_JOB_STARTS, "process" => process.to_owned(), "thread" => thread)
        .increment(1);
}

/// A job started after waiting `waited` since it was created.
pub(crate) fn job_started(process: &str, waited: Duration) {
    metrics::histogram!(names::JOB_QUEUE_WAIT, "process" => process.to_owned())
        .record(waited.as_secs_f64());
}

/// What [`job_finished`] counts of a job whose outcome was stored. Plain
/// facts rather than the job's record, so that this module depends on
/// nothing of the store that calls it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FinishedJob<'a> {
    /// The job's process id.
    pub process: &'a str,
    /// `success`, `dismissed` or the failure kind's label.
    pub outcome: &'static str,
    /// Wall time of the run, when it ran.
    pub seconds: Option<f64>,
    /// Fuel the guest burned, when a guest ran.
    pub fuel_consumed: Option<u64>,
    /// The guest's largest linear memory, when a guest ran.
    pub peak_memory_bytes: Option<u64>,
}

/// A job's outcome was stored and is visible: count it and observe what
/// it cost.
pub(crate) fn job_finished(job: &FinishedJob<'_>) {
    let process = job.process.to_owned();
    metrics::counter!(names::JOBS_FINISHED, "process" => process.clone(), "outcome" => job.outcome)
        .increment(1);
    if let Some(seconds) = job.seconds {
        metrics::histogram!(names::JOB_DURATION, "process" => process.clone()).record(seconds);
    }
    if let Some(fuel) = job.fuel_consumed {
        metrics::histogram!(names::JOB_FUEL, "process" => process.clone()).record(fuel as f64);
    }
    if let Some(peak) = job.peak_memory_bytes {
        metrics::histogram!(names::JOB_PEAK_MEMORY, "process" => process).record(peak as f64);
    }
}

/// A job was dismissed.
pub(crate) fn job_dismissed(process: &str) {
    metrics::counter!(names::JOBS_DISMISSED, "process" => process.to_owned()).increment(1);
}

/// The lease sweep failed `count` jobs of lost nodes.
pub(crate) fn jobs_node_lost(count: usize) {
    if count > 0 {
        metrics::counter!(names::JOBS_NODE_LOST).increment(count as u64);
    }
}

/// A store write (`operation`) took `elapsed`.
pub(crate) fn store_write(operation: &'static str, elapsed: Duration) {
    metrics::histogram!(names::STORE_WRITE, "operation" => operation).record(elapsed.as_secs_f64());
}

/// A component was instantiated in `elapsed`.
pub(crate) fn sandbox_instantiated(elapsed: Duration) {
    metrics::histogram!(names::SANDBOX_INSTANTIATE).record(elapsed.as_secs_f64());
}

/// An artifact-cache lookup hit (loaded) or missed (compiled).
pub(crate) fn artifact_cache(hit: bool) {
    if hit {
        metrics::counter!(names::ARTIFACT_CACHE_HITS).increment(1);
    } else {
        metrics::counter!(names::ARTIFACT_CACHE_MISSES).increment(1);
    }
}
