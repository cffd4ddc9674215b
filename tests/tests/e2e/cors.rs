//! CORS: browser clients of the configured origins can call the API and
//! read the headers they need (`Location` of a new job).

use reqwest::Method;
use serde_json::json;
use wasmproc_tests::{Reply, TestServer};

const ORIGIN: &str = "http://localhost:8080";

/// Panic unless `reply` allows [`ORIGIN`] and its header `list` (a
/// comma-separated list of header names: allowed in a preflight, exposed
/// on a response) names each of `names`, in any case.
fn assert_cors(reply: &Reply, list: &str, names: &[&str]) {
    assert_eq!(
        reply.header("access-control-allow-origin").as_deref(),
        Some(ORIGIN),
        "{}",
        reply.request
    );
    let listed = reply.header(list).unwrap_or_default().to_lowercase();
    for name in names {
        assert!(listed.contains(name), "{list} lacks {name}: {listed}");
    }
}

#[tokio::test]
async fn configured_origins_get_cors_headers_with_location_exposed() {
    let server = TestServer::builder()
        .configure(|c| c.cors.allowed_origins = vec![ORIGIN.into()])
        .start()
        .await;
    let preflight = server
        .send(
            Method::OPTIONS,
            "/processes/echo/execution",
            &[
                ("origin", ORIGIN),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "content-type, prefer"),
            ],
            None,
        )
        .await;
    assert!(preflight.status < 300, "preflight: {}", preflight.status);
    assert_cors(
        &preflight,
        "access-control-allow-headers",
        &["prefer", "content-type"],
    );

    let body = serde_json::to_vec(&json!({ "inputs": { "stringInput": "x" } })).unwrap();
    let created = server
        .send(
            Method::POST,
            "/processes/echo/execution",
            &[
                ("origin", ORIGIN),
                ("prefer", "respond-async"),
                ("content-type", "application/json"),
            ],
            Some(body),
        )
        .await;
    created.expect_status(201);
    assert_cors(
        &created,
        "access-control-expose-headers",
        &["location", "preference-applied"],
    );
    server.shutdown().await;
}

#[tokio::test]
async fn without_configuration_no_cors_headers_are_sent() {
    let server = TestServer::start().await;
    let reply = server
        .get_with("/processes", &[("origin", "http://evil.example")])
        .await;
    reply.expect_status(200);
    assert_eq!(reply.header("access-control-allow-origin"), None);
    server.shutdown().await;
}
