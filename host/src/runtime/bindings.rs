//! Host bindings generated from `wit/process.wit`.
//!
//! Exports are async so a call can be bounded by a timer and dropped while
//! the guest sleeps in a host call; the `log` and `progress` imports never
//! block, so they stay synchronous.

#![allow(missing_docs, unreachable_pub)]

wasmtime::component::bindgen!({
    path: "../wit",
    world: "process",
    exports: { default: async },
});
