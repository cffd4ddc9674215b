//! Hostile requests over real HTTP: deeply nested JSON, invalid UTF-8 in
//! bodies, paths and queries, wrong content types on execute, absurd
//! `limit`/`offset`, path traversal and NUL bytes in ids, unknown query
//! parameters, huge declared bodies and huge invalid inputs.
//!
//! Every case asserts the status and the OGC exception document (`type`,
//! `title`, `status`, `detail`), that no error body leaks internals (file
//! paths, panics, source locations), and that the server still answers
//! normally afterwards. Malformed JSON, 413 on real oversized bodies, 415
//! on deploy and slow clients are covered in `execution.rs`, `deploy.rs`
//! and `slow_clients.rs`; the OpenAPI-driven fuzzing is `fuzz_openapi.rs`.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wasmproc_tests::{
    ADMIN_BEARER, Api, Reply, TestServer, assert_exception, body_link, detail, output_value,
};

const INVALID_PARAMETER: &str = "urn:wasmproc:error:invalid-parameter";
const INVALID_REQUEST: &str = "urn:wasmproc:error:invalid-request";
const UNSUPPORTED_MEDIA_TYPE: &str = "urn:wasmproc:error:unsupported-media-type";
const PAYLOAD_TOO_LARGE: &str = "urn:wasmproc:error:payload-too-large";
const NO_SUCH_JOB: &str =
    "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/no-such-job";
const NO_SUCH_PROCESS: &str =
    "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/no-such-process";

async fn admin_server() -> TestServer {
    TestServer::builder().with_admin_token().start().await
}

/// Panic if an error body gives away anything about the server's insides.
fn assert_no_internals(reply: &Reply, data_dir: &std::path::Path) {
    let text = reply.text();
    for leak in [
        "/work",
        "/tmp",
        "panicked",
        "src/",
        "RUST_BACKTRACE",
        ".rs:",
    ] {
        assert!(
            !text.contains(leak),
            "{}: the body gives away {leak:?}: {text}",
            reply.request
        );
    }
    let data_dir = data_dir.display().to_string();
    assert!(
        !text.contains(&data_dir),
        "{}: the body names the data directory: {text}",
        reply.request
    );
}

/// Assert an OGC exception with this status and full type URI, without
/// internals (nor the data directory of `server`); returns the body.
fn assert_ogc(reply: &Reply, status: u16, type_uri: &str, server: &TestServer) -> Value {
    let body = assert_exception(reply, status, None);
    assert_eq!(
        body["type"].as_str(),
        Some(type_uri),
        "{}: wrong exception type: {body}",
        reply.request
    );
    assert_no_internals(reply, &server.data_dir());
    body
}

/// The server still serves its documents and runs a job.
async fn assert_alive(api: &Api, after: &str) {
    let description = api.get(&format!("/processes/{}", "hello-world")).await;
    assert_eq!(
        description.status,
        200,
        "after {after}: {}",
        description.text()
    );
    let (_, reply) = api
        .execute_sync("hello-world", &json!({ "inputs": { "name": "Ada" } }))
        .await;
    assert_eq!(reply.json(), json!("Hello Ada!"), "after {after}");
}

/// The end of every test: the server is still alive (see
/// [`assert_alive`]) after `after`, and shuts down gracefully.
async fn survives(server: TestServer, after: &str) {
    assert_alive(&server, after).await;
    server.shutdown().await;
}

async fn post(api: &Api, path: &str, content_type: Option<&str>, body: Vec<u8>) -> Reply {
    let mut headers = vec![("authorization", ADMIN_BEARER)];
    if let Some(content_type) = content_type {
        headers.push(("content-type", content_type));
    }
    api.send(Method::POST, path, &headers, Some(body)).await
}

/// Send raw bytes on a new connection; the reply's text up to 4 KiB (or
/// until the server closes, at most 10 s).
async fn raw_request(api: &Api, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(api.base().trim_start_matches("http://"))
        .await
        .expect("connect");
    stream.write_all(request).await.expect("write");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    while received.len() < 4096 && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
        }
        if received.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    String::from_utf8_lossy(&received).into_owned()
}

#[tokio::test]
async fn deeply_nested_json_is_400_and_the_server_survives() {
    let server = admin_server().await;
    let depth = 100_000;
    let brackets = "[".repeat(depth).into_bytes();
    let balanced = format!(
        "{{\"inputs\": {{\"name\": \"x\", \"message\": {}{}}}}}",
        "[".repeat(depth),
        "]".repeat(depth)
    )
    .into_bytes();
    let objects = format!(
        "{{\"inputs\": {{\"name\": {}1{}}}}}",
        "{\"a\":".repeat(depth),
        "}".repeat(depth)
    )
    .into_bytes();
    for (what, body) in [
        ("100k unclosed [", brackets.clone()),
        ("100k balanced [] in an input", balanced),
        ("100k nested objects in an input", objects),
    ] {
        let started = Instant::now();
        let reply = post(
            &server,
            "/processes/hello-world/execution",
            Some("application/json"),
            body,
        )
        .await;
        let exception = assert_ogc(&reply, 400, INVALID_REQUEST, &server);
        assert!(
            detail(&exception).contains("recursion limit"),
            "{what}: {exception}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{what} took {:?}",
            started.elapsed()
        );
        assert_alive(&server, what).await;
    }
    // The same as an application package.
    let reply = post(
        &server,
        "/processes",
        Some("application/ogcapppkg+json"),
        brackets,
    )
    .await;
    assert_ogc(&reply, 400, INVALID_REQUEST, &server);

    // Nesting well inside the limit is an ordinary object input: it runs.
    let mut nested = json!({});
    for _ in 0..100 {
        nested = json!({ "a": nested });
    }
    let (_, reply) = server
        .execute_sync(
            "echo",
            &json!({ "inputs": { "stringInput": "x", "objectInput": nested.clone() },
                     "response": "document" }),
        )
        .await;
    assert_eq!(output_value(&reply.json(), "objectInput"), nested);
    survives(server, "nested JSON").await;
}

#[tokio::test]
async fn invalid_utf8_in_bodies_paths_and_queries_is_400() {
    let server = admin_server().await;

    // In a JSON body (a lone 0xFF inside a string).
    let reply = post(
        &server,
        "/processes/hello-world/execution",
        Some("application/json"),
        b"{\"inputs\": {\"name\": \"\xff\"}}".to_vec(),
    )
    .await;
    let exception = assert_ogc(&reply, 400, INVALID_REQUEST, &server);
    assert!(detail(&exception).contains("not valid JSON"), "{exception}");
    let reply = post(
        &server,
        "/processes",
        Some("application/ogcapppkg+json"),
        b"{\"executionUnit\": {\"value\": \"\xfe\xff\"}}".to_vec(),
    )
    .await;
    assert_ogc(&reply, 400, INVALID_REQUEST, &server);

    // In a path segment, percent-encoded: an OGC exception, not axum's
    // plain-text "Invalid URL".
    for (method, path) in [
        (Method::GET, "/processes/%FF"),
        (Method::GET, "/processes/%C3%28/package"),
        (Method::POST, "/processes/%FF/execution"),
        (Method::GET, "/jobs/%FF"),
        (Method::DELETE, "/jobs/%FF"),
        (Method::GET, "/jobs/%FF/results"),
        (
            Method::GET,
            "/jobs/00000000-0000-0000-0000-000000000000/results/%FF",
        ),
        (Method::DELETE, "/processes/%FF"),
    ] {
        let reply = server
            .send(
                method,
                path,
                &[
                    ("authorization", ADMIN_BEARER),
                    ("content-type", "application/json"),
                ],
                Some(b"{}".to_vec()),
            )
            .await;
        let exception = assert_ogc(&reply, 400, INVALID_PARAMETER, &server);
        assert!(detail(&exception).contains("UTF-8"), "{exception}");
    }

    // In the query: numbers must be numbers; ids are decoded lossily and
    // match nothing.
    let reply = server.get("/jobs?limit=%FF").await;
    assert_ogc(&reply, 400, INVALID_PARAMETER, &server);
    let reply = server.get("/processes?offset=%FF%FE").await;
    assert_ogc(&reply, 400, INVALID_PARAMETER, &server);
    let list = server.get_json("/jobs?processID=%FF").await;
    assert_eq!(list["jobs"], json!([]), "{list}");

    // Raw (not percent-encoded) 0xFF in the request line: hyper refuses
    // the request before routing.
    let answer = raw_request(
        &server,
        b"GET /processes/\xff HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    survives(server, "invalid UTF-8").await;
}

#[tokio::test]
async fn wrong_content_types_on_execute_are_415_and_on_deploy_too() {
    let server = admin_server().await;
    let body = serde_json::to_vec(&json!({ "inputs": { "name": "Ada" } })).unwrap();
    for content_type in [
        "application/xml",
        "text/html",
        "multipart/form-data; boundary=x",
        "application/octet-stream",
        "image/png",
        "application/wasm",
        "@@not a media type@@",
    ] {
        let reply = post(
            &server,
            "/processes/hello-world/execution",
            Some(content_type),
            body.clone(),
        )
        .await;
        let exception = assert_ogc(&reply, 415, UNSUPPORTED_MEDIA_TYPE, &server);
        assert!(detail(&exception).contains("JSON"), "{exception}");
    }
    // JSON under its own name, with parameters, or as hand-typed curl -d:
    // accepted.
    for content_type in [
        Some("application/json; charset=utf-8"),
        Some("APPLICATION/JSON"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let reply = post(
            &server,
            "/processes/hello-world/execution",
            content_type,
            body.clone(),
        )
        .await;
        reply.expect_status(200);
        assert_eq!(reply.json(), json!("Hello Ada!"), "{content_type:?}");
    }
    // Deploy: JSON under another name, XML and forms are not packages.
    for content_type in [
        "application/xml",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
    ] {
        let reply = post(&server, "/processes", Some(content_type), b"<x/>".to_vec()).await;
        assert_ogc(&reply, 415, UNSUPPORTED_MEDIA_TYPE, &server);
    }
    survives(server, "wrong content types").await;
}

#[tokio::test]
async fn absurd_limit_and_offset_are_400_and_huge_offsets_an_empty_page() {
    let server = TestServer::start().await;
    // One job, so /jobs has something to page over.
    server.hello_job().await;
    for list in ["/processes", "/jobs"] {
        for query in [
            "limit=99999999999999999999",
            "limit=18446744073709551616",
            "limit=-1",
            "limit=0",
            "limit=10001",
            "limit=abc",
            "limit=1e3",
            "limit=",
            "limit=%205",
            "limit=0x10",
            "offset=-1",
            "offset=99999999999999999999",
            "offset=1.5",
            "offset=abc",
            "offset=",
        ] {
            let reply = server.get(&format!("{list}?{query}")).await;
            let exception = assert_ogc(&reply, 400, INVALID_PARAMETER, &server);
            let name = query.split('=').next().unwrap();
            assert!(detail(&exception).contains(name), "{query}: {exception}");
        }
        // The largest offset there is: an empty page, no `next`, and a
        // `prev` that does not wrap around.
        let max = u64::MAX;
        let page = server
            .get_json(&format!("{list}?offset={max}&limit=10000"))
            .await;
        let items = if list == "/jobs" { "jobs" } else { "processes" };
        assert_eq!(page[items], json!([]), "{page}");
        assert!(body_link(&page, "next").is_none(), "{page}");
        let prev = body_link(&page, "prev").expect("prev link");
        assert!(prev.contains(&format!("offset={}", max - 10_000)), "{prev}");
        let page = server.get_json(&format!("{list}?limit=10000")).await;
        assert!(!page[items].as_array().unwrap().is_empty(), "{page}");
    }
    // Every job-list parameter is checked, even when `type` already means
    // the list is empty (found by schemathesis: `type=null&minDuration=true`
    // was a 200).
    for query in [
        "type=null&minDuration=true",
        "type=other&status=finished",
        "type=other&datetime=yesterday",
        "type=other&maxDuration=-1",
    ] {
        let reply = server.get(&format!("/jobs?{query}")).await;
        assert_ogc(&reply, 400, INVALID_PARAMETER, &server);
    }
    let page = server.get_json("/jobs?type=other&minDuration=0").await;
    assert_eq!(page["jobs"], json!([]), "{page}");
    survives(server, "absurd paging").await;
}

#[tokio::test]
async fn traversal_and_nul_in_ids_are_404_without_internals() {
    let server = admin_server().await;
    let auth = [
        ("authorization", ADMIN_BEARER),
        ("content-type", "application/wasm"),
    ];
    let cases: &[(Method, &str, &str)] = &[
        (Method::GET, "/jobs/..%2F..%2Fetc%2Fpasswd", NO_SUCH_JOB),
        (
            Method::GET,
            "/jobs/..%2F..%2Fetc%2Fpasswd/results",
            NO_SUCH_JOB,
        ),
        (
            Method::GET,
            "/jobs/..%2F..%2Fetc%2Fpasswd/results/x",
            NO_SUCH_JOB,
        ),
        (Method::DELETE, "/jobs/..%2F..%2Fetc%2Fpasswd", NO_SUCH_JOB),
        (Method::GET, "/jobs/%00", NO_SUCH_JOB),
        (
            Method::GET,
            "/jobs/00000000-0000-0000-0000-000000000000%00",
            NO_SUCH_JOB,
        ),
        (Method::GET, "/processes/..%2Fx", NO_SUCH_PROCESS),
        (Method::GET, "/processes/%00", NO_SUCH_PROCESS),
        (Method::GET, "/processes/hello-world%00", NO_SUCH_PROCESS),
        (
            Method::GET,
            "/processes/..%2F..%2Fetc%2Fpasswd/package",
            NO_SUCH_PROCESS,
        ),
        (Method::POST, "/processes/..%2Fx/execution", NO_SUCH_PROCESS),
        (Method::DELETE, "/processes/..%2F..%2Fx", NO_SUCH_PROCESS),
        (Method::PUT, "/processes/..%2F..%2Fx", NO_SUCH_PROCESS),
        (Method::PUT, "/processes/%00", NO_SUCH_PROCESS),
    ];
    for (method, path, type_uri) in cases {
        let reply = server
            .send(method.clone(), path, &auth, Some(b"\0asm".to_vec()))
            .await;
        assert_ogc(&reply, 404, type_uri, &server);
    }
    survives(server, "traversal ids").await;
}

#[tokio::test]
async fn unknown_query_parameters_are_ignored_everywhere() {
    let server = TestServer::start().await;
    let job = server.hello_job().await;
    // Lists: the same page, and the unknown parameter is not carried into
    // the paging links (it was on /processes, not on /jobs).
    for list in ["/processes", "/jobs"] {
        let plain = server.get_json(&format!("{list}?limit=1")).await;
        let with_unknown = server
            // (`f` is known: `f=xml` is a 400, see html.rs.)
            .get_json(&format!("{list}?limit=1&bogus=1&F=xml&limit_=2"))
            .await;
        let items = if list == "/jobs" { "jobs" } else { "processes" };
        assert_eq!(with_unknown[items], plain[items], "{list}");
        let links = with_unknown["links"].to_string();
        assert!(
            !links.contains("bogus") && !links.contains("limit_"),
            "{list}: {links}"
        );
    }
    for path in [
        "/?bogus=1".to_owned(),
        "/conformance?bogus=1".to_owned(),
        "/api?bogus=1".to_owned(),
        "/processes/hello-world?bogus=1".to_owned(),
        format!("/jobs/{job}?bogus=1"),
        format!("/jobs/{job}/results?bogus=1"),
    ] {
        server.get(&path).await.expect_status(200);
    }
    let reply = server
        .post_json(
            "/processes/hello-world/execution?bogus=1&response=document",
            &json!({ "inputs": { "name": "Ada" } }),
            &[],
        )
        .await;
    reply.expect_status(200);
    // `response` in the query is unknown too: the body decides (raw).
    assert_eq!(reply.json(), json!("Hello Ada!"));
    server.shutdown().await;
}

#[tokio::test]
async fn a_declared_huge_body_is_413_at_once() {
    let server = TestServer::builder()
        .configure(|c| c.max_request_bytes = 1024)
        .start()
        .await;
    // Content-Length of 100 GB and one byte sent: the answer must not wait
    // for the body (it used to wait until body_read_timeout, 120 s).
    let started = Instant::now();
    let answer = raw_request(
        &server,
        b"POST /processes/hello-world/execution HTTP/1.1\r\nHost: 127.0.0.1\r\n\
          Content-Type: application/json\r\nContent-Length: 100000000000\r\n\r\n{",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains(PAYLOAD_TOO_LARGE), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "413 took {:?}",
        started.elapsed()
    );
    // The same through the client, on deploy (no token configured: the
    // size is refused before anything else).
    let reply = server
        .send(
            Method::POST,
            "/processes",
            &[("content-type", "application/wasm")],
            Some(vec![0u8; 4096]),
        )
        .await;
    assert_ogc(&reply, 413, PAYLOAD_TOO_LARGE, &server);
    survives(server, "a declared huge body").await;
}

#[tokio::test]
async fn a_huge_invalid_input_is_not_echoed_back_in_full() {
    let server = TestServer::start().await;
    let megabyte = "x".repeat(1024 * 1024);
    for request in [
        json!({ "inputs": { "name": [megabyte.clone()] } }),
        json!({ "inputs": { "name": "Ada", megabyte.clone(): 1 } }),
    ] {
        let reply = server.execute("hello-world", &request).await;
        let exception = assert_ogc(&reply, 400, INVALID_REQUEST, &server);
        assert!(
            reply.body.len() < 8 * 1024,
            "a {} byte error body",
            reply.body.len()
        );
        // Either the validator names the rule without quoting the value,
        // or the API cuts the detail short and says so.
        let detail = detail(&exception);
        assert!(
            detail.len() <= 4 * 1024 + 64 && detail.contains("input"),
            "{exception}"
        );
        assert!(
            !detail.contains(&"x".repeat(4096)) || detail.ends_with("more bytes not shown)"),
            "{exception}"
        );
    }
    survives(server, "a huge invalid input").await;
}
