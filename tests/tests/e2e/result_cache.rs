//! The result cache (`[processes.ID] cache = true`): an identical request
//! reuses the results of an earlier successful job, recorded as a job of its
//! own that links (`via`) to the one it reused; different inputs miss;
//! member order does not matter; `Cache-Control: no-cache` runs anyway and
//! its results replace the entry; a replaced process starts afresh, even
//! with the same module; a process without `cache` never reuses; a request
//! with an `href` or a nested input is keyed by what they gave when it
//! ran. Run on sled here and on PostgreSQL by `on_postgres`.

use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};
use wasmproc::config::ProcessOverrides;
use wasmproc_tests::{
    ADMIN_BEARER, Api, CallbackReceiver, Reply, TestServer, body_link, body_links, last_segment,
    output_value,
};

const HELLO_WASM: &str = env!("WASMPROC_GUEST_HELLO_WORLD");

async fn server() -> TestServer {
    super::server()
        .with_admin_token()
        .configure(|c| {
            c.callbacks.allowed_hosts = vec!["127.0.0.1".into()];
            for id in ["echo", "greeter"] {
                c.processes.insert(
                    id.into(),
                    ProcessOverrides {
                        cache: Some(true),
                        ..ProcessOverrides::default()
                    },
                );
            }
        })
        .start()
        .await
}

/// A sync execute (with extra headers); the reply and its job's statusInfo.
async fn run(api: &Api, process: &str, inputs: Value, headers: &[(&str, &str)]) -> (Reply, Value) {
    let reply = api
        .post_json(
            &format!("/processes/{process}/execution"),
            &json!({ "inputs": inputs }),
            headers,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let job_id = last_segment(&reply.link_header("monitor").expect("monitor link"));
    let status = api.job(&job_id).await;
    (reply, status)
}

/// The job a job's results were reused from, if any (its `via` link).
fn reused_from(status: &Value) -> Option<String> {
    status["links"]
        .as_array()
        .expect("links")
        .iter()
        .find(|l| l["rel"] == "via")
        .map(|l| last_segment(l["href"].as_str().expect("href")))
}

#[tokio::test]
async fn identical_requests_reuse_results_and_others_run() {
    let server = server().await;
    // A sync echo of `text` and 1 with `headers`: the cache's key is the
    // inputs, so the requests below vary only these.
    let echo = async |text: &str, headers: &[(&str, &str)]| {
        let inputs = json!({ "stringInput": text, "doubleInput": 1 });
        run(&server, "echo", inputs, headers).await
    };
    let (first, first_status) = echo("a", &[]).await;
    assert_eq!(reused_from(&first_status), None, "the first one runs");
    let first_id = first_status["jobID"].as_str().unwrap().to_owned();

    // Same inputs, members in another order: reused.
    let (again, again_status) = run(
        &server,
        "echo",
        json!({ "doubleInput": 1, "stringInput": "a" }),
        &[],
    )
    .await;
    assert_ne!(
        again_status["jobID"], first_status["jobID"],
        "a job of its own"
    );
    assert_eq!(
        reused_from(&again_status).as_deref(),
        Some(first_id.as_str())
    );
    assert_eq!(again_status["status"], "successful");
    assert!(
        again_status["message"].as_str().unwrap().contains("reused"),
        "{again_status}"
    );
    let api: &Api = &server;
    let results = |status: &Value| {
        let id = status["jobID"].as_str().unwrap().to_owned();
        async move { api.get_json(&format!("/jobs/{id}/results")).await }
    };
    assert_eq!(
        results(&again_status).await,
        results(&first_status).await,
        "the same results"
    );
    assert_eq!(again.status, first.status);

    // Other inputs: run.
    let (_, other) = echo("b", &[]).await;
    assert_eq!(reused_from(&other), None);

    // no-cache runs anyway, and its results replace the entry.
    let (_, forced) = echo("a", &[("cache-control", "no-cache")]).await;
    assert_eq!(
        reused_from(&forced),
        None,
        "Cache-Control: no-cache runs it"
    );
    let (_, after) = echo("a", &[]).await;
    assert_eq!(
        reused_from(&after),
        forced["jobID"].as_str().map(str::to_owned)
    );

    // An async submission is answered successful at once.
    let reply = server
        .post_json(
            "/processes/echo/execution",
            &json!({ "inputs": { "stringInput": "a", "doubleInput": 1 } }),
            &[("prefer", "respond-async")],
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    let created = reply.json();
    assert_eq!(created["status"], "successful", "{created}");
    let results = server
        .get_json(&format!(
            "/jobs/{}/results",
            created["jobID"].as_str().unwrap()
        ))
        .await;
    assert_eq!(results["stringInput"], json!("a"), "{results}");

    // A step of a workflow with the same inputs reuses them too.
    let nested = json!({ "stringInput": {
        "process": "echo",
        "inputs": { "stringInput": "a", "doubleInput": 1 },
        "outputs": { "stringInput": {} }
    } });
    let (_, parent) = run(&server, "echo", nested, &[]).await;
    let step_id = last_segment(&body_link(&parent, "item").expect("the step"));
    let step = server.job(&step_id).await;
    assert_eq!(
        reused_from(&step),
        forced["jobID"].as_str().map(str::to_owned)
    );

    // A process without `cache` never reuses.
    let (_, hello) = run(&server, "hello-world", json!({ "name": "x" }), &[]).await;
    let (_, hello_again) = run(&server, "hello-world", json!({ "name": "x" }), &[]).await;
    assert_eq!(reused_from(&hello), None);
    assert_eq!(reused_from(&hello_again), None);
    server.shutdown().await;
}

#[tokio::test]
async fn a_replaced_process_starts_afresh_even_with_the_same_module() {
    let server = server().await;
    let mut description = server.get_json("/processes/hello-world").await;
    let fields = description.as_object_mut().expect("description");
    fields.remove("links");
    fields.remove("mutable");
    fields.insert("id".into(), json!("greeter"));
    let package = serde_json::to_vec(&json!({
        "processDescription": { "process": description },
        "executionUnit": {
            "value": base64::engine::general_purpose::STANDARD
                .encode(std::fs::read(HELLO_WASM).expect("hello-world component")),
            "mediaType": "application/wasm"
        }
    }))
    .unwrap();
    let headers = [
        ("authorization", ADMIN_BEARER),
        ("content-type", "application/ogcapppkg+json"),
    ];
    server
        .send(Method::POST, "/processes", &headers, Some(package.clone()))
        .await
        .expect_status(201);
    let inputs = json!({ "name": "Joe" });
    let (_, first) = run(&server, "greeter", inputs.clone(), &[]).await;
    let (_, hit) = run(&server, "greeter", inputs.clone(), &[]).await;
    assert_eq!(
        reused_from(&hit),
        first["jobID"].as_str().map(str::to_owned)
    );

    server
        .send(Method::PUT, "/processes/greeter", &headers, Some(package))
        .await
        .expect_status(204);
    let (_, after_replace) = run(&server, "greeter", inputs.clone(), &[]).await;
    assert_eq!(reused_from(&after_replace), None, "replaced: runs again");
    let (_, hit_again) = run(&server, "greeter", inputs, &[]).await;
    assert_eq!(
        reused_from(&hit_again),
        after_replace["jobID"].as_str().map(str::to_owned)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_reused_async_result_notifies_its_subscriber() {
    let server = server().await;
    let receiver = CallbackReceiver::start().await;
    run(&server, "echo", json!({ "stringInput": "heard" }), &[]).await;
    let reply = server
        .post_json(
            "/processes/echo/execution",
            &json!({
                "inputs": { "stringInput": "heard" },
                "subscriber": { "successUri": receiver.url("/hit") }
            }),
            &[("prefer", "respond-async")],
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    assert_eq!(reply.json()["status"], "successful");
    let callback = receiver
        .wait_for("/hit", std::time::Duration::from_secs(20))
        .await;
    assert_eq!(callback.method, "POST");
    assert_eq!(
        output_value(&callback.json(), "stringInput"),
        json!("heard"),
        "{:?}",
        callback.json()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn inputs_known_only_when_the_job_runs_are_keyed_by_what_they_turned_out_to_be() {
    let files = wasmproc_tests::FileServer::start(vec![
        ("/a.txt", "text/plain", b"same".to_vec()),
        ("/copy-of-a.txt", "text/plain", b"same".to_vec()),
        ("/b.txt", "text/plain", b"other".to_vec()),
    ])
    .await;
    let server = super::server()
        .configure(|c| {
            c.href.allowed_hosts = vec!["127.0.0.1".into()];
            c.processes.insert(
                "echo".into(),
                ProcessOverrides {
                    cache: Some(true),
                    ..ProcessOverrides::default()
                },
            );
        })
        .start()
        .await;
    let by_reference = |path: &str| json!({ "stringInput": { "href": files.url(path) } });
    let (reply, first) = run(&server, "echo", by_reference("/a.txt"), &[]).await;
    assert_eq!(reply.json(), json!("same"));
    assert_eq!(reused_from(&first), None, "the first one runs");
    // Another URL with the same content: fetched, then answered from the
    // cache (keyed by content, not by URL).
    let (reply, copy) = run(&server, "echo", by_reference("/copy-of-a.txt"), &[]).await;
    assert_eq!(reply.json(), json!("same"));
    assert_eq!(
        reused_from(&copy),
        first["jobID"].as_str().map(str::to_owned)
    );
    // Other content: runs.
    let (reply, other) = run(&server, "echo", by_reference("/b.txt"), &[]).await;
    assert_eq!(reply.json(), json!("other"));
    assert_eq!(reused_from(&other), None);
    // `Cache-Control: no-cache` runs even when the content matches.
    let (_, bypassed) = run(
        &server,
        "echo",
        by_reference("/a.txt"),
        &[("cache-control", "no-cache")],
    )
    .await;
    assert_eq!(reused_from(&bypassed), None);

    // A nested input: the step runs each time (hello-world is not cached),
    // and the parent is answered from the cache once the step gave the
    // same value.
    let nested = json!({ "stringInput": {
        "process": "hello-world", "inputs": { "name": "Joe" }
    } });
    let (reply, parent) = run(&server, "echo", nested.clone(), &[]).await;
    assert_eq!(reply.json(), json!("Hello Joe!"));
    assert_eq!(reused_from(&parent), None);
    let (reply, again) = run(&server, "echo", nested, &[]).await;
    assert_eq!(reply.json(), json!("Hello Joe!"));
    assert_eq!(
        reused_from(&again),
        parent["jobID"].as_str().map(str::to_owned)
    );
    let steps = body_links(&again, "item").len();
    assert_eq!(steps, 1, "its step ran: {again}");
    server.shutdown().await;
}
