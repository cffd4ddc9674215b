//! Nested processes (OGC API - Processes Part 3): an input computed by
//! another process on this server. A chain across Rust, Python and
//! JavaScript guests; independent branches; the step jobs and their links;
//! the whole tree refused before anything runs when any part is wrong; a
//! failing step failing its parent with the step's path; dismissing a
//! workflow dismissing its running step. Run on sled here and on
//! PostgreSQL by `on_postgres`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wasmproc_tests::{
    ADMIN_TOKEN, Api, HOSTILE_WASM, JOB_TIMEOUT, Reply, TestServer, assert_exception, body_links,
    detail, last_segment, output_value, polyglot_component,
};

use super::BINARY;

const NESTED: &str = "http://www.opengis.net/spec/ogcapi-processes-3/1.0/conf/nested-processes";

async fn server() -> TestServer {
    super::server()
        .with_admin_token()
        .configure(|c| c.execution.max_nesting_depth = 3)
        .start()
        .await
}

/// Deploy one of the polyglot examples.
async fn deploy(api: &Api, name: &str) {
    deploy_wasm(api, polyglot_component(name)).await;
}

/// Deploy a component with the admin token.
async fn deploy_wasm(api: &Api, wasm: Vec<u8>) {
    api.deploy_wasm(ADMIN_TOKEN, wasm).await;
}

/// `{"process": id, "inputs": inputs}`.
fn call(process: &str, inputs: Value) -> Value {
    json!({ "process": process, "inputs": inputs })
}

/// How many jobs the server lists.
async fn job_count(api: &Api) -> usize {
    api.get_json("/jobs?limit=1000").await["jobs"]
        .as_array()
        .expect("jobs")
        .len()
}

/// Execute, synchronously, `echo` of a step that runs `hostile` told to
/// misbehave as `behaviour`: a valid workflow whose step fails when it
/// runs. Panics unless the answer is a 500 OGC exception; returns the
/// reply and its detail, which says why the step failed.
async fn failed_hostile_step(server: &Api, behaviour: &str) -> (Reply, String) {
    let request = json!({ "inputs": { "stringInput": {
        "process": "hostile",
        "inputs": { "behaviour": behaviour },
        "outputs": { "result": {} }
    } } });
    let reply = server.execute("echo", &request).await;
    let reason = detail(&assert_exception(&reply, 500, None));
    (reply, reason)
}

#[tokio::test]
async fn a_chain_across_rust_python_and_javascript_runs_in_host() {
    let server = server().await;
    server.assert_conforms_to(&[NESTED]).await;
    deploy(&server, "hello-world-py").await;
    deploy(&server, "hello-world-js").await;
    // echo(hello-world-js(hello-world-py(hello-world("Joe")))), the JS step
    // named by this server's URL of it.
    let rust = call("hello-world", json!({ "name": "Joe" }));
    let python = call("hello-world-py", json!({ "name": rust }));
    let javascript = call(
        &format!("{}/processes/hello-world-js", server.base()),
        json!({ "name": python }),
    );
    let request = json!({ "inputs": { "stringInput": javascript } });
    let (parent_id, reply) = server.execute_sync("echo", &request).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json(), json!("Hello Hello Hello Joe!!!"));

    // Each step is a job of its own, linked both ways.
    let parent = server.job(&parent_id).await;
    let js_job = server.only_step(&parent).await;
    assert_eq!(js_job["processID"], "hello-world-js");
    assert_eq!(js_job["status"], "successful");
    let py_job = server.only_step(&js_job).await;
    assert_eq!(py_job["processID"], "hello-world-py");
    let rust_job = server.only_step(&py_job).await;
    assert_eq!(rust_job["processID"], "hello-world");
    assert!(body_links(&rust_job, "item").is_empty());
    let results = server
        .get_json(&format!(
            "/jobs/{}/results",
            rust_job["jobID"].as_str().unwrap()
        ))
        .await;
    assert_eq!(output_value(&results, "echo"), json!("Hello Joe!"));
    // The steps are listed like any job.
    let listed = server.get_json("/jobs?processID=hello-world-py").await;
    assert_eq!(listed["jobs"][0]["jobID"], py_job["jobID"]);
    server.shutdown().await;
}

#[tokio::test]
async fn independent_branches_feed_an_async_parent() {
    let server = server().await;
    // Two inputs of echo, each computed by its own step: one says hello,
    // the other echoes a pause (selecting that one of echo's outputs).
    let request = json!({ "inputs": {
        "stringInput": call("hello-world", json!({ "name": "branch" })),
        "pause": {
            "process": "echo",
            "inputs": { "stringInput": "inner", "pause": 1.5 },
            "outputs": { "pause": {} }
        }
    }});
    let parent_id = server.execute_async("echo", &request).await;
    // While the slow branch runs, the parent says the quick one is done.
    let midway = server
        .wait_until(&parent_id, JOB_TIMEOUT, "half its steps done", |s| {
            s["progress"] == json!(45) || s["status"] == "successful"
        })
        .await;
    assert_eq!(midway["status"], "running", "{midway}");
    assert_eq!(midway["message"], "1 of 2 steps done");
    let status = server
        .wait_for_status(&parent_id, &["successful"], JOB_TIMEOUT)
        .await;
    assert_eq!(body_links(&status, "item").len(), 2, "{status}");
    let results = server.get_json(&format!("/jobs/{parent_id}/results")).await;
    assert_eq!(
        output_value(&results, "stringInput"),
        json!("Hello branch!")
    );
    assert_eq!(output_value(&results, "pause"), json!(1.5));
    server.shutdown().await;
}

#[tokio::test]
async fn a_faulty_tree_is_refused_whole_naming_the_path_and_nothing_runs() {
    let server = server().await;
    let before = job_count(&server).await;
    let cases = [
        (
            json!({ "stringInput": call("nope", json!({})) }),
            "inputs.stringInput.process: no process 'nope'",
        ),
        (
            json!({ "stringInput": call("hello-world", json!({ "name": call("hello-world", json!({})) })) }),
            "inputs.stringInput.process.inputs.name.process.inputs: input 'name' is required",
        ),
        (
            json!({ "stringInput": call("echo", json!({ "stringInput": "x" })) }),
            "inputs.stringInput.process: the process has",
        ),
        (
            json!({ "stringInput": call("http://127.0.0.2:1/processes/echo", json!({})) }),
            "not a process of this server",
        ),
        (
            json!({ "stringInput": call("hello-world", json!({ "name": call("hello-world", json!({ "name": call("hello-world", json!({ "name": call("hello-world", json!({ "name": "deep" })) })) })) })) }),
            "execution.max_nesting_depth = 3",
        ),
        (
            json!({ "stringInput": call("hello-world", json!({ "name": 5 })) }),
            "inputs.stringInput.process.inputs: input 'name'",
        ),
        (
            json!({ "stringInput": "s", "doubleInput": call("hello-world", json!({ "name": "x" })) }),
            "cannot be a value of input 'doubleInput'",
        ),
        (
            json!({ "stringInput": "s", "arrayInput": {
                "process": "echo",
                "inputs": { "stringInput": "x" },
                "outputs": { "doubleInput": {} },
                "map": { "input": "doubleInput", "over": call("hello-world", json!({ "name": "x" })) }
            } }),
            "inputs.arrayInput.process.map.over: its output (",
        ),
    ];
    for (inputs, expected) in cases {
        let reply = server.execute("echo", &json!({ "inputs": inputs })).await;
        let exception = assert_exception(&reply, 400, None);
        assert!(
            detail(&exception).contains(expected),
            "expected '{expected}' in: {exception}"
        );
    }
    assert_eq!(job_count(&server).await, before, "nothing ran");
    server.shutdown().await;
}

#[tokio::test]
async fn a_failing_step_fails_its_parent_naming_the_step() {
    let server = server().await;
    deploy_wasm(
        &server,
        std::fs::read(HOSTILE_WASM).expect("hostile component"),
    )
    .await;
    // A valid tree whose step traps when it runs.
    let (reply, reason) = failed_hostile_step(&server, "panic").await;
    assert!(
        reason.contains("step inputs.stringInput.process") && reason.contains("'hostile'"),
        "{reason}"
    );
    let parent = server
        .job(&last_segment(
            &reply.link_header("monitor").expect("monitor link"),
        ))
        .await;
    assert_eq!(parent["status"], "failed");
    let step = server.only_step(&parent).await;
    assert_eq!(step["processID"], "hostile");
    assert_eq!(step["status"], "failed", "the failed step is kept: {step}");
    server.shutdown().await;
}

#[tokio::test]
async fn dismissing_a_workflow_dismisses_its_running_step() {
    let server = server().await;
    let request = json!({ "inputs": {
        "stringInput": {
            "process": "echo",
            "inputs": { "stringInput": "slow", "pause": 30 },
            "outputs": { "stringInput": {} }
        }
    }});
    let parent_id = server.execute_async("echo", &request).await;
    let step_id = running_step(&server, &parent_id).await;
    let step = server.job(&step_id).await;
    assert_eq!(
        last_segment(&body_links(&step, "up")[0]),
        parent_id,
        "the running step points to its parent"
    );
    server
        .delete(&format!("/jobs/{parent_id}"))
        .await
        .expect_status(200);
    // Within seconds (not the 30 s pause) the step is gone too.
    server
        .wait_until_job_gone(&step_id, "the step outlived its dismissed parent")
        .await;
    assert_eq!(server.get(&format!("/jobs/{parent_id}")).await.status, 404);
    server.shutdown().await;
}

/// The summary object out of a statistics-py answer.
fn summary(reply: &wasmproc_tests::Reply) -> Value {
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()
}

#[tokio::test]
async fn a_map_runs_a_step_per_element_and_feeds_the_array_to_a_merge_step() {
    let server = server().await;
    deploy(&server, "statistics-py").await;
    // statistics-py(values: [echo(doubleInput: e) for e in 1..4]), two at
    // a time: a Rust step per element, merged by a Python process.
    let mapped = json!({
        "process": "echo",
        "inputs": { "stringInput": "x" },
        "outputs": { "doubleInput": {} },
        "map": { "input": "doubleInput", "over": [1, 2, 3, 4], "parallelism": 2 }
    });
    let (parent_id, reply) = server
        .execute_sync("statistics-py", &json!({ "inputs": { "values": mapped } }))
        .await;
    let stats = summary(&reply);
    assert_eq!(stats["count"], json!(4), "{stats}");
    assert_eq!(stats["mean"], json!(2.5), "{stats}");
    let parent = server.job(&parent_id).await;
    let titles: Vec<String> = parent["links"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["rel"] == "item")
        .map(|l| l["title"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        titles,
        (0..4)
            .map(|i| format!("step computing inputs.values.process.map[{i}]"))
            .collect::<Vec<_>>(),
        "one job per element, in element order"
    );

    // The array may come from another step: echo's arrayInput echoed.
    let over_a_step = json!({
        "process": "echo",
        "inputs": { "stringInput": "x" },
        "outputs": { "doubleInput": {} },
        "map": { "input": "doubleInput", "over": {
            "process": "echo",
            "inputs": { "stringInput": "y", "arrayInput": [5, 6, 7] },
            "outputs": { "arrayInput": {} }
        } }
    });
    let (_, reply) = server
        .execute_sync(
            "statistics-py",
            &json!({ "inputs": { "values": over_a_step } }),
        )
        .await;
    let stats = summary(&reply);
    assert_eq!(
        (stats["count"].clone(), stats["mean"].clone()),
        (json!(3), json!(6.0))
    );

    // A map's elements are checked before anything runs.
    let bad = json!({
        "process": "echo",
        "inputs": { "stringInput": "x" },
        "outputs": { "doubleInput": {} },
        "map": { "input": "doubleInput", "over": [1, "two"] }
    });
    let reply = server
        .execute("statistics-py", &json!({ "inputs": { "values": bad } }))
        .await;
    let exception = assert_exception(&reply, 400, None);
    assert!(
        detail(&exception).starts_with("inputs.values.process.map.over[1]: input 'doubleInput'"),
        "{exception}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_failing_element_fails_the_map_unless_failures_are_skipped() {
    let server = server().await;
    deploy(&server, "statistics-py").await;
    deploy_wasm(
        &server,
        std::fs::read(HOSTILE_WASM).expect("hostile component"),
    )
    .await;
    let map = |on_error: &str| {
        json!({ "inputs": { "values": {
            "process": "hostile",
            "inputs": { "size": 10 },
            "outputs": { "result": {} },
            "map": { "input": "behaviour", "over": ["progress-storm", "process-error"], "onError": on_error }
        } } })
    };
    let reply = server.execute("statistics-py", &map("fail")).await;
    assert!(reply.status >= 400, "{}", reply.text());
    let reason = detail(&reply.json());
    assert!(
        reason.contains("step inputs.values.process: element 1:")
            && reason.contains("refusing on purpose"),
        "{reason}"
    );
    // Skipped, the failure leaves one element ("stormed"), which the
    // merge step's schema then refuses: the map itself did not fail.
    let reply = server.execute("statistics-py", &map("skip")).await;
    let reason = detail(&assert_exception(&reply, 400, None));
    assert!(
        !reason.contains("element") && reason.contains("input 'values'"),
        "{reason}"
    );
    server.shutdown().await;
}

/// The id of a running step of `parent_id` (a running echo job other than
/// the parent), waiting for one to show up.
async fn running_step(api: &Api, parent_id: &str) -> String {
    let deadline = Instant::now() + JOB_TIMEOUT;
    loop {
        let running = api.get_json("/jobs?status=running&processID=echo").await;
        let step = running["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["jobID"] != json!(parent_id))
            .map(|j| j["jobID"].as_str().unwrap().to_owned());
        if let Some(step) = step {
            return step;
        }
        assert!(Instant::now() < deadline, "the step never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn kill_9_during_a_workflow_leaves_it_finished_or_failed_with_a_reason() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (config, _database) = super::child_config(dir.path(), 2).await;
    let child = config.spawn(BINARY);
    let request = json!({ "inputs": { "stringInput": {
        "process": "echo",
        "inputs": { "stringInput": "slow step", "pause": 2 },
        "outputs": { "stringInput": {} }
    } } });
    let parent_id = child.execute_async("echo", &request).await;
    let step_id = running_step(&child, &parent_id).await;
    child.kill9();

    // After the restart the parent ends: run again to success (a cluster
    // node re-runs what a lost node held) or failed saying why (one node
    // cannot know what the interrupted guest did); and the step that was
    // running is not left running.
    let child = config.spawn(BINARY);
    let parent = child
        .wait_for_status(
            &parent_id,
            &["successful", "failed"],
            Duration::from_secs(60),
        )
        .await;
    if parent["status"] == "failed" {
        let message = parent["message"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase();
        assert!(
            ["restart", "interrupt", "node"]
                .iter()
                .any(|w| message.contains(w)),
            "a failure after kill -9 says why: {parent}"
        );
    } else {
        let results = child.get_json(&format!("/jobs/{parent_id}/results")).await;
        assert_eq!(output_value(&results, "stringInput"), json!("slow step"));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let step = child.get(&format!("/jobs/{step_id}")).await;
        // sled never wrote the running step (a sync job is written when it
        // ends); on PostgreSQL a step queued for the cluster is run again
        // once its node's lease expires, like any queued job, and ends.
        let status = step.json()["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if step.status == 404 || status == "failed" || status == "successful" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the step interrupted by kill -9 is still {}: {}",
            step.status,
            step.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill9();
}

#[tokio::test]
async fn steps_past_the_workflow_timeout_are_dismissed_and_the_job_fails_saying_so() {
    let server = super::server()
        .configure(|c| c.execution.workflow_timeout = Duration::from_secs(1))
        .start()
        .await;
    let request = json!({ "inputs": { "stringInput": {
        "process": "echo",
        "inputs": { "stringInput": "slow", "pause": 20 },
        "outputs": { "stringInput": {} }
    } } });
    let started = Instant::now();
    let parent_id = server.execute_async("echo", &request).await;
    let step_id = running_step(&server, &parent_id).await;
    let parent = server
        .wait_for_status(&parent_id, &["failed"], JOB_TIMEOUT)
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "failed by the 1 s budget, not after the step's 20 s"
    );
    let message = parent["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("execution.workflow_timeout = 1s"),
        "{parent}"
    );
    assert_eq!(
        server.get(&format!("/jobs/{step_id}")).await.status,
        404,
        "the running step was dismissed"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_call_written_twice_runs_once_and_a_tree_shares_one_fuel_budget() {
    let server = super::server()
        .with_admin_token()
        .configure(|c| {
            c.execution.workflow_fuel = 2_000_000_000;
            // The hostile step's own limit: 10^10, five times the tree's.
            let limits = wasmproc::runtime::Limits {
                fuel: 10_000_000_000,
                ..wasmproc::runtime::Limits::default()
            };
            wasmproc_tests::set_limits(c, "hostile", limits);
        })
        .start()
        .await;
    // A diamond: a = echo("Joe") feeds b and c, which both feed d.
    let a = json!({
        "process": "echo",
        "inputs": { "stringInput": "Joe" },
        "outputs": { "stringInput": {} }
    });
    let b = call("hello-world", json!({ "name": a, "message": "from b" }));
    let c = call("hello-world", json!({ "name": a, "message": "from c" }));
    let request = json!({ "inputs": { "name": b, "message": c } });
    let (top_id, reply) = server.execute_sync("hello-world", &request).await;
    assert_eq!(
        reply.json(),
        json!("Hello Hello Joe! from b! Hello Joe! from c")
    );
    // a ran once: one echo job, listed as a step by both b and c.
    let echoes = server.get_json("/jobs?processID=echo").await;
    let echoes = echoes["jobs"].as_array().expect("jobs");
    assert_eq!(echoes.len(), 1, "{echoes:?}");
    let echo_url = format!(
        "{}/jobs/{}",
        server.base(),
        echoes[0]["jobID"].as_str().unwrap()
    );
    let top = server.job(&top_id).await;
    let middle = body_links(&top, "item");
    assert_eq!(middle.len(), 2, "{top}");
    for step in middle {
        let step = server.job(&last_segment(&step)).await;
        assert_eq!(body_links(&step, "item"), vec![echo_url.clone()], "{step}");
    }

    // The tree's fuel: a step that would loop until its own limit (10^10)
    // stops at what is left of the tree's 2·10^9, and says so.
    deploy_wasm(
        &server,
        std::fs::read(HOSTILE_WASM).expect("hostile component"),
    )
    .await;
    let (_, reason) = failed_hostile_step(&server, "infinite-loop").await;
    assert!(
        reason.contains("fuel limit exhausted")
            && reason.contains("workflow's fuel budget (execution.workflow_fuel = 2000000000"),
        "{reason}"
    );
    let step = server.get_json("/jobs?processID=hostile").await["jobs"][0].clone();
    assert_eq!(step["status"], "failed", "{step}");
    assert!(
        step["message"]
            .as_str()
            .unwrap_or_default()
            .contains("the process used all 2000000000 units of fuel"),
        "{step}"
    );
    // The same step alone has its own limit, not the tree's.
    let alone = server
        .execute(
            "hostile",
            &json!({ "inputs": { "behaviour": "infinite-loop" } }),
        )
        .await;
    let exception = assert_exception(&alone, 500, None);
    assert!(!detail(&exception).contains("workflow"), "{exception}");
    server.shutdown().await;
}
