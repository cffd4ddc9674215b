//! Assembling and running the server: store, runtime, processes,
//! scheduler, HTTP.
//!
//! Two tokio runtimes: the caller's, which serves HTTP, and the *executor*
//! built here with `max_concurrent_jobs` threads, where every guest runs
//! (jobs, and the `describe()` call that loading a module makes). Guests
//! yield at every epoch tick, so they would not block the HTTP threads,
//! but they would take their CPU: with the executor apart, a status read
//! waits for a free HTTP thread, never behind a guest's time slice.
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
//! gets its answer), then give running jobs `execution.shutdown_grace` and
//! stop the rest (async ones go back to the queue), then stop the executor,
//! whose tasks hold the store: once [`Server::shutdown`] returns, the data
//! directory is free for the next server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::api::{AppState, router};
use crate::builtin::BUILTIN_PROCESSES;
use crate::config::{Config, ConfigError, NodeRole};
use crate::jobs::{ProcessRegistry, RegisterError, Registration, Scheduler};
use crate::runtime::{EngineSettings, ImportPolicy, Runtime, RuntimeConfig, RuntimeError};
use crate::store::{NodeIdentity, Store, StoreError};

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The database could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The wasm runtime could not be created.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// A built-in or processes-directory module could not be loaded.
    #[error("loading process {name}: {source}")]
    Process {
        /// The file or built-in name.
        name: String,
        /// Why.
        source: RegisterError,
    },
    /// Binding, reading the processes directory, or serving failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// The runtime guests run on; shut down without blocking when dropped (a
/// tokio runtime may not be dropped from async code otherwise).
struct Executor(Option<tokio::runtime::Runtime>);

impl Drop for Executor {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// A running server.
pub struct Server {
    local_addr: SocketAddr,
    base_url: String,
    shutdown: Option<oneshot::Sender<()>>,
    http: JoinHandle<std::io::Result<()>>,
    retention: JoinHandle<()>,
    scheduler: Option<Scheduler>,
    shutdown_grace: std::time::Duration,
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
            artifact_dir: Some(config.data_dir.join("artifacts")),
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

        let app = router(AppState {
            registry,
            scheduler: scheduler.clone(),
            store,
            config: config.clone(),
            base_url: Arc::from(base_url.as_str()),
        });
        let (shutdown, signal) = oneshot::channel::<()>();
        let http = match listener {
            Some(listener) => tokio::spawn(serve_http(
                listener,
                app,
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
            http,
            retention,
            scheduler: Some(scheduler),
            shutdown_grace: config.execution.shutdown_grace,
            executor,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The base URL of links, without a trailing slash.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// Stop accepting connections and finish in-flight requests; give
    /// running jobs `execution.shutdown_grace` to finish, stop and re-queue
    /// the rest; stop the executor; release the data directory (a new
    /// server can open it as soon as this returns).
    pub async fn shutdown(mut self) -> Result<(), ServerError> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        self.retention.abort();
        let _ = (&mut self.retention).await;
        let served = match (&mut self.http).await {
            Ok(served) => served.map_err(ServerError::Io),
            Err(join) => Err(ServerError::Io(std::io::Error::other(join.to_string()))),
        };
        if let Some(scheduler) = self.scheduler.take() {
            scheduler.shutdown(self.shutdown_grace).await;
        }
        if let Some(executor) = self.executor.0.take() {
            // Waits for the executor's tasks to be dropped, and with them
            // their handles on the store.
            let _ = tokio::task::spawn_blocking(move || {
                executor.shutdown_timeout(std::time::Duration::from_secs(10));
            })
            .await;
        }
        served
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.retention.abort();
        self.http.abort();
    }
}

/// Longest the HTTP side waits for open connections to finish at shutdown.
const CONNECTION_DRAIN: std::time::Duration = std::time::Duration::from_secs(30);

/// Accept connections until `stop` fires, each served by hyper with a
/// header read timeout (a client that trickles its headers is cut off);
/// then stop accepting and let open connections finish their requests.
///
/// hyper-util's connection builder instead of `axum::serve`: axum's has no
/// header read timeout, and a slow-loris client holding thousands of
/// half-sent requests is what that timeout bounds. Each connection is
/// watched by a [`GracefulShutdown`](hyper_util::server::graceful::GracefulShutdown)
/// so that shutdown finishes in-flight requests (up to
/// `CONNECTION_DRAIN`) instead of cutting them.
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

    let mut builder = Builder::new(TokioExecutor::new());
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
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .into_owned();
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    let _ = connection.await;
                });
            }
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(CONNECTION_DRAIN, graceful.shutdown()).await;
    Ok(())
}

/// Run a server until SIGINT or SIGTERM. Prints
/// `wasmproc listening on <base url>` on stdout once bound.
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
