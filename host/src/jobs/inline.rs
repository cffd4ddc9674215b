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
//! Only a request's own job starts there: the steps of a workflow are
//! called from their parent's job, on the executor already.
//!
//! A long first slice would hold the HTTP thread, and the status reads
//! queued behind it, for up to an epoch tick (10 ms). So each process
//! keeps an [`InlineHistory`]: a moving average of its first slices' CPU
//! time. While it is under `execution.sync_start_budget` (default 200 µs:
//! about six times a Rust hello-world's whole job, and a fiftieth of the
//! 10 ms that status reads may wait under load), the process's sync jobs
//! start on the HTTP thread; above it, they start on the executor, as
//! every job did before, except one in [`PROBE_EVERY`], which starts on
//! the HTTP thread to measure again (a process whose jobs became short
//! comes back). A process whose jobs are long (statistics-py: 3 ms, mostly
//! in the guest) thus runs one job in 16 on an HTTP thread, and one whose
//! jobs are short runs nearly all of them there.
//!
//! An average rather than the last slice: one slice in a few dozen of a
//! short process costs several times the others (a page fault on a fresh
//! slot, an allocator refill, an interrupt counted on the thread).
//! Measured with "one slow slice sends the next 16 jobs to the executor",
//! 40 % of a Rust hello-world's jobs went there under load.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::moving_average::MovingAverage;

/// Of a process over budget, one sync job in this many starts on the HTTP
/// thread all the same, to measure its slice again.
pub(crate) const PROBE_EVERY: u32 = 16;

/// One process's record of how its sync jobs' first slices went: shared by
/// every job of the process (and of the workflows whose top call it is).
///
/// Updated with relaxed atomics and no lock: two requests at once may
/// both probe. Harmless; what matters is that a slow process stops
/// taking HTTP threads after a few slow slices.
#[derive(Debug, Default)]
pub struct InlineHistory {
    /// The first slices' CPU time; none before the first.
    average: MovingAverage,
    /// Jobs started on the executor since the last probe.
    since_probe: AtomicU32,
}

impl InlineHistory {
    /// Whether the next sync job may start on the HTTP thread, with
    /// `budget` the most CPU its first slices may take on average. A zero
    /// budget: never.
    pub(crate) fn may_start_here(&self, budget: Duration) -> bool {
        if budget.is_zero() {
            return false;
        }
        if self.average.get().is_none_or(|average| average <= budget) {
            return true;
        }
        if self.since_probe.fetch_add(1, Ordering::Relaxed) + 1 >= PROBE_EVERY {
            self.since_probe.store(0, Ordering::Relaxed);
            return true;
        }
        false
    }

    /// A first slice on the HTTP thread took `took` of CPU.
    pub(crate) fn record(&self, took: Duration) {
        self.average.record(took);
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

    const BUDGET: Duration = Duration::from_micros(200);

    #[test]
    fn a_zero_budget_starts_nothing_here() {
        let history = InlineHistory::default();
        assert!(!history.may_start_here(Duration::ZERO));
        history.record(Duration::from_micros(1));
        assert!(
            (0..PROBE_EVERY * 2).all(|_| !history.may_start_here(Duration::ZERO)),
            "not even probes"
        );
    }

    #[test]
    fn a_slow_process_starts_on_the_executor_but_for_probes_and_comes_back() {
        let history = InlineHistory::default();
        assert!(history.may_start_here(BUDGET), "a new process starts here");
        let short = Duration::from_micros(30);
        history.record(short);
        // One slow slice among short ones does not move the process.
        history.record(Duration::from_micros(1000));
        assert!(history.may_start_here(BUDGET), "one outlier moved it");
        // Slow slices do.
        for _ in 0..8 {
            history.record(Duration::from_millis(3));
        }
        let here = (0..PROBE_EVERY * 4)
            .filter(|_| history.may_start_here(BUDGET))
            .count();
        assert_eq!(here, 4, "only the probes start here");
        // Short slices again (seen by probes) bring it back.
        for _ in 0..40 {
            history.record(short);
        }
        assert!(history.may_start_here(BUDGET), "short again, back here");
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
