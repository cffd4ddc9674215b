//! API keys with roles (`[[auth.keys]]`): what each role may do, and job
//! ownership — an `execute` key lists, reads and dismisses only the jobs it
//! created, another key's job answers 404 as if it did not exist, admins
//! see every job — and a key's own bound on stored data. Run on sled here
//! and on PostgreSQL by `on_postgres`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use sha2::{Digest, Sha256};
use wasmproc::config::{ApiKey, Config, Role};
use wasmproc_tests::{
    ADMIN_TOKEN, Api, JOB_TIMEOUT, Operation, Reply, TestServer, assert_exception, detail,
    fill_until_storage_full, last_segment, multipart, operations_on, wait_for_storage_room,
};

/// One key per role, and a second `execute` key.
const ALICE: &str = "wpk_alice-executes";
const BOB: &str = "wpk_bob-executes-too";
const READER: &str = "wpk_reader-only-reads";
const ROOT: &str = "wpk_root-administers";

const ECHO_WASM: &str = env!("WASMPROC_GUEST_ECHO");

fn key(name: &str, role: Role, secret: &str) -> ApiKey {
    ApiKey {
        name: name.into(),
        role,
        sha256: hex::encode(Sha256::digest(secret.as_bytes())),
        max_stored_bytes: None,
    }
}

/// The four keys and the admin token.
fn with_keys(config: &mut Config) {
    config.auth.admin_token = Some(wasmproc::config::Secret::new(ADMIN_TOKEN));
    config.auth.keys = vec![
        key("alice", Role::Execute, ALICE),
        key("bob", Role::Execute, BOB),
        key("reader", Role::Read, READER),
        key("root", Role::Admin, ROOT),
    ];
}

/// A server with the keys of [`with_keys`], its configuration then
/// changed by `more`: the opening of the tests here.
async fn keyed_server(more: impl FnOnce(&mut Config)) -> TestServer {
    super::server()
        .configure(|c| {
            with_keys(c);
            more(c);
        })
        .start()
        .await
}

fn bearer(secret: &str) -> String {
    format!("Bearer {secret}")
}

/// A request as the holder of `secret` (anonymous with `None`).
async fn send_as(
    api: &Api,
    secret: Option<&str>,
    method: Method,
    path: &str,
    content_type: &str,
    body: Option<Vec<u8>>,
) -> Reply {
    let authorization = secret.map(bearer);
    let mut headers = vec![("content-type", content_type)];
    if let Some(value) = &authorization {
        headers.push(("authorization", value.as_str()));
    }
    api.send(method, path, &headers, body).await
}

async fn get_as(api: &Api, secret: Option<&str>, path: &str) -> Reply {
    send_as(api, secret, Method::GET, path, "application/json", None).await
}

/// The body of an echo request.
fn echo_request(text: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({ "inputs": { "stringInput": text } })).unwrap()
}

/// `POST /processes/echo/execution` (sync) of `body` as `secret`.
async fn execute_as(api: &Api, secret: &str, body: Vec<u8>) -> Reply {
    send_as(
        api,
        Some(secret),
        Method::POST,
        "/processes/echo/execution",
        "application/json",
        Some(body),
    )
    .await
}

/// Run echo synchronously as `secret`; the job id.
async fn run_as(api: &Api, secret: &str, text: &str) -> String {
    let reply = execute_as(api, secret, echo_request(text)).await;
    reply.expect_status(200);
    last_segment(&reply.link_header("monitor").expect("monitor link"))
}

/// Submit echo asynchronously as `secret` and wait for it; the job id.
async fn submit_as(api: &Api, secret: &str, text: &str) -> String {
    let body = echo_request(text);
    let authorization = bearer(secret);
    let reply = api
        .send(
            Method::POST,
            "/processes/echo/execution",
            &[
                ("content-type", "application/json"),
                ("prefer", "respond-async"),
                ("authorization", &authorization),
            ],
            Some(body),
        )
        .await;
    reply.expect_status(201);
    let id = reply.json()["jobID"].as_str().expect("jobID").to_owned();
    let deadline = Instant::now() + JOB_TIMEOUT;
    loop {
        let status = get_as(api, Some(secret), &format!("/jobs/{id}")).await;
        status.expect_status(200);
        if status.json()["status"] == "successful" {
            return id;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} did not succeed in time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The ids `GET /jobs?query` lists for `secret`.
async fn listed(api: &Api, secret: Option<&str>, query: &str) -> BTreeSet<String> {
    let reply = get_as(api, secret, &format!("/jobs?limit=1000&{query}")).await;
    reply.expect_status(200);
    reply.json()["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["jobID"].as_str().expect("jobID").to_owned())
        .collect()
}

fn set(ids: &[&String]) -> BTreeSet<String> {
    ids.iter().map(|id| (*id).clone()).collect()
}

#[tokio::test]
async fn execute_keys_own_their_jobs_and_see_only_them() {
    let server = keyed_server(|_| {}).await;
    let alice_sync = run_as(&server, ALICE, "a1").await;
    let alice_async = submit_as(&server, ALICE, "a2").await;
    let bob_job = run_as(&server, BOB, "b1").await;
    let admin_job = run_as(&server, ADMIN_TOKEN, "t1").await;

    // Each execute key lists its own jobs, whatever the filters; the
    // admin token and an admin key list every job.
    assert_eq!(
        listed(&server, Some(ALICE), "").await,
        set(&[&alice_sync, &alice_async])
    );
    assert_eq!(
        listed(&server, Some(ALICE), "status=successful&processID=echo").await,
        set(&[&alice_sync, &alice_async])
    );
    assert_eq!(listed(&server, Some(BOB), "").await, set(&[&bob_job]));
    let every = set(&[&alice_sync, &alice_async, &bob_job, &admin_job]);
    assert_eq!(listed(&server, Some(ROOT), "").await, every);
    assert_eq!(listed(&server, Some(ADMIN_TOKEN), "").await, every);

    // Another key's job is not there for alice: status, results, one
    // output, log and dismissal all answer 404 no-such-job.
    for path in [
        format!("/jobs/{bob_job}"),
        format!("/jobs/{bob_job}/results"),
        format!("/jobs/{bob_job}/results/stringInput"),
        format!("/jobs/{bob_job}/log"),
        format!("/jobs/{admin_job}"),
    ] {
        let reply = get_as(&server, Some(ALICE), &path).await;
        let exception = assert_exception(&reply, 404, None);
        assert!(
            exception["type"].as_str().unwrap().ends_with("no-such-job"),
            "{path}: {exception}"
        );
    }
    let reply = send_as(
        &server,
        Some(ALICE),
        Method::DELETE,
        &format!("/jobs/{bob_job}"),
        "application/json",
        None,
    )
    .await;
    assert_exception(&reply, 404, None);
    // Bob's job is untouched; he and the admins read it.
    for secret in [BOB, ROOT, ADMIN_TOKEN] {
        let reply = get_as(&server, Some(secret), &format!("/jobs/{bob_job}/results")).await;
        reply.expect_status(200);
    }
    // Alice reads and dismisses her own.
    get_as(
        &server,
        Some(ALICE),
        &format!("/jobs/{alice_async}/results"),
    )
    .await
    .expect_status(200);
    get_as(&server, Some(ALICE), &format!("/jobs/{alice_sync}/log"))
        .await
        .expect_status(200);
    let reply = send_as(
        &server,
        Some(ALICE),
        Method::DELETE,
        &format!("/jobs/{alice_async}"),
        "application/json",
        None,
    )
    .await;
    reply.expect_status(200);
    assert_eq!(reply.json()["status"], "dismissed");
    assert_eq!(listed(&server, Some(ALICE), "").await, set(&[&alice_sync]));

    // Without a key the job routes are closed; process descriptions stay
    // public (no `protect_processes`), the package needs a key.
    let anonymous = get_as(&server, None, "/jobs").await;
    assert_exception(&anonymous, 401, None);
    assert_eq!(
        anonymous.header("www-authenticate").as_deref(),
        Some("Bearer")
    );
    get_as(&server, None, "/processes").await.expect_status(200);
    get_as(&server, None, "/processes/echo")
        .await
        .expect_status(200);
    assert_exception(
        &get_as(&server, None, "/processes/echo/package").await,
        401,
        None,
    );
    get_as(&server, Some(READER), "/processes/echo/package")
        .await
        .expect_status(200);
    // A read key may not run anything nor see jobs: 403 naming the role.
    let refused = execute_as(&server, READER, echo_request("r")).await;
    let exception = assert_exception(&refused, 403, None);
    assert!(
        detail(&exception).contains("role execute") && detail(&exception).contains("role read"),
        "{exception}"
    );
    assert_exception(&get_as(&server, Some(READER), "/jobs").await, 403, None);
    // And an execute key may not deploy.
    let refused = send_as(
        &server,
        Some(ALICE),
        Method::POST,
        "/processes",
        "application/wasm",
        Some(std::fs::read(ECHO_WASM).unwrap()),
    )
    .await;
    assert!(
        detail(&assert_exception(&refused, 403, None)).contains("role admin"),
        "{}",
        refused.text()
    );

    // Ownership is stored with the job: it holds after a restart.
    let server = server.restart().await;
    assert_eq!(listed(&server, Some(ALICE), "").await, set(&[&alice_sync]));
    assert_exception(
        &get_as(&server, Some(ALICE), &format!("/jobs/{bob_job}")).await,
        404,
        None,
    );
    get_as(&server, Some(BOB), &format!("/jobs/{bob_job}"))
        .await
        .expect_status(200);
    server.shutdown().await;
}

#[tokio::test]
async fn the_execute_form_takes_a_key_and_the_job_belongs_to_it() {
    let server = keyed_server(|_| {}).await;
    // The echo form sent with `token` in its token field (no header).
    let submit = async |token: &str| {
        let (content_type, body) = multipart(
            &[
                ("input.stringInput", "from the form"),
                ("mode", "sync"),
                ("token", token),
            ],
            &[],
        );
        send_as(
            &server,
            None,
            Method::POST,
            "/ui/processes/echo/execution",
            &content_type,
            Some(body),
        )
        .await
    };
    let reply = submit(ALICE).await;
    reply.expect_status(303);
    let location = reply.header("location").expect("location");
    let job_id = location
        .trim_end_matches("/results")
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(listed(&server, Some(ALICE), "").await, set(&[&job_id]));
    assert_exception(
        &get_as(&server, Some(BOB), &format!("/jobs/{job_id}")).await,
        404,
        None,
    );
    // A read key gets the form again with the refusal, and no job.
    let reply = submit(READER).await;
    assert_eq!(reply.status, 403);
    assert!(
        reply.content_type().starts_with("text/html"),
        "{:?}",
        reply.headers
    );
    assert!(reply.text().contains("role execute"), "{}", reply.text());
    assert_eq!(listed(&server, Some(ROOT), "").await, set(&[&job_id]));
    server.shutdown().await;
}

#[tokio::test]
async fn every_operation_answers_each_role_as_the_openapi_document_says() {
    // The table is the server's own OpenAPI document: each operation that
    // may ask for credentials says the least role it needs
    // (`x-wasmproc-role`). With keys and `protect_processes`, every one of
    // them must refuse an anonymous caller (401), a wrong key (403) and
    // each role below its own (403 naming the role), and let each role at
    // or above it through. Operations without a role never refuse.
    let server = keyed_server(|c| c.auth.protect_processes = true).await;
    let job_id = run_as(&server, ALICE, "mine").await;
    let document = get_as(&server, None, "/api").await.json();
    let roles = [("read", READER), ("execute", ALICE), ("admin", ROOT)];
    let rank = |role: &str| roles.iter().position(|(r, _)| *r == role);
    let mut checked = Vec::new();
    for operation in operations_on(&document, "echo", &job_id, "stringInput") {
        let Operation {
            method, path, id, ..
        } = &operation;
        let (content_type, body) = operation
            .request_body(&json!({ "inputs": { "stringInput": "x" } }), || {
                std::fs::read(ECHO_WASM).unwrap()
            });
        let send = |secret: Option<&'static str>| {
            send_as(
                &server,
                secret,
                method.clone(),
                path,
                content_type,
                body.clone(),
            )
        };
        let Some(required) = operation.spec["x-wasmproc-role"].as_str() else {
            assert!(
                !operation.declares_bearer(),
                "{id} declares bearer security but no x-wasmproc-role"
            );
            let reply = send(None).await;
            assert!(
                reply.status != 401 && reply.status != 403,
                "{id} needs no role but answered {}: {}",
                reply.status,
                reply.text()
            );
            continue;
        };
        let needed = rank(required).unwrap_or_else(|| panic!("{id}: unknown role {required}"));
        let anonymous = send(None).await;
        assert_exception(&anonymous, 401, None);
        assert_eq!(
            anonymous.header("www-authenticate").as_deref(),
            Some("Bearer"),
            "{id}"
        );
        assert_exception(&send(Some("wpk_nobody")).await, 403, None);
        // A DELETE that succeeds would remove what later operations use:
        // only refusals are sent for those.
        let destructive = *method == Method::DELETE;
        for (index, (role, secret)) in roles.iter().enumerate() {
            if index < needed {
                let refused = send(Some(secret)).await;
                let exception = assert_exception(&refused, 403, None);
                assert!(
                    detail(&exception).contains(&format!("role {required}")),
                    "{id} as {role}: {exception}"
                );
            } else if !destructive {
                let reply = send(Some(secret)).await;
                let refused_for_credentials =
                    reply.status == 401 || (reply.status == 403 && reply.text().contains("role"));
                assert!(
                    !refused_for_credentials,
                    "{id} needs {required} but refused {role}: {} {}",
                    reply.status,
                    reply.text()
                );
            }
        }
        checked.push(id.clone());
    }
    for expected in [
        "getProcesses",
        "getProcessDescription",
        "getPackage",
        "execute",
        "getJobs",
        "getStatus",
        "dismiss",
        "getResult",
        "getJobLog",
        "deploy",
        "replace",
        "undeploy",
        "executeForm",
        "deployForm",
    ] {
        assert!(
            checked.iter().any(|id| id == expected),
            "{expected} missing from {checked:?}"
        );
    }
    // Nothing refused changed anything: alice's job is intact.
    let status = get_as(&server, Some(ALICE), &format!("/jobs/{job_id}")).await;
    status.expect_status(200);
    assert_eq!(status.json()["status"], "successful");
    server.shutdown().await;
}

/// A load balancer's or an orchestrator's health check carries no key:
/// `/livez` and `/readyz` answer it where every other route asks for one
/// (keys and `protect_processes`), say nothing but the store's backend,
/// and are never cached.
#[tokio::test]
async fn health_checks_need_no_key_and_are_never_cached() {
    let server = keyed_server(|c| c.auth.protect_processes = true).await;
    assert_exception(&get_as(&server, None, "/processes").await, 401, None);
    let backend = if super::ON_POSTGRES {
        "postgres"
    } else {
        "sled"
    };
    for (path, expected) in [
        ("/livez", json!({"status": "live"})),
        ("/readyz", json!({"status": "ready", "store": backend})),
    ] {
        let reply = get_as(&server, None, path).await;
        reply.expect_status(200);
        assert!(
            reply.content_type().starts_with("application/json"),
            "{path}: {}",
            reply.content_type()
        );
        assert_eq!(reply.json(), expected, "{path}");
        assert_eq!(
            reply.header("cache-control").as_deref(),
            Some("no-store"),
            "{path}"
        );
        // A wrong key changes nothing either: the check never reads it.
        get_as(&server, Some("wpk_nobody"), path)
            .await
            .expect_status(200);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_key_past_its_own_bound_gets_507_while_other_keys_go_on() {
    let server = keyed_server(|c| {
        c.auth.keys[0].max_stored_bytes = Some(40_000);
        c.execution.storage_recount = Duration::from_millis(200);
    })
    .await;
    // echo stores its input twice (request and result): ~16 KB a job.
    let body = echo_request(&"x".repeat(8_000));
    let (alices, _, exception) = fill_until_storage_full("alice's 40 KB bound", async || {
        execute_as(&server, ALICE, body.clone()).await
    })
    .await;
    assert!(
        detail(&exception).contains("key 'alice'"),
        "the bound is alice's: {exception}"
    );

    // Bob has no bound of his own: he goes on, and alice still reads.
    for i in 0..3 {
        run_as(&server, BOB, &format!("bob-{i}")).await;
    }
    for id in &alices {
        get_as(&server, Some(ALICE), &format!("/jobs/{id}/results"))
            .await
            .expect_status(200);
    }
    // Alice deletes her jobs; at the next count she may run again.
    for id in &alices {
        send_as(
            &server,
            Some(ALICE),
            Method::DELETE,
            &format!("/jobs/{id}"),
            "application/json",
            None,
        )
        .await
        .expect_status(200);
    }
    wait_for_storage_room("alice's room after deleting her jobs", async || {
        execute_as(&server, ALICE, body.clone()).await
    })
    .await;
    server.shutdown().await;
}
