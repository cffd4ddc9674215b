//! Bare wasmtime running `hello-world`, for the benchmarks' floors: the
//! fast-instantiation pattern from wasmtime's own examples (pooling
//! allocator, a pre-instantiated component, no limiter), with fuel and
//! epochs optional. Shared by `job_start.rs` and `sync_path.rs` through
//! `#[path]`, so both measure against the same floor.

#![allow(dead_code)] // each bench uses part of it

/// The store state of the bare benchmarks and its host traits, for the
/// `bindgen!` output of the module it is expanded in (sync and async
/// bindings generate distinct traits).
macro_rules! bench_state {
    () => {
        pub struct State {
            wasi: WasiCtx,
            table: ResourceTable,
        }

        impl WasiView for State {
            fn ctx(&mut self) -> WasiCtxView<'_> {
                WasiCtxView {
                    ctx: &mut self.wasi,
                    table: &mut self.table,
                }
            }
        }

        impl wasmproc::process::host::Host for State {
            fn log(&mut self, _: wasmproc::process::host::Level, _: String) {}
            fn progress(&mut self, _: u8, _: Option<String>) {}
        }

        impl wasmproc::process::types::Host for State {}

        /// A store state with an empty WASI context, as every bare job gets.
        fn fresh_state() -> State {
            State {
                wasi: WasiCtx::builder().build(),
                table: ResourceTable::new(),
            }
        }

        /// `wasm` compiled on `engine` and pre-instantiated against WASI
        /// (added by `add_wasi`, the sync or the async linker functions)
        /// and the host interface.
        fn pre_instantiate(
            engine: &Engine,
            wasm: &[u8],
            add_wasi: fn(&mut Linker<State>) -> wasmtime::Result<()>,
        ) -> ProcessPre<State> {
            let mut linker = Linker::new(engine);
            add_wasi(&mut linker).unwrap();
            Process::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s).unwrap();
            let component = Component::new(engine, wasm).unwrap();
            ProcessPre::new(linker.instantiate_pre(&component).unwrap()).unwrap()
        }
    };
}

/// An engine with the pooling allocator's defaults; `interruptible`
/// compiles fuel and epoch checks in, as wasmproc does.
fn pooled_engine(interruptible: bool) -> wasmtime::Engine {
    let mut config = wasmtime::Config::new();
    config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(
        wasmtime::PoolingAllocationConfig::default(),
    ));
    config.consume_fuel(interruptible);
    config.epoch_interruption(interruptible);
    wasmtime::Engine::new(&config).unwrap()
}

pub mod bare {
    #![allow(missing_docs, unreachable_pub)]

    use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
    use wasmtime::{Engine, Store};
    use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

    wasmtime::component::bindgen!({ path: "../wit", world: "process" });

    bench_state!();

    pub struct Bare {
        engine: Engine,
        pre: ProcessPre<State>,
        interruptible: bool,
    }

    impl Bare {
        /// `interruptible`: compile fuel and epoch checks in, as wasmproc does.
        pub fn new(wasm: &[u8], interruptible: bool) -> Self {
            let engine = super::pooled_engine(interruptible);
            let pre = pre_instantiate(&engine, wasm, wasmtime_wasi::p2::add_to_linker_sync);
            Self {
                engine,
                pre,
                interruptible,
            }
        }

        pub fn run(&self, inputs: &str) -> usize {
            let mut store = Store::new(&self.engine, fresh_state());
            if self.interruptible {
                store.set_fuel(u64::MAX / 2).unwrap();
                store.set_epoch_deadline(1_000_000);
            }
            let instance = self.pre.instantiate(&mut store).unwrap();
            instance
                .call_execute(&mut store, inputs)
                .unwrap()
                .unwrap()
                .len()
        }
    }
}

/// Bare wasmtime with async bindings (instantiate_async + call_async), the
/// mechanism wasmproc needs to cut off a guest blocked in a host call.
pub mod bare_async {
    #![allow(missing_docs, unreachable_pub)]

    use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
    use wasmtime::{Engine, Store};
    use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

    wasmtime::component::bindgen!({ path: "../wit", world: "process", exports: { default: async } });

    bench_state!();

    pub struct BareAsync {
        engine: Engine,
        pre: ProcessPre<State>,
    }

    impl BareAsync {
        pub fn new(wasm: &[u8]) -> Self {
            let engine = super::pooled_engine(true);
            let pre = pre_instantiate(&engine, wasm, wasmtime_wasi::p2::add_to_linker_async);
            Self { engine, pre }
        }

        pub async fn run(&self, inputs: &str) -> usize {
            let mut store = Store::new(&self.engine, fresh_state());
            store.set_fuel(u64::MAX / 2).unwrap();
            store.set_epoch_deadline(1_000_000);
            let instance = self.pre.instantiate_async(&mut store).await.unwrap();
            instance
                .call_execute(&mut store, inputs)
                .await
                .unwrap()
                .unwrap()
                .len()
        }
    }
}
