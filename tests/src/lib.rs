//! Helpers for the end-to-end tests of wasmproc over real HTTP.
//!
//! - [`TestServer`]: a server in this process on 127.0.0.1 with its data in
//!   a temporary directory; configure it with a closure, restart it on the
//!   same data directory.
//! - [`Api`] and [`Reply`]: JSON requests, `Link` headers, bounded polling
//!   of job status ([`Api::wait_for_status`]), OGC exception checks.
//! - [`assert_valid`]: validation against the official OGC API - Processes
//!   Part 1 Core 1.0 schemas in `shared/ogc-schemas/part1-core-1.0`.
//! - [`CallbackReceiver`]: records the callbacks a server sends.
//! - [`ChildServer`]: the `wasmproc-under-test` binary as a child process,
//!   for kill -9 tests.
//! - [`TestDatabase`]: a PostgreSQL database of its own for a test.
//! - [`Cluster`]: several nodes as child processes on one database;
//!   [`OwnPostgres`]: a PostgreSQL server of a test's own to stop and start.

/// `Deref<Target = Api>` for a server handle with an `api: Api` field,
/// so that a test sends its requests through the handle itself
/// (`server.get(…)`): [`TestServer`] and [`ChildServer`] alike.
macro_rules! deref_to_api {
    ($handle:ty) => {
        impl std::ops::Deref for $handle {
            type Target = crate::http::Api;
            fn deref(&self) -> &crate::http::Api {
                &self.api
            }
        }
    };
}

mod callback;
mod child;
mod cluster;
mod files;
mod http;
mod postgres;
mod schema;
mod server;

pub use callback::{Callback, CallbackReceiver};
pub use child::{CHILD_STARTUP, ChildConfig, ChildServer, LISTENING_PREFIX, WORKER_READY};
pub use cluster::{CLUSTER_TOKEN, Cluster, NodeSpec, OwnPostgres, TEST_LEASE};
pub use files::FileServer;
pub use http::{
    Api, EXCEPTION_PREFIX, JOB_TIMEOUT, Operation, POLL_INTERVAL, REL_MONITOR, Reply,
    assert_detail, assert_error_exception, assert_exception, assert_retry_after_seconds,
    assert_retry_later, body_link, body_links, check_exception, detail, fill_until_storage_full,
    http_client, is_json_media_type, last_segment, link_header_href, multipart, operations,
    operations_on, output_value, poll_until, slow_echo, wait_for_storage_room,
};
pub use postgres::{TestDatabase, admin_url};
pub use schema::{assert_invalid, assert_valid, schema_dir, schema_errors};
pub use server::{
    ADMIN_BEARER, ADMIN_TOKEN, HOSTILE_DESCRIBE_WASM, HOSTILE_WASM, SHARED_ARTIFACT_BYTES,
    SHARED_ARTIFACTS, TestServer, TestServerBuilder, hostile_describe_wasm, hostile_limits,
    set_job_control, set_limits, test_config,
};

/// Whether the long versions of the reliability scenarios were asked for
/// (`WASMPROC_LONG=1`, as `reliability/run-long.sh` does).
pub fn long_mode() -> bool {
    std::env::var("WASMPROC_LONG").is_ok_and(|v| v == "1")
}

/// Run `job(context, i)` for every `i` in `0..count` on `concurrency`
/// tokio tasks at once, task `w` taking `w`, `w + concurrency`, … one
/// after another, each call with its own clone of `context` (a shared
/// server handle): the burst of the load tests. Returns every result, task
/// by task in order; panics if a task panicked.
pub async fn fan_out<C, T, Fut>(
    count: usize,
    concurrency: usize,
    context: C,
    job: impl Fn(C, usize) -> Fut + Clone + Send + 'static,
) -> Vec<T>
where
    C: Clone + Send + 'static,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let tasks: Vec<_> = (0..concurrency)
        .map(|worker| {
            let (job, context) = (job.clone(), context.clone());
            tokio::spawn(async move {
                let mut done = Vec::new();
                for i in (worker..count).step_by(concurrency) {
                    done.push(job(context.clone(), i).await);
                }
                done
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("a fan_out task panicked"));
    }
    all
}

/// The relation types of OGC API - Processes 1.0 links.
pub mod rel {
    /// Landing page → conformance declaration.
    pub const CONFORMANCE: &str = "http://www.opengis.net/def/rel/ogc/1.0/conformance";
    /// Landing page → process list.
    pub const PROCESSES: &str = "http://www.opengis.net/def/rel/ogc/1.0/processes";
    /// Landing page → job list.
    pub const JOB_LIST: &str = "http://www.opengis.net/def/rel/ogc/1.0/job-list";
    /// Job → results.
    pub const RESULTS: &str = "http://www.opengis.net/def/rel/ogc/1.0/results";
}

/// The folder of the Python, JavaScript and C example components:
/// `$WASMPROC_POLYGLOT_DIR`, else `polyglot/out/` of the checkout.
pub fn polyglot_dir() -> std::path::PathBuf {
    match std::env::var_os("WASMPROC_POLYGLOT_DIR") {
        Some(dir) => std::path::PathBuf::from(dir),
        None => std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../polyglot/out"),
    }
}

/// The bytes of a built example component (`hello-world-py`, …); fails
/// (no silent skip) with the command that builds it when it is missing.
pub fn polyglot_component(name: &str) -> Vec<u8> {
    let path = polyglot_dir().join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read the {name} component at {} ({e}).\n\
             Build the Python, JavaScript and C examples first:\n\
             \n    polyglot/install-toolchains.sh && polyglot/build-all.sh\n\n\
             or point WASMPROC_POLYGLOT_DIR at a folder holding {name}.wasm.",
            path.display()
        )
    })
}
