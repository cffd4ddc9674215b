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

use super::scheduler::WriteFailures;
use crate::runtime::ProgressSink;
use crate::store::{JobRecord, Store};

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

struct Shared {
    store: Store,
    /// The job as it started running; reports are applied to a copy.
    job: JobRecord,
    latest: Mutex<Option<Report>>,
    /// A report arrived that is not written yet.
    dirty: AtomicBool,
    writer_started: AtomicBool,
    /// Fired when the job ends: the writer stops.
    done: CancellationToken,
    failures: Arc<WriteFailures>,
}

impl ProgressReports {
    pub(super) fn new(store: Store, job: &JobRecord, failures: Arc<WriteFailures>) -> Self {
        Self(Arc::new(Shared {
            store,
            job: job.clone(),
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

    /// The running record with the latest report applied.
    fn snapshot(&self) -> Option<JobRecord> {
        let (percent, message) = self.lock().clone()?;
        let mut job = self.job.clone();
        job.progress = Some(percent);
        if message.is_some() {
            job.message = message;
        }
        job.updated = Utc::now();
        Some(job)
    }

    /// Write the latest report until the job ends, at most every
    /// [`WRITE_INTERVAL`].
    async fn write_until_done(self: Arc<Self>) {
        loop {
            if self.done.is_cancelled() {
                return;
            }
            if self.dirty.swap(false, Ordering::SeqCst)
                && let Some(job) = self.snapshot()
                && let Err(error) = self.store.update_progress(&job).await
            {
                self.failures.record(job.id, "progress", &error);
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
        if !shared.writer_started.swap(true, Ordering::SeqCst)
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            handle.spawn(shared.clone().write_until_done());
        }
    }
}
