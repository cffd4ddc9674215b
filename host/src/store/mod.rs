//! Durable state in sled: the only module that touches the database.
//!
//! Trees (all values JSON, keys as noted):
//! - `processes`: process id → [`ProcessRecord`].
//! - `modules`: module sha256 (hex) → component bytes, content-addressed so
//!   a replaced process's running jobs keep their version.
//! - `jobs`: job id (16 bytes) → [`JobRecord`].
//! - `jobs_by_created`: created time (µs, big-endian) ‖ job id → empty.
//!   Iterated in reverse for "newest first" pages without a full scan, and
//!   forwards for retention.
//! - `active`: created time ‖ job id → empty, for jobs `accepted` or
//!   `running`; start-up recovery reads only this tree.
//! - `results`: job id → [`JobResults`].
//!
//! No sled transactions: sled 0.34 switches the whole database to a global
//! lock after the first transaction, and a background flush holding it
//! deadlocked concurrent submissions. Multi-tree writes are instead ordered
//! so that a crash between them leaves only index entries without a job,
//! which every reader skips: a job is written before its index entries and
//! removed before them.
//!
//! Writes that must survive a crash (an accepted async job before its 201)
//! call [`Store::flush`]: group commit, one fsync at a time for everybody
//! waiting (see there).
//!
//! A running *sync* job lives only in memory ([`Store::insert_transient_job`])
//! and is written once, when it finishes: its id reaches its client only
//! with the response, after that write, so a crash mid-run loses nothing
//! anybody was given. Every reader here (get, list, count, update, delete)
//! sees transient jobs exactly like stored ones.
//!
//! An async job's final state is shown only once it is on disk
//! ([`Store::finish_durably`]): until its flush completes, readers are
//! shown the state before it, so a finish anybody saw survives a crash.

mod records;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};

use uuid::Uuid;

use crate::ogc::JobStatus;
pub use records::{JobFailure, JobRecord, JobResults, ProcessRecord};

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed (I/O, corruption).
    #[error("database error: {0}")]
    Database(#[from] sled::Error),
    /// A stored value could not be (de)serialised.
    #[error("stored data is unreadable: {0}")]
    Encoding(#[from] serde_json::Error),
}

/// Filters of `GET /jobs`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobFilter {
    /// Only jobs of these processes (any, when empty).
    pub process_ids: Vec<String>,
    /// Only jobs in these states (any, when empty).
    pub statuses: Vec<JobStatus>,
    /// Only jobs created at or after this time.
    pub created_from: Option<DateTime<Utc>>,
    /// Only jobs created at or before this time.
    pub created_to: Option<DateTime<Utc>>,
    /// Only jobs that ran at least this many seconds.
    pub min_duration: Option<f64>,
    /// Only jobs that ran at most this many seconds.
    pub max_duration: Option<f64>,
}

impl JobFilter {
    fn matches(&self, job: &JobRecord) -> bool {
        (self.process_ids.is_empty() || self.process_ids.contains(&job.process_id))
            && (self.statuses.is_empty() || self.statuses.contains(&job.status))
            && self
                .min_duration
                .is_none_or(|min| job.duration_seconds().is_some_and(|d| d >= min))
            && self
                .max_duration
                .is_none_or(|max| job.duration_seconds().is_some_and(|d| d <= max))
    }
}

/// A page of jobs.
#[derive(Debug, Clone, PartialEq)]
pub struct JobPage {
    /// The jobs, newest first.
    pub jobs: Vec<JobRecord>,
    /// Whether more jobs match after this page.
    pub has_more: bool,
}

/// The database. Cheap to clone: one reference count.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<StoreInner>,
}

#[derive(Debug)]
struct StoreInner {
    db: sled::Db,
    processes: sled::Tree,
    modules: sled::Tree,
    jobs: sled::Tree,
    jobs_by_created: sled::Tree,
    active: sled::Tree,
    results: sled::Tree,
    durability: Durability,
    transient: Mutex<HashMap<Uuid, JobRecord>>,
    /// Jobs whose newest state is written but not yet durable, with the
    /// state readers see meanwhile.
    pending: Mutex<HashMap<Uuid, JobRecord>>,
}

/// Group commit. `written` counts flush requests (each made after its
/// writes); `durable` is the highest request known to be on disk. A flush
/// takes the mutex, returns at once if a flush that started after its
/// request has finished meanwhile, and otherwise fsyncs once for every
/// request made so far — so concurrent submissions share one fsync, and
/// only one sled flush runs at a time.
#[derive(Debug, Default)]
struct Durability {
    written: AtomicU64,
    durable: AtomicU64,
    flushing: tokio::sync::Mutex<()>,
}

/// sled's page cache (a soft bound on its share of the server's RSS).
const CACHE_BYTES: u64 = 256 * 1024 * 1024;

fn created_key(job: &JobRecord) -> [u8; 24] {
    let micros = job.created.timestamp_micros().max(0) as u64;
    let mut key = [0u8; 24];
    key[..8].copy_from_slice(&micros.to_be_bytes());
    key[8..].copy_from_slice(job.id.as_bytes());
    key
}

fn time_prefix(time: DateTime<Utc>) -> [u8; 8] {
    (time.timestamp_micros().max(0) as u64).to_be_bytes()
}

impl Store {
    /// Open (or create) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            // sled flushes its log every 500 ms by default; durability of
            // accepted jobs comes from explicit flushes, so keep the default.
            // Writes outnumber reads several to one on the job path: favour
            // write throughput over on-disk compactness.
            .mode(sled::Mode::HighThroughput)
            // sled caches up to 1 GiB of pages by default, so the server's
            // RSS grew with every job written; past this bound older records
            // are read back from the OS page cache. (64 MiB cost ~9% more
            // CPU per sync request in eviction work; 256 MiB costs nothing
            // measurable in a 10 s benchmark.)
            .cache_capacity(CACHE_BYTES)
            .open()?;
        Ok(Self {
            inner: Arc::new(StoreInner {
                processes: db.open_tree("processes")?,
                modules: db.open_tree("modules")?,
                jobs: db.open_tree("jobs")?,
                jobs_by_created: db.open_tree("jobs_by_created")?,
                active: db.open_tree("active")?,
                results: db.open_tree("results")?,
                durability: Durability::default(),
                transient: Mutex::default(),
                pending: Mutex::default(),
                db,
            }),
        })
    }

    /// Wait until everything this caller wrote is on disk.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let durability = &self.inner.durability;
        let request = durability.written.fetch_add(1, Ordering::SeqCst) + 1;
        let _turn = durability.flushing.lock().await;
        if durability.durable.load(Ordering::SeqCst) >= request {
            return Ok(());
        }
        // Every request up to `covered` was made after its writes, so the
        // flush that starts now makes all of them durable.
        let covered = durability.written.load(Ordering::SeqCst);
        let db = self.inner.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|e| StoreError::Database(sled::Error::ReportableBug(e.to_string())))??;
        durability.durable.fetch_max(covered, Ordering::SeqCst);
        Ok(())
    }

    // ---- processes and modules -------------------------------------------

    /// Insert or replace a process record.
    pub fn put_process(&self, process: &ProcessRecord) -> Result<(), StoreError> {
        self.inner
            .processes
            .insert(process.id.as_bytes(), serde_json::to_vec(process)?)?;
        Ok(())
    }

    /// A process record by id.
    pub fn get_process(&self, id: &str) -> Result<Option<ProcessRecord>, StoreError> {
        match self.inner.processes.get(id.as_bytes())? {
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Every process record, ordered by id.
    pub fn list_processes(&self) -> Result<Vec<ProcessRecord>, StoreError> {
        self.inner
            .processes
            .iter()
            .values()
            .map(|v| Ok(serde_json::from_slice(&v?)?))
            .collect()
    }

    /// Remove a process record (its module bytes stay for running jobs).
    pub fn delete_process(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.inner.processes.remove(id.as_bytes())?.is_some())
    }

    /// Store module bytes under their sha256.
    pub fn put_module(&self, sha256: &str, wasm: &[u8]) -> Result<(), StoreError> {
        self.inner.modules.insert(sha256.as_bytes(), wasm)?;
        Ok(())
    }

    /// Module bytes by sha256.
    pub fn get_module(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .inner
            .modules
            .get(sha256.as_bytes())?
            .map(|v| v.to_vec()))
    }

    // ---- jobs -------------------------------------------------------------

    /// Insert a new job, then its index entries.
    pub fn insert_job(&self, job: &JobRecord) -> Result<(), StoreError> {
        let key = created_key(job);
        self.inner
            .jobs
            .insert(job.id.as_bytes(), serde_json::to_vec(job)?)?;
        self.inner.jobs_by_created.insert(key, &[])?;
        if !job.status.is_finished() {
            self.inner.active.insert(key, &[])?;
        }
        Ok(())
    }

    /// Keep a running sync job in memory only; [`Store::update_job`] with
    /// its final state writes it (see the module documentation).
    pub fn insert_transient_job(&self, job: &JobRecord) {
        self.transient_jobs().insert(job.id, job.clone());
    }

    fn transient_jobs(&self) -> MutexGuard<'_, HashMap<Uuid, JobRecord>> {
        self.inner
            .transient
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Write the new state of an existing job; a finished job leaves the
    /// active index (a transient job is written now). Returns `false` (and
    /// writes nothing) when the job no longer exists, e.g. because it was
    /// dismissed meanwhile: the check and the write are one atomic step
    /// (a compare-and-swap on the job's key, or under the transient lock).
    pub fn update_job(&self, job: &JobRecord) -> Result<bool, StoreError> {
        {
            let mut transient = self.transient_jobs();
            if let Some(entry) = transient.get_mut(&job.id) {
                if !job.status.is_finished() {
                    *entry = job.clone();
                    return Ok(true);
                }
                // Written before it leaves the map, so that readers see it
                // in one place or the other, and under the lock, so that a
                // concurrent delete cannot slip in between.
                self.insert_job(job)?;
                transient.remove(&job.id);
                return Ok(true);
            }
        }
        let value = serde_json::to_vec(job)?;
        let previous = self
            .inner
            .jobs
            .fetch_and_update(job.id.as_bytes(), |old| old.map(|_| value.clone()))?;
        if previous.is_none() {
            return Ok(false);
        }
        if job.status.is_finished() {
            self.inner.active.remove(created_key(job))?;
        }
        Ok(true)
    }

    /// Write the final state of an existing job and make it durable; until
    /// it is, readers see `shown` (the state before). Returns `false` when
    /// the job no longer exists (see [`Store::update_job`]).
    pub async fn finish_durably(
        &self,
        shown: &JobRecord,
        job: &JobRecord,
    ) -> Result<bool, StoreError> {
        self.pending_jobs().insert(job.id, shown.clone());
        let finished = match self.update_job(job) {
            Ok(true) => self.flush().await.map(|()| true),
            other => other,
        };
        self.pending_jobs().remove(&job.id);
        finished
    }

    fn pending_jobs(&self) -> MutexGuard<'_, HashMap<Uuid, JobRecord>> {
        self.inner
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A job by id.
    pub fn get_job(&self, id: Uuid) -> Result<Option<JobRecord>, StoreError> {
        if let Some(job) = self.transient_jobs().get(&id) {
            return Ok(Some(job.clone()));
        }
        self.get_shown_job(id)
    }

    /// A stored job as readers may see it (its durable state).
    fn get_shown_job(&self, id: Uuid) -> Result<Option<JobRecord>, StoreError> {
        if let Some(job) = self.pending_jobs().get(&id) {
            return Ok(Some(job.clone()));
        }
        self.get_stored_job(id)
    }

    fn get_stored_job(&self, id: Uuid) -> Result<Option<JobRecord>, StoreError> {
        match self.inner.jobs.get(id.as_bytes())? {
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Delete a job, then its results and index entries.
    pub fn delete_job(&self, job: &JobRecord) -> Result<(), StoreError> {
        let key = created_key(job);
        self.transient_jobs().remove(&job.id);
        self.pending_jobs().remove(&job.id);
        self.inner.jobs.remove(job.id.as_bytes())?;
        self.inner.results.remove(job.id.as_bytes())?;
        self.inner.active.remove(key)?;
        self.inner.jobs_by_created.remove(key)?;
        Ok(())
    }

    /// A page of jobs matching `filter`, newest first.
    ///
    /// Walks the creation-time index backwards from `created_to`, so an
    /// unfiltered page costs `offset + limit` reads whatever the job count.
    pub fn list_jobs(
        &self,
        filter: &JobFilter,
        offset: usize,
        limit: usize,
    ) -> Result<JobPage, StoreError> {
        let upper = match filter.created_to {
            Some(to) => {
                let mut bound = time_prefix(to).to_vec();
                bound.extend_from_slice(&[0xff; 16]);
                std::ops::Bound::Included(bound)
            }
            None => std::ops::Bound::Unbounded,
        };
        let lower = match filter.created_from {
            Some(from) => std::ops::Bound::Included(time_prefix(from).to_vec()),
            None => std::ops::Bound::Unbounded,
        };
        // Transient jobs in the same range, newest first, merged into the
        // walk over the index by creation key.
        let mut transient: Vec<([u8; 24], JobRecord)> = self
            .transient_jobs()
            .values()
            .map(|job| (created_key(job), job))
            // The same bounds as the index range above, at its precision.
            .filter(|(key, _)| {
                filter
                    .created_from
                    .is_none_or(|from| key[..8] >= time_prefix(from)[..])
                    && filter
                        .created_to
                        .is_none_or(|to| key[..8] <= time_prefix(to)[..])
            })
            .map(|(key, job)| (key, job.clone()))
            .collect();
        transient.sort_by_key(|(key, _)| std::cmp::Reverse(*key));
        let mut transient = transient.into_iter().peekable();
        let mut stored = self
            .inner
            .jobs_by_created
            .range::<Vec<u8>, _>((lower, upper))
            .rev();
        let mut next_stored: Option<sled::IVec> = None;

        let mut skipped = 0;
        let mut jobs = Vec::with_capacity(limit.min(1000));
        loop {
            if next_stored.is_none()
                && let Some(entry) = stored.next()
            {
                next_stored = Some(entry?.0);
            }
            let take_transient = match (transient.peek(), &next_stored) {
                (Some((key, _)), Some(stored_key)) => key.as_slice() > stored_key.as_ref(),
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            let job = if take_transient {
                match transient.next() {
                    Some((_, job)) => job,
                    None => break,
                }
            } else {
                let Some(key) = next_stored.take() else { break };
                let Ok(id) = Uuid::from_slice(&key[8..]) else {
                    continue;
                };
                let Some(job) = self.get_shown_job(id)? else {
                    continue;
                };
                job
            };
            if !filter.matches(&job) {
                continue;
            }
            if skipped < offset {
                skipped += 1;
                continue;
            }
            if jobs.len() == limit {
                return Ok(JobPage {
                    jobs,
                    has_more: true,
                });
            }
            jobs.push(job);
        }
        Ok(JobPage {
            jobs,
            has_more: false,
        })
    }

    /// Jobs `accepted` or `running`, oldest first.
    pub fn active_jobs(&self) -> Result<Vec<JobRecord>, StoreError> {
        let mut jobs = Vec::new();
        for entry in self.inner.active.iter() {
            let (key, _) = entry?;
            if let Ok(id) = Uuid::from_slice(&key[8..])
                && let Some(job) = self.get_job(id)?
            {
                jobs.push(job);
            }
        }
        Ok(jobs)
    }

    /// Finished jobs created before `cutoff`, oldest first, at most `max`.
    pub fn finished_jobs_before(
        &self,
        cutoff: DateTime<Utc>,
        max: usize,
    ) -> Result<Vec<JobRecord>, StoreError> {
        let mut jobs = Vec::new();
        for entry in self
            .inner
            .jobs_by_created
            .range(..time_prefix(cutoff).to_vec())
        {
            let (key, _) = entry?;
            if let Ok(id) = Uuid::from_slice(&key[8..])
                && let Some(job) = self.get_job(id)?
                && job.status.is_finished()
            {
                jobs.push(job);
                if jobs.len() == max {
                    break;
                }
            }
        }
        Ok(jobs)
    }

    /// Number of jobs, stored and transient.
    pub fn job_count(&self) -> usize {
        self.inner.jobs.len() + self.transient_jobs().len()
    }

    /// Store the results of a job.
    pub fn put_results(&self, id: Uuid, results: &JobResults) -> Result<(), StoreError> {
        self.inner
            .results
            .insert(id.as_bytes(), serde_json::to_vec(results)?)?;
        Ok(())
    }

    /// The results of a job.
    pub fn get_results(&self, id: Uuid) -> Result<Option<JobResults>, StoreError> {
        match self.inner.results.get(id.as_bytes())? {
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ogc::ExecuteRequest;

    fn job(process: &str, status: JobStatus) -> JobRecord {
        let mut job = JobRecord::new(process, "sha", ExecuteRequest::default(), true);
        job.status = status;
        job
    }

    #[test]
    fn jobs_list_newest_first_with_filters_and_paging() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut ids = Vec::new();
        for i in 0..5 {
            let status = if i % 2 == 0 {
                JobStatus::Successful
            } else {
                JobStatus::Failed
            };
            let j = job(if i < 3 { "a" } else { "b" }, status);
            store.insert_job(&j).unwrap();
            ids.push(j.id);
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let all = store.list_jobs(&JobFilter::default(), 0, 10).unwrap();
        assert_eq!(
            all.jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
            ids.iter().rev().copied().collect::<Vec<_>>()
        );
        let page = store.list_jobs(&JobFilter::default(), 1, 2).unwrap();
        assert_eq!(
            page.jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
            vec![ids[3], ids[2]]
        );
        assert!(page.has_more);
        let only_a = JobFilter {
            process_ids: vec!["a".into()],
            statuses: vec![JobStatus::Successful],
            ..JobFilter::default()
        };
        let page = store.list_jobs(&only_a, 0, 10).unwrap();
        assert_eq!(
            page.jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
            vec![ids[2], ids[0]]
        );
    }

    #[test]
    fn active_index_follows_job_state_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (queued, done) = {
            let store = Store::open(dir.path()).unwrap();
            let queued = job("a", JobStatus::Accepted);
            let mut done = job("a", JobStatus::Running);
            store.insert_job(&queued).unwrap();
            store.insert_job(&done).unwrap();
            done.status = JobStatus::Successful;
            assert!(store.update_job(&done).unwrap());
            (queued, done)
        };
        let store = Store::open(dir.path()).unwrap();
        let active: Vec<_> = store
            .active_jobs()
            .unwrap()
            .into_iter()
            .map(|j| j.id)
            .collect();
        assert_eq!(active, vec![queued.id]);
        assert_eq!(
            store.get_job(done.id).unwrap().unwrap().status,
            JobStatus::Successful
        );
        store.delete_job(&queued).unwrap();
        assert!(store.active_jobs().unwrap().is_empty());
        assert!(
            !store.update_job(&queued).unwrap(),
            "a deleted job is not resurrected"
        );
        assert!(store.get_job(queued.id).unwrap().is_none());
    }

    #[test]
    fn transient_sync_job_is_seen_everywhere_and_written_only_when_finished() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let older = job("a", JobStatus::Successful);
        store.insert_job(&older).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let mut running = job("a", JobStatus::Running);
        store.insert_transient_job(&running);
        std::thread::sleep(std::time::Duration::from_millis(2));
        let newer = job("a", JobStatus::Failed);
        store.insert_job(&newer).unwrap();

        assert_eq!(store.job_count(), 3);
        assert_eq!(
            store.get_job(running.id).unwrap().unwrap().status,
            JobStatus::Running
        );
        let ids = |page: JobPage| page.jobs.iter().map(|j| j.id).collect::<Vec<_>>();
        assert_eq!(
            ids(store.list_jobs(&JobFilter::default(), 0, 10).unwrap()),
            vec![newer.id, running.id, older.id],
            "merged into the newest-first order"
        );
        let page = store.list_jobs(&JobFilter::default(), 1, 1).unwrap();
        assert_eq!(ids(page.clone()), vec![running.id]);
        assert!(page.has_more);
        let only_running = JobFilter {
            statuses: vec![JobStatus::Running],
            ..JobFilter::default()
        };
        assert_eq!(
            ids(store.list_jobs(&only_running, 0, 10).unwrap()),
            vec![running.id]
        );
        assert!(
            store.active_jobs().unwrap().is_empty(),
            "never on disk while it runs"
        );

        running.progress = Some(50);
        assert!(store.update_job(&running).unwrap());
        assert_eq!(
            store.get_job(running.id).unwrap().unwrap().progress,
            Some(50)
        );
        running.status = JobStatus::Successful;
        assert!(store.update_job(&running).unwrap());
        drop(store);

        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store.get_job(running.id).unwrap().unwrap().status,
            JobStatus::Successful,
            "the final state is written"
        );
        assert_eq!(store.job_count(), 3);
        assert!(store.active_jobs().unwrap().is_empty());

        let mut dismissed = job("a", JobStatus::Running);
        store.insert_transient_job(&dismissed);
        store.delete_job(&dismissed).unwrap();
        dismissed.status = JobStatus::Successful;
        assert!(
            !store.update_job(&dismissed).unwrap(),
            "a deleted job is not written"
        );
        assert!(store.get_job(dismissed.id).unwrap().is_none());
    }

    #[tokio::test]
    async fn a_durable_finish_shows_when_it_returns_and_never_resurrects_a_deleted_job() {
        let dir = tempfile::tempdir().unwrap();
        let (finished_id, dismissed_id) = {
            let store = Store::open(dir.path()).unwrap();
            let running = job("a", JobStatus::Running);
            store.insert_job(&running).unwrap();
            let mut finished = running.clone();
            finished.status = JobStatus::Successful;
            assert!(store.finish_durably(&running, &finished).await.unwrap());
            assert_eq!(
                store.get_job(finished.id).unwrap().unwrap().status,
                JobStatus::Successful,
                "shown once durable"
            );

            let other = job("a", JobStatus::Running);
            store.insert_job(&other).unwrap();
            store.delete_job(&other).unwrap();
            let mut late = other.clone();
            late.status = JobStatus::Successful;
            assert!(!store.finish_durably(&other, &late).await.unwrap());
            assert!(store.get_job(other.id).unwrap().is_none());
            (finished.id, other.id)
        };
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store.get_job(finished_id).unwrap().unwrap().status,
            JobStatus::Successful
        );
        assert!(store.get_job(dismissed_id).unwrap().is_none());
        assert!(store.active_jobs().unwrap().is_empty());
    }
}
