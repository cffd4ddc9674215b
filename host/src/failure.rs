//! Why a job failed: one closed vocabulary, shared by the runtime (how a
//! run ended), the job record (what is stored and shown) and the HTTP API
//! (which status a failed job is answered with).
//!
//! Every producer names a [`FailureKind`] variant and every consumer
//! matches all of them, so adding a kind is a compile error wherever it
//! needs a decision, never a string that silently falls through. The wire
//! names (`fuel-exhausted`, …) are what older versions stored, so records
//! written before this type existed still read back.

use serde::{Deserialize, Serialize};

/// The kind of a job failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// The inputs were refused after the job was accepted (an `href` that
    /// could not be fetched or did not match its schema). The client's
    /// fault: answered 400.
    InvalidInput,
    /// The guest returned its own `process-error`.
    ProcessError,
    /// The guest used up its fuel (instruction budget).
    FuelExhausted,
    /// The guest ran past its wall-clock budget, or a synchronous job found
    /// no free worker within the synchronous timeout.
    Timeout,
    /// The guest asked for more linear memory than its budget.
    MemoryLimit,
    /// The guest's outputs were larger than the output budget.
    OutputTooLarge,
    /// The guest returned outputs that contradict its description (an
    /// undeclared output, a `json` value that is not JSON, a media type
    /// other than the declared one).
    InvalidOutput,
    /// The guest trapped: panic, abort, stack overflow, bad memory access,
    /// exit, or it could not be instantiated.
    Trap,
    /// The job's module (component bytes) could not be found or loaded
    /// when the job was about to run.
    ModuleUnavailable,
    /// The server stopped while the job ran and (single node) could not
    /// know what the guest had done: the job is failed at restart.
    Interrupted,
    /// Cluster: the node running the job stopped renewing its lease (died,
    /// was cut off) too many times; the reason names the node.
    NodeLost,
    /// A kind written by a newer wasmproc that this version does not know.
    #[serde(other)]
    Unknown,
}

impl FailureKind {
    /// The wire name, as stored and as used in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::InvalidInput => "invalid-input",
            FailureKind::ProcessError => "process-error",
            FailureKind::FuelExhausted => "fuel-exhausted",
            FailureKind::Timeout => "timeout",
            FailureKind::MemoryLimit => "memory-limit",
            FailureKind::OutputTooLarge => "output-too-large",
            FailureKind::InvalidOutput => "invalid-output",
            FailureKind::Trap => "trap",
            FailureKind::ModuleUnavailable => "module-unavailable",
            FailureKind::Interrupted => "interrupted",
            FailureKind::NodeLost => "node-lost",
            FailureKind::Unknown => "unknown",
        }
    }

    /// Whether the client's request is to blame (so a failed job is
    /// answered 400, not 500). A process error counts when the guest says
    /// so with the code `invalid-input`.
    pub fn blames_the_client(self, process_error_code: Option<&str>) -> bool {
        match self {
            FailureKind::InvalidInput => true,
            FailureKind::ProcessError => process_error_code == Some("invalid-input"),
            FailureKind::FuelExhausted
            | FailureKind::Timeout
            | FailureKind::MemoryLimit
            | FailureKind::OutputTooLarge
            | FailureKind::InvalidOutput
            | FailureKind::Trap
            | FailureKind::ModuleUnavailable
            | FailureKind::Interrupted
            | FailureKind::NodeLost
            | FailureKind::Unknown => false,
        }
    }
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip_and_unknown_kinds_still_read() {
        for kind in [
            FailureKind::InvalidInput,
            FailureKind::ProcessError,
            FailureKind::FuelExhausted,
            FailureKind::Timeout,
            FailureKind::MemoryLimit,
            FailureKind::OutputTooLarge,
            FailureKind::InvalidOutput,
            FailureKind::Trap,
            FailureKind::ModuleUnavailable,
            FailureKind::Interrupted,
            FailureKind::NodeLost,
        ] {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(serde_json::from_str::<FailureKind>(&json).unwrap(), kind);
        }
        assert_eq!(
            serde_json::from_str::<FailureKind>("\"from-the-future\"").unwrap(),
            FailureKind::Unknown
        );
    }

    #[test]
    fn only_input_failures_blame_the_client() {
        assert!(FailureKind::InvalidInput.blames_the_client(None));
        assert!(FailureKind::ProcessError.blames_the_client(Some("invalid-input")));
        assert!(!FailureKind::ProcessError.blames_the_client(Some("boom")));
        assert!(!FailureKind::Timeout.blames_the_client(None));
        assert!(!FailureKind::NodeLost.blames_the_client(None));
    }
}
