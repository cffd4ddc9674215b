//! `GET /metrics`: every metric in the Prometheus text format (see
//! `telemetry::metrics` for the names and where each is recorded).
//!
//! The gauges that describe the present (queue depth, running jobs,
//! workers) are read when scraped rather than kept up to date on every
//! change: a scrape every few seconds costs one store query, while
//! updating them per job would cost every job.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::telemetry::metrics::{Gauges, render, set_gauges};

/// Media type of the Prometheus text exposition format. Prometheus
/// chooses its parser by this header, and the version parameter names
/// the format exactly.
pub(crate) const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The metrics, as Prometheus scrapes them.
///
/// Never behind credentials and never an error: a scrape reports what it
/// can, and a store that cannot answer leaves the queue gauge as it was.
#[utoipa::path(get, path = "/metrics", tag = "Monitoring", operation_id = "getMetrics",
    responses((status = 200, description = "Every metric in the Prometheus text exposition format 0.0.4 (HTTP requests by route and status, jobs by process and outcome, queue, workers, sandbox, store)", content_type = "text/plain", body = String)))]
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    // A store that cannot answer (PostgreSQL down) must not fail the
    // scrape: the queue gauge keeps its last value, the rest is fresh.
    let queue_depth = state.store.queued_jobs().await.ok();
    let (running, busy_workers) = state.scheduler.load();
    set_gauges(Gauges {
        queue_depth,
        running,
        workers: state.config.execution.max_concurrent_jobs,
        busy_workers,
        write_failures: state.scheduler.write_failures(),
    });
    let mut response = render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(PROMETHEUS_TEXT),
    );
    response
}
