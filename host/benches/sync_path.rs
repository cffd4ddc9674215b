#![allow(missing_docs)] // criterion's macros generate undocumented items

//! The sync path without the network: one synchronous `hello-world`
//! request through the whole server in process, beside its floor, so a
//! regression anywhere between the router and the store shows without wrk.
//!
//! Run with `cargo bench -p wasmproc --bench sync_path`.
//!
//! - "wasmproc router": `POST /processes/hello-world/execution` sent to
//!   [`Server::router`] of a real server (sled in a temporary directory,
//!   two job threads, the built-in hello-world): every layer and handler,
//!   the scheduler's hand-off to a job thread, the sandbox, and the job's
//!   record written to sled; only sockets and hyper are left out.
//! - "wasmproc router, sync_start_budget = 0s": the same with every sync
//!   job started on the job threads (as before 38fa965): the difference
//!   is what handing the job over and its answer back costs.
//! - "bare axum": the same request to a one-route axum router answering a
//!   fixed body: the HTTP-framework part of the floor.
//! - "bare wasmtime": one hello-world job on bare wasmtime (the pattern of
//!   `job_start.rs`): the sandbox part of the floor.
//!
//! The floor of issue 16 is "bare axum" + "bare wasmtime"; the ratio of
//! "wasmproc router" to it is what `bench/run-all.sh` measures over the
//! network (BENCHMARKS.md).

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use criterion::{Criterion, criterion_group, criterion_main};
use tower::ServiceExt;
use wasmproc::config::Config;
use wasmproc::server::Server;

#[path = "support/bare.rs"]
mod support;

const HELLO: &str = env!("WASMPROC_GUEST_HELLO_WORLD");
const BODY: &str = r#"{"inputs":{"name":"Joe"}}"#;

/// The request every iteration sends.
fn execute_request() -> Request<Body> {
    Request::post("/processes/hello-world/execution")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(BODY))
        .expect("request")
}

/// Send `request` to `router` and read the whole answer, checking it is a
/// 200 (a benchmark of failing requests would measure the wrong path).
async fn send(router: &axum::Router, request: Request<Body>) -> usize {
    let response = router.clone().oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    body.len()
}

fn sync_path(c: &mut Criterion) {
    // Like the server's own: the HTTP side on a multi-thread runtime (the
    // jobs get their own threads inside `Server`).
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    let data = tempfile::tempdir().expect("temporary directory");
    let start = |dir: &str, sync_start_budget: Duration| {
        let mut config = Config {
            bind: "127.0.0.1:0".parse().expect("address"),
            data_dir: data.path().join(dir),
            ..Config::default()
        };
        config.execution.max_concurrent_jobs = 2;
        config.execution.sync_start_budget = sync_start_budget;
        tokio
            .block_on(Server::start(config))
            .expect("server starts")
    };
    // As configured by default: a short sync job starts on the thread that
    // took the request (`jobs/inline.rs`).
    let server = start("default", Config::default().execution.sync_start_budget);
    let router = server.router();
    // Every sync job handed to the job threads and its answer handed back,
    // as before 38fa965: what the two hand-offs cost.
    let handing_over = start("handing-over", Duration::ZERO);
    let handing_over_router = handing_over.router();
    let bare_router = axum::Router::new().route(
        "/processes/hello-world/execution",
        axum::routing::post(|| async { axum::Json(serde_json::json!({"echo": "Hello Joe!"})) }),
    );
    let wasm = std::fs::read(HELLO).expect("hello-world built by build.rs");
    let bare_wasmtime = support::bare::Bare::new(&wasm, false);

    let mut group = c.benchmark_group("sync hello-world request, in process");
    group.bench_function("wasmproc router", |b| {
        b.iter(|| tokio.block_on(send(&router, execute_request())))
    });
    group.bench_function("wasmproc router, sync_start_budget = 0s", |b| {
        b.iter(|| tokio.block_on(send(&handing_over_router, execute_request())))
    });
    group.bench_function("bare axum", |b| {
        b.iter(|| tokio.block_on(send(&bare_router, execute_request())))
    });
    group.bench_function("bare wasmtime", |b| {
        b.iter(|| bare_wasmtime.run(r#"{"name": "Joe"}"#))
    });
    group.finish();
    tokio.block_on(server.shutdown()).expect("clean shutdown");
    tokio
        .block_on(handing_over.shutdown())
        .expect("clean shutdown");
}

criterion_group!(benches, sync_path);
criterion_main!(benches);
