//! The dispatcher: one task per node that turns free workers into claimed
//! async jobs.
//!
//! Loop: wait for a free permit (then take every other free one, up to
//! [`MAX_CLAIM`]), claim that many queued jobs from the store in one
//! statement — plus `cluster.claim_ahead` more on PostgreSQL — and start
//! each on the executor with its permit. Jobs claimed ahead wait here for
//! the next free worker, leased (and renewed) like running jobs: on
//! PostgreSQL a claim is a round trip, and claiming only as many jobs as
//! there are idle workers made one node's throughput the claim latency
//! times its worker count (measured: 2 workers, about 450 jobs/s; with
//! 16 jobs claimed ahead, about 1,400). When the
//! queue is empty, the permits go back and the task sleeps until the store
//! wakes it (a local submission, a `queued` notification from another
//! node, a re-queued job) or [`POLL_INTERVAL`] passes — the fallback for a
//! missed notification. It holds only a weak reference to the scheduler,
//! so dropping the scheduler ends it, and it stops taking jobs when the
//! scheduler shuts down (they stay `accepted` in the store).

use std::collections::VecDeque;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

use super::scheduler::Inner;
use crate::ogc::JobStatus;
use crate::store::JobRecord;

/// Longest sleep without a wake-up before looking at the queue again.
pub(super) const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Most jobs claimed in one statement: enough to fill every worker of a
/// big node at once, small enough that one claim stays a short statement.
const MAX_CLAIM: usize = 32;

/// Pause after the store failed to answer a claim (database down).
const CLAIM_RETRY: Duration = Duration::from_millis(500);

pub(super) async fn dispatch(weak: Weak<Inner>) {
    // Claimed jobs waiting for a worker (only with `claim_ahead`, on a
    // shared store): leased and renewed like running ones.
    let mut claimed: VecDeque<(JobRecord, CancellationToken)> = VecDeque::new();
    loop {
        let Some(inner) = weak.upgrade() else { break };
        let stopping = inner.stopping.clone();
        if let Some((job, token)) = claimed.pop_front() {
            let permit = tokio::select! {
                () = stopping.cancelled() => {
                    claimed.push_front((job, token));
                    inner.give_back(claimed.drain(..)).await;
                    break;
                }
                permit = inner.permits.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            inner.start_claimed(job, token, permit);
            continue;
        }
        let first = tokio::select! {
            () = stopping.cancelled() => break,
            permit = inner.permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let mut permits = vec![first];
        while permits.len() < MAX_CLAIM {
            match inner.permits.clone().try_acquire_owned() {
                Ok(permit) => permits.push(permit),
                Err(_) => break,
            }
        }
        // Registered before claiming, so a wake-up that arrives while the
        // claim runs is not lost.
        let wake = inner.store.queue_wake().notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        let want = (permits.len() + inner.claim_ahead()).min(MAX_CLAIM);
        match inner.store.claim_jobs(want).await {
            Ok(jobs) if !jobs.is_empty() => {
                for job in jobs {
                    let token = inner.running.start(job.id);
                    match permits.pop() {
                        Some(permit) => inner.start_claimed(job, token, permit),
                        None => claimed.push_back((job, token)),
                    }
                }
                continue; // more may be queued
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "could not claim jobs; retrying");
                drop(permits);
                tokio::select! {
                    () = stopping.cancelled() => break,
                    () = tokio::time::sleep(CLAIM_RETRY) => {}
                }
                continue;
            }
        }
        drop(permits);
        tokio::select! {
            () = stopping.cancelled() => break,
            () = &mut wake => {}
            () = tokio::time::sleep(POLL_INTERVAL) => {}
        }
    }
}

impl Inner {
    /// Jobs claimed beyond the free workers: `cluster.claim_ahead` on a
    /// shared store, none on sled (where a claim costs no round trip, and
    /// a claimed job found `running` after a crash would be failed).
    fn claim_ahead(&self) -> usize {
        if self.store.is_shared() {
            self.config.cluster.claim_ahead
        } else {
            0
        }
    }

    /// Start a claimed job on the executor with its worker.
    fn start_claimed(
        self: &Arc<Self>,
        job: JobRecord,
        token: CancellationToken,
        permit: OwnedSemaphorePermit,
    ) {
        let inner = self.clone();
        // Every log line about the job carries its id.
        let span = super::job_span(&job);
        self.executor.spawn(tracing::Instrument::instrument(
            async move { inner.run_claimed(job, token, permit).await },
            span,
        ));
    }

    /// Put claimed jobs that never started back in the queue (the node is
    /// shutting down); a job that cannot be put back is left to its lease.
    async fn give_back(&self, jobs: impl Iterator<Item = (JobRecord, CancellationToken)>) {
        for (mut job, _token) in jobs {
            self.running.end(job.id);
            job.status = JobStatus::Accepted;
            job.started = None;
            job.progress = None;
            job.node = None;
            job.attempts = job.attempts.saturating_sub(1);
            job.message = Some("re-queued: the node shut down before it ran".into());
            if let Err(error) = self.store.requeue_job(&job).await {
                self.write_failures.record(job.id, "requeue", &error);
            }
        }
    }
}
