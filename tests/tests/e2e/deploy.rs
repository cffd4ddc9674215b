//! OGC API - Processes Part 2: deploy, replace and undeploy processes over
//! HTTP, with bearer-token authentication, application packages (by value
//! and by `href`), the deployed package, persistence across a restart and
//! the compiled-artifact cache.
//!
//! Observed and asserted behaviour of jobs around a replace or undeploy:
//! a job running or still queued when its process is replaced finishes on
//! the version it was accepted for; a job running or queued when its
//! process is undeployed still runs to completion, and finished jobs of an
//! undeployed process stay readable.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};
use wasmproc_tests::{
    ADMIN_BEARER, ADMIN_TOKEN, Api, FileServer, JOB_TIMEOUT, Operation, Reply, TestServer,
    assert_detail, assert_exception, assert_valid, check_exception, detail, last_segment,
    operations_on, output_value,
};

/// `Authorization` with the right token.
const AUTH: (&str, &str) = ("authorization", ADMIN_BEARER);
/// Exception type URIs of OGC API - Processes Part 2 1.0.
const PART2: &str = "http://www.opengis.net/def/exceptions/ogcapi-processes-2/1.0/";
const WASM: &str = "application/wasm";
const APP_PACKAGE: &str = "application/ogcapppkg+json";

const HELLO_WASM: &str = env!("WASMPROC_GUEST_HELLO_WORLD");
const ECHO_WASM: &str = env!("WASMPROC_GUEST_ECHO");
const HOSTILE_WASM: &str = env!("WASMPROC_GUEST_HOSTILE");

/// `(component)`: a valid component of the empty world (no exports).
const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

/// A component of another world: it exports `describe` and `execute`, but
/// both as `func() -> u32`. Made with `wasm-tools parse` from
/// ```wat
/// (component
///   (core module (func (export "f") (result i32) i32.const 0))
///   (core instance (instantiate 0))
///   (func (result u32) (canon lift (core func 0 "f")))
///   (export "describe" (func 0))
///   (export "execute" (func 0)))
/// ```
const WRONG_SIGNATURE_COMPONENT: &[u8] = &[
    0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00, 0x01, 0x22, 0x00, 0x61, 0x73, 0x6d, 0x01, 0x00,
    0x00, 0x00, 0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7f, 0x03, 0x02, 0x01, 0x00, 0x07, 0x05, 0x01,
    0x01, 0x66, 0x00, 0x00, 0x0a, 0x06, 0x01, 0x04, 0x00, 0x41, 0x00, 0x0b, 0x02, 0x04, 0x01, 0x00,
    0x00, 0x00, 0x07, 0x05, 0x01, 0x40, 0x00, 0x00, 0x79, 0x06, 0x07, 0x01, 0x00, 0x00, 0x01, 0x00,
    0x01, 0x66, 0x08, 0x06, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0b, 0x1a, 0x02, 0x00, 0x08, 0x64,
    0x65, 0x73, 0x63, 0x72, 0x69, 0x62, 0x65, 0x01, 0x00, 0x00, 0x00, 0x07, 0x65, 0x78, 0x65, 0x63,
    0x75, 0x74, 0x65, 0x01, 0x00, 0x00,
];

/// A component importing an interface the sandbox does not grant. From
/// ```wat
/// (component
///   (import "evil:net/sockets@1.0.0" (instance (export "connect" (func)))))
/// ```
const FOREIGN_IMPORT_COMPONENT: &[u8] = &[
    0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00, 0x07, 0x14, 0x01, 0x42, 0x02, 0x01, 0x40, 0x00,
    0x01, 0x00, 0x04, 0x00, 0x07, 0x63, 0x6f, 0x6e, 0x6e, 0x65, 0x63, 0x74, 0x01, 0x00, 0x0a, 0x1b,
    0x01, 0x00, 0x16, 0x65, 0x76, 0x69, 0x6c, 0x3a, 0x6e, 0x65, 0x74, 0x2f, 0x73, 0x6f, 0x63, 0x6b,
    0x65, 0x74, 0x73, 0x40, 0x31, 0x2e, 0x30, 0x2e, 0x30, 0x05, 0x00,
];

/// A component importing outgoing HTTP, which processes never get. From
/// ```wat
/// (component
///   (import "wasi:http/outgoing-handler@0.2.0" (instance (export "handle" (func)))))
/// ```
const HTTP_IMPORT_COMPONENT: &[u8] = &[
    0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00, 0x07, 0x13, 0x01, 0x42, 0x02, 0x01, 0x40, 0x00,
    0x01, 0x00, 0x04, 0x00, 0x06, 0x68, 0x61, 0x6e, 0x64, 0x6c, 0x65, 0x01, 0x00, 0x0a, 0x25, 0x01,
    0x00, 0x20, 0x77, 0x61, 0x73, 0x69, 0x3a, 0x68, 0x74, 0x74, 0x70, 0x2f, 0x6f, 0x75, 0x74, 0x67,
    0x6f, 0x69, 0x6e, 0x67, 0x2d, 0x68, 0x61, 0x6e, 0x64, 0x6c, 0x65, 0x72, 0x40, 0x30, 0x2e, 0x32,
    0x2e, 0x30, 0x05, 0x00,
];

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn hello_wasm() -> Vec<u8> {
    read(HELLO_WASM)
}

fn echo_wasm() -> Vec<u8> {
    read(ECHO_WASM)
}

fn hostile_wasm() -> Vec<u8> {
    read(HOSTILE_WASM)
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A server with the admin token, configured further by `change`.
async fn admin_server(change: impl FnOnce(&mut wasmproc::config::Config)) -> TestServer {
    super::server()
        .with_admin_token()
        .configure(change)
        .start()
        .await
}

/// A request with the admin token and (when given) a body of `content_type`.
/// Unlike [`Api::send_as_admin`] it can also send a body without any
/// `Content-Type`, which the 415 checks need.
async fn admin(
    api: &Api,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: Option<Vec<u8>>,
) -> Reply {
    let mut headers = vec![AUTH];
    if let Some(content_type) = content_type {
        headers.push(("content-type", content_type));
    }
    api.send(method, path, &headers, body).await
}

/// `POST /processes` of a component.
async fn deploy_wasm(api: &Api, wasm: Vec<u8>) -> Reply {
    admin(api, Method::POST, "/processes", Some(WASM), Some(wasm)).await
}

/// `PUT /processes/{id}` of a component.
async fn replace_wasm(api: &Api, id: &str, wasm: Vec<u8>) -> Reply {
    admin(
        api,
        Method::PUT,
        &format!("/processes/{id}"),
        Some(WASM),
        Some(wasm),
    )
    .await
}

/// `POST /processes` of an application package.
async fn deploy_package(api: &Api, package: &Value) -> Reply {
    api.send_package(ADMIN_TOKEN, Method::POST, "/processes", package)
        .await
}

/// `PUT /processes/{id}` of an application package.
async fn replace_package(api: &Api, id: &str, package: &Value) -> Reply {
    api.send_package(
        ADMIN_TOKEN,
        Method::PUT,
        &format!("/processes/{id}"),
        package,
    )
    .await
}

/// `DELETE /processes/{id}` with the token.
async fn undeploy(api: &Api, id: &str) -> Reply {
    admin(api, Method::DELETE, &format!("/processes/{id}"), None, None).await
}

/// An application package carrying `wasm` by value, with `description`
/// (if any) as its `processDescription`.
fn package(description: Option<Value>, wasm: &[u8]) -> Value {
    let mut package = json!({
        "executionUnit": { "value": base64(wasm), "mediaType": WASM },
    });
    if let Some(description) = description {
        package["processDescription"] = json!({ "process": description });
    }
    package
}

/// The description of the built-in `builtin`, as a new process `id` at
/// `version` (served-only fields removed).
async fn description_as(api: &Api, builtin: &str, id: &str, version: &str) -> Value {
    let mut description = api.get_json(&format!("/processes/{builtin}")).await;
    let fields = description.as_object_mut().expect("description object");
    fields.remove("links");
    fields.remove("mutable");
    fields.insert("id".into(), json!(id));
    fields.insert("version".into(), json!(version));
    description
}

/// Panic unless `reply` is an OGC exception with `status` and the Part 2
/// type `name`; returns the body.
fn assert_part2_exception(reply: &Reply, status: u16, name: &str) -> Value {
    let body = check_exception(reply, Some(status), None).unwrap_or_else(|p| panic!("{p}"));
    assert_eq!(
        body["type"].as_str(),
        Some(format!("{PART2}{name}").as_str()),
        "{} → {}: {body}",
        reply.request,
        reply.status
    );
    body
}

/// Panic unless `reply` is the OGC `no-such-process` exception (404): what
/// every route of an undeployed or unknown process answers.
fn assert_no_such_process(reply: &Reply) {
    assert_exception(reply, 404, Some("no-such-process"));
}

/// [`assert_detail`], naming `what` was sent in the message (for the
/// tables of bad uploads, where the request line alone does not say
/// which case failed).
fn assert_detail_of(what: &str, reply: &Reply, status: u16, fragment: &str) -> Value {
    let body = assert_exception(reply, status, None);
    assert!(
        detail(&body).contains(fragment),
        "{what} → {}: detail does not mention {fragment:?}: {body}",
        reply.status
    );
    body
}

/// The ids of `GET /processes?limit=10000`, with their `mutable` flag.
async fn process_ids(api: &Api) -> BTreeMap<String, Value> {
    let list = api.get_json("/processes?limit=10000").await;
    assert_valid("processList.yaml", &list);
    list["processes"]
        .as_array()
        .expect("processes array")
        .iter()
        .map(|p| {
            (
                p["id"].as_str().expect("id").to_owned(),
                p["mutable"].clone(),
            )
        })
        .collect()
}

/// The server answers `GET /processes` and runs hello-world.
async fn assert_healthy(api: &Api, after: &str) {
    let list = api.get("/processes").await;
    assert_eq!(list.status, 200, "after {after}: {}", list.text());
    let reply = api
        .execute("hello-world", &json!({ "inputs": { "name": "Joe" } }))
        .await;
    assert_eq!(reply.status, 200, "after {after}: {}", reply.text());
    assert_eq!(reply.json(), json!("Hello Joe!"), "after {after}");
}

/// The results document of a successful job.
async fn results(api: &Api, job_id: &str) -> Value {
    let results = api.get_json(&format!("/jobs/{job_id}/results")).await;
    assert_valid("results.yaml", &results);
    results
}

// ---------------------------------------------------------------- auth

#[tokio::test]
async fn mutating_routes_need_the_admin_token() {
    let server = admin_server(|_| {}).await;
    // A mutable process, so PUT/DELETE are refused for the token, not for
    // immutability.
    let greeter = description_as(&server, "hello-world", "greeter", "1.0.0").await;
    deploy_package(&server, &package(Some(greeter), &hello_wasm()))
        .await
        .expect_status(201);
    let before = process_ids(&server).await;

    let routes: &[(Method, &str, bool)] = &[
        (Method::POST, "/processes", true),
        (Method::PUT, "/processes/hello-world", true),
        (Method::DELETE, "/processes/hello-world", false),
        (Method::PUT, "/processes/greeter", true),
        (Method::DELETE, "/processes/greeter", false),
    ];
    // (Authorization header, expected status): none, the right token
    // under another scheme, a wrong one, the right one with more after it.
    let cases: &[(Option<String>, u16)] = &[
        (None, 401),
        (
            Some(format!(
                "Basic {}",
                base64(format!("{ADMIN_TOKEN}:").as_bytes())
            )),
            401,
        ),
        (Some("Bearer wrong".to_owned()), 403),
        (Some(format!("{ADMIN_BEARER}-but-longer")), 403),
    ];
    for (method, path, with_body) in routes {
        for (authorization, status) in cases {
            let mut headers = vec![("content-type", WASM)];
            if let Some(value) = authorization {
                headers.push(("authorization", value.as_str()));
            }
            let body = with_body.then(echo_wasm);
            let reply = server.send(method.clone(), path, &headers, body).await;
            assert_exception(&reply, *status, None);
            if *status == 401 {
                assert_eq!(
                    reply.header("www-authenticate").as_deref(),
                    Some("Bearer"),
                    "{} with {authorization:?}: {:?}",
                    reply.request,
                    reply.headers
                );
            }
        }
    }
    assert_eq!(
        process_ids(&server).await,
        before,
        "a refused request changed the processes"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn without_an_admin_token_deployment_is_disabled() {
    let server = super::server().start().await;
    for (method, path) in [
        (Method::POST, "/processes"),
        (Method::PUT, "/processes/hello-world"),
        (Method::DELETE, "/processes/hello-world"),
        (Method::PUT, "/processes/no-such-process"),
    ] {
        for authorization in [None, Some(ADMIN_BEARER), Some("Bearer ")] {
            let mut headers = vec![("content-type", WASM)];
            if let Some(value) = authorization {
                headers.push(("authorization", value));
            }
            let reply = server
                .send(method.clone(), path, &headers, Some(hostile_wasm()))
                .await;
            assert_exception(&reply, 403, None);
        }
    }
    assert!(
        !process_ids(&server).await.contains_key("hostile"),
        "deployed without a configured token"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn protect_jobs_requires_the_token_for_execution_and_jobs() {
    let server = admin_server(|c| c.auth.protect_jobs = true).await;
    let request = json!({ "inputs": { "name": "Joe" } });

    // Discovery stays open.
    server.get_json("/processes").await;
    server.get_json("/processes/hello-world").await;
    server.get_json("/conformance").await;

    for authorization in [None, Some("Bearer wrong")] {
        let headers: Vec<(&str, &str)> = authorization
            .map(|a| vec![("authorization", a)])
            .unwrap_or_default();
        let status = if authorization.is_none() { 401 } else { 403 };
        let execute = server
            .post_json("/processes/hello-world/execution", &request, &headers)
            .await;
        assert_exception(&execute, status, None);
        let jobs = server.send(Method::GET, "/jobs", &headers, None).await;
        assert_exception(&jobs, status, None);
        if status == 401 {
            assert_eq!(
                execute.header("www-authenticate").as_deref(),
                Some("Bearer")
            );
            assert_eq!(jobs.header("www-authenticate").as_deref(), Some("Bearer"));
        }
    }

    let reply = server
        .post_json("/processes/hello-world/execution", &request, &[AUTH])
        .await;
    reply.expect_status(200);
    assert_eq!(reply.json(), json!("Hello Joe!"));
    let monitor = reply.link_header("monitor").expect("monitor link");
    let job_id = last_segment(&monitor);

    let jobs = server.send(Method::GET, "/jobs", &[AUTH], None).await;
    jobs.expect_status(200);
    assert_valid("jobList.yaml", &jobs.json());
    for path in [format!("/jobs/{job_id}"), format!("/jobs/{job_id}/results")] {
        assert_exception(&server.get(&path).await, 401, None);
        server
            .send(Method::GET, &path, &[AUTH], None)
            .await
            .expect_status(200);
    }
    // Dismissal is a job route too.
    assert_exception(&server.delete(&format!("/jobs/{job_id}")).await, 401, None);
    server.shutdown().await;
}

// ---------------------------------------------------------------- deploy

#[tokio::test]
async fn deploy_a_component_as_application_wasm() {
    let server = admin_server(|_| {}).await;
    let wasm = hostile_wasm();
    let reply = deploy_wasm(&server, wasm.clone()).await;
    reply.expect_status(201);
    assert_eq!(
        reply.header("location").as_deref(),
        Some(format!("{}/processes/hostile", server.base()).as_str()),
        "{:?}",
        reply.headers
    );
    let summary = reply.expect_json();
    assert_valid("processSummary.yaml", &summary);
    assert_eq!(summary["id"], "hostile");
    assert_eq!(summary["version"], "1.0.0");
    assert_eq!(summary["mutable"], true, "{summary}");

    // Listed, described, mutable; the built-ins are not.
    let ids = process_ids(&server).await;
    assert_eq!(ids.get("hostile"), Some(&json!(true)), "{ids:?}");
    assert_eq!(ids.get("hello-world"), Some(&json!(false)), "{ids:?}");
    let description = server.get_json("/processes/hostile").await;
    assert_valid("process.yaml", &description);
    assert_eq!(description["mutable"], true);
    assert_eq!(
        description["inputs"]["behaviour"]["schema"]["type"],
        "string"
    );

    // Runs sync and async.
    let request = json!({ "inputs": { "behaviour": "huge-output", "size": 3 } });
    let reply = server.execute("hostile", &request).await;
    reply.expect_status(200);
    assert_eq!(reply.body, vec![7, 7, 7], "{reply:?}");
    let (job_id, _) = server
        .execute_async_until("hostile", &request, &["successful"])
        .await;
    let results = results(&server, &job_id).await;
    assert_eq!(output_value(&results, "result"), json!(base64(&[7, 7, 7])));

    // Deploying it again is a duplicate; a built-in's id is taken too.
    let reply = deploy_wasm(&server, wasm.clone()).await;
    assert_part2_exception(&reply, 409, "duplicated-process");
    let reply = deploy_wasm(&server, hello_wasm()).await;
    assert_part2_exception(&reply, 409, "duplicated-process");
    assert_eq!(
        server.get_json("/processes/hello-world").await["mutable"],
        false,
        "a duplicate deploy replaced the built-in"
    );

    // Replacing it with a component that describes the same id works.
    replace_wasm(&server, "hostile", wasm)
        .await
        .expect_status(204);
    assert_healthy(&server, "deploying hostile").await;
    server.shutdown().await;
}

#[tokio::test]
async fn deploy_an_application_package_by_value() {
    let server = admin_server(|_| {}).await;
    let wasm = hello_wasm();
    let mut description = description_as(&server, "hello-world", "hello-pkg", "3.1.4").await;
    description["title"] = json!("Packaged hello");
    let reply = deploy_package(&server, &package(Some(description.clone()), &wasm)).await;
    reply.expect_status(201);
    assert_eq!(
        reply.header("location"),
        Some(format!("{}/processes/hello-pkg", server.base()))
    );
    let summary = reply.expect_json();
    assert_valid("processSummary.yaml", &summary);
    assert_eq!(summary["id"], "hello-pkg");
    assert_eq!(summary["title"], "Packaged hello");
    assert_eq!(summary["version"], "3.1.4");
    assert_eq!(summary["mutable"], true);

    // The description served is the package's, not the module's.
    let served = server.get_json("/processes/hello-pkg").await;
    assert_valid("process.yaml", &served);
    assert_eq!(served["id"], "hello-pkg");
    assert_eq!(served["title"], "Packaged hello");
    assert_eq!(served["version"], "3.1.4");
    assert_eq!(served["mutable"], true);
    assert_eq!(served["inputs"], description["inputs"]);
    assert_eq!(
        process_ids(&server).await.get("hello-pkg"),
        Some(&json!(true))
    );

    // Runs sync and async; the jobs carry the new id.
    let request = json!({ "inputs": { "name": "Ann" } });
    let (sync_job, reply) = server.execute_sync("hello-pkg", &request).await;
    assert_eq!(reply.json(), json!("Hello Ann!"));
    assert_eq!(server.job(&sync_job).await["processID"], "hello-pkg");
    let (job_id, status_info) = server
        .execute_async_until("hello-pkg", &request, &["successful"])
        .await;
    assert_eq!(status_info["processID"], "hello-pkg");
    assert_eq!(
        output_value(&results(&server, &job_id).await, "echo"),
        json!("Hello Ann!")
    );

    // The package is what was deployed.
    let reply = server.get("/processes/hello-pkg/package").await;
    reply.expect_status(200);
    assert_eq!(reply.content_type(), APP_PACKAGE);
    let stored = reply.json();
    assert_eq!(stored["processDescription"]["process"]["id"], "hello-pkg");
    assert_eq!(
        stored["processDescription"]["process"]["title"],
        "Packaged hello"
    );
    assert_eq!(stored["executionUnit"]["mediaType"], WASM);
    let value = stored["executionUnit"]["value"]
        .as_str()
        .unwrap_or_else(|| panic!("no executionUnit.value: {stored}"));
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(value)
        .expect("executionUnit.value is base64");
    assert!(decoded == wasm, "the package holds other bytes");
    // Quality values decide: the component only when it is preferred, and
    // then exactly the bytes deployed.
    for (accept, expected) in [
        (WASM, WASM),
        ("application/wasm;q=0", APP_PACKAGE),
        ("application/wasm;q=0.5, application/json", APP_PACKAGE),
        ("application/json;q=0.5, application/wasm", WASM),
        ("*/*", APP_PACKAGE),
    ] {
        let reply = server
            .get_with("/processes/hello-pkg/package", &[("accept", accept)])
            .await;
        reply.expect_status(200);
        assert_eq!(reply.content_type(), expected, "Accept: {accept}");
        if expected == WASM {
            assert!(reply.body == wasm, "Accept: {accept} gave other bytes");
        }
    }
    assert_no_such_process(&server.get("/processes/nope/package").await);

    // A duplicate package id.
    let reply = deploy_package(&server, &package(Some(description), &wasm)).await;
    assert_part2_exception(&reply, 409, "duplicated-process");
    server.shutdown().await;
}

/// A package of hello-world's description as `id`, with the module by `href`.
async fn href_package(api: &Api, id: &str, href: &str) -> Value {
    let description = description_as(api, "hello-world", id, "1.0.0").await;
    json!({
        "processDescription": { "process": description },
        "executionUnit": { "href": href, "mediaType": WASM },
    })
}

#[tokio::test]
async fn deploy_an_application_package_by_href() {
    let files = FileServer::single("/hello.wasm", WASM, hello_wasm()).await;
    // Loopback is refused unless allowed.
    let server = admin_server(|_| {}).await;
    let reply = deploy_package(
        &server,
        &href_package(&server, "hello-href", &files.url("/hello.wasm")).await,
    )
    .await;
    assert_detail(&reply, 400, "non-public");
    assert!(!process_ids(&server).await.contains_key("hello-href"));
    assert_healthy(&server, "a refused href").await;
    server.shutdown().await;

    let server = admin_server(|c| c.href.allowed_hosts = vec!["127.0.0.1".into()]).await;
    let reply = deploy_package(
        &server,
        &href_package(&server, "hello-href", &files.url("/hello.wasm")).await,
    )
    .await;
    reply.expect_status(201);
    assert_eq!(
        reply.header("location"),
        Some(format!("{}/processes/hello-href", server.base()))
    );
    assert_valid("processSummary.yaml", &reply.json());
    server
        .assert_answers("hello-href", json!({ "name": "Bo" }), json!("Hello Bo!"))
        .await;
    server
        .run_until("hello-href", json!({ "name": "Bo" }), &["successful"])
        .await;
    // What was fetched is what the package serves.
    let raw = server
        .get_with("/processes/hello-href/package", &[("accept", WASM)])
        .await;
    raw.expect_status(200);
    assert!(raw.body == hello_wasm(), "fetched bytes differ");

    // A reference that answers 404.
    let reply = deploy_package(
        &server,
        &href_package(&server, "hello-missing", &files.url("/missing.wasm")).await,
    )
    .await;
    assert_detail(&reply, 400, "404");
    assert_healthy(&server, "an href answering 404").await;
    server.shutdown().await;
}

/// The issue: a module by `href` is "fetched with the same limits as `href`
/// inputs". `href.max_bytes` is the size limit of `href` inputs.
#[tokio::test]
async fn a_module_by_href_is_held_to_the_href_size_limit() {
    let files = FileServer::single("/hello.wasm", WASM, hello_wasm()).await;
    let server = admin_server(|c| {
        c.href.allowed_hosts = vec!["127.0.0.1".into()];
        c.href.max_bytes = 16 * 1024;
    })
    .await;
    let description = description_as(&server, "hello-world", "hello-big", "1.0.0").await;
    let reply = deploy_package(
        &server,
        &json!({
            "processDescription": { "process": description },
            "executionUnit": { "href": files.url("/hello.wasm"), "mediaType": WASM },
        }),
    )
    .await;
    assert!(
        matches!(reply.status, 400 | 413),
        "a {} byte module by href with href.max_bytes = 16 KiB: expected 400 or 413, got {} {}",
        hello_wasm().len(),
        reply.status,
        reply.text()
    );
    assert!(!process_ids(&server).await.contains_key("hello-big"));
    server.shutdown().await;
}

#[tokio::test]
async fn package_job_control_options_and_limits_apply() {
    let server = admin_server(|_| {}).await;
    // jobControlOptions: async only, so a request without Prefer runs async.
    let description = description_as(&server, "hello-world", "hello-async", "1.0.0").await;
    let mut async_only = package(Some(description), &hello_wasm());
    async_only["jobControlOptions"] = json!(["async-execute"]);
    deploy_package(&server, &async_only)
        .await
        .expect_status(201);
    let served = server.get_json("/processes/hello-async").await;
    assert_eq!(served["jobControlOptions"], json!(["async-execute"]));
    let reply = server
        .execute("hello-async", &json!({ "inputs": { "name": "Cy" } }))
        .await;
    reply.expect_status(201);
    let location = reply.header("location").expect("Location of the job");
    let job_id = last_segment(&location);
    server
        .wait_for_status(&job_id, &["successful"], JOB_TIMEOUT)
        .await;
    assert_eq!(
        output_value(&results(&server, &job_id).await, "echo"),
        json!("Hello Cy!")
    );
    let stored = server.get_json("/processes/hello-async/package").await;
    assert_eq!(stored["jobControlOptions"], json!(["async-execute"]));

    // limits: a million instructions stop the infinite loop.
    let mut limited = package(None, &hostile_wasm());
    limited["limits"] = json!({ "fuel": 1_000_000 });
    deploy_package(&server, &limited).await.expect_status(201);
    let (_, status_info) = server.failed_hostile("infinite-loop").await;
    let message = status_info["message"].as_str().unwrap_or_default();
    assert!(
        message.to_lowercase().contains("fuel"),
        "message does not name fuel: {status_info}"
    );
    assert_healthy(&server, "a fuel-limited deployed process").await;
    server.shutdown().await;
}

/// A package's `limits` that names some fields takes the others from the
/// server's `[limits.default]` (like a process's `limits` in the config),
/// not from the built-in defaults: here the server's small fuel budget
/// stops the loop, not the built-in 1e11.
#[tokio::test]
async fn package_limits_inherit_the_server_defaults_they_leave_out() {
    let server = admin_server(|c| c.limits.default.fuel = 1_000_000).await;
    let mut limited = package(None, &hostile_wasm());
    limited["limits"] = json!({ "timeout": "30s" });
    deploy_package(&server, &limited).await.expect_status(201);
    let job_id = server
        .execute_async(
            "hostile",
            &json!({ "inputs": { "behaviour": "infinite-loop" } }),
        )
        .await;
    let status_info = server
        .wait_for_status(&job_id, &["failed"], Duration::from_secs(60))
        .await;
    let message = status_info["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("all 1000000 units of fuel"),
        "the job did not run under the server's default fuel: {status_info}"
    );
    let stored = server.get_json("/processes/hostile/package").await;
    assert_eq!(stored["limits"]["fuel"], json!(1_000_000), "{stored}");
    assert_eq!(stored["limits"]["timeout"], json!("30s"), "{stored}");
    server.shutdown().await;
}

// ------------------------------------------------------------ bad uploads

#[tokio::test]
async fn invalid_uploads_get_400_or_415_and_leave_the_server_healthy() {
    let server = admin_server(|_| {}).await;
    let echo = echo_wasm();
    let truncated = echo[..echo.len() / 2].to_vec();
    let mut corrupted = echo.clone();
    // Past the header, inside the first sections.
    for byte in &mut corrupted[8..64] {
        *byte = 0xff;
    }
    let before = process_ids(&server).await;

    let wasm_bodies: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "garbage",
            b"this is not wasm at all".to_vec(),
            "not a WebAssembly binary",
        ),
        ("empty body", Vec::new(), "not a WebAssembly binary"),
        (
            "core module",
            b"\0asm\x01\0\0\0".to_vec(),
            "core WebAssembly module, not a component",
        ),
        ("truncated component", truncated.clone(), "does not compile"),
        ("corrupted component", corrupted, "does not compile"),
        (
            "empty-world component",
            EMPTY_COMPONENT.to_vec(),
            "does not implement the wasmproc:process world",
        ),
        (
            "component exporting describe: func() -> u32",
            WRONG_SIGNATURE_COMPONENT.to_vec(),
            "does not implement the wasmproc:process world",
        ),
        (
            "component importing evil:net/sockets",
            FOREIGN_IMPORT_COMPONENT.to_vec(),
            "imports the sandbox does not grant: `evil:net/sockets@1.0.0` (not an interface this server provides)",
        ),
        (
            "component importing wasi:http",
            HTTP_IMPORT_COMPONENT.to_vec(),
            "`wasi:http/outgoing-handler@0.2.0` (outgoing HTTP is not granted to processes",
        ),
    ];
    for (what, body, fragment) in &wasm_bodies {
        let reply = deploy_wasm(&server, body.clone()).await;
        assert_detail(&reply, 400, fragment);
        assert_healthy(&server, what).await;
    }

    let mut invalid_description = description_as(&server, "hello-world", "bad", "1.0.0").await;
    invalid_description["inputs"] = json!("not an object");
    let mut no_version = description_as(&server, "hello-world", "bad", "1.0.0").await;
    no_version.as_object_mut().unwrap().remove("version");
    let bad_id = description_as(&server, "hello-world", "bad id/with slash", "1.0.0").await;
    let package_bodies: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "package that is not JSON",
            b"{ nope".to_vec(),
            "invalid application package",
        ),
        (
            "package without executionUnit",
            br#"{"processDescription": {}}"#.to_vec(),
            "invalid application package",
        ),
        (
            "executionUnit value not base64",
            serde_json::to_vec(&json!({ "executionUnit": { "value": "%%%", "mediaType": WASM } }))
                .unwrap(),
            "not base64",
        ),
        (
            "executionUnit of another media type",
            serde_json::to_vec(&json!({
                "executionUnit": { "value": base64(&hello_wasm()), "mediaType": "application/x-python" }
            }))
            .unwrap(),
            "application/x-python",
        ),
        (
            "executionUnit without value or href",
            serde_json::to_vec(&json!({ "executionUnit": { "image": "docker.io/hello" } }))
                .unwrap(),
            "executionUnit",
        ),
        (
            "executionUnit carrying garbage",
            serde_json::to_vec(&package(None, b"garbage")).unwrap(),
            "not a WebAssembly binary",
        ),
        (
            "executionUnit carrying a core module",
            serde_json::to_vec(&package(None, b"\0asm\x01\0\0\0")).unwrap(),
            "core WebAssembly module",
        ),
        (
            "executionUnit carrying a truncated component",
            serde_json::to_vec(&package(None, &truncated)).unwrap(),
            "does not compile",
        ),
        (
            "processDescription with inputs not an object",
            serde_json::to_vec(&package(Some(invalid_description), &hello_wasm())).unwrap(),
            "",
        ),
        (
            "processDescription without version",
            serde_json::to_vec(&package(Some(no_version), &hello_wasm())).unwrap(),
            "version",
        ),
        (
            "processDescription with an invalid id",
            serde_json::to_vec(&package(Some(bad_id), &hello_wasm())).unwrap(),
            "id",
        ),
    ];
    for (what, body, fragment) in &package_bodies {
        let reply = admin(
            &server,
            Method::POST,
            "/processes",
            Some(APP_PACKAGE),
            Some(body.clone()),
        )
        .await;
        assert_detail_of(what, &reply, 400, fragment);
        assert_healthy(&server, what).await;
    }

    // Other media types.
    for content_type in [Some("text/plain"), Some("application/octet-stream"), None] {
        let reply = admin(
            &server,
            Method::POST,
            "/processes",
            content_type,
            Some(hello_wasm()),
        )
        .await;
        assert_exception(&reply, 415, None);
        assert_healthy(&server, &format!("Content-Type {content_type:?}")).await;
    }

    // The same checks on replace.
    let greeter = description_as(&server, "hello-world", "greeter", "1.0.0").await;
    deploy_package(&server, &package(Some(greeter), &hello_wasm()))
        .await
        .expect_status(201);
    for (what, body, fragment) in &wasm_bodies {
        let reply = replace_wasm(&server, "greeter", body.clone()).await;
        assert_detail_of(&format!("PUT {what}"), &reply, 400, fragment);
    }
    let reply = admin(
        &server,
        Method::PUT,
        "/processes/greeter",
        Some("text/plain"),
        Some(hello_wasm()),
    )
    .await;
    assert_exception(&reply, 415, None);
    // greeter is untouched.
    server
        .assert_answers("greeter", json!({ "name": "Di" }), json!("Hello Di!"))
        .await;

    let mut after = process_ids(&server).await;
    assert_eq!(after.remove("greeter"), Some(json!(true)));
    assert_eq!(after, before, "a rejected upload changed the processes");
    server.shutdown().await;
}

#[tokio::test]
async fn oversized_uploads_get_413_and_leave_the_server_healthy() {
    const LIMIT: u64 = 64 * 1024;
    let files = FileServer::single("/echo.wasm", WASM, echo_wasm()).await;
    let server = admin_server(|c| {
        c.max_request_bytes = LIMIT;
        c.href.allowed_hosts = vec!["127.0.0.1".into()];
    })
    .await;
    let echo = echo_wasm();
    assert!(
        echo.len() as u64 > LIMIT,
        "echo.wasm is only {}",
        echo.len()
    );
    let before = process_ids(&server).await;

    let reply = deploy_wasm(&server, echo.clone()).await;
    assert_exception(&reply, 413, None);
    assert_healthy(&server, "an oversized component").await;

    let mut description = description_as(&server, "echo", "echo-big", "1.0.0").await;
    let reply = deploy_package(&server, &package(Some(description.clone()), &echo)).await;
    assert_exception(&reply, 413, None);
    assert_healthy(&server, "an oversized package").await;

    // By reference: the fetched module is held to the same limit.
    description["id"] = json!("echo-href");
    let reply = deploy_package(
        &server,
        &json!({
            "processDescription": { "process": description },
            "executionUnit": { "href": files.url("/echo.wasm") },
        }),
    )
    .await;
    assert_exception(&reply, 413, None);
    assert_healthy(&server, "an oversized module by href").await;

    // Replace is limited too.
    let reply = replace_wasm(&server, "echo", echo.clone()).await;
    assert!(
        matches!(reply.status, 403 | 413),
        "PUT of an oversized body on a built-in: {} {}",
        reply.status,
        reply.text()
    );
    assert_eq!(process_ids(&server).await, before);
    server.shutdown().await;
}

// ------------------------------------------------------ immutable, unknown

#[tokio::test]
async fn builtins_are_immutable_and_unknown_ids_are_404() {
    let server = admin_server(|_| {}).await;
    for id in ["hello-world", "echo", "geometry"] {
        let description = server.get_json(&format!("/processes/{id}")).await;
        assert_eq!(description["mutable"], false, "{id}: {description}");
    }
    for (id, mutable) in process_ids(&server).await {
        assert_eq!(mutable, json!(false), "built-in {id} listed as mutable");
    }
    let put = replace_wasm(&server, "hello-world", hello_wasm()).await;
    assert_part2_exception(&put, 403, "immutable-process");
    let put_package = replace_package(
        &server,
        "hello-world",
        &package(
            Some(description_as(&server, "echo", "hello-world", "9.9.9").await),
            &echo_wasm(),
        ),
    )
    .await;
    assert_part2_exception(&put_package, 403, "immutable-process");
    let delete = undeploy(&server, "hello-world").await;
    assert_part2_exception(&delete, 403, "immutable-process");
    assert_healthy(&server, "attempts on a built-in").await;
    assert_eq!(
        server.get_json("/processes/hello-world").await["version"],
        "0.2.0"
    );

    let put = replace_wasm(&server, "no-such-process", hello_wasm()).await;
    assert_no_such_process(&put);
    let delete = undeploy(&server, "no-such-process").await;
    assert_no_such_process(&delete);
    assert!(!process_ids(&server).await.contains_key("no-such-process"));
    server.shutdown().await;
}

// ------------------------------------------------ replace and undeploy

#[tokio::test]
async fn deploy_execute_replace_execute_undeploy() {
    let server = admin_server(|_| {}).await;
    let hello = hello_wasm();
    let echo = echo_wasm();

    // Deploy hello-world's module as `greeter`.
    let v1 = description_as(&server, "hello-world", "greeter", "1.0.0").await;
    deploy_package(&server, &package(Some(v1), &hello))
        .await
        .expect_status(201);
    let sync_v1 = server
        .assert_answers("greeter", json!({ "name": "X" }), json!("Hello X!"))
        .await;
    let (async_v1, _) = server
        .run_until("greeter", json!({ "name": "Y" }), &["successful"])
        .await;

    // Replace it with the echo module and an echo-shaped description.
    let v2 = description_as(&server, "echo", "greeter", "2.0.0").await;
    let reply = replace_package(&server, "greeter", &package(Some(v2), &echo)).await;
    reply.expect_status(204);
    assert!(reply.body.is_empty(), "204 with a body: {}", reply.text());
    let described = server.get_json("/processes/greeter").await;
    assert_valid("process.yaml", &described);
    assert_eq!(described["version"], "2.0.0");
    assert_eq!(described["mutable"], true);
    assert!(
        described["inputs"].get("stringInput").is_some(),
        "{described}"
    );
    assert!(described["inputs"].get("name").is_none(), "{described}");
    let listed = server.get_json("/processes?limit=10000").await;
    let summary = listed["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "greeter")
        .cloned()
        .expect("greeter listed");
    assert_eq!(summary["version"], "2.0.0");

    // New behaviour: stringInput is required and echoed.
    let reply = server
        .execute("greeter", &json!({ "inputs": { "name": "X" } }))
        .await;
    assert_exception(&reply, 400, None);
    let sync_v2 = server
        .assert_answers("greeter", json!({ "stringInput": "v2" }), json!("v2"))
        .await;
    let (async_v2, _) = server
        .run_until(
            "greeter",
            json!({ "stringInput": "async v2", "arrayInput": [1, 2] }),
            &["successful"],
        )
        .await;
    let v2_results = results(&server, &async_v2).await;
    assert_eq!(output_value(&v2_results, "stringInput"), json!("async v2"));
    assert_eq!(output_value(&v2_results, "arrayInput"), json!([1, 2]));

    // The package is now the echo module.
    let raw = server
        .get_with("/processes/greeter/package", &[("accept", WASM)])
        .await;
    raw.expect_status(200);
    assert!(raw.body == echo, "package after replace is not echo.wasm");
    let stored = server.get_json("/processes/greeter/package").await;
    assert_eq!(stored["processDescription"]["process"]["version"], "2.0.0");

    // The jobs of version 1 still read as they were.
    assert_eq!(
        output_value(&results(&server, &async_v1).await, "echo"),
        json!("Hello Y!")
    );
    assert_eq!(server.job(&sync_v1).await["status"], "successful");

    // A bare component describing another id cannot replace `greeter`.
    let reply = replace_wasm(&server, "greeter", hello.clone()).await;
    let body = assert_detail(&reply, 400, "hello-world");
    assert!(detail(&body).contains("greeter"), "{body}");
    // Nor can a package whose description names another id.
    let other = description_as(&server, "hello-world", "someone-else", "1.0.0").await;
    let reply = replace_package(&server, "greeter", &package(Some(other), &hello)).await;
    assert_detail(&reply, 400, "someone-else");
    assert!(!process_ids(&server).await.contains_key("someone-else"));
    assert_eq!(
        server.get_json("/processes/greeter").await["version"],
        "2.0.0"
    );

    // Undeploy.
    let reply = undeploy(&server, "greeter").await;
    reply.expect_status(204);
    assert!(reply.body.is_empty(), "204 with a body: {}", reply.text());
    assert_no_such_process(&server.get("/processes/greeter").await);
    let gone = json!({ "inputs": { "stringInput": "gone" } });
    assert_no_such_process(&server.execute("greeter", &gone).await);
    assert_no_such_process(&server.execute_async_reply("greeter", &gone).await);
    assert_no_such_process(&server.get("/processes/greeter/package").await);
    assert!(!process_ids(&server).await.contains_key("greeter"));
    assert_no_such_process(&undeploy(&server, "greeter").await);

    // Its finished jobs stay readable.
    for job_id in [&sync_v1, &async_v1, &sync_v2, &async_v2] {
        let status_info = server.job(job_id).await;
        assert_eq!(status_info["status"], "successful", "{status_info}");
        assert_eq!(status_info["processID"], "greeter");
        results(&server, job_id).await;
    }
    assert_eq!(
        output_value(&results(&server, &async_v2).await, "stringInput"),
        json!("async v2")
    );

    // The id is free again.
    let again = description_as(&server, "hello-world", "greeter", "3.0.0").await;
    deploy_package(&server, &package(Some(again), &hello))
        .await
        .expect_status(201);
    server
        .assert_answers("greeter", json!({ "name": "Z" }), json!("Hello Z!"))
        .await;
    assert_healthy(&server, "the lifecycle").await;
    server.shutdown().await;
}

/// A server with a single worker and a deployed `slow` (echo's module,
/// version 1.0.0) with two jobs of it: one running (`stringInput`
/// `running`, pausing 2 s) and one still queued behind it (`queued`).
/// Returns the server and the two job ids.
async fn slow_with_running_and_queued_jobs() -> (TestServer, String, String) {
    let server = admin_server(|c| c.execution.max_concurrent_jobs = 1).await;
    let slow = description_as(&server, "echo", "slow", "1.0.0").await;
    deploy_package(&server, &package(Some(slow), &echo_wasm()))
        .await
        .expect_status(201);

    let (running, _) = server
        .run_until(
            "slow",
            json!({ "stringInput": "running", "pause": 2 }),
            &["running"],
        )
        .await;
    let queued = server
        .execute_async("slow", &json!({ "inputs": { "stringInput": "queued" } }))
        .await;
    assert_eq!(
        server.job(&queued).await["status"],
        "accepted",
        "the single worker is busy"
    );
    (server, running, queued)
}

#[tokio::test]
async fn jobs_running_or_queued_at_a_replace_finish_on_the_old_version() {
    let (server, running, queued) = slow_with_running_and_queued_jobs().await;

    let v2 = description_as(&server, "hello-world", "slow", "2.0.0").await;
    replace_package(&server, "slow", &package(Some(v2), &hello_wasm()))
        .await
        .expect_status(204);
    assert_eq!(server.get_json("/processes/slow").await["version"], "2.0.0");
    let new = server
        .execute_async("slow", &json!({ "inputs": { "name": "New" } }))
        .await;

    for (job_id, output, value) in [
        (&running, "stringInput", "running"),
        (&queued, "stringInput", "queued"),
        (&new, "echo", "Hello New!"),
    ] {
        server
            .wait_for_status(job_id, &["successful"], JOB_TIMEOUT)
            .await;
        assert_eq!(
            output_value(&results(&server, job_id).await, output),
            json!(value),
            "job {job_id}"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn jobs_running_or_queued_at_an_undeploy_still_complete() {
    let (server, running, queued) = slow_with_running_and_queued_jobs().await;

    undeploy(&server, "slow").await.expect_status(204);
    assert_no_such_process(&server.get("/processes/slow").await);

    for (job_id, value) in [(&running, "running"), (&queued, "queued")] {
        let status_info = server
            .wait_for_status(job_id, &["successful"], JOB_TIMEOUT)
            .await;
        assert_eq!(status_info["processID"], "slow");
        assert_eq!(
            output_value(&results(&server, job_id).await, "stringInput"),
            json!(value)
        );
    }
    let listed = server.get_json("/jobs?processID=slow").await;
    assert_eq!(
        listed["jobs"].as_array().map(Vec::len),
        Some(2),
        "jobs of the undeployed process are listed: {listed}"
    );
    server.shutdown().await;
}

/// A job queued when its process is undeployed still runs (as documented);
/// it must run under the limits its process was deployed with, not the
/// server defaults.
#[tokio::test]
async fn a_job_queued_at_an_undeploy_keeps_its_deployed_limits() {
    let server = admin_server(|c| {
        c.execution.max_concurrent_jobs = 1;
        // A short default wall clock, so the server defaults show as a
        // timeout rather than fuel running out.
        c.limits.default.timeout = Duration::from_secs(2);
    })
    .await;
    let mut limited = package(None, &hostile_wasm());
    limited["limits"] = json!({ "fuel": 1_000_000, "timeout": "30s" });
    deploy_package(&server, &limited).await.expect_status(201);
    let looping = json!({ "inputs": { "behaviour": "infinite-loop" } });

    // While deployed: fuel stops it.
    let (_, status_info) = server
        .execute_async_until("hostile", &looping, &["failed"])
        .await;
    assert!(
        status_info["message"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase()
            .contains("fuel"),
        "{status_info}"
    );

    // Queued behind a built-in job, then undeployed.
    server.running_echo("block", 2.0).await;
    let queued = server.execute_async("hostile", &looping).await;
    assert_eq!(server.job(&queued).await["status"], "accepted");
    undeploy(&server, "hostile").await.expect_status(204);
    let status_info = server
        .wait_for_status(&queued, &["failed"], JOB_TIMEOUT)
        .await;
    let message = status_info["message"].as_str().unwrap_or_default();
    assert!(
        message.to_lowercase().contains("fuel"),
        "the job queued at the undeploy ran under other limits than its deployed fuel of 1e6: {status_info}"
    );
    server.shutdown().await;
}

// ------------------------------------------------- conformance and /api

#[tokio::test]
async fn conformance_and_api_document_part_2() {
    let server = super::server().start().await;
    server
        .assert_conforms_to(&[
            "http://www.opengis.net/spec/ogcapi-processes-2/1.0/conf/deploy-replace-undeploy",
            "http://www.opengis.net/spec/ogcapi-processes-2/1.0/conf/ogcapppkg",
        ])
        .await;

    let reply = server.get("/api").await;
    reply.expect_status(200);
    let api = reply.json();
    let paths = &api["paths"];
    assert!(
        paths["/processes"]["post"].is_object(),
        "/api lacks POST /processes"
    );
    for method in ["put", "delete"] {
        assert!(
            paths["/processes/{processID}"][method].is_object(),
            "/api lacks {method} /processes/{{processID}}"
        );
    }
    assert!(paths["/processes/{processID}/package"]["get"].is_object());
    server.shutdown().await;
}

// ---------------------------------------------------------------- restart

/// Every file of `dir` with its size and modification time.
fn snapshot(dir: &Path) -> BTreeMap<String, (u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| {
            let entry = entry.expect("directory entry");
            let meta = entry.metadata().expect("metadata");
            // The inode, not the modification time: a load refreshes an
            // artifact's time (the cache drops the least recently used),
            // while writing one always makes a new file (written aside,
            // then renamed).
            (
                entry.file_name().to_string_lossy().into_owned(),
                (meta.len(), meta.ino()),
            )
        })
        .collect()
}

/// Servers given one `artifact_dir` compile each module once between
/// them: the second finds the first's artifacts (no file is written
/// again, neither at start-up for the built-ins nor at a deploy), runs
/// from them, and neither keeps artifacts in its data directory.
#[tokio::test]
async fn servers_sharing_an_artifact_dir_compile_each_module_once() {
    let shared = tempfile::tempdir().expect("artifact directory");
    let start = || admin_server(|c| c.artifact_dir = Some(shared.path().to_path_buf()));
    let first = start().await;
    let hostile = hostile_wasm();
    deploy_wasm(&first, hostile.clone())
        .await
        .expect_status(201);
    let compiled = snapshot(shared.path());
    for module in [hostile.clone(), hello_wasm()] {
        let sha = wasmproc::runtime::module_sha256(&module);
        assert!(
            compiled
                .keys()
                .any(|name| name.starts_with(&sha) && name.ends_with(".cwasm")),
            "no artifact of {sha} in {compiled:?}"
        );
    }

    let second = start().await;
    deploy_wasm(&second, hostile).await.expect_status(201);
    assert_eq!(
        snapshot(shared.path()),
        compiled,
        "the second server compiled again"
    );
    second
        .assert_answers("hello-world", json!({ "name": "Ann" }), json!("Hello Ann!"))
        .await;
    for server in [&first, &second] {
        assert!(!server.data_dir().join("artifacts").exists());
    }
    second.shutdown().await;
    first.shutdown().await;
}

#[tokio::test]
async fn deployed_processes_survive_a_restart_without_recompiling() {
    // Its own artifact cache: the test looks at what was compiled.
    let server = admin_server(|c| c.artifact_dir = None).await;
    let hostile = hostile_wasm();
    deploy_wasm(&server, hostile.clone())
        .await
        .expect_status(201);
    let mut greeter = description_as(&server, "hello-world", "greeter", "1.2.3").await;
    greeter["title"] = json!("Greeter");
    let mut greeter_package = package(Some(greeter), &hello_wasm());
    greeter_package["jobControlOptions"] = json!(["async-execute"]);
    deploy_package(&server, &greeter_package)
        .await
        .expect_status(201);
    let (job_before, _) = server
        .run_until("greeter", json!({ "name": "Before" }), &["successful"])
        .await;

    let artifacts = server.data_dir().join("artifacts");
    let before = snapshot(&artifacts);
    let hostile_sha = wasmproc::runtime::module_sha256(&hostile);
    assert!(
        before
            .keys()
            .any(|name| name.starts_with(&hostile_sha) && name.ends_with(".cwasm")),
        "no compiled artifact of the deployed module in {before:?}"
    );

    let server = server.restart().await;
    let ids = process_ids(&server).await;
    assert_eq!(ids.get("hostile"), Some(&json!(true)), "{ids:?}");
    assert_eq!(ids.get("greeter"), Some(&json!(true)), "{ids:?}");
    assert_eq!(ids.get("hello-world"), Some(&json!(false)), "{ids:?}");
    let described = server.get_json("/processes/greeter").await;
    assert_eq!(described["title"], "Greeter");
    assert_eq!(described["version"], "1.2.3");
    assert_eq!(described["jobControlOptions"], json!(["async-execute"]));

    // Both run.
    let reply = server
        .execute(
            "hostile",
            &json!({ "inputs": { "behaviour": "huge-output", "size": 2 } }),
        )
        .await;
    reply.expect_status(200);
    assert_eq!(reply.body, vec![7, 7]);
    let (job_after, _) = server
        .run_until("greeter", json!({ "name": "After" }), &["successful"])
        .await;
    assert_eq!(
        output_value(&results(&server, &job_after).await, "echo"),
        json!("Hello After!")
    );
    assert_eq!(
        output_value(&results(&server, &job_before).await, "echo"),
        json!("Hello Before!")
    );
    // Still mutable after the restart.
    let raw = server
        .get_with("/processes/hostile/package", &[("accept", WASM)])
        .await;
    assert!(raw.body == hostile, "stored module changed");

    // Nothing was compiled again: the artifact directory is unchanged.
    let after = snapshot(&artifacts);
    assert_eq!(
        after, before,
        "the restart wrote compiled artifacts (it recompiled)"
    );

    undeploy(&server, "hostile").await.expect_status(204);
    let server = server.restart().await;
    let ids = process_ids(&server).await;
    assert!(
        !ids.contains_key("hostile"),
        "undeployed came back: {ids:?}"
    );
    assert_eq!(ids.get("greeter"), Some(&json!(true)));
    server.shutdown().await;
}

#[tokio::test]
async fn deny_imports_refuses_even_inert_capabilities_at_deploy() {
    // The hostile component imports wasi:sockets and wasi:filesystem (inert
    // by default); a server that denies sockets refuses it at deploy, with
    // the import named, and keeps accepting components without them.
    let server = admin_server(|c| c.deny_imports = vec!["wasi:sockets".into()]).await;
    let reply = deploy_wasm(&server, hostile_wasm()).await;
    let body = assert_detail(&reply, 400, "deny_imports entry `wasi:sockets`");
    assert!(
        detail(&body).contains("`wasi:sockets/tcp@"),
        "the refused import is named: {body}"
    );
    assert!(
        !process_ids(&server).await.contains_key("hostile"),
        "nothing of a refused component is offered"
    );
    let renamed = description_as(&server, "hello-world", "hello-again", "1.0.0").await;
    deploy_package(&server, &package(Some(renamed), &hello_wasm()))
        .await
        .expect_status(201);
    server.shutdown().await;
}

#[tokio::test]
async fn every_operation_of_the_openapi_document_is_checked_against_its_security() {
    // The table is the server's own OpenAPI document: a route added without
    // its security declaration, or declared but not enforced, fails here.
    // With `protect_jobs` and `protect_processes`, optional bearer
    // security becomes required. (Role by role: `access.rs`.)
    let server = admin_server(|c| {
        c.auth.protect_jobs = true;
        c.auth.protect_processes = true;
    })
    .await;
    // Descriptions need the token here too.
    let mut greeter = server
        .send(Method::GET, "/processes/hello-world", &[AUTH], None)
        .await
        .expect_json();
    let fields = greeter.as_object_mut().expect("description object");
    fields.remove("links");
    fields.remove("mutable");
    fields.insert("id".into(), json!("greeter"));
    deploy_package(&server, &package(Some(greeter), &hello_wasm()))
        .await
        .expect_status(201);
    let request = json!({ "inputs": { "name": "Joe" } });
    let done = server
        .post_json("/processes/greeter/execution", &request, &[AUTH])
        .await;
    done.expect_status(200);
    let job_id = last_segment(&done.link_header("monitor").expect("monitor link"));

    let document = server.get_json("/api").await;
    let mut checked = Vec::new();
    for operation in operations_on(&document, "greeter", &job_id, "echo") {
        let Operation {
            method, path, id, ..
        } = &operation;
        let bearer = operation.declares_bearer();
        assert!(
            *method == Method::GET || bearer,
            "{method} {} ({id}) changes state but declares no bearer security",
            operation.template
        );
        let (content_type, body) = operation.request_body(&request, echo_wasm);
        for (authorization, refused) in [(None, 401), (Some("Bearer wrong"), 403)] {
            let mut headers = vec![("content-type", content_type)];
            if let Some(value) = authorization {
                headers.push(("authorization", value));
            }
            let reply = server
                .send(method.clone(), path, &headers, body.clone())
                .await;
            if bearer {
                assert_exception(&reply, refused, None);
                if refused == 401 {
                    assert_eq!(
                        reply.header("www-authenticate").as_deref(),
                        Some("Bearer"),
                        "{id}: {:?}",
                        reply.headers
                    );
                }
            } else {
                assert!(
                    reply.status != 401 && reply.status != 403,
                    "{id} declares no security but answered {}: {}",
                    reply.status,
                    reply.text()
                );
            }
        }
        checked.push(id.clone());
    }
    for expected in [
        "deploy", "replace", "undeploy", "execute", "dismiss", "getJobs",
    ] {
        assert!(
            checked.iter().any(|id| id == expected),
            "{expected} missing from {checked:?}"
        );
    }
    // Nothing refused changed anything: the job and the process are intact.
    let status = server
        .send(Method::GET, &format!("/jobs/{job_id}"), &[AUTH], None)
        .await;
    status.expect_status(200);
    assert_eq!(status.json()["status"], "successful");
    server
        .send(Method::GET, "/processes/greeter", &[AUTH], None)
        .await
        .expect_status(200);
    server.shutdown().await;
}

// ---------------------------------------------------------------- outputs

/// `echo` (which returns every input as the output of the same id) under a
/// description whose outputs say otherwise: `area` a number, `shape` an
/// object, and no `extra` output at all.
fn contradicted_echo(id: &str) -> Value {
    json!({
        "id": id,
        "version": "1.0.0",
        "jobControlOptions": ["sync-execute", "async-execute"],
        "inputs": {
            "stringInput": { "schema": { "type": "string" } },
            "area": { "minOccurs": 0, "schema": {} },
            "shape": { "minOccurs": 0, "schema": {} },
            "extra": { "minOccurs": 0, "schema": {} }
        },
        "outputs": {
            "stringInput": { "schema": { "type": "string" } },
            "area": { "schema": { "type": "number" } },
            "shape": { "schema": { "type": "object" } }
        }
    })
}

/// Issue 17: an output that contradicts its declared schema (null for a
/// number, a string for an object, an undeclared id) fails the job with a
/// reason naming the output. `output_checks = "warn"` for one process
/// relaxes that to warnings in its job log: the value is kept, the
/// undeclared output dropped; other processes stay strict.
#[tokio::test]
async fn outputs_contradicting_their_schema_fail_the_job_unless_relaxed_to_warnings() {
    let server = admin_server(|c| {
        c.processes
            .entry("lenient-echo".into())
            .or_default()
            .output_checks = Some(wasmproc::config::OutputChecks::Warn);
    })
    .await;
    for id in ["strict-echo", "lenient-echo"] {
        deploy_package(&server, &package(Some(contradicted_echo(id)), &echo_wasm()))
            .await
            .expect_status(201);
    }
    let cases = [
        (
            json!({ "area": null }),
            "invalid output 'area': null is not of type \"number\"",
        ),
        (
            json!({ "shape": "square" }),
            "invalid output 'shape': \"square\" is not of type \"object\"",
        ),
        (
            json!({ "extra": 1 }),
            "invalid output 'extra': the process description does not declare it",
        ),
    ];
    for (extra_inputs, reason) in &cases {
        let mut inputs = json!({ "stringInput": "s" });
        inputs
            .as_object_mut()
            .expect("object")
            .extend(extra_inputs.as_object().expect("object").clone());
        let request = json!({ "inputs": inputs, "response": "document" });
        let reply = server.execute("strict-echo", &request).await;
        let body = wasmproc_tests::assert_error_exception(&reply, None);
        assert_eq!(body["type"], "urn:wasmproc:error:job-failed", "{body}");
        assert!(
            wasmproc_tests::detail(&body).contains(reason),
            "{extra_inputs}: {body}"
        );
    }

    let request = json!({
        "inputs": { "stringInput": "s", "area": null, "extra": 1 },
        "response": "document"
    });
    let (job_id, reply) = server.execute_sync("lenient-echo", &request).await;
    let document = reply.json();
    assert_eq!(
        wasmproc_tests::output_value(&document, "area"),
        Value::Null,
        "{document}"
    );
    assert_eq!(
        wasmproc_tests::output_value(&document, "stringInput"),
        "s",
        "{document}"
    );
    assert!(
        document.get("extra").is_none(),
        "undeclared output kept: {document}"
    );
    let log = server.get(&format!("/jobs/{job_id}/log")).await.text();
    assert!(
        log.contains(
            "warning: the process returned an invalid output 'area': null is not of type \"number\""
        ) && log.contains("(output_checks = \"warn\": kept)"),
        "{log}"
    );
    assert!(
        log.contains("invalid output 'extra'")
            && log.contains("(output_checks = \"warn\": dropped)"),
        "{log}"
    );
    server.shutdown().await;
}
