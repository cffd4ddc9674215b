//! Steps of a tree of nested processes run by any node of a cluster.
//!
//! On PostgreSQL with `cluster.spread_steps` (the default), a step whose
//! inputs are all values (a leaf of the tree: most of a `map`'s elements,
//! the first links of a chain) is not run on its parent's node: it is
//! queued like an asynchronous job, so any worker node of the cluster
//! claims it ([`Scheduler::queue_step`]). The parent's node waits for it
//! to end, woken by the store's `finished` notification for jobs that
//! have a parent (looking again every second, should one be missed), and
//! takes its results from the store. A 1,000-element map thus spreads
//! over every node's workers, the way 1,000 jobs submitted by a client do.
//!
//! Steps that have steps of their own run on the parent's node, so the
//! whole tree is orchestrated in one place and its fuel budget and shared
//! calls ([`super::tree`]) hold across the cluster: a queued step's fuel
//! limit is reserved from the tree's budget when it is queued, and what it
//! did not burn is given back when it ends. Dismissing the parent (or its
//! `workflow_timeout`) dismisses the queued step wherever it runs.
//!
//! On the embedded sled store (one node) steps always run on the parent's
//! node, without the round trips through the store.

use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use super::errors::JobError;
use super::registry::RegisteredProcess;
use super::scheduler::{JobOwner, Scheduler, StepOf, StepOutcome};
use crate::failure::FailureKind;
use crate::ogc::{ExecuteRequest, JobStatus};
use crate::runtime::Limits;
use crate::store::{JobRecord, Store, StoreEvent};

/// How often a waiting parent looks at its queued step when no
/// notification came (one may be missed while a listener reconnects).
const LOOK_AGAIN: Duration = Duration::from_secs(1);

impl Scheduler {
    /// Whether steps are queued for any node rather than run here.
    pub(super) fn spreads_steps(&self) -> bool {
        matches!(self.inner.store, Store::Postgres(_)) && self.inner.config.cluster.spread_steps
    }

    /// Queue a step (a leaf of its tree, see the module documentation) for
    /// any node, wait for it to end, and give its final record and, when
    /// it succeeded, its results.
    pub(super) async fn queue_step(
        &self,
        process: &RegisteredProcess,
        request: ExecuteRequest,
        owner: Option<&JobOwner>,
        step_of: StepOf<'_>,
    ) -> StepOutcome {
        self.check_storage(owner)?;
        let mut job = JobRecord::new(process.id(), &process.record.module_sha256, request, true);
        job.owner = owner.map(|o| o.name.clone());
        job.parent = Some(step_of.parent);
        if let Some((job, results)) = self.cache_or_reuse(process, &mut job, true).await? {
            return Ok((job, Some(results)));
        }
        // Its fuel comes out of the tree's budget, reserved here: the node
        // that runs it cannot see the budget.
        let wanted = process.limits.fuel;
        let granted = tokio::select! {
            granted = step_of.tree.fuel.reserve(wanted) => granted,
            () = step_of.parent_token.cancelled() => {
                job.status = JobStatus::Dismissed;
                job.message = Some("dismissed with its parent before it was queued".into());
                return Ok((job, None));
            }
        };
        if granted == 0 {
            let reason = format!(
                "the fuel budget of its workflow (execution.workflow_fuel = {}) was used up by the jobs before it",
                step_of.tree.fuel.total()
            );
            job.mark_failed(FailureKind::FuelExhausted, reason);
            self.inner.store.insert_failed_job(&job).await?;
            return Ok((job, None));
        }
        job.limits = Some(Limits {
            fuel: granted,
            ..process.limits
        });
        let queued = self
            .inner
            .store
            .enqueue_job(&job, self.inner.config.execution.max_queued_jobs)
            .await;
        if let Err(error) = queued {
            step_of.tree.fuel.settle(granted, 0);
            return Err(error.into());
        }
        self.count_inputs(&job);

        let ended = self.wait_until_ended(job.id, step_of.parent_token).await;
        let burnt = match &ended {
            Ok(Some(ended)) => ended.stats.as_ref().map_or(granted, |s| s.fuel_consumed),
            // Dismissed, or unknown: count it all as burnt.
            _ => granted,
        };
        step_of.tree.fuel.settle(granted, burnt);
        let Some(mut ended) = ended? else {
            job.status = JobStatus::Dismissed;
            job.message = Some("dismissed while it ran".into());
            return Ok((job, None));
        };
        if ended.status != JobStatus::Successful {
            if ended
                .failure
                .as_ref()
                .is_some_and(|f| f.kind == FailureKind::FuelExhausted)
                && granted < wanted
            {
                let message = ended.message.take().unwrap_or_default();
                ended.message = Some(format!(
                    "{message}: all that was left of its workflow's fuel budget (execution.workflow_fuel = {}; its own limit is {wanted})",
                    step_of.tree.fuel.total()
                ));
            }
            return Ok((ended, None));
        }
        let results = self.inner.store.get_results(ended.id).await?;
        Ok((ended, results))
    }

    /// Wait until job `id` has ended, as it is then; `None` when it is
    /// gone (dismissed). When `parent` is cancelled (the parent dismissed,
    /// or out of `workflow_timeout`) the job is dismissed and `None`
    /// returned.
    async fn wait_until_ended(
        &self,
        id: Uuid,
        parent: &tokio_util::sync::CancellationToken,
    ) -> Result<Option<JobRecord>, JobError> {
        // Subscribed before the first look, so an end between the look
        // and the wait is still heard.
        let mut events = self.inner.store.subscribe();
        loop {
            match self.inner.store.get_job(id).await? {
                None => return Ok(None),
                Some(job) if job.status.is_finished() => return Ok(Some(job)),
                Some(_) => {}
            }
            let look_again = tokio::time::sleep(LOOK_AGAIN);
            tokio::pin!(look_again);
            loop {
                tokio::select! {
                    () = &mut look_again => break,
                    () = parent.cancelled() => {
                        if let Err(error) = self.dismiss(id).await {
                            tracing::debug!(job = %id, %error, "step not dismissed with its parent");
                        }
                        return Ok(None);
                    }
                    event = events.recv() => match event {
                        Ok(StoreEvent::JobFinished(ended) | StoreEvent::JobDismissed(ended))
                            if ended == id => break,
                        Ok(_) => {}
                        Err(RecvError::Lagged(_)) => break,
                        // The store is closing: the next look says how
                        // the job stands, or fails.
                        Err(RecvError::Closed) => {
                            (&mut look_again).await;
                            break;
                        }
                    },
                }
            }
        }
    }
}
