//! The `hostile` process (from a processes directory, with small limits):
//! each attack fails only its own job, with a message naming the limit.
//! The guest boundary: malformed results fail their job naming the output,
//! and a `describe()` that is no valid description (`hostile-describe`)
//! refuses the deploy with a 400 saying why.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use wasmproc_tests::{
    ADMIN_TOKEN, JOB_TIMEOUT, Reply, TestServer, assert_error_exception, assert_valid,
    check_exception, detail, hostile_describe_wasm, hostile_limits, set_limits,
};

async fn hostile_server() -> TestServer {
    hostile_server_with(|_| {}).await
}

/// A server of only the `hostile` process (no built-ins to compile),
/// with [`hostile_limits`], then `change`d: more workers, the limits of a
/// test.
async fn hostile_server_with(change: impl FnOnce(&mut wasmproc::config::Config)) -> TestServer {
    TestServer::builder()
        .configure(|c| c.builtin_processes = false)
        .with_hostile()
        .configure(change)
        .start()
        .await
}

/// `hostile` limited to `fuel` and a wall clock of `timeout`, otherwise
/// [`hostile_limits`].
fn limit_hostile(config: &mut wasmproc::config::Config, fuel: u64, timeout: Duration) {
    let limits = wasmproc::runtime::Limits {
        fuel,
        timeout,
        ..hostile_limits()
    };
    set_limits(config, "hostile", limits);
}

fn behaviour(name: &str) -> Value {
    json!({ "inputs": { "behaviour": name } })
}

/// Run `attack` asynchronously; it must fail naming `reason`
/// ([`assert_failed_naming`]).
async fn assert_fails_with(server: &TestServer, attack: Value, reason: &str) {
    let job_id = server.execute_async("hostile", &attack).await;
    assert_failed_naming(server, &job_id, &attack.to_string(), reason).await;
}

/// Wait for job `job_id` (the attack `what`) to end: it must have failed,
/// with a message containing `reason`, and its results must be an
/// exception carrying it too.
async fn assert_failed_naming(server: &TestServer, job_id: &str, what: &str, reason: &str) {
    let status_info = server
        .wait_for_status(job_id, &["failed", "successful"], JOB_TIMEOUT)
        .await;
    assert_eq!(status_info["status"], "failed", "{what}: {status_info}");
    let message = status_info["message"].as_str().unwrap_or_default();
    assert!(
        message.to_lowercase().contains(reason),
        "{what}: message {message:?} does not name {reason:?}: {status_info}"
    );
    assert!(status_info.get("finished").is_some(), "{status_info}");
    let reply = server.get(&format!("/jobs/{job_id}/results")).await;
    let body = assert_error_exception(&reply, None);
    assert!(
        detail(&body).to_lowercase().contains(reason),
        "{what}: results exception does not carry {reason:?}: {body}"
    );
}

/// Each attack of the hostile process, with the words its job's failure
/// must carry: the limit it hit, or what it was refused. `size` where the
/// attack needs one.
const ATTACKS: &[(&str, Option<u64>, &str)] = &[
    ("infinite-loop", None, "fuel"),
    ("memory-bomb", None, "memory"),
    ("endless-sleep", None, "wall-clock"),
    ("panic", None, "trapped"),
    ("deep-recursion", None, "trapped"),
    ("huge-output", Some(2 * 1024 * 1024), "output"),
    ("exit", None, "exit"),
    ("process-error", None, "refusing on purpose"),
    // The component imports wasi:filesystem and wasi:sockets (Rust's std
    // pulls them in for std::fs and std::net), so it deploys; at run time
    // there is no directory to open and no network to reach.
    ("read-file", None, "reading /etc/passwd failed"),
    ("open-socket", None, "connecting to 127.0.0.1:9 failed"),
];

/// Every attack at once on one server, beside `hello-world`: each fails
/// only its own job (status `failed`, a message and a results exception
/// naming its limit), `hello-world` answers while they run and after, and
/// a failing sync request is answered with the exception and stored as a
/// failed job. The process itself came from the processes directory.
#[tokio::test]
async fn each_attack_fails_only_its_own_job_naming_its_limit() {
    let server = TestServer::builder().with_hostile().start().await;
    let description = server.get_json("/processes/hostile").await;
    assert_valid("process.yaml", &description);

    let mut jobs = Vec::new();
    for (name, size, reason) in ATTACKS {
        let mut attack = behaviour(name);
        if let Some(size) = size {
            attack["inputs"]["size"] = json!(size);
        }
        jobs.push((
            server.execute_async("hostile", &attack).await,
            *name,
            *reason,
        ));
    }
    for _ in 0..3 {
        server
            .assert_answers("hello-world", json!({ "name": "Joe" }), json!("Hello Joe!"))
            .await;
    }
    for (job_id, name, reason) in &jobs {
        assert_failed_naming(&server, job_id, name, reason).await;
    }

    // Sync: the answer is the exception, and the job is stored as failed.
    let reply = server.execute("hostile", &behaviour("panic")).await;
    let body = assert_error_exception(&reply, None);
    assert!(
        detail(&body).to_lowercase().contains("trapped"),
        "detail does not say why: {body}"
    );
    let failed = server
        .get_json("/jobs?processID=hostile&status=failed&limit=100")
        .await;
    assert_eq!(
        failed["jobs"].as_array().map(Vec::len),
        Some(ATTACKS.len() + 1),
        "every attack, and the sync one, stored as failed: {failed}"
    );

    // And after all of them, the server still works.
    server
        .assert_answers("hello-world", json!({ "name": "Ann" }), json!("Hello Ann!"))
        .await;
    server.shutdown().await;
}

#[tokio::test]
async fn status_reads_stay_fast_while_every_worker_burns_cpu() {
    let server = hostile_server_with(|c| {
        c.execution.max_concurrent_jobs = 2;
        limit_hostile(c, 1_000_000_000_000, Duration::from_secs(2));
    })
    .await;
    let loops = [
        server
            .execute_async("hostile", &behaviour("infinite-loop"))
            .await,
        server
            .execute_async("hostile", &behaviour("infinite-loop"))
            .await,
    ];
    for job_id in &loops {
        server
            .wait_for_status(job_id, &["running"], JOB_TIMEOUT)
            .await;
    }
    let mut slowest = Duration::ZERO;
    for _ in 0..10 {
        let started = std::time::Instant::now();
        server.job(&loops[0]).await;
        server.get_json("/processes").await;
        slowest = slowest.max(started.elapsed());
    }
    assert!(
        slowest < Duration::from_millis(500),
        "a status read took {slowest:?} while the guests ran"
    );
    for job_id in &loops {
        let failed = server
            .wait_for_status(job_id, &["failed"], JOB_TIMEOUT)
            .await;
        assert!(
            failed["message"]
                .as_str()
                .is_some_and(|m| m.contains("wall-clock")),
            "{failed}"
        );
    }
    server.shutdown().await;
}

/// Malformed results (issue 14, item 11): a `json` value that is not JSON,
/// an output id the description does not declare, a media type that
/// contradicts the declared one. Each fails its job, async or sync, with a
/// reason naming the output; the sync answer is the `job-failed` exception,
/// never an internal error; nothing of it is served as a result.
#[tokio::test]
async fn malformed_outputs_fail_the_job_naming_the_output() {
    let server = hostile_server().await;
    let cases = [
        ("invalid-json", "output 'result'", "not valid json"),
        ("undeclared-output", "output 'surprise'", "does not declare"),
        ("wrong-media-type", "output 'image'", "text/html"),
        ("null-output", "output 'result'", "null is not of type"),
    ];
    for (name, output, problem) in cases {
        assert_fails_with(&server, behaviour(name), output).await;
        assert_fails_with(&server, behaviour(name), problem).await;
        let reply = server.execute("hostile", &behaviour(name)).await;
        let body = assert_error_exception(&reply, None);
        assert_eq!(
            body["type"], "urn:wasmproc:error:job-failed",
            "{name}: a failed job, not a server error: {body}"
        );
        let detail = detail(&body).to_lowercase();
        assert!(
            detail.contains(output) && detail.contains(problem),
            "{name}: the sync answer must name {output} and {problem:?}: {body}"
        );
    }
    // The server carries on: a well-formed run of the same process works.
    let reply = server.execute("hostile", &behaviour("process-error")).await;
    assert!(detail(&reply.json()).contains("refusing on purpose"));
    server.shutdown().await;
}

/// `POST /processes` with a component, as the admin.
async fn deploy_wasm(server: &TestServer, wasm: Vec<u8>) -> Reply {
    server
        .send_as_admin(
            ADMIN_TOKEN,
            Method::POST,
            "/processes",
            "application/wasm",
            Some(wasm),
        )
        .await
}

/// A `describe()` that is not a valid process description refuses the
/// deploy with a 400 that says what is wrong; nothing is deployed. The same
/// component with a valid description deploys and runs, so each refusal is
/// the description's doing.
#[tokio::test]
async fn a_describe_that_is_no_valid_description_refuses_the_deploy() {
    let server = TestServer::builder()
        .with_admin_token()
        .configure(|c| c.builtin_processes = false)
        .start()
        .await;
    let cases = [
        ("not-json", "valid json"),
        ("not-an-object", "json object"),
        ("missing-version", "version"),
        ("bad-id", "id '../../etc/passwd'"),
        ("bad-input-schema", "input 'x'"),
        ("bad-output-schema", "output 'result'"),
        ("occurs-contradiction", "minoccurs"),
        ("oversized", "larger than the limit"),
    ];
    let mut wrong = Vec::new();
    for (variant, reason) in cases {
        let reply = deploy_wasm(&server, hostile_describe_wasm(variant)).await;
        match check_exception(&reply, Some(400), None) {
            Err(problem) => wrong.push(format!("{variant}: {problem}")),
            Ok(body) if !detail(&body).to_lowercase().contains(reason) => wrong.push(format!(
                "{variant}: the refusal must say {reason:?}: {body}"
            )),
            Ok(_) => {}
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    let listed = server.get_json("/processes").await;
    assert_eq!(
        listed["processes"].as_array().map(Vec::len),
        Some(0),
        "a refused module was deployed: {listed}"
    );

    deploy_wasm(&server, hostile_describe_wasm("valid"))
        .await
        .expect_status(201);
    server
        .assert_answers("hostile-describe", json!({}), json!("described"))
        .await;
    server.shutdown().await;
}

/// A guest that reports progress a million times in a tight loop: the
/// reports are kept in memory and written at most every 250 ms, so the job
/// finishes well inside a 5 s wall-clock limit (writing each report — a
/// read and a write of the job record, about 10 µs or more — would take
/// over 10 s), and its final record carries the last report.
#[tokio::test]
async fn a_million_progress_reports_are_not_a_million_writes() {
    let server =
        hostile_server_with(|c| limit_hostile(c, 5_000_000_000, Duration::from_secs(5))).await;
    let job_id = server
        .execute_async("hostile", &behaviour("progress-storm"))
        .await;
    let done = server
        .wait_for_status(&job_id, &["successful"], Duration::from_secs(20))
        .await;
    assert_eq!(done["progress"], 100, "{done}");
    server.shutdown().await;
}
