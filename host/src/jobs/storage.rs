//! The bound on stored job data (`execution.max_stored_bytes`): past it,
//! new jobs are refused with 507 Insufficient Storage, while reads,
//! dismissals and deletions go on.
//!
//! Why a bound: anyone who may execute can store data. `echo` returns its
//! input as its output, inputs may be 64 MiB, and results are kept for
//! `job_retention`; a thousand requests would store about 64 GB, and a
//! full disk breaks the store for every user, not only the one who filled
//! it.
//!
//! How the total is known: the store counts its job bytes (records with
//! their inputs and logs, and results: [`Store::stored_job_bytes`]) now
//! and then, on the job executor, and between two counts every accepted
//! job adds an estimate of what it brings (its inputs when accepted, its
//! results and log when it ends). The count walks every job, so its
//! period grows with its cost: at least `storage_recount`, and at least
//! 20 times the last count's duration (so counting takes at most about
//! 5 % of one core). Deletions (retention, dismissals) show at the next
//! count: after space was freed, new jobs are accepted again within one
//! period. With PostgreSQL every node counts the shared tables, so the
//! bound is cluster-wide (between two counts a node adds only its own
//! jobs' estimates, so the cluster may pass the bound by what the other
//! nodes accepted in one period).
//!
//! The bound is checked before a job is accepted, against what is stored
//! and already accepted; one job's own size is not known before its guest
//! runs, so the bound can be passed by what the jobs in flight write.

use std::sync::Weak;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::scheduler::Inner;
use crate::store::{JobRecord, JobResults, Store};

/// Counting writes this many times the last count's duration apart, at
/// least (counting then costs at most 1/20 of a core).
const COUNT_COST_FACTOR: u32 = 20;

/// What the node believes is stored.
#[derive(Debug)]
pub(super) struct StorageBudget {
    /// Bytes at the last count (`u64::MAX` before the first: nothing is
    /// refused until it has been counted).
    counted: AtomicU64,
    /// Bytes this node added since the last count (estimates).
    added: AtomicU64,
}

impl Default for StorageBudget {
    fn default() -> Self {
        Self {
            counted: AtomicU64::new(u64::MAX),
            added: AtomicU64::new(0),
        }
    }
}

impl StorageBudget {
    /// Whether a new job may be accepted under `max_bytes` (0: no bound).
    pub(super) fn has_room(&self, max_bytes: u64) -> bool {
        if max_bytes == 0 {
            return true;
        }
        let counted = self.counted.load(Ordering::Relaxed);
        if counted == u64::MAX {
            return true;
        }
        counted.saturating_add(self.added.load(Ordering::Relaxed)) < max_bytes
    }

    /// Bytes stored as last known (the last count plus what was added
    /// since); `None` before the first count.
    pub(super) fn current(&self) -> Option<u64> {
        let counted = self.counted.load(Ordering::Relaxed);
        (counted != u64::MAX).then(|| counted.saturating_add(self.added.load(Ordering::Relaxed)))
    }

    /// Note bytes a job brought (accepted inputs, or results and log).
    pub(super) fn add(&self, bytes: u64) {
        self.added.fetch_add(bytes, Ordering::Relaxed);
    }

    /// A fresh count replaces the estimate.
    fn counted(&self, bytes: u64) {
        self.added.store(0, Ordering::Relaxed);
        self.counted.store(bytes, Ordering::Relaxed);
    }
}

/// Serialised size of a job's request (its inputs), counted without
/// keeping the bytes.
pub(super) fn request_bytes(job: &JobRecord) -> u64 {
    serialised_len(&job.request)
}

/// Serialised size of a job's results plus its log, as they are stored.
pub(super) fn outcome_bytes(job: &JobRecord, results: Option<&JobResults>) -> u64 {
    results.map_or(0, serialised_len) + job.log.as_ref().map_or(0, |log| log.len() as u64)
}

fn serialised_len(value: &impl serde::Serialize) -> u64 {
    /// A writer that only counts.
    struct Count(u64);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len() as u64;
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Serialising a value that came from JSON cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// Count the stored bytes now and then while the scheduler lives (see the
/// module documentation for the period). A failed count (database down)
/// keeps the last figure and tries again after `min_period`.
pub(super) async fn recount(weak: Weak<Inner>, store: Store, min_period: Duration) {
    loop {
        let started = Instant::now();
        let counted = store.stored_job_bytes().await;
        let took = started.elapsed();
        {
            let Some(inner) = weak.upgrade() else { return };
            match counted {
                Ok(bytes) => inner.storage.counted(bytes),
                Err(error) => tracing::warn!(%error, "could not count the stored job bytes"),
            }
        }
        tokio::time::sleep(min_period.max(took * COUNT_COST_FACTOR)).await;
        if weak.strong_count() == 0 {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_is_what_was_counted_plus_what_was_added_since() {
        let budget = StorageBudget::default();
        assert!(budget.has_room(10), "nothing is refused before a count");
        assert_eq!(budget.current(), None);
        budget.counted(6);
        assert!(budget.has_room(10));
        budget.add(4);
        assert!(!budget.has_room(10), "6 counted + 4 added reach the bound");
        assert!(budget.has_room(0), "0 is no bound");
        assert_eq!(budget.current(), Some(10));
        budget.counted(3);
        assert!(budget.has_room(10), "a new count replaces the estimate");
    }

    #[test]
    fn sizes_are_the_serialised_lengths() {
        let request = crate::ogc::ExecuteRequest {
            inputs: serde_json::json!({"name": "Joe"})
                .as_object()
                .unwrap()
                .clone(),
            ..Default::default()
        };
        let job = JobRecord::new("p", "s", request.clone(), true);
        assert_eq!(
            request_bytes(&job),
            serde_json::to_vec(&request).unwrap().len() as u64
        );
    }
}
