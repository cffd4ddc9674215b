//! The bounded per-job log: the guest's `log` calls and its stdout/stderr.
//!
//! One buffer per job, shared by the host `log` import and the WASI output
//! streams. Writes past the byte limit are dropped (and counted) rather than
//! failing the guest: a chatty process is not a broken one, and a log flood
//! must not cost host memory.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// A job's log, cheap to clone; all clones append to the same buffer.
#[derive(Debug, Clone)]
pub struct JobLog {
    inner: Arc<Mutex<LogBuffer>>,
}

#[derive(Debug)]
struct LogBuffer {
    text: Vec<u8>,
    limit: usize,
    dropped_bytes: u64,
}

impl JobLog {
    /// An empty log holding at most `limit` bytes.
    pub fn new(limit: u64) -> Self {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        Self {
            inner: Arc::new(Mutex::new(LogBuffer {
                text: Vec::new(),
                limit,
                dropped_bytes: 0,
            })),
        }
    }

    /// Append raw bytes, keeping what fits.
    pub fn append(&self, bytes: &[u8]) {
        // A poisoned lock only means another writer panicked mid-append; the
        // buffer is still a valid byte vector, so keep using it.
        let mut buffer = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let room = buffer.limit.saturating_sub(buffer.text.len());
        let kept = bytes.len().min(room);
        buffer.text.extend_from_slice(&bytes[..kept]);
        buffer.dropped_bytes += (bytes.len() - kept) as u64;
    }

    /// Append one line with a level tag, e.g. `[info] message`.
    pub fn append_line(&self, level: &str, message: &str) {
        self.append(format!("[{level}] {message}\n").as_bytes());
    }

    /// The log text (lossy UTF-8), with a note when bytes were dropped.
    pub fn contents(&self) -> String {
        let buffer = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let mut text = String::from_utf8_lossy(&buffer.text).into_owned();
        if buffer.dropped_bytes > 0 {
            text.push_str(&format!(
                "\n[wasmproc] log limit of {} bytes reached: {} bytes dropped\n",
                buffer.limit, buffer.dropped_bytes
            ));
        }
        text
    }

    /// Bytes that did not fit.
    pub fn dropped_bytes(&self) -> u64 {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .dropped_bytes
    }
}

/// Largest write permit handed to the guest at once; any positive value
/// works since writes never block.
const WRITE_PERMIT: usize = 64 * 1024;

impl IsTerminal for JobLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for JobLog {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for JobLog {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for JobLog {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for JobLog {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.append(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_past_the_limit_are_dropped_and_counted() {
        let log = JobLog::new(10);
        log.append(b"12345678");
        log.append(b"abcdef");
        assert_eq!(log.dropped_bytes(), 4);
        let text = log.contents();
        assert!(text.starts_with("12345678ab"));
        assert!(text.contains("4 bytes dropped"));
    }
}
