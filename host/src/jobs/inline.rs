//! Where a sync job starts: on the HTTP thread that took its request, or
//! straight on the executor.
//!
//! A sync job that starts on the HTTP thread runs its first *slice* there:
//! its first poll, up to the first time it waits (a guest at an epoch
//! tick, a fetch, a PostgreSQL write). What is left of it then moves to
//! the executor (`Scheduler::first_slice_here`). A short job (a Rust
//! hello-world: instantiate, call, record, about 30 µs) ends within its
//! first slice. It then saves the two thread wake-ups of handing the job
//! to the executor and its answer back, which cost more CPU than the
//! guest itself (BENCHMARKS.md, "The sync path against its floor").
//!
//! A long first slice would hold the HTTP thread, and the status reads
//! queued behind it, for up to an epoch tick (10 ms). So each process
//! keeps an [`InlineHistory`]: once one of its first slices takes longer
//! than [`INLINE_BUDGET`] of CPU, its next [`BACK_OFF_JOBS`] sync jobs go straight
//! to the executor, as every job did before. Then one more is tried on
//! the HTTP thread, and so on. A process whose jobs are long
//! (statistics-py: 3 ms, mostly in the guest) thus runs one job in 17 on
//! an HTTP thread, and one whose jobs are short runs all of them there.

use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

/// The longest first slice on an HTTP thread that keeps a process's sync
/// jobs starting there. About six times a Rust hello-world's whole job,
/// and a fiftieth of the 10 ms that status reads may wait under load
/// (issue 16).
pub(crate) const INLINE_BUDGET: Duration = Duration::from_micros(200);

/// How many of a process's sync jobs go straight to the executor after
/// one of its first slices overran [`INLINE_BUDGET`].
pub(crate) const BACK_OFF_JOBS: i32 = 16;

/// One process's record of how its sync jobs' first slices went: shared by
/// every job of the process (and of the workflows whose top call it is).
///
/// The count is approximate under concurrency (relaxed atomics, no
/// lock): two requests at once may both start on the HTTP thread, or
/// both on the executor. That is harmless either way; the point is that a
/// slow process stops taking HTTP threads after its first slow job.
#[derive(Debug, Default)]
pub struct InlineHistory {
    /// 0 or more: the next job starts on the HTTP thread. Below 0: that
    /// many more jobs start on the executor.
    credit: AtomicI32,
}

impl InlineHistory {
    /// Whether the next sync job may start on the HTTP thread; counts one
    /// job off the back-off when not.
    pub(crate) fn may_start_here(&self) -> bool {
        if self.credit.load(Ordering::Relaxed) >= 0 {
            return true;
        }
        self.credit.fetch_add(1, Ordering::Relaxed);
        false
    }

    /// A first slice on the HTTP thread took `took`: past the budget, the
    /// next [`BACK_OFF_JOBS`] jobs start on the executor.
    pub(crate) fn record(&self, took: Duration) {
        if took > INLINE_BUDGET {
            self.credit.store(-BACK_OFF_JOBS, Ordering::Relaxed);
        }
    }
}

/// CPU time the calling thread has used so far. A slice's cost is the
/// difference of two readings: wall time would also count the time the
/// kernel gave other threads meanwhile, which on a loaded machine sent
/// short jobs to the executor after a preemption (measured: most of the
/// gain of starting here was lost). A `clock_gettime` system call, about
/// a fifth of a microsecond.
pub(crate) fn thread_cpu_time() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(now.tv_sec).unwrap_or(0),
        u32::try_from(now.tv_nsec).unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_slice_sends_the_next_jobs_to_the_executor_then_one_is_tried_again() {
        let history = InlineHistory::default();
        assert!(history.may_start_here(), "a new process starts here");
        history.record(Duration::from_micros(30));
        assert!(history.may_start_here(), "a short slice keeps it here");
        history.record(INLINE_BUDGET + Duration::from_micros(1));
        for job in 0..BACK_OFF_JOBS {
            assert!(!history.may_start_here(), "job {job} after the slow one");
        }
        assert!(
            history.may_start_here(),
            "tried here again after the back-off"
        );
        assert!(
            history.may_start_here(),
            "and stays while nothing is recorded"
        );
    }

    #[test]
    fn thread_cpu_time_counts_work_and_not_sleep() {
        let before = thread_cpu_time();
        std::thread::sleep(Duration::from_millis(30));
        let slept = thread_cpu_time() - before;
        assert!(slept < Duration::from_millis(20), "sleeping cost {slept:?}");
        let before = thread_cpu_time();
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let worked = thread_cpu_time() - before;
        assert!(
            worked > Duration::from_millis(1),
            "30 ms of work cost {worked:?}"
        );
    }
}
