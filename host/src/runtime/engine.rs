//! The one wasmtime [`Engine`] of a runtime, and why each knob is set.

use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::RuntimeError;

/// Sizing of the engine, fixed for its lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineSettings {
    /// Sandboxes that can be alive at once (running jobs plus `describe`
    /// calls at deploy). The pooling allocator reserves slots for this many.
    pub max_instances: u32,
    /// The largest linear memory any single job may get, in bytes: the
    /// server-wide cap on per-job memory limits.
    pub max_memory_bytes: u64,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            // Each slot reserves virtual address space (see below), not RAM;
            // 128 concurrent sandboxes is far above what 2–16 cores run.
            max_instances: 128,
            max_memory_bytes: 1024 * 1024 * 1024,
        }
    }
}

/// Core instances one component may contain. A componentize-py (Python)
/// component has 38; leave room for bigger toolchains.
const MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 64;
/// Average core instances per sandbox the pool provisions for: Rust and C
/// components have 1–3, Python 38, so 16 on average is generous.
const CORE_INSTANCES_PER_SANDBOX: u32 = 16;
/// Linear memories and tables provisioned per sandbox, on average.
const MEMORIES_PER_SANDBOX: u32 = 4;
/// The wasm stack: deep enough for real recursion, small enough that a
/// runaway native recursion traps quickly (Rust guests keep most of their
/// stack in linear memory anyway, where the memory budget bounds it).
const MAX_WASM_STACK: usize = 1024 * 1024;
/// The host stack each async call runs on; must exceed `MAX_WASM_STACK`
/// plus room for host functions called from wasm.
const ASYNC_STACK: usize = 2 * 1024 * 1024;
/// How a pool slot's linear memory is put back to the module's initial
/// contents before its next job. Each runtime has one engine (one pool) per
/// variant, and a component runs in the one its size picks (see
/// `RuntimeConfig::large_image_from_bytes`).
///
/// On Linux 6.7 and later both variants ask the kernel, with one
/// `PAGEMAP_SCAN` call, which pages the last job wrote, copy those back
/// from the module's memory image and release the rest. They differ in how
/// many written pages a slot may copy back and keep (its `keep_resident`).
/// A written page past that budget is released instead, maps the image
/// again, and costs the next job a copy-on-write fault, each fault a
/// TLB-shootdown interrupt to the other cores. Where the scan is not
/// available (older kernels, other systems), wasmtime copies the first
/// `keep_resident` bytes back whole and releases the rest: cheap for a
/// small budget, and for a Python interpreter still far cheaper than
/// faulting its heap back in every job.
///
/// The scan only reports every run of written pages because we build
/// wasmtime 48 with `MAX_REGIONS` raised from 32 to 1024
/// (`vendor/README.md`): a Python job leaves a few hundred scattered runs,
/// and with 32 every page past the 32nd run was released and faulted in
/// again. Until the patch, the large pool therefore skipped the scan and
/// copied its 16 MiB back whole after every job; the scan with 1024 runs
/// halves hello-world-py's server CPU per request (BENCHMARKS.md, "Where
/// the Python guest's CPU went").
///
/// Both give every job the module's pristine memory: the variant only
/// decides which pages a reset copies and which it hands back to the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryReset {
    /// For most components (Rust, C, JavaScript), whose jobs write a few
    /// pages: at most `SMALL_IMAGE_KEEP_RESIDENT` copied back.
    SmallImage,
    /// For interpreters carrying a big pre-initialised heap
    /// (componentize-py's Python, a 12.6 MB image): up to
    /// `LARGE_IMAGE_KEEP_RESIDENT`. One pool with this budget for every
    /// component would be the same on 6.7+, but without the scan it would
    /// copy a small component's whole memory every job: measured on the
    /// Rust hello-world, 0.197 → 0.289 ms per request. Hence two pools.
    LargeImage,
}

/// Bytes of a linear memory's written pages a [`MemoryReset::SmallImage`]
/// slot copies back (instead of releasing them with `madvise`) when it is
/// reused. With `PAGEMAP_SCAN` only the pages a job actually wrote are
/// copied, so a small job's reset costs a few µs and no syscall that
/// unmaps pages: on a multi-threaded server each unmapping `madvise`
/// sends a TLB-shootdown interrupt to every other core running the
/// process, which measured as the largest single cost of a sync request.
/// This is also the most RAM an idle warm slot keeps.
const SMALL_IMAGE_KEEP_RESIDENT: usize = 512 * 1024;
/// The same for tables (function tables are small).
const TABLE_KEEP_RESIDENT: usize = 64 * 1024;
/// The same for a [`MemoryReset::LargeImage`] slot: a componentize-py
/// interpreter's image and the heap a job grows after it, with room to
/// spare (without the scan, 16 and 32 MiB measured the same throughput).
/// This is the most RAM an idle warm slot of this pool keeps.
const LARGE_IMAGE_KEEP_RESIDENT: usize = 16 * 1024 * 1024;

/// Build the engine: Cranelift, fuel and epochs compiled into the code,
/// async calls (so a wall-clock timeout can drop a guest blocked in a host
/// call), and the pooling allocator for microsecond instantiation, its
/// slots reset by `reset`.
pub(crate) fn build_engine(
    settings: &EngineSettings,
    reset: MemoryReset,
) -> Result<Engine, RuntimeError> {
    let mut config = Config::new();
    // Fuel: a deterministic instruction budget per job.
    config.consume_fuel(true);
    // Epochs: cheap wall-clock deadlines and cooperative yields; the ticker
    // thread in `epoch.rs` advances them.
    config.epoch_interruption(true);
    config.max_wasm_stack(MAX_WASM_STACK);
    config.async_stack_size(ASYNC_STACK);
    // Our WIT is synchronous; without component-model concurrency each
    // instantiation is ~1.4 µs cheaper.
    config.concurrency_support(false);

    let instances = settings.max_instances.max(1);
    let max_memory = usize::try_from(settings.max_memory_bytes).unwrap_or(usize::MAX);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(instances)
        .total_core_instances(instances * CORE_INSTANCES_PER_SANDBOX)
        .max_core_instances_per_component(MAX_CORE_INSTANCES_PER_COMPONENT)
        .total_memories(instances * MEMORIES_PER_SANDBOX)
        .total_tables(instances * MEMORIES_PER_SANDBOX)
        // One async stack per sandbox alive at once.
        .total_stacks(instances)
        // The pool's slot must be at least the largest per-job memory cap,
        // or the slot limit fires first with a vaguer error than our limiter.
        .max_memory_size(max_memory)
        .table_keep_resident(TABLE_KEEP_RESIDENT);
    // Reset reused slots by copying only their written pages, up to the
    // variant's budget; `Auto` falls back to copying the first
    // `keep_resident` bytes whole on kernels older than 6.7 and on other
    // systems (see `MemoryReset`).
    let keep_resident = match reset {
        MemoryReset::SmallImage => SMALL_IMAGE_KEEP_RESIDENT,
        MemoryReset::LargeImage => LARGE_IMAGE_KEEP_RESIDENT,
    };
    pool.pagemap_scan(Enabled::Auto)
        .linear_memory_keep_resident(keep_resident);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));

    Engine::new(&config).map_err(|e| RuntimeError::Engine(format!("{e:#}")))
}
