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
/// strategy, and a component runs in the pool that suits it (see
/// `RuntimeConfig::whole_memory_reset_from_bytes`): on the guests it does
/// not suit, each strategy cost 1.5–2.2× the other's CPU per request.
///
/// Both give every job the module's pristine memory: the strategy only
/// decides which pages a reset copies and which it hands back to the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryReset {
    /// Copy back only the pages jobs wrote, found with `PAGEMAP_SCAN`, and
    /// release the rest (see `MEMORY_KEEP_RESIDENT`). Cheapest for small
    /// memories, and for guests whose writes stay in a few runs of pages
    /// (Rust, C, JavaScript).
    DirtyPages,
    /// Copy the whole memory image back (and zero what follows it, up to
    /// `WHOLE_RESET_KEEP_RESIDENT`) after every job, without asking the
    /// kernel which pages were written. For interpreters with big
    /// pre-initialised heaps (componentize-py's Python, a 12.6 MB image):
    /// a Python job writes a few hundred pages scattered over the whole
    /// image, more runs than one `PAGEMAP_SCAN` call reports (wasmtime 48
    /// asks for at most 32), so under `DirtyPages` every page past the
    /// 32nd run went back to the image and the next job took a
    /// copy-on-write fault on it, each fault a TLB-shootdown interrupt to
    /// the other core. Measured on hello-world-py at concurrency 16:
    /// 3.8 ms of server CPU per request under `DirtyPages`, 1.8 ms under
    /// this (BENCHMARKS.md). On a Rust hello-world the same change costs
    /// 0.2 → 0.29 ms, hence two pools.
    WholeMemory,
}

/// Bytes of a linear memory's dirty pages reset by copying (instead of
/// `madvise`) when its pool slot is reused. With `PAGEMAP_SCAN` only the
/// pages a job actually wrote are copied, so a small job's reset costs a
/// few µs and no syscall that unmaps pages: on a multi-threaded server each
/// unmapping `madvise` sends a TLB-shootdown interrupt to every other core
/// running the process, which measured as the largest single cost of a
/// sync request. This is also the most RAM an idle warm slot keeps.
const MEMORY_KEEP_RESIDENT: usize = 512 * 1024;
/// The same for tables (function tables are small).
const TABLE_KEEP_RESIDENT: usize = 64 * 1024;
/// Bytes of a linear memory reset by copying under
/// [`MemoryReset::WholeMemory`]: the image and the heap a job grew after it,
/// up to this; anything beyond goes back to the kernel. 16 MiB covers a
/// componentize-py interpreter with room to spare (the same throughput was
/// measured at 16 and 32 MiB), and is also what a warm idle slot of this
/// pool keeps in RAM.
const WHOLE_RESET_KEEP_RESIDENT: usize = 16 * 1024 * 1024;

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
    match reset {
        // Reset reused slots by copying only their dirty pages (see
        // `MEMORY_KEEP_RESIDENT`); `Auto` falls back to `madvise` on kernels
        // older than 6.7 and on other systems.
        MemoryReset::DirtyPages => pool
            .pagemap_scan(Enabled::Auto)
            .linear_memory_keep_resident(MEMORY_KEEP_RESIDENT),
        // Without the scan, wasmtime copies the first `keep_resident` bytes
        // back from the image (zeroing past it) and releases the rest.
        MemoryReset::WholeMemory => pool
            .pagemap_scan(Enabled::No)
            .linear_memory_keep_resident(WHOLE_RESET_KEEP_RESIDENT),
    };
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));

    Engine::new(&config).map_err(|e| RuntimeError::Engine(format!("{e:#}")))
}
