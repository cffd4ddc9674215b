//! A guest's progress reports: kept in memory, written to the store at
//! most every [`WRITE_INTERVAL`].
//!
//! A guest may call `progress` in a tight loop. Writing each call would
//! turn it into a write storm on the store (one read and one write per
//! call, on a database other jobs share). Instead the latest report is
//! kept here; the first report is written at once (a client polling sees
//! the job move), later ones by a writer task at most every
//! [`WRITE_INTERVAL`], and the final record carries the last one whatever
//! was written before.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::errors::WriteFailures;
use uuid::Uuid;

use crate::ogc::JobStatus;
use crate::runtime::ProgressSink;
use crate::store::{JobRecord, Store, StoreError};

/// Least time between two progress writes of one job: frequent enough for
/// a client polling every second, rare enough that a hostile guest costs
/// the store four writes a second.
pub(super) const WRITE_INTERVAL: Duration = Duration::from_millis(250);

/// The latest report: percent and message (the last message given, kept
/// when a later report has none).
type Report = (u8, Option<String>);

/// Progress of one running job. Cheap to clone (one reference count): the
/// runtime gets one clone as its [`ProgressSink`], the writer task another.
#[derive(Clone)]
pub(super) struct ProgressReports(Arc<Shared>);

/// What the sink and the writer task share.
struct Shared {
    /// Where progress is written (`update_progress`: not forced to disk);
    /// `None` for a job that is not stored (a sync job with
    /// `execution.keep_sync_jobs = false`): its reports only reach its
    /// final record.
    store: Option<Store>,
    /// The job; each write reads its record, applies the latest report and
    /// writes it back (no copy of the record is kept while the guest runs:
    /// most jobs report no progress at all).
    job_id: Uuid,
    /// The newest report, kept after it is written (`finish` puts it in
    /// the final record); `None` until the guest reports.
    latest: Mutex<Option<Report>>,
    /// A report arrived that is not written yet.
    dirty: AtomicBool,
    /// Set by the first report, which starts the writer task: a job that
    /// never reports costs no task.
    writer_started: AtomicBool,
    /// Fired when the job ends: the writer stops.
    done: CancellationToken,
    /// Where a failed progress write is logged and counted; it does not
    /// fail the job.
    failures: Arc<WriteFailures>,
}

impl ProgressReports {
    pub(super) fn new(store: Option<Store>, job_id: Uuid, failures: Arc<WriteFailures>) -> Self {
        Self(Arc::new(Shared {
            store,
            job_id,
            latest: Mutex::new(None),
            dirty: AtomicBool::new(false),
            writer_started: AtomicBool::new(false),
            done: CancellationToken::new(),
            failures,
        }))
    }

    /// Stop writing and apply the latest report to the final record.
    pub(super) fn finish(&self, job: &mut JobRecord) {
        self.0.done.cancel();
        if let Some((percent, message)) = self.0.lock().take() {
            job.progress = Some(percent);
            if message.is_some() {
                job.message = message;
            }
        }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Report>> {
        self.latest.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Apply the latest report to the stored record and write it back;
    /// nothing when the job no longer runs.
    async fn write_latest(&self) -> Result<(), StoreError> {
        let Some((percent, message)) = self.lock().clone() else {
            return Ok(());
        };
        let Some(store) = &self.store else {
            return Ok(());
        };
        let Some(mut job) = store.get_job(self.job_id).await? else {
            return Ok(());
        };
        if job.status != JobStatus::Running {
            return Ok(());
        }
        job.progress = Some(percent);
        if message.is_some() {
            job.message = message;
        }
        job.updated = Utc::now();
        store.update_progress(&job).await.map(|_| ())
    }

    /// Write the latest report until the job ends, at most every
    /// [`WRITE_INTERVAL`].
    async fn write_until_done(self: Arc<Self>) {
        loop {
            if self.done.is_cancelled() {
                return;
            }
            if self.dirty.swap(false, Ordering::SeqCst)
                && let Err(error) = self.write_latest().await
            {
                self.failures.record(self.job_id, "progress", &error);
            }
            tokio::select! {
                () = self.done.cancelled() => return,
                () = tokio::time::sleep(WRITE_INTERVAL) => {}
            }
        }
    }
}

impl ProgressSink for ProgressReports {
    fn progress(&self, percent: u8, message: Option<String>) {
        let shared = &self.0;
        {
            let mut latest = shared.lock();
            let message = message.or_else(|| latest.as_ref().and_then(|(_, m)| m.clone()));
            *latest = Some((percent, message));
        }
        shared.dirty.store(true, Ordering::SeqCst);
        if shared.store.is_some()
            && !shared.writer_started.swap(true, Ordering::SeqCst)
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            handle.spawn(shared.clone().write_until_done());
        }
    }
}
