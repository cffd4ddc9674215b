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
//!
//! What a slice costs is the thread's CPU time, not the wall time: a short
//! slice the kernel preempted for a few milliseconds must not count as a
//! long one. But the thread's CPU clock is a system call (no vDSO), and
//! two of them were 3 % of an unstored sync request's server CPU
//! (BENCHMARKS.md, "Slices timed by the wall clock when that is enough").
//! So a slice is timed by the CPU clock only when the wall clock cannot
//! answer ([`InlineHistory::start_slice`]): wall time is never less than
//! CPU time, so a slice whose wall time is within the budget was within it
//! in CPU time too, and its wall time is recorded. Only a slice whose wall
//! time went over the budget is in doubt (slow, or preempted?); it records
//! nothing and has the process's next slice timed by the CPU clock. The
//! first slice of a process and every probe are timed by the CPU clock.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

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
    /// Whether the next slice must be timed by the thread's CPU clock: set
    /// when a slice timed by the wall clock went over the budget.
    time_next_by_cpu: AtomicBool,
}

/// How one first slice is being timed: from [`InlineHistory::start_slice`]
/// to [`InlineHistory::end_slice`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct SliceTimer {
    /// When the slice started.
    wall: Instant,
    /// The thread's CPU time when it started, if it is timed by the CPU
    /// clock.
    cpu: Option<Duration>,
}

#[cfg(test)]
impl SliceTimer {
    /// Whether this slice is timed by the thread's CPU clock.
    pub(crate) fn by_cpu(&self) -> bool {
        self.cpu.is_some()
    }
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

    /// Start timing a first slice that [`Self::may_start_here`] let start
    /// on this thread. It is timed by the thread's CPU clock when it is the
    /// process's first, a probe (the average is over `budget`), or follows
    /// a slice whose wall time went over `budget`; otherwise by the wall
    /// clock alone, which costs no system call (the module docs say why
    /// that is enough).
    pub(crate) fn start_slice(&self, budget: Duration) -> SliceTimer {
        let by_cpu = self.time_next_by_cpu.swap(false, Ordering::Relaxed)
            || self.average.get().is_none_or(|average| average > budget);
        SliceTimer {
            wall: Instant::now(),
            cpu: by_cpu.then(thread_cpu_time),
        }
    }

    /// The slice `timer` timed has ended: record what it cost, or, for a
    /// slice timed by the wall clock that went over `budget`, nothing, and
    /// have the next slice timed by the CPU clock.
    pub(crate) fn end_slice(&self, timer: SliceTimer, budget: Duration) {
        if let Some(started) = timer.cpu {
            self.record(thread_cpu_time().saturating_sub(started));
            return;
        }
        let wall = timer.wall.elapsed();
        if wall <= budget {
            self.record(wall);
        } else {
            self.time_next_by_cpu.store(true, Ordering::Relaxed);
        }
    }
}

/// CPU time the calling thread has used so far. A slice's cost is the
/// difference of two readings: wall time would also count the time the
/// kernel gave other threads meanwhile, which on a loaded machine sent
/// short jobs to the executor after a preemption (measured: most of the
/// gain of starting here was lost). A `clock_gettime` system call that
/// takes the scheduler's run-queue lock: about a microsecond on this
/// project's two-core VM under load, which is why
/// [`InlineHistory::start_slice`] avoids it when it can.
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
    fn slices_are_timed_by_the_cpu_clock_only_when_the_wall_clock_cannot_tell() {
        let history = InlineHistory::default();
        let first = history.start_slice(BUDGET);
        assert!(first.by_cpu(), "a process's first slice");
        history.end_slice(first, BUDGET);
        let cpu_took = history.average.get().expect("the first slice recorded");
        assert!(cpu_took < BUDGET, "an empty slice cost {cpu_took:?} of CPU");

        // Under budget: the wall clock alone, and its reading is recorded.
        let fast = history.start_slice(BUDGET);
        assert!(!fast.by_cpu(), "a slice of a fast process");
        history.end_slice(
            SliceTimer {
                wall: Instant::now() - Duration::from_micros(150),
                ..fast
            },
            BUDGET,
        );
        let average = history.average.get().unwrap();
        assert!(average > cpu_took, "the wall time was not recorded");

        // Over budget by the wall clock: slow or preempted, nobody knows.
        // Nothing is recorded, and the next slice is timed by the CPU.
        let doubtful = history.start_slice(BUDGET);
        assert!(!doubtful.by_cpu());
        history.end_slice(
            SliceTimer {
                wall: Instant::now() - Duration::from_millis(5),
                ..doubtful
            },
            BUDGET,
        );
        assert_eq!(
            history.average.get(),
            Some(average),
            "a doubtful slice counted"
        );
        let checked = history.start_slice(BUDGET);
        assert!(checked.by_cpu(), "the slice after a doubtful one");
        history.end_slice(checked, BUDGET);
        assert!(
            !history.start_slice(BUDGET).by_cpu(),
            "one CPU-timed slice clears the doubt"
        );

        // Probes of a slow process are timed by the CPU clock.
        for _ in 0..40 {
            history.record(Duration::from_millis(3));
        }
        assert!(history.start_slice(BUDGET).by_cpu(), "a probe");
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
