//! Deployable workflows (OGC API - Processes Part 3): a tree of nested
//! processes with `{"$input": …}` placeholders, deployed with
//! `POST /processes` as a process of its own. Its description derived from
//! its steps, or given; it runs sync and async like any process, mixing
//! Rust and Python steps, each a job linked to the workflow's job; it
//! survives a restart; it is replaced (an accepted job finishes on the
//! version it was accepted for) and undeployed; its package comes back;
//! a faulty document or a cycle of workflows is refused naming the part,
//! and nothing is deployed. Run on sled here and on PostgreSQL by
//! `on_postgres`.

use reqwest::Method;
use serde_json::{Value, json};
use wasmproc_tests::{
    ADMIN_TOKEN, Api, JOB_TIMEOUT, TestServer, assert_detail, assert_exception, detail,
    output_value, polyglot_component,
};

const WORKFLOW: &str = "application/ogcexec+json";
const DEPLOYABLE_WORKFLOWS: &str =
    "http://www.opengis.net/spec/ogcapi-processes-3/1.0/conf/deployable-workflows";

async fn server() -> TestServer {
    super::server().with_admin_token().start().await
}

/// Send `body` (an application package) to deploy (POST /processes) or
/// replace (PUT /processes/{id}) as the admin.
/// Deploy the application package `body` (POST `/processes`) as the
/// administrator; the reply, whatever it is.
async fn deploy(api: &Api, body: &Value) -> wasmproc_tests::Reply {
    api.send_package(ADMIN_TOKEN, Method::POST, "/processes", body)
        .await
}

/// Replace process `id` by the application package `body` (PUT
/// `/processes/{id}`) as the administrator; the reply, whatever it is.
async fn replace(api: &Api, id: &str, body: &Value) -> wasmproc_tests::Reply {
    let path = format!("/processes/{id}");
    api.send_package(ADMIN_TOKEN, Method::PUT, &path, body)
        .await
}

/// Replace the workflow `id` with `document` as its `version`, and check
/// that the replace is answered 204 (a replace has no body to give).
async fn replace_with_version(api: &Api, id: &str, version: &str, document: Value) {
    let body = package(json!({ "id": id, "version": version }), document);
    replace(api, id, &body).await.expect_status(204);
}

/// A package deploying `document` as a workflow, with `description`.
fn package(description: Value, document: Value) -> Value {
    json!({
        "processDescription": description,
        "executionUnit": { "mediaType": WORKFLOW, "value": document },
    })
}

/// hello-world-py(hello-world(name: $who, message: $note)), echoed with
/// an optional pause: a Rust step feeding a Python step feeding the top
/// process (Rust).
fn greeting_workflow() -> Value {
    json!({
        "process": "echo",
        "inputs": {
            "stringInput": { "process": "hello-world-py", "inputs": {
                "name": { "process": "hello-world", "inputs": {
                    "name": { "$input": "who" },
                    "message": { "$input": "note" }
                } }
            } },
            "pause": { "$input": "pause" }
        },
        "outputs": { "stringInput": {} }
    })
}

#[tokio::test]
async fn a_deployed_workflow_runs_like_any_process_and_survives_a_restart() {
    let server = server().await;
    server.assert_conforms_to(&[DEPLOYABLE_WORKFLOWS]).await;
    server
        .deploy_wasm(ADMIN_TOKEN, polyglot_component("hello-world-py"))
        .await;
    let reply = deploy(
        &server,
        &package(
            json!({ "id": "greet", "version": "2.0.0", "title": "Greet, twice" }),
            greeting_workflow(),
        ),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    assert_eq!(
        reply.header("location").as_deref(),
        Some(format!("{}/processes/greet", server.base()).as_str())
    );
    assert_eq!(reply.json()["mutable"], json!(true));

    // The description: given id, version and title; inputs derived from
    // the step inputs the placeholders fill, outputs from the top call.
    let described = server.get_json("/processes/greet").await;
    assert_eq!(described["version"], "2.0.0");
    assert_eq!(described["title"], "Greet, twice");
    let inputs = described["inputs"].as_object().expect("inputs");
    let mut names: Vec<&String> = inputs.keys().collect();
    names.sort();
    assert_eq!(names, ["note", "pause", "who"]);
    assert_eq!(
        described["inputs"]["who"]["schema"],
        json!({"type": "string"})
    );
    assert_eq!(described["inputs"]["who"]["minOccurs"], json!(1));
    assert_eq!(described["inputs"]["note"]["minOccurs"], json!(0));
    assert_eq!(
        described["inputs"]["pause"]["schema"]["maximum"],
        json!(60.0)
    );
    let outputs: Vec<&String> = described["outputs"].as_object().unwrap().keys().collect();
    assert_eq!(outputs, ["stringInput"]);
    let listed = server.get_json("/processes").await;
    assert!(
        listed["processes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == "greet"),
        "{listed}"
    );

    // Sync: the chain's answer; the job is the workflow's, its step the
    // Python one (which has the Rust one as its own step).
    let (job_id, reply) = server
        .execute_sync(
            "greet",
            &json!({ "inputs": { "who": "Joe", "note": "hi" } }),
        )
        .await;
    assert_eq!(reply.json(), json!("Hello Hello Joe! hi!"));
    let job = server.job(&job_id).await;
    assert_eq!(job["processID"], "greet");
    let python = server.only_step(&job).await;
    assert_eq!(python["processID"], "hello-world-py");
    let rust = server.only_step(&python).await;
    assert_eq!(rust["processID"], "hello-world");
    let listed = server.get_json("/jobs?processID=greet").await;
    assert_eq!(listed["jobs"].as_array().unwrap().len(), 1, "{listed}");

    // Its own inputs are checked against its description, and the tree
    // they make is checked before anything runs.
    let reply = server
        .execute("greet", &json!({ "inputs": { "who": 5 } }))
        .await;
    assert_detail(&reply, 400, "input 'who'");
    let reply = server
        .execute("greet", &json!({ "inputs": { "note": "no name" } }))
        .await;
    assert_detail(&reply, 400, "input 'who' is required");
    // An input of the workflow may itself be a nested process.
    let (_, reply) = server
        .execute_sync(
            "greet",
            &json!({ "inputs": { "who": {
                "process": "hello-world", "inputs": { "name": "Ann" }
            } } }),
        )
        .await;
    assert_eq!(reply.json(), json!("Hello Hello Hello Ann!!!"));

    // Async, with the document response.
    let (async_id, done) = server
        .execute_async_until(
            "greet",
            &json!({ "inputs": { "who": "Bo" }, "response": "document" }),
            &["successful", "failed"],
        )
        .await;
    assert_eq!(done["status"], "successful", "{done}");
    let results = server.get_json(&format!("/jobs/{async_id}/results")).await;
    assert_eq!(
        output_value(&results, "stringInput"),
        json!("Hello Hello Bo!!")
    );

    // The package: the document as deployed, with the description.
    let package = server.get_json("/processes/greet/package").await;
    assert_eq!(package["executionUnit"]["mediaType"], WORKFLOW);
    assert_eq!(package["executionUnit"]["value"], greeting_workflow());
    assert_eq!(package["processDescription"]["process"]["id"], "greet");
    let reply = server
        .get_with(
            "/processes/greet/package",
            &[("accept", "application/wasm")],
        )
        .await;
    assert_exception(&reply, 406, None);
    // A client that also takes JSON gets the document.
    for accept in [
        "application/wasm, application/json;q=0.5",
        "application/wasm, */*;q=0.1",
    ] {
        let reply = server
            .get_with("/processes/greet/package", &[("accept", accept)])
            .await;
        reply.expect_status(200);
        assert_eq!(
            reply.json()["executionUnit"]["mediaType"],
            WORKFLOW,
            "{accept}"
        );
    }

    // After a restart: the same process, and it runs.
    let server = server.restart().await;
    let after = server.get_json("/processes/greet").await;
    assert_eq!(after["inputs"], described["inputs"]);
    assert_eq!(after["outputs"], described["outputs"]);
    server
        .assert_answers("greet", json!({ "who": "Cy" }), json!("Hello Hello Cy!!"))
        .await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_workflow_is_replaced_and_undeployed_like_any_deployed_process() {
    let server = server().await;
    let twice = json!({
        "process": "hello-world",
        "inputs": { "name": { "process": "hello-world", "inputs": { "name": { "$input": "who" } } } }
    });
    deploy(
        &server,
        &package(json!({ "id": "twice", "version": "1.0.0" }), twice),
    )
    .await
    .expect_status(201);
    // A slow job of version 1, accepted before the replace.
    let slow = json!({
        "process": "echo",
        "inputs": { "stringInput": { "$input": "who" }, "pause": 1.5 }
    });
    replace_with_version(&server, "twice", "1.1.0", slow).await;
    let accepted = server
        .execute_async("twice", &json!({ "inputs": { "who": "Al" } }))
        .await;
    let thrice = json!({
        "process": "hello-world",
        "inputs": { "name": { "process": "hello-world", "inputs": { "name": {
            "process": "hello-world", "inputs": { "name": { "$input": "who" } }
        } } } }
    });
    replace_with_version(&server, "twice", "2.0.0", thrice).await;
    assert_eq!(
        server.get_json("/processes/twice").await["version"],
        "2.0.0"
    );
    server
        .assert_answers(
            "twice",
            json!({ "who": "Al" }),
            json!("Hello Hello Hello Al!!!"),
        )
        .await;
    // The job accepted under 1.1.0 ran 1.1.0 (echo), not 2.0.0.
    let done = server
        .wait_for_status(&accepted, &["successful", "failed"], JOB_TIMEOUT)
        .await;
    assert_eq!(done["status"], "successful", "{done}");
    let results = server.get_json(&format!("/jobs/{accepted}/results")).await;
    assert_eq!(output_value(&results, "stringInput"), json!("Al"));

    // A built-in cannot be replaced by a workflow either.
    let reply = replace(
        &server,
        "echo",
        &package(
            json!({ "id": "echo", "version": "9" }),
            json!({ "process": "hello-world", "inputs": { "name": { "$input": "n" } } }),
        ),
    )
    .await;
    assert_exception(&reply, 403, None);

    server
        .send_as_admin(ADMIN_TOKEN, Method::DELETE, "/processes/twice", "", None)
        .await
        .expect_status(204);
    assert_exception(&server.get("/processes/twice").await, 404, None);
    // Its finished jobs stay readable.
    assert_eq!(server.job(&accepted).await["status"], "successful");
    server.shutdown().await;
}

/// A package deploying `document` as workflow `id`.
fn named(id: &str, document: Value) -> Value {
    package(json!({ "id": id, "version": "1.0.0" }), document)
}

#[tokio::test]
async fn a_faulty_workflow_or_a_cycle_is_refused_naming_the_part_and_nothing_is_deployed() {
    let server = server().await;
    let hello = |name: Value| json!({ "process": "hello-world", "inputs": { "name": name } });
    // Workflow `w`: echo of the output of `step`.
    let echo_of = |step: Value| {
        named(
            "w",
            json!({ "process": "echo", "inputs": { "stringInput": step } }),
        )
    };
    let refusals: Vec<(&str, Value, &str)> = vec![
        (
            "an unknown step",
            echo_of(json!({ "process": "nowhere", "inputs": {} })),
            "executionUnit.inputs.stringInput.process: no process 'nowhere' on this server",
        ),
        (
            "an unknown top process",
            named("w", json!({ "process": "nowhere" })),
            "executionUnit.process: 'nowhere' is not a process of this server",
        ),
        (
            "a missing step input",
            echo_of(
                json!({ "process": "hello-world", "inputs": { "message": { "$input": "m" } } }),
            ),
            "executionUnit.inputs.stringInput.process.inputs: input 'name' is required",
        ),
        (
            "one input used where its values cannot go",
            named(
                "w",
                json!({ "process": "echo", "inputs": {
                "stringInput": { "$input": "x" },
                "pause": { "$input": "x" }
            } }),
            ),
            "{\"$input\": \"x\"} is used where its first use's values",
        ),
        (
            "a described input the workflow never uses",
            package(
                json!({ "id": "w", "version": "1", "inputs": {
                    "who": { "schema": { "type": "string" } },
                    "extra": { "schema": { "type": "string" } }
                }, "outputs": { "greeting": { "schema": { "type": "string" } } } }),
                hello(json!({ "$input": "who" })),
            ),
            "processDescription.inputs.extra: the workflow never uses it",
        ),
        (
            "a placeholder the description does not declare",
            package(
                json!({ "id": "w", "version": "1", "inputs": {},
                        "outputs": { "greeting": { "schema": { "type": "string" } } } }),
                hello(json!({ "$input": "who" })),
            ),
            "{\"$input\": \"who\"} names no input of the workflow's description",
        ),
        (
            "an output the top process does not give",
            package(
                json!({ "id": "w", "version": "1", "outputs": { "nope": { "schema": {} } } }),
                hello(json!({ "$input": "who" })),
            ),
            "processDescription.outputs.nope: the workflow's top process 'hello-world' gives no output 'nope'",
        ),
        (
            "a map as the top process",
            named(
                "w",
                json!({ "process": "echo", "inputs": {}, "map": {
                "input": "stringInput", "over": ["a"]
            } }),
            ),
            "the top process of a workflow cannot be a map",
        ),
        (
            "no id",
            package(json!({ "version": "1" }), hello(json!({ "$input": "who" }))),
            "give processDescription with at least \"id\"",
        ),
        (
            "a remote step",
            echo_of(json!({ "process": "http://127.0.0.2:9/processes/x" })),
            "execution.remote_processes does not allow it",
        ),
        (
            "itself as a step",
            echo_of(json!({ "process": "w", "inputs": {} })),
            "would run itself: w → w",
        ),
        (
            "a document that is not a call",
            named("w", json!({ "process": "echo", "inputs": [] })),
            "`inputs` must be an object",
        ),
    ];
    for (what, body, expected) in refusals {
        let reply = deploy(&server, &body).await;
        let exception = assert_exception(&reply, 400, None);
        assert!(
            detail(&exception).contains(expected),
            "{what}: expected '{expected}' in {exception}"
        );
        assert_exception(&server.get("/processes/w").await, 404, None);
    }

    // A cycle through two workflows: b uses a; replacing a to use b is
    // refused, naming the cycle, and a stays as it was.
    deploy(&server, &named("a", hello(json!({ "$input": "who" }))))
        .await
        .expect_status(201);
    deploy(
        &server,
        &named(
            "b",
            json!({ "process": "a", "inputs": { "who": { "$input": "n" } } }),
        ),
    )
    .await
    .expect_status(201);
    let reply = replace(
        &server,
        "a",
        &named(
            "a",
            json!({ "process": "echo", "inputs": { "stringInput": {
            "process": "b", "inputs": { "n": { "$input": "who" } }
        } } }),
        ),
    )
    .await;
    assert_detail(&reply, 400, "would run itself: a → b → a");
    // b runs a, the workflow as it was.
    server
        .assert_answers("b", json!({ "n": "Di" }), json!("Hello Di!"))
        .await;

    // Outside a deployed workflow, a placeholder is refused.
    let reply = server
        .execute(
            "echo",
            &json!({ "inputs": { "stringInput": { "$input": "x" } } }),
        )
        .await;
    assert_detail(&reply, 400, "stands for an input of a deployed workflow");

    // A workflow whose top process went away answers why.
    server
        .send_as_admin(ADMIN_TOKEN, Method::DELETE, "/processes/a", "", None)
        .await
        .expect_status(204);
    let reply = server
        .execute("b", &json!({ "inputs": { "n": "Ed" } }))
        .await;
    assert_detail(
        &reply,
        400,
        "workflow 'b': its process 'a' is no longer offered",
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_workflow_maps_over_its_input_and_merges_in_python() {
    let server = server().await;
    server
        .deploy_wasm(ADMIN_TOKEN, polyglot_component("statistics-py"))
        .await;
    // statistics-py(values: [echo(doubleInput: e) for e in $numbers]).
    let document = json!({
        "process": "statistics-py",
        "inputs": { "values": {
            "process": "echo",
            "inputs": { "stringInput": "x" },
            "outputs": { "doubleInput": {} },
            "map": { "input": "doubleInput", "over": { "$input": "numbers" } }
        } }
    });
    deploy(&server, &named("summarise", document))
        .await
        .expect_status(201);
    let described = server.get_json("/processes/summarise").await;
    assert_eq!(described["inputs"]["numbers"]["schema"]["type"], "array");
    assert_eq!(
        described["inputs"]["numbers"]["schema"]["items"],
        json!({"type": "number", "format": "double"})
    );
    let (_, reply) = server
        .execute_sync("summarise", &json!({ "inputs": { "numbers": [2, 4, 6] } }))
        .await;
    let stats = reply.json();
    assert_eq!(
        (stats["count"].clone(), stats["mean"].clone()),
        (json!(3), json!(4.0)),
        "{stats}"
    );
    // An element that is not a number is refused by the derived schema.
    let reply = server
        .execute("summarise", &json!({ "inputs": { "numbers": [1, "two"] } }))
        .await;
    assert_exception(&reply, 400, None);
    server.shutdown().await;
}
