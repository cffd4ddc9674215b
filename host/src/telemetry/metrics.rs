//! Prometheus metrics: one recorder per process, recorded through the
//! `metrics` facade, rendered by `metrics-exporter-prometheus` as the text
//! format at `GET /metrics`.
//!
//! # Mechanism
//! [`install`] builds the recorder once per process and sets it as the
//! `metrics` crate's global recorder. Each series is registered with it
//! once, by a `counter!`/`histogram!` call, and its handle kept in
//! `Series`, found again by process id or route template without
//! allocating; recording is then a lock-free atomic update. (A
//! `counter!` call with labels on every event builds its key, a `String`
//! per label, and looks it up in the recorder's registry: the ten such
//! calls of a sync hello-world request were 4.8 % of its server CPU.)
//! Histogram samples are buffered and folded into fixed buckets by
//! *upkeep*: on every scrape and every `UPKEEP_INTERVAL` (5 s) on a
//! thread of its own, so a server nobody scrapes does not buffer samples
//! without bound.
//!
//! Before [`install`] (e.g. `wasmproc run`) nothing is recorded: there is
//! no `Series` yet, and the facade's no-op recorder would swallow it. A
//! test binary that starts several servers in one process shares one
//! recorder: its counters are the sum of all of them, which is why the
//! metrics tests run the server as a child process.
//!
//! # Where things are recorded (one place each)
//! - HTTP: every answer, from the API's edge middleware
//!   ([`http_answered`]), labelled with the matched route *template*
//!   (`/jobs/{job_id}`), never the raw path, and with a method HTTP does
//!   not define labelled `other`, so a scan of random URLs or methods
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

use std::collections::HashMap;
use std::sync::{OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use metrics::{Counter, Histogram};
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
        // After the recorder is set (handles registered before would be
        // the no-op recorder's, kept for good); in `HANDLE`'s only
        // initialisation, so `SERIES` is always still empty here.
        if SERIES.set(Series::default()).is_err() {
            tracing::warn!("metric series were set up twice");
        }
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

/// The handles of every series registered so far, by the label values
/// that vary at run time. Created by [`install`] once the recorder is set.
///
/// A handle is registered the first time its series is recorded, not
/// before, so `/metrics` lists the same series as if each event
/// registered its own: none at zero that never happened. Every map is
/// bounded by what the server knows, never by what a client sends: process
/// ids are those of registered processes, routes are the router's
/// templates, methods are mapped onto a fixed list ([`method_label`]),
/// statuses are `u16`s and outcomes are `&'static str`s.
#[derive(Default)]
struct Series {
    /// By process id.
    processes: RwLock<HashMap<Box<str>, ProcessSeries>>,
    /// By route template (`unmatched` for no route).
    routes: RwLock<HashMap<Box<str>, RouteSeries>>,
    /// `wasmproc_store_write_duration_seconds`, by operation.
    store_writes: Labelled<&'static str, Histogram>,
    /// `wasmproc_sandbox_instantiate_duration_seconds`.
    instantiate: OnceLock<Histogram>,
    /// `wasmproc_jobs_node_lost_total`.
    node_lost: OnceLock<Counter>,
    /// The artifact-cache counters: hits, misses.
    artifact_cache: [OnceLock<Counter>; 2],
}

/// The series of one process.
#[derive(Default)]
struct ProcessSeries {
    /// `wasmproc_jobs_submitted_total`: `mode` sync, async.
    submitted: [OnceLock<Counter>; 2],
    /// `wasmproc_sync_job_starts_total`: `thread` http, executor.
    sync_starts: [OnceLock<Counter>; 2],
    /// `wasmproc_jobs_finished_total`, by outcome.
    finished: Labelled<&'static str, Counter>,
    /// `wasmproc_jobs_dismissed_total`.
    dismissed: OnceLock<Counter>,
    /// `wasmproc_job_queue_wait_seconds`.
    queue_wait: OnceLock<Histogram>,
    /// `wasmproc_job_duration_seconds`.
    duration: OnceLock<Histogram>,
    /// `wasmproc_job_fuel_consumed`.
    fuel: OnceLock<Histogram>,
    /// `wasmproc_job_peak_memory_bytes`.
    peak_memory: OnceLock<Histogram>,
}

/// The series of one route template.
#[derive(Default)]
struct RouteSeries {
    /// `wasmproc_http_requests_total`, by method and status.
    requests: Labelled<(&'static str, u16), Counter>,
    /// `wasmproc_http_request_duration_seconds`, by method.
    durations: Labelled<&'static str, Histogram>,
}

/// A few handles told apart by a small label value (an outcome, a method
/// and status): a list searched in order, cheaper than a hash lookup
/// for the handful of values each one meets.
struct Labelled<K, H>(RwLock<Vec<(K, H)>>);

impl<K, H> Default for Labelled<K, H> {
    fn default() -> Self {
        Labelled(RwLock::new(Vec::new()))
    }
}

impl<K: PartialEq + Copy, H> Labelled<K, H> {
    /// Run `record` on the handle for `key`, registered by `register` the
    /// first time.
    fn record(&self, key: K, register: impl FnOnce() -> H, record: impl FnOnce(&H)) {
        {
            let list = self.0.read().unwrap_or_else(PoisonError::into_inner);
            if let Some((_, handle)) = list.iter().find(|(k, _)| *k == key) {
                return record(handle);
            }
        }
        let mut list = self.0.write().unwrap_or_else(PoisonError::into_inner);
        let at = match list.iter().position(|(k, _)| *k == key) {
            Some(at) => at,
            None => {
                list.push((key, register()));
                list.len() - 1
            }
        };
        record(&list[at].1);
    }
}

/// Run `record` on the entry of `map` under `key`, made by `make` the
/// first time. The common case takes only the read lock.
fn with_entry<V>(
    map: &RwLock<HashMap<Box<str>, V>>,
    key: &str,
    make: impl FnOnce() -> V,
    record: impl FnOnce(&V),
) {
    {
        let map = map.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = map.get(key) {
            return record(entry);
        }
    }
    let mut map = map.write().unwrap_or_else(PoisonError::into_inner);
    record(map.entry(key.into()).or_insert_with(make));
}

/// Run `record` on the series of `process`, when metrics are installed.
fn with_process(process: &str, record: impl FnOnce(&ProcessSeries)) {
    if let Some(series) = SERIES.get() {
        with_entry(&series.processes, process, ProcessSeries::default, record);
    }
}

/// The series registered so far; set by [`install`].
static SERIES: OnceLock<Series> = OnceLock::new();

/// The `method` label: the request's method when it is one of HTTP's
/// standard ones, else `other`. HTTP lets a client invent methods
/// (`FROBNICATE /jobs` is answered 405); labelled as sent, each would add
/// a series for good.
fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "OPTIONS" => "OPTIONS",
        "CONNECT" => "CONNECT",
        "TRACE" => "TRACE",
        _ => "other",
    }
}

/// Count one answered request by method, route template and status, and
/// observe its latency (`started` is when the request arrived). Called by
/// the API's edge middleware (`api::edge`), which runs after routing and
/// so knows the route template (`unmatched` for a fallback answer).
pub fn http_answered(method: &str, route: &str, status: u16, started: Instant) {
    let Some(series) = SERIES.get() else {
        return;
    };
    let method = method_label(method);
    let seconds = started.elapsed().as_secs_f64();
    with_entry(&series.routes, route, RouteSeries::default, |series| {
        series.requests.record(
            (method, status),
            || metrics::counter!(names::HTTP_REQUESTS, "method" => method, "route" => route.to_owned(), "status" => status.to_string()),
            |requests| requests.increment(1),
        );
        series.durations.record(
            method,
            || metrics::histogram!(names::HTTP_DURATION, "method" => method, "route" => route.to_owned()),
            |durations| durations.record(seconds),
        );
    });
}

/// A job was accepted (sync or async).
pub(crate) fn job_submitted(process: &str, asynchronous: bool) {
    let mode = if asynchronous { "async" } else { "sync" };
    with_process(process, |series| {
        series.submitted[usize::from(asynchronous)]
            .get_or_init(|| {
                metrics::counter!(names::JOBS_SUBMITTED, "process" => process.to_owned(), "mode" => mode)
            })
            .increment(1);
    });
}

/// A sync job started, on an HTTP thread (`here`) or on the executor.
pub(crate) fn sync_job_started(process: &str, here: bool) {
    let thread = if here { "http" } else { "executor" };
    with_process(process, |series| {
        series.sync_starts[usize::from(!here)]
            .get_or_init(|| {
                metrics::counter!(names::SYNC_JOB_STARTS, "process" => process.to_owned(), "thread" => thread)
            })
            .increment(1);
    });
}

/// A job started after waiting `waited` since it was created.
pub(crate) fn job_started(process: &str, waited: Duration) {
    with_process(process, |series| {
        series
            .queue_wait
            .get_or_init(
                || metrics::histogram!(names::JOB_QUEUE_WAIT, "process" => process.to_owned()),
            )
            .record(waited.as_secs_f64());
    });
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
    let process = job.process;
    let histogram = |cell: &OnceLock<Histogram>, name: &'static str, value: Option<f64>| {
        if let Some(value) = value {
            cell.get_or_init(|| metrics::histogram!(name, "process" => process.to_owned()))
                .record(value);
        }
    };
    with_process(process, |series| {
        series.finished.record(
            job.outcome,
            || metrics::counter!(names::JOBS_FINISHED, "process" => process.to_owned(), "outcome" => job.outcome),
            |finished| finished.increment(1),
        );
        histogram(&series.duration, names::JOB_DURATION, job.seconds);
        histogram(
            &series.fuel,
            names::JOB_FUEL,
            job.fuel_consumed.map(|fuel| fuel as f64),
        );
        histogram(
            &series.peak_memory,
            names::JOB_PEAK_MEMORY,
            job.peak_memory_bytes.map(|bytes| bytes as f64),
        );
    });
}

/// A job was dismissed.
pub(crate) fn job_dismissed(process: &str) {
    with_process(process, |series| {
        series
            .dismissed
            .get_or_init(
                || metrics::counter!(names::JOBS_DISMISSED, "process" => process.to_owned()),
            )
            .increment(1);
    });
}

/// The lease sweep failed `count` jobs of lost nodes.
pub(crate) fn jobs_node_lost(count: usize) {
    if let Some(series) = SERIES.get()
        && count > 0
    {
        series
            .node_lost
            .get_or_init(|| metrics::counter!(names::JOBS_NODE_LOST))
            .increment(count as u64);
    }
}

/// A store write (`operation`) took `elapsed`.
pub(crate) fn store_write(operation: &'static str, elapsed: Duration) {
    if let Some(series) = SERIES.get() {
        series.store_writes.record(
            operation,
            || metrics::histogram!(names::STORE_WRITE, "operation" => operation),
            |writes| writes.record(elapsed.as_secs_f64()),
        );
    }
}

/// A component was instantiated in `elapsed`.
pub(crate) fn sandbox_instantiated(elapsed: Duration) {
    if let Some(series) = SERIES.get() {
        series
            .instantiate
            .get_or_init(|| metrics::histogram!(names::SANDBOX_INSTANTIATE))
            .record(elapsed.as_secs_f64());
    }
}

/// An artifact-cache lookup hit (loaded) or missed (compiled).
pub(crate) fn artifact_cache(hit: bool) {
    if let Some(series) = SERIES.get() {
        series.artifact_cache[usize::from(!hit)]
            .get_or_init(|| {
                if hit {
                    metrics::counter!(names::ARTIFACT_CACHE_HITS)
                } else {
                    metrics::counter!(names::ARTIFACT_CACHE_MISSES)
                }
            })
            .increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_outside_the_standard_list_share_one_label() {
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"] {
            assert_eq!(method_label(method), method);
        }
        for invented in ["FROBNICATE", "get", "X-1", ""] {
            assert_eq!(method_label(invented), "other");
        }
    }

    #[test]
    fn a_labelled_handle_is_registered_once_per_value() {
        let labelled: Labelled<&'static str, usize> = Labelled::default();
        let mut registered = 0;
        for key in ["a", "b", "a", "a", "b"] {
            labelled.record(
                key,
                || {
                    registered += 1;
                    registered
                },
                |_| {},
            );
        }
        assert_eq!(registered, 2);
        let mut seen = Vec::new();
        for key in ["b", "a"] {
            labelled.record(key, || unreachable!("registered above"), |h| seen.push(*h));
        }
        assert_eq!(seen, [2, 1]);
    }
}
