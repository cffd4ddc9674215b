//! Callbacks to the `subscriber` URLs of an async execute request, and the
//! SSRF guard on them (`callbacks.allowed_hosts`).

use std::time::Duration;

use serde_json::{Value, json};
use wasmproc_tests::{
    CallbackReceiver, TestServer, assert_exception, assert_valid, detail, is_json_media_type,
    output_value,
};

const CALLBACK_TIMEOUT: Duration = Duration::from_secs(10);

/// A server that may call back the receivers of these tests, on 127.0.0.1
/// (loopback is refused unless allow-listed).
async fn server_calling_loopback(hostile: bool) -> TestServer {
    let builder =
        TestServer::builder().configure(|c| c.callbacks.allowed_hosts = vec!["127.0.0.1".into()]);
    let builder = if hostile {
        builder.with_hostile()
    } else {
        builder
    };
    builder.start().await
}

fn subscriber(receiver: &CallbackReceiver) -> Value {
    json!({
        "successUri": receiver.url("/success"),
        "failedUri": receiver.url("/failed"),
        "inProgressUri": receiver.url("/progress"),
    })
}

/// Panic unless no callback `receiver` got so far went to `path`: the URI
/// of the outcome that `job` did not have.
fn assert_never_called(receiver: &CallbackReceiver, path: &str, job: &str) {
    let received = receiver.received();
    assert!(
        received.iter().all(|c| c.path != path),
        "{job} called {path}: {:?}",
        received.iter().map(|c| &c.path).collect::<Vec<_>>()
    );
}

/// A job's callback as received, with what the test needs to look at it.
struct Called {
    receiver: CallbackReceiver,
    server: TestServer,
    job_id: String,
    /// The callback's JSON body, already checked against its schema.
    body: Value,
}

/// Run `process` async with `inputs` and a subscriber for every outcome,
/// wait for the callback to `path`, and check what every callback must be:
/// a POST with a JSON body valid against `schema`. The request itself is
/// checked against `execute.yaml` first, so that a passing test cannot rest
/// on a request the standard does not allow.
async fn callback_of(
    hostile: bool,
    process: &str,
    inputs: Value,
    path: &str,
    schema: &str,
) -> Called {
    let receiver = CallbackReceiver::start().await;
    let server = server_calling_loopback(hostile).await;
    let request = json!({ "inputs": inputs, "subscriber": subscriber(&receiver) });
    assert_valid("execute.yaml", &request);
    let job_id = server.execute_async(process, &request).await;

    let callback = receiver.wait_for(path, CALLBACK_TIMEOUT).await;
    assert_eq!(callback.method, "POST");
    assert!(
        callback
            .content_type
            .as_deref()
            .is_some_and(is_json_media_type),
        "callback content type {:?}",
        callback.content_type
    );
    let body = callback.json();
    assert_valid(schema, &body);
    Called {
        receiver,
        server,
        job_id,
        body,
    }
}

#[tokio::test]
async fn successful_job_posts_its_results_to_the_success_uri() {
    let Called {
        receiver,
        server,
        job_id,
        body: results,
    } = callback_of(
        false,
        "hello-world",
        json!({ "name": "Joe", "message": "hi" }),
        "/success",
        "results.yaml",
    )
    .await;
    assert_eq!(output_value(&results, "echo"), json!("Hello Joe! hi"));

    assert_eq!(server.job(&job_id).await["status"], "successful");
    assert_never_called(&receiver, "/failed", "a successful job");
    server.shutdown().await;
}

#[tokio::test]
async fn failed_job_posts_its_status_info_to_the_failed_uri() {
    let Called {
        receiver,
        server,
        job_id,
        body: status_info,
    } = callback_of(
        true,
        "hostile",
        json!({ "behaviour": "panic" }),
        "/failed",
        "statusInfo.yaml",
    )
    .await;
    assert_eq!(status_info["status"], "failed");
    assert_eq!(status_info["jobID"], job_id.as_str());
    assert!(
        status_info["message"]
            .as_str()
            .is_some_and(|m| m.contains("trapped")),
        "{status_info}"
    );
    assert_never_called(&receiver, "/success", "a failed job");
    server.shutdown().await;
}

#[tokio::test]
async fn subscriber_with_only_a_success_uri_is_accepted() {
    let receiver = CallbackReceiver::start().await;
    let server = server_calling_loopback(false).await;
    let request = json!({
        "inputs": { "name": "Ann" },
        "subscriber": { "successUri": receiver.url("/only-success") },
    });
    server.execute_async("hello-world", &request).await;
    let callback = receiver.wait_for("/only-success", CALLBACK_TIMEOUT).await;
    assert_eq!(output_value(&callback.json(), "echo"), json!("Hello Ann!"));
    server.shutdown().await;
}

/// Callback URIs get the guard of `href` inputs: a loopback, private or
/// non-http URI (with `callbacks.allowed_hosts` empty, the default) is
/// refused at submission with a 400 naming the field, sync or async, before
/// any job exists; so nothing is ever sent to it.
#[tokio::test]
async fn callback_uris_to_non_public_addresses_are_refused_at_submission() {
    let receiver = CallbackReceiver::start().await;
    let server = TestServer::start().await;
    let cases = [
        ("successUri", receiver.url("/success"), "non-public"),
        ("inProgressUri", receiver.url("/progress"), "non-public"),
        ("failedUri", receiver.url("/failed"), "non-public"),
        (
            "failedUri",
            "http://10.1.2.3/failed".to_owned(),
            "non-public",
        ),
        ("successUri", "http://[::1]:9/x".to_owned(), "non-public"),
        (
            "successUri",
            "ftp://example.org/x".to_owned(),
            "only http and https",
        ),
        ("inProgressUri", "not a url".to_owned(), "not a URL"),
    ];
    for (field, uri, reason) in &cases {
        let request = json!({
            "inputs": { "name": "Joe" },
            "subscriber": { *field: uri },
        });
        for reply in [
            server.execute_async_reply("hello-world", &request).await,
            server.execute("hello-world", &request).await,
        ] {
            let body = assert_exception(&reply, 400, None);
            let detail = detail(&body);
            assert!(
                detail.contains(&format!("subscriber.{field}")) && detail.contains(reason),
                "{field} = {uri}: the detail must name the field and say why: {body}"
            );
        }
    }
    let jobs = server.get_json("/jobs").await;
    assert_eq!(
        jobs["jobs"].as_array().map(Vec::len),
        Some(0),
        "refused requests created jobs: {jobs}"
    );
    assert!(
        receiver.received().is_empty(),
        "a refused callback URI was called: {:?}",
        receiver.received()
    );
    server.shutdown().await;
}
