//! Several wasmproc nodes as separate processes (`wasmproc-under-test`) on
//! one PostgreSQL database, each on its own 127.0.0.1 port with its own data
//! directory (artifact cache); nodes can be killed with SIGKILL and
//! restarted. Also a PostgreSQL cluster of a test's own, to stop and start.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;

use crate::child::ChildServer;
use crate::postgres::TestDatabase;

/// The admin token of every cluster node.
pub const CLUSTER_TOKEN: &str = "cluster-admin-token";

/// How a node is configured.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// Its name (`cluster.node_name`).
    pub name: String,
    /// `execution.max_concurrent_jobs` (0: an API-only node).
    pub workers: usize,
    /// `cluster.role`: `all`, `api` or `worker`.
    pub role: &'static str,
}

impl NodeSpec {
    /// A node that serves the API and runs `workers` jobs at once.
    pub fn all(name: &str, workers: usize) -> Self {
        Self {
            name: name.into(),
            workers,
            role: "all",
        }
    }

    /// An API-only node (`--workers 0`).
    pub fn api(name: &str) -> Self {
        Self {
            name: name.into(),
            workers: 0,
            role: "api",
        }
    }

    /// A worker-only node (no HTTP).
    pub fn worker(name: &str, workers: usize) -> Self {
        Self {
            name: name.into(),
            workers,
            role: "worker",
        }
    }
}

/// Cluster timing for tests: leases expire 2 s after a node dies, and
/// nodes renew them every 400 ms.
pub const TEST_LEASE: Duration = Duration::from_secs(2);

struct Node {
    binary: PathBuf,
    spec: NodeSpec,
    dir: PathBuf,
    config: PathBuf,
    child: Option<ChildServer>,
}

/// Nodes on one database.
pub struct Cluster {
    nodes: Vec<Node>,
    // Dropped after the nodes (fields drop in order).
    root: TempDir,
    url: String,
}

/// The config of one node.
fn node_config(spec: &NodeSpec, url: &str, store_timeout: &str) -> String {
    format!(
        "max_request_bytes = 67108864\n\
         [execution]\nmax_concurrent_jobs = {workers}\nmax_queued_jobs = 5000\nshutdown_grace = \"1s\"\n\
         [store]\nbackend = \"postgres\"\nurl = {url:?}\ntimeout = {store_timeout:?}\npool_size = 8\n\
         [cluster]\nnode_name = {name:?}\nrole = {role:?}\nlease = \"{lease}ms\"\nheartbeat = \"400ms\"\nmax_attempts = 3\n\
         [auth]\nadmin_token = {token:?}\n",
        workers = spec.workers,
        name = spec.name,
        role = spec.role,
        lease = TEST_LEASE.as_millis(),
        token = CLUSTER_TOKEN,
    )
}

impl Cluster {
    /// Start one node per spec (`binary` is the `wasmproc-under-test`
    /// binary, `env!("CARGO_BIN_EXE_wasmproc-under-test")` in a test) on
    /// the database at `url`, one after the other (the first migrates the
    /// schema).
    pub fn start(binary: &str, url: &str, specs: &[NodeSpec]) -> Self {
        Self::start_with_timeout(binary, url, specs, "2s")
    }

    /// The same with another `store.timeout`.
    pub fn start_with_timeout(
        binary: &str,
        url: &str,
        specs: &[NodeSpec],
        store_timeout: &str,
    ) -> Self {
        let root = tempfile::Builder::new()
            .prefix("wasmproc-cluster-")
            .tempdir()
            .expect("temporary directory");
        let mut nodes = Vec::new();
        for spec in specs {
            let dir = root.path().join(&spec.name);
            std::fs::create_dir_all(&dir).expect("node directory");
            let config = ChildServer::write_config(&dir, &node_config(spec, url, store_timeout));
            let mut node = Node {
                binary: PathBuf::from(binary),
                spec: spec.clone(),
                dir,
                config,
                child: None,
            };
            node.child = Some(Self::spawn(&node));
            nodes.push(node);
        }
        Self {
            nodes,
            root,
            url: url.to_owned(),
        }
    }

    /// Start a cluster on a fresh database of its own.
    pub async fn on_new_database(binary: &str, specs: &[NodeSpec]) -> (TestDatabase, Self) {
        let db = TestDatabase::create().await;
        let cluster = Self::start(binary, db.url(), specs);
        (db, cluster)
    }

    fn spawn(node: &Node) -> ChildServer {
        ChildServer::spawn(
            &node.binary.display().to_string(),
            &node.config,
            &node.dir.join("stderr.log"),
            Duration::from_secs(60),
        )
    }

    /// Node `i` (panics if it is not running).
    pub fn node(&self, i: usize) -> &ChildServer {
        self.nodes[i]
            .child
            .as_ref()
            .unwrap_or_else(|| panic!("node {} is not running", self.nodes[i].spec.name))
    }

    /// How many nodes there are.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Whether node `i` runs.
    pub fn is_up(&self, i: usize) -> bool {
        self.nodes[i].child.is_some()
    }

    /// The name of node `i`.
    pub fn name(&self, i: usize) -> &str {
        &self.nodes[i].spec.name
    }

    /// What node `i` wrote to stderr (across restarts).
    pub fn stderr(&self, i: usize) -> String {
        std::fs::read_to_string(self.nodes[i].dir.join("stderr.log")).unwrap_or_default()
    }

    /// SIGKILL node `i`.
    pub fn kill9(&mut self, i: usize) {
        if let Some(child) = self.nodes[i].child.take() {
            child.kill9();
        }
    }

    /// Start node `i` again (same config and data directory, new port).
    pub fn restart(&mut self, i: usize) {
        assert!(self.nodes[i].child.is_none(), "node {i} still runs");
        let child = Self::spawn(&self.nodes[i]);
        self.nodes[i].child = Some(child);
    }

    /// The database URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The temporary directory of the nodes.
    pub fn root(&self) -> &Path {
        self.root.path()
    }
}

/// A PostgreSQL cluster of a test's own (run by `tests/postgres-up.sh` in a
/// temporary directory on a free port), so the test may stop and start it
/// without disturbing the others.
pub struct OwnPostgres {
    root: TempDir,
    port: u16,
}

impl OwnPostgres {
    fn script(&self, args: &[&str]) -> std::process::Output {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("postgres-up.sh");
        let output = std::process::Command::new(&script)
            .args(args)
            .env("WASMPROC_TEST_PG_ROOT", self.root.path())
            .env("WASMPROC_TEST_PG_PORT", self.port.to_string())
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
        assert!(
            output.status.success(),
            "{} {args:?} failed: {}",
            script.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// Create and start it; returns it with its URL.
    pub fn start() -> (Self, String) {
        let root = tempfile::Builder::new()
            .prefix("wasmproc-own-pg-")
            .tempdir()
            .expect("temporary directory");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let pg = Self { root, port };
        let output = pg.script(&[]);
        let url = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        (pg, url)
    }

    /// Stop it (fast shutdown: connections are cut).
    pub fn stop(&self) {
        self.script(&["--stop"]);
    }

    /// Start it again on the same data and port.
    pub fn start_again(&self) {
        self.script(&[]);
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("postgres-up.sh");
        let _ = std::process::Command::new(script)
            .arg("--stop")
            .env("WASMPROC_TEST_PG_ROOT", self.root.path())
            .env("WASMPROC_TEST_PG_PORT", self.port.to_string())
            .output();
    }
}
