//! Retention: finished jobs and their results are deleted after
//! `job_retention`; running jobs are kept.

use std::time::Duration;

use serde_json::json;
use wasmproc_tests::TestServer;

#[tokio::test]
async fn finished_jobs_are_removed_after_the_retention_period() {
    let server = TestServer::builder()
        .configure(|c| c.execution.job_retention = Duration::from_millis(300))
        .start()
        .await;
    let (finished, _) = server
        .execute_sync("hello-world", &json!({ "inputs": { "name": "old" } }))
        .await;
    let running = server.start_echo("x", 3.0).await;
    server
        .wait_until_job_gone(&finished, "the finished job was never removed")
        .await;
    server
        .get(&format!("/jobs/{finished}/results"))
        .await
        .expect_status(404);
    // Still running, so still there.
    let status = server.job(&running).await;
    assert_eq!(status["status"], "running", "{status}");
    server.shutdown().await;
}
