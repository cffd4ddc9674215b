//! `GET /` and `GET /conformance`: where an OGC client starts.
//!
//! The landing page is the one URL a user gives a client; everything else
//! is found from its links by relation type (`service-desc` for the
//! OpenAPI document, `conformance`, the `processes` and `job-list` relations
//! of OGC API - Processes), so the links carry the relation URIs the
//! standard names ([`rel`]) and absolute URLs built on the configured
//! `public_url` (behind a proxy, the address the client sees, not the one
//! the server bound). The conformance classes are the ones the test suite
//! exercises (`CONFORMANCE_CLASSES` in `ogc/`); claiming one means its
//! requirements are tested, not merely intended.
//!
//! Neither asks for credentials, whatever the auth settings: a client must
//! be able to discover what a server is and what it needs before it has a
//! key.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::html::{Format, pages};
use super::responses::ServerError;
use crate::ogc::{CONFORMANCE_CLASSES, ConformanceClasses, LandingPage, Link, rel};

/// The landing page.
///
/// Links to everything else: the API definition, the conformance
/// classes, the processes and the jobs (JSON, or a page for a browser).
#[utoipa::path(get, path = "/", tag = "Capabilities", operation_id = "getLandingPage",
    responses((status = 200, description = "Links to the API definition, conformance, processes and jobs", body = LandingPage), (status = 500, response = ServerError)))]
pub(crate) async fn landing_page(State(state): State<AppState>, format: Format) -> Response {
    let base = &state.base_url;
    let document = LandingPage {
        title: "wasmproc".into(),
        description: "OGC API - Processes with WebAssembly components: every process runs in its own sandbox with fuel, memory and wall-clock limits.".into(),
        links: vec![
            Link::new(format!("{base}/"), "self", "application/json", "this document"),
            Link::new(format!("{base}/api"), rel::SERVICE_DESC, "application/vnd.oai.openapi+json;version=3.0", "the API definition"),
            Link::new(format!("{base}/conformance"), rel::CONFORMANCE, "application/json", "conformance classes implemented"),
            Link::new(format!("{base}/processes"), rel::PROCESSES, "application/json", "the processes offered"),
            Link::new(format!("{base}/jobs"), rel::JOB_LIST, "application/json", "the jobs"),
        ],
    };
    if format.is_html() {
        return pages::landing(base, &document);
    }
    Json(document).into_response()
}

/// The conformance classes implemented and tested.
///
/// Part 1: core, OGC process description, JSON, HTML, OpenAPI 3.0, job
/// list, dismiss, callback; Part 2: deploy-replace-undeploy and the OGC
/// application package; Part 3 (draft): nested processes and deployable
/// workflows.
#[utoipa::path(get, path = "/conformance", tag = "Capabilities", operation_id = "getConformanceClasses",
    responses((status = 200, description = "Conformance classes", body = ConformanceClasses), (status = 500, response = ServerError)))]
pub(crate) async fn conformance(State(state): State<AppState>, format: Format) -> Response {
    let document = ConformanceClasses {
        conforms_to: CONFORMANCE_CLASSES
            .iter()
            .map(|c| (*c).to_owned())
            .collect(),
    };
    if format.is_html() {
        return pages::conformance(&state.base_url, &document.conforms_to);
    }
    Json(document).into_response()
}
