//! `GET /jobs/{id}/log`: a job's log as plain text.
//!
//! The guest's own lines (stdout, stderr, `host.log` calls) are captured
//! by the runtime with a timestamp and a source tag each
//! (`runtime/job_log.rs`), bounded by the job's `log_bytes` limit, and
//! stored with the job's outcome. This route frames them with what the
//! job record knows: when it was accepted and started, where, and how it
//! ended, the failure reason last. While a job runs, its guest lines are
//! not stored yet (they are written once, with the outcome, so a chatty
//! guest costs no store writes); the log says so.

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::auth::Caller;
use super::jobs::load_job;
use super::parameters::JobIdPath;
use super::responses::JobRefusals;
use super::{ApiError, AppState, Path};
use crate::ogc::JobStatus;
use crate::store::JobRecord;

/// One framing line in the log's own format: a UTC timestamp to the
/// millisecond, then `[wasmproc]` where the guest's lines carry their
/// source tag, so the server's lines read as part of the same log and
/// sort with it.
fn line(at: chrono::DateTime<chrono::Utc>, text: &str) -> String {
    format!(
        "{} [wasmproc] {text}\n",
        at.format("%Y-%m-%dT%H:%M:%S%.3fZ")
    )
}

/// The whole log text of a job: framing lines from the record around the
/// guest's captured lines.
///
/// First when it was accepted (and in which mode), then when and where it
/// started (the attempt, when a lost node made it run again), the guest's
/// lines as stored, and last its state now: the failure kind and reason
/// for a failed job, so the end of the log says why. The last line's time
/// is when the job finished, or its last update while it has not.
pub(crate) fn log_text(job: &JobRecord) -> String {
    let mode = if job.asynchronous { "async" } else { "sync" };
    let mut text = line(
        job.created,
        &format!(
            "job {} of process '{}' accepted ({mode})",
            job.id, job.process_id
        ),
    );
    if let Some(started) = job.started {
        let mut started_line = "started".to_owned();
        if let Some(node) = &job.node {
            started_line.push_str(&format!(" on node {node}"));
        }
        if job.attempts > 1 {
            started_line.push_str(&format!(" (attempt {})", job.attempts));
        }
        text.push_str(&line(started, &started_line));
    }
    if let Some(log) = &job.log {
        text.push_str(log);
        if !log.is_empty() && !log.ends_with('\n') {
            text.push('\n');
        }
    }
    let end = job.finished.unwrap_or(job.updated);
    let last = match job.status {
        JobStatus::Accepted => "waiting for a worker".to_owned(),
        JobStatus::Running => format!(
            "running ({}%); the guest's output is stored when the job ends",
            job.progress.unwrap_or(0)
        ),
        JobStatus::Successful => "successful".to_owned(),
        JobStatus::Dismissed => "dismissed".to_owned(),
        JobStatus::Failed => match &job.failure {
            Some(failure) => format!("failed ({}): {}", failure.kind.as_str(), failure.reason),
            None => format!(
                "failed: {}",
                job.message.as_deref().unwrap_or("no reason recorded")
            ),
        },
    };
    text.push_str(&line(end, &last));
    text
}

/// A job's log.
///
/// Plain text, readable in a browser or with `curl`; the same access rules
/// as the job's status.
#[utoipa::path(get, path = "/jobs/{jobID}/log", tag = "Jobs", operation_id = "getJobLog", security((), ("bearer" = [])),
    params(JobIdPath),
    responses((status = 200, description = "The job's log: the guest's stdout, stderr and host.log lines with their times, framed by when the job was accepted, started and how it ended (the failure reason last); bounded by the job's log_bytes limit", content_type = "text/plain", body = String),
        JobRefusals))]
pub(crate) async fn job_log(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job = load_job(&state, &caller, &id).await?;
    let mut response = log_text(&job).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(response)
}
