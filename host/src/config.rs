//! Server settings: a TOML file, then environment variables, then flags.
//!
//! Every field has a documented default, so an empty file (or none) gives a
//! working server on 127.0.0.1:5000 with data in `./wasmproc-data`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::runtime::Limits;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for these settings.
    #[error("invalid config file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: toml::de::Error,
    },
    /// The settings contradict each other.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// All settings of a `wasmproc serve`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on. Default `127.0.0.1:5000`.
    pub bind: SocketAddr,
    /// Base URL used in links and `Location` headers (e.g. behind a proxy).
    /// Default: `http://<bind address>`.
    pub public_url: Option<String>,
    /// Directory of the sled database and the artifact cache.
    /// Default `./wasmproc-data`.
    pub data_dir: PathBuf,
    /// Serve the example processes built into the binary (immutable).
    /// Default `true`.
    pub builtin_processes: bool,
    /// A directory of `.wasm` files loaded as immutable processes at start-up.
    pub processes_dir: Option<PathBuf>,
    /// Execution modes, queue and worker pool.
    pub execution: ExecutionConfig,
    /// Per-job resource limits.
    pub limits: LimitsConfig,
    /// Per-process overrides, keyed by process id.
    pub processes: HashMap<String, ProcessOverrides>,
    /// Fetching of inputs given by reference (`href`).
    pub href: HrefConfig,
    /// Delivery of callbacks to `subscriber` URLs.
    pub callbacks: CallbackConfig,
    /// Largest accepted request body, in bytes. Default 64 MiB.
    pub max_request_bytes: u64,
    /// Who may deploy, replace and undeploy (and optionally run) processes.
    pub auth: AuthConfig,
    /// Cross-origin requests from browsers.
    pub cors: CorsConfig,
    /// A client must send its request headers within this time, or the
    /// connection is closed (slow-client protection). Default 30 s.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// A client must send its request body within this time, or the
    /// request fails with 408. Default 120 s.
    #[serde(with = "humantime_serde")]
    pub body_read_timeout: Duration,
    /// Interface name prefixes (e.g. `"wasi:sockets"`, `"wasi:filesystem"`)
    /// a deployed component may not even import. Those two are linked
    /// without any capability behind them (no directories, no network), so
    /// the default, empty, accepts the C, JavaScript and Python toolchains
    /// that import them unconditionally. Anything else we do not grant
    /// (`wasi:http`, non-WASI imports) is always refused at deploy.
    pub deny_imports: Vec<String>,
}

/// CORS: which browser origins may call the API.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorsConfig {
    /// Allowed origins (`https://app.example.org`), or `["*"]` for any.
    /// Empty (the default) sends no CORS headers.
    pub allowed_origins: Vec<String>,
}

/// A secret that never appears in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; compare it with [`Secret::matches`] instead where
    /// possible.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compare with a candidate in time independent of where they differ
    /// (both sides are hashed first, so not even the length leaks).
    pub fn matches(&self, candidate: &str) -> bool {
        use sha2::{Digest, Sha256};
        let (a, b) = (
            Sha256::digest(self.0.as_bytes()),
            Sha256::digest(candidate.as_bytes()),
        );
        a.iter()
            .zip(b.iter())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Bearer-token authentication.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// The token that deploy, replace and undeploy require
    /// (`Authorization: Bearer <token>`); also read from the environment
    /// variable `WASMPROC_ADMIN_TOKEN`. Without one, deployment is disabled.
    pub admin_token: Option<Secret>,
    /// Also require the token for execution and job endpoints. Default
    /// `false`.
    pub protect_jobs: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 5000)),
            public_url: None,
            data_dir: PathBuf::from("wasmproc-data"),
            builtin_processes: true,
            processes_dir: None,
            execution: ExecutionConfig::default(),
            limits: LimitsConfig::default(),
            processes: HashMap::new(),
            href: HrefConfig::default(),
            callbacks: CallbackConfig::default(),
            max_request_bytes: 64 * 1024 * 1024,
            auth: AuthConfig::default(),
            cors: CorsConfig::default(),
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(120),
            deny_imports: Vec::new(),
        }
    }
}

/// How jobs are executed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExecutionConfig {
    /// Allow synchronous execution at all. Default `true`.
    pub enable_sync: bool,
    /// Allow asynchronous execution at all. Default `true`.
    pub enable_async: bool,
    /// Longest a synchronous request waits for its job; past it the job
    /// is failed with a timeout. Default 60 s.
    #[serde(with = "humantime_serde")]
    pub sync_timeout: Duration,
    /// Jobs running at once (sync and async together). Default: number of
    /// cores.
    pub max_concurrent_jobs: usize,
    /// Async jobs waiting for a worker; beyond it submissions get 503 with
    /// `Retry-After`. Default 1000.
    pub max_queued_jobs: usize,
    /// How long finished jobs and their results are kept. Default 7 days.
    #[serde(with = "humantime_serde")]
    pub job_retention: Duration,
    /// On shutdown, how long running jobs may take to finish before they
    /// are stopped and re-queued. Default 30 s.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
}

impl Default for ExecutionConfig {
    fn default() -> Self {
        Self {
            enable_sync: true,
            enable_async: true,
            sync_timeout: Duration::from_secs(60),
            max_concurrent_jobs: std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(2),
            max_queued_jobs: 1000,
            job_retention: Duration::from_secs(7 * 24 * 3600),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// Resource limits: what a job gets by default, and the server-wide cap
/// that no per-process setting can exceed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Limits of a job whose process has no override.
    pub default: Limits,
    /// Server-wide caps.
    pub max: Limits,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            default: Limits::default(),
            max: Limits {
                fuel: 1_000_000_000_000,
                memory_bytes: 1024 * 1024 * 1024,
                timeout: Duration::from_secs(3600),
                output_bytes: 256 * 1024 * 1024,
                log_bytes: 1024 * 1024,
            },
        }
    }
}

/// Overrides for one process (the pygeoapi-prefect model).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProcessOverrides {
    /// Replaces the `jobControlOptions` the module declares, e.g.
    /// `["async-execute"]` to force a slow process to run asynchronously.
    pub job_control_options: Option<Vec<String>>,
    /// Limits for this process's jobs (capped by `limits.max`).
    pub limits: Option<Limits>,
}

/// Fetching `href` inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HrefConfig {
    /// Hosts that may be fetched (exact host names or IP literals). Empty
    /// means any public host; loopback and private addresses are refused
    /// unless listed here.
    pub allowed_hosts: Vec<String>,
    /// Largest fetched input (or module deployed by reference), in bytes.
    /// Default 64 MiB (a Python component is ~18 MiB).
    pub max_bytes: u64,
    /// Timeout of one fetch. Default 10 s.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for HrefConfig {
    fn default() -> Self {
        Self {
            allowed_hosts: Vec::new(),
            max_bytes: 64 * 1024 * 1024,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Delivering callbacks to subscribers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallbackConfig {
    /// Hosts callbacks may be sent to (exact host names or IP literals),
    /// with the rules of `href.allowed_hosts`: empty means any public host;
    /// loopback and private addresses are refused unless listed. A
    /// subscriber URI outside these rules is refused at submission (400).
    pub allowed_hosts: Vec<String>,
    /// Timeout of one delivery attempt. Default 5 s.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Attempts per callback (with exponential backoff from 200 ms).
    /// Default 3.
    pub attempts: u32,
}

impl Default for CallbackConfig {
    fn default() -> Self {
        Self {
            allowed_hosts: Vec::new(),
            timeout: Duration::from_secs(5),
            attempts: 3,
        }
    }
}

impl Config {
    /// Read a TOML file (all fields optional).
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Check that the settings make sense together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
        if !self.execution.enable_sync && !self.execution.enable_async {
            return invalid("execution.enable_sync and execution.enable_async are both false");
        }
        if self.execution.max_concurrent_jobs == 0 {
            return invalid("execution.max_concurrent_jobs must be at least 1");
        }
        if self.auth.protect_jobs && self.auth.admin_token.is_none() {
            return invalid("auth.protect_jobs needs auth.admin_token (or WASMPROC_ADMIN_TOKEN)");
        }
        if self.limits.default.capped_by(&self.limits.max) != self.limits.default {
            return invalid("limits.default exceeds limits.max");
        }
        Ok(())
    }

    /// The base URL for links, without a trailing slash.
    pub fn base_url(&self, bound: SocketAddr) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{bound}"),
        }
    }

    /// The limits for jobs of `process_id`: its override or the default,
    /// capped by the server-wide maximum.
    pub fn limits_for(&self, process_id: &str) -> Limits {
        self.processes
            .get(process_id)
            .and_then(|p| p.limits)
            .unwrap_or(self.limits.default)
            .capped_by(&self.limits.max)
    }
}

/// (De)serialises a [`Duration`] as a human-readable string such as `"10s"`.
mod humantime_serde {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_toml_gives_the_defaults() {
        let config: Config = toml::from_str("").unwrap();
        assert_eq!(config, Config::default());
        config.validate().unwrap();
    }

    #[test]
    fn per_process_limits_are_capped_by_the_maximum() {
        let config: Config = toml::from_str(
            r#"
            [limits.max]
            fuel = 1000
            memory_bytes = 1048576
            timeout = "1s"
            output_bytes = 10
            log_bytes = 10
            [processes.slow]
            job_control_options = ["async-execute"]
            [processes.slow.limits]
            fuel = 5000
            memory_bytes = 1024
            timeout = "10m"
            output_bytes = 5
            log_bytes = 5
            "#,
        )
        .unwrap();
        let limits = config.limits_for("slow");
        assert_eq!(limits.fuel, 1000);
        assert_eq!(limits.memory_bytes, 1024);
        assert_eq!(limits.timeout, Duration::from_secs(1));
        assert!(config.validate().is_err(), "default limits exceed the max");
    }

    #[test]
    fn secrets_compare_and_stay_out_of_debug_output() {
        let secret = Secret::new("s3cret-token");
        assert!(secret.matches("s3cret-token"));
        assert!(!secret.matches("s3cret-tokem"));
        assert!(!secret.matches(""));
        let config = Config {
            auth: AuthConfig {
                admin_token: Some(secret),
                protect_jobs: false,
            },
            ..Config::default()
        };
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn unknown_fields_are_rejected() {
        assert!(toml::from_str::<Config>("bnid = \"x\"").is_err());
    }
}
