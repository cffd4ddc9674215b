//! `POST /processes/{id}/execution`: parse and validate the request,
//! negotiate sync or async, and answer.
//!
//! # Everything is checked before a job exists
//! In this order, each failure answered at once and nothing stored:
//! the caller may execute (401, 403; checked by `auth::jobs_access`
//! before the handler runs, so a stranger learns nothing of the
//! processes); the process exists (404); the body arrived within its time
//! and size (408, 413), is JSON (415) and has the shape of OGC's
//! `execute.yaml` (400 naming the path of the bad field); its inputs
//! satisfy the process's input rules and every requested output is
//! declared (400 naming the input or output); its callback URIs pass the
//! SSRF guard (the one `href` inputs go through, with its own
//! `callbacks.allowed_hosts`; 400 naming the field); the process can run
//! in some mode here (400 `execution-mode-not-supported`). Only then does
//! the scheduler see the request, and it may still refuse for load: a
//! full queue or too many waiting sync requests (503 with `Retry-After`),
//! or the storage bound (507). `href` inputs are fetched later, by the
//! job, within its limits: a slow remote server holds a worker, never an
//! HTTP thread.
//!
//! The order puts the cheap checks first and makes each answer about the
//! first thing wrong: there is no point parsing a body for a process that
//! does not exist, nor resolving callback hosts (a DNS lookup) for a
//! request whose inputs are invalid anyway.
//!
//! # Answers
//! - **async**: 201 with statusInfo and `Location` of the job, durable
//!   before it is sent; `Preference-Applied: respond-async` when the client
//!   asked for it.
//! - **sync**: the results as the request's `response` asks (see
//!   `api/results.rs`) with `Link: <job>; rel=monitor`, so the job stays
//!   readable afterwards; a failed job is its failure as an exception
//!   (400 when the inputs were to blame, else 500), a job dismissed while
//!   it ran is 409 `job-dismissed`.

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::auth::Caller;
use super::parameters::ProcessIdPath;
use super::responses::{BodyRejections, Forbidden, JobFailed, NoSuchProcess, Unauthorized};
use super::results::render;
use super::{ApiError, AppState, Path};
use crate::jobs::documents::{job_url, status_info};
use crate::jobs::nested::{TreeBounds, check_tree};
use crate::jobs::{RegisteredProcess, Scheduler, SyncRecord, SyncRun, check_subscriber};
use crate::ogc::{ASYNC_EXECUTE, ExecuteRequest, JobStatus, SYNC_EXECUTE, exception_type, rel};
use crate::store::JobRecord;

/// How a request will run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The client waits for the results: the job runs on this node, in
    /// the request, within `sync_timeout`, and the answer is its results
    /// (OGC `sync-execute`).
    Sync,
    /// The client gets a job to poll: the job is queued durably and any
    /// node with a free worker runs it (OGC `async-execute`).
    Async,
}

/// The outcome of negotiation: the mode, and whether the client's
/// `respond-async` preference was honoured (for `Preference-Applied`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Negotiated {
    /// The mode the request runs in.
    pub(crate) mode: Mode,
    /// Whether the answer says `Preference-Applied: respond-async`: only
    /// when the client asked for async and got it. A client that asked
    /// and got sync is told nothing, and sees the results instead.
    pub(crate) preference_applied: bool,
}

/// Whether any `Prefer` header (RFC 7240: comma-separated preferences,
/// each `token[=value][; params]`) asks for `respond-async`. Several
/// headers count as one list, the token is case-insensitive, and other
/// preferences (`wait`, `handling`) are ignored. A header that is not
/// visible ASCII is skipped rather than refused: a preference may always
/// be ignored.
pub(crate) fn prefers_async(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.split([';', '=']).next().unwrap_or("").trim())
        .any(|token| token.eq_ignore_ascii_case("respond-async"))
}

/// OGC API - Processes Part 1 1.0 execution-mode negotiation:
/// - `respond-async` and async possible → async (preference applied);
/// - otherwise sync if possible (a sync-only process ignores the preference);
/// - otherwise async if possible (an async-only process);
/// - otherwise the request cannot be served.
///
/// Without a preference the server may choose, and sync comes first: a
/// client that did not ask for a job to poll is best served by the
/// results themselves. The HTML form uses the same function, its `mode`
/// field standing for the header.
pub(crate) fn negotiate(wants_async: bool, can_sync: bool, can_async: bool) -> Option<Negotiated> {
    let (mode, applied) = match (wants_async, can_sync, can_async) {
        (true, _, true) => (Mode::Async, true),
        (_, true, _) => (Mode::Sync, false),
        (_, false, true) => (Mode::Async, false),
        (_, false, false) => return None,
    };
    Some(Negotiated {
        mode,
        preference_applied: applied,
    })
}

/// Parse the body: JSON object in the shape of `execute.yaml`.
///
/// Without a `Content-Type` the body is taken as JSON; with one, it must
/// be JSON or one of the types hand-typed requests send by accident
/// (415 otherwise). The body is parsed as a JSON value first, then
/// deserialized with `serde_path_to_error`, so a syntax error and a shape
/// error give different details, the latter naming the path of the field
/// (`inputs.x.href`, `response`).
fn parse_request(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    limit: u64,
) -> Result<ExecuteRequest, ApiError> {
    let body = body.map_err(|r| ApiError::unreadable_body(&r, limit))?;
    if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
        let essence = content_type
            .to_str()
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        // curl's `-d` sends `application/x-www-form-urlencoded`: accept it
        // (and text/plain) when the body is JSON, for hand-typed requests.
        let accepted = essence == "application/json"
            || essence.ends_with("+json")
            || essence == "application/x-www-form-urlencoded"
            || essence == "text/plain";
        if !accepted {
            return Err(ApiError::unsupported_media_type(format!(
                "execute requests are JSON (application/json), not '{essence}'"
            )));
        }
    }
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid_request(format!("the body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::invalid_request(
            "the execute request must be a JSON object",
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        ApiError::invalid_request(format!("invalid execute request: '{path}': {}", e.inner()))
    })
}

/// Check the request against the process: inputs (with any nested
/// processes, as a whole tree: nothing runs unless all of it is sound) and
/// requested outputs.
///
/// The inputs are validated against the top process's rules first, each
/// nested process standing for the value it will give; then the tree is
/// walked within the configured bounds (depth, steps, map elements), each
/// nested process checked against its own description. An output the
/// process does not declare is refused here, not ignored: a misspelt one
/// would otherwise vanish from the results without a word.
pub(crate) fn check_request(
    state: &AppState,
    process: &RegisteredProcess,
    request: &ExecuteRequest,
) -> Result<(), ApiError> {
    process
        .validator
        .validate_with_nested(&request.inputs)
        .map_err(|e| ApiError::invalid_request(e.to_string()))?;
    let execution = &state.config.execution;
    let bounds = TreeBounds {
        max_depth: execution.max_nesting_depth,
        max_steps: execution.max_nested_steps,
        max_map_elements: execution.max_map_elements,
    };
    check_tree(
        &state.registry,
        &state.base_url,
        process,
        &request.inputs,
        bounds,
    )
    .map_err(|e| ApiError::invalid_request(e.to_string()))?;
    let outputs = request
        .output_requests()
        .map_err(|e| ApiError::invalid_request(e.to_string()))?;
    for (id, _) in outputs.iter().flatten() {
        if !process.validator.has_output(id) {
            return Err(ApiError::invalid_request(format!("unknown output '{id}'")));
        }
    }
    Ok(())
}

/// The exception for a failed job: 400 when its inputs were to blame,
/// 500 otherwise; the detail is the failure reason.
///
/// Who is to blame is the failure kind's to say: invalid input, or a
/// process error the guest itself coded `invalid-input`. Everything else
/// (fuel, memory, time, a trap) is a 500, since the request was valid and
/// the server's run of it failed. The type is `job-failed` either way, so
/// a client can tell a failed job from a refused request.
pub(crate) fn job_failed(job: &JobRecord) -> ApiError {
    let failure = job.failure.as_ref();
    let invalid_input = failure.is_some_and(|f| f.kind.blames_the_client(f.code.as_deref()));
    let status = if invalid_input {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    let reason = failure
        .map(|f| f.reason.clone())
        .or_else(|| job.message.clone())
        .unwrap_or_else(|| "the job failed".into());
    ApiError::new(
        status,
        exception_type::JOB_FAILED,
        "Job failed",
        format!("job {} failed: {reason}", job.id),
    )
}

/// 503 for a synchronous request whose job this server stopped before it
/// ended: a shutdown whose `shutdown_grace` ran out, or (PostgreSQL) a
/// lease this node could no longer renew. The request was valid and may
/// well succeed when sent again, on this server once it is back or on
/// another node; the job has no results.
pub(crate) fn job_stopped(job: &JobRecord) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        exception_type::SERVER_ERROR,
        "Job stopped",
        format!(
            "job {} was stopped before it ended (the server is shutting down, or lost the job); it has no results: send the request again",
            job.id
        ),
    )
    .retry_after(5)
}

/// 409 for a synchronous request whose job a client dismissed while it
/// ran: nothing failed, and there are no results to give.
pub(crate) fn job_dismissed(job: &JobRecord) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        exception_type::DISMISSED,
        "Job dismissed",
        format!(
            "job {} was dismissed (DELETE /jobs/{}) while it ran; it has no results",
            job.id, job.id
        ),
    )
}

/// `Link: <…/jobs/{id}>; rel="monitor"` for a synchronous answer: the
/// job a sync request ran stays in the store like any other (unless
/// `execution.keep_sync_jobs = false`), and this is how a client finds it
/// (its status, usage and log) without parsing the body, which may be a
/// raw output of any media type.
fn monitor_link(state: &AppState, job: &JobRecord) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "<{}>; rel=\"{}\"",
        job_url(&state.base_url, job),
        rel::MONITOR
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Execute a process.
///
/// Synchronously by default, asynchronously with
/// `Prefer: respond-async` when the process allows it. The request is
/// checked in full before a job exists; a refusal stores nothing.
#[utoipa::path(post, path = "/processes/{processID}/execution", tag = "Execution", operation_id = "execute",
    security((), ("bearer" = [])),
    params(ProcessIdPath, ("Prefer" = Option<String>, Header, description = "`respond-async` asks for asynchronous execution (RFC 7240)")),
    request_body(content = ExecuteRequest, content_type = "application/json", example = json!({"inputs": {"name": "Joe", "message": "Welcome"}})),
    responses(
        (status = 200, description = "Synchronous execution: the results, raw (one output in its media type, or multipart/related) or as a results document; `Link: <job>; rel=monitor` (none when `execution.keep_sync_jobs = false`: the job is not stored)"),
        (status = 201, description = "Asynchronous execution accepted: statusInfo, `Location` of the job, `Preference-Applied: respond-async` when asked for", body = StatusInfo),
        (status = 204, description = "Raw response with every output by reference: `Link` headers only"),
        (status = 400, description = "Invalid request or inputs (a subscriber URI the callback guard refuses included), or the job failed on its inputs", body = Exception, content_type = "application/problem+json"),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NoSuchProcess),
        (status = 409, description = "The synchronous job was dismissed by a client while it ran", body = Exception, content_type = "application/problem+json"),
        BodyRejections,
        (status = 415, description = "Body is not JSON", body = Exception, content_type = "application/problem+json"),
        (status = 500, response = JobFailed),
        (status = 503, description = "Queue full, shutting down, or the synchronous job was stopped by a shutdown before it ended; see Retry-After", body = Exception, content_type = "application/problem+json"),
        (status = 507, description = "The stored job data reached `execution.max_stored_bytes`, or the data directory's disk has less than `execution.min_free_disk_bytes` free; see Retry-After", body = Exception, content_type = "application/problem+json")))]
pub(crate) async fn execute(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let process = state.process(&id)?;
    let request = parse_request(&headers, body, state.config.max_request_bytes)?;
    check_request(&state, &process, &request)?;
    // Callback URIs get the SSRF guard of `href` inputs, before the job
    // exists: a URI we would refuse to call is the client's mistake (400
    // naming the field), not a notification silently dropped later.
    if let Some(subscriber) = &request.subscriber {
        check_subscriber(subscriber, &state.config.callbacks)
            .await
            .map_err(|refused| ApiError::invalid_request(refused.to_string()))?;
    }
    let execution = &state.config.execution;
    // An API-only node of a cluster runs no jobs itself: only async, which
    // any worker node may take.
    let negotiated = negotiate(
        prefers_async(&headers),
        execution.enable_sync && state.scheduler.runs_sync_jobs() && process.supports(SYNC_EXECUTE),
        execution.enable_async && process.supports(ASYNC_EXECUTE),
    )
    .ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            exception_type::EXECUTION_MODE,
            "Execution mode not supported",
            format!("process '{id}' cannot be executed on this server: neither mode it supports is enabled"),
        )
    })?;
    let scheduler: &Scheduler = &state.scheduler;
    // `Cache-Control: no-cache`: run it even if identical results are at
    // hand (a process with `cache = true`).
    let reuse = !headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|directive| directive.trim().eq_ignore_ascii_case("no-cache"));
    match negotiated.mode {
        Mode::Async => {
            let job = scheduler
                .submit_async(&process, request, caller.owner().as_ref(), reuse)
                .await?;
            let mut response = (
                StatusCode::CREATED,
                axum::Json(status_info(&job, &state.base_url)),
            )
                .into_response();
            let headers = response.headers_mut();
            if let Ok(location) = HeaderValue::from_str(&job_url(&state.base_url, &job)) {
                headers.insert(header::LOCATION, location);
            }
            if negotiated.preference_applied {
                headers.insert(
                    "preference-applied",
                    HeaderValue::from_static("respond-async"),
                );
            }
            Ok(response)
        }
        Mode::Sync => {
            let response_type = request.response.unwrap_or_default();
            let SyncRun { job, results, kept } = scheduler
                .execute_sync(
                    &process,
                    request,
                    caller.owner().as_ref(),
                    reuse,
                    SyncRecord::AsConfigured,
                )
                .await?;
            let mut response = match results {
                Some(results) => render(&job, &results, response_type, &state.base_url),
                None if job.status == JobStatus::Dismissed => job_dismissed(&job).into_response(),
                None if job.status == JobStatus::Running => job_stopped(&job).into_response(),
                None => job_failed(&job).into_response(),
            };
            // A job that is not stored (`execution.keep_sync_jobs = false`)
            // has nothing to monitor.
            if kept {
                response
                    .headers_mut()
                    .append(header::LINK, monitor_link(&state, &job));
            }
            Ok(response)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefer(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("prefer", HeaderValue::from_str(v).unwrap());
        }
        headers
    }

    #[test]
    fn prefer_headers_are_parsed_as_rfc7240_lists() {
        assert!(prefers_async(&prefer(&["respond-async"])));
        assert!(prefers_async(&prefer(&["respond-async, wait=10"])));
        assert!(prefers_async(&prefer(&["wait=10", "Respond-Async"])));
        assert!(prefers_async(&prefer(&[
            "handling=lenient, respond-async; foo=bar"
        ])));
        assert!(!prefers_async(&prefer(&["wait=10"])));
        assert!(!prefers_async(&prefer(&[])));
    }

    #[test]
    fn negotiation_follows_part1() {
        use Mode::*;
        let n = |w, s, a| negotiate(w, s, a).map(|n| (n.mode, n.preference_applied));
        assert_eq!(n(false, true, true), Some((Sync, false)));
        assert_eq!(n(true, true, true), Some((Async, true)));
        assert_eq!(n(true, true, false), Some((Sync, false)));
        assert_eq!(n(false, false, true), Some((Async, false)));
        assert_eq!(n(true, false, true), Some((Async, true)));
        assert_eq!(n(false, false, false), None);
    }
}
