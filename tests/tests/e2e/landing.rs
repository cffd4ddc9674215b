//! Landing page, conformance declaration and API definition.

use serde_json::Value;
use wasmproc_tests::{TestServer, assert_exception, assert_valid, body_link, rel};

const CONFORMANCE_CLASSES: &[&str] = &[
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/ogc-process-description",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/json",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/job-list",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/dismiss",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/callback",
];

#[tokio::test]
async fn landing_page_links_to_api_conformance_processes_and_jobs() {
    let server = TestServer::start().await;
    let landing = server.get_json("/").await;
    assert_valid("landingPage.yaml", &landing);

    for relation in [
        "self",
        "service-desc",
        rel::CONFORMANCE,
        rel::PROCESSES,
        rel::JOB_LIST,
    ] {
        let href = body_link(&landing, relation)
            .unwrap_or_else(|| panic!("landing page has no {relation} link: {landing}"));
        // Every advertised link resolves.
        server.get(&href).await.expect_status(200);
    }
    let service_desc = body_link(&landing, "service-desc").unwrap();
    assert!(
        service_desc.trim_end_matches('/').ends_with("/api"),
        "service-desc {service_desc}"
    );
    let processes = body_link(&landing, rel::PROCESSES).unwrap();
    assert!(processes.ends_with("/processes"), "{processes}");
    let jobs = body_link(&landing, rel::JOB_LIST).unwrap();
    assert!(jobs.ends_with("/jobs"), "{jobs}");
    server.shutdown().await;
}

#[tokio::test]
async fn landing_page_links_are_absolute_urls_on_the_server() {
    let server = TestServer::start().await;
    let landing = server.get_json("/").await;
    for link in landing["links"].as_array().expect("links") {
        let href = link["href"].as_str().expect("href");
        assert!(
            href.starts_with(server.base()),
            "link {href} is not under {}",
            server.base()
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn conformance_declares_the_implemented_classes() {
    let server = TestServer::start().await;
    let reply = server.get("/conformance").await;
    let conformance = reply.expect_status(200).expect_json();
    assert_valid("confClasses.yaml", &conformance);
    let declared: Vec<&str> = conformance["conformsTo"]
        .as_array()
        .expect("conformsTo")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for class in CONFORMANCE_CLASSES {
        assert!(
            declared.contains(class),
            "{class} not declared: {declared:?}"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn openapi_document_describes_execution_and_jobs() {
    let server = TestServer::start().await;
    let reply = server.get("/api").await;
    reply.expect_status(200);
    let content_type = reply.content_type().to_ascii_lowercase().replace(' ', "");
    assert!(
        content_type.starts_with("application/vnd.oai.openapi+json")
            && content_type.contains("version=3.0"),
        "content type {content_type:?}"
    );
    let document = reply.json();
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.0")),
        "openapi: {}",
        document["openapi"]
    );
    let paths = document["paths"].as_object().expect("paths object");
    for path in [
        "/",
        "/conformance",
        "/processes",
        "/processes/{processID}",
        "/processes/{processID}/execution",
        "/jobs",
        "/jobs/{jobID}",
        "/jobs/{jobID}/results",
    ] {
        assert!(
            paths.contains_key(path),
            "path {path} missing: {:?}",
            paths.keys().collect::<Vec<_>>()
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_path_returns_404_exception() {
    let server = TestServer::start().await;
    let reply = server.get("/no/such/resource").await;
    assert_exception(&reply, 404, None);
    server.shutdown().await;
}
