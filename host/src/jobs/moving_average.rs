//! A moving average of durations that many threads update without a
//! lock: what the dispatcher (time a job holds a worker) and the sync
//! start (CPU time of a first slice) base their per-job decisions on.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Each new sample weighs 1/8, the first one is the average.
///
/// Relaxed atomics: two samples recorded at once may lose one, which an
/// average of this kind does not notice, and no reader needs it to be
/// in step with anything else.
#[derive(Debug, Default)]
pub(crate) struct MovingAverage {
    /// The average in nanoseconds; 0 before the first sample (a sample is
    /// at least 1 ns, so 0 means none).
    nanos: AtomicU64,
}

/// `duration` in nanoseconds, at least 1 (so that a sample is never "none").
fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos())
        .unwrap_or(u64::MAX)
        .max(1)
}

impl MovingAverage {
    /// Add one sample.
    pub(crate) fn record(&self, sample: Duration) {
        let sample = nanos(sample);
        let old = self.nanos.load(Ordering::Relaxed);
        let average = if old == 0 {
            sample
        } else {
            old - old / 8 + sample / 8
        };
        self.nanos.store(average.max(1), Ordering::Relaxed);
    }

    /// Raise the average to `floor` if it is lower (later samples pull it
    /// down again).
    pub(crate) fn raise_to(&self, floor: Duration) {
        self.nanos.fetch_max(nanos(floor), Ordering::Relaxed);
    }

    /// The average; `None` before the first sample.
    pub(crate) fn get(&self) -> Option<Duration> {
        match self.nanos.load(Ordering::Relaxed) {
            0 => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_sample_is_the_average_and_each_next_weighs_an_eighth() {
        let average = MovingAverage::default();
        assert_eq!(average.get(), None);
        average.record(Duration::from_micros(800));
        assert_eq!(average.get(), Some(Duration::from_micros(800)));
        average.record(Duration::from_micros(0));
        assert_eq!(average.get(), Some(Duration::from_micros(700)));
        average.raise_to(Duration::from_millis(2));
        assert_eq!(average.get(), Some(Duration::from_millis(2)));
        average.raise_to(Duration::from_millis(1));
        assert_eq!(average.get(), Some(Duration::from_millis(2)));
    }
}
