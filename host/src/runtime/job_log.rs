//! The bounded per-job log: the guest's `log` calls and its stdout/stderr.
//!
//! One buffer per job, shared by the host `log` import and the WASI output
//! streams. Writes past the byte limit are dropped (and counted) rather than
//! failing the guest: a chatty process is not a broken one, and a log flood
//! must not cost host memory.
//!
//! A log can also hand each line to a [`LogSink`] the moment the line is
//! complete (`wasmproc run --show-log` prints them as the guest writes
//! them). The server's logs have no sink, so its cost there is one branch
//! per write.

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
    /// The source tag its lines carry: `[stdout]` or `[stderr]`.
    fn tag(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        }
    }
}

/// Receives a job's log lines as they are completed.
///
/// Called with the log's lock held, from the thread running the guest, so
/// lines arrive in log order and a slow sink slows that guest (a sink that
/// writes to a terminal is fine; a network sink would want a queue).
pub trait LogSink: Send + Sync {
    /// One line as stored (time, source tag, text), without its newline.
    fn line(&self, line: &str);
}

/// The state behind a [`JobLog`]'s mutex. One lock for the guest's three
/// writers (`host.log`, stdout, stderr) is what keeps their lines whole
/// and in order.
struct LogBuffer {
    /// The log as bytes: guests may write invalid UTF-8, which is kept as
    /// written and only made lossy when read.
    text: Vec<u8>,
    /// Most bytes `text` may hold. Reached, it stops growing; a line may be
    /// cut anywhere, even inside a UTF-8 sequence (shown as `�`).
    limit: usize,
    /// Bytes the guest wrote past `limit`, reported in the closing note.
    dropped_bytes: u64,
    /// The stream whose line is open (no newline yet), if any.
    open_line: Option<LogStream>,
    /// Where complete lines go as they are written, if anywhere.
    sink: Option<Arc<dyn LogSink>>,
    /// Bytes of `text` already handed to `sink`: always just after a
    /// newline, or the end of `text` once the sink is flushed.
    streamed: usize,
    /// Whether the sink has had the dropped-bytes note.
    flushed: bool,
}

impl std::fmt::Debug for LogBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogBuffer")
            .field("bytes", &self.text.len())
            .field("limit", &self.limit)
            .field("dropped_bytes", &self.dropped_bytes)
            .field("streaming", &self.sink.is_some())
            .finish()
    }
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

    /// Hand the lines completed since the last call to the sink, if any.
    fn stream_complete_lines(&mut self) {
        let Some(sink) = &self.sink else { return };
        let pending = &self.text[self.streamed..];
        let Some(last_newline) = pending.iter().rposition(|b| *b == b'\n') else {
            return;
        };
        for line in pending[..last_newline].split(|b| *b == b'\n') {
            sink.line(&String::from_utf8_lossy(line));
        }
        self.streamed += last_newline + 1;
    }

    /// The note [`JobLog::contents`] ends with when bytes were dropped.
    fn dropped_note(&self) -> Option<String> {
        (self.dropped_bytes > 0).then(|| {
            format!(
                "{} [wasmproc] log limit of {} bytes reached: {} bytes dropped",
                timestamp(),
                self.limit,
                self.dropped_bytes
            )
        })
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
                sink: None,
                streamed: 0,
                flushed: false,
            })),
        }
    }

    /// This log, also handing every line to `sink` as soon as it is
    /// complete. Call [`JobLog::flush_sink`] when the run is over, for a
    /// last line without a newline and the dropped-bytes note.
    pub fn with_sink(self, sink: Arc<dyn LogSink>) -> Self {
        self.buffer().sink = Some(sink);
        self
    }

    /// Hand the sink what is left: an unterminated last line (a guest cut
    /// off mid-line, or a line cut at the byte limit) and, when bytes were
    /// dropped, the same note [`JobLog::contents`] ends with. Once; later
    /// calls do nothing.
    pub fn flush_sink(&self) {
        let mut buffer = self.buffer();
        let Some(sink) = buffer.sink.clone() else {
            return;
        };
        if buffer.flushed {
            return;
        }
        buffer.flushed = true;
        let rest = &buffer.text[buffer.streamed..];
        if !rest.is_empty() {
            sink.line(String::from_utf8_lossy(rest).trim_end_matches('\n'));
        }
        buffer.streamed = buffer.text.len();
        if let Some(note) = buffer.dropped_note() {
            sink.line(&note);
        }
    }

    /// The locked buffer. A `std` mutex, not an async one: every critical
    /// section is a short copy with no `.await` in it.
    fn buffer(&self) -> std::sync::MutexGuard<'_, LogBuffer> {
        // A poisoned lock only means another writer panicked mid-append; the
        // buffer is still a valid byte vector, so keep using it.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Append raw bytes, keeping what fits (no timestamp, no tag).
    pub fn append(&self, bytes: &[u8]) {
        let mut buffer = self.buffer();
        buffer.push(bytes);
        buffer.stream_complete_lines();
    }

    /// Append one line with a time and a level tag, e.g.
    /// `2026-01-02T03:04:05.678Z [info] message`.
    pub fn append_line(&self, level: &str, message: &str) {
        let mut buffer = self.buffer();
        buffer.close_open_line();
        let line = format!("{} [{level}] {message}\n", timestamp());
        buffer.push(line.as_bytes());
        buffer.stream_complete_lines();
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
        buffer.stream_complete_lines();
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
        // An open line, or one cut at the limit: end it, so the note below
        // stands on its own line.
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        if let Some(note) = buffer.dropped_note() {
            text.push_str(&note);
            text.push('\n');
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

/// The WASI p2 `output-stream` the guest's stdout or stderr is. It never
/// reports an error or a closed stream: a guest that checks its writes
/// sees them all succeed, even those dropped past the limit, so a full
/// log never turns into a failing process.
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

/// Always ready: a guest waiting to write (a `blocking-write`, a poll)
/// never waits, since writes never block.
#[wasmtime_wasi::async_trait]
impl Pollable for StreamLog {
    async fn ready(&mut self) {}
}

/// The same stream in the form `StdoutStream::async_stream` hands out
/// (the trait asks for both): every write is taken whole and completes at
/// once.
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

    /// Collects what a sink is handed.
    #[derive(Default)]
    struct Lines(Mutex<Vec<String>>);

    impl LogSink for Lines {
        fn line(&self, line: &str) {
            self.0.lock().unwrap().push(line.to_owned());
        }
    }

    impl Lines {
        /// The lines so far, each without its time.
        fn tails(&self) -> Vec<String> {
            let lines = self.0.lock().unwrap();
            lines
                .iter()
                .map(|l| l.split_once(' ').map_or(l.as_str(), |(_, t)| t).to_owned())
                .collect()
        }
    }

    #[test]
    fn a_sink_gets_each_line_once_it_is_complete_and_the_rest_at_flush() {
        let lines = Arc::new(Lines::default());
        let log = JobLog::new(4096).with_sink(lines.clone());
        log.append_stream(LogStream::Stdout, b"one\ntw");
        assert_eq!(lines.tails(), ["[stdout] one"]);
        log.append_stream(LogStream::Stdout, b"o\nthr");
        assert_eq!(lines.tails(), ["[stdout] one", "[stdout] two"]);
        // Another source closes the open line.
        log.append_line("info", "four");
        assert_eq!(
            lines.tails(),
            [
                "[stdout] one",
                "[stdout] two",
                "[stdout] thr",
                "[info] four"
            ]
        );
        log.append_stream(LogStream::Stderr, b"cut off");
        assert_eq!(lines.0.lock().unwrap().len(), 4);
        log.flush_sink();
        log.flush_sink();
        assert_eq!(
            lines.tails().last().map(String::as_str),
            Some("[stderr] cut off")
        );
        assert_eq!(lines.0.lock().unwrap().len(), 5);
        // What was streamed is what is stored.
        let streamed = lines.0.lock().unwrap().join("\n") + "\n";
        assert_eq!(streamed, log.contents());
    }

    #[test]
    fn a_sink_sees_the_limit_as_the_stored_log_does() {
        let lines = Arc::new(Lines::default());
        let log = JobLog::new(60).with_sink(lines.clone());
        for _ in 0..10 {
            log.append_line("info", "0123456789");
        }
        log.flush_sink();
        // The same lines, the note's time aside (taken when each is made).
        let stored: Vec<String> = log
            .contents()
            .lines()
            .map(|l| l.split_once(' ').map_or(l, |(_, t)| t).to_owned())
            .collect();
        assert_eq!(lines.tails(), stored);
        assert!(
            stored.last().is_some_and(|l| l.ends_with("bytes dropped")),
            "{stored:?}"
        );
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
