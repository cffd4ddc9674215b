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
//!
//! Per key: an API key with `max_stored_bytes` has its own bound, kept the
//! same way (counted per owner, plus what its jobs added since), so one
//! key that fills its share is refused while the others go on. Owners are
//! counted only when some key has a bound (it costs reading every job's
//! owner).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Weak};
use std::time::{Duration, Instant};

use super::scheduler::Inner;
use crate::config::Config;
use crate::store::{JobRecord, JobResults, Store, StoredBytes};

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
    /// Per owner: bytes at the last count plus what its jobs added since
    /// (only owners whose jobs were counted or added).
    owners: Mutex<HashMap<String, u64>>,
}

impl Default for StorageBudget {
    fn default() -> Self {
        Self {
            counted: AtomicU64::new(u64::MAX),
            added: AtomicU64::new(0),
            owners: Mutex::default(),
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

    /// Bytes the jobs of `owner` store as last known; `None` before the
    /// first count.
    pub(super) fn current_of(&self, owner: &str) -> Option<u64> {
        if self.counted.load(Ordering::Relaxed) == u64::MAX {
            return None;
        }
        Some(self.owners().get(owner).copied().unwrap_or(0))
    }

    /// Whether `owner` may have a new job under its own `max_bytes`.
    pub(super) fn owner_has_room(&self, owner: &str, max_bytes: u64) -> bool {
        self.current_of(owner)
            .is_none_or(|stored| stored < max_bytes)
    }

    /// Note bytes a job brought (accepted inputs, or results and log), to
    /// its owner's account too when it has one.
    pub(super) fn add(&self, owner: Option<&str>, bytes: u64) {
        self.added.fetch_add(bytes, Ordering::Relaxed);
        if let Some(owner) = owner {
            *self.owners().entry(owner.to_owned()).or_default() += bytes;
        }
    }

    /// A fresh count replaces the estimates.
    fn counted(&self, stored: StoredBytes) {
        *self.owners() = stored.by_owner;
        self.added.store(0, Ordering::Relaxed);
        self.counted.store(stored.total, Ordering::Relaxed);
    }

    fn owners(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        // A panic while holding it left a map of plain numbers: still valid.
        self.owners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Whether some key has a bound of its own (owners are then counted).
pub(super) fn counts_owners(config: &Config) -> bool {
    config
        .auth
        .keys
        .iter()
        .any(|key| key.max_stored_bytes.is_some())
}

/// Whether stored bytes are counted at all: there is a total bound, or a
/// key has one.
pub(super) fn counts(config: &Config) -> bool {
    config.execution.max_stored_bytes > 0 || counts_owners(config)
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
pub(super) async fn recount(weak: Weak<Inner>, store: Store, min_period: Duration, by_owner: bool) {
    loop {
        let started = Instant::now();
        let counted = store.stored_job_bytes(by_owner).await;
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
        budget.counted(StoredBytes {
            total: 6,
            ..Default::default()
        });
        assert!(budget.has_room(10));
        budget.add(None, 4);
        assert!(!budget.has_room(10), "6 counted + 4 added reach the bound");
        assert!(budget.has_room(0), "0 is no bound");
        assert_eq!(budget.current(), Some(10));
        budget.counted(StoredBytes {
            total: 3,
            ..Default::default()
        });
        assert!(budget.has_room(10), "a new count replaces the estimate");
    }

    #[test]
    fn each_owner_has_its_own_account() {
        let budget = StorageBudget::default();
        assert!(
            budget.owner_has_room("alice", 1),
            "nothing is refused before a count"
        );
        budget.counted(StoredBytes {
            total: 100,
            by_owner: HashMap::from([("alice".to_owned(), 60)]),
        });
        assert!(budget.owner_has_room("alice", 70));
        budget.add(Some("alice"), 10);
        assert!(!budget.owner_has_room("alice", 70), "60 counted + 10 added");
        assert!(budget.owner_has_room("bob", 70), "bob stores nothing");
        assert_eq!(
            budget.current(),
            Some(110),
            "alice's bytes count in the total"
        );
        budget.counted(StoredBytes {
            total: 40,
            by_owner: HashMap::new(),
        });
        assert_eq!(
            budget.current_of("alice"),
            Some(0),
            "a count without alice's jobs"
        );
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
