//! The runtime's sandbox pools: one wasmtime engine per
//! [`MemoryReset`] strategy, each with its own linker and epoch ticker.
//!
//! A compiled component belongs to the engine that compiled it, and an
//! engine's pooling allocator resets every slot the same way, so choosing
//! how a component's memory is reset between jobs means choosing its
//! engine when it is loaded. The two engines are configured identically
//! apart from the reset (same fuel, epochs, stack, limits and compiler
//! settings), so they produce interchangeable artifacts: one artifact cache
//! serves both (a unit test below checks their compatibility hashes match).

use wasmtime::Engine;
use wasmtime::component::Linker;

use super::RuntimeError;
use super::bindings::Process;
use super::engine::{self, EngineSettings, MemoryReset};
use super::epoch::EpochTicker;
use super::sandbox::SandboxState;

/// An engine, the linker built for it, and the thread advancing its epoch.
pub(crate) struct SandboxPool {
    /// Every component of this pool is compiled for it; its settings are
    /// fixed for its lifetime.
    pub(crate) engine: Engine,
    /// WASI p2 (async) plus our `host` interface, built once. Every
    /// component is pre-instantiated against it at load, so a missing or
    /// mistyped import fails the deploy, never a job.
    pub(crate) linker: Linker<SandboxState>,
    /// Declared last: dropped after the engine handle above is released.
    _ticker: EpochTicker,
}

impl SandboxPool {
    /// Build the engine for `reset`, link the host functions into it and
    /// start its epoch ticker.
    ///
    /// WASI is linked in its async form: with the async exports, a guest
    /// blocked in a WASI call (a `sleep`, a poll) is a pending future that
    /// the job's timeout can drop, where a synchronous host call would
    /// hold the thread until it returned.
    fn new(settings: &EngineSettings, reset: MemoryReset) -> Result<Self, RuntimeError> {
        let engine = engine::build_engine(settings, reset)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| RuntimeError::Link(format!("{e:#}")))?;
        Process::add_to_linker::<_, wasmtime::component::HasSelf<_>>(&mut linker, |s| s)
            .map_err(|e| RuntimeError::Link(format!("{e:#}")))?;
        let ticker = EpochTicker::start(&engine)?;
        Ok(Self {
            engine,
            linker,
            _ticker: ticker,
        })
    }
}

/// Both pools of a runtime.
pub(crate) struct SandboxPools {
    /// For components below the large-image threshold: most of them.
    small_image: SandboxPool,
    /// For components at or above it: big interpreters.
    large_image: SandboxPool,
}

impl SandboxPools {
    /// Both engines, sized alike by `settings`. Each reserves address space
    /// for `settings.max_instances` sandboxes (reservations, not RAM), so
    /// either kind of component can use every slot.
    pub(crate) fn new(settings: &EngineSettings) -> Result<Self, RuntimeError> {
        Ok(Self {
            small_image: SandboxPool::new(settings, MemoryReset::SmallImage)?,
            large_image: SandboxPool::new(settings, MemoryReset::LargeImage)?,
        })
    }

    /// The pool whose slots are reset by `reset`.
    pub(crate) fn get(&self, reset: MemoryReset) -> &SandboxPool {
        match reset {
            MemoryReset::SmallImage => &self.small_image,
            MemoryReset::LargeImage => &self.large_image,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The artifact cache names artifacts by one engine's compatibility
    /// hash and loads them into either engine: that is only sound if the
    /// reset strategy is not part of what makes code compatible.
    #[test]
    fn both_pools_accept_the_same_artifacts() {
        let settings = EngineSettings {
            max_instances: 2,
            ..EngineSettings::default()
        };
        let pools = SandboxPools::new(&settings).expect("pools");
        let hash = |reset| {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            pools
                .get(reset)
                .engine
                .precompile_compatibility_hash()
                .hash(&mut hasher);
            hasher.finish()
        };
        assert_eq!(hash(MemoryReset::SmallImage), hash(MemoryReset::LargeImage));
    }
}
