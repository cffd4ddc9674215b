//! One job's sandbox: the store state and the host side of the imports.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::wasmproc::process::host::{Host, Level};
use super::job_log::{JobLog, LogStream};
use super::limits::MemoryLimiter;

/// Receives progress reports from a running guest.
///
/// Called synchronously from inside the guest's call, on the thread that
/// runs it: an implementation must return quickly and never block (record
/// the value and let another task write it out). A guest may report in a
/// tight loop; throttling is the sink's business.
pub trait ProgressSink: Send + Sync {
    /// The guest reported `percent` (0–100) and an optional message.
    fn progress(&self, percent: u8, message: Option<String>);
}

/// Discards progress reports.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn progress(&self, _percent: u8, _message: Option<String>) {}
}

/// The data of one job's store: WASI with no capabilities but clocks and
/// randomness, the memory limiter, the job log and the progress sink.
pub(crate) struct SandboxState {
    /// The WASI context: stdout/stderr into the job log, no network, no
    /// directories, no environment.
    wasi: WasiCtx,
    /// The WASI resources the guest holds handles to (streams, pollables,
    /// descriptors), dropped with the store at the end of the job.
    table: ResourceTable,
    /// Attached with `Store::limiter`; read after the call for the peak
    /// and for a recorded denial (see `RunOutcome::from_call_error`).
    pub(crate) limiter: MemoryLimiter,
    /// Where `host.log` lines go (the WASI streams hold clones of it).
    log: JobLog,
    /// Where `host.progress` reports go.
    progress: Arc<dyn ProgressSink>,
}

impl SandboxState {
    /// The state of one fresh store: a WASI context with no capabilities
    /// but clocks and randomness, a limiter with `memory_limit` bytes, and
    /// the job's log and progress sink.
    pub(crate) fn new(memory_limit: u64, log: JobLog, progress: Arc<dyn ProgressSink>) -> Self {
        // `WasiCtxBuilder::new()` already grants no directories, no
        // environment, no arguments and a closed stdin. Network access is
        // switched off explicitly so a change of default cannot open it.
        let wasi = WasiCtx::builder()
            .stdout(log.stream(LogStream::Stdout))
            .stderr(log.stream(LogStream::Stderr))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(memory_limit),
            log,
            progress,
        }
    }
}

impl WasiView for SandboxState {
    /// How wasmtime-wasi's host functions reach this job's context and
    /// resource table.
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl Host for SandboxState {
    /// A guest `log` call: one timestamped line in the job log, tagged
    /// with the level. The message was already copied out of the guest's
    /// memory, so its size is bounded by the guest's memory limit; the log
    /// keeps what fits its own byte limit and counts the rest. Neither
    /// fails nor blocks, whatever the guest sends.
    fn log(&mut self, level: Level, message: String) {
        let level = match level {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        self.log.append_line(level, &message);
    }

    /// A guest `progress` call, clamped to 100 (the WIT type is a `u8`,
    /// so 255 is possible) and handed to the job's sink.
    fn progress(&mut self, percent: u8, message: Option<String>) {
        self.progress.progress(percent.min(100), message);
    }
}

/// The `types` interface declares types only, no functions; the bindings
/// still ask for its (empty) host trait.
impl super::bindings::wasmproc::process::types::Host for SandboxState {}
