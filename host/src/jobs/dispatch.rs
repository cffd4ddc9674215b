//! The dispatcher: one task per node that turns free workers into claimed
//! async jobs.
//!
//! Loop: wait for a free permit (then take every other free one, up to
//! [`MAX_CLAIM`]), claim that many queued jobs from the store in one
//! statement — plus some more on PostgreSQL, the *claim-ahead* — and start
//! each on the executor with its permit. Jobs claimed ahead wait here for
//! the next free worker, leased (and renewed) like running jobs: on
//! PostgreSQL a claim is a round trip, and claiming only as many jobs as
//! there are idle workers made one node's throughput the claim latency
//! times its worker count (measured: 2 workers, about 450 jobs/s; with
//! 16 jobs claimed ahead, about 1,400). When the queue is empty, the
//! permits go back and the task sleeps until the store wakes it (a local
//! submission, a `queued` notification from another node, a re-queued
//! job) or [`POLL_INTERVAL`] passes — the fallback for a missed
//! notification. It holds only a weak reference to the scheduler, so
//! dropping the scheduler ends it, and it stops taking jobs when the
//! scheduler shuts down (they stay `accepted` in the store).
//!
//! Stopping: every wait in the loop looks at `stopping` first, and a claim
//! that returns after `stopping` fired starts none of its jobs: they go
//! back to the queue at once, as do the jobs claimed ahead. The task then
//! fires its `ended` token, which the graceful shutdown waits for before
//! it counts free workers: the executor is shut down after that, and a
//! claim cut off there would leave its jobs `running` under a node that
//! is gone, until their lease ran out (measured before this ordering: one
//! job in about 25 submitted in the instant of a restart on PostgreSQL).
//!
//! Sharing the queue with other nodes:
//! - **Claim-ahead only for short jobs.** A job claimed ahead waits for
//!   this node's next free worker even if another node has one idle. The
//!   buffer is therefore sized to what the workers finish in
//!   [`AHEAD_WINDOW`], from the recent time a job holds a worker
//!   ([`RecentRunTime`]), capped by `cluster.claim_ahead`: a hello-world
//!   node claims 16 ahead, a node whose jobs take a second claims none.
//! - **Who is woken.** The dispatcher tells the store whether it has an
//!   idle worker ([`Store::set_claimer_ready`](crate::store::Store::set_claimer_ready)):
//!   if so, a submission to this node wakes only this node; if not, the
//!   other nodes are notified. After a claim that took all it asked for
//!   (more may be queued) it asks the store to wake the other nodes
//!   ([`Store::announce_backlog`](crate::store::Store::announce_backlog)).
//!   Waking every node on every submission made most of their claims
//!   come back empty (measured on 3 nodes: 11,246 claims for 6,200 jobs).

use std::collections::VecDeque;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

use super::moving_average::MovingAverage;
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

/// How long the jobs claimed ahead may keep the workers busy, at the
/// recent time per job: the most a job claimed ahead waits here, which is
/// also how much longer it may wait than on an idle node elsewhere.
const AHEAD_WINDOW: Duration = Duration::from_millis(20);

/// Longest a job claimed ahead waits here for a worker before it goes
/// back to the queue for other nodes: the recent time per job said the
/// workers would be free within [`AHEAD_WINDOW`], and this is far past it
/// (a long job followed short ones).
const HOLD_LIMIT: Duration = Duration::from_millis(100);

/// Status message of a job given back because the node shuts down.
const SHUT_DOWN: &str = "re-queued: the node shut down before it ran";
/// Status message of a job given back because the node stayed busy.
const TOO_BUSY: &str = "re-queued: its node stayed busy, for another node to run";

/// A moving average of how long a job holds a worker on this node (input
/// fetches and the guest's run), none until the first job ends.
#[derive(Debug, Default)]
pub(super) struct RecentRunTime {
    average: MovingAverage,
}

impl RecentRunTime {
    /// Add one job's time on a worker.
    pub(super) fn record(&self, held: Duration) {
        self.average.record(held);
    }

    /// A worker has been busy with one job for `held` and it has not
    /// ended: the recent time per job is at least that.
    pub(super) fn at_least(&self, held: Duration) {
        self.average.raise_to(held);
    }

    /// How many jobs `workers` finish in [`AHEAD_WINDOW`] at the recent
    /// time per job, at most `cap`; none before a job has ended.
    fn ahead(&self, workers: usize, cap: usize) -> usize {
        let Some(average) = self.average.get() else {
            return 0;
        };
        let micros = u64::try_from(average.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let window = AHEAD_WINDOW.as_micros() as u64;
        let fits = (workers as u64).saturating_mul(window) / micros;
        usize::try_from(fits).unwrap_or(usize::MAX).min(cap)
    }
}

/// What waiting for a free worker ended with.
enum WorkerWait {
    /// A worker is free: its permit.
    Free(OwnedSemaphorePermit),
    /// The node is stopping (or its workers are gone).
    Stopping,
    /// The hold limit passed with every worker still busy.
    StillBusy,
}

/// A free worker's permit: at once when one is free. Otherwise the node
/// first tells the store it takes no jobs now (on a cluster, other nodes
/// then claim what is submitted here), then waits for a worker, for at
/// most `hold` when given. The stop is looked at first, so a worker freed
/// in the same instant as the stop does not start another job.
async fn free_worker(
    inner: &Inner,
    stopping: &CancellationToken,
    hold: Option<Duration>,
) -> WorkerWait {
    if let Ok(permit) = inner.permits.clone().try_acquire_owned() {
        return WorkerWait::Free(permit);
    }
    inner.store.set_claimer_ready(false);
    let held_too_long = async {
        match hold {
            Some(hold) => tokio::time::sleep(hold).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        biased;
        () = stopping.cancelled() => WorkerWait::Stopping,
        permit = inner.permits.clone().acquire_owned() => {
            permit.map_or(WorkerWait::Stopping, WorkerWait::Free)
        }
        () = held_too_long => WorkerWait::StillBusy,
    }
}

/// The dispatcher task; fires `ended` when it returns (or is dropped).
pub(super) async fn dispatch(weak: Weak<Inner>, ended: CancellationToken) {
    let _ended = ended.drop_guard();
    // Claimed jobs waiting for a worker (only with `claim_ahead`, on a
    // shared store): leased and renewed like running ones.
    let mut claimed: VecDeque<(JobRecord, CancellationToken)> = VecDeque::new();
    loop {
        let Some(inner) = weak.upgrade() else { break };
        let stopping = inner.stopping.clone();
        if stopping.is_cancelled() {
            inner
                .give_back(claimed.drain(..).map(|(job, _)| job), SHUT_DOWN)
                .await;
            break;
        }
        if let Some((job, token)) = claimed.pop_front() {
            match free_worker(&inner, &stopping, Some(HOLD_LIMIT)).await {
                WorkerWait::Free(permit) => inner.start_claimed(job, token, permit),
                WorkerWait::Stopping => {
                    claimed.push_front((job, token));
                    let jobs = claimed.drain(..).map(|(job, _)| job);
                    inner.give_back(jobs, SHUT_DOWN).await;
                    break;
                }
                WorkerWait::StillBusy => {
                    // The jobs on the workers are long ones after all: let
                    // idle nodes run the rest, and claim none ahead until
                    // jobs are short again.
                    inner.recent_run_time.at_least(HOLD_LIMIT);
                    claimed.push_front((job, token));
                    let jobs = claimed.drain(..).map(|(job, _)| job);
                    inner.give_back(jobs, TOO_BUSY).await;
                }
            }
            continue;
        }
        let first = match free_worker(&inner, &stopping, None).await {
            WorkerWait::Free(permit) => permit,
            WorkerWait::Stopping | WorkerWait::StillBusy => break,
        };
        inner.store.set_claimer_ready(true);
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
                if stopping.is_cancelled() {
                    // Claimed while the node began to stop: none starts.
                    inner.give_back(jobs.into_iter(), SHUT_DOWN).await;
                    break;
                }
                if jobs.len() == want {
                    // There may be more than this node can take now.
                    inner.store.announce_backlog();
                }
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
                    biased;
                    () = stopping.cancelled() => break,
                    () = tokio::time::sleep(CLAIM_RETRY) => {}
                }
                continue;
            }
        }
        drop(permits);
        tokio::select! {
            // A wake-up and the stop at once: the stop wins.
            biased;
            () = stopping.cancelled() => break,
            () = &mut wake => {}
            () = tokio::time::sleep(POLL_INTERVAL) => {}
        }
    }
    // No longer claiming: whatever is submitted here from now on is
    // announced to the other nodes.
    if let Some(inner) = weak.upgrade() {
        inner.store.set_claimer_ready(false);
    }
}

impl Inner {
    /// Jobs claimed beyond the free workers: on a shared store, what the
    /// workers finish in [`AHEAD_WINDOW`] at most `cluster.claim_ahead`;
    /// none on sled (where a claim costs no round trip, and a claimed job
    /// found `running` after a crash would be failed).
    fn claim_ahead(&self) -> usize {
        if self.store.is_shared() {
            self.recent_run_time.ahead(
                self.config.execution.max_concurrent_jobs,
                self.config.cluster.claim_ahead,
            )
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
    /// shutting down, or its workers stayed busy for [`HOLD_LIMIT`]),
    /// saying `why` in their status message; a job that cannot be put
    /// back is left to its lease.
    async fn give_back(&self, jobs: impl Iterator<Item = JobRecord>, why: &str) {
        for mut job in jobs {
            self.running.end(job.id);
            job.status = JobStatus::Accepted;
            job.started = None;
            job.progress = None;
            job.node = None;
            job.attempts = job.attempts.saturating_sub(1);
            job.message = Some(why.to_owned());
            if let Err(error) = self.store.requeue_job(&job).await {
                self.write_failures.record(job.id, "requeue", &error);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_ahead_fits_the_window_at_the_recent_run_time() {
        let recent = RecentRunTime::default();
        assert_eq!(
            recent.ahead(2, 16),
            0,
            "nothing measured: claim no more than idle workers"
        );
        recent.record(Duration::from_micros(500));
        // 2 workers × 20 ms / 0.5 ms = 80, capped at 16.
        assert_eq!(recent.ahead(2, 16), 16);
        assert_eq!(recent.ahead(2, 0), 0, "claim_ahead = 0 turns it off");
        let slow = RecentRunTime::default();
        slow.record(Duration::from_millis(5));
        assert_eq!(slow.ahead(2, 16), 8);
        slow.record(Duration::from_secs(1));
        for _ in 0..40 {
            slow.record(Duration::from_secs(1));
        }
        assert_eq!(
            slow.ahead(2, 16),
            0,
            "second-long jobs are not claimed ahead"
        );
        let surprised = RecentRunTime::default();
        surprised.record(Duration::from_micros(300));
        surprised.at_least(HOLD_LIMIT);
        assert_eq!(
            surprised.ahead(2, 16),
            0,
            "a worker busy for the hold limit stops claim-ahead"
        );
    }
}
