//! The execute form, submitted: a plain HTML form turned into an execute
//! request. What the form shows, field by field, is `form_fields.rs`.
//!
//! # From field to execute request
//! `POST /ui/processes/{id}/execution` (multipart, or urlencoded when no
//! file is sent) reads the fields, converts each non-empty one back by
//! its kind ([`convert`]: numbers parsed, JSON parsed, files base64
//! encoded), validates the inputs with the process's own validator and,
//! when a JSON field holds a nested process, checks the whole tree as an
//! API request's is checked (so the form cannot bypass the tree's bounds),
//! and runs the job through the scheduler, as `POST …/execution` would, in
//! the mode the form asked for (negotiated as a `Prefer` header would
//! be). Then a 303: to the job's page (async), or to its results (sync,
//! or its page when it failed). Any refusal re-renders the form with the
//! OGC exception next to the field it names (found by the `input '…'`
//! the detail quotes), everything typed kept (file inputs cannot be
//! refilled by a server: browsers forbid it).

use std::sync::Arc;

use axum::extract::{FromRequest, Request, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use serde_json::{Map, Value};

use super::super::execution::negotiate as negotiate_mode;
use super::super::parameters::ProcessIdPath;
use super::super::responses::{FormRejections, NoSuchProcess};
use super::super::{ApiError, AppState, Path};
use super::form_fields::{FormState, INPUT_PREFIX, field_kind, modes, repeated, sorted_inputs};
use super::{pages, see_other};
use crate::config::Role;
use crate::jobs::{JobOwner, RegisteredProcess, SyncRecord, SyncRun};
use crate::ogc::{ExecuteRequest, ResponseType, exception_type};

/// Most form fields read from one submission: far more than any process
/// has inputs; a body of more parts is refused.
const MAX_FIELDS: usize = 1000;

/// One submitted form field: text, or a file's bytes. Text fields of a
/// multipart body and of an urlencoded one read the same; a file part
/// (one with a `filename`) is kept as bytes, empty when no file was
/// chosen (browsers still send the part).
#[derive(Debug, Clone)]
pub(crate) enum Submitted {
    /// A text field.
    Text(String),
    /// An uploaded file (empty when none was chosen).
    File {
        /// The bytes.
        bytes: Vec<u8>,
    },
}

/// The fields of a form submission, in order: `multipart/form-data`
/// (files) or `application/x-www-form-urlencoded`. At most
/// [`MAX_FIELDS`]; the body limit of the router bounds the bytes.
///
/// A part over the body limit is a 413, like any body; a field's text
/// that is not UTF-8 is read lossily rather than refused. Any other
/// content type is a 415.
pub(crate) async fn read_form(
    request: Request,
    limit: u64,
) -> Result<Vec<(String, Submitted)>, ApiError> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut fields = Vec::new();
    if content_type.starts_with("multipart/form-data") {
        let mut multipart = axum::extract::Multipart::from_request(request, &())
            .await
            .map_err(|e| ApiError::invalid_request(format!("unreadable form: {e}")))?;
        loop {
            let field = match multipart.next_field().await {
                Ok(Some(field)) => field,
                Ok(None) => break,
                Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    return Err(ApiError::payload_too_large(limit));
                }
                Err(e) => {
                    return Err(ApiError::invalid_request(format!("unreadable form: {e}")));
                }
            };
            if fields.len() >= MAX_FIELDS {
                return Err(ApiError::invalid_request(format!(
                    "the form has more than {MAX_FIELDS} fields"
                )));
            }
            let name = field.name().unwrap_or("").to_owned();
            let is_file = field.file_name().is_some();
            let bytes = match field.bytes().await {
                Ok(bytes) => bytes,
                Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    return Err(ApiError::payload_too_large(limit));
                }
                Err(e) => {
                    return Err(ApiError::invalid_request(format!("unreadable form: {e}")));
                }
            };
            let value = if is_file {
                Submitted::File {
                    bytes: bytes.to_vec(),
                }
            } else {
                Submitted::Text(String::from_utf8_lossy(&bytes).into_owned())
            };
            fields.push((name, value));
        }
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        let body = axum::body::Bytes::from_request(request, &())
            .await
            .map_err(|r| ApiError::unreadable_body(&r, limit))?;
        for (name, value) in form_urlencoded::parse(&body) {
            if fields.len() >= MAX_FIELDS {
                return Err(ApiError::invalid_request(format!(
                    "the form has more than {MAX_FIELDS} fields"
                )));
            }
            fields.push((name.into_owned(), Submitted::Text(value.into_owned())));
        }
    } else {
        return Err(ApiError::unsupported_media_type(format!(
            "forms are multipart/form-data or application/x-www-form-urlencoded, not '{content_type}'"
        )));
    }
    Ok(fields)
}

/// The text of field `name`, if sent (the first, if repeated: a form
/// has each of its own fields once).
pub(crate) fn text<'a>(fields: &'a [(String, Submitted)], name: &str) -> Option<&'a str> {
    fields.iter().find_map(|(n, v)| match v {
        Submitted::Text(text) if n == name => Some(text.as_str()),
        _ => None,
    })
}

/// A refusal of one input: the input id and the exception. The id lets
/// the form show the exception beside that field.
type FieldError = (String, ApiError);

/// Turn submitted fields into execute-request inputs, by the kind of
/// field each input's schema asked for. Empty fields are left out (an
/// unset optional input); a value that does not convert is refused
/// naming its input.
pub(crate) fn convert(
    description: &Value,
    submitted: &[(String, Submitted)],
) -> Result<Map<String, Value>, FieldError> {
    let mut inputs = Map::new();
    for (id, input) in sorted_inputs(description) {
        let name = format!("{INPUT_PREFIX}{id}");
        let schema = input.get("schema").cloned().unwrap_or(Value::Null);
        let kind = field_kind(&schema, repeated(input));
        let Some((_, value)) = submitted.iter().find(|(n, _)| *n == name) else {
            continue;
        };
        let refuse = |detail: String| (id.clone(), ApiError::invalid_request(detail));
        // By the kind of field the schema asked for: an empty field is an
        // unset input (left out, so the validator can say it is
        // required); a file is base64 (the OGC encoding of binary values,
        // which the guest SDK decodes); text stays text; numbers and
        // booleans are parsed (integers as integers, so an `integer`
        // schema accepts them); selects and text areas hold JSON text.
        let converted = match (kind, value) {
            (_, Submitted::Text(text)) if text.trim().is_empty() => continue,
            ("file", Submitted::File { bytes }) if bytes.is_empty() => continue,
            ("file", Submitted::File { bytes }) => {
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            }
            (_, Submitted::File { .. }) => {
                return Err(refuse(format!("input '{id}' takes text, not a file")));
            }
            ("text", Submitted::Text(text)) | ("file", Submitted::Text(text)) => {
                Value::String(text.clone())
            }
            ("number", Submitted::Text(text)) => {
                let trimmed = text.trim();
                let number = if schema.get("type").and_then(Value::as_str) == Some("integer") {
                    trimmed.parse::<i64>().ok().map(Value::from)
                } else {
                    trimmed
                        .parse::<f64>()
                        .ok()
                        .and_then(serde_json::Number::from_f64)
                        .map(Value::Number)
                };
                number
                    .ok_or_else(|| refuse(format!("input '{id}': '{trimmed}' is not a number")))?
            }
            ("boolean", Submitted::Text(text)) => match text.as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                other => {
                    return Err(refuse(format!(
                        "input '{id}': '{other}' is not true or false"
                    )));
                }
            },
            (_, Submitted::Text(text)) => serde_json::from_str(text)
                .map_err(|e| refuse(format!("input '{id}' is not valid JSON: {e}")))?,
        };
        inputs.insert(id.clone(), converted);
    }
    Ok(inputs)
}

/// The input a validation detail names (`input 'name' is required`),
/// if it is one of the process's. The validator says which input in
/// words, not in a field of its error, so the detail is searched for
/// `input '<id>'` of each known id; the earliest mention wins. An id the
/// process does not have is never matched, so a detail quoting client
/// text cannot point at a field that does not exist.
pub(crate) fn named_input(detail: &str, description: &Value) -> Option<String> {
    sorted_inputs(description)
        .into_iter()
        .filter_map(|(id, _)| detail.find(&format!("input '{id}'")).map(|at| (at, id)))
        .min_by_key(|(at, _)| *at)
        .map(|(_, id)| id.clone())
}

/// The bearer token of a form submission: the `token` field, or the
/// `Authorization` header (API clients, the fuzzer). The field is turned
/// into the header the API's own check reads, so a form and an API call
/// are checked by the same constant-time comparison.
pub(crate) fn presented_token(
    fields: &[(String, Submitted)],
    headers: &axum::http::HeaderMap,
) -> axum::http::HeaderMap {
    let mut with_token = headers.clone();
    if let Some(token) = text(fields, "token").filter(|t| !t.trim().is_empty())
        && let Ok(value) = axum::http::HeaderValue::from_str(&format!("Bearer {}", token.trim()))
    {
        with_token.insert(header::AUTHORIZATION, value);
    }
    with_token
}

/// Whether the request's body is a form (multipart or urlencoded), by its
/// declared `Content-Type`; parameters (the multipart boundary) are
/// allowed.
fn is_form(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase)
        .is_some_and(|t| {
            t.starts_with("multipart/form-data")
                || t.starts_with("application/x-www-form-urlencoded")
        })
}

/// The token check a form endpoint makes before it reads the body, as
/// the API's routes do: an `Authorization` header is checked at once (a
/// wrong one is a 403, whatever the body); a request without one that is
/// not even a form cannot carry a token anywhere, so it is a 401 (not a
/// 415: authentication is answered first). A form without the header is
/// let through, its `token` field checked once read.
pub(crate) fn check_token_first(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    needed: Role,
) -> Result<(), ApiError> {
    if headers.contains_key(header::AUTHORIZATION) || !is_form(headers) {
        return super::super::auth::require(state, headers, needed).map(drop);
    }
    Ok(())
}

/// A form submitted about one existing process, read in the order every
/// such endpoint checks things (`admin.rs`, "Order of the checks"): an
/// early token check where the endpoint needs a role, then the process,
/// then the body. The process is looked up before the body is read
/// because a 404 has no page to re-render the form on, and a large upload
/// for a process that does not exist need not be read at all.
pub(crate) struct ProcessForm {
    /// The request's headers, kept for the later check of the `token`
    /// field ([`ProcessForm::token`]).
    pub(crate) headers: axum::http::HeaderMap,
    /// The process the form is about.
    pub(crate) process: Arc<RegisteredProcess>,
    /// The submitted fields, in order.
    pub(crate) fields: Vec<(String, Submitted)>,
}

impl ProcessForm {
    /// The first stage of the execute, replace and undeploy forms:
    /// [`check_token_first`] when `needed` names a role (the execute form
    /// needs none unless jobs are protected), the process `id` or a plain
    /// `no-such-process`, then [`read_form`] under the request limit.
    pub(crate) async fn read(
        state: &AppState,
        id: &str,
        request: Request,
        needed: Option<Role>,
    ) -> Result<Self, ApiError> {
        let headers = request.headers().clone();
        if let Some(role) = needed {
            check_token_first(state, &headers, role)?;
        }
        let process = state.process(id)?;
        let fields = read_form(request, state.config.max_request_bytes).await?;
        Ok(Self {
            headers,
            process,
            fields,
        })
    }

    /// The headers the API's own token check reads: the request's, with
    /// the form's `token` field as the bearer token when one was typed
    /// ([`presented_token`]).
    pub(crate) fn token(&self) -> axum::http::HeaderMap {
        presented_token(&self.fields, &self.headers)
    }
}

/// Execute a process from its HTML form.
///
/// The fields become an execute request, validated against the process's
/// inputs, and the browser is sent (303) to the job or its results.
#[utoipa::path(post, path = "/ui/processes/{processID}/execution", tag = "HTML", operation_id = "executeForm",
    security((), ("bearer" = [])),
    params(ProcessIdPath),
    request_body(content = Object, content_type = "multipart/form-data", description = "The execute form of the process page: one field `input.<id>` per input (text, number, JSON, or a file), `mode` (`sync` or `async`), and `token` when jobs need the bearer token"),
    responses(
        (status = 303, description = "Executed: to the job's page (async, or a failed sync job) or its results (sync)"),
        (status = 400, description = "An input is invalid: the form again, the exception next to the input", content_type = "text/html"),
        (status = 401, description = "No bearer token (only with auth.keys or auth.protect_jobs)", content_type = "text/html"),
        (status = 403, description = "Wrong bearer token, or a key below the role execute (only with auth.keys or auth.protect_jobs)", content_type = "text/html"),
        (status = 404, response = NoSuchProcess),
        FormRejections,
        (status = 503, description = "Queue full or shutting down: the form again with the exception", content_type = "text/html")))]
pub(crate) async fn execute(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let needed = state.config.auth.jobs_protected().then_some(Role::Execute);
    let submission = ProcessForm::read(&state, &id, request, needed).await?;
    let (process, submitted) = (&submission.process, &submission.fields);
    let form = FormState {
        values: submitted
            .iter()
            .filter_map(|(name, value)| match value {
                Submitted::Text(text) if name.starts_with(INPUT_PREFIX) => {
                    Some((name.clone(), text.clone()))
                }
                _ => None,
            })
            .collect(),
        mode: text(submitted, "mode").map(str::to_owned),
        ..FormState::default()
    };
    // Every refusal is the process page again, the exception next to the
    // input it names and everything typed kept.
    let refuse = |mut form: FormState, input: Option<String>, error: ApiError| {
        form.error_input = input;
        form.error = Some(error.exception());
        Ok(pages::process(&state, process, error.status(), &form, None))
    };
    let caller = match super::super::auth::job_caller(&state, &submission.token()) {
        Ok(caller) => caller,
        Err(error) => return refuse(form, None, error),
    };
    let description = process.description();
    let inputs = match convert(&description, submitted) {
        Ok(inputs) => inputs,
        Err((input, error)) => return refuse(form, Some(input), error),
    };
    if let Err(invalid) = process.validator.validate_with_nested(&inputs) {
        let input = named_input(&invalid.to_string(), &description);
        return refuse(form, input, ApiError::invalid_request(invalid.to_string()));
    }
    let request = ExecuteRequest {
        inputs,
        response: Some(ResponseType::Document),
        ..ExecuteRequest::default()
    };
    // A JSON field may hold a nested process (`{"process": …}`): the whole
    // tree gets the checks and bounds an API request gets, before anything
    // runs.
    if let Err(error) = super::super::execution::check_request(&state, process, &request) {
        return refuse(form, None, error);
    }
    let wants_async = form.mode.as_deref() == Some("async");
    match run(
        &state,
        process,
        request,
        wants_async,
        caller.owner().as_ref(),
    )
    .await
    {
        Ok(location) => Ok(see_other(&location)),
        Err(error) => refuse(form, None, error),
    }
}

/// Run the job in the negotiated mode; where to send the browser next.
/// The form's choice is a preference, as `Prefer: respond-async` is:
/// [`negotiate_mode`] (the one negotiation of `execution.rs`) honours it
/// when the process and the server allow, and falls back otherwise, so a
/// sync-only process still runs from an `async` form.
async fn run(
    state: &AppState,
    process: &RegisteredProcess,
    request: ExecuteRequest,
    wants_async: bool,
    owner: Option<&JobOwner>,
) -> Result<String, ApiError> {
    let (can_sync, can_async) = modes(state, process);
    let negotiated = negotiate_mode(wants_async, can_sync, can_async).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            exception_type::EXECUTION_MODE,
            "Execution mode not supported",
            format!(
                "process '{}' cannot be executed on this server: neither mode it supports is enabled",
                process.id()
            ),
        )
    })?;
    let base = &state.base_url;
    match negotiated.mode {
        super::super::execution::Mode::Async => {
            let job = state
                .scheduler
                .submit_async(process, request, owner, true)
                .await?;
            Ok(format!("{base}/jobs/{}", job.id))
        }
        super::super::execution::Mode::Sync => {
            // Always stored, whatever `execution.keep_sync_jobs` says: the
            // form sends its user to the job's pages.
            let SyncRun { job, results, .. } = state
                .scheduler
                .execute_sync(process, request, owner, true, SyncRecord::Always)
                .await?;
            Ok(match results {
                Some(_) => format!("{base}/jobs/{}/results", job.id),
                None => format!("{base}/jobs/{}", job.id),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use super::super::form_fields::tests::echo_like;

    fn t(name: &str, value: &str) -> (String, Submitted) {
        (name.to_owned(), Submitted::Text(value.to_owned()))
    }

    #[test]
    fn fields_convert_back_to_inputs_by_kind() {
        let submitted = vec![
            t("input.name", "Joe"),
            t("input.count", "3"),
            t("input.ratio", "0.5"),
            t("input.flag", "false"),
            t("input.shape", r#"{"type": "Point", "coordinates": [1, 2]}"#),
            t("input.colour", "2"),
            (
                "input.blob".to_owned(),
                Submitted::File {
                    bytes: b"hi".to_vec(),
                },
            ),
            t("mode", "async"),
        ];
        let inputs = convert(&echo_like(), &submitted).unwrap();
        assert_eq!(
            Value::Object(inputs),
            json!({"name": "Joe", "count": 3, "ratio": 0.5, "flag": false,
                   "shape": {"type": "Point", "coordinates": [1, 2]}, "colour": 2, "blob": "aGk="})
        );
    }

    #[test]
    fn empty_fields_are_left_out_and_bad_values_name_their_input() {
        let inputs = convert(
            &echo_like(),
            &[
                t("input.name", "Joe"),
                t("input.count", ""),
                t("input.flag", ""),
            ],
        )
        .unwrap();
        assert_eq!(Value::Object(inputs), json!({"name": "Joe"}));
        let (input, error) = convert(&echo_like(), &[t("input.count", "three")]).unwrap_err();
        assert_eq!(input, "count");
        assert!(error.exception().detail.contains("'three' is not a number"));
        let (input, _) = convert(&echo_like(), &[t("input.shape", "{oops")]).unwrap_err();
        assert_eq!(input, "shape");
    }

    #[test]
    fn the_named_input_is_found_in_a_detail() {
        let description = echo_like();
        assert_eq!(
            named_input("input 'name' is required", &description).as_deref(),
            Some("name")
        );
        assert_eq!(
            named_input("input 'count' occurs 2 times", &description).as_deref(),
            Some("count")
        );
        assert_eq!(named_input("something else", &description), None);
    }
}
