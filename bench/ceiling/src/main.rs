//! The benchmark *ceiling*: the fastest a server on this stack (axum,
//! tokio, serde_json) can answer the benchmark's request.
//!
//! `wasmproc-bench-ceiling 127.0.0.1:PORT` answers
//! `POST /processes/hello-world/execution` with `{"inputs":{"name":"Joe"}}`
//! exactly as wasmproc's synchronous raw response does (`"Hello Joe!"`,
//! `Content-Type: application/json`), but parses the body and formats the
//! greeting in place: no job record, no sandbox, no storage. Throughput of
//! wasmproc divided by this one's, under the same load on the same machine,
//! is the fraction of the HTTP stack's ceiling that wasmproc reaches.

mod serve;

use std::process::ExitCode;

use axum::Router;
use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

/// Parse the execute request and answer like hello-world, raw.
async fn execute(body: Bytes) -> Response {
    let request: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("invalid JSON: {e}")).into_response(),
    };
    let Some(name) = request.pointer("/inputs/name").and_then(|n| n.as_str()) else {
        return (StatusCode::BAD_REQUEST, "missing input 'name'").into_response();
    };
    let message = request
        .pointer("/inputs/message")
        .and_then(|m| m.as_str())
        .unwrap_or_default();
    let echo = format!("Hello {name}! {message}").trim_end().to_owned();
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::Value::String(echo).to_string(),
    )
        .into_response()
}

#[tokio::main]
async fn main() -> ExitCode {
    let Some(addr) = std::env::args().nth(1) else {
        eprintln!("usage: wasmproc-bench-ceiling 127.0.0.1:PORT");
        return ExitCode::from(2);
    };
    let app = Router::new().route("/processes/hello-world/execution", post(execute));
    serve::serve("ceiling", &addr, app).await
}
