//! Remote steps: a nested process on another OGC API - Processes server
//! (here a second wasmproc on 127.0.0.1), run when
//! `execution.remote_processes` allows its URL. Sync and async-only remote
//! processes, the remote job linked among the parent's steps, a refusal by
//! the other server failing the parent as the client's mistake, URLs not
//! allowed refused before anything runs, and a dismissed parent
//! dismissing the remote job.

use std::time::{Duration, Instant};

use serde_json::json;
use wasmproc_tests::{
    TestServer, assert_detail, assert_exception, body_links, detail, set_job_control,
};

/// The other server: echo runs only asynchronously there.
async fn other_server() -> TestServer {
    super::server()
        .configure(|c| set_job_control(c, "echo", &["async-execute", "dismiss"]))
        .start()
        .await
}

/// This server, allowed to call `other`'s processes.
async fn this_server(other: &TestServer) -> TestServer {
    let allowed = format!("{}/processes/", other.base());
    super::server()
        .configure(move |c| {
            c.execution.remote_processes = vec![allowed];
            c.href.allowed_hosts = vec!["127.0.0.1".into()];
        })
        .start()
        .await
}

#[tokio::test]
async fn allow_listed_processes_of_another_server_run_as_steps() {
    let other = other_server().await;
    let here = this_server(&other).await;
    let remote = |process: &str| format!("{}/processes/{process}", other.base());

    // A remote process that runs synchronously there.
    let request = json!({ "inputs": { "stringInput": {
        "process": remote("hello-world"),
        "inputs": { "name": "Joe" },
        "outputs": { "echo": {} }
    } } });
    let (job_id, reply) = here.execute_sync("echo", &request).await;
    assert_eq!(reply.json(), json!("Hello Joe!"));
    let steps = body_links(&here.job(&job_id).await, "item");
    assert_eq!(steps.len(), 1);
    assert!(
        steps[0].starts_with(&format!("{}/jobs/", other.base())),
        "the step is the other server's job: {steps:?}"
    );
    let remote_job = other.get(&steps[0][other.base().len()..]).await;
    assert_eq!(remote_job.json()["status"], "successful");

    // One that runs only asynchronously there: followed to its results.
    let request = json!({ "inputs": { "name": {
        "process": remote("echo"),
        "inputs": { "stringInput": "Ann" },
        "outputs": { "stringInput": {} }
    } } });
    let (_, reply) = here.execute_sync("hello-world", &request).await;
    assert_eq!(reply.json(), json!("Hello Ann!"));

    // The other server refuses the inputs: the client's mistake.
    let request = json!({ "inputs": { "stringInput": {
        "process": remote("hello-world"),
        "inputs": {},
        "outputs": { "echo": {} }
    } } });
    let reply = here.execute("echo", &request).await;
    let exception = assert_exception(&reply, 400, None);
    assert!(
        detail(&exception).contains("answered 400")
            && detail(&exception).contains("input 'name' is required"),
        "{exception}"
    );

    // Refused before anything runs: a URL not allowed, no output chosen,
    // a map, a nested process among its inputs.
    let refusals = [
        (
            json!({ "process": "http://127.0.0.1:9/processes/echo", "outputs": { "x": {} } }),
            "execution.remote_processes does not allow it",
        ),
        (
            json!({ "process": remote("hello-world"), "inputs": { "name": "x" } }),
            "must select the one output",
        ),
        (
            json!({ "process": remote("echo"), "outputs": { "stringInput": {} },
                    "map": { "input": "stringInput", "over": ["a"] } }),
            "cannot be mapped",
        ),
        (
            json!({ "process": remote("hello-world"), "outputs": { "echo": {} },
                    "inputs": { "name": { "process": "hello-world", "inputs": { "name": "x" } } } }),
            "are values, not nested processes",
        ),
    ];
    for (call, expected) in refusals {
        let reply = here
            .execute("echo", &json!({ "inputs": { "stringInput": call } }))
            .await;
        assert_detail(&reply, 400, expected);
    }
    let listed = other.get_json("/jobs?limit=100").await;
    assert_eq!(
        listed["jobs"].as_array().unwrap().len(),
        2,
        "only the two calls it accepted made jobs on the other server (the third it refused at once): {listed}"
    );
    here.shutdown().await;
    other.shutdown().await;
}

#[tokio::test]
async fn dismissing_the_parent_dismisses_the_remote_job() {
    let other = other_server().await;
    let here = this_server(&other).await;
    let request = json!({ "inputs": { "name": {
        "process": format!("{}/processes/echo", other.base()),
        "inputs": { "stringInput": "slow", "pause": 30 },
        "outputs": { "stringInput": {} }
    } } });
    let parent = here.execute_async("hello-world", &request).await;
    // Wait until the remote job runs on the other server.
    let deadline = Instant::now() + Duration::from_secs(30);
    let remote_job = loop {
        let running = other.get_json("/jobs?status=running").await;
        if let Some(job) = running["jobs"].as_array().unwrap().first() {
            break job["jobID"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "the remote job never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    here.delete(&format!("/jobs/{parent}")).await;
    other
        .wait_until_job_gone(&remote_job, "the remote job is still there")
        .await;
    here.shutdown().await;
    other.shutdown().await;
}
