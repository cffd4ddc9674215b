//! The path parameters many operations share, declared once for the
//! OpenAPI document and named in each handler's annotation as
//! `params(ProcessIdPath)` or `params(JobIdPath)`.
//!
//! Like the types of [`super::responses`], these only describe: the
//! handlers still take their ids with axum's `Path<String>`, so a
//! malformed id keeps the error mapping of [`super::ApiError`]. Declaring
//! them once keeps every operation's description and example of an id
//! the same, which clients generated from the document rely on (one name,
//! one type, one meaning across operations).

#![expect(
    dead_code,
    reason = "the fields describe parameters for the OpenAPI document; nothing reads them"
)]

use utoipa::IntoParams;

/// `{processID}`: a process's id, as `GET /processes` lists it.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct ProcessIdPath {
    /// Process id
    #[param(rename = "processID", example = "hello-world")]
    process_id: String,
}

/// `{jobID}`: a job's id, as its `Location` or `GET /jobs` gives it.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct JobIdPath {
    /// Job id
    #[param(rename = "jobID")]
    job_id: String,
}
