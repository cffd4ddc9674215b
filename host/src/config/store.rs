//! `[store]` and `[cluster]`: the database a node keeps its processes and
//! jobs in, and, with PostgreSQL, how the nodes sharing it divide the work
//! (roles, leases, heartbeats, claims). The embedded sled store is one
//! node; `cluster.role` other than `all` needs PostgreSQL, which
//! [`super::Config::validate`] checks.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Secret;

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
