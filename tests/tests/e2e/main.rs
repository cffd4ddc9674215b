//! Every end-to-end test of wasmproc, in one test binary (one link of
//! wasmtime instead of one per file): a real server on 127.0.0.1 (in this
//! process, or as a child process for kill -9), real sled in temporary
//! directories, a real PostgreSQL (`tests/postgres-up.sh`), real components
//! built from source.
//!
//! One module per area. The suites that must hold on both stores
//! (access, execution, jobs, deploy, deployed_workflows, durability, result_cache,
//! workflows) start their servers through
//! [`server`] and [`child_config`]; [`on_postgres`] compiles them a
//! second time with those two pointing at PostgreSQL.

// `on_postgres` compiles eight suites a second time on purpose.
#![allow(clippy::duplicate_mod)]

use std::path::Path;

use wasmproc_tests::{ChildConfig, TestDatabase, TestServer, TestServerBuilder};

mod access;
mod browser;
mod callbacks;
mod cluster;
mod cors;
mod crash_rounds;
mod deploy;
mod deployed_workflows;
mod durability;
mod execution;
mod fuzz_openapi;
mod hostile;
mod hostile_load;
mod hostile_requests;
mod html;
mod html_check;
mod job_log;
mod jobs;
mod landing;
mod languages;
mod load;
mod logs;
mod metrics;
mod on_postgres;
mod overload;
mod processes;
mod references;
mod remote_steps;
mod result_cache;
mod retention;
mod schema_harness;
mod slow_clients;
mod store_contract;
mod workflows;

/// The `wasmproc-under-test` binary (the server as a child process).
const BINARY: &str = env!("CARGO_BIN_EXE_wasmproc-under-test");

/// Whether `server()` here runs on PostgreSQL (the suites `on_postgres`
/// includes again see `true`).
const ON_POSTGRES: bool = false;

/// A test server on the embedded sled store.
fn server() -> TestServerBuilder {
    TestServer::builder()
}

/// A child server's configuration in `dir` with `workers` job workers on
/// this suite's store (sled: nothing to add), and the database to keep
/// alive while it runs (none).
async fn child_config(dir: &Path, workers: usize) -> (ChildConfig, Option<TestDatabase>) {
    (ChildConfig::with_workers(dir, workers, ""), None)
}
