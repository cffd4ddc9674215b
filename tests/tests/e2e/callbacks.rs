//! Callbacks to the `subscriber` URLs of an async execute request.

use std::time::Duration;

use serde_json::{Value, json};
use wasmproc_tests::{
    CallbackReceiver, TestServer, assert_valid, is_json_media_type, output_value,
};

const CALLBACK_TIMEOUT: Duration = Duration::from_secs(10);

fn subscriber(receiver: &CallbackReceiver) -> Value {
    json!({
        "successUri": receiver.url("/success"),
        "failedUri": receiver.url("/failed"),
        "inProgressUri": receiver.url("/progress"),
    })
}

#[tokio::test]
async fn successful_job_posts_its_results_to_the_success_uri() {
    let receiver = CallbackReceiver::start().await;
    let server = TestServer::start().await;
    let request = json!({
        "inputs": { "name": "Joe", "message": "hi" },
        "subscriber": subscriber(&receiver),
    });
    assert_valid("execute.yaml", &request);
    let job_id = server.execute_async("hello-world", &request).await;

    let callback = receiver.wait_for("/success", CALLBACK_TIMEOUT).await;
    assert_eq!(callback.method, "POST");
    assert!(
        callback
            .content_type
            .as_deref()
            .is_some_and(is_json_media_type),
        "callback content type {:?}",
        callback.content_type
    );
    let results = callback.json();
    assert_valid("results.yaml", &results);
    assert_eq!(output_value(&results, "echo"), json!("Hello Joe! hi"));

    assert_eq!(server.job(&job_id).await["status"], "successful");
    assert!(
        receiver.received().iter().all(|c| c.path != "/failed"),
        "a successful job called the failed URI"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn failed_job_posts_its_status_info_to_the_failed_uri() {
    let receiver = CallbackReceiver::start().await;
    let server = TestServer::builder().with_hostile().start().await;
    let request = json!({
        "inputs": { "behaviour": "panic" },
        "subscriber": subscriber(&receiver),
    });
    let job_id = server.execute_async("hostile", &request).await;

    let callback = receiver.wait_for("/failed", CALLBACK_TIMEOUT).await;
    assert_eq!(callback.method, "POST");
    let status_info = callback.json();
    assert_valid("statusInfo.yaml", &status_info);
    assert_eq!(status_info["status"], "failed");
    assert_eq!(status_info["jobID"], job_id.as_str());
    assert!(
        status_info["message"]
            .as_str()
            .is_some_and(|m| m.contains("trapped")),
        "{status_info}"
    );
    assert!(
        receiver.received().iter().all(|c| c.path != "/success"),
        "a failed job called the success URI"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn subscriber_with_only_a_success_uri_is_accepted() {
    let receiver = CallbackReceiver::start().await;
    let server = TestServer::start().await;
    let request = json!({
        "inputs": { "name": "Ann" },
        "subscriber": { "successUri": receiver.url("/only-success") },
    });
    server.execute_async("hello-world", &request).await;
    let callback = receiver.wait_for("/only-success", CALLBACK_TIMEOUT).await;
    assert_eq!(output_value(&callback.json(), "echo"), json!("Hello Ann!"));
    server.shutdown().await;
}
