//! Assembling and running the server: store, runtime, processes,
//! scheduler, HTTP.
//!
//! Two tokio runtimes: the caller's, which serves HTTP, and the *executor*
//! built here with `max_concurrent_jobs` threads, where guests run (async
//! jobs, and the `describe()` call that loading a module makes). Guests
//! yield at every epoch tick, so they would not block the HTTP threads,
//! but they would take their CPU: with the executor apart, a status read
//! waits for a free HTTP thread, not behind a guest's time slice. The one
//! exception is the start of a short sync job, which costs less than
//! handing it over (`jobs/inline.rs`): it runs on the HTTP thread that
//! took its request, while its process's first slices stay within
//! `execution.sync_start_budget` of CPU.
//!
//! # Start-up, in order, and why
//! 1. Validate the configuration: a contradiction (a per-process limit
//!    above its maximum, a cluster role without a shared store) is an
//!    error before anything is opened.
//! 2. Open the store (sled's directory lock, or PostgreSQL with its
//!    migrations); an unreachable database ends start-up here with its URL
//!    (password hidden) in the error.
//! 3. Create the runtime (engine, linker, artifact cache) and bind the
//!    listener, so the base URL of links is known before any job exists.
//! 4. Build the executor, then the process registry on it, and register
//!    the built-ins, the processes directory and the deployed processes:
//!    every module is compiled (or taken from the artifact cache) and
//!    described before the first request can name it.
//! 5. Recover jobs an earlier run left running or queued (sled), before
//!    the scheduler's dispatcher could claim anything.
//! 6. Start the scheduler (dispatcher, cluster tasks), the retention
//!    sweep, and only then serve HTTP.
//!
//! An error at any step drops what was built so far; the executor is held
//! in `Executor` from step 4 on so that dropping it never blocks (a tokio
//! runtime may not be dropped from async code).
//!
//! # Shutdown, in order, and why
//! Stop accepting connections and let open requests finish (a sync client
//! gets its answer), then stop the jobs still running (async ones go back
//! to the queue, a sync client is told 503 to send its request again),
//! then stop the executor, whose tasks hold the store: once
//! [`Server::shutdown`] returns, the data directory is free for the next
//! server. Requests and jobs share one budget, `execution.shutdown_grace`,
//! counted from the start of the shutdown: an operator who gives the
//! server five minutes gives them to a long sync request too, and one who
//! gives it three seconds is not kept waiting thirty by a sync request.
//!
//! HTTP goes first because a synchronous request is waiting on a job: the
//! scheduler must still be running for that job to finish and the client
//! to get its answer. Jobs go before the executor because the executor is
//! where they run. A signal before start-up has finished is not caught
//! (the handlers are installed once the server is up) and ends the
//! process at once, as a crash would; the next start recovers what it
//! left (step 5).
//!
//! # Slow clients
//! A connection costs a task and its buffers for as long as it stays
//! open, so an HTTP/1 client must send a request's headers within
//! `header_read_timeout` (30 s by default), and an idle keep-alive
//! connection is closed after the same time without a new request;
//! otherwise a few thousand clients each trickling a byte now and then
//! (slow-loris) would hold the server's memory and file descriptors. The
//! body has its own bound, `body_read_timeout`, enforced by the API (408).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::api::{AppState, Shared, router};
use crate::builtin::BUILTIN_PROCESSES;
use crate::config::{Config, ConfigError, NodeRole};
use crate::jobs::{ProcessRegistry, RegisterError, Registration, Scheduler};
use crate::runtime::{EngineSettings, ImportPolicy, Runtime, RuntimeConfig, RuntimeError};
use crate::store::{NodeIdentity, Store, StoreError};

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration is invalid: every contradiction
    /// [`Config::validate`] found, each naming its keys. Nothing has been
    /// opened yet.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The database could not be opened: sled's directory is locked by
    /// another server or unreadable, or PostgreSQL is unreachable or its
    /// migrations failed. Also a store error while recovering jobs.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The wasm runtime could not be created (the engine, the linker, or
    /// the artifact cache directory under `data_dir`).
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// A built-in or processes-directory module could not be loaded, or
    /// the deployed processes could not be read back from the store. Any
    /// one of these stops the start-up.
    #[error("loading process {name}: {source}")]
    Process {
        /// The file or built-in name, or `deployed processes`.
        name: String,
        /// Why it was refused: not a component, a failed `describe()`,
        /// an invalid description, a store error.
        source: RegisterError,
    },
    /// Creating the data directory, binding, reading the processes
    /// directory or one of its files, building the job executor, or
    /// serving failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The task serving HTTP ended without returning: it panicked (a bug,
    /// whose message this carries) or its runtime cancelled it. Returned
    /// by [`Server::shutdown`], after the jobs and the executor have been
    /// stopped as usual; in-flight requests may have been cut off.
    #[error("the HTTP server task ended abnormally: {0}")]
    HttpTaskEnded(#[from] tokio::task::JoinError),
}

/// The runtime guests run on; shut down without blocking when dropped (a
/// tokio runtime may not be dropped from async code otherwise).
///
/// `None` once [`Server::shutdown`] has taken it to shut it down with a
/// timeout; only a server dropped without `shutdown` (or a start-up that
/// failed) reaches `shutdown_background`, which stops its tasks without
/// waiting for them.
struct Executor(Option<tokio::runtime::Runtime>);

impl Drop for Executor {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// A running server.
///
/// Made by [`Server::start`]; stop it with [`Server::shutdown`], which
/// finishes open requests and running jobs. Merely dropping it aborts the
/// HTTP and retention tasks and stops the executor without waiting,
/// which is enough for a failed test but not a graceful stop.
pub struct Server {
    /// The address the listener is bound to (the real port when the
    /// configuration asked for port 0); the configured address on a
    /// worker node, which binds nothing.
    local_addr: SocketAddr,
    /// `public_url`, or `http://` and `local_addr`: the start of every
    /// link the API writes.
    base_url: String,
    /// Fired (once) to make the HTTP task stop accepting and drain.
    shutdown: Option<oneshot::Sender<()>>,
    /// The API the listener serves (a clone: routers share their state).
    app: axum::Router,
    /// The HTTP task (`serve_http`), or on a worker node a task that only
    /// waits for the shutdown signal; its result is `shutdown`'s.
    http: JoinHandle<std::io::Result<()>>,
    /// The periodic sweep that deletes expired jobs and unused modules.
    retention: JoinHandle<()>,
    /// An `Option`, like `shutdown`, so that `Server::shutdown` can take
    /// it out of a type that implements `Drop`.
    scheduler: Option<Scheduler>,
    /// `execution.shutdown_grace`, kept because the configuration itself
    /// is not.
    shutdown_grace: std::time::Duration,
    /// The store, closed at the end of `shutdown` (see [`Store::close`]).
    store: Store,
    // Dropped last: stops the guests after HTTP has stopped.
    executor: Executor,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// Offer every process the server knows at start-up, in this order: the
/// built-ins (when `builtin_processes`), the `.wasm` files of
/// `processes_dir` in file-name order, then the deployed processes kept
/// in the store. The first two are installed as immutable and take their
/// ids, overwriting whatever the store holds under them (a file of the
/// directory wins over a built-in of the same id). A deployed process
/// that no longer loads is logged and skipped (see
/// `ProcessRegistry::restore_deployed`) rather than stopping the server.
async fn register_all(registry: &ProcessRegistry, config: &Config) -> Result<(), ServerError> {
    if config.builtin_processes {
        for builtin in BUILTIN_PROCESSES {
            registry
                .register(builtin.wasm.to_vec(), Registration::builtin())
                .await
                .map_err(|source| ServerError::Process {
                    name: builtin.name.into(),
                    source,
                })?;
        }
    }
    if let Some(dir) = &config.processes_dir {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
            .collect();
        files.sort();
        for file in files {
            let wasm = tokio::fs::read(&file).await?;
            registry
                .register(wasm, Registration::builtin())
                .await
                .map_err(|source| ServerError::Process {
                    name: file.display().to_string(),
                    source,
                })?;
        }
    }
    let restored = registry
        .restore_deployed()
        .await
        .map_err(|source| ServerError::Process {
            name: "deployed processes".into(),
            source,
        })?;
    if restored > 0 {
        tracing::info!(restored, "restored deployed processes");
    }
    Ok(())
}

impl Server {
    /// Open the store, load the processes, recover interrupted jobs and
    /// start serving. Returns once the listener is bound.
    ///
    /// The steps and their order are those of the module documentation.
    /// Every process is compiled (or taken from `data_dir/artifacts`) and
    /// described before this returns, so start-up takes seconds when
    /// Python or JavaScript components must be compiled afresh. The
    /// engine is sized from the configuration: `limits.max.memory_bytes`
    /// is the largest memory a sandbox can get, and there are sandbox
    /// slots for twice `max_concurrent_jobs` (running jobs plus the
    /// `describe()` calls of deploys), at least the engine's default.
    ///
    /// The metrics recorder is process-wide and installed by the first
    /// server of a process: a second `start` in the same process (tests)
    /// keeps the first one's labels.
    pub async fn start(config: Config) -> Result<Self, ServerError> {
        config.validate()?;
        let config = Arc::new(config);
        std::fs::create_dir_all(&config.data_dir)?;
        let node = NodeIdentity::new(
            &config.cluster.node_name(config.bind),
            config.cluster.lease,
            config.cluster.max_attempts,
        );
        // Every series carries the node name when several nodes share one
        // database; a lone sled node needs no label.
        crate::telemetry::metrics::install(
            (config.store.backend == crate::config::StoreBackend::Postgres)
                .then(|| config.cluster.node_name(config.bind))
                .as_deref(),
        );
        let store = Store::open(&config.store, &config.data_dir, node.clone()).await?;
        let runtime = Runtime::new(RuntimeConfig {
            engine: EngineSettings {
                max_instances: EngineSettings::default()
                    .max_instances
                    .max(config.execution.max_concurrent_jobs as u32 * 2),
                max_memory_bytes: config.limits.max.memory_bytes,
            },
            artifact_dir: Some(
                config
                    .artifact_dir
                    .clone()
                    .unwrap_or_else(|| config.data_dir.join("artifacts")),
            ),
            artifact_cache_bytes: config.artifact_cache_bytes,
            imports: ImportPolicy {
                denied: config.deny_imports.clone(),
            },
            ..RuntimeConfig::default()
        })?;
        // A worker-only node serves no HTTP at all.
        let listener = match config.cluster.role {
            NodeRole::Worker => None,
            NodeRole::All | NodeRole::Api => Some(TcpListener::bind(config.bind).await?),
        };
        let local_addr = match &listener {
            Some(listener) => listener.local_addr()?,
            None => config.bind,
        };
        let base_url = config.base_url(local_addr);

        // Held in an `Executor` from here on, so that a start-up error below
        // drops it without blocking.
        let runtime_of_jobs = tokio::runtime::Builder::new_multi_thread()
            // An API-only node still runs its cluster tasks here; every
            // guest call (jobs, and `describe()` when a module is loaded)
            // runs here.
            .worker_threads(config.execution.max_concurrent_jobs.max(1))
            .thread_name("wasmproc-job")
            .enable_all()
            .build()?;
        let executor_handle = runtime_of_jobs.handle().clone();
        let executor = Executor(Some(runtime_of_jobs));
        let registry = Arc::new(ProcessRegistry::new(
            runtime.clone(),
            executor_handle.clone(),
            store.clone(),
            config.clone(),
        ));
        register_all(&registry, &config).await?;

        // Jobs found running or queued by an earlier run of this node
        // (sled), before any new job can be claimed.
        let recovery = store.recover().await?;
        if recovery.interrupted + recovery.requeued > 0 {
            tracing::info!(
                interrupted = recovery.interrupted,
                requeued = recovery.requeued,
                "recovered jobs"
            );
        }
        let scheduler = Scheduler::start(
            store.clone(),
            registry.clone(),
            runtime,
            config.clone(),
            base_url.clone(),
            executor_handle,
        );
        let retention = scheduler.spawn_retention();
        tracing::info!(%base_url, node = %node.id, store = store.backend_name(), role = ?config.cluster.role, "wasmproc started");

        let app = router(AppState::new(Shared {
            registry,
            scheduler: scheduler.clone(),
            store: store.clone(),
            config: config.clone(),
            base_url: Arc::from(base_url.as_str()),
        }));
        let (shutdown, signal) = oneshot::channel::<()>();
        let http = match listener {
            Some(listener) => tokio::spawn(serve_http(
                listener,
                app.clone(),
                signal,
                config.header_read_timeout,
            )),
            None => tokio::spawn(async move {
                let _ = signal.await;
                Ok(())
            }),
        };
        Ok(Self {
            local_addr,
            base_url,
            shutdown: Some(shutdown),
            app,
            http,
            retention,
            scheduler: Some(scheduler),
            shutdown_grace: config.execution.shutdown_grace,
            store,
            executor,
        })
    }

    /// The bound address: with port 0 in `bind`, the port the system
    /// picked. A worker node binds nothing and reports the configured
    /// address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The base URL of links, without a trailing slash: `public_url` when
    /// it is set (a server behind a proxy), else `http://` and the bound
    /// address.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// The API as a tower service, the same one the listener serves: every
    /// layer, handler, the scheduler, the sandbox and the store, without
    /// sockets or hyper. For in-process benchmarks (`benches/sync_path.rs`)
    /// and embedding; a request sent to it runs like one over HTTP.
    pub fn router(&self) -> axum::Router {
        self.app.clone()
    }

    /// Stop accepting connections and finish in-flight requests and
    /// running jobs within `execution.shutdown_grace`; stop the jobs still
    /// running then (async ones are re-queued); stop the executor; release
    /// the data directory (a new server can open it as soon as this
    /// returns).
    ///
    /// The retention sweep is aborted first; a sweep cut short leaves the
    /// rest for the next one. The wait is bounded at each step:
    /// `shutdown_grace`, from the call, for open requests and running jobs
    /// together; then up to 15 s for stopped guests to end and outcomes to
    /// be written, up to 5 s for the requests those jobs belonged to
    /// to be answered, 10 s for the executor's tasks. The result is that
    /// of the HTTP task: an error only when serving itself failed.
    pub async fn shutdown(mut self) -> Result<(), ServerError> {
        let deadline = tokio::time::Instant::now() + self.shutdown_grace;
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        self.retention.abort();
        let _ = (&mut self.retention).await;
        // Open requests first: a sync request's job runs meanwhile (the
        // scheduler is still up) and its client gets the answer.
        let drained = tokio::time::timeout_at(deadline, &mut self.http).await;
        if let Some(scheduler) = self.scheduler.take() {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            scheduler.shutdown(left).await;
        }
        // A sync request whose job was just stopped is answered (503) by
        // its connection's task: give that answer a moment to be written.
        let served = match drained {
            Ok(ended) => ended,
            Err(_) => match tokio::time::timeout(ANSWER_WAIT, &mut self.http).await {
                Ok(ended) => ended,
                Err(_) => {
                    self.http.abort();
                    Ok(Ok(()))
                }
            },
        };
        let served = match served {
            Ok(served) => served.map_err(ServerError::Io),
            Err(join) => Err(ServerError::HttpTaskEnded(join)),
        };
        if let Some(executor) = self.executor.0.take() {
            // Waits for the executor's tasks to be dropped, and with them
            // their handles on the store.
            let _ = tokio::task::spawn_blocking(move || {
                executor.shutdown_timeout(std::time::Duration::from_secs(10));
            })
            .await;
        }
        // Jobs and requests are gone; a flush or scan they started on the
        // blocking pool may still hold the database (and sled's lock).
        self.store.close().await;
        served
    }
}

/// A server dropped without [`Server::shutdown`] (a test that failed, a
/// caller that returned early) stops its background tasks, so that they do
/// not outlive it; `executor`, dropped after this, stops the guests.
impl Drop for Server {
    fn drop(&mut self) {
        self.retention.abort();
        self.http.abort();
    }
}

/// How long a shutdown waits, once `shutdown_grace` is over and the jobs
/// still running are stopped, for the requests of stopped sync jobs to be
/// answered and their connections to close. Writing an answer takes
/// microseconds; a client that does not read it is not waited for longer
/// than this.
const ANSWER_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Accept connections until `stop` fires, each served by hyper with a
/// header read timeout (a client that trickles its headers is cut off);
/// then stop accepting and let open connections finish their requests.
///
/// hyper-util's connection builder instead of `axum::serve`: axum's has no
/// header read timeout, and a slow-loris client holding thousands of
/// half-sent requests is what that timeout bounds. Each connection is
/// watched by a [`GracefulShutdown`](hyper_util::server::graceful::GracefulShutdown)
/// so that shutdown finishes in-flight requests instead of cutting them;
/// [`Server::shutdown`] bounds that wait (`shutdown_grace`).
///
/// HTTP/1.1 only. The timeout is an HTTP/1 setting (it needs the timer
/// set with it: hyper panics on a timeout without one), and it runs from
/// the moment the connection is served, so a client that connects and
/// sends nothing is cut off too, and so is an idle keep-alive connection
/// once its next request is that late. hyper's HTTP/2 has no such
/// deadline, and sniffing for the HTTP/2 preface first would wait for a
/// silent client's first byte without one: a server that also spoke
/// HTTP/2 with prior knowledge (h2c) kept such connections open for ever.
/// Browsers use HTTP/2 only over TLS, which a proxy in front terminates,
/// so h2c is not offered; an HTTP/2 preface is refused as a malformed
/// HTTP/1 request. A
/// failed `accept` (out of file descriptors, typically) is logged and
/// retried after 50 ms rather than ending the server: the condition
/// passes as connections close.
async fn serve_http(
    listener: TcpListener,
    app: axum::Router,
    mut stop: oneshot::Receiver<()>,
    header_read_timeout: std::time::Duration,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::server::graceful::GracefulShutdown;
    use hyper_util::service::TowerToHyperService;

    let mut builder = Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        // E.g. out of file descriptors: back off, keep serving.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let service = TowerToHyperService::new(app.clone());
                let connection = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .into_owned();
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    let _ = connection.await;
                });
            }
        }
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Run a server until SIGINT or SIGTERM. Prints
/// `wasmproc listening on <base url>` on stdout once bound.
///
/// A worker node prints `wasmproc worker ready (no HTTP listener)`
/// instead. The line comes after start-up has finished (every process
/// loaded), so scripts and tests wait for it, and read the port from it
/// when `bind` asked for port 0. What `wasmproc serve` runs.
pub async fn serve(config: Config) -> Result<(), ServerError> {
    let worker = config.cluster.role == NodeRole::Worker;
    let server = Server::start(config).await?;
    if worker {
        println!("wasmproc worker ready (no HTTP listener)");
    } else {
        println!("wasmproc listening on {}", server.base_url());
    }
    wait_for_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await
}

/// Wait for SIGINT (Ctrl-C) or SIGTERM (what service managers and
/// container runtimes send); both start the same graceful shutdown. If the
/// SIGTERM handler cannot be installed, Ctrl-C still works.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
