//! The scheduler's life around the jobs: graceful shutdown, retention, and
//! the cluster tasks (store events, lease heartbeat and sweep).
//!
//! - **Shutdown**: start no new job, give running ones `grace` to finish,
//!   then stop the rest; stopped async jobs go back to the queue (they run
//!   again after a restart, or on another node). Queued jobs stay queued.
//! - **Retention**: finished jobs older than `job_retention` (counted from
//!   when they finished) are deleted in bounded batches; with PostgreSQL
//!   one node at a time does it.
//! - **Store events**: a dismissal made on another node stops the job here;
//!   a deploy, replace or undeploy made elsewhere reloads that process; a
//!   missed notification reloads every process.
//! - **Heartbeat** (shared store only): every `cluster.heartbeat`, renew
//!   the leases of the jobs running here (and stop those this node no
//!   longer holds), then re-queue or fail the jobs of lost nodes.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::broadcast::error::RecvError;

use super::scheduler::Inner;
use crate::store::StoreEvent;

/// Retention deletes at most this many jobs per batch and this many
/// batches per tick, so one tick never holds the store for long.
const RETENTION_BATCH: usize = 500;
/// Most batches of [`RETENTION_BATCH`] one tick deletes: a backlog larger
/// than 50,000 jobs is worked off over several ticks, leaving the store to
/// other writers in between.
const RETENTION_BATCHES: usize = 100;

/// Longest a shutdown waits for the outcomes of ended guests to be
/// written (a database that is down would otherwise hold it forever; the
/// jobs then run again elsewhere or after the restart).
const OUTCOME_WAIT: Duration = Duration::from_secs(10);

impl Inner {
    /// The graceful stop, in this order:
    /// 1. fire `stopping`: the dispatcher stops claiming (jobs it claimed
    ///    ahead and cannot start go back to the queue, as do those of a
    ///    claim that returns now), and `submit_async` refuses new jobs;
    ///    then wait for the dispatcher to end (at most [`OUTCOME_WAIT`]):
    ///    a claim still under way when the executor shuts down would leave
    ///    its jobs to their lease;
    /// 2. wait up to `grace` until every worker is free at once (the guests
    ///    running now ended on their own), then up to [`OUTCOME_WAIT`] for
    ///    the runs still under way (`storing` counts a run from its start:
    ///    outcomes being written, and parents between their steps and
    ///    their own guest, which hold no worker);
    /// 3. past `grace`, set `stopped_by_shutdown` and fire every running
    ///    job's token: the guests end within an epoch tick (their workers
    ///    are waited for up to 5 s), async jobs are written back as
    ///    `accepted` (see `stopped` in `jobs/run.rs`), and the writes are
    ///    again waited for up to [`OUTCOME_WAIT`].
    ///
    /// Queued jobs are not touched: they stay `accepted` in the store, for
    /// this node after a restart or for another node now. A node without
    /// workers has nothing to wait for.
    pub(super) async fn shutdown(&self, grace: Duration) {
        self.stopping.cancel();
        // Its give-backs are store writes, bounded by the store's timeout.
        let _ = tokio::time::timeout(OUTCOME_WAIT, self.dispatcher_ended.cancelled()).await;
        let all = u32::try_from(self.config.execution.max_concurrent_jobs).unwrap_or(u32::MAX);
        if all == 0 {
            return;
        }
        let permits = self.permits.clone();
        if tokio::time::timeout(grace, permits.acquire_many(all))
            .await
            .is_ok()
        {
            let _ = tokio::time::timeout(OUTCOME_WAIT, self.storing.idle()).await;
            return;
        }
        self.stopped_by_shutdown.store(true, Ordering::SeqCst);
        self.running.stop_all();
        // Stopped guests end within an epoch tick; their jobs are then
        // written back as `accepted`.
        let _ = tokio::time::timeout(Duration::from_secs(5), permits.acquire_many(all)).await;
        let _ = tokio::time::timeout(OUTCOME_WAIT, self.storing.idle()).await;
    }
}

/// Delete finished jobs older than `job_retention`, now and then.
///
/// A tick comes every `job_retention`, at least every minute and at most
/// every 100 ms (the first at once); each deletes in batches for as long
/// as a batch deletes at least [`RETENTION_BATCH`] jobs, then collects the
/// modules nothing uses any more (the registry's
/// `collect_unused_modules`), which is how a replaced or undeployed
/// module's bytes leave the store once `execution.module_grace` passed. A
/// failure only ends the tick: the next one tries again. With PostgreSQL
/// only the node that gets the advisory lock deletes; the others count 0.
/// The task holds a weak reference and ends when the scheduler is dropped.
pub(super) fn spawn_retention(inner: &Arc<Inner>) -> tokio::task::JoinHandle<()> {
    let weak = Arc::downgrade(inner);
    let retention = inner.config.execution.job_retention;
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
            for _ in 0..RETENTION_BATCHES {
                match inner
                    .store
                    .delete_finished_before(cutoff, RETENTION_BATCH)
                    .await
                {
                    // PostgreSQL deletes up to a batch per finished state,
                    // so a full call may return more than one batch.
                    Ok(n) if n >= RETENTION_BATCH => continue,
                    Ok(_) => break,
                    Err(error) => {
                        tracing::warn!(%error, "retention sweep failed; retrying next tick");
                        break;
                    }
                }
            }
            if let Err(error) = inner.registry.collect_unused_modules().await {
                tracing::warn!(%error, "module collection failed; retrying next tick");
            }
        }
    })
}

/// Start the tasks that keep this node in step with the store: events
/// always, the heartbeat when other nodes share the store. Both hold weak
/// references and end with the scheduler.
pub(super) fn spawn_cluster_tasks(inner: &Arc<Inner>) {
    inner.executor.spawn(follow_events(
        Arc::downgrade(inner),
        inner.store.subscribe(),
    ));
    if inner.store.is_shared() {
        inner.executor.spawn(heartbeat(Arc::downgrade(inner)));
    }
}

/// Apply the store's events to this node while the scheduler lives.
///
/// - `JobDismissed`: stop the job if it runs here (the node that took the
///   `DELETE` has stopped its own already; this is for the others).
/// - `ProcessChanged`: reload that process from the store, so a deploy,
///   replace or undeploy made on another node is served here too.
/// - `JobFinished`: nothing here; parents waiting for queued steps
///   subscribe on their own (`jobs/spread.rs`).
/// - A lagging receiver missed events it cannot name: every process is
///   reloaded (`Resync`). On a shared store, a dismissal missed that way
///   is caught by the next heartbeat, which reports the job as no longer
///   held.
async fn follow_events(
    weak: Weak<Inner>,
    mut events: tokio::sync::broadcast::Receiver<StoreEvent>,
) {
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            // Missed some: reload everything events keep up to date.
            Err(RecvError::Lagged(_)) => StoreEvent::Resync,
            Err(RecvError::Closed) => break,
        };
        let Some(inner) = weak.upgrade() else { break };
        match event {
            StoreEvent::JobDismissed(id) => {
                if inner.running.stop(id) {
                    tracing::info!(job = %id, "stopped: dismissed on another node");
                }
            }
            StoreEvent::ProcessChanged(id) => inner.registry.reload(&id).await,
            // For the parents waiting for their steps (`super::spread`).
            StoreEvent::JobFinished(_) => {}
            StoreEvent::Resync => inner.registry.reload_all().await,
        }
    }
}

/// Every `cluster.heartbeat` (shared store only): renew the leases of the
/// jobs running here, stop the ones the store says this node no longer
/// holds (dismissed elsewhere, or taken over after this node was cut off
/// for longer than a lease), then sweep the expired leases of lost nodes:
/// their async jobs go back to the queue, or fail past
/// `cluster.max_attempts`, and their sync jobs fail as `node-lost`.
///
/// A late tick is delayed, not followed by a burst. Store errors are
/// logged and the next tick tries again; a node that cannot renew for a
/// whole lease loses its jobs to the other nodes' sweeps. The task keeps
/// renewing during a shutdown while jobs still run here, and ends once
/// none does, or when the scheduler is dropped.
async fn heartbeat(weak: Weak<Inner>) {
    let Some(period) = weak.upgrade().map(|i| i.config.cluster.heartbeat) else {
        return;
    };
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(inner) = weak.upgrade() else { break };
        if inner.stopping.is_cancelled() && inner.running.count() == 0 {
            break;
        }
        match inner.store.heartbeat(&inner.running.ids()).await {
            Ok(lost) => {
                for id in lost {
                    if inner.running.stop(id) {
                        tracing::warn!(job = %id, "stopped: this node no longer holds its lease");
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "could not renew leases"),
        }
        match inner.store.sweep_expired_leases().await {
            Ok(sweep) if sweep.requeued + sweep.failed > 0 => tracing::info!(
                requeued = sweep.requeued,
                failed = sweep.failed,
                "took over the jobs of lost nodes"
            ),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "could not sweep expired leases"),
        }
    }
}
