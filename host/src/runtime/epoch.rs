//! The epoch ticker: the clock behind wall-clock limits and yields.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use wasmtime::Engine;

/// How often the engine's epoch advances. Every running guest reaches a
/// yield point once per tick, so this bounds how late a timeout or a
/// dismiss takes effect; 10 ms costs nothing measurable.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// A thread that advances the engine's epoch every [`EPOCH_TICK`].
///
/// On a busy machine the thread wakes late; it then catches up (increments
/// until the epoch equals elapsed time / tick) so deadlines do not drift.
/// The thread stops when the ticker is dropped.
#[derive(Debug)]
pub(crate) struct EpochTicker {
    /// Set on drop; the thread sees it within one tick.
    stop: Arc<AtomicBool>,
    /// Joined on drop, so no ticker outlives its runtime.
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    /// Start the thread for `engine`. It holds only a weak handle, so it
    /// never keeps an engine alive: once the last `Engine` clone is gone
    /// its next tick finds nothing to upgrade and it ends by itself.
    ///
    /// A plain OS thread rather than a tokio task: it must keep ticking
    /// when every executor thread is busy running guests, which is exactly
    /// when deadlines matter. `increment_epoch` is one atomic add, so the
    /// thread costs nothing measurable.
    pub(crate) fn start(engine: &Engine) -> std::io::Result<Self> {
        let engine = engine.weak();
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("wasmproc-epoch".into())
            .spawn(move || {
                let started = Instant::now();
                let mut ticks: u128 = 0;
                while !thread_stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    let Some(engine) = engine.upgrade() else {
                        break;
                    };
                    let due = started.elapsed().as_nanos() / EPOCH_TICK.as_nanos();
                    while ticks < due {
                        engine.increment_epoch();
                        ticks += 1;
                    }
                }
            })?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    /// Stop and join the thread; waits at most one tick for its sleep.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
