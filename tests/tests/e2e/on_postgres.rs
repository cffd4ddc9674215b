//! The access, execution, jobs, deploy, deployed workflows, durability, result cache and workflows
//! suites again, on a server
//! whose store is a PostgreSQL database of its own.

use std::path::Path;

use wasmproc_tests::{ChildConfig, TestDatabase, TestServer, TestServerBuilder};

use super::BINARY;

#[path = "access.rs"]
mod access;
#[path = "deploy.rs"]
mod deploy;
#[path = "deployed_workflows.rs"]
mod deployed_workflows;
#[path = "durability.rs"]
mod durability;
#[path = "execution.rs"]
mod execution;
#[path = "jobs.rs"]
mod jobs;
#[path = "result_cache.rs"]
mod result_cache;
#[path = "workflows.rs"]
mod workflows;

/// `server()` here runs on PostgreSQL.
const ON_POSTGRES: bool = true;

/// A test server on PostgreSQL.
fn server() -> TestServerBuilder {
    TestServer::builder().on_postgres()
}

/// A child server's configuration in `dir` with `workers` job workers on
/// a new database (its `[store]`, and a `[cluster]` of short leases: a
/// node killed with kill -9 leaves its jobs for 2 s), and that database.
async fn child_config(dir: &Path, workers: usize) -> (ChildConfig, Option<TestDatabase>) {
    let db = TestDatabase::create().await;
    let toml = format!(
        "[store]\nbackend = \"postgres\"\nurl = {:?}\n[cluster]\nlease = \"2s\"\nheartbeat = \"500ms\"\n",
        db.url()
    );
    (ChildConfig::with_workers(dir, workers, &toml), Some(db))
}
