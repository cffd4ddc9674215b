//! One job's sandbox: the store state and the host side of the imports.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::wasmproc::process::host::{Host, Level};
use super::job_log::{JobLog, LogStream};
use super::limits::MemoryLimiter;

/// Receives progress reports from a running guest.
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
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    log: JobLog,
    progress: Arc<dyn ProgressSink>,
}

impl SandboxState {
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
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl Host for SandboxState {
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

    fn progress(&mut self, percent: u8, message: Option<String>) {
        self.progress.progress(percent.min(100), message);
    }
}

impl super::bindings::wasmproc::process::types::Host for SandboxState {}
