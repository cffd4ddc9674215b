//! OGC API - Processes Part 2: deploy (`POST /processes`), replace
//! (`PUT /processes/{id}`), undeploy (`DELETE /processes/{id}`) and the
//! deployed package (`GET /processes/{id}/package`).
//!
//! A module arrives as `application/wasm` (the component itself) or as an
//! `application/ogcapppkg+json` application package whose `executionUnit`
//! carries it by value (base64 qualified value) or by `href`. An
//! `executionUnit` may instead carry a workflow: an execute request naming
//! its top `process`, with `{"$input": name}` placeholders, as the value of
//! media type `application/ogcexec+json` (see [`crate::jobs::workflow`]);
//! it is checked, described and stored the same way. The package
//! may also carry a `processDescription` (overriding the module's
//! `describe()`), and — wasmproc extensions — `jobControlOptions` and
//! `limits`.
//!
//! # What a deploy does, in order
//! 1. **Who.** Deploy, replace and undeploy need the admin role
//!    ([`require_admin`]): the admin token or an admin key. A server with
//!    neither refuses them all (403), so a fresh server cannot be given
//!    code by anybody who finds it.
//! 2. **The bytes.** [`read_module`] turns the body into module bytes and
//!    a [`Registration`]: an upload as it is, a package's `value` decoded,
//!    a package's `href` fetched behind the same address guard and size
//!    bound as `href` inputs ([`fetch_module`]), so deploying by reference
//!    cannot reach loopback or private addresses either.
//! 3. **The process.** [`crate::jobs::ProcessRegistry::register`] compiles
//!    and links the component on the job executor, runs its `describe()`
//!    there, checks the description and the imports the sandbox grants,
//!    and stores module and record (the module once per SHA-256) durably
//!    before it answers: a 201 is never undone by a crash. Any refusal
//!    (not a component, another world, a refused import, an id that is
//!    taken) leaves nothing behind.
//!
//! Replace keeps the id and swaps the version: a job remembers the SHA-256
//! of the module it was accepted for, so queued and running jobs finish on
//! the old version while new ones get the new. Undeploy removes the
//! process from the list; its queued jobs still run, its finished jobs stay
//! readable, and the module bytes go once no job needs them
//! (`execution.module_grace`).

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{package_reader, require_admin};
use super::html::{is_json, quality};
use super::parameters::ProcessIdPath;
use super::processes::summary;
use super::responses::{
    AdminRefusals, InvalidId, ModuleBodyRejections, NoSuchProcess, ProcessRefusals, ServerError,
};
use super::{ApiError, AppState, Path};
use crate::config::PartialLimits;
use crate::jobs::workflow::WORKFLOW_MEDIA_TYPE;
use crate::jobs::{AddressGuard, FetchFailure, GuardedClient, Policy, Registration, fetch_bytes};

/// Media type of a component: an upload of the `.wasm` file as it is,
/// and what `GET …/package` answers when the client accepts it.
const WASM: &str = "application/wasm";
/// Media type of an OGC application package (Part 2): JSON that carries
/// the module and, optionally, the description and deploy options.
const APP_PACKAGE: &str = "application/ogcapppkg+json";

/// The parts of an application package we use. Other members are
/// ignored, as OGC API - Processes Part 2 lets profiles add their own.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AppPackage {
    /// A description that replaces the module's `describe()`, either the
    /// description itself or wrapped as `{"process": …}` (as this
    /// server's own packages carry it). It is checked as strictly as one
    /// that a module's `describe()` gives.
    process_description: Option<Value>,
    /// What to deploy: a component or a workflow, in one of the shapes
    /// `execution_unit` accepts. The one member a package must have.
    execution_unit: Value,
    /// `jobControlOptions` overriding the description's (a wasmproc
    /// extension): how a deployer restricts a process to one mode, or
    /// takes `dismiss` away, without rebuilding its module.
    job_control_options: Option<Vec<String>>,
    /// The fields given; the others come from the server's
    /// `[limits.default]`, as for a process's `limits` in the config.
    limits: Option<PartialLimits>,
}

/// The request's media type, lower-cased and without parameters
/// (`application/json; charset=utf-8` is `application/json`); empty when
/// there is no `Content-Type`.
fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Fetch a module given by reference, with the `href` guards and limits
/// (and never more bytes than an upload may have).
///
/// The fetch happens inside the deploy request, so the client waits for
/// it; the `href` timeout bounds that wait. A module that is too large is
/// a 413, as the same bytes uploaded would be; any other failure (an
/// address the guard refuses, a connection error, an HTTP error status)
/// is a 400 naming `executionUnit`, since the reference is the client's.
async fn fetch_module(state: &AppState, href: &str) -> Result<Vec<u8>, ApiError> {
    let client = GuardedClient::new(AddressGuard::for_href(&state.config.href));
    let limit = state
        .config
        .href
        .max_bytes
        .min(state.config.max_request_bytes);
    match fetch_bytes(&client, href, state.config.href.timeout, limit).await {
        Ok((wasm, _)) => Ok(wasm),
        Err(FetchFailure::TooLarge { limit, .. }) => Err(ApiError::payload_too_large(limit)),
        Err(
            failure @ (FetchFailure::Refused(_)
            | FetchFailure::Unreachable { .. }
            | FetchFailure::Status { .. }
            | FetchFailure::Read { .. }
            | FetchFailure::NotJson { .. }),
        ) => Err(ApiError::invalid_request(format!(
            "executionUnit: {failure}"
        ))),
    }
}

/// What an `executionUnit` deploys.
enum Unit {
    /// A component's bytes.
    Component(Vec<u8>),
    /// A workflow document (see [`crate::jobs::workflow`]).
    Workflow(Value),
}

/// What an `executionUnit` carries: a component as a qualified value or
/// a link, or a workflow (an execute request naming its `process`, as a
/// qualified value of media type [`WORKFLOW_MEDIA_TYPE`] or as it is); or
/// an array holding one of those.
///
/// The checks go from the most specific shape to the least: a `process`
/// member means a bare workflow, whatever else is there; then the
/// declared media type (`mediaType`, or `type` as some clients write it)
/// picks a workflow or refuses anything but WebAssembly; only then are
/// `value` (base64) and `href` read. Of an array, the first element that
/// carries a value, a link or a workflow is used; the others are not
/// looked at.
async fn execution_unit(state: &AppState, unit: &Value) -> Result<Unit, ApiError> {
    let unit = match unit {
        Value::Array(units) => units
            .iter()
            .find(|u| {
                u.get("value").is_some() || u.get("href").is_some() || u.get("process").is_some()
            })
            .ok_or_else(|| {
                ApiError::invalid_request(
                    "executionUnit: no element carries a module or a workflow",
                )
            })?,
        other => other,
    };
    if unit.get("process").is_some() {
        return Ok(Unit::Workflow(unit.clone()));
    }
    let declared = unit
        .get("mediaType")
        .or_else(|| unit.get("type"))
        .and_then(Value::as_str);
    if declared == Some(WORKFLOW_MEDIA_TYPE) {
        return match unit.get("value") {
            Some(document @ Value::Object(_)) => Ok(Unit::Workflow(document.clone())),
            _ => Err(ApiError::invalid_request(format!(
                "executionUnit: a workflow ({WORKFLOW_MEDIA_TYPE}) is given as its document in \"value\": {{\"process\": <id>, \"inputs\": {{…}}}}"
            ))),
        };
    }
    if let Some(declared) = declared
        && declared != WASM
        && declared != "wasm"
    {
        return Err(ApiError::invalid_request(format!(
            "executionUnit: only WebAssembly components ({WASM}) and workflows ({WORKFLOW_MEDIA_TYPE}) run here, not '{declared}'"
        )));
    }
    if let Some(encoded) = unit.get("value").and_then(Value::as_str) {
        return base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map(Unit::Component)
            .map_err(|e| {
                ApiError::invalid_request(format!("executionUnit.value is not base64: {e}"))
            });
    }
    if let Some(href) = unit.get("href").and_then(Value::as_str) {
        return fetch_module(state, href).await.map(Unit::Component);
    }
    Err(ApiError::invalid_request(
        "executionUnit must carry the component by value ({\"value\": <base64>, \"mediaType\": \"application/wasm\"}) or by {\"href\": …}",
    ))
}

/// Read a deploy or replace body into what it deploys and a registration.
/// `application/json` is taken as a package too: clients that know JSON
/// but not the package media type send that. A package's limits are
/// resolved over `[limits.default]` here, once, so the stored record says
/// what its jobs get even if the server's defaults change later.
async fn read_module(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    policy: Policy,
) -> Result<(Unit, Registration), ApiError> {
    let body = body.map_err(|r| ApiError::unreadable_body(&r, state.config.max_request_bytes))?;
    let mut registration = Registration {
        mutable: true,
        description: None,
        limits: None,
        job_control_options: None,
        policy,
    };
    match media_type(headers).as_str() {
        WASM => Ok((Unit::Component(body.to_vec()), registration)),
        APP_PACKAGE | "application/json" => {
            let package: AppPackage = serde_json::from_slice(&body).map_err(|e| {
                ApiError::invalid_request(format!("invalid application package: {e}"))
            })?;
            let unit = execution_unit(state, &package.execution_unit).await?;
            registration.description =
                package.process_description.map(|d| match d.get("process") {
                    Some(process) if d.get("id").is_none() => process.clone(),
                    _ => d,
                });
            registration.limits = package
                .limits
                .map(|given| given.over(&state.config.limits.default));
            registration.job_control_options = package.job_control_options;
            Ok((unit, registration))
        }
        other => Err(ApiError::unsupported_media_type(format!(
            "deploy a component as {WASM} or an application package as {APP_PACKAGE}, not '{other}'"
        ))),
    }
}

/// Register what a deploy or replace carries: a component is compiled,
/// described and checked on the job executor; a workflow is checked
/// against the processes on offer now (each it names must exist, within
/// the tree bounds, with no cycle back to itself). Either way the record
/// is stored durably before this returns, and the policy in
/// `registration` decides what a taken id means (409 for a deploy, the
/// same id required for a replace).
async fn register(
    state: &AppState,
    unit: Unit,
    registration: Registration,
) -> Result<std::sync::Arc<crate::jobs::RegisteredProcess>, ApiError> {
    Ok(match unit {
        Unit::Component(wasm) => state.registry.register(wasm, registration).await?,
        Unit::Workflow(document) => {
            state
                .registry
                .register_workflow(document, registration, &state.base_url)
                .await?
        }
    })
}

/// Deploy a process.
///
/// Needs the admin role. The body is a component or an application
/// package; the process is compiled, checked and stored durably before
/// the 201, and its id is the one its description gives.
#[utoipa::path(post, path = "/processes", tag = "Deploy, Replace, Undeploy", operation_id = "deploy",
    security(("bearer" = [])),
    request_body(content = String, content_type = "application/wasm", description = "The component (application/wasm), or an application package (application/ogcapppkg+json) whose executionUnit carries it by value or href, or carries a workflow (application/ogcexec+json: a nested-process execute request with {\"$input\": name} placeholders)"),
    responses(
        (status = 201, description = "Deployed: processSummary with `mutable: true`; `Location` of the process"),
        (status = 400, description = "Not a component, not the wasmproc:process world, invalid description, compile failure; a workflow naming an unknown process, a missing input or an unusable placeholder, or making a cycle", body = Exception, content_type = "application/problem+json"),
        AdminRefusals,
        (status = 409, description = "duplicated-process", body = Exception, content_type = "application/problem+json"),
        ModuleBodyRejections,
        (status = 500, response = ServerError)))]
pub(crate) async fn deploy(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    let (unit, registration) = read_module(&state, &headers, body, Policy::Deploy).await?;
    let process = register(&state, unit, registration).await?;
    tracing::info!(process = process.id(), "deployed");
    let location = format!("{}/processes/{}", state.base_url, process.id());
    let mut response = (
        StatusCode::CREATED,
        axum::Json(summary(&process, &state.base_url)),
    )
        .into_response();
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// Replace a deployed process.
///
/// Only a deployed (mutable) process can be replaced: the built-in and
/// `processes_dir` ones belong to the server's installation, not to the
/// API (403 `immutable-process`). The new module must describe the same
/// id. Mutability is checked first, so a refused replace costs no fetch
/// and no compilation.
#[utoipa::path(put, path = "/processes/{processID}", tag = "Deploy, Replace, Undeploy", operation_id = "replace",
    security(("bearer" = [])),
    params(ProcessIdPath),
    request_body(content = String, content_type = "application/wasm", description = "The new component (application/wasm), or an application package (application/ogcapppkg+json)"),
    responses(
        (status = 204, description = "Replaced; running jobs finish on the old version, new jobs use the new one"),
        (status = 400, description = "Invalid module or description (or it describes another id)", body = Exception, content_type = "application/problem+json"),
        AdminRefusals,
        (status = 404, response = NoSuchProcess),
        ModuleBodyRejections,
        (status = 500, response = ServerError)))]
pub(crate) async fn replace(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    state.registry.check_mutable(&id)?;
    let (unit, registration) =
        read_module(&state, &headers, body, Policy::Replace(id.clone())).await?;
    register(&state, unit, registration).await?;
    tracing::info!(process = %id, "replaced");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Undeploy a process.
///
/// Its jobs are not touched: accepted ones still run on the version they
/// were accepted for, finished ones stay readable until retention deletes
/// them. Built-in and `processes_dir` processes cannot be undeployed (403
/// `immutable-process`).
#[utoipa::path(delete, path = "/processes/{processID}", tag = "Deploy, Replace, Undeploy", operation_id = "undeploy",
    security(("bearer" = [])),
    params(ProcessIdPath),
    responses(
        (status = 204, description = "Undeployed; accepted jobs still run, finished jobs stay readable"),
        (status = 400, response = InvalidId),
        AdminRefusals,
        (status = 404, response = NoSuchProcess),
        (status = 500, response = ServerError)))]
pub(crate) async fn undeploy(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    state.registry.undeploy(&id).await?;
    tracing::info!(process = %id, "undeployed");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The deployed package of a process.
///
/// An application package (JSON) or, with `Accept: application/wasm`,
/// the component itself. A workflow's package carries its document as the
/// `executionUnit` (media type [`WORKFLOW_MEDIA_TYPE`]); it has no
/// component (406).
///
/// The package carries the module by value (base64), the description as
/// stored and the job control options and limits it was deployed with, so
/// that `POST`ing it to another server deploys the same process there.
/// It hands out the process's code, so it needs a key whenever jobs or
/// processes are protected ([`package_reader`]).
#[utoipa::path(get, path = "/processes/{processID}/package", tag = "Deploy, Replace, Undeploy", operation_id = "getPackage", security((), ("bearer" = [])),
    params(ProcessIdPath),
    responses(
        (status = 200, description = "The application package (application/ogcapppkg+json), or the component (application/wasm)"),
        ProcessRefusals,
        (status = 406, description = "`Accept: application/wasm` for a workflow, which is no component", body = Exception, content_type = "application/problem+json")))]
pub(crate) async fn package(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    package_reader(&state, &headers)?;
    let process = state.process(&id)?;
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let wasm_quality = quality(accept, |media| media == WASM);
    let json_quality = quality(accept, is_json);
    // The component when the client names it, above any JSON type (a tie
    // goes to the component: naming it at all is the unusual request).
    let wants_wasm = wasm_quality > 0.0 && wasm_quality >= json_quality;
    if let Some(workflow) = &process.record.workflow {
        // A workflow has no component: refused only to a client that
        // accepts nothing else (no JSON type, no wildcard).
        let accepts_package = json_quality > 0.0
            || quality(accept, |media| media == "*/*" || media == "application/*") > 0.0;
        if wants_wasm && !accepts_package {
            return Err(ApiError::not_acceptable(format!(
                "process '{id}' is a workflow, not a component: its package is {APP_PACKAGE}"
            )));
        }
        let mut package = json!({
            "processDescription": { "process": process.record.description },
            "executionUnit": { "value": workflow, "mediaType": WORKFLOW_MEDIA_TYPE },
        });
        add_deploy_options(&mut package, &process.record);
        return Ok(package_response(package));
    }
    let wasm = state
        .store
        .get_module(&process.record.module_sha256)
        .await?
        .ok_or_else(|| {
            ApiError::internal(&format!("module of '{id}' is missing from the store"))
        })?;
    if wants_wasm {
        let mut response = Body::from(wasm).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(WASM));
        return Ok(response);
    }
    let mut package = json!({
        "processDescription": { "process": process.record.description },
        "executionUnit": {
            "value": base64::engine::general_purpose::STANDARD.encode(&wasm),
            "mediaType": WASM,
        },
    });
    add_deploy_options(&mut package, &process.record);
    Ok(package_response(package))
}

/// The job control options and limits a process was deployed with, in
/// its package. Only what the deployer gave is written: a process
/// deployed without them gets the server's defaults wherever it is
/// deployed next, rather than this server's values frozen into it.
fn add_deploy_options(package: &mut Value, record: &crate::store::ProcessRecord) {
    if let Some(options) = &record.job_control_options {
        package["jobControlOptions"] = json!(options);
    }
    if let Some(limits) = &record.limits {
        package["limits"] = json!(limits);
    }
}

/// A package as the answer, with its media type: `axum::Json` would say
/// `application/json`, and a client that dispatches on the media type
/// would not know it holds a package.
fn package_response(package: Value) -> Response {
    let mut response = axum::Json(package).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(APP_PACKAGE));
    response
}
