//! Executing processes: sync and async, raw and document responses,
//! transmission modes, input validation, queue limits.

use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, FixedOffset};
use serde_json::{Value, json};
use wasmproc_tests::{
    Api, JOB_TIMEOUT, REL_MONITOR, Reply, TestServer, assert_error_exception, assert_exception,
    assert_retry_after_seconds, assert_retry_later, assert_valid, check_exception, detail,
    is_json_media_type, last_segment, output_value, set_job_control, slow_echo,
};

fn hello_joe() -> Value {
    json!({ "inputs": { "name": "Joe", "message": "hi" } })
}

/// Poll `GET /jobs?status=running` (every 20 ms, at most [`JOB_TIMEOUT`])
/// until some job runs: the first of several requests on a single worker
/// holds it, so the next ones have to wait.
async fn wait_for_a_running_job(server: &Api) {
    let deadline = std::time::Instant::now() + JOB_TIMEOUT;
    while server.get_json("/jobs?status=running").await["jobs"]
        .as_array()
        .is_none_or(|jobs| jobs.is_empty())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the first job never ran"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Panic unless `reply` is 201 with a `Location`; wait until that job is
/// successful and return its id.
async fn created_job_succeeds(server: &Api, reply: &Reply) -> String {
    reply.expect_status(201);
    let location = reply
        .header("location")
        .unwrap_or_else(|| panic!("201 without Location: {:?}", reply.headers));
    let job_id = last_segment(&location);
    server
        .wait_for_status(&job_id, &["successful"], JOB_TIMEOUT)
        .await;
    job_id
}

/// A server whose `process` allows only the execution modes `options`
/// (`sync-execute`, `async-execute`): the tests of each mode's default.
async fn server_with_job_control(process: &str, options: &[&str]) -> TestServer {
    super::server()
        .configure(|c| set_job_control(c, process, options))
        .start()
        .await
}

/// A server with one job worker (see
/// [`TestServerBuilder::with_one_worker`](wasmproc_tests::TestServerBuilder::with_one_worker)),
/// its configuration then changed by `more`: the queue and timeout tests.
async fn one_worker_server(more: impl FnOnce(&mut wasmproc::config::Config)) -> TestServer {
    super::server()
        .with_one_worker()
        .configure(more)
        .start()
        .await
}

/// Panic unless `reply` has no `Preference-Applied` header: nothing was
/// asked for, so nothing was applied. `why` says what was sent.
fn assert_no_preference_applied(reply: &Reply, why: &str) {
    assert!(
        reply.header("preference-applied").is_none(),
        "{why}, yet Preference-Applied: {:?}",
        reply.header("preference-applied")
    );
}

/// Panic unless the `Preference-Applied` header of `reply` names
/// `respond-async` exactly when `applied`: whether the server says it ran
/// the job asynchronously as the client preferred.
fn assert_respond_async_applied(reply: &Reply, applied: bool) {
    let header = reply.header("preference-applied").unwrap_or_default();
    assert_eq!(
        header.contains("respond-async"),
        applied,
        "{}: Preference-Applied {header:?}",
        reply.request
    );
}

fn timestamp(status_info: &Value, field: &str) -> DateTime<FixedOffset> {
    let text = status_info[field]
        .as_str()
        .unwrap_or_else(|| panic!("statusInfo without {field}: {status_info}"));
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{field} {text:?} is not RFC 3339: {e}"))
}

#[tokio::test]
async fn sync_execute_returns_raw_value_with_monitor_link() {
    let server = super::server().start().await;
    let reply = server.execute("hello-world", &hello_joe()).await;
    reply.expect_status(200);
    assert!(
        is_json_media_type(&reply.content_type()),
        "content type {:?}",
        reply.content_type()
    );
    assert_eq!(reply.json(), json!("Hello Joe! hi"));
    assert_no_preference_applied(&reply, "no Prefer header");

    let monitor = reply
        .link_header(REL_MONITOR)
        .unwrap_or_else(|| panic!("no rel=monitor Link: {:?}", reply.header_all("link")));
    assert!(
        monitor.starts_with(&format!("{}/jobs/", server.base())),
        "monitor link {monitor}"
    );
    let status_info = server.get_json(&monitor).await;
    assert_valid("statusInfo.yaml", &status_info);
    assert_eq!(status_info["status"], "successful");
    assert_eq!(status_info["type"], "process");
    assert_eq!(status_info["processID"], "hello-world");
    assert_eq!(status_info["jobID"], last_segment(&monitor));
    assert_eq!(status_info["progress"], 100);
    let created = timestamp(&status_info, "created");
    let started = timestamp(&status_info, "started");
    let finished = timestamp(&status_info, "finished");
    let updated = timestamp(&status_info, "updated");
    assert!(
        created <= started && started <= finished && finished <= updated,
        "timestamps out of order: {status_info}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn sync_execute_document_response_returns_results_document() {
    let server = super::server().start().await;
    let request = json!({ "inputs": { "name": "Joe", "message": "hi" }, "response": "document" });
    let (job_id, reply) = server.execute_sync("hello-world", &request).await;
    let results = reply.expect_json();
    assert_valid("results.yaml", &results);
    assert_eq!(output_value(&results, "echo"), json!("Hello Joe! hi"));
    // The stored results are the same document.
    let stored = server.get_json(&format!("/jobs/{job_id}/results")).await;
    assert_valid("results.yaml", &stored);
    assert_eq!(output_value(&stored, "echo"), json!("Hello Joe! hi"));
    server.shutdown().await;
}

#[tokio::test]
async fn async_execute_returns_201_with_location() {
    let server = super::server().start().await;
    let reply = server
        .execute_async_reply("hello-world", &hello_joe())
        .await;
    reply.expect_status(201);
    let location = reply.header("location").expect("Location header");
    let job_id = last_segment(&location);
    assert_eq!(location, format!("{}/jobs/{job_id}", server.base()));
    assert_respond_async_applied(&reply, true);
    let status_info = reply.expect_json();
    assert_valid("statusInfo.yaml", &status_info);
    assert_eq!(status_info["jobID"], job_id.as_str());
    assert!(
        ["accepted", "running", "successful"].contains(&status_info["status"].as_str().unwrap()),
        "{status_info}"
    );

    let done = server
        .wait_for_status(&job_id, &["successful"], JOB_TIMEOUT)
        .await;
    assert_eq!(done["progress"], 100);
    assert_eq!(done["processID"], "hello-world");
    let results = server.get_json(&format!("/jobs/{job_id}/results")).await;
    assert_valid("results.yaml", &results);
    assert_eq!(output_value(&results, "echo"), json!("Hello Joe! hi"));

    let one = server.get(&format!("/jobs/{job_id}/results/echo")).await;
    one.expect_status(200);
    assert_eq!(one.json(), json!("Hello Joe! hi"));
    server.shutdown().await;
}

#[tokio::test]
async fn prefer_list_with_wait_still_executes_async() {
    let server = super::server().start().await;
    let reply = server
        .post_json(
            "/processes/hello-world/execution",
            &hello_joe(),
            &[("prefer", "respond-async, wait=10")],
        )
        .await;
    assert_respond_async_applied(&reply, true);
    created_job_succeeds(&server, &reply).await;
    server.shutdown().await;
}

#[tokio::test]
async fn async_only_process_executes_async_without_prefer() {
    let server = server_with_job_control("echo", &["async-execute"]).await;
    let description = server.get_json("/processes/echo").await;
    assert_eq!(description["jobControlOptions"], json!(["async-execute"]));

    let reply = server
        .execute("echo", &json!({ "inputs": { "stringInput": "x" } }))
        .await;
    assert_no_preference_applied(&reply, "no Prefer was sent");
    created_job_succeeds(&server, &reply).await;
    server.shutdown().await;
}

#[tokio::test]
async fn respond_async_is_not_applied_to_a_sync_only_process() {
    let server = server_with_job_control("hello-world", &["sync-execute"]).await;
    let reply = server
        .execute_async_reply("hello-world", &hello_joe())
        .await;
    reply.expect_status(200);
    assert_eq!(reply.json(), json!("Hello Joe! hi"));
    assert_respond_async_applied(&reply, false);
    server.shutdown().await;
}

#[tokio::test]
async fn server_with_sync_disabled_runs_async_without_prefer() {
    let server = super::server()
        .configure(|c| c.execution.enable_sync = false)
        .start()
        .await;
    let reply = server.execute("hello-world", &hello_joe()).await;
    created_job_succeeds(&server, &reply).await;
    server.shutdown().await;
}

#[tokio::test]
async fn results_are_not_ready_while_the_job_runs() {
    let server = super::server().start().await;
    let job_id = server.start_echo("x", 2.0).await;
    let running = server
        .wait_until(
            &job_id,
            Duration::from_secs(5),
            "running with progress 10",
            |s| s["status"] == "running" && s["progress"] == 10,
        )
        .await;
    assert!(running.get("started").is_some(), "{running}");
    let reply = server.get(&format!("/jobs/{job_id}/results")).await;
    assert_exception(&reply, 404, Some("result-not-ready"));
    server
        .wait_for_status(&job_id, &["successful"], JOB_TIMEOUT)
        .await;
    server.shutdown().await;
}

#[tokio::test]
async fn echo_document_echoes_every_input_kind() {
    let server = super::server().start().await;
    let png = [
        0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 1, 2,
    ];
    let png_base64 = base64::engine::general_purpose::STANDARD.encode(png);
    let bbox = json!({ "bbox": [5.5, 45.0, 10.5, 47.75], "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84" });
    let object = json!({ "a": 1, "b": [true, null], "c": { "d": "e" } });
    let request = json!({
        "inputs": {
            "stringInput": "a string",
            "doubleInput": 3.25,
            "arrayInput": [1, 2, 3],
            "objectInput": object,
            "boundingBoxInput": bbox,
            "binaryInput": { "value": png_base64, "mediaType": "image/png" }
        },
        "response": "document"
    });
    let (_, reply) = server.execute_sync("echo", &request).await;
    let results = reply.expect_json();
    assert_valid("results.yaml", &results);
    assert_eq!(output_value(&results, "stringInput"), json!("a string"));
    assert_eq!(
        output_value(&results, "doubleInput").as_f64(),
        Some(3.25),
        "{results}"
    );
    assert_eq!(output_value(&results, "arrayInput"), json!([1, 2, 3]));
    assert_eq!(output_value(&results, "objectInput"), object);
    let echoed_bbox = output_value(&results, "boundingBoxInput");
    assert_eq!(echoed_bbox["bbox"], bbox["bbox"], "{results}");
    let binary = &results["binaryInput"];
    assert_eq!(binary["value"], json!(png_base64), "{results}");
    assert_eq!(binary["mediaType"], "image/png", "{results}");
    server.shutdown().await;
}

#[tokio::test]
async fn document_response_contains_only_requested_outputs() {
    let server = super::server().start().await;
    let request = json!({
        "inputs": { "stringInput": "keep", "doubleInput": 1.5 },
        "outputs": { "stringInput": {} },
        "response": "document"
    });
    let (_, reply) = server.execute_sync("echo", &request).await;
    let results = reply.expect_json();
    assert_valid("results.yaml", &results);
    assert_eq!(output_value(&results, "stringInput"), json!("keep"));
    assert!(results.get("doubleInput").is_none(), "{results}");
    server.shutdown().await;
}

#[tokio::test]
async fn raw_response_with_two_outputs_is_multipart_related() {
    let server = super::server().start().await;
    let request = json!({
        "inputs": { "stringInput": "first-part-xyz", "doubleInput": 2.5 },
        "outputs": { "stringInput": {}, "doubleInput": {} },
        "response": "raw"
    });
    let reply = server.execute("echo", &request).await;
    reply.expect_status(200);
    let content_type = reply.content_type();
    assert!(
        content_type
            .to_ascii_lowercase()
            .starts_with("multipart/related"),
        "content type {content_type:?}"
    );
    let boundary = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .map(|b| b.trim_matches('"').to_owned())
        .unwrap_or_else(|| panic!("no boundary in {content_type:?}"));
    let body = reply.text();
    let parts: Vec<&str> = body
        .split(&format!("--{boundary}"))
        .map(str::trim)
        .filter(|p| !p.is_empty() && *p != "--")
        .collect();
    assert_eq!(parts.len(), 2, "expected two parts: {body}");
    assert!(parts.iter().any(|p| p.contains("first-part-xyz")), "{body}");
    assert!(parts.iter().any(|p| p.contains("2.5")), "{body}");
    server.shutdown().await;
}

#[tokio::test]
async fn reference_transmission_returns_a_link_to_the_output() {
    let server = super::server().start().await;
    let request = json!({
        "inputs": { "stringInput": "by-ref" },
        "outputs": { "stringInput": { "transmissionMode": "reference" } },
        "response": "document"
    });
    let (job_id, reply) = server.execute_sync("echo", &request).await;
    let results = reply.expect_json();
    assert_valid("results.yaml", &results);
    let href = results["stringInput"]["href"]
        .as_str()
        .unwrap_or_else(|| panic!("output is not a link: {results}"));
    assert_eq!(
        href,
        format!("{}/jobs/{job_id}/results/stringInput", server.base())
    );
    let value = server.get(href).await;
    value.expect_status(200);
    assert_eq!(value.json(), json!("by-ref"));
    server.shutdown().await;
}

/// One invalid execute request and the input its error must name.
struct Invalid {
    process: &'static str,
    body: Vec<u8>,
    prefer_async: bool,
    names: &'static str,
}

fn invalid(process: &'static str, body: Value, names: &'static str) -> Invalid {
    Invalid {
        process,
        body: serde_json::to_vec(&body).unwrap(),
        prefer_async: false,
        names,
    }
}

#[tokio::test]
async fn invalid_inputs_are_rejected_with_400_naming_the_input() {
    let server = super::server().start().await;
    let eleven: Vec<i64> = (0..11).collect();
    let mut cases = vec![
        invalid(
            "hello-world",
            json!({ "inputs": { "message": "hi" } }),
            "name",
        ),
        invalid(
            "hello-world",
            json!({ "inputs": { "name": "Joe", "colour": "red" } }),
            "colour",
        ),
        invalid("hello-world", json!({ "inputs": { "name": 5 } }), "name"),
        invalid(
            "echo",
            json!({ "inputs": { "stringInput": "x", "doubleInput": "abc" } }),
            "doubleInput",
        ),
        invalid(
            "echo",
            json!({ "inputs": { "stringInput": "x", "arrayInput": eleven } }),
            "arrayInput",
        ),
        invalid(
            "echo",
            json!({ "inputs": { "stringInput": "x", "pause": 61 } }),
            "pause",
        ),
        invalid(
            "echo",
            json!({ "inputs": { "stringInput": "x" }, "response": "bogus" }),
            "response",
        ),
        invalid(
            "echo",
            json!({ "inputs": { "stringInput": "x" }, "outputs": { "nope": {} } }),
            "nope",
        ),
        invalid("hello-world", json!([{ "name": "Joe" }]), ""),
        Invalid {
            process: "hello-world",
            body: b"{\"inputs\": {\"name\": ".to_vec(),
            prefer_async: false,
            names: "",
        },
    ];
    cases.push(Invalid {
        prefer_async: true,
        ..invalid("hello-world", json!({ "inputs": { "name": 5 } }), "name")
    });

    let mut failures = Vec::new();
    for case in &cases {
        let mut headers = vec![("content-type", "application/json")];
        if case.prefer_async {
            headers.push(("prefer", "respond-async"));
        }
        let reply = server
            .send(
                reqwest::Method::POST,
                &format!("/processes/{}/execution", case.process),
                &headers,
                Some(case.body.clone()),
            )
            .await;
        match check_exception(&reply, Some(400), None) {
            Ok(body) if detail(&body).contains(case.names) => {}
            Ok(body) => failures.push(format!(
                "{}: detail does not name {:?}: {body}",
                String::from_utf8_lossy(&case.body),
                case.names
            )),
            Err(problem) => failures.push(format!(
                "{}: {problem}",
                String::from_utf8_lossy(&case.body)
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );

    // None of them became a successful (or any running) job.
    let jobs = server.get_json("/jobs?status=successful").await;
    assert_eq!(jobs["jobs"], json!([]), "{jobs}");
    server.shutdown().await;
}

#[tokio::test]
async fn oversized_request_body_returns_413() {
    let server = super::server()
        .configure(|c| c.max_request_bytes = 1024)
        .start()
        .await;
    let big = "x".repeat(4096);
    let reply = server
        .execute("echo", &json!({ "inputs": { "stringInput": big } }))
        .await;
    assert_exception(&reply, 413, None);
    server.shutdown().await;
}

#[tokio::test]
async fn full_queue_rejects_async_jobs_with_503_and_retry_after() {
    let server = one_worker_server(|c| c.execution.max_queued_jobs = 2).await;
    let request = slow_echo("x", 1.0);
    // One job takes the only worker...
    let running = server.running_echo("x", 1.0).await;
    // ...so of the next five, two wait in the queue and three are turned away.
    let mut accepted = vec![running];
    let mut rejected = 0;
    for _ in 0..5 {
        let reply = server.execute_async_reply("echo", &request).await;
        match reply.status {
            201 => accepted.push(last_segment(&reply.header("location").expect("Location"))),
            503 => {
                assert_retry_after_seconds(&reply);
                rejected += 1;
            }
            other => panic!("expected 201 or 503, got {other}: {}", reply.text()),
        }
    }
    assert_eq!(
        (accepted.len(), rejected),
        (3, 3),
        "with 1 job running and max_queued_jobs = 2: (accepted incl. the running one, rejected)"
    );
    for job_id in &accepted {
        server
            .wait_for_status(job_id, &["successful"], Duration::from_secs(15))
            .await;
    }
    // Once drained, the queue takes jobs again.
    server
        .execute_async("echo", &json!({ "inputs": { "stringInput": "again" } }))
        .await;
    server.shutdown().await;
}

#[tokio::test]
async fn raw_binary_output_is_served_as_bytes_with_its_media_type() {
    let server = super::server().start().await;
    let bytes: Vec<u8> = (0u8..=255).collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let request = json!({
        "inputs": {
            "stringInput": "x",
            "binaryInput": { "value": encoded, "mediaType": "image/png" }
        },
        "outputs": { "binaryInput": {} },
        "response": "raw"
    });
    let (job_id, reply) = server.execute_sync("echo", &request).await;
    assert!(
        reply.content_type().starts_with("image/png"),
        "content type {:?}",
        reply.content_type()
    );
    assert_eq!(reply.body, bytes, "raw body is the decoded bytes");
    let stored = server
        .get(&format!("/jobs/{job_id}/results/binaryInput"))
        .await;
    stored.expect_status(200);
    assert!(
        stored.content_type().starts_with("image/png"),
        "{:?}",
        stored.content_type()
    );
    assert_eq!(stored.body, bytes);
    server.shutdown().await;
}

#[tokio::test]
async fn sync_execution_past_the_sync_timeout_fails_with_wall_clock() {
    let server = super::server()
        .configure(|c| c.execution.sync_timeout = Duration::from_secs(1))
        .start()
        .await;
    let started = std::time::Instant::now();
    let reply = server.execute_echo("x", 5.0).await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the sync request took {:?} despite a 1 s sync timeout",
        started.elapsed()
    );
    let body = assert_error_exception(&reply, None);
    assert!(
        detail(&body).to_lowercase().contains("wall-clock"),
        "detail does not say why: {body}"
    );
    let failed = server.get_json("/jobs?status=failed").await;
    assert_eq!(failed["jobs"].as_array().map(Vec::len), Some(1), "{failed}");
    server.shutdown().await;
}

#[tokio::test]
async fn sync_timeout_is_one_deadline_for_waiting_and_running() {
    let server = one_worker_server(|c| c.execution.sync_timeout = Duration::from_secs(2)).await;
    let first = {
        let api = wasmproc_tests::Api::new(server.base());
        tokio::spawn(async move { api.execute_echo("first", 1.5).await })
    };
    // The first request holds the only worker...
    wait_for_a_running_job(&server).await;
    // ...so the second waits about 1.5 s of its 2 s, and cannot then run
    // for 1.5 s more: the deadline covers waiting and running together.
    let second = server.execute_echo("second", 1.5).await;
    let body = assert_error_exception(&second, None);
    assert_eq!(second.status, 500, "{body}");
    let reason = body["detail"].as_str().unwrap_or_default().to_owned();
    assert!(
        reason.contains("wall-clock limit") || reason.contains("synchronous timeout"),
        "the deadline is named: {reason}"
    );
    first.await.unwrap().expect_status(200);
    server.shutdown().await;
}

#[tokio::test]
async fn sync_requests_waiting_for_a_worker_are_bounded_with_503() {
    let server = one_worker_server(|c| c.execution.max_waiting_sync = 1).await;
    let spawn = |pause: f64| {
        let api = wasmproc_tests::Api::new(server.base());
        tokio::spawn(async move { api.execute_echo("x", pause).await })
    };
    let running = spawn(2.0);
    wait_for_a_running_job(&server).await;
    let waiting = spawn(0.0);
    // Let the second request reach the wait (it is answered only later).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let turned_away = server
        .execute("echo", &json!({ "inputs": { "stringInput": "third" } }))
        .await;
    assert_retry_later(&turned_away, 503);
    running.await.unwrap().expect_status(200);
    waiting.await.unwrap().expect_status(200);
    server.shutdown().await;
}

/// A sync client that goes away while its job runs does not cut the job
/// short: the job runs to its end and is recorded as it ended. (A sync job
/// starts on the HTTP thread that took its request and moves to the job
/// threads when it first waits, here at the guest's sleep; the handler,
/// dropped with the connection, must not take the job with it.)
#[tokio::test]
async fn a_sync_job_whose_client_went_away_still_runs_to_its_end() {
    let server = super::server().start().await;
    let impatient = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("reqwest client");
    let gone = impatient
        .post(server.url("/processes/echo/execution"))
        .json(&json!({ "inputs": { "stringInput": "left behind", "pause": 1 } }))
        .send()
        .await;
    assert!(
        gone.as_ref().is_err_and(reqwest::Error::is_timeout),
        "the client was to give up before the 1 s job ended: {gone:?}"
    );
    let jobs = server.get_json("/jobs?processID=echo").await;
    let job_id = jobs["jobs"][0]["jobID"]
        .as_str()
        .unwrap_or_else(|| panic!("the sync job is not listed: {jobs}"))
        .to_owned();
    let ended = server
        .wait_for_status(&job_id, &["successful"], JOB_TIMEOUT)
        .await;
    assert_eq!(ended["status"], "successful", "{ended}");
    let results = server.get_json(&format!("/jobs/{job_id}/results")).await;
    assert_eq!(output_value(&results, "stringInput"), json!("left behind"));
    server.shutdown().await;
}

/// With `execution.keep_sync_jobs = false`, a sync request leaves nothing
/// behind: its answer, a success or a failure, has no `Link rel=monitor`,
/// and no job is stored. What needs its record still has one: an async
/// job, and a sync job with a nested process (its step names it).
#[tokio::test]
async fn sync_jobs_not_kept_leave_no_record_and_no_monitor_link() {
    let server = super::server()
        .with_hostile()
        .configure(|c| c.execution.keep_sync_jobs = false)
        .start()
        .await;
    let jobs = async || -> Vec<Value> {
        server.get_json("/jobs?limit=100").await["jobs"]
            .as_array()
            .expect("jobs")
            .clone()
    };
    let reply = server.execute("hello-world", &hello_joe()).await;
    reply.expect_status(200);
    assert_eq!(reply.json(), json!("Hello Joe! hi"));
    assert_eq!(
        reply.link_header(REL_MONITOR),
        None,
        "{:?}",
        reply.header_all("link")
    );
    // A failure is answered as ever, without a job to look at.
    let failed = server
        .execute("hostile", &json!({ "inputs": { "behaviour": "panic" } }))
        .await;
    let body = assert_error_exception(&failed, None);
    assert!(detail(&body).to_lowercase().contains("trapped"), "{body}");
    assert_eq!(failed.link_header(REL_MONITOR), None);
    assert_eq!(jobs().await, Vec::<Value>::new(), "no sync job is stored");

    // An async job is stored as ever.
    let reply = server
        .execute_async_reply("hello-world", &hello_joe())
        .await;
    let id = created_job_succeeds(&server, &reply).await;
    // A sync job with a nested process is stored, and so is its step.
    let nested = json!({ "inputs": { "stringInput": {
        "process": "hello-world",
        "inputs": { "name": "Ann" }
    } } });
    let reply = server.execute("echo", &nested).await;
    reply.expect_status(200);
    let monitor = reply
        .link_header(REL_MONITOR)
        .expect("a kept job's monitor link");
    let parent = server.get_json(&monitor).await;
    assert_eq!(parent["status"], "successful", "{parent}");
    let mut listed: Vec<String> = jobs()
        .await
        .iter()
        .map(|job| job["jobID"].as_str().expect("jobID").to_owned())
        .collect();
    listed.sort();
    let step = server.only_step(&parent).await;
    let mut expected = vec![
        id,
        last_segment(&monitor),
        step["jobID"].as_str().expect("step jobID").to_owned(),
    ];
    expected.sort();
    assert_eq!(listed, expected);
    server.shutdown().await;
}
