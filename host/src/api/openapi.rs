//! `GET /api`: the OpenAPI 3.0 document, generated from the handlers'
//! annotations and the wire types by utoipa.
//!
//! Why generated: the document is a contract that clients, fuzzers and
//! our own tests read (`fuzz_openapi.rs` fuzzes every operation from it,
//! the security tests walk it to find every route), so it must not drift
//! from the code. Each handler carries its `#[utoipa::path]` annotation
//! beside its signature, the wire types derive their schemas, and the
//! error responses many operations share are declared once
//! (`responses.rs`).
//!
//! What the annotations of utoipa 4 cannot say is added by [`finish`] on
//! the generated JSON, once, when the document is first asked for:
//! - the HTML representations: the `f` parameter on every page and
//!   `text/html` beside JSON on its responses, and the form endpoints'
//!   answers ([`html_representations`]);
//! - the least role each operation needs, as `x-wasmproc-role`
//!   ([`required_roles`], from the one table in `auth.rs`);
//! - deploy's and replace's two request media types (a component or an
//!   application package);
//! - OpenAPI links from a created job or process to the operations on it,
//!   which clients and fuzzers follow.
//!
//! The document is the same for every configuration: which operations
//! actually ask for credentials depends on the auth settings, which is why
//! their security is declared optional (`{}` or bearer) and the role is
//! given separately.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::OnceLock;
use utoipa::OpenApi;

use super::responses::{
    AdminForbidden, BodyTimeout, Forbidden, InvalidId, JobFailed, JobFailedOnInputs, NoSuchJob,
    NoSuchProcess, NotAForm, NotAModule, ServerError, TooLarge, Unauthorized,
};

use crate::ogc::{
    ConformanceClasses, Exception, ExecuteRequest, JobList, JobStatus, LandingPage, Link,
    ResponseType, StatusInfo, Subscriber, TransmissionMode, Usage,
};

/// The API definition: every route's operation, the wire types' schemas
/// and the shared error responses.
///
/// A route missing from `paths` here is missing from the document, and
/// so from what the fuzzer and the security tests walk: a new handler
/// must be listed as well as routed.
#[derive(OpenApi)]
#[openapi(
    modifiers(&BearerAuth),
    info(
        title = "wasmproc",
        description = "OGC API - Processes (Part 1 Core 1.0, Part 2 deploy) where every process is a WebAssembly component. Query parameters a route does not know are ignored (and left out of paging links). Every error is an OGC exception document (application/problem+json)."
    ),
    paths(
        super::landing::landing_page,
        super::landing::conformance,
        api_document,
        super::processes::list,
        super::processes::describe,
        super::deploy::deploy,
        super::deploy::replace,
        super::deploy::undeploy,
        super::deploy::package,
        super::execution::execute,
        super::jobs::list,
        super::jobs::status,
        super::jobs::dismiss,
        super::jobs::results,
        super::jobs::output,
        super::job_log::job_log,
        super::metrics::metrics,
        super::health::live,
        super::health::ready,
        super::html::forms::execute,
        super::html::admin::deploy,
        super::html::admin::replace,
        super::html::admin::undeploy,
        super::html::assets::asset,
        super::html::assets::favicon,
    ),
    components(schemas(
        LandingPage,
        ConformanceClasses,
        Link,
        Exception,
        ExecuteRequest,
        ResponseType,
        TransmissionMode,
        Subscriber,
        StatusInfo,
        JobStatus,
        Usage,
        JobList,
        super::health::Health
    ), responses(
        Unauthorized,
        Forbidden,
        AdminForbidden,
        InvalidId,
        NoSuchProcess,
        NoSuchJob,
        BodyTimeout,
        TooLarge,
        NotAForm,
        NotAModule,
        ServerError,
        JobFailedOnInputs,
        JobFailed
    ))
)]
pub(crate) struct ApiDoc;

/// Declares the bearer scheme (`Authorization: Bearer <token or key>`)
/// that operations name in their `security`.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Media type of the OpenAPI document, as OGC API - Common names it for
/// the `service-desc` link: a client tells the version of OpenAPI from it
/// without parsing the document.
pub(crate) const OPENAPI_MEDIA_TYPE: &str = "application/vnd.oai.openapi+json;version=3.0";

/// The document as served: what utoipa generates from the annotations,
/// finished by [`finish`]. Built once, on the first request, and kept as
/// text: it depends on nothing that changes while the server runs (not
/// even the configuration), so every later request is a copy.
pub(crate) fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut document = serde_json::to_value(ApiDoc::openapi()).unwrap_or_else(|_| json!({}));
        finish(&mut document);
        document.to_string()
    })
}

/// What utoipa 4's annotations cannot say: the HTML representations
/// ([`html_representations`]), the least role of each operation
/// ([`required_roles`]), the empty filters of the jobs page
/// ([`empty_filters`]), the two request media types of deploy and replace
/// (a binary component, or an application package), and the OpenAPI
/// links from a created job or process to the operations on it (clients
/// and fuzzers follow them).
///
/// Every step looks its target up by path and skips it when absent, so a
/// renamed route leaves the document valid, only less complete.
fn finish(document: &mut Value) {
    let package_body = json!({
        "required": true,
        "description": "The component (application/wasm), or an OGC application package (application/ogcapppkg+json) whose executionUnit carries it by value (base64) or by href, or carries a workflow: a nested-process execute request with {\"$input\": name} placeholders (application/ogcexec+json)",
        "content": {
            "application/wasm": {"schema": {"type": "string", "format": "binary"}},
            "application/ogcapppkg+json": {"schema": {
                "type": "object",
                "required": ["executionUnit"],
                "properties": {
                    "processDescription": {"type": "object"},
                    "executionUnit": {
                        "description": "{\"value\": <base64>, \"mediaType\": \"application/wasm\"} or {\"href\": <url>}; or a workflow, {\"value\": {\"process\": <id>, \"inputs\": {…}}, \"mediaType\": \"application/ogcexec+json\"} or the call itself; or an array holding one",
                        "oneOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}}]
                    },
                    "jobControlOptions": {"type": "array", "items": {"type": "string"}},
                    "limits": {"type": "object"}
                }
            }}
        }
    });
    html_representations(document);
    required_roles(document);
    empty_filters(document);
    let paths = &mut document["paths"];
    for (path, method) in [("/processes", "post"), ("/processes/{processID}", "put")] {
        if let Some(operation) = paths.get_mut(path).and_then(|p| p.get_mut(method)) {
            operation["requestBody"] = package_body.clone();
        }
    }
    let job_links = json!({
        "getStatus": {"operationId": "getStatus", "parameters": {"jobID": "$response.body#/jobID"}, "description": "The job's status"},
        "getResult": {"operationId": "getResult", "parameters": {"jobID": "$response.body#/jobID"}, "description": "The job's results"},
        "dismiss": {"operationId": "dismiss", "parameters": {"jobID": "$response.body#/jobID"}, "description": "Dismiss the job"}
    });
    if let Some(created) =
        paths.pointer_mut("/~1processes~1{processID}~1execution/post/responses/201")
    {
        created["links"] = job_links;
    }
    if let Some(deployed) = paths.pointer_mut("/~1processes/post/responses/201") {
        deployed["content"] = json!({"application/json": {"schema": {"type": "object", "required": ["id", "links"]}}});
        deployed["links"] = json!({
            "getProcessDescription": {"operationId": "getProcessDescription", "parameters": {"processID": "$response.body#/id"}},
            "execute": {"operationId": "execute", "parameters": {"processID": "$response.body#/id"}},
            "getPackage": {"operationId": "getPackage", "parameters": {"processID": "$response.body#/id"}},
            "undeploy": {"operationId": "undeploy", "parameters": {"processID": "$response.body#/id"}}
        });
    }
}

/// Mark each operation that may ask for credentials with the least role
/// it needs (`x-wasmproc-role`: `read`, `execute` or `admin`, from
/// [`super::auth::OPERATION_ROLES`]); whether it asks depends on the
/// configuration (see `api/auth.rs`).
fn required_roles(document: &mut Value) {
    let Some(paths) = document["paths"].as_object_mut() else {
        return;
    };
    for operation in paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
    {
        let id = operation["operationId"].as_str().unwrap_or_default();
        if let Some((_, role)) = super::auth::OPERATION_ROLES
            .iter()
            .find(|(op, _)| *op == id)
        {
            operation["x-wasmproc-role"] = json!(role.as_str());
        }
    }
}

/// Say that the `/jobs` parameters the jobs page's filter form sends may
/// be empty, meaning no filter (as the handler treats them,
/// [`super::jobs::FILTER_FORM_FIELDS`]): each schema also admits the empty
/// string.
fn empty_filters(document: &mut Value) {
    let Some(parameters) = document
        .pointer_mut("/paths/~1jobs/get/parameters")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for parameter in parameters {
        let name = parameter["name"].as_str().unwrap_or_default();
        if parameter["in"] != "query" || !super::jobs::FILTER_FORM_FIELDS.contains(&name) {
            continue;
        }
        let schema = parameter["schema"].take();
        parameter["schema"] = json!({"anyOf": [schema, {"type": "string", "maxLength": 0}]});
        let description = parameter["description"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        parameter["description"] = json!(format!(
            "{description} (empty: no filter, as a browser's filter form sends it)"
        ));
    }
}

/// The resources that also come as HTML pages (`api/html`).
const HTML_PAGES: &[&str] = &[
    "/",
    "/conformance",
    "/api",
    "/processes",
    "/processes/{processID}",
    "/jobs",
    "/jobs/{jobID}",
    "/jobs/{jobID}/results",
];

/// The form endpoints of the pages (`POST /ui/…`).
const HTML_FORMS: &[&str] = &[
    "/ui/processes",
    "/ui/processes/{processID}/execution",
    "/ui/processes/{processID}/replace",
    "/ui/processes/{processID}/undeploy",
];

/// Declare the HTML representations, which utoipa 4's annotations cannot
/// say once for all: on every page's `GET`, the `f` parameter (`json`,
/// `html`; anything else is a 400, so each gets a 400 response) and
/// `text/html` beside the JSON of every response, errors included (a
/// browser gets its errors as pages). On the form endpoints, a 200: where
/// a client that follows the 303 lands.
fn html_representations(document: &mut Value) {
    let html = json!({"schema": {"type": "string"}});
    let f = json!({
        "name": "f", "in": "query", "required": false,
        "description": "Representation: `json` (the default for clients that do not prefer text/html in Accept) or `html` (a page for people); wins over Accept",
        "schema": {"type": "string", "enum": ["json", "html"]}
    });
    let invalid_f = json!({
        "description": "Invalid parameter (an `f` other than json or html)",
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Exception"}}}
    });
    for path in HTML_PAGES {
        let Some(get) = document.pointer_mut(&format!(
            "/paths/{}/get",
            path.replace('~', "~0").replace('/', "~1")
        )) else {
            continue;
        };
        match get.get_mut("parameters").and_then(Value::as_array_mut) {
            Some(parameters) => parameters.push(f.clone()),
            None => get["parameters"] = json!([f.clone()]),
        }
        let Some(responses) = get.get_mut("responses").and_then(Value::as_object_mut) else {
            continue;
        };
        responses.entry("400").or_insert_with(|| invalid_f.clone());
        for (status, response) in responses.iter_mut() {
            // A response that declares no content (the 200 of `/api`)
            // allows any, HTML included: adding one would forbid the rest.
            if (status.starts_with('2') || status.starts_with('4') || status.starts_with('5'))
                && let Some(Value::Object(content)) = response.get_mut("content")
            {
                content.insert("text/html".into(), html.clone());
            }
        }
    }
    let exception = json!({"schema": {"$ref": "#/components/schemas/Exception"}});
    // The shared error responses (`api/responses.rs`) come as pages too.
    if let Some(shared) = document
        .pointer_mut("/components/responses")
        .and_then(Value::as_object_mut)
    {
        for response in shared.values_mut() {
            if let Some(Value::Object(content)) = response.get_mut("content") {
                content.insert("text/html".into(), html.clone());
            }
        }
    }
    for path in HTML_FORMS {
        if let Some(responses) = document.pointer_mut(&format!(
            "/paths/{}/post/responses",
            path.replace('/', "~1")
        )) {
            // A refusal is the form again for a browser, an exception
            // document for any other client (or one refused before its
            // body was read).
            if let Some(responses) = responses.as_object_mut() {
                for (status, response) in responses.iter_mut() {
                    if status.starts_with('4') || status.starts_with('5') {
                        // A shared response (`$ref`) already has both;
                        // content beside a `$ref` would be ignored.
                        if response.get("$ref").is_some() {
                            continue;
                        }
                        response["content"] = json!({
                            "text/html": html.clone(),
                            "application/problem+json": exception.clone(),
                        });
                    }
                }
            }
            responses["200"] = json!({
                "description": "The page a client following the 303 lands on",
                "content": {"text/html": html.clone(), "application/json": {"schema": {}}}
            });
        }
    }
}

/// The OpenAPI document.
///
/// OpenAPI 3.0 JSON, the same for every configuration; a browser gets it
/// as a page listing the operations.
#[utoipa::path(get, path = "/api", tag = "Capabilities", operation_id = "getAPIDefinition",
    responses((status = 200, description = "This OpenAPI 3.0 document", content_type = "application/vnd.oai.openapi+json;version=3.0")))]
pub(crate) async fn api_document(
    axum::extract::State(state): axum::extract::State<super::AppState>,
    format: super::html::Format,
) -> Response {
    if format.is_html() {
        let document: Value = serde_json::from_str(document()).unwrap_or(Value::Null);
        return super::html::pages::api(&state.base_url, &document);
    }
    let mut response = document().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(OPENAPI_MEDIA_TYPE),
    );
    response
}
