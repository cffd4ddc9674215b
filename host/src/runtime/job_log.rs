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
///
/// Every line starts with the UTC time it was written (RFC 3339,
/// milliseconds) and its source: `[stdout]`, `[stderr]`, or the level of a
/// `host.log` call (`[info]`, …). A guest writing to stdout and stderr in
/// turn gets its partial lines broken where the source changes, so each
/// line keeps one source and one timestamp.
#[derive(Debug, Clone)]
pub struct JobLog {
    inner: Arc<Mutex<LogBuffer>>,
}

/// Which guest stream a write came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    /// WASI stdout.
    Stdout,
    /// WASI stderr.
    Stderr,
}

impl LogStream {
    fn tag(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        }
    }
}

#[derive(Debug)]
struct LogBuffer {
    text: Vec<u8>,
    limit: usize,
    dropped_bytes: u64,
    /// The stream whose line is open (no newline yet), if any.
    open_line: Option<LogStream>,
}

impl LogBuffer {
    /// Keep what fits of `bytes`, count the rest.
    fn push(&mut self, bytes: &[u8]) {
        let room = self.limit.saturating_sub(self.text.len());
        let kept = bytes.len().min(room);
        self.text.extend_from_slice(&bytes[..kept]);
        self.dropped_bytes += (bytes.len() - kept) as u64;
    }

    /// Close a line left open by a stream (a write without a newline).
    fn close_open_line(&mut self) {
        if self.open_line.take().is_some() {
            self.push(b"\n");
        }
    }
}

/// The time prefix of a line: UTC, milliseconds.
fn timestamp() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
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
                open_line: None,
            })),
        }
    }

    fn buffer(&self) -> std::sync::MutexGuard<'_, LogBuffer> {
        // A poisoned lock only means another writer panicked mid-append; the
        // buffer is still a valid byte vector, so keep using it.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Append raw bytes, keeping what fits (no timestamp, no tag).
    pub fn append(&self, bytes: &[u8]) {
        self.buffer().push(bytes);
    }

    /// Append one line with a time and a level tag, e.g.
    /// `2026-01-02T03:04:05.678Z [info] message`.
    pub fn append_line(&self, level: &str, message: &str) {
        let mut buffer = self.buffer();
        buffer.close_open_line();
        let line = format!("{} [{level}] {message}\n", timestamp());
        buffer.push(line.as_bytes());
    }

    /// Append what a guest wrote to `stream`: each new line gets a time
    /// and the stream's tag.
    pub fn append_stream(&self, stream: LogStream, mut bytes: &[u8]) {
        let mut buffer = self.buffer();
        if buffer.open_line.is_some_and(|open| open != stream) {
            buffer.close_open_line();
        }
        while !bytes.is_empty() {
            if buffer.open_line.is_none() {
                let prefix = format!("{} [{}] ", timestamp(), stream.tag());
                buffer.push(prefix.as_bytes());
                buffer.open_line = Some(stream);
            }
            let (line, rest) = match bytes.iter().position(|b| *b == b'\n') {
                Some(end) => bytes.split_at(end + 1),
                None => (bytes, &[][..]),
            };
            buffer.push(line);
            if line.ends_with(b"\n") {
                buffer.open_line = None;
            }
            bytes = rest;
        }
    }

    /// A writer for one of the guest's output streams (WASI stdout or
    /// stderr), appending to this log.
    pub fn stream(&self, stream: LogStream) -> StreamLog {
        StreamLog {
            log: self.clone(),
            stream,
        }
    }

    /// The log text (lossy UTF-8), with a note when bytes were dropped.
    pub fn contents(&self) -> String {
        let buffer = self.buffer();
        let mut text = String::from_utf8_lossy(&buffer.text).into_owned();
        if buffer.open_line.is_some() {
            text.push('\n');
        }
        if buffer.dropped_bytes > 0 {
            text.push_str(&format!(
                "{} [wasmproc] log limit of {} bytes reached: {} bytes dropped\n",
                timestamp(),
                buffer.limit,
                buffer.dropped_bytes
            ));
        }
        text
    }

    /// Bytes that did not fit.
    pub fn dropped_bytes(&self) -> u64 {
        self.buffer().dropped_bytes
    }
}

/// One guest output stream (stdout or stderr) writing into a [`JobLog`].
/// Writes never block and never fail: past the limit they are dropped.
#[derive(Debug, Clone)]
pub struct StreamLog {
    log: JobLog,
    stream: LogStream,
}

/// Largest write permit handed to the guest at once; any positive value
/// works since writes never block.
const WRITE_PERMIT: usize = 64 * 1024;

impl IsTerminal for StreamLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for StreamLog {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for StreamLog {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.log.append_stream(self.stream, &bytes);
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
impl Pollable for StreamLog {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for StreamLog {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.log.append_stream(self.stream, buf);
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

    #[test]
    fn every_line_has_a_time_and_its_source() {
        let log = JobLog::new(4096);
        log.append_stream(LogStream::Stdout, b"one\ntw");
        log.append_stream(LogStream::Stdout, b"o\n");
        log.append_stream(LogStream::Stderr, b"partial");
        log.append_line("warn", "careful");
        log.append_stream(LogStream::Stdout, b"last");
        let text = log.contents();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        let tails: Vec<&str> = lines
            .iter()
            .map(|l| l.split_once(' ').expect("time, then the rest").1)
            .collect();
        assert_eq!(
            tails,
            [
                "[stdout] one",
                "[stdout] two",
                "[stderr] partial",
                "[warn] careful",
                "[stdout] last"
            ]
        );
        for line in &lines {
            let time = line.split(' ').next().unwrap();
            assert!(chrono::DateTime::parse_from_rfc3339(time).is_ok(), "{line}");
        }
    }
}
