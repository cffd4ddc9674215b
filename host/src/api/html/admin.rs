//! Deploy, replace and undeploy from the pages (OGC API - Processes Part
//! 2 for people).
//!
//! Browsers cannot send `PUT` or `DELETE` from a form, nor an
//! `Authorization` header, so each operation has a `POST /ui/…` endpoint
//! taking a multipart form: the component as a file, and the admin token
//! in a `token` field. The token is checked exactly as the API checks it
//! (constant time, never logged) and is sent with each submission only:
//! it is not kept in a cookie or in browser storage, so there is no
//! session to steal and no cross-site request can carry it. An API client
//! may send `Authorization: Bearer …` instead of the field.
//!
//! Success answers 303 to the page of the process (deploy, replace) or to
//! the process list (undeploy); a refusal shows the page again with the
//! OGC exception above the form.
//!
//! # Order of the checks
//! Each endpoint checks an `Authorization` header, if any, before reading
//! the body, and refuses a body that is not a form and so carries no
//! token at all (`forms::check_token_first`); then, for replace and
//! undeploy, that the process exists (a 404 has no page to re-render the
//! form on); then it reads the form, and only then checks the `token`
//! field and does the work. Refusals from the last stage are the page
//! again; the earlier ones are plain exceptions, which the error-page
//! middleware renders for a browser.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::super::auth::require_admin;
use super::super::parameters::ProcessIdPath;
use super::super::processes::list_page;
use super::super::responses::{AdminFormRefusals, FormRejections, NoSuchProcess};
use super::super::{ApiError, AppState, Paging, Path};
use super::form_fields::FormState;
use super::forms::{ProcessForm, Submitted, check_token_first, presented_token, read_form};
use super::{pages, see_other};
use crate::config::Role;
use crate::jobs::{Policy, RegisteredProcess, Registration};

/// The module bytes of the form's `module` file field: a 400 naming what
/// to do when no file was chosen (browsers send an empty part then).
fn module(fields: &[(String, Submitted)]) -> Result<Vec<u8>, ApiError> {
    fields
        .iter()
        .find_map(|(name, value)| match value {
            Submitted::File { bytes } if name == "module" && !bytes.is_empty() => {
                Some(bytes.clone())
            }
            _ => None,
        })
        .ok_or_else(|| ApiError::invalid_request("choose a component (.wasm) to upload"))
}

/// What a deploy or replace from a form registers: a mutable process,
/// described by its module's `describe()`, with the server's default
/// limits and the description's `jobControlOptions`. (An application
/// package with an overriding description or limits is for the API:
/// `POST /processes` with `application/ogcapppkg+json`.)
fn registration(policy: Policy) -> Registration {
    Registration {
        mutable: true,
        description: None,
        limits: None,
        job_control_options: None,
        policy,
    }
}

/// Deploy a component from the process list's form.
///
/// The token (field or header), then the module (the `module` file),
/// registered exactly as `POST /processes` with `application/wasm`
/// registers it (compiled, described, stored durably) before the 303 to
/// its page.
#[utoipa::path(post, path = "/ui/processes", tag = "HTML", operation_id = "deployForm",
    security(("bearer" = [])),
    request_body(content = Object, content_type = "multipart/form-data", description = "`module`: the component (.wasm file); `token`: the admin token (or send Authorization: Bearer)"),
    responses(
        (status = 303, description = "Deployed: to the process's page"),
        (status = 400, description = "No module, or not a usable component: the process list again with the exception", content_type = "text/html"),
        AdminFormRefusals,
        (status = 409, description = "duplicated-process", content_type = "text/html"),
        FormRejections))]
pub(crate) async fn deploy(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    let headers = request.headers().clone();
    check_token_first(&state, &headers, Role::Admin)?;
    let fields = read_form(request, state.config.max_request_bytes).await?;
    let outcome = async {
        require_admin(&state, &presented_token(&fields, &headers))?;
        let wasm = module(&fields)?;
        let process = state
            .registry
            .register(wasm, registration(Policy::Deploy))
            .await?;
        tracing::info!(process = process.id(), "deployed from the form");
        Ok::<_, ApiError>(format!("{}/processes/{}", state.base_url, process.id()))
    }
    .await;
    match outcome {
        Ok(location) => Ok(see_other(&location)),
        // The process list's first page again, the refusal above the form.
        Err(error) => {
            let (summaries, links) = list_page(&state, Paging::first(), &[]);
            Ok(pages::process_list(
                &state,
                &summaries,
                &links,
                error.status(),
                Some(error.exception()),
            ))
        }
    }
}

/// Replace a deployed process from its page's form.
///
/// As `PUT /processes/{id}` with `application/wasm` (jobs already
/// accepted finish on the version they were accepted with), then 303 to
/// its page. Job control options and limits given at deploy time are not
/// carried over: the form registers the module as it describes itself.
#[utoipa::path(post, path = "/ui/processes/{processID}/replace", tag = "HTML", operation_id = "replaceForm",
    security(("bearer" = [])),
    params(ProcessIdPath),
    request_body(content = Object, content_type = "multipart/form-data", description = "`module`: the new component; `token`: the admin token (or send Authorization: Bearer)"),
    responses(
        (status = 303, description = "Replaced: to the process's page"),
        (status = 400, description = "No module, or not a usable component", content_type = "text/html"),
        AdminFormRefusals,
        (status = 404, response = NoSuchProcess),
        FormRejections))]
pub(crate) async fn replace(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    on_admin_form(&state, &id, request, async |form| {
        state.registry.check_mutable(&id)?;
        let wasm = module(&form.fields)?;
        state
            .registry
            .register(wasm, registration(Policy::Replace(id.clone())))
            .await?;
        tracing::info!(process = %id, "replaced from the form");
        Ok(format!("{}/processes/{id}", state.base_url))
    })
    .await
}

/// Undeploy a process from its page's form.
///
/// As `DELETE /processes/{id}` (accepted jobs still run, finished ones
/// stay readable), then 303 to the process list. A process that vanished
/// meanwhile (another admin undeployed it) is a plain 404: there is no
/// page left to show the form on.
#[utoipa::path(post, path = "/ui/processes/{processID}/undeploy", tag = "HTML", operation_id = "undeployForm",
    security(("bearer" = [])),
    params(ProcessIdPath),
    request_body(content = Object, content_type = "multipart/form-data", description = "`token`: the admin token (or send Authorization: Bearer)"),
    responses(
        (status = 303, description = "Undeployed: to the process list"),
        (status = 400, description = "Unreadable form", content_type = "text/html"),
        AdminFormRefusals,
        (status = 404, response = NoSuchProcess),
        FormRejections))]
pub(crate) async fn undeploy(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    on_admin_form(&state, &id, request, async |_| {
        state.registry.undeploy(&id).await?;
        tracing::info!(process = %id, "undeployed from the form");
        Ok(format!("{}/processes", state.base_url))
    })
    .await
}

/// The common course of the replace and undeploy forms: read the form of
/// process `id` (404 when it is gone, see the module's order of checks),
/// check its token, do `work`, and [`answer`] with the location `work`
/// gives or the refusal it met. A 404 met by the work itself (another
/// admin undeployed the process meanwhile) stays a plain 404: there is no
/// page left to show the form on.
async fn on_admin_form(
    state: &AppState,
    id: &str,
    request: Request,
    work: impl AsyncFnOnce(&ProcessForm) -> Result<String, ApiError>,
) -> Result<Response, ApiError> {
    let form = ProcessForm::read(state, id, request, Some(Role::Admin)).await?;
    let outcome = async {
        require_admin(state, &form.token())?;
        work(&form).await
    }
    .await;
    match outcome {
        Err(error) if error.status() == StatusCode::NOT_FOUND => Err(error),
        outcome => Ok(answer(state, &form.process, outcome)),
    }
}

/// How a replace or undeploy form ends once its work is done: a 303 to
/// `location` on success, else the process's page again with the refusal
/// above the form (its status, its OGC exception). The page is the one
/// read before the work, so it still shows a process that the work
/// failed to change.
fn answer(
    state: &AppState,
    process: &Arc<RegisteredProcess>,
    outcome: Result<String, ApiError>,
) -> Response {
    match outcome {
        Ok(location) => see_other(&location),
        Err(error) => pages::process(
            state,
            process,
            error.status(),
            &FormState::default(),
            Some(error.exception()),
        ),
    }
}
