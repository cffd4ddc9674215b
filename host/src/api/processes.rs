//! `GET /processes` and `GET /processes/{id}`.
//!
//! Both read the registry in memory, never the store: a process list is
//! what every client asks first and most often, and the registry is kept
//! in step with the store by deploys here and notifications from other
//! nodes. The list gives OGC's process summaries (id, version, title,
//! `jobControlOptions`, links), paged with `limit` and `offset`; a
//! description is the effective one: the module's `describe()` or the
//! deployer's, with the server's overrides of `jobControlOptions`, plus a
//! `mutable` flag (Part 2) and links to itself, its execution endpoint and
//! its jobs (`/jobs?processID=`). Both answer HTML to a browser, the
//! description page with a form to execute the process.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::auth::process_reader;
use super::html::{Format, form_fields::FormState, pages};
use super::parameters::ProcessIdPath;
use super::responses::{Forbidden, ProcessRefusals, ServerError, Unauthorized};
use super::{ApiError, AppState, Paging, Path, query_pairs};
use crate::jobs::RegisteredProcess;
use crate::ogc::{Link, rel};

/// Fields of a description that also appear in its summary: the members
/// of OGC's `processSummary` (its `links` are built here). Inputs and
/// outputs are left out, so the list stays small however large the
/// schemas are; a client reads them from the description.
const SUMMARY_FIELDS: &[&str] = &[
    "id",
    "version",
    "title",
    "description",
    "keywords",
    "metadata",
    "jobControlOptions",
    "outputTransmission",
];

/// The links every process carries, in its summary and its description:
/// its description (OGC's `process-desc` relation), its execution
/// endpoint (`execute`) and the job list filtered to it (`job-list`), so
/// a client can go from a list entry to running it and to its jobs
/// without building URLs itself.
fn process_links(base: &str, id: &str) -> Vec<Link> {
    vec![
        Link::new(
            format!("{base}/processes/{id}"),
            rel::PROCESS_DESC,
            "application/json",
            "process description",
        ),
        Link::new(
            format!("{base}/processes/{id}/execution"),
            rel::EXECUTE,
            "application/json",
            "execute this process",
        ),
        Link::new(
            format!("{base}/jobs?processID={id}"),
            rel::JOB_LIST,
            "application/json",
            "jobs of this process",
        ),
    ]
}

/// The processSummary of a process, with `mutable` (Part 2): whether the
/// API may replace or undeploy it. Also what a deploy answers with, so a
/// deployer sees the process as the list will show it.
pub(crate) fn summary(process: &RegisteredProcess, base: &str) -> Value {
    let description = process.description();
    let mut summary = Map::new();
    for field in SUMMARY_FIELDS {
        if let Some(value) = description.get(*field) {
            summary.insert((*field).to_owned(), value.clone());
        }
    }
    summary.insert("mutable".into(), Value::Bool(process.record.mutable));
    summary.insert("links".into(), json!(process_links(base, process.id())));
    Value::Object(summary)
}

/// The process list, paged.
///
/// Process summaries ordered by id, so that `limit` and `offset` page
/// through them in a stable order.
#[utoipa::path(get, path = "/processes", tag = "Processes", operation_id = "getProcesses", security((), ("bearer" = [])),
    params(("limit" = Option<usize>, Query, minimum = 1, maximum = 10000, description = "Page size, 1 to 10000 (default 10)"), ("offset" = Option<usize>, Query, description = "Processes to skip")),
    responses((status = 200, description = "A page of process summaries (processList.yaml)", body = Object), (status = 400, description = "limit or offset out of range", body = Exception, content_type = "application/problem+json"), (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 500, response = ServerError)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    format: Format,
) -> Result<Response, ApiError> {
    process_reader(&state, &headers)?;
    let query = query_pairs(query.as_deref(), &["limit", "offset"], &[]);
    let paging = Paging::from_query(&query)?;
    let (page, links) = list_page(&state, paging, &query);
    if format.is_html() {
        return Ok(pages::process_list(
            &state,
            &page,
            &links,
            StatusCode::OK,
            None,
        ));
    }
    Ok(Json(json!({ "processes": page, "links": links })).into_response())
}

/// One page of the process list: its summaries, and its `self`, `next`
/// and `prev` links (the other parameters of `query` kept). What
/// `GET /processes` answers, and what the deploy form shows again, its
/// first page, when it refuses a module (`html/admin.rs`).
pub(crate) fn list_page(
    state: &AppState,
    paging: Paging,
    query: &[(String, String)],
) -> (Vec<Value>, Vec<Link>) {
    let all = state.registry.list();
    let page = all
        .iter()
        .skip(paging.offset)
        .take(paging.limit)
        .map(|p| summary(p, &state.base_url))
        .collect();
    let has_more = paging.offset.saturating_add(paging.limit) < all.len();
    let links = paging.links(&state.base_url, "/processes", query, has_more);
    (page, links)
}

/// One process's full description.
///
/// The effective description: the module's `describe()` or the
/// deployer's, with the effective `jobControlOptions`, `mutable` and
/// links.
#[utoipa::path(get, path = "/processes/{processID}", tag = "Processes", operation_id = "getProcessDescription", security((), ("bearer" = [])),
    params(ProcessIdPath),
    responses((status = 200, description = "The process description (process.yaml)", body = Object), ProcessRefusals))]
pub(crate) async fn describe(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    format: Format,
) -> Result<Response, ApiError> {
    process_reader(&state, &headers)?;
    let process = state.process(&id)?;
    if format.is_html() {
        return Ok(pages::process(
            &state,
            &process,
            StatusCode::OK,
            &FormState::default(),
            None,
        ));
    }
    let mut description = process.description();
    if let Value::Object(fields) = &mut description {
        let mut links = vec![Link::new(
            format!("{}/processes/{id}", state.base_url),
            "self",
            "application/json",
            "this document",
        )];
        links.extend(process_links(&state.base_url, &id));
        fields.insert("links".into(), json!(links));
        fields.insert("mutable".into(), Value::Bool(process.record.mutable));
    }
    Ok(Json(description).into_response())
}
