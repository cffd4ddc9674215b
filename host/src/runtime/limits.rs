//! Per-job resource limits and the memory limiter that enforces them.
//!
//! Fuel and the wall-clock deadline are enforced by wasmtime itself (see
//! `engine.rs`); linear memory and tables are enforced here, through a
//! [`wasmtime::ResourceLimiter`] attached to each job's store.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The budget of one job. Every field is a hard cap: crossing it fails the
/// job with an outcome naming the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Instructions the guest may execute (wasmtime fuel units).
    pub fuel: u64,
    /// Total linear memory across all of the component's memories, in bytes.
    pub memory_bytes: u64,
    /// Wall-clock time for the whole call, including time the guest spends
    /// blocked in host calls such as `sleep`.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Total size of all outputs, in bytes.
    pub output_bytes: u64,
    /// Size of the job log (guest `log` calls plus stdout/stderr), in bytes;
    /// later writes are dropped and counted.
    pub log_bytes: u64,
}

impl Default for Limits {
    /// Budgets that fit real work on a small machine while stopping runaway
    /// guests quickly: 1e11 fuel is ~7 s of a tight loop (JS and Python
    /// runtimes burn 0.2–2M just starting), 256 MiB of memory, one minute of
    /// wall clock, 64 MiB of outputs and 64 KiB of log.
    fn default() -> Self {
        Self {
            fuel: 100_000_000_000,
            memory_bytes: 256 * 1024 * 1024,
            timeout: Duration::from_secs(60),
            output_bytes: 64 * 1024 * 1024,
            log_bytes: 64 * 1024,
        }
    }
}

impl Limits {
    /// These limits with every field lowered to at most `cap`'s.
    pub fn capped_by(self, cap: &Limits) -> Limits {
        Limits {
            fuel: self.fuel.min(cap.fuel),
            memory_bytes: self.memory_bytes.min(cap.memory_bytes),
            timeout: self.timeout.min(cap.timeout),
            output_bytes: self.output_bytes.min(cap.output_bytes),
            log_bytes: self.log_bytes.min(cap.log_bytes),
        }
    }
}

/// The error a job's store raises when the guest asks for more linear memory
/// than its budget. Downcast from the trap to classify the outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("memory limit exceeded: asked for {requested} bytes of linear memory, limit is {limit}")]
pub struct MemoryLimitExceeded {
    /// Total linear memory the guest would have had after the grow.
    pub requested: u64,
    /// The job's memory limit.
    pub limit: u64,
}

/// Largest table a guest may grow to. Tables hold function references; real
/// programs stay far below this (a C# debug build was seen at 10k), and it
/// stops a table-growing loop from eating host memory.
const MAX_TABLE_ELEMENTS: usize = 1_000_000;

/// Tracks and caps the linear memory of one job's store.
///
/// wasmtime asks before every memory grows (including the initial
/// allocation at instantiation), passing the memory's current and desired
/// size; summing the differences gives the total across all memories, which
/// is what the budget caps and what `peak_bytes` reports.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    /// The job's `memory_bytes`.
    limit: u64,
    /// Linear memory granted so far, over every memory of the store.
    /// Memories never shrink in wasm, so this is also the current total.
    total_bytes: u64,
    /// Kept apart from `total_bytes` for the reports, though with memories
    /// that never shrink the two stay equal.
    peak_bytes: u64,
    /// The first (and only) denial: the trap it causes ends the call, so
    /// no second grow is asked for.
    exceeded: Option<MemoryLimitExceeded>,
}

impl MemoryLimiter {
    /// A limiter for a fresh store, nothing granted yet.
    pub(crate) fn new(limit: u64) -> Self {
        Self {
            limit,
            total_bytes: 0,
            peak_bytes: 0,
            exceeded: None,
        }
    }

    /// Highest total linear memory seen so far.
    pub(crate) fn peak_bytes(&self) -> u64 {
        self.peak_bytes
    }

    /// The denial recorded when the guest crossed its memory budget.
    pub(crate) fn exceeded(&self) -> Option<MemoryLimitExceeded> {
        self.exceeded
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    /// Grant a grow while the store's total stays within the limit.
    ///
    /// Past it, the guest does not get the `-1` that `memory.grow` returns
    /// on failure: the instruction traps, and the call ends with
    /// [`MemoryLimitExceeded`] in its error. At instantiation (a memory's
    /// initial size, `current` 0) the same denial fails the instantiation,
    /// so a component that declares more initial memory than the job may
    /// have never starts.
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Past the memory's own declared maximum: `-1`, as the wasm spec
        // has it, and nothing charged. The module said how far it may
        // grow, and an allocator probing past that expects `-1`, not a
        // trap (wasmtime asks here before it checks the maximum itself).
        if maximum.is_some_and(|maximum| desired > maximum) {
            return Ok(false);
        }
        let grown = (desired as u64).saturating_sub(current as u64);
        let requested = self.total_bytes.saturating_add(grown);
        if requested > self.limit {
            let exceeded = MemoryLimitExceeded {
                requested,
                limit: self.limit,
            };
            self.exceeded = Some(exceeded);
            // Returning an error (rather than `Ok(false)`) traps at once with
            // a downcastable reason, instead of letting the guest's allocator
            // abort in a way that looks like a panic.
            return Err(exceeded.into());
        }
        self.total_bytes = requested;
        self.peak_bytes = self.peak_bytes.max(requested);
        Ok(true)
    }

    /// A grow this limiter allowed but wasmtime could not do (the pool's
    /// slot is too small, the kernel refused the memory), or one past
    /// what the memory's type can represent. Surfaced as a trap naming
    /// the reason, rather than a `-1` the guest would turn into an
    /// unexplained out-of-memory abort.
    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        Err(error.context("linear memory could not grow"))
    }

    /// Allow tables up to [`MAX_TABLE_ELEMENTS`]. Unlike memory, a denial
    /// here is `Ok(false)`: `table.grow` returns `-1` to the guest, as the
    /// wasm spec has it, and the guest carries on (table limits are a host
    /// protection, not a job budget that outcomes report).
    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

#[cfg(test)]
mod tests {
    use wasmtime::ResourceLimiter;

    use super::*;

    #[test]
    fn limiter_sums_memories_and_records_the_peak() {
        let mut limiter = MemoryLimiter::new(100);
        assert!(limiter.memory_growing(0, 40, None).unwrap());
        assert!(limiter.memory_growing(0, 30, None).unwrap());
        assert!(limiter.memory_growing(40, 70, None).unwrap());
        assert_eq!(limiter.peak_bytes(), 100);
        let err = limiter.memory_growing(70, 71, None).unwrap_err();
        let exceeded = err.downcast_ref::<MemoryLimitExceeded>().unwrap();
        assert_eq!(exceeded.requested, 101);
        assert_eq!(limiter.exceeded(), Some(*exceeded));
    }

    /// A core module whose memory is 1 page at least and at most, and
    /// whose `grow` export runs `memory.grow 1` and returns its result.
    const ONE_PAGE_AT_MOST: &[u8] = &[
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
        0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7f, // type 0: () -> i32
        0x03, 0x02, 0x01, 0x00, // function 0 has type 0
        0x05, 0x04, 0x01, 0x01, 0x01, 0x01, // memory: min 1, max 1
        0x07, 0x08, 0x01, 0x04, b'g', b'r', b'o', b'w', 0x00, 0x00, // export "grow"
        0x0a, 0x08, 0x01, 0x06, 0x00, // code: one body of 6 bytes, no locals
        0x41, 0x01, 0x40, 0x00, 0x0b, // i32.const 1; memory.grow 0; end
    ];

    #[test]
    fn growing_past_the_declared_maximum_returns_minus_one() {
        let engine = wasmtime::Engine::default();
        let module = wasmtime::Module::new(&engine, ONE_PAGE_AT_MOST).unwrap();
        let mut store = wasmtime::Store::new(&engine, MemoryLimiter::new(1 << 20));
        store.limiter(|limiter| limiter);
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
        let grow = instance
            .get_typed_func::<(), i32>(&mut store, "grow")
            .unwrap();
        assert_eq!(
            grow.call(&mut store, ()).unwrap(),
            -1,
            "memory.grow past the maximum"
        );
        assert_eq!(store.data().exceeded(), None);
        assert_eq!(store.data().peak_bytes(), 65_536);
    }

    #[test]
    fn capping_lowers_every_field() {
        let cap = Limits {
            fuel: 1,
            memory_bytes: 2,
            timeout: Duration::from_secs(3),
            output_bytes: 4,
            log_bytes: 5,
        };
        assert_eq!(Limits::default().capped_by(&cap), cap);
    }
}
