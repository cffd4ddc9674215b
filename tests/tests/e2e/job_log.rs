//! `GET /jobs/{id}/log`: the guest's lines with times, framed by the job
//! record, the failure reason last; linked from statusInfo; protected like
//! the job; bounded by `log_bytes`.

use serde_json::json;
use wasmproc_tests::{ADMIN_BEARER, JOB_TIMEOUT, TestServer, assert_exception, body_link};

/// Every line starts with an RFC 3339 time.
fn assert_timestamped(log: &str) {
    for line in log.lines() {
        let time = line.split(' ').next().unwrap_or_default();
        assert!(
            chrono::DateTime::parse_from_rfc3339(time).is_ok(),
            "line without a time: {line:?}\n{log}"
        );
    }
}

#[tokio::test]
async fn a_successful_jobs_log_is_linked_from_its_status_and_framed_by_its_record() {
    let server = TestServer::start().await;
    let job = server.hello_job().await;
    let status = server.job(&job).await;
    let link = status["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["rel"] == "log")
        .unwrap_or_else(|| panic!("no rel=log link: {status}"));
    assert_eq!(link["type"], "text/plain");
    let href = body_link(&status, "log").unwrap();
    assert!(href.ends_with(&format!("/jobs/{job}/log")), "{href}");
    let reply = server.get(&href).await;
    reply.expect_status(200);
    assert!(
        reply.content_type().starts_with("text/plain"),
        "{}",
        reply.content_type()
    );
    let log = reply.text();
    assert_timestamped(&log);
    let lines: Vec<&str> = log.lines().collect();
    assert!(
        lines[0].contains(&format!(
            "[wasmproc] job {job} of process 'hello-world' accepted (sync)"
        )),
        "{log}"
    );
    assert!(lines[1].contains("[wasmproc] started"), "{log}");
    assert!(
        lines.last().unwrap().ends_with("[wasmproc] successful"),
        "{log}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_failed_jobs_log_has_the_guests_stderr_and_the_reason_last() {
    let server = TestServer::builder().with_hostile().start().await;
    let (job, _) = server.failed_hostile("panic").await;
    let log = server.get(&format!("/jobs/{job}/log")).await.text();
    assert_timestamped(&log);
    assert!(
        log.lines()
            .any(|l| l.contains("[stderr]") && l.contains("panicked on purpose")),
        "{log}"
    );
    let last = log.lines().last().unwrap();
    assert!(last.contains("[wasmproc] failed (trap):"), "{log}");
    assert!(log.contains("accepted (async)"), "{log}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_flooded_log_is_bounded_and_says_so() {
    let server = TestServer::builder().with_hostile().start().await;
    let job = server
        .execute_async("hostile", &json!({"inputs": {"behaviour": "log-flood"}}))
        .await;
    // The flood may use up the small fuel budget of hostile_limits once
    // the log is full: either way the log stays bounded.
    let status = server
        .wait_for_status(&job, &["successful", "failed"], JOB_TIMEOUT)
        .await;
    let log = server.get(&format!("/jobs/{job}/log")).await.text();
    let last = log.lines().last().unwrap();
    match status["status"].as_str() {
        Some("failed") => assert!(
            last.contains("[wasmproc] failed (fuel-exhausted)"),
            "{last}"
        ),
        _ => assert!(last.ends_with("[wasmproc] successful"), "{last}"),
    }
    // 64 KiB of guest lines (hostile_limits) plus a few framing lines.
    assert!(log.len() < 64 * 1024 + 4096, "{} bytes", log.len());
    assert!(
        log.contains("log limit of 65536 bytes reached"),
        "{}",
        &log[log.len() - 300..]
    );
    for source in ["[info] x", "[stdout] x", "[stderr] x"] {
        assert!(log.contains(source), "no {source} line");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn the_log_is_protected_like_the_job() {
    let server = TestServer::builder()
        .with_admin_token()
        .configure(|c| c.auth.protect_jobs = true)
        .start()
        .await;
    let reply = server
        .post_json(
            "/processes/hello-world/execution",
            &json!({"inputs": {"name": "Joe"}}),
            &[("authorization", ADMIN_BEARER)],
        )
        .await;
    reply.expect_status(200);
    let job = wasmproc_tests::last_segment(&reply.link_header("monitor").unwrap());
    let path = format!("/jobs/{job}/log");
    assert_exception(&server.get(&path).await, 401, None);
    let reply = server
        .get_with(&path, &[("authorization", ADMIN_BEARER)])
        .await;
    reply.expect_status(200);
    assert_exception(
        &server
            .get_with(
                "/jobs/00000000-0000-4000-8000-000000000000/log",
                &[("authorization", ADMIN_BEARER)],
            )
            .await,
        404,
        Some("no-such-job"),
    );
    server.shutdown().await;
}
