//! Group commit for sled: every caller that needs its writes on disk waits
//! for one fsync, shared with everybody who asked meanwhile.

use std::sync::atomic::{AtomicU64, Ordering};

use super::SledError;

/// `written` counts flush requests (each made after its writes); `durable`
/// is the highest request known to be on disk. A flush takes the mutex,
/// returns at once if a flush that started after its request has finished
/// meanwhile, and otherwise fsyncs once for every request made so far — so
/// concurrent submissions share one fsync, and only one sled flush runs at
/// a time.
#[derive(Debug, Default)]
pub(super) struct Durability {
    written: AtomicU64,
    durable: AtomicU64,
    flushing: tokio::sync::Mutex<()>,
}

impl Durability {
    /// Wait until everything this caller wrote to `db` is on disk.
    pub(super) async fn flush(
        &self,
        db: &sled::Db,
        blocking: &tokio_util::task::TaskTracker,
    ) -> Result<(), SledError> {
        let request = self.written.fetch_add(1, Ordering::SeqCst) + 1;
        let _turn = self.flushing.lock().await;
        if self.durable.load(Ordering::SeqCst) >= request {
            return Ok(());
        }
        // Every request up to `covered` was made after its writes, so the
        // flush that starts now makes all of them durable.
        let covered = self.written.load(Ordering::SeqCst);
        // sled's flush blocks until fsync returns: run it on the blocking
        // pool, so only the waiters wait, not an executor thread.
        let db = db.clone();
        blocking
            .spawn_blocking(move || db.flush())
            .await
            .map_err(|e| SledError(sled::Error::ReportableBug(e.to_string())))??;
        self.durable.fetch_max(covered, Ordering::SeqCst);
        Ok(())
    }
}
