//! Job writes and reads of the sled backend: the queue, the lifecycle of a
//! job (enqueue, claim, progress, finish, delete), recovery and retention.
//!
//! One node owns the database, so there are no leases: a claim is taking
//! an id from the in-memory queue and rewriting the record as `running`.
//! What needs care is the order of writes without transactions (see the
//! crash-ordering rules in the module above): a record is written before
//! its index entries and removed before them, every reader skips index
//! entries without a record, and recovery at start-up settles the jobs a
//! crash left `accepted` or `running`.

use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::index::{self, FINISHED, active_key, finished_keys, job_key_of, process_status_prefix};
use std::sync::Arc;

use super::{SledStore, lock};
use crate::failure::FailureKind;
use crate::ogc::JobStatus;
use crate::store::{
    JobRecord, JobResults, LeaseSweep, Recovery, StoreError, StoreEvent, StoredBytes,
};

impl SledStore {
    /// Write the index entries of `job` for its current state: `A` while
    /// it is active, `Q`/`D` (and `O` with an owner) once finished. Called
    /// after the record is written, never before (see the module docs);
    /// the `A` entry of a job that just finished is removed separately,
    /// once the final state is durable.
    pub(super) fn write_index(&self, job: &JobRecord) -> Result<(), StoreError> {
        if job.status.is_finished() {
            for key in finished_keys(job) {
                self.index.insert(key, &[])?;
            }
        } else {
            self.index.insert(active_key(job), &[])?;
        }
        Ok(())
    }

    /// Overwrite a stored job only if it still exists (a compare-and-swap
    /// on its key, so a concurrent delete wins cleanly).
    fn update_stored(&self, job: &JobRecord) -> Result<bool, StoreError> {
        let value = serde_json::to_vec(job)?;
        let previous = self
            .jobs
            .fetch_and_update(job.id.as_bytes(), |old| old.map(|_| value.clone()))?;
        Ok(previous.is_some())
    }

    /// Write a finished job that is not stored yet (a sync job), record
    /// first, then its index entries.
    fn insert_finished(&self, job: &JobRecord) -> Result<(), StoreError> {
        self.jobs
            .insert(job.id.as_bytes(), serde_json::to_vec(job)?)?;
        self.write_index(job)
    }

    /// The record on disk, ignoring the in-memory overlays: what writers
    /// compare against, and what readers must not see alone (see
    /// `get_shown`).
    fn get_stored(&self, id: Uuid) -> Result<Option<JobRecord>, StoreError> {
        match self.jobs.get(id.as_bytes())? {
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            None => Ok(None),
        }
    }

    /// A job as readers may see it: a running sync job from memory, an
    /// async job finishing from its shown state, else the stored record.
    ///
    /// The stored record is read *before* the finishing overlay is looked
    /// up. [`Self::finish_job`] puts the overlay in place before it writes
    /// the final state and takes it away only once that state is durable,
    /// so a final state read here is either durable already (no overlay
    /// any more) or still covered by the overlay. Looked up the other way
    /// round, a reader could miss the overlay just before it appeared,
    /// read the final state just after it was written, and show a job
    /// `successful` that the next read shows `running` again (seen under
    /// load: the status said successful, the results said not ready).
    pub(super) fn get_shown(&self, id: Uuid) -> Result<Option<JobRecord>, StoreError> {
        if let Some(job) = lock(&self.running_sync).get(&id) {
            return Ok(Some(job.clone()));
        }
        let stored = self.get_stored(id)?;
        if let Some(job) = lock(&self.pending).get(&id) {
            return Ok(Some(job.clone()));
        }
        Ok(stored)
    }

    /// Remove a job's record, results and every index entry.
    fn remove_job(&self, job: &JobRecord) -> Result<(), StoreError> {
        self.jobs.remove(job.id.as_bytes())?;
        self.results.remove(job.id.as_bytes())?;
        self.index.remove(active_key(job))?;
        for key in finished_keys(job) {
            self.index.remove(key)?;
        }
        Ok(())
    }

    /// Append an id to the in-memory queue and wake the dispatcher. The
    /// caller has already taken its place in `queued` and written (and,
    /// for a new job, flushed) the record.
    fn push_queue(&self, id: Uuid) {
        lock(&self.queue).push_back(id);
        self.queue_wake.notify_one();
    }

    /// Accept an async job: take a place in the bounded queue (so a full
    /// queue refuses before anything is written), write the record and its
    /// `A` index entry, wait for the group-commit flush (the job is durable
    /// before its 201), then append its id to the in-memory queue.
    pub(crate) async fn enqueue_job(
        &self,
        job: &JobRecord,
        max_queued: usize,
    ) -> Result<(), StoreError> {
        // A place first, so a full queue answers without writing anything.
        self.queued
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max_queued).then_some(n + 1)
            })
            .map_err(|_| StoreError::QueueFull(max_queued))?;
        let written = async {
            self.jobs
                .insert(job.id.as_bytes(), serde_json::to_vec(job)?)?;
            self.write_index(job)?;
            self.flush().await
        }
        .await;
        if let Err(e) = written {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(e);
        }
        self.push_queue(job.id);
        Ok(())
    }

    /// Places taken in the queue (an atomic counter, no read). The id of
    /// a job dismissed while queued keeps its place until the dispatcher
    /// pops and skips it, so this can count a few jobs that are gone.
    pub(crate) async fn queued_jobs(&self) -> Result<usize, StoreError> {
        Ok(self.queued.load(Ordering::SeqCst))
    }

    /// Take up to `max` ids from the queue, oldest first, and mark each
    /// job `running` with one attempt more. An id whose record is gone or
    /// no longer `accepted` (dismissed while queued) is skipped. The
    /// `running` state is not flushed: a crash before the next flush
    /// leaves the job `accepted` or `running`, and recovery handles both.
    ///
    /// The status check and the write are two steps, not one
    /// compare-and-swap: each id is popped from the queue once, so no
    /// other claim races this one for the job, and a dismissal in between
    /// removes the record, which `update_stored` then declines to
    /// recreate.
    pub(crate) async fn claim_jobs(&self, max: usize) -> Result<Vec<JobRecord>, StoreError> {
        let mut claimed = Vec::new();
        while claimed.len() < max {
            let Some(id) = lock(&self.queue).pop_front() else {
                break;
            };
            self.queued.fetch_sub(1, Ordering::SeqCst);
            // Dismissed while queued: its id stays in the list, its record
            // is gone.
            let Some(mut job) = self.get_stored(id)? else {
                continue;
            };
            if job.status != JobStatus::Accepted {
                continue;
            }
            job.mark_running();
            job.attempts += 1;
            if self.update_stored(&job)? {
                claimed.push(job);
            }
        }
        Ok(claimed)
    }

    /// A sync job that got its worker: kept in memory only until it ends
    /// (`running_sync`), visible to every reader meanwhile. Nothing is
    /// written: its id reaches the client only with the response, after
    /// its final state was written, so a crash loses nothing promised.
    pub(crate) async fn start_sync_job(&self, job: &JobRecord) -> Result<(), StoreError> {
        lock(&self.running_sync).insert(job.id, job.clone());
        Ok(())
    }

    /// Write a job that is finished when it is created (a result reused
    /// from the cache): results, record and index, flushed when it is an
    /// async job (its 201 promises it survives a crash).
    pub(crate) async fn insert_finished_job(
        &self,
        job: &JobRecord,
        results: &JobResults,
    ) -> Result<(), StoreError> {
        self.results
            .insert(job.id.as_bytes(), serde_json::to_vec(results)?)?;
        self.insert_finished(job)?;
        if job.asynchronous {
            self.flush().await?;
        }
        Ok(())
    }

    /// Write a job that failed before it could start, record and index.
    /// Not flushed: sled writes it out within its flush interval, and a
    /// crash before then loses a job that never ran.
    pub(crate) async fn insert_failed_job(&self, job: &JobRecord) -> Result<(), StoreError> {
        self.insert_finished(job)
    }

    /// Write a running job's progress: in memory for a sync job; for an
    /// async one, a compare-and-update of its record that only replaces a
    /// record still `running`. Not flushed: progress lost in a crash is
    /// only a stale percentage.
    pub(crate) async fn update_progress(&self, job: &JobRecord) -> Result<bool, StoreError> {
        if let Some(entry) = lock(&self.running_sync).get_mut(&job.id) {
            *entry = job.clone();
            return Ok(true);
        }
        // Only over a record that still says `running`: a late progress
        // write must not undo a final state.
        #[derive(serde::Deserialize)]
        struct Status {
            status: JobStatus,
        }
        let value = serde_json::to_vec(job)?;
        let mut updated = false;
        self.jobs.fetch_and_update(job.id.as_bytes(), |old| {
            let old = old?;
            updated =
                serde_json::from_slice::<Status>(old).is_ok_and(|s| s.status == JobStatus::Running);
            Some(if updated { value.clone() } else { old.to_vec() })
        })?;
        Ok(updated)
    }

    /// Store a job's final state and results. A sync job is written once,
    /// now, under its [`SledStore::sync_write_lock`] (so a concurrent
    /// dismissal cannot slip in between). An async job is shown as `shown`
    /// (its state before) until its final state is durable: results,
    /// record and index entries, then the flush, then its `A` entry goes.
    /// `false` when the job was deleted meanwhile (its results are removed
    /// again).
    pub(crate) async fn finish_job(
        &self,
        shown: &JobRecord,
        job: &JobRecord,
        results: Option<&JobResults>,
    ) -> Result<bool, StoreError> {
        if !job.asynchronous {
            // A sync job: written once, now. Readers keep seeing it in
            // `running_sync` (as running) until every write is done, and
            // the stored record after that; a reader that meets both (a
            // list between the two) shows the job once, by its key. Not
            // flushed: its client gets the results in the response, and
            // sled writes them out within its flush interval.
            let _write = self.sync_write_lock(job.id);
            if !lock(&self.running_sync).contains_key(&job.id) {
                // Deleted while it ran.
                return Ok(false);
            }
            if let Some(results) = results {
                self.results
                    .insert(job.id.as_bytes(), serde_json::to_vec(results)?)?;
            }
            self.insert_finished(job)?;
            lock(&self.running_sync).remove(&job.id);
            return Ok(true);
        }
        // An async job: shown as before until durable.
        lock(&self.pending).insert(job.id, shown.clone());
        let finished = async {
            if let Some(results) = results {
                self.results
                    .insert(job.id.as_bytes(), serde_json::to_vec(results)?)?;
            }
            if !self.update_stored(job)? {
                self.results.remove(job.id.as_bytes())?;
                return Ok(false);
            }
            self.write_index(job)?;
            self.flush().await?;
            Ok(true)
        }
        .await;
        lock(&self.pending).remove(&job.id);
        if matches!(finished, Ok(true)) {
            // Out of the active set only once the final state is durable:
            // a crash before this leaves an `A` entry that recovery drops.
            self.index.remove(active_key(job))?;
        }
        finished
    }

    /// Put a job back in the queue (a graceful shutdown stopped it, or it
    /// was claimed ahead and never started): overwrite its record if it
    /// still exists, flush (a re-queued job must still be there after the
    /// restart that usually follows), then take a place and push its id.
    /// The place is taken even past `max_queued`: the job was accepted
    /// once already. Its `A` entry never went away, so recovery also finds
    /// it if the queue in memory is lost.
    pub(crate) async fn requeue_job(&self, job: &JobRecord) -> Result<bool, StoreError> {
        if !self.update_stored(job)? {
            return Ok(false);
        }
        self.flush().await?;
        self.queued.fetch_add(1, Ordering::SeqCst);
        self.push_queue(job.id);
        Ok(true)
    }

    /// Dismiss: remove a running sync job from memory, or an async job's
    /// record, results and index entries (durably: a dismissed job must
    /// not come back after a crash), and announce it so the scheduler
    /// stops it if it runs. Returns the job as readers last saw it.
    ///
    /// The record goes first, in one `remove` that also says whether there
    /// was one: of two concurrent dismissals only one gets it back and
    /// announces. Once the record is gone every later write of the job
    /// (progress, finish, requeue) is a compare-and-swap that finds no
    /// record and leaves none behind; its id may stay in the in-memory
    /// queue until a claim skips it.
    pub(crate) async fn delete_job(&self, id: Uuid) -> Result<Option<JobRecord>, StoreError> {
        {
            // A running sync job was never written; under its write lock,
            // a job whose final write has begun is deleted below, from
            // disk, once that write is done.
            let _write = self.sync_write_lock(id);
            if let Some(job) = lock(&self.running_sync).remove(&id) {
                let _ = self.events.send(StoreEvent::JobDismissed(id));
                return Ok(Some(job));
            }
        }
        let shown = lock(&self.pending).remove(&id);
        let Some(bytes) = self.jobs.remove(id.as_bytes())? else {
            return Ok(None);
        };
        let stored: JobRecord = serde_json::from_slice(&bytes)?;
        self.remove_job(&stored)?;
        self.flush().await?;
        let _ = self.events.send(StoreEvent::JobDismissed(id));
        Ok(Some(shown.unwrap_or(stored)))
    }

    /// A job as readers may see it (see `get_shown`).
    pub(crate) async fn get_job(&self, id: Uuid) -> Result<Option<JobRecord>, StoreError> {
        self.get_shown(id)
    }

    /// A successful job's results (`None` for any other job).
    pub(crate) async fn get_results(&self, id: Uuid) -> Result<Option<JobResults>, StoreError> {
        match self.results.get(id.as_bytes())? {
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            None => Ok(None),
        }
    }

    /// At start-up, settle every job of the `A` index (accepted or running
    /// when the last run ended): queued async jobs go back in the queue;
    /// a job that was running is failed as `interrupted` (on one node its
    /// partial effects are unknown and a guest need not be idempotent), as
    /// is a sync job that never ran (its client is gone); entries left by
    /// a crash between writes are dropped.
    pub(crate) async fn recover(&self) -> Result<Recovery, StoreError> {
        let mut recovery = Recovery::default();
        let active: Vec<_> = self
            .index
            .scan_prefix([index::ACTIVE])
            .keys()
            .collect::<Result<_, _>>()?;
        for key in active {
            let job = match index::id_of(&key) {
                Some(id) => self.get_stored(id)?,
                None => None,
            };
            let Some(mut job) = job else {
                self.index.remove(&key)?; // a crash between writes
                continue;
            };
            match job.status {
                JobStatus::Accepted if job.asynchronous => {
                    self.queued.fetch_add(1, Ordering::SeqCst);
                    self.push_queue(job.id);
                    recovery.requeued += 1;
                    continue;
                }
                JobStatus::Running => {
                    // Its partial effects are unknown and a guest need not
                    // be idempotent: on one node, fail it.
                    job.mark_failed(
                        FailureKind::Interrupted,
                        "interrupted by server restart while running",
                    );
                    recovery.interrupted += 1;
                }
                JobStatus::Accepted => {
                    // A sync job whose client is gone: nobody waits for it.
                    job.mark_failed(
                        FailureKind::Interrupted,
                        "interrupted by server restart before it ran",
                    );
                    recovery.interrupted += 1;
                }
                // Its final state was durable, its `A` entry not yet gone.
                JobStatus::Successful | JobStatus::Failed | JobStatus::Dismissed => {}
            }
            self.update_stored(&job)?;
            self.write_index(&job)?;
            self.index.remove(&key)?;
        }
        self.flush().await?;
        Ok(recovery)
    }

    /// No leases on one node: nothing to renew, nothing lost.
    pub(crate) async fn heartbeat(&self, _running: &[Uuid]) -> Result<Vec<Uuid>, StoreError> {
        Ok(Vec::new())
    }

    /// No other nodes whose jobs could be orphaned.
    pub(crate) async fn sweep_expired_leases(&self) -> Result<LeaseSweep, StoreError> {
        Ok(LeaseSweep::default())
    }

    /// Walk each (process, finished status) range oldest first while jobs
    /// were created before `cutoff` (a job created after it cannot have
    /// finished before it), deleting those that finished before it.
    pub(crate) async fn delete_finished_before(
        &self,
        cutoff: DateTime<Utc>,
        max: usize,
    ) -> Result<usize, StoreError> {
        let cutoff_key = index::micros_key(cutoff.timestamp_micros());
        let mut deleted = 0;
        let ranges: Vec<Vec<u8>> = self
            .indexed_processes()?
            .iter()
            .flat_map(|p| FINISHED.map(|(_, status)| process_status_prefix(p, status)))
            .collect();
        for prefix in ranges {
            for entry in self.index.scan_prefix(prefix) {
                if deleted == max {
                    return Ok(deleted);
                }
                let key = entry?.0;
                let Some(job_key) = job_key_of(&key) else {
                    continue;
                };
                if job_key[..8] >= cutoff_key[..] {
                    break;
                }
                let job = match index::id_of(&key) {
                    Some(id) => self.get_stored(id)?,
                    None => None,
                };
                match job {
                    None => {
                        self.index.remove(&key)?; // left by a crash or a race
                    }
                    Some(job) if job.finished.is_some_and(|f| f < cutoff) => {
                        self.remove_job(&job)?;
                        deleted += 1;
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(deleted)
    }

    /// The bytes of every stored record and result (values only; sled's
    /// own overhead is not counted), walked on a blocking thread. Per
    /// owner, each record's `owner` is read (and only that field is
    /// decoded), and a result counts for the owner of its job.
    pub(crate) async fn stored_job_bytes(
        self: &Arc<Self>,
        by_owner: bool,
    ) -> Result<StoredBytes, StoreError> {
        /// The one field of a record the count needs.
        #[derive(serde::Deserialize)]
        struct Owned {
            owner: Option<String>,
        }
        let store = self.clone();
        self.blocking
            .spawn_blocking(move || {
                let mut stored = StoredBytes::default();
                let mut owner_of = std::collections::HashMap::new();
                for entry in store.jobs.iter() {
                    let (key, value) = entry?;
                    stored.total += value.len() as u64;
                    if !by_owner {
                        continue;
                    }
                    if let Ok(Owned { owner: Some(owner) }) = serde_json::from_slice(&value) {
                        *stored.by_owner.entry(owner.clone()).or_default() += value.len() as u64;
                        owner_of.insert(key, owner);
                    }
                }
                for entry in store.results.iter() {
                    let (key, value) = entry?;
                    stored.total += value.len() as u64;
                    if let Some(owner) = owner_of.get(&key) {
                        *stored.by_owner.entry(owner.clone()).or_default() += value.len() as u64;
                    }
                }
                Ok(stored)
            })
            .await
            .map_err(|e| StoreError::from(sled::Error::ReportableBug(e.to_string())))?
    }

    /// Stored jobs plus running sync jobs (sled counts a tree by walking
    /// it: for tests and tools, never on a request's path).
    pub(crate) async fn job_count(&self) -> Result<u64, StoreError> {
        Ok((self.jobs.len() + lock(&self.running_sync).len()) as u64)
    }
}
