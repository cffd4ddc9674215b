//! `GET /api`: the OpenAPI 3.0 document, generated from the handlers'
//! annotations and the wire types by utoipa.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::OnceLock;
use utoipa::OpenApi;

use crate::ogc::{
    ConformanceClasses, Exception, ExecuteRequest, JobList, JobStatus, LandingPage, Link,
    ResponseType, StatusInfo, Subscriber, TransmissionMode, Usage,
};

/// The API definition.
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
        JobList
    ))
)]
pub(crate) struct ApiDoc;

/// Declares the bearer-token scheme of the deploy routes.
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

/// Media type of the OpenAPI document.
pub(crate) const OPENAPI_MEDIA_TYPE: &str = "application/vnd.oai.openapi+json;version=3.0";

/// The document as served: what utoipa generates from the annotations,
/// finished by [`finish`]. Built once.
pub(crate) fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut document = serde_json::to_value(ApiDoc::openapi()).unwrap_or_else(|_| json!({}));
        finish(&mut document);
        document.to_string()
    })
}

/// What utoipa 4's annotations cannot say: the two request media types of
/// deploy and replace (a binary component, or an application package),
/// and the OpenAPI links from a created job or process to the operations
/// on it (clients and fuzzers follow them).
fn finish(document: &mut Value) {
    let package_body = json!({
        "required": true,
        "description": "The component (application/wasm), or an OGC application package (application/ogcapppkg+json) whose executionUnit carries it by value (base64) or by href",
        "content": {
            "application/wasm": {"schema": {"type": "string", "format": "binary"}},
            "application/ogcapppkg+json": {"schema": {
                "type": "object",
                "required": ["executionUnit"],
                "properties": {
                    "processDescription": {"type": "object"},
                    "executionUnit": {
                        "description": "{\"value\": <base64>, \"mediaType\": \"application/wasm\"} or {\"href\": <url>}, or an array holding one",
                        "oneOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}}]
                    },
                    "jobControlOptions": {"type": "array", "items": {"type": "string"}},
                    "limits": {"type": "object"}
                }
            }}
        }
    });
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

/// The OpenAPI document.
#[utoipa::path(get, path = "/api", tag = "Capabilities", operation_id = "getAPIDefinition",
    responses((status = 200, description = "This OpenAPI 3.0 document", content_type = "application/vnd.oai.openapi+json;version=3.0")))]
pub(crate) async fn api_document() -> Response {
    let mut response = document().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(OPENAPI_MEDIA_TYPE),
    );
    response
}
