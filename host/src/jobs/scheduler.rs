//! The scheduler: durable queue, worker pool, sync and async execution,
//! dismissal, crash recovery and retention.
//!
//! Mechanism:
//! - Wasm runs on a dedicated tokio runtime (the *executor*), never on the
//!   HTTP runtime's threads, so status reads stay fast while every core
//!   runs guests.
//! - A [`Semaphore`] with `max_concurrent_jobs` permits bounds how many jobs
//!   run at once, sync and async together. A job holds its permit until its
//!   outcome is stored.
//! - Async jobs wait in a channel of ids; `queued` counts the jobs accepted
//!   but not yet holding a permit, capped at `max_queued_jobs`. A place is
//!   taken *before* the job is written, so a full queue answers 503 without
//!   writing anything; the job is flushed to disk before the 201. One
//!   dispatcher task takes ids in order, waits for a permit, and spawns the
//!   run on the executor.
//! - Every accepted or running job has a [`CancellationToken`] in
//!   `cancels`; dismissing fires it, which drops the guest's future at its
//!   next yield point (at most one epoch tick).
//! - On start-up, jobs found `running` are marked failed ("interrupted by
//!   server restart"): their partial effects are unknown and a guest may
//!   not be idempotent. Jobs found `accepted` are queued again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::Utc;
use tokio::runtime::Handle;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::address_guard::{AddressGuard, GuardedClient};
use super::callbacks::Callbacks;
use super::documents::{results_document, status_info};
use super::href::resolve_references;
use super::registry::{ProcessRegistry, RegisteredProcess};
use super::validate::InputValidator;
use crate::config::Config;
use crate::ogc::{ExecuteRequest, JobStatus};
use crate::runtime::{Limits, ProcessModule, ProgressSink, RunOutcome, Runtime};
use crate::store::{JobFailure, JobRecord, JobResults, Store, StoreError};

/// Why a job operation failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The async queue is full; try again later.
    #[error("the job queue is full ({0} jobs waiting); try again later")]
    QueueFull(usize),
    /// No job with that id.
    #[error("no job with id {0}")]
    NoSuchJob(Uuid),
    /// The scheduler is shutting down.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What start-up recovery did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Jobs that were `running` and are now `failed`.
    pub interrupted: usize,
    /// Jobs that were `accepted` and are queued again.
    pub requeued: usize,
}

/// Everything a run needs, resolved before it starts.
struct Runnable {
    module: ProcessModule,
    validator: Arc<InputValidator>,
    limits: Limits,
}

/// Runs jobs. Cheap to clone.
#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    registry: Arc<ProcessRegistry>,
    runtime: Runtime,
    config: Arc<Config>,
    base_url: String,
    queue: mpsc::UnboundedSender<Uuid>,
    queued: AtomicUsize,
    cancels: Mutex<HashMap<Uuid, CancellationToken>>,
    permits: Arc<Semaphore>,
    /// Fired by [`Scheduler::shutdown`]: no new job starts; jobs cancelled
    /// because of it go back to `accepted`.
    stopping: CancellationToken,
    executor: Handle,
    callbacks: Callbacks,
    http: GuardedClient,
}

/// Writes a guest's progress reports into its job record, and remembers
/// the latest one so the final record carries it without a read back.
struct StoredProgress {
    store: Store,
    job_id: Uuid,
    latest: Mutex<Option<(u8, Option<String>)>>,
}

impl StoredProgress {
    fn new(store: Store, job_id: Uuid) -> Self {
        Self {
            store,
            job_id,
            latest: Mutex::new(None),
        }
    }

    /// Apply the latest report (if any) to `job`.
    fn apply_latest(&self, job: &mut JobRecord) {
        let latest = self
            .latest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some((percent, message)) = latest {
            job.progress = Some(percent);
            if message.is_some() {
                job.message = message;
            }
        }
    }
}

impl ProgressSink for StoredProgress {
    fn progress(&self, percent: u8, message: Option<String>) {
        {
            let mut latest = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
            let message = message
                .clone()
                .or_else(|| latest.as_ref().and_then(|(_, m)| m.clone()));
            *latest = Some((percent, message));
        }
        if let Ok(Some(mut job)) = self.store.get_job(self.job_id)
            && job.status == JobStatus::Running
        {
            job.progress = Some(percent);
            if message.is_some() {
                job.message = message;
            }
            job.updated = Utc::now();
            let _ = self.store.update_job(&job);
        }
    }
}

impl Scheduler {
    /// Start the scheduler: its dispatcher runs on `executor`, where all
    /// guests run.
    pub fn start(
        store: Store,
        registry: Arc<ProcessRegistry>,
        runtime: Runtime,
        config: Arc<Config>,
        base_url: String,
        executor: Handle,
    ) -> Self {
        let (queue, receiver) = mpsc::unbounded_channel();
        let http = GuardedClient::new(AddressGuard::for_href(&config.href));
        let scheduler = Self {
            inner: Arc::new(Inner {
                permits: Arc::new(Semaphore::new(config.execution.max_concurrent_jobs)),
                callbacks: Callbacks::new(config.callbacks.clone()),
                store,
                registry,
                runtime,
                config,
                base_url,
                queue,
                queued: AtomicUsize::new(0),
                cancels: Mutex::new(HashMap::new()),
                stopping: CancellationToken::new(),
                executor: executor.clone(),
                http,
            }),
        };
        executor.spawn(dispatch(Arc::downgrade(&scheduler.inner), receiver));
        scheduler
    }

    fn register_cancel(&self, id: Uuid) -> CancellationToken {
        let token = CancellationToken::new();
        self.inner
            .cancels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, token.clone());
        token
    }

    /// Accept an async job: durable on disk when this returns.
    pub async fn submit_async(
        &self,
        process: &RegisteredProcess,
        request: ExecuteRequest,
    ) -> Result<JobRecord, JobError> {
        let max = self.inner.config.execution.max_queued_jobs;
        if self.inner.stopping.is_cancelled() {
            return Err(JobError::ShuttingDown);
        }
        self.inner
            .queued
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .map_err(|_| JobError::QueueFull(max))?;
        let mut job = JobRecord::new(process.id(), &process.record.module_sha256, request, true);
        job.limits = Some(process.limits);
        let written = match self.inner.store.insert_job(&job) {
            Ok(()) => self.inner.store.flush().await,
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            self.inner.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(e.into());
        }
        self.register_cancel(job.id);
        if self.inner.queue.send(job.id).is_err() {
            return Err(JobError::ShuttingDown);
        }
        Ok(job)
    }

    /// Run a job now and wait for it, at most `sync_timeout` (the job's
    /// wall-clock limit is lowered to fit). Returns the final job record and
    /// its results when it succeeded.
    pub async fn execute_sync(
        &self,
        process: &RegisteredProcess,
        request: ExecuteRequest,
    ) -> Result<(JobRecord, Option<JobResults>), JobError> {
        let sync_timeout = self.inner.config.execution.sync_timeout;
        let mut job = JobRecord::new(process.id(), &process.record.module_sha256, request, false);
        job.limits = Some(process.limits);
        // A sync job exists once it holds a worker, already `running`, and
        // in memory only until it finishes (see `Store::insert_transient_job`):
        // at thousands of requests per second, each sled write saved shows.
        let permit =
            match tokio::time::timeout(sync_timeout, self.inner.permits.clone().acquire_owned())
                .await
            {
                Ok(Ok(permit)) => permit,
                Ok(Err(_closed)) => return Err(JobError::ShuttingDown),
                Err(_elapsed) => {
                    let reason = format!(
                        "no worker became free within the synchronous timeout of {}",
                        humantime::format_duration(sync_timeout)
                    );
                    mark_failed(&mut job, "timeout", &reason);
                    self.inner.store.insert_job(&job)?;
                    return Ok((job, None));
                }
            };
        mark_running(&mut job);
        self.inner.store.insert_transient_job(&job);
        let token = self.register_cancel(job.id);
        let mut limits = process.limits;
        limits.timeout = limits.timeout.min(sync_timeout);
        let runnable = Runnable {
            module: process.module.clone(),
            validator: process.validator.clone(),
            limits,
        };
        let inner = self.inner.clone();
        let handle = self
            .inner
            .executor
            .spawn(async move { inner.execute(job, runnable, token, permit).await });
        handle.await.map_err(|_| JobError::ShuttingDown)?
    }

    /// Dismiss a job: stop it if it runs, then delete it and its results,
    /// durably (a dismissed job must not come back, or run, after a crash).
    /// Returns the job as it was, marked `dismissed`.
    pub async fn dismiss(&self, id: Uuid) -> Result<JobRecord, JobError> {
        let mut job = self
            .inner
            .store
            .get_job(id)?
            .ok_or(JobError::NoSuchJob(id))?;
        if let Some(token) = self
            .inner
            .cancels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id)
        {
            token.cancel();
        }
        self.inner.store.delete_job(&job)?;
        self.inner.store.flush().await?;
        job.status = JobStatus::Dismissed;
        job.message = Some("dismissed by the client".into());
        job.updated = Utc::now();
        Ok(job)
    }

    /// Graceful stop: start no new job, give running ones `grace` to
    /// finish, then stop the rest and put them back to `accepted` (they run
    /// again after a restart). Queued jobs stay `accepted` on disk.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.stopping.cancel();
        let all =
            u32::try_from(self.inner.config.execution.max_concurrent_jobs).unwrap_or(u32::MAX);
        let permits = self.inner.permits.clone();
        if tokio::time::timeout(grace, permits.acquire_many(all))
            .await
            .is_ok()
        {
            return;
        }
        let tokens: Vec<CancellationToken> = self
            .inner
            .cancels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        for token in tokens {
            token.cancel();
        }
        // Cancelled guests stop within an epoch tick; their jobs are then
        // written back as `accepted`.
        let _ = tokio::time::timeout(Duration::from_secs(5), permits.acquire_many(all)).await;
    }

    /// Start-up recovery: fail interrupted jobs, queue accepted ones again.
    pub async fn recover(&self) -> Result<Recovery, JobError> {
        let mut recovery = Recovery::default();
        let mut requeue = Vec::new();
        for mut job in self.inner.store.active_jobs()? {
            match job.status {
                JobStatus::Running => {
                    self.inner.fail(
                        &mut job,
                        "interrupted",
                        "interrupted by server restart while running",
                    )?;
                    recovery.interrupted += 1;
                }
                JobStatus::Accepted if job.asynchronous => {
                    self.register_cancel(job.id);
                    requeue.push(job.id);
                    recovery.requeued += 1;
                }
                _ => {
                    // A sync job whose client is gone: nobody waits for it.
                    self.inner.fail(
                        &mut job,
                        "interrupted",
                        "interrupted by server restart before it ran",
                    )?;
                    recovery.interrupted += 1;
                }
            }
        }
        self.inner.store.flush().await?;
        for id in requeue {
            self.inner.queued.fetch_add(1, Ordering::SeqCst);
            let _ = self.inner.queue.send(id);
        }
        Ok(recovery)
    }

    /// Delete finished jobs older than `job_retention`, now and then.
    pub fn spawn_retention(&self) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(&self.inner);
        let retention = self.inner.config.execution.job_retention;
        let period = retention
            .min(Duration::from_secs(60))
            .max(Duration::from_millis(100));
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(period);
            loop {
                ticker.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                let Ok(retention) = chrono::Duration::from_std(retention) else {
                    break;
                };
                let cutoff = Utc::now() - retention;
                // Bounded batches, so one tick never blocks for long.
                for _ in 0..100 {
                    match inner.store.finished_jobs_before(cutoff, 500) {
                        Ok(jobs) if !jobs.is_empty() => {
                            for job in jobs {
                                let _ = inner.store.delete_job(&job);
                            }
                        }
                        _ => break,
                    }
                }
            }
        })
    }
}

/// Take queued job ids in order, wait for a permit, run each on the
/// executor; a job leaves the queue count once it has its permit. Holds
/// only a weak reference, so dropping the scheduler ends it; stops taking
/// jobs when the scheduler shuts down (they stay `accepted` on disk).
async fn dispatch(weak: std::sync::Weak<Inner>, mut receiver: mpsc::UnboundedReceiver<Uuid>) {
    loop {
        let Some(stopping) = weak.upgrade().map(|i| i.stopping.clone()) else {
            break;
        };
        let id = tokio::select! {
            () = stopping.cancelled() => break,
            id = receiver.recv() => match id {
                Some(id) => id,
                None => break,
            },
        };
        let Some(inner) = weak.upgrade() else { break };
        let permit = tokio::select! {
            () = stopping.cancelled() => break,
            permit = inner.permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        inner.queued.fetch_sub(1, Ordering::SeqCst);
        let executor = inner.executor.clone();
        executor.spawn(async move { inner.run_queued(id, permit).await });
    }
}

impl Inner {
    /// Mark a job failed without running it.
    fn fail(&self, job: &mut JobRecord, kind: &str, reason: &str) -> Result<(), StoreError> {
        mark_failed(job, kind, reason);
        self.store.update_job(job)?;
        self.forget(job.id);
        Ok(())
    }

    fn forget(&self, id: Uuid) {
        self.cancels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }

    /// Run a job taken from the queue, unless it was dismissed meanwhile.
    async fn run_queued(self: Arc<Self>, id: Uuid, permit: OwnedSemaphorePermit) {
        let Ok(Some(mut job)) = self.store.get_job(id) else {
            return;
        };
        if job.status != JobStatus::Accepted {
            return;
        }
        let token = self
            .cancels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned();
        let Some(token) = token else { return };
        let module = match self.registry.module_for(&job.module_sha256).await {
            Ok(Some(module)) => module,
            Ok(None) => {
                let _ = self.fail(
                    &mut job,
                    "trap",
                    "the process module is no longer available",
                );
                return;
            }
            Err(e) => {
                let _ = self.fail(
                    &mut job,
                    "trap",
                    &format!("the process module failed to load: {e}"),
                );
                return;
            }
        };
        // The rules the job was accepted under, even if its process was
        // replaced or undeployed since; after a restart, the module's own.
        let validator = match self
            .registry
            .validator_for(&job.process_id, &job.module_sha256)
        {
            Some(validator) => validator,
            None => match InputValidator::new(module.description()) {
                Ok(v) => Arc::new(v),
                Err(e) => {
                    let _ = self.fail(&mut job, "trap", &e.to_string());
                    return;
                }
            },
        };
        let limits = job
            .limits
            .unwrap_or_else(|| self.config.limits_for(&job.process_id));
        let runnable = Runnable {
            module,
            validator,
            limits,
        };
        mark_running(&mut job);
        match self.store.update_job(&job) {
            Ok(true) => {}
            Ok(false) => return, // dismissed before it started
            Err(e) => {
                tracing::error!(job = %id, error = %e, "could not mark a job running");
                return;
            }
        }
        if let Err(e) = self.execute(job, runnable, token, permit).await {
            tracing::error!(job = %id, error = %e, "could not record a job's outcome");
        }
    }

    /// Run a job, already stored as `running`, to its end and store the
    /// outcome. Holds `_permit` until the outcome is stored.
    async fn execute(
        self: Arc<Self>,
        mut job: JobRecord,
        runnable: Runnable,
        token: CancellationToken,
        _permit: OwnedSemaphorePermit,
    ) -> Result<(JobRecord, Option<JobResults>), JobError> {
        let subscriber = job.request.subscriber.clone().unwrap_or_default();
        if job.asynchronous {
            self.callbacks.notify(
                subscriber.in_progress_uri.as_deref(),
                serde_json::to_value(status_info(&job, &self.base_url)).unwrap_or_default(),
            );
        }

        let mut inputs = job.request.inputs.clone();
        if let Err(e) = resolve_references(
            &self.http,
            &mut inputs,
            &runnable.validator,
            &self.config.href,
        )
        .await
        {
            self.fail(&mut job, "invalid-input", &e.to_string())?;
            self.notify_failure(&job);
            return Ok((job, None));
        }
        let inputs = serde_json::Value::Object(inputs).to_string();
        let progress = Arc::new(StoredProgress::new(self.store.clone(), job.id));
        let report = self
            .runtime
            .run(
                &runnable.module,
                &inputs,
                &runnable.limits,
                progress.clone(),
                &token,
            )
            .await;
        self.forget(job.id);

        progress.apply_latest(&mut job);
        // What readers of an async job see until its final state is durable.
        let shown = job.asynchronous.then(|| job.clone());
        let now = Utc::now();
        job.finished = Some(now);
        job.updated = now;
        job.stats = Some(report.stats);
        job.log = Some(report.log);
        let results = match runnable.validator.check_outputs(report.outcome) {
            RunOutcome::Cancelled if self.stopping.is_cancelled() && job.asynchronous => {
                // Stopped by a shutdown, not a dismissal: run it again later.
                job.status = JobStatus::Accepted;
                job.started = None;
                job.finished = None;
                job.progress = None;
                job.message = Some("re-queued: the server shut down while it ran".into());
                job.stats = None;
                self.store.update_job(&job)?;
                return Ok((job, None));
            }
            RunOutcome::Cancelled => return Ok((job, None)),
            RunOutcome::Success { outputs } => {
                let results = JobResults { outputs };
                self.store.put_results(job.id, &results)?;
                job.status = JobStatus::Successful;
                job.progress = Some(100);
                job.message = Some("completed".into());
                Some(results)
            }
            failed => {
                let reason = failed.failure_reason().unwrap_or_default();
                job.status = JobStatus::Failed;
                job.message = Some(reason.clone());
                job.failure = Some(JobFailure {
                    kind: failed.kind().into(),
                    code: match &failed {
                        RunOutcome::ProcessError { code, .. } => Some(code.clone()),
                        _ => None,
                    },
                    reason,
                });
                None
            }
        };
        let visible = match &shown {
            // The client will come back for these results: the final state
            // (and the results written above) is durable before anybody can
            // see the job finished (group commit, shared with concurrent
            // jobs). Sync results go to the client in the response; sled
            // writes them out within its flush interval.
            Some(shown) => self.store.finish_durably(shown, &job).await?,
            None => self.store.update_job(&job)?,
        };
        if !visible {
            // Dismissed while finishing: leave nothing behind.
            let _ = self.store.delete_job(&job);
            return Ok((job, None));
        }
        if job.asynchronous {
            match &results {
                Some(results) => self.callbacks.notify(
                    subscriber.success_uri.as_deref(),
                    results_document(&job, results, &self.base_url),
                ),
                None => self.notify_failure(&job),
            }
        }
        Ok((job, results))
    }

    fn notify_failure(&self, job: &JobRecord) {
        if !job.asynchronous {
            return;
        }
        let failed_uri = job
            .request
            .subscriber
            .as_ref()
            .and_then(|s| s.failed_uri.clone());
        self.callbacks.notify(
            failed_uri.as_deref(),
            serde_json::to_value(status_info(job, &self.base_url)).unwrap_or_default(),
        );
    }
}

/// Set `job` running from now.
fn mark_running(job: &mut JobRecord) {
    let now = Utc::now();
    job.status = JobStatus::Running;
    job.started = Some(now);
    job.updated = now;
    job.progress = Some(0);
}

/// Set `job` failed from now, with a reason of the given kind.
fn mark_failed(job: &mut JobRecord, kind: &str, reason: &str) {
    let now = Utc::now();
    job.status = JobStatus::Failed;
    job.failure = Some(JobFailure {
        kind: kind.into(),
        code: None,
        reason: reason.into(),
    });
    job.message = Some(reason.into());
    job.finished = Some(now);
    job.updated = now;
}
