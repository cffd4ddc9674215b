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
        use subtle::ConstantTimeEq;
        let (a, b) = (
            Sha256::digest(self.0.as_bytes()),
            Sha256::digest(candidate.as_bytes()),
        );
        a.as_slice().ct_eq(b.as_slice()).into()
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
    /// `false`. Implied by `keys`.
    pub protect_jobs: bool,
    /// Also require a key (any role) to list and describe processes and
    /// to read their packages. Default `false`: process descriptions are
    /// public, as for an OGC client that discovers a server. Needs `keys`
    /// or `admin_token`.
    pub protect_processes: bool,
    /// API keys, each with a role (`[[auth.keys]]` tables). With at least
    /// one, execution and job endpoints need a key of role `execute` or
    /// `admin` (or the admin token), and every job belongs to the key that
    /// created it: an `execute` key sees and dismisses only its own jobs.
    /// `wasmproc key new --name NAME --role ROLE` makes one.
    pub keys: Vec<ApiKey>,
}

impl AuthConfig {
    /// Whether execution and job endpoints need a token or key.
    pub fn jobs_protected(&self) -> bool {
        self.protect_jobs || !self.keys.is_empty()
    }

    /// Whether anybody may deploy: there is an admin token or an admin key.
    pub fn deployment_enabled(&self) -> bool {
        self.admin_token.is_some() || self.keys.iter().any(|k| k.role == Role::Admin)
    }
}

/// What a key may do. Each role may do what the ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// List and describe processes (and read their packages).
    Read,
    /// Also run processes; see, read and dismiss its own jobs.
    Execute,
    /// Also deploy, replace and undeploy; see every job.
    Admin,
}

impl Role {
    /// The role as written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Execute => "execute",
            Self::Admin => "admin",
        }
    }
}

/// One API key. The key itself is never stored: only its SHA-256, so a
/// leaked configuration file does not leak keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    /// Who holds the key (`[A-Za-z0-9._-]`, at most 64 characters): the
    /// owner recorded on the jobs it creates and named in the server's log.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// SHA-256 of the key, 64 hexadecimal digits.
    pub sha256: String,
    /// Most bytes of job data (inputs, results, logs) the jobs of this key
    /// may keep stored; past it, its new jobs get 507 while other keys go
    /// on. Absent: only `execution.max_stored_bytes` bounds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_stored_bytes: Option<u64>,
}

impl ApiKey {
    /// The SHA-256 as bytes, when it is 64 hexadecimal digits.
    pub fn digest(&self) -> Option<[u8; 32]> {
        let mut digest = [0u8; 32];
        hex::decode_to_slice(&self.sha256, &mut digest).ok()?;
        Some(digest)
    }
}

/// Whether `name` may name a key: it is stored as a job's owner and used
/// in index keys, where `0x00` separates it from what follows.
pub fn valid_key_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// What is wrong with the configured keys: a name that cannot be an
/// owner, two keys with one name (their jobs would mix), a hash that is not
/// one, or one key listed twice (which role would it have?).
fn key_problems(keys: &[ApiKey]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut names = std::collections::HashSet::new();
    let mut digests = std::collections::HashSet::new();
    for key in keys {
        if !valid_key_name(&key.name) {
            problems.push(format!(
                "auth.keys: name '{}' must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' and '-'",
                key.name
            ));
        }
        if !names.insert(key.name.as_str()) {
            problems.push(format!("auth.keys: two keys are named '{}'", key.name));
        }
        match key.digest() {
            None => problems.push(format!(
                "auth.keys: the sha256 of key '{}' is not 64 hexadecimal digits \
                 (`wasmproc key new` prints a key and its hash)",
                key.name
            )),
            Some(digest) => {
                if !digests.insert(digest) {
                    problems.push(format!(
                        "auth.keys: key '{}' has the same sha256 as another key",
                        key.name
                    ));
                }
            }
        }
    }
    problems
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

/// Which database backs the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// Embedded sled in `data_dir/db`: one node, nothing to set up.
    #[default]
    Sled,
    /// A PostgreSQL database (`store.url`), which several nodes may share.
    Postgres,
}

/// `[store]`: the database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `sled` (default) or `postgres`.
    pub backend: StoreBackend,
    /// The PostgreSQL URL (`postgres://user:password@host:port/db`); also
    /// read from `WASMPROC_DATABASE_URL`. Required with `postgres`.
    pub url: Option<Secret>,
    /// Connections this node keeps open to PostgreSQL (plus one for
    /// LISTEN). Default 16: every worker, the HTTP reads and the heartbeat
    /// each need one at a time; PostgreSQL's default `max_connections` of
    /// 100 then fits five nodes.
    pub pool_size: usize,
    /// Longest wait for a connection (new, or free in the pool) and for
    /// one statement, before the request is answered 503 + `Retry-After`.
    /// Default 5 s: long enough for a loaded database, short enough that a
    /// client is not left hanging when it is down.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            backend: StoreBackend::Sled,
            url: None,
            pool_size: 16,
            timeout: Duration::from_secs(5),
        }
    }
}

/// `postgres://user@host:port/db`: the URL without its password, for
/// messages, logs and the effective configuration (`wasmproc config check`).
pub(crate) fn redacted_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "(unparsable URL)".into(),
    }
}

/// What a node does in a cluster.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeRole {
    /// Serve the API and run jobs (default).
    #[default]
    All,
    /// Serve the API only: take no async jobs and run no sync ones (a
    /// request that could run either way runs async). `--workers 0`.
    Api,
    /// Run async jobs only; no HTTP listener.
    Worker,
}

/// `[cluster]`: several nodes on one PostgreSQL database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// This node's name in job records, leases and failure reasons.
    /// Default: the host name and the bind port (`host:5000`).
    pub node_name: Option<String>,
    /// API, worker, or both.
    pub role: NodeRole,
    /// How long a claim on a job lasts without renewal. A node that dies
    /// leaves its jobs for this long before others run them again; a node
    /// cut off for longer loses them. Default 10 s (five missed
    /// heartbeats).
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// How often a node renews its leases and looks for expired ones.
    /// Default 2 s.
    #[serde(with = "humantime_serde")]
    pub heartbeat: Duration,
    /// How many times a job may be started before a lost node fails it
    /// instead of re-queuing it. Default 3.
    pub max_attempts: u32,
    /// Most queued jobs a node claims beyond its free workers, to wait for
    /// the next free one: a claim is a database round trip, and claiming
    /// only as many as there are idle workers caps a node at that many
    /// jobs per round trip. Such a job shows `running` (its lease is held)
    /// while it waits. The node claims ahead only what its workers finish
    /// in about 20 ms at the recent time per job (so long jobs are never
    /// claimed ahead and stay for idle nodes), at most this many. 0 claims
    /// only for idle workers. Default 16.
    pub claim_ahead: usize,
    /// Whether the steps of a tree of nested processes whose inputs are
    /// all values (a map's elements, the first links of a chain) are
    /// queued for any node of the cluster rather than run on their
    /// parent's node (`jobs/spread.rs`). PostgreSQL only. Default true.
    pub spread_steps: bool,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            node_name: None,
            role: NodeRole::All,
            lease: Duration::from_secs(10),
            heartbeat: Duration::from_secs(2),
            max_attempts: 3,
            claim_ahead: 16,
            spread_steps: true,
        }
    }
}

impl ClusterConfig {
    /// The node name: the configured one, or `<host name>:<port>`.
    pub fn node_name(&self, bind: SocketAddr) -> String {
        if let Some(name) = &self.node_name {
            return name.clone();
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "wasmproc".into());
        format!("{host}:{}", bind.port())
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
    /// Synchronous requests waiting for a worker on this node; beyond it
    /// they get 503 with `Retry-After` at once. Each waiting request holds a
    /// connection and its body in memory, so the wait must be bounded like
    /// the async queue. Default 100.
    pub max_waiting_sync: usize,
    /// A process's sync jobs start on the HTTP thread that took the
    /// request (saving two thread hand-offs, about a fifth of a short
    /// job's CPU) while the first slices of its recent jobs took less CPU
    /// than this on average; otherwise on the job threads
    /// (`jobs/inline.rs`). Status reads then share the HTTP threads with
    /// short guests. `"0s"`: every job starts on the job threads. Default
    /// 200 µs.
    #[serde(with = "humantime_serde")]
    pub sync_start_budget: Duration,
    /// How long finished jobs and their results are kept. Default 7 days.
    #[serde(with = "humantime_serde")]
    pub job_retention: Duration,
    /// Most bytes of job data (inputs, logs and results, as stored) before
    /// new jobs are refused with 507 Insufficient Storage; reads,
    /// dismissals and deletions go on. Cluster-wide with PostgreSQL. 0: no
    /// bound. Default 10 GiB.
    pub max_stored_bytes: u64,
    /// Least free space on the data directory's disk, in bytes, below
    /// which new jobs are refused with 507 Insufficient Storage (sled
    /// only: see `jobs/disk_space.rs`). sled cannot recover from a write
    /// that failed for lack of space without a restart, so this stops
    /// short of it. 0: no floor. Default 256 MiB.
    pub min_free_disk_bytes: u64,
    /// Least time between two counts of the stored job data (a walk of
    /// every job; slower counts space themselves out further, see
    /// `jobs/storage.rs`). Freed space is seen by the next count.
    /// Default 30 s.
    #[serde(with = "humantime_serde")]
    pub storage_recount: Duration,
    /// Module bytes that no process and no queued or running job uses are
    /// deleted from the store this long after they were last used (a
    /// deploy, replace or undeploy touching them). The delay covers a job
    /// accepted by one request while another undeploys its process.
    /// Checked with the retention sweep, and after every replace and
    /// undeploy. Default 10 min.
    #[serde(with = "humantime_serde")]
    pub module_grace: Duration,
    /// On shutdown, how long open requests and running jobs may take to
    /// finish, counted from the signal, before the jobs still running are
    /// stopped: async ones are re-queued, a sync request is answered 503
    /// with Retry-After. Default 30 s.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Whether an output its description does not declare, or whose value
    /// its schema refuses, fails the job (`"strict"`, default) or is
    /// logged as a warning (`"warn"`); `[processes.ID] output_checks`
    /// overrides it per process.
    pub output_checks: OutputChecks,
    /// Deepest nesting of processes in one execute request (OGC API -
    /// Processes Part 3 nested processes; the top process is depth 0).
    /// Default 8.
    pub max_nesting_depth: usize,
    /// Most nested processes (steps) in one execute request, at every
    /// depth. Each is a job that takes a worker while it runs. Default 64.
    pub max_nested_steps: usize,
    /// Most elements one `map` of a nested process runs over (each is a
    /// job). Default 10,000.
    pub max_map_elements: usize,
    /// Longest time the steps of one job (its nested processes, at every
    /// depth) may take in all; past it the running steps are dismissed and
    /// the job fails saying so. Default 1 hour.
    #[serde(with = "humantime_serde")]
    pub workflow_timeout: Duration,
    /// Most fuel the guests of one tree of nested processes (every step
    /// at every depth, and the top job's own run) may burn in all; each
    /// also keeps its own limit. Default 10^12, ten steps at the default
    /// per-job limit.
    pub workflow_fuel: u64,
    /// URL prefixes of processes on other OGC API - Processes servers that
    /// a nested process may name (`jobs/remote.rs`), e.g.
    /// `"https://processes.example.org/processes/"`. They are reached
    /// through the guard of `href` inputs too. Default: none.
    pub remote_processes: Vec<String>,
    /// How long the results of a process with `cache = true` are reused.
    /// Default 1 hour.
    #[serde(with = "humantime_serde")]
    pub cache_ttl: Duration,
    /// Most bytes of results the cache keeps in memory (least recently
    /// used go first). Default 256 MiB.
    pub cache_max_bytes: u64,
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
            max_waiting_sync: 100,
            sync_start_budget: Duration::from_micros(200),
            job_retention: Duration::from_secs(7 * 24 * 3600),
            max_stored_bytes: 10 << 30,
            min_free_disk_bytes: 256 << 20,
            storage_recount: Duration::from_secs(30),
            module_grace: Duration::from_secs(600),
            shutdown_grace: Duration::from_secs(30),
            output_checks: OutputChecks::Strict,
            max_nesting_depth: 8,
            max_nested_steps: 64,
            max_map_elements: 10_000,
            workflow_timeout: Duration::from_secs(3600),
            workflow_fuel: 1_000_000_000_000,
            remote_processes: Vec::new(),
            cache_ttl: Duration::from_secs(3600),
            cache_max_bytes: 256 << 20,
        }
    }
}

/// Resource limits: what a job gets by default, and the server-wide
/// maximum that no per-process setting may exceed. Both are complete: the
/// file's partial tables are resolved when it is read (`LimitTables`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(from = "LimitTables")]
pub struct LimitsConfig {
    /// Limits of a job whose process has no override. A field left out of
    /// `[limits.default]` keeps its built-in default ([`Limits::default`]).
    pub default: Limits,
    /// Server-wide maxima. A field left out of `[limits.max]` keeps its
    /// built-in maximum ([`LimitsConfig::builtin_max`]).
    pub max: Limits,
}

impl LimitsConfig {
    /// The built-in maxima: 1e12 fuel, 1 GiB of memory, one hour of wall
    /// clock, 256 MiB of outputs, 1 MiB of log. Generous on purpose: they
    /// bound what a process's override may ask for, while
    /// [`Limits::default`] is what a job gets.
    pub fn builtin_max() -> Limits {
        Limits {
            fuel: 1_000_000_000_000,
            memory_bytes: 1024 * 1024 * 1024,
            timeout: Duration::from_secs(3600),
            output_bytes: 256 * 1024 * 1024,
            log_bytes: 1024 * 1024,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            default: Limits::default(),
            max: Self::builtin_max(),
        }
    }
}

/// `[limits]` as written: two partial tables, each resolved field by field
/// over its own built-in base (serde `from`, so the rest of the code only
/// ever sees complete [`Limits`]).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct LimitTables {
    /// `[limits.default]`, over [`Limits::default`].
    default: PartialLimits,
    /// `[limits.max]`, over [`LimitsConfig::builtin_max`].
    max: PartialLimits,
}

impl From<LimitTables> for LimitsConfig {
    fn from(tables: LimitTables) -> Self {
        Self {
            default: tables.default.over(&Limits::default()),
            max: tables.max.over(&LimitsConfig::builtin_max()),
        }
    }
}

/// A limits table as written in the file: every field optional. Which
/// value a field left out takes depends on the table, so it is resolved
/// over a base ([`PartialLimits::over`]) rather than defaulted by serde.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PartialLimits {
    /// Instructions (wasmtime fuel units).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// Linear memory, in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// Wall-clock time, e.g. `"10m"`.
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Total size of the outputs, in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_bytes: Option<u64>,
    /// Size of the job log, in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_bytes: Option<u64>,
}

impl PartialLimits {
    /// The fields given here, the others from `base`.
    pub fn over(&self, base: &Limits) -> Limits {
        Limits {
            fuel: self.fuel.unwrap_or(base.fuel),
            memory_bytes: self.memory_bytes.unwrap_or(base.memory_bytes),
            timeout: self.timeout.unwrap_or(base.timeout),
            output_bytes: self.output_bytes.unwrap_or(base.output_bytes),
            log_bytes: self.log_bytes.unwrap_or(base.log_bytes),
        }
    }

    /// The names of the fields given here.
    fn given(&self) -> Vec<&'static str> {
        [
            ("fuel", self.fuel.is_some()),
            ("memory_bytes", self.memory_bytes.is_some()),
            ("timeout", self.timeout.is_some()),
            ("output_bytes", self.output_bytes.is_some()),
            ("log_bytes", self.log_bytes.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, present)| present.then_some(name))
        .collect()
    }
}

impl From<Limits> for PartialLimits {
    /// Every field given.
    fn from(limits: Limits) -> Self {
        Self {
            fuel: Some(limits.fuel),
            memory_bytes: Some(limits.memory_bytes),
            timeout: Some(limits.timeout),
            output_bytes: Some(limits.output_bytes),
            log_bytes: Some(limits.log_bytes),
        }
    }
}

/// The fields of `limits` above `max`, each as `(field, value, maximum)`
/// written the way the file writes them.
fn fields_above(limits: &Limits, max: &Limits) -> Vec<(&'static str, String, String)> {
    let duration = |d: Duration| humantime::format_duration(d).to_string();
    let mut above = Vec::new();
    let numbers = [
        ("fuel", limits.fuel, max.fuel),
        ("memory_bytes", limits.memory_bytes, max.memory_bytes),
        ("output_bytes", limits.output_bytes, max.output_bytes),
        ("log_bytes", limits.log_bytes, max.log_bytes),
    ];
    for (name, value, maximum) in numbers {
        if value > maximum {
            above.push((name, value.to_string(), maximum.to_string()));
        }
    }
    if limits.timeout > max.timeout {
        above.push(("timeout", duration(limits.timeout), duration(max.timeout)));
    }
    above.sort_by_key(|(name, _, _)| *name);
    above
}

/// How strictly a successful run's outputs are held to the description.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputChecks {
    /// An undeclared output id or a value its schema refuses fails the
    /// job (`invalid-output`, naming the output). The default: a client
    /// gets what the description promises, or an error.
    #[default]
    Strict,
    /// Those two are logged as warnings (server log and job log) instead:
    /// the value is kept, an undeclared output dropped. For processes
    /// migrated from servers that never checked. A duplicate id or a
    /// contradicted media type fails the job all the same.
    Warn,
}

/// Overrides for one process (the pygeoapi-prefect model).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProcessOverrides {
    /// Replaces the `jobControlOptions` the module declares, e.g.
    /// `["async-execute"]` to force a slow process to run asynchronously.
    pub job_control_options: Option<Vec<String>>,
    /// Limits for this process's jobs: the fields given here, the others
    /// from `[limits.default]`; none may exceed `limits.max`.
    pub limits: Option<PartialLimits>,
    /// Overrides `execution.output_checks` for this process.
    pub output_checks: Option<OutputChecks>,
    /// The process is deterministic: a job with the same module, inputs
    /// and requested outputs as an earlier successful one reuses its
    /// results instead of running (`jobs/cache.rs`). Default `false`.
    pub cache: Option<bool>,
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
