//! CORS: browser clients of the configured origins can call the API and
//! read the headers they need (`Location` of a new job).

use reqwest::Method;
use serde_json::json;
use wasmproc_tests::TestServer;

const ORIGIN: &str = "http://localhost:8080";

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
    assert_eq!(
        preflight.header("access-control-allow-origin").as_deref(),
        Some(ORIGIN)
    );
    let allowed = preflight
        .header("access-control-allow-headers")
        .unwrap_or_default()
        .to_lowercase();
    assert!(
        allowed.contains("prefer") && allowed.contains("content-type"),
        "{allowed}"
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
    assert_eq!(
        created.header("access-control-allow-origin").as_deref(),
        Some(ORIGIN)
    );
    let exposed = created
        .header("access-control-expose-headers")
        .unwrap_or_default()
        .to_lowercase();
    assert!(
        exposed.contains("location") && exposed.contains("preference-applied"),
        "{exposed}"
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
