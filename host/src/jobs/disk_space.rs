//! The guard on free disk space (`execution.min_free_disk_bytes`): when
//! the disk of the data directory has less free space than that, new jobs
//! are refused with 507 Insufficient Storage, as with
//! `execution.max_stored_bytes`.
//!
//! Why a second bound: `max_stored_bytes` counts the job data as stored,
//! but the embedded store's files take several times that on disk (sled
//! is log-structured and reclaims space in the background), and other
//! programs share the disk. When a write of sled's fails for lack of space
//! the database stays failed, every write after it fails too even once
//! space is freed, until the server restarts (measured: a 40 MiB
//! filesystem filled by sync requests, then grown to 200 MiB: every write
//! still failed). Refusing new jobs while some space is left keeps the
//! store from reaching that point; reads, dismissals and deletions go on.
//!
//! Only for the sled store: with PostgreSQL the jobs live in the
//! database, whose disk is the database's to guard.
//!
//! The free space is read with `statvfs` (the space an unprivileged
//! writer may use) at most every [`REFRESH`], so a burst of submissions
//! costs one system call per period, not one each.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a reading of the free space is used before it is read again.
const REFRESH: Duration = Duration::from_millis(250);

/// The free space of one directory's filesystem against a floor.
#[derive(Debug)]
pub(crate) struct DiskSpace {
    /// The directory whose filesystem is watched (the data directory).
    dir: PathBuf,
    /// `execution.min_free_disk_bytes`; 0 turns the guard off.
    min_free: u64,
    /// When the readings below are counted from.
    epoch: Instant,
    /// Milliseconds after `epoch` of the last reading, plus one (0: never
    /// read).
    read_at: AtomicU64,
    /// The last reading, in bytes.
    available: AtomicU64,
}

impl DiskSpace {
    /// A guard of `dir`'s filesystem, refusing below `min_free` bytes.
    pub(crate) fn new(dir: PathBuf, min_free: u64) -> Self {
        Self {
            dir,
            min_free,
            epoch: Instant::now(),
            read_at: AtomicU64::new(0),
            available: AtomicU64::new(u64::MAX),
        }
    }

    /// `Err((available, min_free))` when the filesystem has less free
    /// space than the floor. A reading that fails (the directory vanished)
    /// lets the job through: the store's own write will then say what is
    /// wrong, and a guard must not refuse work on a guess.
    pub(crate) fn check(&self) -> Result<(), (u64, u64)> {
        if self.min_free == 0 {
            return Ok(());
        }
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX) + 1;
        let read_at = self.read_at.load(Ordering::Relaxed);
        let stale = read_at == 0 || now.saturating_sub(read_at) >= REFRESH.as_millis() as u64;
        if stale {
            self.read_at.store(now, Ordering::Relaxed);
            match available_bytes(&self.dir) {
                Ok(bytes) => self.available.store(bytes, Ordering::Relaxed),
                Err(error) => {
                    tracing::warn!(%error, dir = %self.dir.display(), "cannot read the free disk space");
                    self.available.store(u64::MAX, Ordering::Relaxed);
                }
            }
        }
        let available = self.available.load(Ordering::Relaxed);
        if available < self.min_free {
            Err((available, self.min_free))
        } else {
            Ok(())
        }
    }
}

/// Bytes an unprivileged writer may still write on `dir`'s filesystem
/// (`f_bavail` blocks of `f_frsize` bytes).
fn available_bytes(dir: &std::path::Path) -> std::io::Result<u64> {
    let stat = rustix::fs::statvfs(dir)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_floor_above_the_free_space_refuses_and_zero_turns_it_off() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let free = available_bytes(dir.path()).expect("statvfs");
        assert!(free > 0);
        let guard = DiskSpace::new(dir.path().to_path_buf(), u64::MAX);
        let (available, min) = guard.check().expect_err("no disk has 16 EiB free");
        assert_eq!(min, u64::MAX);
        assert!(available <= free.saturating_mul(2), "{available} vs {free}");
        assert_eq!(DiskSpace::new(dir.path().to_path_buf(), 0).check(), Ok(()));
        assert_eq!(DiskSpace::new(dir.path().to_path_buf(), 1).check(), Ok(()));
    }
}
