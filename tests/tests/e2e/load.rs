//! Concurrent load: many async submissions at once are all accepted, made
//! durable and completed (a regression test for a storage deadlock that
//! hung the server after ~20 concurrent submissions).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use wasmproc_tests::{TestServer, fan_out};

const SUBMISSIONS: usize = 400;
const CONCURRENCY: usize = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_async_submissions_are_all_accepted_and_completed() {
    let server = Arc::new(TestServer::start().await);
    let started = Instant::now();
    let submit = |server: Arc<TestServer>, i| async move {
        let request = json!({ "inputs": { "name": format!("n{i}") } });
        let submit = server.execute_async("hello-world", &request);
        tokio::time::timeout(Duration::from_secs(20), submit)
            .await
            .unwrap_or_else(|_| panic!("submission {i} hung"))
    };
    let ids = fan_out(SUBMISSIONS, CONCURRENCY, server.clone(), submit).await;
    assert_eq!(ids.len(), SUBMISSIONS);
    for id in &ids {
        let remaining = Duration::from_secs(60).saturating_sub(started.elapsed());
        let status = server
            .wait_for_status(id, &["successful"], remaining.max(Duration::from_secs(1)))
            .await;
        assert_eq!(status["status"], "successful", "{status}");
    }
    // Reads still answer, and the list sees them all.
    let list = server
        .get_json(&format!("/jobs?limit={SUBMISSIONS}&processID=hello-world"))
        .await;
    assert_eq!(list["jobs"].as_array().map(Vec::len), Some(SUBMISSIONS));
    match Arc::try_unwrap(server) {
        Ok(server) => server.shutdown().await,
        Err(_) => panic!("server still shared"),
    }
}
