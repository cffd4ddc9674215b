//! How a run ends: the one place that classifies every way a job can finish.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use wasmtime::Trap;

use super::limits::{Limits, MemoryLimitExceeded};
use crate::failure::FailureKind;

/// The value of one output as the host keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data", rename_all = "lowercase")]
pub enum OutputValue {
    /// A JSON document.
    Json(serde_json::Value),
    /// Raw bytes (base64 when serialised).
    Bytes(#[serde(with = "base64_bytes")] Vec<u8>),
}

/// Serde for `OutputValue::Bytes`: standard base64 with padding, so that
/// binary outputs fit in the JSON the stores keep results as.
mod base64_bytes {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

/// One output produced by a successful run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessOutput {
    /// The output id from the process description.
    pub id: String,
    /// The media type (defaulted by the host when the guest gave none).
    pub media_type: String,
    /// The value.
    pub value: OutputValue,
}

impl ProcessOutput {
    /// Size of the value in bytes (JSON counted as its text).
    pub fn size_bytes(&self) -> u64 {
        match &self.value {
            OutputValue::Json(v) => v.to_string().len() as u64,
            OutputValue::Bytes(b) => b.len() as u64,
        }
    }
}

/// How an output breaks the contract between a guest and the host. The
/// runtime finds what needs no description (JSON syntax, media type
/// syntax); the jobs layer what the process description says
/// (`jobs/validate.rs`, `InputValidator::check_outputs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "problem", rename_all = "kebab-case")]
pub enum OutputProblem {
    /// A `json` value that does not parse.
    #[error("its json value is not valid JSON: {reason}")]
    NotJson {
        /// The parser's reason (position, not the text).
        reason: String,
    },
    /// A media type that is not `type/subtype[; parameters]` (it would be
    /// sent as a `Content-Type` header).
    #[error("'{media_type}' is not a media type")]
    MalformedMediaType {
        /// What the guest gave, cut to a bounded length.
        media_type: String,
    },
    /// An id the process description does not declare.
    #[error("the process description does not declare it (declared: {})", .declared.join(", "))]
    Undeclared {
        /// The ids it declares.
        declared: Vec<String>,
    },
    /// The same id returned twice: results are keyed by output id.
    #[error("it was returned more than once")]
    Duplicate,
    /// A JSON value its declared schema refuses (`null` for a number, a
    /// string for an object, a value outside an enum).
    #[error(
        "{reason}; fix the value the process returns, or the output's schema in its description"
    )]
    SchemaViolated {
        /// The schema's reason, with the path inside the value; long
        /// values are not quoted back.
        reason: String,
    },
    /// A media type the description's `contentMediaType` contradicts.
    #[error("media type '{media_type}' contradicts the description, which declares {}", .declared.join(", "))]
    MediaTypeContradicted {
        /// What the guest gave.
        media_type: String,
        /// What the description allows.
        declared: Vec<String>,
    },
}

/// Exactly one of the ways a run can end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum RunOutcome {
    /// The process returned outputs.
    Success {
        /// The outputs, in the order the process returned them.
        outputs: Vec<ProcessOutput>,
    },
    /// The process reported a failure through its `process-error`.
    ProcessError {
        /// The process's machine-readable code.
        code: String,
        /// The process's message.
        message: String,
    },
    /// The guest ran out of fuel (its instruction budget).
    FuelExhausted {
        /// The fuel budget.
        limit: u64,
    },
    /// The wall-clock budget ran out.
    Timeout {
        /// The wall-clock budget.
        #[serde(with = "duration_millis")]
        limit: Duration,
    },
    /// The guest asked for more linear memory than its budget.
    MemoryLimit {
        /// Total bytes the guest asked for.
        requested: u64,
        /// The memory budget.
        limit: u64,
    },
    /// The outputs were larger than the output budget.
    OutputTooLarge {
        /// Total size of the outputs.
        size: u64,
        /// The output budget.
        limit: u64,
    },
    /// The process returned an output that breaks its contract (see
    /// [`OutputProblem`]). Nothing of the run is kept as a result: a
    /// malformed value must neither be stored nor served.
    InvalidOutput {
        /// The output id as the guest gave it.
        output: String,
        /// What is wrong with it.
        problem: OutputProblem,
    },
    /// The guest trapped (panic, abort, stack overflow, bad memory access,
    /// exit) or could not be instantiated.
    Trap {
        /// What happened, without host backtraces.
        message: String,
    },
    /// The job was cancelled (dismissed) while running.
    Cancelled,
}

impl RunOutcome {
    /// A short stable name of the outcome: `success`, `cancelled`, or the
    /// wire name of its [`FailureKind`].
    pub fn kind(&self) -> &'static str {
        match (self, self.failure_kind()) {
            (_, Some(kind)) => kind.as_str(),
            (RunOutcome::Cancelled, None) => "cancelled",
            (_, None) => "success",
        }
    }

    /// The failure kind of this outcome; `None` for a success and for a
    /// cancellation (a dismissed job is deleted, not failed).
    pub fn failure_kind(&self) -> Option<FailureKind> {
        Some(match self {
            RunOutcome::Success { .. } | RunOutcome::Cancelled => return None,
            RunOutcome::ProcessError { .. } => FailureKind::ProcessError,
            RunOutcome::FuelExhausted { .. } => FailureKind::FuelExhausted,
            RunOutcome::Timeout { .. } => FailureKind::Timeout,
            RunOutcome::MemoryLimit { .. } => FailureKind::MemoryLimit,
            RunOutcome::OutputTooLarge { .. } => FailureKind::OutputTooLarge,
            RunOutcome::InvalidOutput { .. } => FailureKind::InvalidOutput,
            RunOutcome::Trap { .. } => FailureKind::Trap,
        })
    }

    /// Whether the run succeeded.
    pub fn is_success(&self) -> bool {
        matches!(self, RunOutcome::Success { .. })
    }

    /// A sentence for people saying why the run failed (which limit, which
    /// error); `None` on success.
    pub fn failure_reason(&self) -> Option<String> {
        Some(match self {
            RunOutcome::Success { .. } => return None,
            RunOutcome::ProcessError { code, message } => {
                format!("process error ({code}): {message}")
            }
            RunOutcome::FuelExhausted { limit } => {
                format!("fuel limit exhausted: the process used all {limit} units of fuel")
            }
            RunOutcome::Timeout { limit } => format!(
                "wall-clock limit exceeded: the process ran longer than {}",
                humantime::format_duration(*limit)
            ),
            RunOutcome::MemoryLimit { requested, limit } => format!(
                "memory limit exceeded: the process asked for {requested} bytes of linear memory, limit is {limit}"
            ),
            RunOutcome::OutputTooLarge { size, limit } => {
                format!("output limit exceeded: the outputs are {size} bytes, limit is {limit}")
            }
            RunOutcome::InvalidOutput { output, problem } => {
                format!("the process returned an invalid output '{output}': {problem}")
            }
            RunOutcome::Trap { message } => format!("the process trapped: {message}"),
            RunOutcome::Cancelled => "the job was dismissed while running".to_owned(),
        })
    }

    /// Classify an error returned by instantiating or calling the guest.
    ///
    /// `memory_exceeded` is what the store's limiter recorded: a denial can
    /// surface as a downcastable error or, when the guest's allocator reacts
    /// first, as a plain `unreachable` trap.
    pub(crate) fn from_call_error(
        error: &wasmtime::Error,
        limits: &Limits,
        memory_exceeded: Option<MemoryLimitExceeded>,
    ) -> RunOutcome {
        if let Some(exceeded) = error
            .downcast_ref::<MemoryLimitExceeded>()
            .copied()
            .or(memory_exceeded)
        {
            return RunOutcome::MemoryLimit {
                requested: exceeded.requested,
                limit: exceeded.limit,
            };
        }
        match error.downcast_ref::<Trap>() {
            Some(Trap::OutOfFuel) => {
                return RunOutcome::FuelExhausted { limit: limits.fuel };
            }
            Some(Trap::Interrupt) => {
                return RunOutcome::Timeout {
                    limit: limits.timeout,
                };
            }
            _ => {}
        }
        if let Some(exit) = error.downcast_ref::<wasmtime_wasi::I32Exit>() {
            return RunOutcome::Trap {
                message: format!("the process called exit with status {}", exit.0),
            };
        }
        RunOutcome::Trap {
            message: describe_trap(error),
        }
    }
}

/// The root cause of a trap plus the wasm backtrace, without host frames.
///
/// Built from the error's parts, never from `{:?}`: with `RUST_BACKTRACE`
/// set, the debug form carries kilobytes of host frames that mean nothing
/// to the process author. The hints translate what a trap usually means
/// for a guest (a Rust panic is `unreachable`; a Rust stack overflow hits
/// the shadow stack in linear memory and shows as an out-of-bounds
/// access, not as a stack overflow). At most 8 named frames are kept.
fn describe_trap(error: &wasmtime::Error) -> String {
    let mut message = error.root_cause().to_string();
    if let Some(trap) = error.downcast_ref::<Trap>() {
        let hint = match trap {
            Trap::UnreachableCodeReached => Some("the guest panicked or aborted"),
            Trap::MemoryOutOfBounds => {
                Some("out-of-bounds memory access, e.g. a stack overflow in the guest")
            }
            Trap::StackOverflow => Some("stack overflow"),
            _ => None,
        };
        message = match hint {
            Some(hint) => format!("{trap} ({hint})"),
            None => trap.to_string(),
        };
    }
    if let Some(backtrace) = error.downcast_ref::<wasmtime::WasmBacktrace>() {
        // Stripped release builds carry no names; only named frames help.
        let frames: Vec<&str> = backtrace
            .frames()
            .iter()
            .filter_map(|f| f.func_name())
            .take(8)
            .collect();
        if !frames.is_empty() {
            message.push_str(&format!("; wasm backtrace: {}", frames.join(" <- ")));
        }
    }
    message
}

/// Serde for durations in outcomes and statistics: whole milliseconds
/// (sub-millisecond parts are dropped when written).
mod duration_millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

/// What a run cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStats {
    /// Fuel consumed. After a timeout this can be under-reported (a loop's
    /// fuel counter may not have been written back to the store).
    pub fuel_consumed: u64,
    /// Highest total linear memory, in bytes.
    pub peak_memory_bytes: u64,
    /// Wall-clock time from instantiation to the end of the call.
    #[serde(with = "duration_millis")]
    pub duration: Duration,
}

/// The full result of a run: outcome, cost and the job log.
#[derive(Debug, Clone, PartialEq)]
pub struct RunReport {
    /// How the run ended.
    pub outcome: RunOutcome,
    /// What it cost.
    pub stats: RunStats,
    /// The guest's log lines and stdout/stderr, bounded.
    pub log: String,
}
