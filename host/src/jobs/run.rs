//! Running one job to its end: resolve what it runs, fetch its `href`
//! inputs, run the guest, and store the outcome.
//!
//! # The steps of [`Inner::execute`]
//! 1. **What it runs.** A claimed async job runs the module, input rules
//!    and limits it was accepted under ([`Inner::run_claimed`] resolves
//!    them from its `module_sha256`), even if its process was replaced or
//!    undeployed since; a sync job runs the process as registered when
//!    its request arrived. A module that cannot be found or loaded fails
//!    the job as `module-unavailable`.
//! 2. **`inProgressUri`** is called (async jobs only; fire and forget).
//! 3. **`href` inputs** are fetched through the SSRF guard and checked
//!    against the input rules. For a sync job this happens inside the
//!    request's one deadline (`sync_timeout`), and the guest's wall-clock
//!    limit is cut to what is left of it, so the client never waits for
//!    more than `sync_timeout` in total.
//! 4. **The guest runs** on this thread (the executor's) with its fuel,
//!    memory, wall-clock, output and log limits, and the job's stop token.
//!    Progress reports go to memory and are written at most every 250 ms
//!    ([`super::progress`]).
//! 5. **The worker is given back** as soon as the guest ends, before the
//!    outcome is written: on PostgreSQL a commit takes a millisecond or
//!    two, and the next job need not wait for it. The time the worker was
//!    held feeds the dispatcher's claim-ahead estimate.
//! 6. **Outputs are checked** against the description (undeclared outputs,
//!    media types, schemas): a violation fails the job (`strict`) or is
//!    logged in the job's log and the server's (`warn`).
//! 7. **The outcome is stored** ([`Inner::finish_with_retries`]): an async
//!    job's final state and results become visible together and only
//!    once durable; a sync job's are written before its client gets the
//!    answer. `false` from the store means the job is no longer this
//!    node's to finish (dismissed, or taken over after a lost lease). A
//!    sync job that is not kept (`execution.keep_sync_jobs = false`,
//!    [`Runnable::kept`]) writes nothing here or anywhere else: its outcome
//!    is only counted in the metrics, and its client has the answer.
//! 8. **`successUri` / `failedUri`** are called (async jobs only).
//!
//! How a run that was stopped ends depends on why it was stopped:
//! - dismissed: the job is already deleted; nothing is written; a sync
//!   client is told it was dismissed (409), not that it failed;
//! - lease lost (cluster): another node owns the job now; nothing is
//!   written (every write is conditional on holding the lease anyway);
//! - graceful shutdown: an async job goes back to the queue, to run again
//!   (here after a restart, or on another node).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::Utc;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

use super::documents::{results_document, status_info};
use super::errors::JobError;
use super::href::resolve_references;
use super::progress::ProgressReports;
use super::scheduler::Inner;
use super::tree::Tree;
use super::validate::InputValidator;
use crate::failure::FailureKind;
use crate::ogc::JobStatus;
use crate::runtime::{JobLog, Limits, ProcessModule, RunOutcome};
use crate::store::{JobFailure, JobRecord, JobResults, StoreError};

/// Pause between two attempts to store an outcome while the database is
/// unavailable.
const FINISH_RETRY: std::time::Duration = std::time::Duration::from_millis(500);

/// Everything a run needs, resolved before it starts.
pub(super) struct Runnable {
    /// The compiled component the guest is instantiated from: for a
    /// claimed job the version it was accepted for (by `module_sha256`),
    /// for a sync job or a step the one registered when it was submitted.
    pub(super) module: ProcessModule,
    /// The rules the inputs are checked by once `href`s are fetched and
    /// steps have given their values, and the outputs after the run.
    pub(super) validator: Arc<InputValidator>,
    /// Fuel, memory, wall-clock, output and log limits of the guest. The
    /// wall-clock limit is cut to what is left of `deadline`, and the fuel
    /// to what the tree's budget grants, just before the guest starts.
    pub(super) limits: Limits,
    /// A sync job's deadline (`sync_timeout` from its request's arrival):
    /// fetching its `href` inputs and its run must both end by then.
    pub(super) deadline: Option<tokio::time::Instant>,
    /// A step's: what the jobs of its tree share. A job with nested
    /// processes and no tree yet is the top of one, and makes it.
    pub(super) tree: Option<Arc<Tree>>,
    /// Whether the job is in the store. A sync job that is not kept
    /// (`execution.keep_sync_jobs = false`) writes nothing: no progress,
    /// no outcome; its outcome is counted in the metrics all the same.
    pub(super) kept: bool,
}

impl Inner {
    /// Run a job this node claimed from the queue (already `running`,
    /// under this node's lease on PostgreSQL). Spawned by the dispatcher
    /// on the executor, in the job's span, with the worker it took.
    ///
    /// When what the job runs cannot be resolved (its module is gone from
    /// the store, or no longer loads), the job fails as
    /// `module-unavailable` without a guest: written once, a failed write
    /// only logged and counted (nobody waits for the answer), and its
    /// `failedUri` called whatever the write gave. Otherwise
    /// [`Inner::execute`] runs it; an error from there (the outcome could
    /// not be stored) is logged, and the job is left `running` for its
    /// lease (PostgreSQL) or the next start-up's recovery (sled) to settle.
    pub(super) async fn run_claimed(
        self: Arc<Self>,
        mut job: JobRecord,
        token: CancellationToken,
        permit: OwnedSemaphorePermit,
    ) {
        let id = job.id;
        let runnable = match self.resolve(&job).await {
            Ok(runnable) => runnable,
            Err((kind, reason)) => {
                self.running.end(id);
                let shown = job.clone();
                job.mark_failed(kind, reason);
                if let Err(error) = self.store.finish_job(&shown, &job, None).await {
                    self.write_failures.record(id, "outcome", &error);
                }
                self.notify_failure(&job);
                return;
            }
        };
        if let Err(error) = self.execute(job, runnable, token, permit).await {
            tracing::error!(job = %id, %error, "could not record a job's outcome");
        }
    }

    /// The module, input rules and limits a queued job runs with: the ones
    /// it was accepted under, even if its process was replaced or
    /// undeployed since.
    ///
    /// The module comes from memory, or is compiled again from the bytes
    /// the store keeps (module collection leaves the bytes of a module a
    /// live job uses). The limits are those recorded on the job when it
    /// was accepted (for a step queued by `jobs/spread.rs`, with the fuel
    /// its tree granted); only a record without them falls back to the
    /// process's configured limits now. A claimed job has no deadline and
    /// no tree: if it has nested processes it starts a tree of its own.
    async fn resolve(&self, job: &JobRecord) -> Result<Runnable, (FailureKind, String)> {
        let module = match self.registry.module_for(&job.module_sha256).await {
            Ok(Some(module)) => module,
            Ok(None) => {
                return Err((
                    FailureKind::ModuleUnavailable,
                    "the process module is no longer available".into(),
                ));
            }
            Err(e) => {
                return Err((
                    FailureKind::ModuleUnavailable,
                    format!("the process module failed to load: {e}"),
                ));
            }
        };
        // After a restart, or on a node that never saw that version: the
        // rules of the process offering that module now (a workflow's job
        // runs its top process's module), else the module's own
        // description.
        let validator = match self
            .registry
            .validator_for(&job.process_id, &job.module_sha256)
            .or_else(|| self.registry.validator_of_module(&job.module_sha256))
        {
            Some(validator) => validator,
            None => match InputValidator::new(module.description()) {
                Ok(v) => Arc::new(v),
                Err(e) => return Err((FailureKind::ModuleUnavailable, e.to_string())),
            },
        };
        let limits = job
            .limits
            .unwrap_or_else(|| self.config.limits_for(&job.process_id));
        Ok(Runnable {
            module,
            validator,
            limits,
            deadline: None,
            tree: None,
            kept: true,
        })
    }

    /// Run a job, already stored as `running`, to its end and store the
    /// outcome. Holds `permit` (its worker) while the guest runs, and gives
    /// it back before the outcome is written (see
    /// [`super::running::StoringOutcomes`]).
    ///
    /// `token` is the job's stop token from [`super::running`]: fired, it
    /// stops the steps, a wait for the tree's fuel, or the guest, and the
    /// run ends through [`Self::stopped`]. Returns the job's final record
    /// as this node last saw it and, when it succeeded and the outcome is
    /// visible, its results; a job that was dismissed or taken over while
    /// its outcome was written comes back without results. `Err` comes from
    /// the store (writing the outcome or a re-queue, or looking whether a
    /// stopped sync job still exists), or from the worker pool being closed
    /// while the job waits for a worker again after its steps (nothing
    /// closes it today).
    pub(super) async fn execute(
        self: Arc<Self>,
        mut job: JobRecord,
        runnable: Runnable,
        token: CancellationToken,
        mut permit: OwnedSemaphorePermit,
    ) -> Result<(JobRecord, Option<JobResults>), JobError> {
        let _storing = self.storing.start();
        let holding_since = std::time::Instant::now();
        let subscriber = job.request.subscriber.clone().unwrap_or_default();
        if job.asynchronous {
            self.callbacks.notify(
                subscriber.in_progress_uri.as_deref(),
                serde_json::to_value(status_info(&job, &self.base_url)).unwrap_or_default(),
            );
        }
        // What readers of an async job see until its final state is
        // durable (a sync job's client gets its answer only after the
        // write, so nobody needs a state shown meanwhile).
        let shown = job.asynchronous.then(|| job.clone());
        let kept = runnable.kept;

        let mut inputs = job.request.inputs.clone();
        let mut tree = runnable.tree.clone();
        if super::nested::has_nested(&runnable.validator, &inputs) {
            let tree = tree
                .get_or_insert_with(|| Arc::new(Tree::new(self.config.execution.workflow_fuel)));
            // The steps take workers of their own: this job gives its
            // worker back while they run (a parent holding one while its
            // steps wait for one could starve the pool), and takes one
            // again once its inputs are complete.
            drop(permit);
            // The steps answer to a token of their own under the job's:
            // dismissing the job stops them, and so does running out of
            // `workflow_timeout`.
            let steps_token = token.child_token();
            let budget = self.config.execution.workflow_timeout;
            let (steps, outcome) = {
                let steps_run = super::steps::run_steps(
                    &self,
                    &job,
                    &runnable.validator,
                    &mut inputs,
                    &steps_token,
                    tree,
                );
                tokio::pin!(steps_run);
                tokio::select! {
                    ran = &mut steps_run => ran,
                    () = tokio::time::sleep(budget) => {
                        // Out of time: dismiss the running steps, and wait for
                        // them to notice (quickly) so that none is left behind.
                        steps_token.cancel();
                        let (steps, _) = steps_run.await;
                        let reason = format!(
                            "its nested processes ran longer than execution.workflow_timeout = {}; the running steps were dismissed",
                            humantime::format_duration(budget)
                        );
                        let failed = super::steps::StepFailed {
                            kind: FailureKind::Timeout,
                            reason,
                        };
                        (steps, Err(failed))
                    }
                }
            };
            job.steps = steps;
            if token.is_cancelled() {
                self.running.end(job.id);
                return self.stopped(job, kept).await;
            }
            if let Err(failed) = outcome {
                return self
                    .fail_before_run(job, kept, shown.as_ref(), failed.kind, failed.reason)
                    .await;
            }
            permit = self
                .permits
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| JobError::ShuttingDown)?;
        }
        // The fetches hold a worker, so the job's stop token (a dismissal,
        // a lost lease, a shutdown) ends them at once rather than after
        // `href.timeout`.
        let fetch = async {
            tokio::select! {
                biased;
                () = token.cancelled() => None,
                fetched = resolve_references(
                    &self.http,
                    &mut inputs,
                    &runnable.validator,
                    &self.config.href,
                ) => Some(fetched.map_err(|e| (FailureKind::InvalidInput, e.to_string()))),
            }
        };
        let fetched = match runnable.deadline {
            None => fetch.await,
            Some(deadline) => match tokio::time::timeout_at(deadline, fetch).await {
                Ok(fetched) => fetched,
                Err(_) => Some(Err((FailureKind::Timeout, self.sync_timeout_used_up()))),
            },
        };
        let Some(fetched) = fetched else {
            self.running.end(job.id);
            return self.stopped(job, kept).await;
        };
        let mut limits = runnable.limits;
        let fetched = fetched.and_then(|()| match runnable.deadline {
            // What is left of the request's deadline bounds the run.
            Some(deadline) => {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                if left.is_zero() {
                    Err((FailureKind::Timeout, self.sync_timeout_used_up()))
                } else {
                    limits.timeout = limits.timeout.min(left);
                    Ok(())
                }
            }
            None => Ok(()),
        });
        if let Err((kind, reason)) = fetched {
            return self
                .fail_before_run(job, kept, shown.as_ref(), kind, reason)
                .await;
        }
        // A process with `cache = true` whose inputs were not known when
        // the job was accepted: keyed now, and answered from the cache if
        // the same inputs gave results before (`super::cache`).
        if let Some(pending) = job.cache_pending.clone()
            && let Some(key) = super::cache::key_once_known(&job, pending.deployed, &inputs)
        {
            job.cache_key = Some(hex::encode(key));
            if pending.reuse
                && let Some(reused) = self.cache.get(&key)
            {
                self.running.end(job.id);
                drop(permit);
                return self.reuse_results(job, shown.as_ref(), reused).await;
            }
        }
        // In a tree, the guest's fuel comes out of the tree's budget too
        // (see `super::tree`): its own limit, or what is left of it.
        let reservation = match &tree {
            Some(tree) => {
                let wanted = limits.fuel;
                let granted = tokio::select! {
                    granted = tree.fuel.reserve(wanted) => granted,
                    () = token.cancelled() => {
                        self.running.end(job.id);
                        return self.stopped(job, kept).await;
                    }
                };
                if granted == 0 {
                    let reason = format!(
                        "the fuel budget of its workflow (execution.workflow_fuel = {}) was used up by the jobs before it",
                        tree.fuel.total()
                    );
                    return self
                        .fail_before_run(
                            job,
                            kept,
                            shown.as_ref(),
                            FailureKind::FuelExhausted,
                            reason,
                        )
                        .await;
                }
                limits.fuel = granted;
                Some((tree.clone(), wanted, granted))
            }
            None => None,
        };
        let inputs = serde_json::Value::Object(inputs).to_string();
        let progress = ProgressReports::new(
            kept.then(|| self.store.clone()),
            job.id,
            self.write_failures.clone(),
        );
        let report = self
            .runtime
            .run(
                &runnable.module,
                &inputs,
                &limits,
                Arc::new(progress.clone()),
                &token,
                JobLog::new(limits.log_bytes),
            )
            .await;
        self.running.end(job.id);
        drop(permit);
        if let Some((tree, _, granted)) = &reservation {
            tree.fuel.settle(*granted, report.stats.fuel_consumed);
        }
        self.recent_run_time.record(holding_since.elapsed());
        progress.finish(&mut job);

        let now = Utc::now();
        job.finished = Some(now);
        job.updated = now;
        job.stats = Some(report.stats);
        job.log = Some(report.log);
        let checked = runnable.validator.check_outputs_as(
            report.outcome,
            self.config.output_checks_for(&job.process_id),
        );
        for warning in &checked.warnings {
            // In the server's log (with the job span) and in the job's own
            // log, where the process's author looks.
            tracing::warn!(job = %job.id, "{warning}");
            if let Some(log) = job.log.as_mut() {
                if !log.is_empty() && !log.ends_with('\n') {
                    log.push('\n');
                }
                log.push_str(&format!(
                    "{} [wasmproc] warning: {warning}\n",
                    Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ")
                ));
            }
        }
        let results = match checked.outcome {
            RunOutcome::Cancelled => return self.stopped(job, kept).await,
            RunOutcome::Success { outputs } => {
                job.status = JobStatus::Successful;
                job.progress = Some(100);
                job.message = Some("completed".into());
                Some(JobResults { outputs })
            }
            ref failed => {
                let mut reason = failed.failure_reason().unwrap_or_default();
                if let (RunOutcome::FuelExhausted { .. }, Some((tree, wanted, granted))) =
                    (failed, &reservation)
                    && granted < wanted
                {
                    reason = format!(
                        "{reason}: all that was left of its workflow's fuel budget (execution.workflow_fuel = {}; its own limit is {wanted})",
                        tree.fuel.total()
                    );
                }
                job.status = JobStatus::Failed;
                job.message = Some(reason.clone());
                job.failure = Some(JobFailure {
                    kind: failed.failure_kind().unwrap_or(FailureKind::Trap),
                    code: match failed {
                        RunOutcome::ProcessError { code, .. } => Some(code.clone()),
                        _ => None,
                    },
                    reason,
                });
                None
            }
        };
        // The client will come back for an async job's results: its final
        // state and results are durable before anybody can see it finished
        // (see `Store::finish_job`).
        if !kept {
            // Nothing to write; counted as a stored outcome would be.
            crate::store::count_finished(&job);
            return Ok((job, results));
        }
        let visible = self
            .finish_with_retries(shown.as_ref().unwrap_or(&job), &job, results.as_ref())
            .await?;
        if !visible {
            // Dismissed (or, in a cluster, taken over) while finishing.
            return Ok((job, None));
        }
        // A process with `cache = true`: keep the results under the key
        // computed when the job was accepted (or once its inputs were known).
        if let Some(results) = &results
            && let Some(key) = job.cache_key.as_deref().and_then(super::cache::parse_key)
        {
            self.cache.put(key, job.id, results.clone());
        }
        self.after_outcome(&job, results.as_ref());
        Ok((job, results))
    }

    /// What follows a job's outcome once it is durable and visible: its
    /// bytes counted toward the storage bound, and, for an async job, its
    /// subscriber told (`successUri` with the results document, else
    /// `failedUri` with its statusInfo). Fire and forget: a callback that
    /// fails is logged by `callbacks.rs`, never the job's failure.
    pub(super) fn after_outcome(&self, job: &JobRecord, results: Option<&JobResults>) {
        if super::storage::counts(&self.config) {
            self.storage.add(
                job.owner.as_deref(),
                super::storage::outcome_bytes(job, results),
            );
        }
        if !job.asynchronous {
            return;
        }
        match results {
            Some(results) => {
                let subscriber = job.request.subscriber.as_ref();
                self.callbacks.notify(
                    subscriber.and_then(|s| s.success_uri.as_deref()),
                    results_document(job, results, &self.base_url),
                );
            }
            None => self.notify_failure(job),
        }
    }

    /// End a job with the results of an earlier one (`reused`, see
    /// `super::cache`) instead of running it: stored successful (shown as
    /// `shown` until durable), `cached_from` naming that job, and its
    /// subscriber told as for any job that ended well.
    async fn reuse_results(
        &self,
        mut job: JobRecord,
        shown: Option<&JobRecord>,
        reused: super::cache::Reusable,
    ) -> Result<(JobRecord, Option<JobResults>), JobError> {
        let results = super::cache::mark_reused(
            &mut job,
            &reused,
            "same process, and the same inputs once fetched or computed",
        );
        let visible = self
            .finish_with_retries(shown.unwrap_or(&job), &job, Some(&results))
            .await?;
        if !visible {
            return Ok((job, None));
        }
        self.after_outcome(&job, Some(&results));
        Ok((job, Some(results)))
    }

    /// Why a sync job failed whose deadline passed before its guest ran.
    fn sync_timeout_used_up(&self) -> String {
        format!(
            "the synchronous timeout of {} was used up (waiting for a worker and fetching inputs) before the process could run",
            humantime::format_duration(self.config.execution.sync_timeout)
        )
    }

    /// Store a job's outcome; while the database is unavailable, try again
    /// every [`FINISH_RETRY`] for up to half a lease. A brief outage thus
    /// costs no re-run; a longer one leaves the job `running` under a lease
    /// nobody renews, and another run (here or on another node) records it.
    ///
    /// Returns the store's answer: `true` when the outcome was written
    /// (for an async job, durable before it became visible), `false` when
    /// the job was deleted (dismissed) or, in a cluster, another node holds
    /// it now; nothing was written then. Only `Unavailable` is retried:
    /// any other error is returned at once.
    async fn finish_with_retries(
        &self,
        shown: &JobRecord,
        job: &JobRecord,
        results: Option<&JobResults>,
    ) -> Result<bool, StoreError> {
        let give_up = tokio::time::Instant::now() + self.config.cluster.lease / 2;
        loop {
            match self.store.finish_job(shown, job, results).await {
                Err(StoreError::Unavailable { .. }) if tokio::time::Instant::now() < give_up => {
                    tokio::time::sleep(FINISH_RETRY).await;
                }
                other => return other,
            }
        }
    }

    /// End a job whose inputs could not be completed (a step failed, an
    /// `href` could not be fetched, the deadline passed) before its guest
    /// ran: stored failed (shown as `shown` until durable) and its
    /// subscriber told.
    ///
    /// Written once, without the retries of [`Self::finish_with_retries`]:
    /// a store error goes back to the caller and the job is left as it was
    /// stored (`running`). `failedUri` is called only when the failure was
    /// written and is visible (not for a dismissed job).
    async fn fail_before_run(
        &self,
        mut job: JobRecord,
        kept: bool,
        shown: Option<&JobRecord>,
        kind: FailureKind,
        reason: String,
    ) -> Result<(JobRecord, Option<JobResults>), JobError> {
        self.running.end(job.id);
        job.mark_failed(kind, reason);
        if !kept {
            crate::store::count_finished(&job);
            return Ok((job, None));
        }
        let visible = self
            .store
            .finish_job(shown.unwrap_or(&job), &job, None)
            .await?;
        if visible {
            self.notify_failure(&job);
        }
        Ok((job, None))
    }

    /// A job whose token was cancelled: by a shutdown (an async job goes
    /// back to the queue to run again), by a dismissal (deleted already),
    /// or because another node took it over. Nothing is written for the
    /// last two.
    ///
    /// A re-queued job loses what this run gave it (progress, stats, log,
    /// the steps it ran: it runs them again) and the attempt it used, so
    /// that a shutdown does not count against `cluster.max_attempts`. It is
    /// re-queued only when the graceful shutdown gave up waiting
    /// (`stopped_by_shutdown`); a job stopped before that was dismissed or
    /// lost. A sync job is never re-queued: stopped by a shutdown or a lost
    /// lease, it comes back as it was (`running`, nothing written), its
    /// client is answered 503 with Retry-After (send it again; the API's
    /// `job_stopped`), and its record is settled
    /// by the lease sweep (PostgreSQL: failed as `node-lost`); on sled a
    /// running sync job lives only in memory, and goes with the process.
    async fn stopped(
        &self,
        mut job: JobRecord,
        kept: bool,
    ) -> Result<(JobRecord, Option<JobResults>), JobError> {
        if job.asynchronous && self.stopped_by_shutdown.load(Ordering::SeqCst) {
            job.status = JobStatus::Accepted;
            job.started = None;
            job.finished = None;
            job.progress = None;
            job.node = None;
            job.attempts = job.attempts.saturating_sub(1);
            job.message = Some("re-queued: the server shut down while it ran".into());
            job.stats = None;
            job.log = None;
            job.steps.clear();
            self.store.requeue_job(&job).await?;
            return Ok((job, None));
        }
        // A sync client waits for this answer: say it was dismissed (the
        // job is gone from the store), not that it failed.
        // (A job that is not kept cannot be dismissed: nobody has its id.)
        if !job.asynchronous && kept && self.store.get_job(job.id).await?.is_none() {
            job.status = JobStatus::Dismissed;
            job.message = Some("dismissed by a client while it ran".into());
            job.updated = Utc::now();
        }
        Ok((job, None))
    }

    /// Call an async job's `failedUri` (if it gave one) with its
    /// statusInfo, in the background ([`super::callbacks`]). Nothing for a
    /// sync job: its client gets the failure as the answer to its request,
    /// and a step's parent reads it from the step's record.
    pub(super) fn notify_failure(&self, job: &JobRecord) {
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
