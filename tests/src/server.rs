//! Start an in-process wasmproc server on 127.0.0.1 with its data in a
//! temporary directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tempfile::TempDir;
use wasmproc::config::{Config, Secret, StoreBackend};
use wasmproc::runtime::Limits;
use wasmproc::server::Server;

use crate::http::Api;
use crate::postgres::TestDatabase;

/// The hostile test process component, built by `build.rs`.
pub const HOSTILE_WASM: &str = env!("WASMPROC_GUEST_HOSTILE");

/// The `hostile-describe` test component (unpatched: variant `valid`),
/// built by `build.rs`.
pub const HOSTILE_DESCRIBE_WASM: &str = env!("WASMPROC_GUEST_HOSTILE_DESCRIBE");

/// The literal behind [`ADMIN_TOKEN`], so that [`ADMIN_BEARER`] can be
/// built from it at compile time (`concat!` takes only literals).
macro_rules! admin_token {
    () => {
        "e2e-admin-t0ken"
    };
}

/// The administrator token of servers built with
/// [`TestServerBuilder::with_admin_token`]: one arbitrary value shared by
/// the suites that only need *some* token to deploy, replace and undeploy.
/// A test that depends on a token's value (e.g. that it never reaches the
/// logs) keeps a distinctive one of its own.
pub const ADMIN_TOKEN: &str = admin_token!();

/// The `Authorization` value that carries [`ADMIN_TOKEN`]:
/// `Bearer e2e-admin-t0ken`, for requests built header by header.
pub const ADMIN_BEARER: &str = concat!("Bearer ", admin_token!());

/// The marker in `hostile-describe`'s data before its variant name.
const DESCRIBE_VARIANT_MARKER: &[u8] = b"HOSTILE-DESCRIBE-VARIANT=";
/// Bytes reserved for the variant name after the marker.
const DESCRIBE_VARIANT_LEN: usize = 24;

/// The `hostile-describe` component with its `describe()` switched to
/// `variant` (`not-json`, `bad-output-schema`, … see
/// `tests/hostile-describe/src/lib.rs`): the variant name after the marker
/// in its data is overwritten in place, same length, so the module stays
/// valid and only what `describe()` returns changes.
pub fn hostile_describe_wasm(variant: &str) -> Vec<u8> {
    assert!(
        variant.len() <= DESCRIBE_VARIANT_LEN,
        "variant name too long: {variant}"
    );
    let mut wasm = std::fs::read(HOSTILE_DESCRIBE_WASM)
        .unwrap_or_else(|e| panic!("reading {HOSTILE_DESCRIBE_WASM}: {e}"));
    let found: Vec<usize> = wasm
        .windows(DESCRIBE_VARIANT_MARKER.len())
        .enumerate()
        .filter(|(_, window)| *window == DESCRIBE_VARIANT_MARKER)
        .map(|(at, _)| at + DESCRIBE_VARIANT_MARKER.len())
        .collect();
    assert_eq!(found.len(), 1, "the variant marker must occur exactly once");
    let slot = &mut wasm[found[0]..found[0] + DESCRIBE_VARIANT_LEN];
    slot.fill(b' ');
    slot[..variant.len()].copy_from_slice(variant.as_bytes());
    wasm
}

/// Small limits that stop each hostile behaviour fast: 5e7 fuel, 32 MiB of
/// memory, 1 s of wall clock, 1 MiB of outputs.
pub fn hostile_limits() -> Limits {
    Limits {
        fuel: 50_000_000,
        memory_bytes: 32 * 1024 * 1024,
        timeout: Duration::from_secs(1),
        output_bytes: 1024 * 1024,
        log_bytes: 64 * 1024,
    }
}

/// Set the limits of one process's jobs.
pub fn set_limits(config: &mut Config, process: &str, limits: Limits) {
    config
        .processes
        .entry(process.to_owned())
        .or_default()
        .limits = Some(limits.into());
}

/// Replace the `jobControlOptions` of one process.
pub fn set_job_control(config: &mut Config, process: &str, options: &[&str]) {
    config
        .processes
        .entry(process.to_owned())
        .or_default()
        .job_control_options = Some(options.iter().map(|s| (*s).to_owned()).collect());
}

/// The directories (and, on PostgreSQL, the database) of a test server;
/// removed when the last user drops.
#[derive(Debug)]
struct Dirs {
    root: TempDir,
    database: tokio::sync::OnceCell<TestDatabase>,
}

impl Dirs {
    fn data(&self) -> PathBuf {
        self.root.path().join("data")
    }
    fn processes(&self) -> PathBuf {
        self.root.path().join("processes")
    }
}

/// The artifact directory every test server shares (in the build's
/// output folder, kept between runs): each module, above all the
/// 19 MB Python components that take seconds to compile, is compiled once
/// for the whole suite rather than once per server. Tests about the
/// artifact cache itself set `artifact_dir = None` (the server's default,
/// `data/artifacts`) or use
/// [`ChildServer::write_config_with_private_artifacts`](crate::ChildServer::write_config_with_private_artifacts).
pub const SHARED_ARTIFACTS: &str = concat!(env!("OUT_DIR"), "/shared-artifacts");

/// Most bytes the test servers keep in [`SHARED_ARTIFACTS`]: the suite's
/// own artifacts take about 90 MiB, and artifacts of guests since rebuilt
/// (a new hash) go first once this is reached, so the folder stays this
/// small however many builds it sees.
pub const SHARED_ARTIFACT_BYTES: u64 = 512 << 20;

/// A configuration for tests: 127.0.0.1 on a free port, data in
/// `data_dir`, compiled modules in [`SHARED_ARTIFACTS`].
pub fn test_config(data_dir: &Path) -> Config {
    Config {
        bind: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: data_dir.to_path_buf(),
        artifact_dir: Some(PathBuf::from(SHARED_ARTIFACTS)),
        artifact_cache_bytes: SHARED_ARTIFACT_BYTES,
        ..Config::default()
    }
}

/// Builds a [`TestServer`].
pub struct TestServerBuilder {
    dirs: Arc<Dirs>,
    config: Config,
    postgres: bool,
}

impl TestServerBuilder {
    /// Change the configuration (it starts as [`test_config`]).
    pub fn configure(mut self, change: impl FnOnce(&mut Config)) -> Self {
        change(&mut self.config);
        self
    }

    /// Require [`ADMIN_TOKEN`] (`Authorization: Bearer …`) for deploy,
    /// replace and undeploy, which are disabled without a token.
    pub fn with_admin_token(self) -> Self {
        self.configure(|c| c.auth.admin_token = Some(Secret::new(ADMIN_TOKEN)))
    }

    /// A single job worker (`execution.max_concurrent_jobs = 1`): one job
    /// that pauses holds it, and the next ones queue or wait, as the tests
    /// of queues, dismissal and timeouts need.
    pub fn with_one_worker(self) -> Self {
        self.configure(|c| c.execution.max_concurrent_jobs = 1)
    }

    /// Keep the server's state in a PostgreSQL database of its own (created
    /// at start, dropped with the last handle) instead of sled.
    pub fn on_postgres(mut self) -> Self {
        self.postgres = true;
        self
    }

    /// Serve the `hostile` process from a processes directory, with
    /// [`hostile_limits`].
    pub fn with_hostile(mut self) -> Self {
        let dir = self.dirs.processes();
        std::fs::create_dir_all(&dir).expect("processes dir");
        std::fs::copy(HOSTILE_WASM, dir.join("hostile.wasm"))
            .unwrap_or_else(|e| panic!("copying {HOSTILE_WASM}: {e}"));
        self.config.processes_dir = Some(dir);
        set_limits(&mut self.config, "hostile", hostile_limits());
        self
    }

    /// Start the server.
    pub async fn start(mut self) -> TestServer {
        if self.postgres {
            let db = self.dirs.database.get_or_init(TestDatabase::create).await;
            self.config.store.backend = StoreBackend::Postgres;
            self.config.store.url = Some(Secret::new(db.url()));
        }
        TestServer::start_in(self.dirs, self.config).await
    }
}

/// A wasmproc server running in this process, with an [`Api`] client
/// (reached through `Deref`). Shut down with [`TestServer::shutdown`];
/// dropping it without shutting down leaves the server to the runtime.
pub struct TestServer {
    server: Option<Server>,
    api: Api,
    dirs: Arc<Dirs>,
    config: Config,
}

deref_to_api!(TestServer);

impl TestServer {
    /// A builder with a fresh temporary data directory.
    pub fn builder() -> TestServerBuilder {
        let root = tempfile::Builder::new()
            .prefix("wasmproc-e2e-")
            .tempdir()
            .expect("temporary directory");
        let dirs = Arc::new(Dirs {
            root,
            database: tokio::sync::OnceCell::new(),
        });
        let config = test_config(&dirs.data());
        TestServerBuilder {
            dirs,
            config,
            postgres: false,
        }
    }

    /// A server with the default test configuration.
    pub async fn start() -> TestServer {
        Self::builder().start().await
    }

    async fn start_in(dirs: Arc<Dirs>, config: Config) -> TestServer {
        let server = Server::start(config.clone())
            .await
            .unwrap_or_else(|e| panic!("server did not start: {e:?}"));
        let api = Api::new(server.base_url());
        TestServer {
            server: Some(server),
            api,
            dirs,
            config,
        }
    }

    /// The HTTP client of this server.
    pub fn api(&self) -> &Api {
        &self.api
    }

    /// The configuration the server runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dirs.data()
    }

    /// Shut the server down gracefully.
    pub async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            server
                .shutdown()
                .await
                .unwrap_or_else(|e| panic!("graceful shutdown failed: {e}"));
        }
    }

    /// Shut down and start a new server on the same data directory and
    /// configuration (on a new port).
    pub async fn restart(mut self) -> TestServer {
        if let Some(server) = self.server.take() {
            server
                .shutdown()
                .await
                .unwrap_or_else(|e| panic!("graceful shutdown failed: {e}"));
        }
        TestServer::start_in(self.dirs.clone(), self.config.clone()).await
    }
}
