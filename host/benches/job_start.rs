#![allow(missing_docs)] // criterion's macros generate undocumented items

//! Per-job cost: instantiate a fresh sandbox and execute `hello-world`,
//! through our runtime and through bare wasmtime, in the same run.
//!
//! Run with `cargo bench -p wasmproc --bench job_start`.
//!
//! "bare" is the fast-instantiation pattern from wasmtime's own examples:
//! pooling allocator, a pre-instantiated component, synchronous bindings, no
//! fuel, no epochs, no limiter. "wasmproc" is the real job path: fresh
//! store with fuel, epoch deadline, memory limiter, bounded log, async
//! instantiate + call under a timeout, output classification.

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use tokio_util::sync::CancellationToken;
use wasmproc::runtime::{JobLog, Limits, NoProgress, RunOutcome, Runtime, RuntimeConfig};

const HELLO: &str = env!("WASMPROC_GUEST_HELLO_WORLD");
const INPUTS: &str = r#"{"name": "Joe", "message": "bench"}"#;

#[path = "support/bare.rs"]
mod support;

use support::{bare, bare_async};

fn job_start(c: &mut Criterion) {
    let wasm = std::fs::read(HELLO).expect("hello-world built by build.rs");
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let module = tokio.block_on(runtime.load(wasm.clone())).unwrap();
    let limits = Limits::default();
    let cancel = CancellationToken::new();
    let progress = Arc::new(NoProgress);
    let bare = bare::Bare::new(&wasm, false);
    let bare_interruptible = bare::Bare::new(&wasm, true);

    let mut group = c.benchmark_group("hello-world instantiate + execute");
    group.bench_function("bare wasmtime", |b| b.iter(|| bare.run(INPUTS)));
    group.bench_function("bare wasmtime + fuel + epochs", |b| {
        b.iter(|| bare_interruptible.run(INPUTS))
    });
    let bare_async = bare_async::BareAsync::new(&wasm);
    group.bench_function("bare wasmtime async + fuel + epochs", |b| {
        b.iter(|| tokio.block_on(bare_async.run(INPUTS)))
    });
    group.bench_function("wasmproc runtime", |b| {
        b.iter(|| {
            let log = JobLog::new(limits.log_bytes);
            let run = runtime.run(&module, INPUTS, &limits, progress.clone(), &cancel, log);
            let report = tokio.block_on(run);
            assert!(matches!(report.outcome, RunOutcome::Success { .. }));
        })
    });
    group.finish();
}

criterion_group!(benches, job_start);
criterion_main!(benches);
