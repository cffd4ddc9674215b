//! Write [wasmproc] processes in Rust.
//!
//! A process is a type that implements [`Process`] and is exported with
//! [`export_process!`]. The crate hides the WIT plumbing of the
//! `wasmproc:process` world: inputs arrive as [`Inputs`] (a JSON object keyed
//! by input id, already validated by the host), outputs are built with
//! [`Output`], failures are a [`ProcessError`] with an OGC-style code, and
//! [`progress`] / [`log`] talk to the host while the job runs.
//!
//! ```no_run
//! use wasmproc_guest::{export_process, json, Inputs, Output, Process, ProcessError, Value};
//!
//! struct Hello;
//!
//! impl Process for Hello {
//!     fn describe() -> Value {
//!         json!({ "id": "hello", "version": "1.0.0", "title": "Hello",
//!                 "inputs": { "name": { "schema": { "type": "string" } } },
//!                 "outputs": { "greeting": { "schema": { "type": "string" } } } })
//!     }
//!     fn execute(inputs: Inputs) -> Result<Vec<Output>, ProcessError> {
//!         let name = inputs.required_str("name")?;
//!         Ok(vec![Output::json("greeting", &format!("Hello {name}!"))])
//!     }
//! }
//!
//! export_process!(Hello);
//! ```
//!
//! Build with `cargo build --target wasm32-wasip2 --release`; the `.wasm` in
//! `target/wasm32-wasip2/release/` is the component to deploy.
//!
//! [wasmproc]: https://example.invalid/wasmproc

mod inputs;
mod output;

pub use inputs::{BinaryInput, Inputs};
pub use output::{Output, OutputValue};
pub use serde_json::{Value, json};

/// Bindings generated from `wit/process.wit`. Not part of the stable API:
/// use the types re-exported at the crate root instead.
#[doc(hidden)]
pub mod bindings {
    #![allow(missing_docs, unreachable_pub, unsafe_code)]
    wit_bindgen::generate!({
        path: "../wit",
        world: "process",
        pub_export_macro: true,
        export_macro_name: "export_bindings",
        default_bindings_module: "::wasmproc_guest::bindings",
    });
}

use bindings::wasmproc::process::host;

/// A process: describes itself and executes jobs.
pub trait Process {
    /// The OGC API - Processes process description (`id`, `version`,
    /// `title`, `inputs`, `outputs` with JSON Schemas, and optionally
    /// `jobControlOptions`, `description`, `keywords`).
    fn describe() -> Value;

    /// Run one job on already validated inputs.
    fn execute(inputs: Inputs) -> Result<Vec<Output>, ProcessError>;
}

/// A failure reported by the process itself: a short machine-readable
/// `code` (e.g. `invalid-input`) and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessError {
    /// Machine-readable reason, in the style of OGC exception types.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
}

impl ProcessError {
    /// A process error with any code.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }

    /// The inputs are well-formed but unusable (code `invalid-input`).
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new("invalid-input", message)
    }

    /// The process could not produce a result (code `no-result`).
    pub fn no_result(message: impl Into<String>) -> Self {
        Self::new("no-result", message)
    }
}

impl std::fmt::Display for ProcessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ProcessError {}

/// Severity of a [`log`] line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal progress information.
    Info,
    /// Something unexpected but recoverable.
    Warn,
    /// A failure.
    Error,
}

/// Append a line to the job's log (the host bounds its size).
pub fn log(level: Level, message: &str) {
    let level = match level {
        Level::Trace => host::Level::Trace,
        Level::Debug => host::Level::Debug,
        Level::Info => host::Level::Info,
        Level::Warn => host::Level::Warn,
        Level::Error => host::Level::Error,
    };
    host::log(level, message);
}

/// Report progress of the running job: `percent` is clamped to 100.
pub fn progress(percent: u8, message: Option<&str>) {
    host::progress(percent.min(100), message);
}

/// Glue used by [`export_process!`]; not part of the API.
#[doc(hidden)]
pub mod __private {
    use super::bindings::wasmproc::process::types;
    use super::{Inputs, Process};

    /// Serialise the description for the `describe` export.
    pub fn describe<P: Process>() -> String {
        P::describe().to_string()
    }

    /// Parse inputs, run the process and lower its outputs.
    pub fn execute<P: Process>(inputs: String) -> Result<Vec<types::Output>, types::ProcessError> {
        let lowered_error = |e: super::ProcessError| types::ProcessError {
            code: e.code,
            message: e.message,
        };
        let inputs = Inputs::from_json(&inputs).map_err(lowered_error)?;
        let outputs = P::execute(inputs).map_err(lowered_error)?;
        Ok(outputs.into_iter().map(super::Output::lower).collect())
    }
}

/// Export a [`Process`] implementation as the component's `process` world.
///
/// Use it once per component, at the crate root: `export_process!(MyProcess);`
#[macro_export]
macro_rules! export_process {
    ($process:ty) => {
        const _: () = {
            struct __WasmprocExport;

            impl $crate::bindings::Guest for __WasmprocExport {
                fn describe() -> ::std::string::String {
                    $crate::__private::describe::<$process>()
                }

                fn execute(
                    inputs: ::std::string::String,
                ) -> ::std::result::Result<
                    ::std::vec::Vec<$crate::bindings::wasmproc::process::types::Output>,
                    $crate::bindings::wasmproc::process::types::ProcessError,
                > {
                    $crate::__private::execute::<$process>(inputs)
                }
            }

    $crate::bindings::export_bindings!(__WasmprocExport with_types_in $crate::bindings);
        };
    };
}
