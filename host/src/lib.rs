//! wasmproc: an OGC API - Processes server whose processes are WebAssembly
//! components.
//!
//! # Layout
//! - [`runtime`]: the sandbox. A narrow wrapper around wasmtime: engine
//!   configuration, per-job limits (fuel, memory, wall clock, output, log),
//!   the compiled-artifact cache, and the classification of how a run ends.
//!   Knows nothing of HTTP or storage.
//! - [`builtin`]: the example processes compiled into the binary.
//! - [`config`]: server settings (TOML file, environment, flags) and defaults.
//!
//! The `wasmproc` binary (`src/main.rs`, `src/cli/`) is the command line.
//! Data flows one way: the command line and (later) the HTTP API call the
//! runtime; the runtime calls nothing of ours.

pub mod api;
pub mod builtin;
pub mod config;
pub mod failure;
pub mod jobs;
pub mod ogc;
pub mod runtime;
pub mod server;
pub mod store;
