//! `/jobs`: the job list, status, dismissal and results.
//!
//! # The list
//! `GET /jobs` turns its query into a [`JobFilter`] (every filter of OGC
//! Part 1: `type`, `processID`, `status`, `datetime`, `minDuration`,
//! `maxDuration`) and asks the store for one page, newest first. Every
//! filter is served from an index on both stores (see SCALING.md for the
//! first-page times at a million jobs), so a filter that matches nothing
//! costs as little as one that matches everything.
//!
//! Paging is by keyset: a `next` link carries a `cursor` (the creation
//! time and id of the page's last job) and the same filters, so it stays
//! valid, and shows no job twice, while jobs are added in front. `offset`
//! still works for clients that send it, with a `prev` link; it shifts
//! when jobs are added, which is why `next` never uses it. Unknown
//! parameters are ignored (OGC asks servers to), invalid values of known
//! ones are a 400 naming the parameter, and a `type` other than `process`
//! is valid and matches nothing.
//!
//! # One job
//! A job id that is not a UUID is simply not found (404), like an unknown
//! one: ids are unguessable, and a 400 would tell a prober which ids are
//! well-formed. Reads see what the store shows: an async job's final state
//! only once it is durable, a running sync job while it runs.
//!
//! # Results
//! A finished job's results are answered as its request asked (`response`
//! = `document` or `raw`, each output by value or by reference; see
//! `api/results.rs`); a failed job's results are the exception of its
//! failure (400 when its inputs were to blame, 500 otherwise), and a job
//! still queued or running answers `result-not-ready`. One output alone
//! (`/jobs/{id}/results/{output}`) is served raw in its media type.
//!
//! Every route here needs a key or the token with role execute when jobs
//! are protected (`auth.protect_jobs`, or any `auth.keys` configured; see
//! `api/auth.rs`), and a key sees only its own jobs. Every route answers
//! HTML to a browser that asks for it (`api/html`).

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::auth::Caller;
use super::execution::job_failed;
use super::html::{Format, pages};
use super::parameters::JobIdPath;
use super::responses::{Forbidden, JobRefusals, ResultRefusals, ServerError, Unauthorized};
use super::results::{raw_output, render};
use super::{ApiError, AppState, Paging, Path, query_pairs};
use crate::jobs::documents::status_info;
use crate::ogc::{JobList, JobStatus, Link, ResponseType, StatusInfo};
use crate::store::{JobCursor, JobFilter, JobQuery, JobRecord};

/// The filters the jobs page's form sends, empty when left blank. (Its
/// `limit` field is always filled in with the current page size; an empty
/// `limit` is a 400 like any other invalid one.) An empty one of these is
/// dropped before anything else reads the query, for every client, and
/// the OpenAPI document says so (`openapi.rs`).
pub(crate) const FILTER_FORM_FIELDS: &[&str] = &[
    "processID",
    "status",
    "type",
    "datetime",
    "minDuration",
    "maxDuration",
];

/// Query parameters `GET /jobs` understands; others are ignored, and left
/// out of the paging links. `processId` is accepted as a spelling of
/// OGC's `processID`; `f` is kept so that the links of an HTML page lead
/// to HTML pages.
const KNOWN_PARAMETERS: &[&str] = &[
    "limit",
    "offset",
    "type",
    "processID",
    "processId",
    "status",
    "datetime",
    "minDuration",
    "maxDuration",
    "cursor",
    "f",
];

/// One end of a `datetime` interval: an RFC 3339 instant, or `None` for an
/// open end (`..` or empty). Any offset is accepted and turned into UTC,
/// the zone creation times are stored in.
fn parse_time(text: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    if text.is_empty() || text == ".." {
        return Ok(None);
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| Some(t.with_timezone(&Utc)))
        .map_err(|e| ApiError::invalid_parameter(format!("datetime '{text}' is not RFC 3339: {e}")))
}

/// A duration filter in seconds: a finite, non-negative number. A
/// fraction is fine (`0.25`); `NaN` and infinities are refused, as no
/// job's duration compares with them meaningfully.
fn parse_seconds(name: &str, text: &str) -> Result<f64, ApiError> {
    text.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .ok_or_else(|| {
            ApiError::invalid_parameter(format!(
                "{name} must be a non-negative number of seconds, got '{text}'"
            ))
        })
}

/// Build the job filter from the query; `None` when the query can match no
/// job at all (a `type` other than `process`). Every parameter is checked
/// even then: an invalid one is a 400 whatever `type` says.
///
/// Lists are accepted both ways OGC clients send them: repeated
/// (`status=failed&status=dismissed`) and comma-separated
/// (`status=failed,dismissed`). Values of one parameter match any of
/// them; different parameters must all match. A `datetime` without `/` is
/// one instant: jobs created exactly then.
fn job_filter(query: &[(String, String)]) -> Result<Option<JobFilter>, ApiError> {
    let mut filter = JobFilter::default();
    let mut matches_nothing = false;
    for (key, value) in query {
        match key.as_str() {
            "type" => matches_nothing |= value.split(',').all(|t| t.trim() != "process"),
            "processID" | "processId" => filter
                .process_ids
                .extend(value.split(',').map(|s| s.trim().to_owned())),
            "status" => {
                for name in value.split(',') {
                    let status = JobStatus::parse(name.trim()).ok_or_else(|| {
                        ApiError::invalid_parameter(format!(
                            "status '{name}' is not one of accepted, running, successful, failed, dismissed"
                        ))
                    })?;
                    filter.statuses.push(status);
                }
            }
            "datetime" => match value.split_once('/') {
                Some((from, to)) => {
                    filter.created_from = parse_time(from)?;
                    filter.created_to = parse_time(to)?;
                }
                None => {
                    let instant = parse_time(value)?;
                    filter.created_from = instant;
                    filter.created_to = instant;
                }
            },
            "minDuration" => filter.min_duration = Some(parse_seconds(key, value)?),
            "maxDuration" => filter.max_duration = Some(parse_seconds(key, value)?),
            _ => {}
        }
    }
    Ok((!matches_nothing).then_some(filter))
}

/// The job list, newest first.
///
/// Filtered by OGC Part 1's parameters and paged by `limit` with a
/// `next` link that continues from a cursor. A key sees its own jobs
/// only.
#[utoipa::path(get, path = "/jobs", tag = "Jobs", operation_id = "getJobs",
    security((), ("bearer" = [])),
    params(("limit" = Option<usize>, Query, minimum = 1, maximum = 10000, description = "Page size, 1 to 10000 (default 10)"), ("offset" = Option<usize>, Query, description = "Jobs to skip"),
        ("cursor" = Option<String>, Query, description = "Continue after this job: the value a `next` link carries (keyset paging, stable while jobs are added)"),
        ("type" = Option<String>, Query, description = "Only `process`"), ("processID" = Option<String>, Query, description = "Only jobs of this process (repeatable)"),
        ("status" = Option<String>, Query, description = "Only jobs in this state (repeatable)"), ("datetime" = Option<String>, Query, description = "Creation time: an RFC 3339 instant or interval `a/b` with `..` for open ends"),
        ("minDuration" = Option<f64>, Query, description = "Minimum run time in seconds"), ("maxDuration" = Option<f64>, Query, description = "Maximum run time in seconds")),
    responses((status = 200, description = "A page of jobs", body = JobList), (status = 400, description = "Invalid parameter", body = Exception, content_type = "application/problem+json"),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 500, response = ServerError)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
    format: Format,
) -> Result<Response, ApiError> {
    // The jobs page's filter form sends every field, empty ones too: an
    // empty filter means no filter, for every client alike (and the
    // OpenAPI document says so, see `api/openapi.rs`).
    let query = query_pairs(query.as_deref(), KNOWN_PARAMETERS, FILTER_FORM_FIELDS);
    let paging = Paging::from_query(&query)?;
    let after = match query.iter().find(|(k, _)| k == "cursor") {
        None => None,
        Some((_, text)) => Some(JobCursor::decode(text).ok_or_else(|| {
            ApiError::invalid_parameter(format!(
                "cursor '{text}' is not a cursor from a `next` link of this server"
            ))
        })?),
    };
    let (jobs, next) = match job_filter(&query)? {
        None => (Vec::new(), None),
        Some(mut filter) => {
            filter.owner = caller.listed_owner();
            let page = state
                .store
                .list_jobs(&JobQuery {
                    filter,
                    after,
                    offset: paging.offset,
                    limit: paging.limit,
                })
                .await?;
            (page.jobs, page.next)
        }
    };
    let list = JobList {
        jobs: jobs
            .iter()
            .map(|j| status_info(j, &state.base_url))
            .collect(),
        links: job_list_links(&state.base_url, &query, paging, next),
    };
    if format.is_html() {
        return Ok(pages::job_list(&state, &list, &query));
    }
    Ok(Json(list).into_response())
}

/// `self` (the query as asked) and, when more jobs match, `next`: the same
/// filters continued from a keyset cursor, so the link stays valid while
/// jobs are added (an offset would shift). `prev` only for offset paging:
/// a cursor points forward only, so a page reached by one has no way
/// back but the client's own history.
fn job_list_links(
    base_url: &str,
    query: &[(String, String)],
    paging: Paging,
    next: Option<JobCursor>,
) -> Vec<Link> {
    let url = |cursor: Option<String>, offset: usize| {
        let mut params: Vec<(String, String)> = query
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "limit" | "offset" | "cursor"))
            .cloned()
            .collect();
        params.push(("limit".into(), paging.limit.to_string()));
        if let Some(cursor) = cursor {
            params.push(("cursor".into(), cursor));
        }
        if offset > 0 {
            params.push(("offset".into(), offset.to_string()));
        }
        let encoded = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        format!("{base_url}/jobs?{encoded}")
    };
    let current = query
        .iter()
        .find(|(k, _)| k == "cursor")
        .map(|(_, v)| v.clone());
    let mut links = vec![Link::new(
        url(current.clone(), paging.offset),
        "self",
        "application/json",
        "this page",
    )];
    if let Some(next) = next {
        links.push(Link::new(
            url(Some(next.encode()), 0),
            "next",
            "application/json",
            "next page",
        ));
    }
    if current.is_none() && paging.offset > 0 {
        links.push(Link::new(
            url(None, paging.offset.saturating_sub(paging.limit)),
            "prev",
            "application/json",
            "previous page",
        ));
    }
    links
}

/// The job `id` as the store shows it, or `no-such-job`: also for an id
/// that is not a UUID, and for another caller's job (so that a key cannot
/// tell another key's job from one that does not exist).
pub(crate) async fn load_job(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<JobRecord, ApiError> {
    let uuid = Uuid::parse_str(id).map_err(|_| ApiError::no_such_job(id))?;
    state
        .store
        .get_job(uuid)
        .await?
        .filter(|job| caller.may_see(job))
        .ok_or_else(|| ApiError::no_such_job(id))
}

/// The status of one job.
///
/// The statusInfo document of OGC Part 1, with links to the job's log,
/// its process and, once it succeeded, its results; a browser gets a
/// page that follows the job while it runs.
#[utoipa::path(get, path = "/jobs/{jobID}", tag = "Jobs", operation_id = "getStatus", security((), ("bearer" = [])),
    params(JobIdPath),
    responses((status = 200, description = "statusInfo", body = StatusInfo), JobRefusals))]
pub(crate) async fn status(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    format: Format,
) -> Result<Response, ApiError> {
    let job = load_job(&state, &caller, &id).await?;
    let info = status_info(&job, &state.base_url);
    if format.is_html() {
        return Ok(pages::job(&state.base_url, &info, job.asynchronous));
    }
    Ok(Json(info).into_response())
}

/// Dismiss a job: stop it if running, delete it and its results.
///
/// The answer is the job as it was, marked `dismissed`; afterwards the
/// job is gone (404). Refused (405) when its process does not list
/// `dismiss` in its `jobControlOptions`.
#[utoipa::path(delete, path = "/jobs/{jobID}", tag = "Jobs", operation_id = "dismiss", security((), ("bearer" = [])),
    params(JobIdPath),
    responses((status = 200, description = "The job, now `dismissed`", body = StatusInfo), JobRefusals,
        (status = 405, description = "The job's process does not list `dismiss` in its jobControlOptions (`Allow: GET, HEAD`)", body = Exception, content_type = "application/problem+json")))]
pub(crate) async fn dismiss(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<StatusInfo>, ApiError> {
    // Another caller's job is refused as unknown before anything happens;
    // a job's owner never changes, so the check cannot go stale.
    let uuid = load_job(&state, &caller, &id).await?.id;
    let job = state.scheduler.dismiss(uuid).await?;
    Ok(Json(status_info(&job, &state.base_url)))
}

/// A finished job's results, or why there are none: `result-not-ready`
/// while the job is queued or running, the job's failure as an exception
/// once it failed. A successful job whose results are missing (deleted
/// between the two reads, by retention or a dismissal) is answered as no
/// such job, which by then it is.
async fn finished_results(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(JobRecord, crate::store::JobResults), ApiError> {
    let job = load_job(state, caller, id).await?;
    match job.status {
        JobStatus::Accepted | JobStatus::Running => {
            Err(ApiError::result_not_ready(id, job.status.as_str()))
        }
        JobStatus::Failed | JobStatus::Dismissed => Err(job_failed(&job)),
        JobStatus::Successful => {
            let results = state
                .store
                .get_results(job.id)
                .await?
                .ok_or_else(|| ApiError::no_such_job(id))?;
            Ok((job, results))
        }
    }
}

/// The results of a job.
///
/// As the execute request's `response` asked, or a results document when
/// it did not say: the same rendering the synchronous answer had.
#[utoipa::path(get, path = "/jobs/{jobID}/results", tag = "Jobs", operation_id = "getResult", security((), ("bearer" = [])),
    params(JobIdPath),
    responses((status = 200, description = "The results (results.yaml, or raw)"), (status = 204, description = "Every output by reference: Link headers"),
        (status = 404, description = "no-such-job, or result-not-ready while accepted or running", body = Exception, content_type = "application/problem+json"),
        ResultRefusals))]
pub(crate) async fn results(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    format: Format,
) -> Result<Response, ApiError> {
    let (job, results) = finished_results(&state, &caller, &id).await?;
    if format.is_html() {
        return Ok(pages::results(&state.base_url, &job, &results));
    }
    let response = job.request.response.unwrap_or(ResponseType::Document);
    Ok(render(&job, &results, response, &state.base_url))
}

/// One output of a job, raw.
///
/// In its own media type, whatever the request's `response` and
/// transmission modes said: this is where an output sent by reference
/// points.
#[utoipa::path(get, path = "/jobs/{jobID}/results/{outputID}", tag = "Jobs", operation_id = "getResultOutput", security((), ("bearer" = [])),
    params(JobIdPath, ("outputID" = String, Path, description = "Output id")),
    responses((status = 200, description = "The output value in its media type"),
        (status = 404, description = "no-such-job, no-such-output, or result-not-ready", body = Exception, content_type = "application/problem+json"),
        ResultRefusals))]
pub(crate) async fn output(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((id, output_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (_, results) = finished_results(&state, &caller, &id).await?;
    let output = results
        .outputs
        .iter()
        .find(|o| o.id == output_id)
        .ok_or_else(|| ApiError::no_such_output(&id, &output_id))?;
    Ok(raw_output(output).into_response())
}
