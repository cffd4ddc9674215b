//! The benchmark *floor* of a sync request: what one request costs when
//! it is nothing but a bare axum request plus one bare wasmtime job.
//!
//! `wasmproc-bench-floor 127.0.0.1:PORT HELLO_WORLD.wasm [--tuned]` answers
//! `POST /processes/hello-world/execution` like wasmproc's synchronous raw
//! response, by running the hello-world component in a fresh instance per
//! request, right in the handler: wasmtime's fast-instantiation pattern
//! (pooling allocator, a pre-instantiated component, synchronous
//! bindings, a store with an empty WASI context), without fuel, epochs,
//! limits, a job record, storage or a hand-off to another thread. The
//! server CPU per request of this, measured under the same load in the
//! same run as wasmproc's, is the floor of issue 16: "one bare-wasmtime
//! job plus one bare-axum request", with the network part included on
//! both sides.
//!
//! The pooling allocator's defaults reset a slot by `madvise`, which on a
//! multi-threaded server sends a TLB-shootdown interrupt to the other core
//! per job (BENCHMARKS.md); `--tuned` resets slots the way wasmproc's
//! dirty-page pool does (`PAGEMAP_SCAN`, 512 KiB kept resident), so the
//! floor can be given with and without that knowledge.

mod serve;

use std::process::ExitCode;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store,
};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The `process` world's bindings, generated (and left undocumented).
mod bindings {
    #![allow(missing_docs)]
    wasmtime::component::bindgen!({ path: "../../wit", world: "process" });
}

use bindings::wasmproc::process::{host, types};
use bindings::{Process, ProcessPre};

/// The store state: WASI with nothing granted, and the `host` imports
/// doing nothing (hello-world calls neither).
struct Sandbox {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl host::Host for Sandbox {
    fn log(&mut self, _: host::Level, _: String) {}
    fn progress(&mut self, _: u8, _: Option<String>) {}
}

impl types::Host for Sandbox {}

/// The engine and the pre-instantiated component, shared by requests.
struct Floor {
    engine: Engine,
    pre: ProcessPre<Sandbox>,
}

impl Floor {
    fn load(wasm: &[u8], tuned: bool) -> wasmtime::Result<Self> {
        let mut config = Config::new();
        let mut pool = PoolingAllocationConfig::default();
        if tuned {
            pool.pagemap_scan(Enabled::Auto)
                .linear_memory_keep_resident(512 * 1024)
                .table_keep_resident(64 * 1024);
        }
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        Process::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
        let component = Component::new(&engine, wasm)?;
        let pre = ProcessPre::new(linker.instantiate_pre(&component)?)?;
        Ok(Self { engine, pre })
    }

    /// One job: a fresh store and instance, `execute(inputs)`, the first
    /// output's JSON text.
    fn run(&self, inputs: &str) -> Result<String, String> {
        let sandbox = Sandbox {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
        };
        let mut store = Store::new(&self.engine, sandbox);
        let instance = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| e.to_string())?;
        let outputs = instance
            .call_execute(&mut store, inputs)
            .map_err(|e| e.to_string())?
            .map_err(|e| e.message)?;
        match outputs.into_iter().next().map(|o| o.value) {
            Some(types::Value::Json(text)) => Ok(text),
            _ => Err("no JSON output".into()),
        }
    }
}

/// Take the request's inputs, run the job, answer its output raw.
async fn execute(State(floor): State<Arc<Floor>>, body: Bytes) -> Response {
    let request: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("invalid JSON: {e}")).into_response(),
    };
    let inputs = request["inputs"].to_string();
    match floor.run(&inputs) {
        Ok(text) => ([(header::CONTENT_TYPE, "application/json")], text).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (addr, wasm, tuned) = match args.as_slice() {
        [_, addr, wasm] => (addr, wasm, false),
        [_, addr, wasm, flag] if flag == "--tuned" => (addr, wasm, true),
        _ => {
            eprintln!("usage: wasmproc-bench-floor 127.0.0.1:PORT HELLO_WORLD.wasm [--tuned]");
            return ExitCode::from(2);
        }
    };
    let floor = match std::fs::read(wasm)
        .map_err(wasmtime::Error::from)
        .and_then(|bytes| Floor::load(&bytes, tuned))
    {
        Ok(floor) => Arc::new(floor),
        Err(e) => {
            eprintln!("cannot load {wasm}: {e:#}");
            return ExitCode::from(1);
        }
    };
    let app = Router::new()
        .route("/processes/hello-world/execution", post(execute))
        .with_state(floor);
    serve::serve("floor", addr, app).await
}
