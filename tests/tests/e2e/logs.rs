//! The server's own log as JSON lines (`log_format = "json"`): a request
//! id on every request (echoed as `x-request-id`) and the job id on every
//! line about a job, both as span fields.

use std::time::Duration;

use serde_json::{Value, json};
use wasmproc_tests::ChildConfig;

use super::BINARY;

const TOKEN: &str = "logs-token";

/// The JSON lines of a log (every line must be one).
fn json_lines(log: &str) -> Vec<Value> {
    log.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

/// The spans of a line with their fields (`[{"name": "request", …}]`).
fn spans(line: &Value) -> Vec<&Value> {
    line["spans"]
        .as_array()
        .map(|s| s.iter().collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn json_lines_carry_the_request_id_and_the_job_id() {
    let dir = tempfile::tempdir().unwrap();
    let config = ChildConfig::write(
        dir.path(),
        &format!("log_format = \"json\"\n[auth]\nadmin_token = \"{TOKEN}\"\n"),
    );
    let server = config.spawn_with_env(BINARY, &[("RUST_LOG", "info,wasmproc=debug")]);
    // A request id sent by the client is echoed and logged...
    let wasm = std::fs::read(wasmproc_tests::HOSTILE_WASM).unwrap();
    let reply = server
        .send(
            reqwest::Method::POST,
            "/processes",
            &[
                ("authorization", &format!("Bearer {TOKEN}")),
                ("content-type", "application/wasm"),
                ("x-request-id", "req-from-the-client-42"),
            ],
            Some(wasm.clone()),
        )
        .await;
    reply.expect_status(201);
    assert_eq!(
        reply.header("x-request-id").as_deref(),
        Some("req-from-the-client-42")
    );
    // ...and one is made up when the client sends none.
    let reply = server.get("/processes").await;
    let made_up = reply.header("x-request-id").expect("a request id");
    assert!(uuid::Uuid::parse_str(&made_up).is_ok(), "{made_up}");

    let (job, _) = server
        .run_until("echo", json!({"stringInput": "x"}), &["successful"])
        .await;
    let sync_job = server.hello_job().await;
    // The outcome lines are written before the job reads as finished, but
    // give the writer a moment to flush stderr: poll, bounded.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let lines = loop {
        let lines = json_lines(&server.stderr());
        let finished = |id: &str| {
            lines
                .iter()
                .any(|l| l["fields"]["message"] == "job finished" && l["fields"]["job"] == id)
        };
        if (finished(&job) && finished(&sync_job)) || std::time::Instant::now() > deadline {
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let deployed = lines
        .iter()
        .find(|l| l["fields"]["message"] == "deployed")
        .unwrap_or_else(|| panic!("no 'deployed' line:\n{}", server.stderr()));
    assert!(
        spans(deployed)
            .iter()
            .any(|s| s["name"] == "request" && s["request_id"] == "req-from-the-client-42"),
        "{deployed}"
    );
    for id in [&job, &sync_job] {
        let about: Vec<&Value> = lines
            .iter()
            .filter(|l| l.to_string().contains(id.as_str()))
            .collect();
        assert!(
            !about.is_empty(),
            "no line about job {id}:\n{}",
            server.stderr()
        );
        for line in about {
            assert!(
                spans(line)
                    .iter()
                    .any(|s| s["name"] == "job" && s["job"] == id.as_str()),
                "a line about job {id} outside its span: {line}"
            );
        }
    }
    // The sync job ran inside its request: its lines carry both ids.
    let finished = lines
        .iter()
        .find(|l| {
            l["fields"]["message"] == "job finished" && l["fields"]["job"] == sync_job.as_str()
        })
        .expect("the sync job's outcome line");
    assert!(
        spans(finished).iter().any(|s| s["name"] == "request"),
        "{finished}"
    );

    // Restarted with a processes directory holding a module of the same id
    // as the deployed `hostile`: the directory's takes the id, and a
    // warning says which deployed process it replaced.
    server.kill9();
    let processes = dir.path().join("processes");
    std::fs::create_dir_all(&processes).unwrap();
    std::fs::write(processes.join("hostile.wasm"), &wasm).unwrap();
    let config = ChildConfig::write(
        dir.path(),
        &format!("log_format = \"json\"\nprocesses_dir = {processes:?}\n"),
    )
    .logging_to("stderr-restarted.log");
    let server = config.spawn_with_env(BINARY, &[("RUST_LOG", "info")]);
    let replaced = json_lines(&server.stderr()).into_iter().find(|l| {
        l["level"] == "WARN"
            && l["fields"]["process"] == "hostile"
            && l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("takes the id of a deployed process"))
    });
    assert!(replaced.is_some(), "no warning:\n{}", server.stderr());
    server.get("/processes/hostile").await.expect_status(200);
}
