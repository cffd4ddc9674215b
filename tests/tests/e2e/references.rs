//! Inputs given by reference (`{"href": …}`): fetched by the host before the
//! guest runs, within the allow-list, size limit and timeout.

use serde_json::json;
use wasmproc_tests::{FileServer, TestServer, assert_detail, assert_valid, detail, output_value};

#[tokio::test]
async fn href_inputs_are_fetched_and_passed_to_the_guest() {
    let files = FileServer::start(vec![
        ("/name.txt", "text/plain", b"Ada".to_vec()),
        (
            "/geometry.json",
            "application/geo+json",
            br#"{"type": "LineString", "coordinates": [[0, 0], [0, 1]]}"#.to_vec(),
        ),
        ("/blob.bin", "application/octet-stream", vec![1, 2, 3, 250]),
    ])
    .await;
    let server = TestServer::builder()
        .configure(|c| c.href.allowed_hosts = vec!["127.0.0.1".into()])
        .start()
        .await;

    // Text becomes a string input.
    let reply = server
        .execute(
            "hello-world",
            &json!({ "inputs": { "name": { "href": files.url("/name.txt") } } }),
        )
        .await;
    reply.expect_status(200);
    assert_eq!(reply.json(), json!("Hello Ada!"));

    // JSON becomes a JSON input.
    let request = json!({
        "inputs": { "geometry": { "href": files.url("/geometry.json") } },
        "outputs": { "bbox": {} },
        "response": "document",
    });
    let reply = server.execute("geometry", &request).await;
    reply.expect_status(200);
    let results = reply.json();
    assert_valid("results.yaml", &results);
    assert_eq!(output_value(&results, "bbox"), json!([0.0, 0.0, 0.0, 1.0]));

    // Anything else becomes base64 bytes with the served media type; async
    // jobs fetch in the worker.
    let request = json!({
        "inputs": { "stringInput": "x", "binaryInput": { "href": files.url("/blob.bin") } },
        "outputs": { "binaryInput": {} },
        "response": "document",
    });
    let (job, _) = server
        .execute_async_until("echo", &request, &["successful"])
        .await;
    let raw = server
        .get(&format!("/jobs/{job}/results/binaryInput"))
        .await;
    raw.expect_status(200);
    assert_eq!(raw.content_type(), "application/octet-stream");
    assert_eq!(raw.body.clone(), vec![1, 2, 3, 250]);
    server.shutdown().await;
}

#[tokio::test]
async fn loopback_references_are_refused_unless_allow_listed() {
    let files = FileServer::single("/name.txt", "text/plain", b"Ada".to_vec()).await;
    let server = TestServer::start().await;
    let reply = server
        .execute(
            "hello-world",
            &json!({ "inputs": { "name": { "href": files.url("/name.txt") } } }),
        )
        .await;
    // The fetch fails before the guest runs: the job fails on its inputs.
    assert_detail(&reply, 400, "non-public");

    // Non-http schemes are rejected before any job exists.
    let reply = server
        .execute(
            "hello-world",
            &json!({ "inputs": { "name": { "href": "file:///etc/passwd" } } }),
        )
        .await;
    assert_detail(&reply, 400, "only http and https");
    server.shutdown().await;
}

#[tokio::test]
async fn oversized_and_invalid_references_fail_the_job_with_a_reason() {
    let files = FileServer::start(vec![
        ("/big.txt", "text/plain", vec![b'a'; 4096]),
        ("/number.json", "application/json", b"42".to_vec()),
    ])
    .await;
    let server = TestServer::builder()
        .configure(|c| {
            c.href.allowed_hosts = vec!["127.0.0.1".into()];
            c.href.max_bytes = 1024;
        })
        .start()
        .await;
    // Each reference fails the job on its inputs (400), the detail saying
    // why. The fetched value is validated like an inline one: a number is
    // no name.
    for (path, fragment) in [
        ("/big.txt", "larger than the limit"),
        ("/number.json", "input 'name'"),
        ("/nothing", "404"),
    ] {
        let request = json!({ "inputs": { "name": { "href": files.url(path) } } });
        let reply = server.execute("hello-world", &request).await;
        assert_detail(&reply, 400, fragment);
    }
    server.shutdown().await;
}

/// A name is checked where it is resolved for the connection (the guard is
/// the fetch client's DNS resolver, so the address checked is the address
/// connected to): `localhost` answers loopback, so it is refused with the
/// guard's reason unless `localhost` itself is allow-listed; listed, the
/// fetch reaches the file server through the same resolution.
#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused_unless_the_name_is_allow_listed() {
    let files = FileServer::single("/name.txt", "text/plain", b"Ada".to_vec()).await;
    let by_name = files.url("/name.txt").replace("127.0.0.1", "localhost");
    let request = json!({ "inputs": { "name": { "href": by_name } } });

    let server = TestServer::start().await;
    let reply = server.execute("hello-world", &request).await;
    let body = assert_detail(
        &reply,
        400,
        "host 'localhost' resolves to the non-public address",
    );
    assert!(detail(&body).contains("href.allowed_hosts"), "{body}");
    server.shutdown().await;

    let server = TestServer::builder()
        .configure(|c| c.href.allowed_hosts = vec!["localhost".into()])
        .start()
        .await;
    let reply = server.execute("hello-world", &request).await;
    reply.expect_status(200);
    assert_eq!(reply.json(), json!("Hello Ada!"));
    server.shutdown().await;
}

/// A job whose `href` server never answers holds its worker while it waits;
/// dismissing it frees the worker at once, not after `href.timeout`: with
/// one worker, a synchronous request right after the dismissal runs (it
/// would wait for the fetch's 120 s otherwise, past its 20 s timeout).
#[tokio::test]
async fn dismissing_a_job_stops_its_href_fetch_and_frees_its_worker() {
    // Accepts connections and never answers, for as long as the test runs.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/name.txt", silent.local_addr().expect("address"));
    let held = tokio::spawn(async move {
        let mut connections = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            connections.push(stream);
        }
    });
    let server = TestServer::builder()
        .configure(|c| {
            c.href.allowed_hosts = vec!["127.0.0.1".into()];
            c.href.timeout = std::time::Duration::from_secs(120);
            c.execution.max_concurrent_jobs = 1;
            c.execution.sync_timeout = std::time::Duration::from_secs(20);
        })
        .start()
        .await;
    let (job_id, _) = server
        .run_until(
            "hello-world",
            json!({ "name": { "href": url } }),
            &["running"],
        )
        .await;
    server
        .delete(&format!("/jobs/{job_id}"))
        .await
        .expect_status(200);
    server
        .assert_answers("hello-world", json!({ "name": "Joe" }), json!("Hello Joe!"))
        .await;
    held.abort();
    server.shutdown().await;
}
