//! Job status (`statusInfo.yaml`, `statusCode.yaml`) and the job list.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Link;

/// The state of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Queued, not started.
    Accepted,
    /// Running in a sandbox.
    Running,
    /// Finished with results.
    Successful,
    /// Finished without results; `message` says why.
    Failed,
    /// Cancelled by the client.
    Dismissed,
}

impl JobStatus {
    /// Whether the job has reached a final state.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobStatus::Successful | JobStatus::Failed | JobStatus::Dismissed
        )
    }

    /// The wire name (`accepted`, `running`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Accepted => "accepted",
            JobStatus::Running => "running",
            JobStatus::Successful => "successful",
            JobStatus::Failed => "failed",
            JobStatus::Dismissed => "dismissed",
        }
    }

    /// Parse a wire name.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "accepted" => JobStatus::Accepted,
            "running" => JobStatus::Running,
            "successful" => JobStatus::Successful,
            "failed" => JobStatus::Failed,
            "dismissed" => JobStatus::Dismissed,
            _ => return None,
        })
    }
}

/// What a finished job cost (a wasmproc extension of statusInfo).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// Fuel (instructions) consumed.
    pub fuel_consumed: u64,
    /// Highest linear memory, in bytes.
    pub peak_memory_bytes: u64,
    /// Time spent in the sandbox, in milliseconds.
    pub duration_ms: u64,
}

/// `GET /jobs/{id}`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StatusInfo {
    /// The process the job runs.
    #[serde(rename = "processID")]
    pub process_id: String,
    /// Always `process`.
    #[serde(rename = "type")]
    pub job_type: String,
    /// The job id.
    #[serde(rename = "jobID")]
    pub job_id: String,
    /// The state.
    pub status: JobStatus,
    /// Why it failed, or what it is doing.
    pub message: Option<String>,
    /// When the job was created.
    pub created: DateTime<Utc>,
    /// When it started running.
    pub started: Option<DateTime<Utc>>,
    /// When it finished.
    pub finished: Option<DateTime<Utc>>,
    /// When the status last changed.
    pub updated: DateTime<Utc>,
    /// Percent done, as reported by the process.
    pub progress: Option<u8>,
    /// Links to itself and, when done, to the results.
    pub links: Vec<Link>,
    /// Resources used (wasmproc extension).
    pub usage: Option<Usage>,
    /// The cluster node that runs or ran it (wasmproc extension; only with
    /// the PostgreSQL store).
    pub node: Option<String>,
    /// How many times a node started it; more than 1 when a node running it
    /// was lost and another ran it again (wasmproc extension).
    pub attempts: Option<u32>,
}

/// `GET /jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobList {
    /// The page of jobs.
    pub jobs: Vec<StatusInfo>,
    /// `self`, `next`, `prev`.
    pub links: Vec<Link>,
}
