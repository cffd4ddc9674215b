//! wasmproc: an OGC API - Processes server whose processes are WebAssembly
//! components.
//!
//! # Layout
//! Data flows one way: [`api`] → [`jobs`] → [`runtime`], and [`jobs`] /
//! [`api`] → [`store`]. The runtime knows nothing of HTTP or databases; the
//! store knows nothing of wasmtime (it keeps the runtime's plain types:
//! limits, outputs, what a run cost). [`config`], [`ogc`], [`failure`]
//! and [`telemetry`] sit below them all: the metrics take plain facts (a
//! process id, an outcome label), not records, so the store counts jobs
//! without the metrics knowing the store.
//!
//! No two files import each other, directly or round a loop, outside
//! `jobs/` (`farm-studio look` draws the imports). Which module may name
//! which is a table in `layout_tests.rs`, and a unit test fails, naming
//! the file and line, when code names a module above its own. Inside it two loops are
//! kept on purpose: the scheduler's shared state ([`jobs::Scheduler`]'s
//! `Inner`) has its methods in the files of each concern (`dispatch.rs`,
//! `run.rs`, `lifecycle.rs`, `remote.rs`, `storage.rs`), which import it
//! while it calls them; and workflows: a step is a job again (`steps.rs`
//! calls the scheduler that calls it), and a deployed workflow is checked
//! against the registry that keeps it (`workflow.rs` and `registry.rs`).
//!
//! - [`server`]: assembles everything (store, runtime, processes,
//!   scheduler, HTTP listener) and runs it until a signal; graceful
//!   shutdown.
//! - [`config`]: settings from a TOML file, the environment and flags, each
//!   with its documented default; `wasmproc config check`. One file per
//!   part of the file: auth, store and cluster, execution, limits.
//! - [`api`]: the axum routers, one file per OGC resource, and the one
//!   error type every failure becomes (an OGC exception with the right
//!   status). Execution-mode negotiation lives in `api/execution.rs`.
//! - [`ogc`]: serde wire types of the OGC documents (process description,
//!   execute request, statusInfo, job list, exception, links).
//! - [`jobs`]: the processes on offer ([`jobs::ProcessRegistry`]), input
//!   validation, `href` fetching behind the SSRF guard, and the scheduler:
//!   submission, the worker pool, claiming queued jobs, running one job to
//!   its stored outcome, dismissal, shutdown, retention, and the cluster
//!   tasks (store events, lease heartbeat). Workflows live there too:
//!   nested processes (`jobs/nested.rs` checks a tree, `jobs/steps.rs`
//!   runs it), what one tree of them shares
//!   (`jobs/tree.rs`: a fuel budget, calls made once), its steps spread
//!   over a cluster (`jobs/spread.rs`) or sent to other servers
//!   (`jobs/remote.rs`), deployable workflows ([`jobs::workflow`]), and the
//!   result cache (`jobs/cache.rs`).
//! - [`runtime`]: the sandbox, a narrow wrapper around wasmtime: two
//!   engines (sandbox pools that differ in how a slot's memory is reset,
//!   [`runtime::MemoryReset`]), per-job limits (fuel, memory, wall clock, output, log),
//!   the compiled-artifact cache, the capabilities a component may import,
//!   and the classification of how a run ends.
//! - [`store`]: durable state behind one backend-neutral API, with two
//!   backends: embedded sled (one node, the default) and PostgreSQL
//!   (several nodes, claims under leases, LISTEN/NOTIFY).
//! - [`failure`]: the one enum of job failure kinds, shared by the runtime,
//!   the stored job and the HTTP answer.
//! - [`builtin`]: the example processes compiled into the binary.
//! - [`telemetry`]: Prometheus metrics (`GET /metrics`) and the server's
//!   own log (text or JSON lines, with request and job ids as span
//!   fields). The HTML pages for people live in `api/html/`.
//!
//! The `wasmproc` binary (`src/main.rs`, `src/cli/`) is the command line:
//! `serve`, `run`, `describe`, `deploy`, `replace`, `undeploy`,
//! `processes`, `config check`. `anyhow` is used only there.
//!
//! # The path of a request
//! `POST /processes/echo/execution` with `Prefer: respond-async`:
//! 1. `api::execution` parses the body, validates the inputs against the
//!    process's schemas ([`jobs::InputValidator`]), checks callback URLs,
//!    and negotiates the mode (async here).
//! 2. [`jobs::Scheduler::submit_async`] writes the job `accepted` through
//!    [`store::Store::enqueue_job`]: durable before the 201 is sent, bounded
//!    by `max_queued_jobs`.
//! 3. The dispatcher of whichever node has a free worker (a semaphore
//!    permit) claims it ([`store::Store::claim_jobs`]: `running`, under a
//!    lease on PostgreSQL) and hands it to the executor runtime.
//! 4. There the job's `href` inputs are fetched, and
//!    [`runtime::Runtime::run`] instantiates the component in a fresh
//!    sandbox with the job's fuel, memory and time limits, calls
//!    `execute`, and classifies the end ([`runtime::RunOutcome`]).
//! 5. The outcome and results are stored together
//!    ([`store::Store::finish_job`]), durably, before anyone can see the job
//!    finished; subscriber callbacks are sent.
//! 6. `GET /jobs/{id}` and `/jobs/{id}/results` read the store, on any
//!    node. A sync request takes a permit itself and runs steps 4–5 while
//!    the client waits; a short one on the HTTP thread that took it, a
//!    longer one moving to the executor when it first waits
//!    ([`jobs::InlineHistory`]).
//!
//! # Glossary
//! - **process**: what the OGC API offers: an id, a description, a module.
//!   Stored as a [`store::ProcessRecord`]; offered, compiled and ready, as a
//!   [`jobs::RegisteredProcess`].
//! - **component** / **module**: the `.wasm` file of a process (a
//!   WebAssembly component implementing `wit/process.wit`); stored once per
//!   sha256. [`runtime::ProcessModule`] is its compiled, pre-instantiated
//!   form. (wasmtime's *core* modules inside a component are never meant.)
//! - **job**: one execution of a process, sync or async, with a
//!   [`store::JobRecord`]; its **results** are the outputs of a successful
//!   run.
//! - **sandbox**: the fresh wasmtime store and instance a job runs in.
//!   **sandbox pool**: one engine's pre-reserved instance slots; a slot is
//!   reset to the module's initial memory before its next job, by one of
//!   two [`runtime::MemoryReset`] strategies (one pool each).
//! - **worker**: one of `max_concurrent_jobs` permits; a job holds one from
//!   start to stored outcome.
//! - **dismiss**: the client's `DELETE /jobs/{id}`: the job is deleted and,
//!   if it runs, *stopped* (its cancellation token fires). A job is also
//!   stopped when its node loses its lease or a shutdown runs out of time.
//! - **node**: one wasmproc process; several share a PostgreSQL store.
//!   **claim**: a node taking a queued job; **lease**: how long the claim
//!   lasts without a heartbeat renewing it.
//! - **failure kind**: why a job failed ([`failure::FailureKind`]).
//! - **nested process** / **step**: an input given as the execution of
//!   another process (`{"process": …}`); each one runs as a job of its
//!   own, a *step* of the job it computes an input of (its *parent*). A
//!   job with steps and its steps, at every depth, form a **tree**.
//! - **map**: a step run once per element of an array, its results
//!   collected in element order.
//! - **workflow**: a tree deployed as a process of its own, its inputs
//!   filling `{"$input": …}` placeholders ([`jobs::workflow::Workflow`]).
//!   What a process runs, component or workflow, is its
//!   [`jobs::Executable`].

pub mod api;
pub mod builtin;
pub mod config;
pub mod failure;
pub mod jobs;
pub mod ogc;
pub mod runtime;
pub mod server;
pub mod store;
pub mod telemetry;

#[cfg(test)]
mod layout_tests;
