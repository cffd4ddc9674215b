//! `GET /api`: the OpenAPI 3.0 document, generated from the handlers'
//! annotations and the wire types by utoipa.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
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
        description = "OGC API - Processes (Part 1 Core 1.0) where every process is a WebAssembly component."
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

/// The OpenAPI document.
#[utoipa::path(get, path = "/api", tag = "Capabilities",
    responses((status = 200, description = "This OpenAPI 3.0 document", content_type = "application/vnd.oai.openapi+json;version=3.0")))]
pub(crate) async fn api_document() -> Response {
    let body = ApiDoc::openapi().to_json().unwrap_or_else(|_| "{}".into());
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(OPENAPI_MEDIA_TYPE),
    );
    response
}
