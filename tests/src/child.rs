//! wasmproc as a child process (the `wasmproc-under-test` binary), for
//! tests that kill the server with SIGKILL.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::http::Api;

/// The line the server prints first, before the base URL.
pub const LISTENING_PREFIX: &str = "wasmproc listening on ";
/// The line a worker-only node prints first (it has no URL).
pub const WORKER_READY: &str = "wasmproc worker ready";

/// How long [`ChildConfig::spawn`] waits for a child's first line: start-up
/// compiles the built-in processes, seconds on a loaded machine.
pub const CHILD_STARTUP: Duration = Duration::from_secs(60);

/// A child server's configuration file and stderr log in a test's folder:
/// what it takes to start the server, and to start the same server again
/// after a kill -9 or a graceful stop.
#[derive(Debug, Clone)]
pub struct ChildConfig {
    config: PathBuf,
    stderr: PathBuf,
}

impl ChildConfig {
    /// [`ChildServer::write_config`] with `extra` in `dir`; the stderr log
    /// is `dir/stderr.log`.
    pub fn write(dir: &Path, extra: &str) -> Self {
        Self::at(ChildServer::write_config(dir, extra), dir)
    }

    /// [`ChildServer::write_config_with_private_artifacts`] with `extra`
    /// in `dir`; the stderr log is `dir/stderr.log`.
    pub fn write_with_private_artifacts(dir: &Path, extra: &str) -> Self {
        Self::at(
            ChildServer::write_config_with_private_artifacts(dir, extra),
            dir,
        )
    }

    /// [`ChildConfig::write`] of a server with `workers` job workers
    /// (`execution.max_concurrent_jobs`), then `tables` (more TOML
    /// tables, e.g. a `[store]`).
    pub fn with_workers(dir: &Path, workers: usize, tables: &str) -> Self {
        let extra = format!("\n[execution]\nmax_concurrent_jobs = {workers}\n{tables}");
        Self::write(dir, &extra)
    }

    fn at(config: PathBuf, dir: &Path) -> Self {
        Self {
            config,
            stderr: dir.join("stderr.log"),
        }
    }

    /// The same configuration logging to `name` in the same folder
    /// instead (a second server whose log is read on its own).
    pub fn logging_to(mut self, name: &str) -> Self {
        self.stderr.set_file_name(name);
        self
    }

    /// The stderr log (appended to by every child started from this).
    pub fn stderr(&self) -> &Path {
        &self.stderr
    }

    /// Start `binary` on this configuration, waiting at most
    /// [`CHILD_STARTUP`] for it to listen.
    pub fn spawn(&self, binary: &str) -> ChildServer {
        self.spawn_with_env(binary, &[])
    }

    /// [`ChildConfig::spawn`] with extra environment variables (e.g.
    /// `RUST_LOG` for a test that reads the server's log).
    pub fn spawn_with_env(&self, binary: &str, env: &[(&str, &str)]) -> ChildServer {
        ChildServer::spawn_with_env(binary, &self.config, &self.stderr, CHILD_STARTUP, env)
    }
}

/// A running `wasmproc-under-test` child. Killed when dropped.
pub struct ChildServer {
    child: Child,
    api: Api,
    stderr_path: PathBuf,
}

deref_to_api!(ChildServer);

impl ChildServer {
    /// Run `binary CONFIG` (stderr goes to `stderr_path`) and wait (at most
    /// `startup`) for its `wasmproc listening on URL` line.
    pub fn spawn(binary: &str, config: &Path, stderr_path: &Path, startup: Duration) -> Self {
        Self::spawn_with_env(binary, config, stderr_path, startup, &[])
    }

    /// [`ChildServer::spawn`] with extra environment variables (e.g.
    /// `RUST_LOG` for a test that reads the server's log).
    pub fn spawn_with_env(
        binary: &str,
        config: &Path,
        stderr_path: &Path,
        startup: Duration,
        env: &[(&str, &str)],
    ) -> Self {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(stderr_path)
            .expect("stderr log file");
        let mut child = Command::new(binary)
            .arg(config)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {binary}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        // Read the first line, then keep draining so the child never blocks
        // on a full pipe.
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next();
            let _ = tx.send(first);
            for _ in lines {}
        });
        let line = match rx.recv_timeout(startup) {
            Ok(Some(Ok(line))) => line,
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{binary} did not print its listening line within {startup:?} ({other:?}); stderr:\n{}",
                    std::fs::read_to_string(stderr_path).unwrap_or_default()
                );
            }
        };
        // A worker-only node has no API: its client points nowhere useful.
        let base = if line.starts_with(WORKER_READY) {
            "http://127.0.0.1:9".to_owned()
        } else {
            line.trim()
                .strip_prefix(LISTENING_PREFIX)
                .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
                .to_owned()
        };
        Self {
            child,
            api: Api::new(base),
            stderr_path: stderr_path.to_path_buf(),
        }
    }

    /// Write `dir/wasmproc.toml` for a child: 127.0.0.1 on a free port,
    /// data in `dir/data`, compiled modules in
    /// [`SHARED_ARTIFACTS`](crate::SHARED_ARTIFACTS), then `extra` (more
    /// TOML: top-level keys first, then tables). Returns the config's path.
    pub fn write_config(dir: &Path, extra: &str) -> PathBuf {
        let shared = format!(
            "artifact_dir = {:?}\nartifact_cache_bytes = {}\n",
            crate::SHARED_ARTIFACTS,
            crate::SHARED_ARTIFACT_BYTES,
        );
        Self::write_config_text(dir, &shared, extra)
    }

    /// As [`Self::write_config`], but the child caches compiled modules in
    /// its data directory, as a server does by default: for tests that
    /// look at what it compiled.
    pub fn write_config_with_private_artifacts(dir: &Path, extra: &str) -> PathBuf {
        Self::write_config_text(dir, "", extra)
    }

    fn write_config_text(dir: &Path, artifacts: &str, extra: &str) -> PathBuf {
        let path = dir.join("wasmproc.toml");
        let text = format!(
            "bind = \"127.0.0.1:0\"\ndata_dir = {:?}\n{artifacts}{extra}\n",
            dir.join("data"),
        );
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("writing {path:?}: {e}"));
        path
    }

    /// The HTTP client of this server.
    pub fn api(&self) -> &Api {
        &self.api
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A `kB` field of `/proc/PID/status` (e.g. `VmRSS`, `VmHWM`), in KiB.
    /// Panics if the child is gone or the field is missing (Linux only).
    pub fn status_kib(&self, field: &str) -> u64 {
        let path = format!("/proc/{}/status", self.child.id());
        let status =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
        status_field_kib(&status, field)
            .unwrap_or_else(|| panic!("{path} has no {field} line:\n{status}"))
    }

    /// The child's resident set size now (`VmRSS`), in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS")
    }

    /// The child's peak resident set size so far (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        self.status_kib("VmHWM")
    }

    /// What the child wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Send SIGTERM (with `kill -TERM PID`); the child shuts down
    /// gracefully. Reap it with [`ChildServer::wait_exit`].
    pub fn sigterm(&self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill -TERM");
        assert!(status.success(), "kill -TERM {pid}: {status}");
    }

    /// The exit status, if the child has exited (does not block).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().expect("try_wait on the server")
    }

    /// Wait (at most `timeout`, polling every 20 ms) for the child to exit;
    /// returns its status. Panics, killing it, on timeout.
    pub fn wait_exit(mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the server did not exit within {timeout:?}; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL the child and reap it.
    pub fn kill9(mut self) {
        self.child.kill().expect("kill -9 the server");
        self.child.wait().expect("reap the server");
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value in KiB of a line like `VmHWM:\t  123456 kB` of a
/// `/proc/PID/status` text.
fn status_field_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        if name != field {
            return None;
        }
        value.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::status_field_kib;

    #[test]
    fn reads_kib_fields_of_proc_status() {
        let status = "Name:\twasmproc\nVmHWM:\t  123456 kB\nVmRSS:\t   65432 kB\n";
        assert_eq!(status_field_kib(status, "VmHWM"), Some(123_456));
        assert_eq!(status_field_kib(status, "VmRSS"), Some(65_432));
        assert_eq!(status_field_kib(status, "VmSwap"), None);
    }
}
