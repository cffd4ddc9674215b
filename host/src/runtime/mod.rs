//! The sandbox: a narrow wrapper around wasmtime that runs process
//! components with fuel, memory and wall-clock limits.
//!
//! It narrows wasmtime to what wasmproc needs: two [`Engine`]s with the
//! pooling allocator, fuel and epoch interruption, which differ only in how
//! many written pages a slot's reset may copy back between jobs
//! ([`MemoryReset`]: 512 KiB for most components, 16 MiB for big
//! interpreters); components compiled once
//! (with an on-disk artifact cache) and pre-instantiated against a fixed
//! linker (WASI p2 without capabilities + our `host` interface); a fresh
//! store and instance per job. It knows nothing of HTTP or storage.
//!
//! - `engine.rs`: engine configuration, each knob with its reason.
//! - `pool.rs`: one engine, linker and epoch ticker per reset strategy.
//! - `epoch.rs`: the ticker thread behind deadlines and yields.
//! - `limits.rs`: per-job [`Limits`] and the memory limiter.
//! - `sandbox.rs`: per-job store state and the host imports.
//! - `job_log.rs`: the bounded job log (log calls, stdout, stderr).
//! - `artifact_cache.rs`: compiled artifacts on disk, HMAC-checked.
//! - `outcome.rs`: [`RunOutcome`], the one classification of how a run ends.
//!
//! # One job in the sandbox
//! [`Runtime::load`] compiles a component once per sha256 (on a blocking
//! thread, bounded by the compile timeout, or from the artifact cache),
//! refuses it if it imports what the linker does not grant, links it into
//! an `InstancePre` (import resolution is paid once, not per job) and calls
//! its `describe()` under the describe limits. [`Runtime::run`] then, per
//! job: a new `Store` with the job's fuel, its memory limiter and an epoch
//! deadline; a new instance from the pooling allocator (a slot of
//! pre-reserved address space, so instantiation is tens of microseconds of
//! bookkeeping, not an `mmap`); `execute(inputs)`; and the classification
//! of how it ended. Nothing survives the job: the store, and with it the
//! instance's memories and tables, is dropped, and the pool slot is reset
//! before its next use, so no job sees another's data.
//!
//! # Why these limits hold
//! - **Fuel** is counted by the compiled code itself; running out traps.
//! - **Memory** growth goes through the limiter, which refuses past the
//!   job's bound; the engine's largest memory caps it again.
//! - **Wall clock**: the epoch ticker (`epoch.rs`) advances every 10 ms;
//!   at each tick a running guest yields to tokio, where the job's timeout
//!   and stop token are checked, and past the deadline the epoch callback
//!   interrupts it outright. A guest in a tight loop therefore stops within
//!   a tick, and never holds an executor thread for longer than that.
//! - **Outputs and logs** are counted as the guest hands them over; an
//!   output over budget fails the job without being stored.

mod artifact_cache;
mod bindings;
mod capabilities;
mod engine;
mod epoch;
mod freed_memory;
mod job_log;
mod limits;
mod outcome;
mod pool;
mod sandbox;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use wasmtime::component::Component;
use wasmtime::{Engine, Store, UpdateDeadline};

pub use capabilities::ImportPolicy;
pub use engine::{EngineSettings, MemoryReset};
pub use epoch::EPOCH_TICK;
pub(crate) use freed_memory::release as release_freed_memory;
pub use job_log::{JobLog, LogSink, LogStream, StreamLog};
pub use limits::{Limits, MemoryLimitExceeded};
pub use outcome::{OutputProblem, OutputValue, ProcessOutput, RunOutcome, RunReport, RunStats};
pub use sandbox::{NoProgress, ProgressSink};

use artifact_cache::ArtifactCache;
use bindings::ProcessPre;
use pool::{SandboxPool, SandboxPools};
use sandbox::SandboxState;

/// Failures to set up the runtime itself.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// wasmtime rejected the engine configuration.
    #[error("could not create the wasmtime engine: {0}")]
    Engine(String),
    /// The host could not be linked (a bug, not an input problem).
    #[error("could not link host functions: {0}")]
    Link(String),
    /// The epoch thread or the artifact directory could not be set up.
    #[error("runtime I/O failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Why a module cannot become a process. Each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The bytes are not WebAssembly at all.
    #[error("not a WebAssembly binary (missing the \\0asm header)")]
    NotWasm,
    /// A core module, not a component.
    #[error(
        "this is a core WebAssembly module, not a component: build for wasm32-wasip2 or wrap it with `wasm-tools component new`"
    )]
    CoreModule,
    /// wasmtime could not compile the component.
    #[error("the component does not compile: {0}")]
    Compile(String),
    /// Compilation took longer than the bound.
    #[error("compiling the component took longer than {0:?}")]
    CompileTimeout(Duration),
    /// The component imports something the sandbox does not provide.
    #[error("the component needs imports the sandbox does not grant: {0}")]
    Imports(String),
    /// The component does not export the `wasmproc:process` world.
    #[error("the component does not implement the wasmproc:process world: {0}")]
    World(String),
    /// `describe()` failed or did not return a JSON object.
    #[error("describe() failed: {0}")]
    Describe(String),
}

/// Default bound of the artifact cache: 2 GiB, room for a few dozen
/// Python or JavaScript components (their artifacts are tens of MiB) and
/// hundreds of Rust or C ones.
pub const DEFAULT_ARTIFACT_CACHE_BYTES: u64 = 2 << 30;

/// Default of [`RuntimeConfig::large_image_from_bytes`]: 8 MiB, above
/// every Rust, C and JavaScript example (at most 1.7 MB) and below the
/// Python ones (19–20 MB).
pub const DEFAULT_LARGE_IMAGE_FROM_BYTES: usize = 8 * 1024 * 1024;

/// Settings of a [`Runtime`].
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Engine sizing (pool slots, largest memory), the same for both pools.
    pub engine: EngineSettings,
    /// Components of at least this many bytes run in the pool whose slots
    /// may copy back up to 16 MiB of written pages after a job
    /// ([`MemoryReset::LargeImage`]), smaller ones in the pool that copies
    /// at most 512 KiB. The size of a component is a proxy for the size of
    /// its memory image: the big ones are interpreters carrying a
    /// pre-initialised heap (Python) that every job writes all over. `0`
    /// puts every component in the large pool, `usize::MAX` none.
    pub large_image_from_bytes: usize,
    /// Where compiled artifacts are cached; `None` disables the cache.
    pub artifact_dir: Option<PathBuf>,
    /// Most bytes the artifact cache keeps on disk (least recently used
    /// artifacts go first).
    pub artifact_cache_bytes: u64,
    /// Longest a compilation may take before the module is rejected.
    pub compile_timeout: Duration,
    /// Budget for the `describe()` call made when loading a module.
    pub describe_limits: Limits,
    /// Imports refused at load on top of those never granted.
    pub imports: ImportPolicy,
    /// Largest description `describe()` may return, in bytes. It is stored
    /// with the process and sent with every `/processes` listing, and the
    /// output budget of jobs does not bound it.
    pub max_description_bytes: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            engine: EngineSettings::default(),
            large_image_from_bytes: DEFAULT_LARGE_IMAGE_FROM_BYTES,
            artifact_dir: None,
            artifact_cache_bytes: DEFAULT_ARTIFACT_CACHE_BYTES,
            // Python and JS components take 2–20 s to compile on 2 cores.
            compile_timeout: Duration::from_secs(120),
            describe_limits: Limits {
                fuel: 10_000_000_000,
                timeout: Duration::from_secs(10),
                ..Limits::default()
            },
            imports: ImportPolicy::default(),
            // Real descriptions are a few KiB; long enums or embedded
            // schemas stay far below this.
            max_description_bytes: 1024 * 1024,
        }
    }
}

/// Runs process components. Cheap to clone; clones share the engines.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RuntimeInner>,
}

struct RuntimeInner {
    /// One engine per memory-reset strategy, each with its linker; a
    /// component is compiled for, and runs in, one of them.
    pools: SandboxPools,
    /// Compiled artifacts on disk; `None` when no directory is configured,
    /// and then every load compiles.
    cache: Option<ArtifactCache>,
    config: RuntimeConfig,
}

/// A compiled, pre-instantiated process component. Cheap to clone.
#[derive(Clone)]
pub struct ProcessModule {
    inner: Arc<ModuleInner>,
}

struct ModuleInner {
    /// Hex SHA-256 of the module bytes, the name of its artifact.
    sha256: String,
    /// Whether the compiled code came from the artifact cache.
    from_cache: bool,
    /// Which pool it was compiled for and runs in.
    reset: MemoryReset,
    /// The component with its imports already resolved against the
    /// linker and its exports type-checked against the world: a job only
    /// allocates and initialises an instance from it.
    pre: ProcessPre<SandboxState>,
    /// What `describe()` returned at load, parsed and size-checked.
    description: serde_json::Value,
}

impl std::fmt::Debug for ProcessModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessModule")
            .field("sha256", &self.inner.sha256)
            .finish_non_exhaustive()
    }
}

impl ProcessModule {
    /// Hex SHA-256 of the module bytes.
    pub fn sha256(&self) -> &str {
        &self.inner.sha256
    }

    /// The process description returned by the module's `describe()`.
    pub fn description(&self) -> &serde_json::Value {
        &self.inner.description
    }

    /// Whether loading it skipped compilation: its artifact was in the
    /// cache (and carried a valid tag). `wasmproc run` reports it.
    pub fn from_cache(&self) -> bool {
        self.inner.from_cache
    }

    /// How its sandboxes' memory is reset between jobs: which pool it
    /// runs in (see [`RuntimeConfig::large_image_from_bytes`]).
    pub fn memory_reset(&self) -> MemoryReset {
        self.inner.reset
    }
}

/// Hex SHA-256 of some bytes: the identity of a module.
pub fn module_sha256(wasm: &[u8]) -> String {
    hex::encode(Sha256::digest(wasm))
}

impl Runtime {
    /// Create both sandbox pools (engines, linkers, epoch tickers) and
    /// open the artifact cache.
    pub fn new(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        let pools = SandboxPools::new(&config.engine)?;
        // Either engine names the artifacts: their code is interchangeable
        // (see `pool.rs`).
        let cache = match &config.artifact_dir {
            Some(dir) => Some(ArtifactCache::open(
                dir,
                &pools.get(MemoryReset::SmallImage).engine,
                config.artifact_cache_bytes,
            )?),
            None => None,
        };
        Ok(Self {
            inner: Arc::new(RuntimeInner {
                pools,
                cache,
                config,
            }),
        })
    }

    /// The pool a component of `bytes` bytes runs in.
    fn reset_for(&self, bytes: usize) -> MemoryReset {
        if bytes >= self.inner.config.large_image_from_bytes {
            MemoryReset::LargeImage
        } else {
            MemoryReset::SmallImage
        }
    }

    /// Compile (or load from the artifact cache), link and describe a
    /// module. Compilation runs on a blocking thread, bounded by the
    /// configured compile timeout (a timed-out compile finishes in the
    /// background and is discarded).
    pub async fn load(&self, wasm: Vec<u8>) -> Result<ProcessModule, LoadError> {
        check_header(&wasm)?;
        let sha256 = module_sha256(&wasm);
        let reset = self.reset_for(wasm.len());
        let runtime = self.clone();
        let hash = sha256.clone();
        let compile = tokio::task::spawn_blocking(move || {
            let compiled = runtime.compile(&wasm, &hash, reset);
            // The module's bytes, the artifact read from the cache and the
            // compiler's scratch are all freed by now: give them back.
            drop(wasm);
            release_freed_memory();
            compiled
        });
        let timeout = self.inner.config.compile_timeout;
        let (component, from_cache) = match tokio::time::timeout(timeout, compile).await {
            Err(_) => return Err(LoadError::CompileTimeout(timeout)),
            Ok(Err(join)) => {
                return Err(LoadError::Compile(format!("compiler task failed: {join}")));
            }
            Ok(Ok(result)) => result?,
        };
        let pool = self.inner.pools.get(reset);
        let refused = self
            .inner
            .config
            .imports
            .refused_imports(&pool.engine, &component);
        if !refused.is_empty() {
            return Err(LoadError::Imports(capabilities::refusal_message(&refused)));
        }
        let instance_pre = pool
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Imports(format!("{e:#}")))?;
        let pre = ProcessPre::new(instance_pre).map_err(|e| LoadError::World(format!("{e:#}")))?;
        let description = self.describe_with(pool, &pre).await?;
        Ok(ProcessModule {
            inner: Arc::new(ModuleInner {
                sha256,
                from_cache,
                reset,
                pre,
                description,
            }),
        })
    }

    /// Compile `wasm` for the pool of `reset`, using and filling the
    /// artifact cache; `true` with the component when it came from the
    /// cache.
    fn compile(
        &self,
        wasm: &[u8],
        sha256: &str,
        reset: MemoryReset,
    ) -> Result<(Component, bool), LoadError> {
        let engine = &self.inner.pools.get(reset).engine;
        if let Some(cache) = &self.inner.cache {
            let cached = cache.load(engine, sha256);
            crate::telemetry::metrics::artifact_cache(cached.is_some());
            if let Some(component) = cached {
                return Ok((component, true));
            }
        }
        let component =
            Component::new(engine, wasm).map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        if let Some(cache) = &self.inner.cache {
            cache.store(sha256, &component);
        }
        Ok((component, false))
    }

    /// Call `describe()` in a sandbox of its own under the describe limits
    /// (a module's first run happens at deploy, so a hostile `describe`
    /// meets fuel, memory and time bounds like a job's), then check
    /// the answer is a JSON object within `max_description_bytes`.
    async fn describe_with(
        &self,
        pool: &SandboxPool,
        pre: &ProcessPre<SandboxState>,
    ) -> Result<serde_json::Value, LoadError> {
        let limits = self.inner.config.describe_limits;
        let mut store = Self::new_store(
            &pool.engine,
            &limits,
            JobLog::new(limits.log_bytes),
            Arc::new(NoProgress),
        );
        let call = async {
            let instance = pre.instantiate_async(&mut store).await?;
            instance.call_describe(&mut store).await
        };
        let text = match tokio::time::timeout(limits.timeout, call).await {
            Err(_) => {
                return Err(LoadError::Describe(format!(
                    "took longer than {:?}",
                    limits.timeout
                )));
            }
            Ok(Err(e)) => {
                let exceeded = store.data().limiter.exceeded();
                let outcome = RunOutcome::from_call_error(&e, &limits, exceeded);
                return Err(LoadError::Describe(
                    outcome.failure_reason().unwrap_or_default(),
                ));
            }
            Ok(Ok(text)) => text,
        };
        let max = self.inner.config.max_description_bytes;
        if text.len() > max {
            return Err(LoadError::Describe(format!(
                "returned a description of {} bytes, larger than the limit of {max} bytes",
                text.len()
            )));
        }
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(value @ serde_json::Value::Object(_)) => Ok(value),
            Ok(_) => Err(LoadError::Describe("did not return a JSON object".into())),
            Err(e) => Err(LoadError::Describe(format!(
                "did not return valid JSON: {e}"
            ))),
        }
    }

    /// A fresh store for one call: fuel, memory limiter, epoch deadline.
    ///
    /// Every epoch tick the guest yields to the async executor, so a timer
    /// or a cancellation around the call takes effect within a tick even for
    /// a guest in a tight loop; past the wall-clock deadline the callback
    /// interrupts the guest as a second line of defence.
    ///
    /// What the guest sees at each limit: out of fuel, the next fuel check
    /// (at function entries and loop back-edges) traps with `OutOfFuel`;
    /// past the deadline, the next epoch check traps with `Interrupt`, or
    /// the timer drops the call's future first, while the guest is
    /// suspended at a yield. Neither can be caught or handled by the
    /// guest. The deadline starts one tick ahead: left at the store's
    /// default of 0, which has always passed, the guest would enter the
    /// callback at its very first check.
    fn new_store(
        engine: &Engine,
        limits: &Limits,
        log: JobLog,
        progress: Arc<dyn ProgressSink>,
    ) -> Store<SandboxState> {
        let mut store = Store::new(
            engine,
            SandboxState::new(limits.memory_bytes, log, progress),
        );
        store.limiter(|state| &mut state.limiter);
        // Fuel is enabled on every engine we build, so this cannot fail.
        let _ = store.set_fuel(limits.fuel);
        let deadline = Instant::now() + limits.timeout;
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store.set_epoch_deadline(1);
        store
    }

    /// Run one job: instantiate a fresh sandbox, call `execute(inputs)`,
    /// and classify how it ended. Never panics on guest behaviour.
    ///
    /// The guest's log lines go into `log`, which the caller makes: with
    /// `JobLog::new(limits.log_bytes)` for a plain job, or with a
    /// [`LogSink`] that shows lines while the guest runs (the sink is
    /// flushed before this returns). The log's own byte limit applies, not
    /// `limits.log_bytes`.
    pub async fn run(
        &self,
        module: &ProcessModule,
        inputs: &str,
        limits: &Limits,
        progress: Arc<dyn ProgressSink>,
        cancel: &CancellationToken,
        log: JobLog,
    ) -> RunReport {
        let started = Instant::now();
        let engine = &self.inner.pools.get(module.inner.reset).engine;
        let mut store = Self::new_store(engine, limits, log.clone(), progress);
        // `biased`: the cancellation is polled before the call, so a
        // dismissed job stops at its next yield (within a tick) even if the
        // call itself would be ready. Both the cancellation and the timeout
        // end the call by dropping its future, which drops the guest where
        // it stood; the store stays readable for the statistics below.
        let result = {
            let call = async {
                let instantiating = Instant::now();
                let instance = module.inner.pre.instantiate_async(&mut store).await?;
                crate::telemetry::metrics::sandbox_instantiated(instantiating.elapsed());
                instance.call_execute(&mut store, inputs).await
            };
            tokio::select! {
                biased;
                () = cancel.cancelled() => None,
                timed = tokio::time::timeout(limits.timeout, call) => Some(timed),
            }
        };
        let duration = started.elapsed();
        let stats = RunStats {
            fuel_consumed: limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0)),
            peak_memory_bytes: store.data().limiter.peak_bytes(),
            duration,
        };
        let outcome = match result {
            None => RunOutcome::Cancelled,
            Some(Err(_elapsed)) => RunOutcome::Timeout {
                limit: limits.timeout,
            },
            Some(Ok(Err(error))) => {
                RunOutcome::from_call_error(&error, limits, store.data().limiter.exceeded())
            }
            Some(Ok(Ok(Err(e)))) => RunOutcome::ProcessError {
                code: e.code,
                message: e.message,
            },
            Some(Ok(Ok(Ok(outputs)))) => convert_outputs(outputs, limits),
        };
        log.flush_sink();
        RunReport {
            outcome,
            stats,
            log: log.contents(),
        }
    }
}

/// Check the size budget, then turn the guest's outputs into host values.
///
/// The budget is checked on the sizes first, before anything is parsed or
/// copied: a guest that returns a gigabyte fails for its size, and the
/// host does no work on it. Then each output: a media type must be one a
/// `Content-Type` header can carry (it is served in one), and a `json`
/// value must parse (it is stored and served as JSON). The first problem
/// fails the whole run as `InvalidOutput`, naming the output.
fn convert_outputs(
    outputs: Vec<bindings::wasmproc::process::types::Output>,
    limits: &Limits,
) -> RunOutcome {
    use bindings::wasmproc::process::types::Value;
    let size: u64 = outputs
        .iter()
        .map(|o| match &o.value {
            Value::Json(text) => text.len() as u64,
            Value::Bytes(bytes) => bytes.len() as u64,
        })
        .sum();
    if size > limits.output_bytes {
        return RunOutcome::OutputTooLarge {
            size,
            limit: limits.output_bytes,
        };
    }
    let mut converted = Vec::with_capacity(outputs.len());
    for output in outputs {
        let invalid = |problem| RunOutcome::InvalidOutput {
            output: bounded(&output.id),
            problem,
        };
        if let Some(media_type) = &output.media_type
            && !is_media_type(media_type)
        {
            return invalid(OutputProblem::MalformedMediaType {
                media_type: bounded(media_type),
            });
        }
        let (value, default_type) = match output.value {
            Value::Json(text) => match serde_json::from_str(&text) {
                Ok(value) => (OutputValue::Json(value), "application/json"),
                Err(e) => {
                    return invalid(OutputProblem::NotJson {
                        reason: e.to_string(),
                    });
                }
            },
            Value::Bytes(bytes) => (OutputValue::Bytes(bytes), "application/octet-stream"),
        };
        converted.push(ProcessOutput {
            id: output.id,
            media_type: output.media_type.unwrap_or_else(|| default_type.into()),
            value,
        });
    }
    RunOutcome::Success { outputs: converted }
}

/// Longest guest-given text (an output id, a media type) quoted in a
/// failure reason: a guest must not make a megabyte-long job message.
const MAX_QUOTED_GUEST_TEXT: usize = 128;

/// `text` cut to [`MAX_QUOTED_GUEST_TEXT`] bytes on a character boundary.
fn bounded(text: &str) -> String {
    if text.len() <= MAX_QUOTED_GUEST_TEXT {
        return text.to_owned();
    }
    let mut end = MAX_QUOTED_GUEST_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Whether `text` is a media type as a `Content-Type` header carries it
/// (RFC 9110): `type/subtype` of token characters, then optional
/// `; name=value` parameters of visible ASCII (no control characters, so no
/// header injection).
fn is_media_type(text: &str) -> bool {
    let token = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    let mut parts = text.split(';');
    let essence = parts.next().unwrap_or("").trim();
    let valid_essence = essence
        .split_once('/')
        .is_some_and(|(kind, subtype)| token(kind) && token(subtype));
    valid_essence
        && text.len() <= 255
        && parts.all(|p| {
            p.trim().split_once('=').is_some_and(|(name, value)| {
                token(name.trim()) && value.bytes().all(|b| b == b' ' || b.is_ascii_graphic())
            })
        })
}

/// Tell components, core modules and non-wasm apart by their header:
/// `\0asm`, then a version (1 for core modules) and a layer (1 for components).
fn check_header(wasm: &[u8]) -> Result<(), LoadError> {
    match wasm {
        [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, ..] => Err(LoadError::CoreModule),
        [0x00, 0x61, 0x73, 0x6d, _, _, 0x01, 0x00, ..] => Ok(()),
        [0x00, 0x61, 0x73, 0x6d, ..] => {
            Err(LoadError::Compile("unknown WebAssembly version".into()))
        }
        _ => Err(LoadError::NotWasm),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_are_checked_as_header_values() {
        for valid in [
            "application/json",
            "image/png",
            "application/geo+json",
            "text/plain; charset=utf-8",
            "multipart/related; boundary=\"a b\"",
        ] {
            assert!(is_media_type(valid), "{valid}");
        }
        for invalid in [
            "",
            "json",
            "text/",
            "/plain",
            "text/html\r\nSet-Cookie: a=b",
            "text/html; charset",
            "text /html",
            "tëxt/plain",
        ] {
            assert!(!is_media_type(invalid), "{invalid:?}");
        }
        assert!(!is_media_type(&format!("text/{}", "a".repeat(300))));
    }

    #[test]
    fn quoted_guest_text_is_bounded_on_a_character_boundary() {
        assert_eq!(bounded("short"), "short");
        let long = bounded(&"é".repeat(1000));
        assert!(
            long.len() <= MAX_QUOTED_GUEST_TEXT + "…".len(),
            "{}",
            long.len()
        );
        assert!(long.ends_with('…'));
    }
}
