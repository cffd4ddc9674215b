//! The scheduler handle: what the API calls to submit, run and dismiss
//! jobs, and the state the scheduler's tasks share.
//!
//! Mechanism (the other files of `jobs/` each hold one part):
//! - Wasm runs on a dedicated tokio runtime (the *executor*), apart from
//!   the HTTP runtime's threads, so status reads stay fast while every
//!   core runs guests. The exception: a sync job of a process whose jobs
//!   are short starts on the HTTP thread, and moves to the executor when
//!   it first waits ([`super::inline`]).
//! - A [`Semaphore`] with `max_concurrent_jobs` permits (the *workers*)
//!   bounds how many guests run at once on this node, sync and async
//!   together. A job holds its permit while its guest runs; its outcome is
//!   written after the permit is given back.
//! - Async jobs are queued *in the store* ([`Store::enqueue_job`]): durable
//!   before the 201, bounded by `max_queued_jobs` (cluster-wide with
//!   PostgreSQL). The dispatcher ([`super::dispatch`]) takes a permit, then
//!   claims a job from the store, and runs it ([`super::run`]).
//! - Sync jobs take a permit directly, within `sync_timeout`, and run at
//!   once on this node.
//! - Dismissing deletes the job in the store, then stops it through its
//!   token ([`super::running`]) if it runs here; other nodes hear of it as
//!   a store event ([`super::lifecycle`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

use chrono::Utc;
use tokio::runtime::Handle;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::address_guard::{AddressGuard, GuardedClient};
use super::callbacks::Callbacks;
use super::errors::{JobError, WriteFailures};
use super::inline::InlineHistory;
use super::registry::{Executable, ProcessRegistry, RegisteredProcess};
use super::run::Runnable;
use super::running::RunningJobs;
use super::tree::Tree;
use crate::config::{Config, NodeRole};
use crate::failure::FailureKind;
use crate::ogc::{ExecuteRequest, JobStatus};
use crate::runtime::Runtime;
use crate::store::{JobRecord, JobResults, Store};

/// What running a job now gives: its final record, and its results when
/// it succeeded.
pub(super) type StepOutcome = Result<(JobRecord, Option<JobResults>), JobError>;

/// A job run as a step of another ([`Scheduler::run_step`]).
pub(super) struct StepOf<'a> {
    /// The parent job.
    pub(super) parent: Uuid,
    /// The parent's token: cancelled, it dismisses the step.
    pub(super) parent_token: &'a CancellationToken,
    /// What the jobs of the parent's tree share.
    pub(super) tree: Arc<Tree>,
}

/// Whether a sync job is stored ([`Scheduler::execute_sync`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncRecord {
    /// As `execution.keep_sync_jobs` says (the HTTP API).
    AsConfigured,
    /// Always (the HTML form, which sends its user to the job's pages).
    Always,
}

/// What a sync request's job gave.
#[derive(Debug)]
pub struct SyncRun {
    /// Its final record (not stored when `kept` is false).
    pub job: JobRecord,
    /// Its results, when it succeeded.
    pub results: Option<JobResults>,
    /// Whether the job is in the store, where a client can read it at
    /// `/jobs/{id}`. With `execution.keep_sync_jobs = false` a job that
    /// neither has steps nor belongs to a process with `cache = true`
    /// never is: nothing about it is written, and the answer has no
    /// `Link rel=monitor`.
    pub kept: bool,
}

impl SyncRun {
    /// The record and results, as a step's outcome.
    fn into_pair(self) -> (JobRecord, Option<JobResults>) {
        (self.job, self.results)
    }
}

/// Whether a job run now is stored, and why.
enum Keep<'a> {
    /// A top-level sync job: stored if asked, or if its process caches
    /// or its inputs call nested processes.
    Asked(bool),
    /// A step of another job: always stored (its parent names it).
    Step(StepOf<'a>),
}

/// Who a new job belongs to: the API key that submits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOwner {
    /// The key's name, recorded on the job.
    pub name: String,
    /// The key's bound on its jobs' stored data, if it has one.
    pub max_stored_bytes: Option<u64>,
}

/// Runs jobs. Cheap to clone.
#[derive(Clone)]
pub struct Scheduler {
    /// Shared with the dispatcher, the cluster tasks and every running
    /// job. The long-lived tasks hold it weakly, so they end once no
    /// handle and no running job holds it any more.
    pub(super) inner: Arc<Inner>,
}

/// What the scheduler's tasks share.
pub(super) struct Inner {
    /// Where jobs are queued, claimed and finished (sled on one node,
    /// PostgreSQL shared by a cluster), and whose events this node follows.
    pub(super) store: Store,
    /// The processes offered now, and the modules and input rules of the
    /// versions jobs were accepted for.
    pub(super) registry: Arc<ProcessRegistry>,
    /// The Wasm engine the guests run in.
    pub(super) runtime: Runtime,
    pub(super) config: Arc<Config>,
    /// The server's public URL, from which every link in a statusInfo or
    /// results document (and in a callback body) is built.
    pub(super) base_url: String,
    /// One permit per worker (`max_concurrent_jobs`).
    pub(super) permits: Arc<Semaphore>,
    /// The stop token of every job running (or claimed ahead) on this node.
    pub(super) running: RunningJobs,
    /// Runs from the start of `execute` until their outcome is written:
    /// above all outcomes of ended guests still being written (they hold
    /// no worker any more), and parents waiting for their steps. A
    /// graceful shutdown waits for them.
    pub(super) storing: super::running::StoringOutcomes,
    /// Synchronous requests waiting for a permit (bounded by
    /// `max_waiting_sync`).
    pub(super) waiting_sync: std::sync::atomic::AtomicUsize,
    /// Fired by [`Scheduler::shutdown`]: no new job starts; async jobs
    /// stopped because of it go back to the queue.
    pub(super) stopping: CancellationToken,
    /// Set once the graceful shutdown gave up waiting and stopped jobs.
    pub(super) stopped_by_shutdown: AtomicBool,
    /// Fired when the dispatcher has ended (at once on a node without
    /// one): from then on no job is claimed here, which the graceful
    /// shutdown waits for before it counts free workers.
    pub(super) dispatcher_ended: CancellationToken,
    /// The runtime guests run on, apart from the HTTP runtime's threads:
    /// every job, the dispatcher and the cluster tasks are spawned here.
    pub(super) executor: Handle,
    /// Sends subscriber notifications, through `callbacks.allowed_hosts`.
    pub(super) callbacks: Callbacks,
    /// Fetches `href` inputs through the SSRF guard.
    pub(super) http: GuardedClient,
    /// Writes nobody waited for that failed; shared with progress writers.
    pub(super) write_failures: Arc<WriteFailures>,
    /// How long this node's jobs have held a worker lately: sizes the
    /// claim-ahead buffer ([`super::dispatch`]).
    pub(super) recent_run_time: super::dispatch::RecentRunTime,
    /// What is stored, against `execution.max_stored_bytes`.
    pub(super) storage: super::storage::StorageBudget,
    /// The data directory's free disk space, against
    /// `execution.min_free_disk_bytes` (sled only).
    pub(super) disk: super::disk_space::DiskSpace,
    /// Results of deterministic processes, reused for identical requests.
    pub(super) cache: super::cache::ResultCache,
}

impl Scheduler {
    /// Start the scheduler: its dispatcher (unless this node serves the API
    /// only) and its cluster tasks run on `executor`, where all guests run.
    pub fn start(
        store: Store,
        registry: Arc<ProcessRegistry>,
        runtime: Runtime,
        config: Arc<Config>,
        base_url: String,
        executor: Handle,
    ) -> Self {
        let http = GuardedClient::new(AddressGuard::for_href(&config.href));
        let cache = super::cache::ResultCache::new(
            config.execution.cache_ttl,
            config.execution.cache_max_bytes,
        );
        let disk = super::disk_space::DiskSpace::new(
            config.data_dir.clone(),
            match config.store.backend {
                crate::config::StoreBackend::Sled => config.execution.min_free_disk_bytes,
                crate::config::StoreBackend::Postgres => 0,
            },
        );
        let scheduler = Self {
            inner: Arc::new(Inner {
                permits: Arc::new(Semaphore::new(config.execution.max_concurrent_jobs)),
                callbacks: Callbacks::new(config.callbacks.clone()),
                store,
                registry,
                runtime,
                config,
                base_url,
                running: RunningJobs::default(),
                storing: super::running::StoringOutcomes::default(),
                waiting_sync: std::sync::atomic::AtomicUsize::new(0),
                stopping: CancellationToken::new(),
                stopped_by_shutdown: AtomicBool::new(false),
                dispatcher_ended: CancellationToken::new(),
                executor: executor.clone(),
                http,
                write_failures: Arc::default(),
                recent_run_time: super::dispatch::RecentRunTime::default(),
                storage: super::storage::StorageBudget::default(),
                disk,
                cache,
            }),
        };
        let ended = scheduler.inner.dispatcher_ended.clone();
        if scheduler.runs_async_jobs() {
            executor.spawn(super::dispatch::dispatch(
                Arc::downgrade(&scheduler.inner),
                ended,
            ));
        } else {
            ended.cancel();
        }
        super::lifecycle::spawn_cluster_tasks(&scheduler.inner);
        if super::storage::counts(&scheduler.inner.config) {
            executor.spawn(super::storage::recount(
                Arc::downgrade(&scheduler.inner),
                scheduler.inner.store.clone(),
                scheduler.inner.config.execution.storage_recount,
                super::storage::counts_owners(&scheduler.inner.config),
            ));
        }
        scheduler
    }

    /// Refuse a new job when the data directory's disk is nearly full,
    /// when the stored job data reached its bound, or when its owner's
    /// data reached the owner's.
    pub(super) fn check_storage(&self, owner: Option<&JobOwner>) -> Result<(), JobError> {
        if let Err((available, min)) = self.inner.disk.check() {
            return Err(JobError::DiskFull { available, min });
        }
        let storage = &self.inner.storage;
        let max = self.inner.config.execution.max_stored_bytes;
        if !storage.has_room(max) {
            return Err(JobError::StorageFull {
                stored: storage.current().unwrap_or(max),
                max,
            });
        }
        if let Some(JobOwner {
            name,
            max_stored_bytes: Some(max),
        }) = owner
            && !storage.owner_has_room(name, *max)
        {
            return Err(JobError::OwnerStorageFull {
                owner: name.clone(),
                stored: storage.current_of(name).unwrap_or(*max),
                max: *max,
            });
        }
        Ok(())
    }

    /// Count a new job's inputs against the bounds (only when there is
    /// one: measuring costs a serialisation of the request).
    pub(super) fn count_inputs(&self, job: &JobRecord) {
        if super::storage::counts(&self.inner.config) {
            self.inner
                .storage
                .add(job.owner.as_deref(), super::storage::request_bytes(job));
        }
    }

    /// Whether this node claims async jobs (not an API-only node).
    pub fn runs_async_jobs(&self) -> bool {
        self.inner.config.cluster.role != NodeRole::Api
            && self.inner.config.execution.max_concurrent_jobs > 0
    }

    /// Whether this node runs sync jobs (it serves the API and has
    /// workers).
    pub fn runs_sync_jobs(&self) -> bool {
        self.inner.config.cluster.role == NodeRole::All
            && self.inner.config.execution.max_concurrent_jobs > 0
    }

    /// Store writes that failed without anybody waiting for them.
    pub fn write_failures(&self) -> u64 {
        self.inner.write_failures.count()
    }

    /// Jobs running on this node now, and workers (permits) taken: what
    /// the `/metrics` gauges show. A permit the dispatcher holds while it
    /// claims counts as taken for that instant.
    pub fn load(&self) -> (usize, usize) {
        let workers = self.inner.config.execution.max_concurrent_jobs;
        let busy = workers.saturating_sub(self.inner.permits.available_permits());
        (self.inner.running.count(), busy)
    }

    /// The id of this node in a cluster (`None` on the embedded store).
    fn node_id(&self) -> Option<String> {
        match &self.inner.store {
            Store::Postgres(pg) => Some(pg.node().id.clone()),
            Store::Sled(_) => None,
        }
    }

    /// Accept an async job: durable (and claimable by any node) when this
    /// returns.
    ///
    /// In order: refused while shutting down, or when stored job data is
    /// at its bound (the server's or the owner's); a deployed workflow is
    /// expanded to its top process (refused if its inputs make no sound
    /// tree); a process with `cache = true` may answer at once from the
    /// cache (the job is then recorded already `successful`); otherwise
    /// the job is queued in the store, bounded by `max_queued_jobs`
    /// ([`JobError::QueueFull`]). The limits are fixed now, on the record:
    /// a job runs with the limits it was accepted under.
    pub async fn submit_async(
        &self,
        process: &RegisteredProcess,
        request: ExecuteRequest,
        owner: Option<&JobOwner>,
        reuse: bool,
    ) -> Result<JobRecord, JobError> {
        if self.inner.stopping.is_cancelled() {
            return Err(JobError::ShuttingDown);
        }
        self.check_storage(owner)?;
        let (expanded, request) = self.expand(process, request)?;
        let process = expanded.as_deref().unwrap_or(process);
        let mut job = JobRecord::new(process.id(), &process.record.module_sha256, request, true);
        job.limits = Some(process.limits);
        job.owner = owner.map(|o| o.name.clone());
        if let Some((job, _)) = self.cache_or_reuse(process, &mut job, reuse).await? {
            return Ok(job);
        }
        self.inner
            .store
            .enqueue_job(&job, self.inner.config.execution.max_queued_jobs)
            .await?;
        self.count_inputs(&job);
        Ok(job)
    }

    /// Run a job now on this node and wait for it. `sync_timeout` is one
    /// deadline for the whole request: waiting for a worker, fetching
    /// `href` inputs and the run share it (the job's wall-clock limit is
    /// lowered to what is left). At most `max_waiting_sync` requests wait
    /// for a worker; beyond, [`JobError::SyncQueueFull`] at once. Returns
    /// the final job record and its results when it succeeded.
    /// With `reuse`, a process with `cache = true` answers an identical
    /// earlier request's results at once (`jobs/cache.rs`).
    ///
    /// `record` says whether the job is stored: as `execution.keep_sync_jobs`
    /// says, or always (the HTML form sends its user to the job's pages).
    /// [`SyncRun::kept`] says what was done.
    pub async fn execute_sync(
        &self,
        process: &RegisteredProcess,
        request: ExecuteRequest,
        owner: Option<&JobOwner>,
        reuse: bool,
        record: SyncRecord,
    ) -> Result<SyncRun, JobError> {
        let keep = match record {
            SyncRecord::AsConfigured => self.inner.config.execution.keep_sync_jobs,
            SyncRecord::Always => true,
        };
        self.run_now(process, request, owner, reuse, Keep::Asked(keep))
            .await
    }

    /// For a process with `cache = true`: give `job` its cache key and,
    /// with `reuse`, when results for that key are at hand, record `job`
    /// as ended at once with them, `cached_from` naming the job that
    /// computed them ([`super::cache`]). `None`: the job is to run.
    pub(super) async fn cache_or_reuse(
        &self,
        process: &RegisteredProcess,
        job: &mut JobRecord,
        reuse: bool,
    ) -> Result<Option<(JobRecord, JobResults)>, JobError> {
        if !self.inner.config.caches(process.id()) {
            return Ok(None);
        }
        let Some(key) = super::cache::key(&process.record, &job.request) else {
            // Inputs known only when it runs: keyed then (`super::cache`).
            job.cache_pending = Some(crate::store::CachePending {
                deployed: process.record.deployed,
                reuse,
            });
            return Ok(None);
        };
        job.cache_key = Some(hex::encode(key));
        let Some(reused) = reuse.then(|| self.inner.cache.get(&key)).flatten() else {
            return Ok(None);
        };
        let mut job = job.clone();
        job.node = self.node_id();
        let results =
            super::cache::mark_reused(&mut job, &reused, "same process, inputs and outputs");
        self.inner.store.insert_finished_job(&job, &results).await?;
        self.count_inputs(&job);
        self.inner.after_outcome(&job, Some(&results));
        Ok(Some((job, results)))
    }

    /// Run one step of a workflow (a nested process, see
    /// [`super::nested`]) now, as a synchronous job of its own whose record
    /// points to `parent`. While it runs, cancelling `parent_token` (the
    /// parent dismissed) dismisses it.
    ///
    /// Boxed: a step's job may have steps of its own, so this future is
    /// part of the future that runs a job; naming it as a `Send` box ends
    /// that recursion for the compiler.
    pub(super) fn run_step<'a>(
        &'a self,
        process: &'a RegisteredProcess,
        request: ExecuteRequest,
        owner: Option<&'a JobOwner>,
        parent: Uuid,
        parent_token: &'a CancellationToken,
        tree: Arc<Tree>,
    ) -> std::pin::Pin<Box<dyn Future<Output = StepOutcome> + Send + 'a>> {
        let step_of = StepOf {
            parent,
            parent_token,
            tree,
        };
        Box::pin(async move {
            // A leaf of the tree goes to any node of a cluster
            // (`super::spread`); the others run here.
            if self.spreads_steps() {
                let (expanded, request) = self.expand(process, request)?;
                let process = expanded.as_deref().unwrap_or(process);
                if !super::nested::has_nested(&process.validator, &request.inputs) {
                    return self.queue_step(process, request, owner, step_of).await;
                }
                return self
                    .run_now(process, request, owner, true, Keep::Step(step_of))
                    .await
                    .map(SyncRun::into_pair);
            }
            self.run_now(process, request, owner, true, Keep::Step(step_of))
                .await
                .map(SyncRun::into_pair)
        })
    }

    /// The process that runs a request to `process`, and the request it
    /// runs: the same for a component; for a deployed workflow, its top
    /// process with the workflow's inputs in place
    /// ([`super::workflow::expand`]).
    fn expand(
        &self,
        process: &RegisteredProcess,
        request: ExecuteRequest,
    ) -> Result<(Option<Arc<RegisteredProcess>>, ExecuteRequest), JobError> {
        if let Executable::Component(_) = process.executable {
            return Ok((None, request));
        }
        let registry = &self.inner.registry;
        let (runner, request) = super::workflow::expand(
            registry,
            &self.inner.base_url,
            registry.tree_bounds(),
            process,
            request,
        )?;
        Ok((Some(runner), request))
    }

    /// Dismiss job `id` if `parent` is cancelled before the returned guard
    /// is dropped (the watch ends with it).
    fn dismiss_with(&self, parent: &CancellationToken, id: Uuid) -> tokio_util::sync::DropGuard {
        let done = CancellationToken::new();
        let (parent, scheduler, watch) = (parent.clone(), self.clone(), done.clone());
        self.inner.executor.spawn(async move {
            tokio::select! {
                () = parent.cancelled() => {
                    if let Err(error) = scheduler.dismiss(id).await {
                        // Gone already, or its process keeps its jobs: it
                        // ends on its own and its parent ignores it.
                        tracing::debug!(job = %id, %error, "step not dismissed with its parent");
                    }
                }
                () = watch.cancelled() => {}
            }
        });
        done.drop_guard()
    }

    /// [`Self::execute_sync`], for a step of a parent when `keep` says so.
    async fn run_now(
        &self,
        process: &RegisteredProcess,
        request: ExecuteRequest,
        owner: Option<&JobOwner>,
        reuse: bool,
        keep: Keep<'_>,
    ) -> Result<SyncRun, JobError> {
        self.check_storage(owner)?;
        let (expanded, request) = self.expand(process, request)?;
        let process = expanded.as_deref().unwrap_or(process);
        let Executable::Component(module) = &process.executable else {
            unreachable!("expand gives a component");
        };
        // Whatever was asked, a step (its parent names it), a job with
        // steps (they name it) and a job of a process with `cache = true`
        // (the cache names it in `cached_from`) are stored.
        let (kept, step_of) = match keep {
            Keep::Step(step_of) => (true, Some(step_of)),
            Keep::Asked(asked) => (
                asked
                    || self.inner.config.caches(process.id())
                    || super::nested::has_nested(&process.validator, &request.inputs),
                None,
            ),
        };
        let sync_timeout = self.inner.config.execution.sync_timeout;
        let deadline = tokio::time::Instant::now() + sync_timeout;
        let mut job = JobRecord::new(process.id(), &process.record.module_sha256, request, false);
        job.limits = Some(process.limits);
        job.owner = owner.map(|o| o.name.clone());
        job.parent = step_of.as_ref().map(|step| step.parent);
        if let Some((job, results)) = self.cache_or_reuse(process, &mut job, reuse).await? {
            return Ok(SyncRun {
                job,
                results: Some(results),
                kept,
            });
        }
        let permit = match self.inner.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let max = self.inner.config.execution.max_waiting_sync;
                let waiting = &self.inner.waiting_sync;
                waiting
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                        (n < max).then_some(n + 1)
                    })
                    .map_err(|_| JobError::SyncQueueFull(max))?;
                let waited =
                    tokio::time::timeout_at(deadline, self.inner.permits.clone().acquire_owned())
                        .await;
                waiting.fetch_sub(1, Ordering::SeqCst);
                match waited {
                    Ok(Ok(permit)) => permit,
                    Ok(Err(_closed)) => return Err(JobError::ShuttingDown),
                    Err(_elapsed) => {
                        let reason = format!(
                            "no worker became free within the synchronous timeout of {}",
                            humantime::format_duration(sync_timeout)
                        );
                        job.mark_failed(FailureKind::Timeout, reason);
                        if kept {
                            self.inner.store.insert_failed_job(&job).await?;
                        } else {
                            // Counted as `insert_failed_job` counts it.
                            crate::store::count_submitted(&job);
                            crate::store::count_finished(&job);
                        }
                        return Ok(SyncRun {
                            job,
                            results: None,
                            kept,
                        });
                    }
                }
            }
        };
        // A sync job is recorded once it holds a worker, already `running`
        // (see `Store::start_sync_job`); one that is not kept never is.
        job.mark_running();
        job.attempts = 1;
        job.node = self.node_id();
        if kept {
            self.inner.store.start_sync_job(&job).await?;
        } else {
            crate::store::count_sync_start(&job);
        }
        self.count_inputs(&job);
        let token = self.inner.running.start(job.id);
        let _dismissed_with_parent = step_of
            .as_ref()
            .map(|step| self.dismiss_with(step.parent_token, job.id));
        let is_step = step_of.is_some();
        let runnable = Runnable {
            module: module.clone(),
            validator: process.validator.clone(),
            limits: process.limits,
            deadline: Some(deadline),
            tree: step_of.map(|step| step.tree),
            kept,
        };
        let inner = self.inner.clone();
        // Every log line about the job carries its id (the request's span
        // is the parent, so its lines carry the request id too).
        let span = super::job_span(&job);
        let run = tracing::Instrument::instrument(
            async move { inner.execute(job, runnable, token, permit).await },
            span,
        );
        // A step of a workflow is called from its parent's job, on the
        // executor already: it is spawned there as before.
        let here = !is_step
            && process
                .inline
                .may_start_here(self.inner.config.execution.sync_start_budget);
        if !is_step {
            crate::telemetry::metrics::sync_job_started(process.id(), here);
        }
        let (job, results) = if here {
            self.first_slice_here(
                run,
                &process.inline,
                self.inner.config.execution.sync_start_budget,
            )
            .await?
        } else {
            self.inner
                .executor
                .spawn(run)
                .await
                .map_err(|_| JobError::ShuttingDown)??
        };
        Ok(SyncRun { job, results, kept })
    }

    /// Run a sync job's first slice on the calling thread (an HTTP
    /// thread), and the rest, if any, on the executor; what the slice cost
    /// goes into `history` (its CPU time, or its wall time when that is
    /// within `budget`; [`super::inline`] says why and when).
    ///
    /// The slice ends where the job first waits: a guest at its first
    /// epoch tick (so at most [`crate::runtime::EPOCH_TICK`] of guest CPU
    /// here), a fetch, a PostgreSQL write. From then on the job runs on
    /// the executor, guest and all.
    ///
    /// The move happens in the same poll that ended the slice, so a client
    /// that goes away (axum then drops this future) never cuts a job in
    /// half: a job is either complete, or on the executor and runs to its
    /// end. A panic in the first slice is answered as a panicking executor
    /// task is: [`JobError::ShuttingDown`].
    async fn first_slice_here<T: Send + 'static>(
        &self,
        run: impl Future<Output = Result<T, JobError>> + Send + 'static,
        history: &InlineHistory,
        budget: std::time::Duration,
    ) -> Result<T, JobError> {
        let mut run = Box::pin(run);
        let timer = history.start_slice(budget);
        let first = std::future::poll_fn(|cx| {
            let polled =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run.as_mut().poll(cx)));
            Poll::Ready(polled)
        })
        .await;
        history.end_slice(timer, budget);
        match first {
            Ok(Poll::Ready(outcome)) => outcome,
            Ok(Poll::Pending) => self
                .inner
                .executor
                .spawn(run)
                .await
                .map_err(|_| JobError::ShuttingDown)?,
            Err(_panicked) => Err(JobError::ShuttingDown),
        }
    }

    /// Dismiss a job: delete it and its results, durably (a dismissed job
    /// must not come back, or run, after a crash), then stop it wherever it
    /// runs. Returns the job as it was, marked `dismissed`.
    ///
    /// Only if its process allows it: a process whose effective
    /// `jobControlOptions` (its description, or the server's override) lack
    /// `dismiss` keeps its jobs, running or finished, until retention
    /// removes them ([`JobError::DismissNotSupported`]). The process's
    /// current registration decides; a job whose process was undeployed
    /// since may be dismissed (nothing is left to say otherwise).
    pub async fn dismiss(&self, id: Uuid) -> Result<JobRecord, JobError> {
        let current = self
            .inner
            .store
            .get_job(id)
            .await?
            .ok_or(JobError::NoSuchJob(id))?;
        if let Some(process) = self.inner.registry.get(&current.process_id)
            && !process.supports(crate::ogc::DISMISS)
        {
            return Err(JobError::DismissNotSupported {
                process: current.process_id,
                options: process.job_control_options.clone(),
            });
        }
        let mut job = self
            .inner
            .store
            .delete_job(id)
            .await?
            .ok_or(JobError::NoSuchJob(id))?;
        // Here at once; on other nodes when they hear the store's event.
        self.inner.running.stop(id);
        job.status = JobStatus::Dismissed;
        job.message = Some("dismissed by the client".into());
        job.updated = Utc::now();
        Ok(job)
    }

    /// Graceful stop: see `super::lifecycle`.
    pub async fn shutdown(&self, grace: std::time::Duration) {
        self.inner.shutdown(grace).await;
    }

    /// Delete finished jobs older than `job_retention`, now and then.
    pub fn spawn_retention(&self) -> tokio::task::JoinHandle<()> {
        super::lifecycle::spawn_retention(&self.inner)
    }
}
