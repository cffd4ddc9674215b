//! Server settings: a TOML file, then environment variables, then flags.
//!
//! Every field has a documented default, so an empty file (or none) gives a
//! working server on 127.0.0.1:5000 with data in `./wasmproc-data`. A table
//! that names only some fields keeps the others at their defaults; for the
//! limits tables the default of a field depends on the table (see
//! [`PartialLimits`]): built-in defaults for `[limits.default]`, built-in
//! maxima for `[limits.max]`, and `[limits.default]` for a process's
//! `limits`. [`Config::validate`] refuses contradictions (a limit above
//! its maximum is an error, not a silent cap); `wasmproc config check`
//! prints the effective settings ([`Config::effective_toml`]).
//!
//! This file holds [`Config`] itself, how it is read, checked as a whole
//! and printed; each part of the file has its own: `auth.rs` (`[auth]`),
//! `store.rs` (`[store]`, `[cluster]`), `execution.rs` (`[execution]`,
//! `[processes.ID]`, `[href]`, `[callbacks]`) and `limits.rs`
//! (`[limits]`). Their types are re-exported here, so the rest of the
//! crate names them `config::Role`, `config::StoreBackend` and so on.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::runtime::Limits;

mod auth;
mod execution;
mod limits;
mod store;

use auth::key_problems;
pub use auth::{ApiKey, AuthConfig, Role, Secret, valid_key_name};
pub use execution::{CallbackConfig, ExecutionConfig, HrefConfig, OutputChecks, ProcessOverrides};
use limits::fields_above;
pub use limits::{LimitsConfig, PartialLimits};
pub(crate) use store::redacted_url;
pub use store::{ClusterConfig, NodeRole, StoreBackend, StoreConfig};

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
    /// The settings contradict each other; each problem names its keys.
    #[error("invalid configuration: {}", .0.join("; "))]
    Invalid(Vec<String>),
    /// The effective configuration could not be written as TOML.
    #[error("cannot write the configuration as TOML: {0}")]
    Render(#[from] toml::ser::Error),
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
    /// Where processes, jobs and results are kept: embedded sled (default)
    /// or a PostgreSQL database shared by several nodes.
    pub store: StoreConfig,
    /// How this node takes part in a cluster (PostgreSQL backend).
    pub cluster: ClusterConfig,
    /// Interface name prefixes (e.g. `"wasi:sockets"`, `"wasi:filesystem"`)
    /// a deployed component may not even import. Those two are linked
    /// without any capability behind them (no directories, no network), so
    /// the default, empty, accepts the C, JavaScript and Python toolchains
    /// that import them unconditionally. Anything else we do not grant
    /// (`wasi:http`, non-WASI imports) is always refused at deploy.
    pub deny_imports: Vec<String>,
    /// Where compiled modules are cached; default `data_dir/artifacts`.
    ///
    /// Compiling a 19 MB Python component takes seconds; its artifact loads
    /// in milliseconds. Servers on one machine may share a directory (each
    /// writes through a temporary file and a rename, and the HMAC key file
    /// is created once, whoever comes first), so that each module is
    /// compiled once for all of them. The directory is trusted like the
    /// data directory: whoever can write it can write the key.
    pub artifact_dir: Option<PathBuf>,
    /// Most bytes of compiled modules kept in the artifact directory; the
    /// least recently used go first. Default 2 GiB.
    pub artifact_cache_bytes: u64,
    /// How the server's own log is written to stderr: `"text"` (default)
    /// or `"json"` (one object per line, with the request and job ids of
    /// the spans it was written in). `--log-format` overrides it.
    pub log_format: crate::telemetry::LogFormat,
}

/// CORS: which browser origins may call the API.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorsConfig {
    /// Allowed origins (`https://app.example.org`), or `["*"]` for any.
    /// Empty (the default) sends no CORS headers.
    pub allowed_origins: Vec<String>,
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
            artifact_dir: None,
            artifact_cache_bytes: crate::runtime::DEFAULT_ARTIFACT_CACHE_BYTES,
            store: StoreConfig::default(),
            cluster: ClusterConfig::default(),
            log_format: crate::telemetry::LogFormat::default(),
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

    /// Check that the settings make sense together; the error lists every
    /// contradiction, each naming its keys (a limit above its maximum
    /// included: it is refused, not capped, so what the file says is what
    /// jobs get).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let problems = self.problems();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// Every contradiction, as a sentence naming its keys.
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !self.execution.enable_sync && !self.execution.enable_async {
            problems.push("execution.enable_sync and execution.enable_async are both false".into());
        }
        let shared = self.store.backend == StoreBackend::Postgres;
        if self.execution.max_concurrent_jobs == 0 && self.cluster.role != NodeRole::Api {
            problems.push(
                "execution.max_concurrent_jobs (--workers) is 0: that is an API-only node (cluster.role = \"api\")".into(),
            );
        }
        if !shared && self.cluster.role != NodeRole::All {
            problems.push(
                "cluster.role \"api\" or \"worker\" (and --workers 0) need store.backend = \"postgres\": \
                 with the embedded store no other node would run the jobs or serve the API"
                    .into(),
            );
        }
        if shared && self.store.url.is_none() {
            problems.push(
                "store.backend = \"postgres\" needs store.url (or WASMPROC_DATABASE_URL)".into(),
            );
        }
        if self.store.pool_size == 0 {
            problems.push("store.pool_size must be at least 1".into());
        }
        if self.cluster.max_attempts == 0 {
            problems.push("cluster.max_attempts must be at least 1".into());
        }
        if self.cluster.heartbeat.is_zero() || self.cluster.heartbeat * 2 > self.cluster.lease {
            problems.push(
                "cluster.heartbeat must be positive and at most half of cluster.lease, \
                 or a live node's leases would expire between two renewals"
                    .into(),
            );
        }
        if self.auth.protect_jobs && self.auth.admin_token.is_none() && self.auth.keys.is_empty() {
            problems.push(
                "auth.protect_jobs needs auth.admin_token (or WASMPROC_ADMIN_TOKEN) or auth.keys"
                    .into(),
            );
        }
        if self.auth.protect_processes
            && self.auth.admin_token.is_none()
            && self.auth.keys.is_empty()
        {
            problems.push(
                "auth.protect_processes needs auth.keys or auth.admin_token (or WASMPROC_ADMIN_TOKEN)"
                    .into(),
            );
        }
        problems.extend(key_problems(&self.auth.keys));
        let max = &self.limits.max;
        for (field, value, maximum) in fields_above(&self.limits.default, max) {
            problems.push(format!(
                "limits.default.{field} = {value} is above limits.max.{field} = {maximum}"
            ));
        }
        let mut ids: Vec<&String> = self.processes.keys().collect();
        ids.sort();
        for id in ids {
            let Some(partial) = self.processes[id].limits else {
                continue;
            };
            // Only the fields the process sets: an inherited default above
            // the maximum is reported once, as `limits.default`'s.
            let given = partial.given();
            let resolved = partial.over(&self.limits.default);
            for (field, value, maximum) in fields_above(&resolved, max) {
                if given.contains(&field) {
                    problems.push(format!(
                        "processes.{id}.limits.{field} = {value} is above limits.max.{field} = {maximum}"
                    ));
                }
            }
        }
        problems
    }

    /// The configuration as it takes effect, as TOML: every setting with
    /// its value (defaults included), each process's `limits` resolved over
    /// `[limits.default]`, and the admin token replaced by `"<redacted>"`.
    /// What `wasmproc config check` prints.
    pub fn effective_toml(&self) -> Result<String, ConfigError> {
        let mut effective = self.clone();
        let default = self.limits.default;
        for overrides in effective.processes.values_mut() {
            if let Some(partial) = &mut overrides.limits {
                *partial = PartialLimits::from(partial.over(&default));
            }
        }
        if effective.auth.admin_token.is_some() {
            effective.auth.admin_token = Some(Secret::new("<redacted>"));
        }
        // The database URL may carry a password.
        if let Some(url) = &effective.store.url {
            effective.store.url = Some(Secret::new(redacted_url(url.expose())));
        }
        Ok(toml::to_string_pretty(&effective)?)
    }

    /// The base URL for links, without a trailing slash.
    pub fn base_url(&self, bound: SocketAddr) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{bound}"),
        }
    }

    /// Whether the results of `process_id`'s jobs are reused for identical
    /// requests (`[processes.ID] cache = true`).
    pub fn caches(&self, process_id: &str) -> bool {
        self.processes
            .get(process_id)
            .and_then(|p| p.cache)
            .unwrap_or(false)
    }

    /// How strictly the outputs of `process_id`'s jobs are checked: its
    /// own `output_checks`, else `execution.output_checks`.
    pub fn output_checks_for(&self, process_id: &str) -> OutputChecks {
        self.processes
            .get(process_id)
            .and_then(|p| p.output_checks)
            .unwrap_or(self.execution.output_checks)
    }

    /// The limits for jobs of `process_id`: the fields its `limits` table
    /// gives, the others from `[limits.default]`. [`Config::validate`]
    /// refuses any above `limits.max`; the cap here only holds for a
    /// configuration built in code and never validated.
    pub fn limits_for(&self, process_id: &str) -> Limits {
        self.processes
            .get(process_id)
            .and_then(|p| p.limits)
            .unwrap_or_default()
            .over(&self.limits.default)
            .capped_by(&self.limits.max)
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

    /// The TOML example of the README's "Configuration" section, read from
    /// README.md itself, so the test breaks when either side changes.
    fn readme_example() -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
        let readme = std::fs::read_to_string(&path).unwrap();
        let section = &readme[readme.find("## Configuration").expect("section")..];
        let start = section.find("```toml\n").expect("a toml block") + "```toml\n".len();
        let end = start + section[start..].find("```").expect("end of the block");
        section[start..end].to_owned()
    }

    #[test]
    fn the_readme_example_means_what_the_readme_says() {
        let example = readme_example();
        assert!(example.contains("[limits.max]"), "{example}");
        let config: Config = toml::from_str(&example).unwrap();
        config.validate().unwrap();
        // `[limits.max]` names only memory: the other maxima stay built in.
        assert_eq!(
            config.limits.max,
            Limits {
                memory_bytes: 1024 * 1024 * 1024,
                ..LimitsConfig::default().max
            }
        );
        assert_eq!(config.limits.default, Limits::default());
        // `[processes.echo] limits = { timeout = "10m" }`: ten minutes, the
        // rest from `[limits.default]`.
        assert_eq!(
            config.limits_for("echo"),
            Limits {
                timeout: Duration::from_secs(600),
                ..config.limits.default
            }
        );
        assert_eq!(config.limits_for("hello-world"), config.limits.default);
        // `output_checks = "warn"` for echo only; the server stays strict.
        assert_eq!(config.output_checks_for("echo"), OutputChecks::Warn);
        assert_eq!(
            config.output_checks_for("hello-world"),
            OutputChecks::Strict
        );
    }

    #[test]
    fn partial_tables_merge_field_by_field() {
        let config: Config = toml::from_str(
            r#"
            [limits.default]
            fuel = 1000
            timeout = "30s"
            [limits.max]
            timeout = "2m"
            [processes.slow]
            limits = { memory_bytes = 1048576 }
            "#,
        )
        .unwrap();
        config.validate().unwrap();
        let builtin = Limits::default();
        assert_eq!(
            config.limits.default,
            Limits {
                fuel: 1000,
                timeout: Duration::from_secs(30),
                ..builtin
            }
        );
        assert_eq!(
            config.limits.max,
            Limits {
                timeout: Duration::from_secs(120),
                ..LimitsConfig::default().max
            }
        );
        // A process's table inherits from `[limits.default]`, not from the
        // built-in defaults.
        assert_eq!(
            config.limits_for("slow"),
            Limits {
                memory_bytes: 1048576,
                ..config.limits.default
            }
        );
    }

    #[test]
    fn a_limit_above_the_maximum_is_an_error_naming_it_not_a_silent_cap() {
        let config: Config = toml::from_str(
            r#"
            [limits.max]
            timeout = "1m"
            fuel = 1000
            [limits.default]
            timeout = "30s"
            fuel = 1000
            [processes.slow.limits]
            timeout = "10m"
            [processes.fast.limits]
            fuel = 5000
            "#,
        )
        .unwrap();
        let error = config.validate().unwrap_err().to_string();
        for expected in [
            "processes.slow.limits.timeout = 10m is above limits.max.timeout = 1m",
            "processes.fast.limits.fuel = 5000 is above limits.max.fuel = 1000",
        ] {
            assert!(error.contains(expected), "{error}");
        }
        let config: Config = toml::from_str("[limits.max]\ntimeout = \"10s\"").unwrap();
        let error = config.validate().unwrap_err().to_string();
        assert!(
            error.contains("limits.default.timeout = 1m is above limits.max.timeout = 10s"),
            "{error}"
        );
    }

    #[test]
    fn the_effective_configuration_is_complete_resolved_and_redacted() {
        let mut config: Config = toml::from_str(
            r#"
            [limits.default]
            fuel = 1000
            [processes.slow.limits]
            timeout = "5m"
            "#,
        )
        .unwrap();
        config.auth.admin_token = Some(Secret::new("s3cret-token"));
        let text = config.effective_toml().unwrap();
        assert!(!text.contains("s3cret-token"), "{text}");
        let effective: Config = toml::from_str(&text).unwrap();
        assert_eq!(
            effective.processes["slow"].limits,
            Some(PartialLimits::from(config.limits_for("slow")))
        );
        assert_eq!(effective.limits_for("slow"), config.limits_for("slow"));
        assert_eq!(effective.limits, config.limits);
        assert_eq!(effective.auth.admin_token, Some(Secret::new("<redacted>")));
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
                ..AuthConfig::default()
            },
            ..Config::default()
        };
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn keys_are_checked_for_names_hashes_and_duplicates() {
        let hash = "ab".repeat(32);
        let config: Config = toml::from_str(&format!(
            r#"
            [[auth.keys]]
            name = "alice"
            role = "execute"
            sha256 = "{hash}"
            max_stored_bytes = 1000
            [[auth.keys]]
            name = "bob"
            role = "read"
            sha256 = "{}"
            "#,
            "cd".repeat(32)
        ))
        .unwrap();
        assert!(config.problems().is_empty(), "{:?}", config.problems());
        assert!(config.auth.jobs_protected(), "keys protect jobs");
        assert_eq!(config.auth.keys[0].digest(), Some([0xab; 32]));
        assert!(Role::Admin > Role::Execute && Role::Execute > Role::Read);

        let mut bad = config.clone();
        bad.auth.keys[1].name = "alice".into();
        bad.auth.keys[1].sha256 = hash.clone();
        bad.auth.keys.push(ApiKey {
            name: "no spaces".into(),
            role: Role::Admin,
            sha256: "xyz".into(),
            max_stored_bytes: None,
        });
        let problems = bad.problems().join("\n");
        assert!(
            problems.contains("two keys are named 'alice'"),
            "{problems}"
        );
        assert!(problems.contains("same sha256"), "{problems}");
        assert!(problems.contains("name 'no spaces'"), "{problems}");
        assert!(problems.contains("not 64 hexadecimal digits"), "{problems}");

        let unprotected: Config = toml::from_str("[auth]\nprotect_processes = true").unwrap();
        assert!(
            unprotected
                .problems()
                .iter()
                .any(|p| p.contains("auth.protect_processes needs"))
        );
    }

    #[test]
    fn unknown_fields_are_rejected() {
        assert!(toml::from_str::<Config>("bnid = \"x\"").is_err());
    }
}
