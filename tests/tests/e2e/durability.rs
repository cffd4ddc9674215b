//! Jobs and results survive a graceful restart and a kill -9.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wasmproc_tests::{Api, JOB_TIMEOUT, POLL_INTERVAL, assert_valid};

use super::BINARY;

#[tokio::test]
async fn finished_jobs_and_results_survive_a_graceful_restart() {
    let server = super::server().start().await;
    let hello = server
        .execute_async(
            "hello-world",
            &json!({ "inputs": { "name": "Joe", "message": "hi" } }),
        )
        .await;
    let echo = server
        .execute_async(
            "echo",
            &json!({ "inputs": { "stringInput": "kept", "arrayInput": [4, 5] } }),
        )
        .await;
    let mut before = BTreeMap::new();
    for job_id in [&hello, &echo] {
        let status_info = server
            .wait_for_status(job_id, &["successful"], JOB_TIMEOUT)
            .await;
        let results = server.get_json(&format!("/jobs/{job_id}/results")).await;
        before.insert(job_id.clone(), (status_info, results));
    }
    // A job still waiting or running when the server stops.
    let pending = server.start_echo("late", 1.0).await;

    let server = server.restart().await;
    for (job_id, (status_info, results)) in &before {
        let after = server.job(job_id).await;
        for field in [
            "status",
            "processID",
            "created",
            "started",
            "finished",
            "progress",
        ] {
            assert_eq!(
                after[field], status_info[field],
                "{field} of {job_id} changed"
            );
        }
        let after_results = server.get_json(&format!("/jobs/{job_id}/results")).await;
        assert_valid("results.yaml", &after_results);
        assert_eq!(&after_results, results, "results of {job_id} changed");
    }
    let listed = server.get_json("/jobs").await;
    assert_eq!(listed["jobs"].as_array().map(Vec::len), Some(3), "{listed}");
    // The pending job was not lost: it ran before the stop completed, or
    // waited in the queue for the restarted server (never for a lease:
    // see `a_job_submitted_as_the_server_stops_runs_once`).
    let ended = server
        .wait_for_status(&pending, &["successful", "failed"], JOB_TIMEOUT)
        .await;
    assert_valid("statusInfo.yaml", &ended);
    // And the restarted server runs new jobs.
    server
        .assert_answers("hello-world", json!({ "name": "Ann" }), json!("Hello Ann!"))
        .await;
    server.shutdown().await;
}

/// A job submitted in the instant the server stops runs once: before the
/// stop completes, or after the restart. A stopping node that claimed it
/// and then went away without running it or putting it back left it to
/// its lease (PostgreSQL: it ran again a lease later, counted as a second
/// attempt). The race is narrow, so the test stops the server right after
/// a submission many times over; with the bug, about one round in 25
/// lost its job on PostgreSQL.
#[tokio::test]
async fn a_job_submitted_as_the_server_stops_runs_once() {
    const ROUNDS: usize = 40;
    let mut server = super::server()
        .configure(|c| {
            c.cluster.lease = Duration::from_secs(2);
            c.cluster.heartbeat = Duration::from_millis(500);
        })
        .start()
        .await;
    for round in 0..ROUNDS {
        let job = server
            .execute_async("echo", &json!({ "inputs": { "stringInput": "stop" } }))
            .await;
        server = server.restart().await;
        let ended = server
            .wait_for_status(&job, &["successful", "failed"], JOB_TIMEOUT)
            .await;
        assert_eq!(ended["status"], "successful", "round {round}: {ended}");
        assert!(
            ended.get("attempts").is_none(),
            "round {round}: the stopping server claimed the job and left it to its lease: {ended}"
        );
    }
    server.shutdown().await;
}

/// Poll every job until none is `accepted` or `running` (at most `timeout`);
/// returns the final statusInfo of each.
async fn wait_all_final(api: &Api, ids: &[String], timeout: Duration) -> Vec<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut all = Vec::new();
        for job_id in ids {
            let reply = api.get(&format!("/jobs/{job_id}")).await;
            assert_eq!(
                reply.status,
                200,
                "job {job_id} lost after the crash: {}",
                reply.text()
            );
            all.push(reply.json());
        }
        let pending: Vec<&Value> = all
            .iter()
            .filter(|s| s["status"] == "accepted" || s["status"] == "running")
            .collect();
        if pending.is_empty() {
            return all;
        }
        assert!(
            Instant::now() < deadline,
            "jobs still pending {timeout:?} after the restart: {pending:?}"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

#[tokio::test]
async fn kill_9_mid_run_loses_no_accepted_job() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (config, _database) = super::child_config(dir.path(), 1).await;
    let child = config.spawn(BINARY);
    let mut ids = Vec::new();
    for i in 0..10 {
        // Long enough to catch the second one running, short enough that
        // the ten, one at a time, do not make the test slow.
        let pause = if i % 2 == 0 { 0.4 } else { 0.6 };
        let request = json!({ "inputs": { "stringInput": format!("job {i}"), "pause": pause } });
        ids.push(child.execute_async("echo", &request).await);
    }
    // Kill while the second job runs and eight wait.
    let first = child
        .wait_for_status(&ids[0], &["successful"], JOB_TIMEOUT)
        .await;
    assert_valid("statusInfo.yaml", &first);
    child
        .wait_for_status(&ids[1], &["running"], JOB_TIMEOUT)
        .await;
    child.kill9();

    let child = config.spawn(BINARY);
    let finals = wait_all_final(&child, &ids, Duration::from_secs(30)).await;
    let mut problems = Vec::new();
    for status_info in &finals {
        assert_valid("statusInfo.yaml", status_info);
        let message = status_info["message"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase();
        match status_info["status"].as_str() {
            Some("successful") => {
                let job_id = status_info["jobID"].as_str().unwrap_or_default();
                let results = child.get(&format!("/jobs/{job_id}/results")).await;
                if results.status != 200 {
                    problems.push(format!(
                        "results of successful {job_id}: {}",
                        results.status
                    ));
                }
            }
            Some("failed") if message.contains("restart") || message.contains("interrupt") => {}
            _ => problems.push(format!("unexpected final state: {status_info}")),
        }
    }
    assert_eq!(
        finals[0]["status"], "successful",
        "the job finished before the crash"
    );
    assert!(
        problems.is_empty(),
        "{}\nserver stderr:\n{}",
        problems.join("\n"),
        child.stderr()
    );
    child.kill9();
}
