//! The edge: one middleware that every request and every answer passes,
//! outside all the other layers.
//!
//! It does, in this order on the way in and the reverse on the way out:
//! 1. the request id: the client's `x-request-id`, or a fresh UUID set on
//!    the request, and echoed in the response unless the response carries
//!    one already;
//! 2. the request's span (request id, method, path), in which every log
//!    line written while handling the request is written;
//! 3. the HTTP metrics, by method, route template and status, so they count
//!    every answer, error pages included, with its latency;
//! 4. the pages for people (`html::wants_page`, `html::dress`): an OGC
//!    exception becomes an error page for a browser, and every response
//!    gets the security headers.
//!
//! # Why one middleware
//! These were five layers: tower-http's request-id pair and trace layer,
//! and two `from_fn` middlewares. axum applies `Router::layer` to every
//! route and clones the layered service for each request, and each
//! `from_fn` boxes what it wraps again. One function reads in one place
//! and does each thing once. Measured on a sync hello-world (BENCHMARKS.md,
//! the regression section), doing the five layers' work here costs about
//! what the layers did: 0.160–0.173 against 0.163–0.180 ms of server CPU
//! per request, within the noise. A binary without any of the five
//! measured 0.151–0.162 against 0.181–0.183 ms, and one without the HTTP
//! metrics alone no change beyond the noise.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use super::html;
use crate::telemetry::metrics;

/// The request id header, set on the request and echoed in the response.
const X_REQUEST_ID: &str = "x-request-id";

/// The edge middleware (see the module); its state is the base URL the
/// error pages link with.
pub(crate) async fn edge(
    State(base_url): State<Arc<str>>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let request_id = match request.headers().get(X_REQUEST_ID) {
        Some(id) => id.clone(),
        None => {
            let id = HeaderValue::try_from(uuid::Uuid::new_v4().to_string())
                .expect("a UUID is a valid header value");
            request.headers_mut().insert(X_REQUEST_ID, id.clone());
            id
        }
    };
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned());
    let span = tracing::info_span!(
        "request",
        request_id = %request_id.to_str().unwrap_or(""),
        method = %method,
        path = %request.uri().path(),
    );
    let for_people = html::wants_page(&request);
    let mut response = async {
        let response = next.run(request).await;
        html::dress(response, for_people, &base_url).await
    }
    .instrument(span)
    .await;
    metrics::http_answered(
        method.as_str(),
        route.as_deref().unwrap_or("unmatched"),
        response.status().as_u16(),
        started,
    );
    response
        .headers_mut()
        .entry(X_REQUEST_ID)
        .or_insert(request_id);
    response
}
