//! The example processes shipped inside the binary as built-in processes.
//!
//! `build.rs` compiles `processes/*` for `wasm32-wasip2`; the components are
//! embedded here so one binary serves them with nothing else installed.

/// A component embedded in the binary.
#[derive(Debug, Clone, Copy)]
pub struct BuiltinProcess {
    /// The crate name of the process (its id is what `describe()` says).
    pub name: &'static str,
    /// The component bytes.
    pub wasm: &'static [u8],
}

/// Every built-in process.
pub const BUILTIN_PROCESSES: &[BuiltinProcess] = &[
    BuiltinProcess {
        name: "hello-world",
        wasm: include_bytes!(env!("WASMPROC_GUEST_HELLO_WORLD")),
    },
    BuiltinProcess {
        name: "echo",
        wasm: include_bytes!(env!("WASMPROC_GUEST_ECHO")),
    },
    BuiltinProcess {
        name: "geometry",
        wasm: include_bytes!(env!("WASMPROC_GUEST_GEOMETRY")),
    },
];
