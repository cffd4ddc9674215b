//! The dispatcher: one task per node that turns free workers into claimed
//! async jobs.
//!
//! Loop: wait for a free permit (then take every other free one, up to
//! [`MAX_CLAIM`]), claim that many queued jobs from the store in one
//! statement, and start each on the executor with its permit. When the
//! queue is empty, the permits go back and the task sleeps until the store
//! wakes it (a local submission, a `queued` notification from another
//! node, a re-queued job) or [`POLL_INTERVAL`] passes — the fallback for a
//! missed notification. It holds only a weak reference to the scheduler,
//! so dropping the scheduler ends it, and it stops taking jobs when the
//! scheduler shuts down (they stay `accepted` in the store).

use std::sync::Weak;
use std::time::Duration;

use super::scheduler::Inner;

/// Longest sleep without a wake-up before looking at the queue again.
pub(super) const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Most jobs claimed in one statement: enough to fill every worker of a
/// big node at once, small enough that one claim stays a short statement.
const MAX_CLAIM: usize = 32;

/// Pause after the store failed to answer a claim (database down).
const CLAIM_RETRY: Duration = Duration::from_millis(500);

pub(super) async fn dispatch(weak: Weak<Inner>) {
    loop {
        let Some(inner) = weak.upgrade() else { break };
        let stopping = inner.stopping.clone();
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
        match inner.store.claim_jobs(permits.len()).await {
            Ok(jobs) if !jobs.is_empty() => {
                for (job, permit) in jobs.into_iter().zip(permits) {
                    let inner = inner.clone();
                    // Every log line about the job carries its id.
                    let span = super::job_span(&job);
                    inner
                        .executor
                        .clone()
                        .spawn(tracing::Instrument::instrument(
                            async move { inner.run_claimed(job, permit).await },
                            span,
                        ));
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
