//! The jobs running on this node, each with the token that stops it.
//!
//! A job is *stopped* for one of three reasons, all through its token:
//! a client dismissed it (here or on another node: the dismissal arrives as
//! a store event), the node lost its lease on it (cluster), or a graceful
//! shutdown ran out of time. Firing the token drops the guest's future at
//! its next yield point (at most one epoch tick); the runtime reports the
//! run as `Cancelled`, and what happens next depends on why (see
//! [`super::run`]).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Outcomes being written after their guest ended (a job gives its worker
/// back as soon as its guest ends, not after the database answered: on
/// PostgreSQL a commit takes a millisecond or two, and a worker waiting for
/// it would leave the CPU idle). A graceful shutdown waits for these too.
///
/// `execute` in `jobs/run.rs` counts itself here from its start, not only
/// once its guest ended: a parent waiting for its steps holds no worker
/// either, and is counted all the same.
#[derive(Debug, Default)]
pub(super) struct StoringOutcomes {
    count: std::sync::atomic::AtomicUsize,
    idle: tokio::sync::Notify,
}

impl StoringOutcomes {
    /// Count one outcome being written until the guard drops.
    pub(super) fn start(&self) -> StoringGuard<'_> {
        self.count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        StoringGuard(self)
    }

    /// Wait until no outcome is being written.
    pub(super) async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.count.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// One outcome being written; see [`StoringOutcomes`].
pub(super) struct StoringGuard<'a>(&'a StoringOutcomes);

impl Drop for StoringGuard<'_> {
    fn drop(&mut self) {
        if self
            .0
            .count
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst)
            == 1
        {
            self.0.idle.notify_waiters();
        }
    }
}

/// id → stop token of every job this node runs (or is about to run).
#[derive(Debug, Default)]
pub(super) struct RunningJobs {
    tokens: Mutex<HashMap<Uuid, CancellationToken>>,
}

impl RunningJobs {
    /// Register a job and return its token.
    pub(super) fn start(&self, id: Uuid) -> CancellationToken {
        let token = CancellationToken::new();
        self.lock().insert(id, token.clone());
        token
    }

    /// Forget a job that ended.
    pub(super) fn end(&self, id: Uuid) {
        self.lock().remove(&id);
    }

    /// Stop a job if it runs here; `true` when it did.
    pub(super) fn stop(&self, id: Uuid) -> bool {
        match self.lock().remove(&id) {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    /// Stop every job.
    pub(super) fn stop_all(&self) {
        for (_, token) in self.lock().drain() {
            token.cancel();
        }
    }

    /// The ids of the jobs running here (for lease renewal).
    pub(super) fn ids(&self) -> Vec<Uuid> {
        self.lock().keys().copied().collect()
    }

    /// How many jobs run here.
    pub(super) fn count(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, CancellationToken>> {
        self.tokens.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
